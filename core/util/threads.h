#pragma once
// How many threads the forward pass uses. The engine parallelises with OpenMP
// in its own loops (windows, heads, output columns, rows); Eigen's own GEMM
// threading gets the same number (Eigen::setNbThreads) for the rest of the app.
// Work that splits into independent parts (windows of a batch) runs one part
// per thread with no synchronisation inside: on a busy machine, spinning
// barriers in fine-grained loops cost far more than they save.
#include <cstdint>
#include <functional>

namespace ll {

// 0 = every core the process may use.
void setComputeThreads(int threads);
// The threads the calling thread's work may use: the whole budget, or its
// share of it when it runs as one of several jobs (ComputeShare).
int computeThreads();

// One CPU budget for jobs that run at the same time (the GUI's panels, each
// on a thread of its own): while n threads hold a ComputeShare, each of them
// gets computeThreads() = budget / n (at least 1), re-read at every parallel
// loop, so two panels never ask for twice the cores and a job that is left
// alone gets them all back. Threads without one (the CLI) get the whole budget.
// Eigen's own GEMM threading (Eigen::setNbThreads) stays process-wide.
class ComputeShare {
public:
    ComputeShare();
    ~ComputeShare();
    ComputeShare(const ComputeShare&) = delete;
    ComputeShare& operator=(const ComputeShare&) = delete;
};
// Threads holding a ComputeShare now.
int computeShares();
// True inside one of the engine's parallel loops (nested loops then run serially).
bool inParallelRegion();

// Runs task(i) for i in [0, count) on up to computeThreads() threads (serially
// when already inside a parallel region). The first exception a task throws is
// rethrown here once every task has finished.
void runParallel(int64_t count, const std::function<void(int64_t)>& task);

} // namespace ll
