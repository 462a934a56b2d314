#include "export/band_workers.h"

#include "util/threads.h"

namespace ll {

BandWorkers::BandWorkers(int threads)
{
    const int n = threads > 0 ? threads : computeThreads();
    for (int i = 1; i < n; ++i)
        helpers_.emplace_back([this] { helper(); });
}

BandWorkers::~BandWorkers()
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : helpers_)
        t.join();
}

// Takes tasks of the current run until none is left (called with the lock held).
void BandWorkers::work(std::unique_lock<std::mutex>& lock)
{
    while (task_ && next_ < count_) {
        const int64_t i = next_++;
        const std::function<void(int64_t)>& task = *task_;
        lock.unlock();
        std::exception_ptr failed;
        try {
            task(i);
        } catch (...) {
            failed = std::current_exception();
        }
        lock.lock();
        if (failed && !error_)
            error_ = failed;
        if (++finished_ == count_)
            done_.notify_all();
    }
}

void BandWorkers::helper()
{
    std::unique_lock<std::mutex> lock(mutex_);
    uint64_t seen = generation_;
    for (;;) {
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_)
            return;
        seen = generation_;
        work(lock);
    }
}

void BandWorkers::run(int64_t count, const std::function<void(int64_t)>& task)
{
    if (count <= 0)
        return;
    if (helpers_.empty() || count == 1) {
        for (int64_t i = 0; i < count; ++i)
            task(i);
        return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    task_ = &task;
    count_ = count;
    next_ = finished_ = 0;
    error_ = nullptr;
    ++generation_;
    wake_.notify_all();
    work(lock);
    done_.wait(lock, [this] { return finished_ == count_; });
    task_ = nullptr;
    std::exception_ptr e = error_;
    error_ = nullptr;
    lock.unlock();
    if (e)
        std::rethrow_exception(e);
}

} // namespace ll
