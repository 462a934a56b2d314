#include "export/band_writer.h"

#include "util/atomic_file.h"
#include "util/error.h"

namespace ll {

BandWriter::BandWriter(int buffers) : buffers_(static_cast<size_t>(buffers < 2 ? 2 : buffers))
{
    for (int i = 0; i < static_cast<int>(buffers_.size()); ++i)
        free_.push_back(i);
    thread_ = std::thread([this] { run(); });
}

BandWriter::~BandWriter()
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void BandWriter::rethrowLocked()
{
    if (error_) {
        std::exception_ptr e = error_;
        std::rethrow_exception(e);
    }
}

uint8_t* BandWriter::acquire(size_t n)
{
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !free_.empty() || error_; });
    rethrowLocked();
    acquired_ = free_.back();
    free_.pop_back();
    std::vector<uint8_t>& b = buffers_[static_cast<size_t>(acquired_)];
    lock.unlock();
    if (b.size() < n)
        b.resize(n); // outside the lock: the writer never touches a buffer that is not queued
    return b.data();
}

void BandWriter::submit(FileWriter& out, size_t n)
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (acquired_ < 0)
            fail(ErrorCode::InvalidArgument, out.displayName(), "band submitted without a buffer");
        queue_.push_back({&out, buffers_[static_cast<size_t>(acquired_)].data(), n, acquired_});
        acquired_ = -1;
    }
    changed_.notify_all();
}

void BandWriter::submitExternal(FileWriter& out, const uint8_t* data, size_t n)
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        rethrowLocked();
        queue_.push_back({&out, data, n, -1});
    }
    changed_.notify_all();
}

void BandWriter::flush()
{
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return (queue_.empty() && !busy_) || error_; });
    rethrowLocked();
}

void BandWriter::abandon()
{
    std::unique_lock<std::mutex> lock(mutex_);
    for (const Job& job : queue_)
        if (job.buffer >= 0)
            free_.push_back(job.buffer);
    queue_.clear();
    if (acquired_ >= 0) {
        free_.push_back(acquired_);
        acquired_ = -1;
    }
    changed_.wait(lock, [this] { return !busy_; });
}

size_t BandWriter::capacityBytes() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    size_t n = 0;
    for (const auto& b : buffers_)
        n += b.capacity();
    return n;
}

void BandWriter::run()
{
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        changed_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_)
            return;
        const Job job = queue_.front();
        queue_.pop_front();
        busy_ = true;
        lock.unlock();
        std::exception_ptr failed;
        try {
            job.out->write(job.data, job.n);
        } catch (...) {
            failed = std::current_exception();
        }
        lock.lock();
        busy_ = false;
        if (job.buffer >= 0)
            free_.push_back(job.buffer);
        if (failed && !error_) {
            error_ = failed;
            queue_.clear(); // nothing after a failed write may reach the file
        }
        changed_.notify_all();
    }
}

} // namespace ll
