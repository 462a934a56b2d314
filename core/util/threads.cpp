#include "util/threads.h"

#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <exception>
#include <vector>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ll {

namespace {
int defaultThreads()
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#endif
}

std::atomic<int> gThreads{0};
std::atomic<int> gShares{0};
thread_local int tShareDepth = 0; // nested shares on one thread count once
} // namespace

ComputeShare::ComputeShare()
{
    if (tShareDepth++ == 0)
        gShares.fetch_add(1);
}

ComputeShare::~ComputeShare()
{
    if (--tShareDepth == 0)
        gShares.fetch_sub(1);
}

int computeShares()
{
    return gShares.load();
}

void setComputeThreads(int threads)
{
    const int n = threads > 0 ? threads : defaultThreads();
    gThreads.store(n);
    Eigen::setNbThreads(n);
}

int computeThreads()
{
    int n = gThreads.load();
    if (n <= 0) {
        n = defaultThreads();
        gThreads.store(n);
        Eigen::setNbThreads(n);
    }
    if (tShareDepth > 0)
        n = std::max(1, n / std::max(1, gShares.load()));
    return n;
}

bool inParallelRegion()
{
#ifdef _OPENMP
    return omp_in_parallel() != 0;
#else
    return false;
#endif
}

void runParallel(int64_t count, const std::function<void(int64_t)>& task)
{
    const int threads = static_cast<int>(std::min<int64_t>(computeThreads(), count));
    if (threads <= 1 || inParallelRegion()) {
        for (int64_t i = 0; i < count; ++i)
            task(i);
        return;
    }
    // Exceptions must not leave an OpenMP region: keep them, rethrow after.
    std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int64_t i = 0; i < count; ++i) {
        try {
            task(i);
        } catch (...) {
            errors[static_cast<size_t>(i)] = std::current_exception();
        }
    }
    for (const auto& e : errors)
        if (e)
            std::rethrow_exception(e);
}

} // namespace ll
