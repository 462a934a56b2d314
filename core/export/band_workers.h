#pragma once
// A few threads that convert the slices of an export's band. They sleep on a
// condition variable between bands: an export waits for the disk much of the
// time, and OpenMP's spinning workers would burn a core meanwhile (on a
// machine shared with other work, that core is taken from everyone).
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ll {

class BandWorkers {
public:
    // threads <= 0: computeThreads() (util/threads.h). The calling thread is one of them.
    explicit BandWorkers(int threads = 0);
    ~BandWorkers();
    BandWorkers(const BandWorkers&) = delete;
    BandWorkers& operator=(const BandWorkers&) = delete;

    int threads() const { return static_cast<int>(helpers_.size()) + 1; }
    // Runs task(i) for i in [0, count), the caller included; returns when all are
    // done and rethrows the first exception a task threw.
    void run(int64_t count, const std::function<void(int64_t)>& task);

private:
    void helper();
    void work(std::unique_lock<std::mutex>& lock);

    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(int64_t)>* task_ = nullptr;
    int64_t count_ = 0, next_ = 0, finished_ = 0;
    uint64_t generation_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
    std::vector<std::thread> helpers_;
};

} // namespace ll
