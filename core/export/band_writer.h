#pragma once
// Writing an export's bands on a thread of its own, so that converting band
// i + 1 overlaps copying band i into the page cache (and waiting for the disk):
// a few reusable buffers go round between the converting thread and the writer.
// Bands reach each file in the order they were submitted.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ll {

class FileWriter;

class BandWriter {
public:
    explicit BandWriter(int buffers = 3);
    ~BandWriter(); // stops the thread; what was not written yet is dropped (the export failed)
    BandWriter(const BandWriter&) = delete;
    BandWriter& operator=(const BandWriter&) = delete;

    // A free buffer of at least n bytes, waiting for the writer when every buffer is queued.
    // Rethrows a write error of an earlier band.
    uint8_t* acquire(size_t n);
    // Queues the first n bytes of the buffer acquire() returned last, for `out`.
    void submit(FileWriter& out, size_t n);
    // Queues bytes that stay valid until flush() (the source's mapping): written without a copy.
    void submitExternal(FileWriter& out, const uint8_t* data, size_t n);
    // Waits until every queued band is written; rethrows a write error.
    void flush();
    // Drops the queued bands and waits for the one being written (after an error
    // or a cancellation: no band may outlive the file it is for).
    void abandon();
    // Bytes held in buffers (for the memory bound).
    size_t capacityBytes() const;

private:
    struct Job {
        FileWriter* out = nullptr;
        const uint8_t* data = nullptr;
        size_t n = 0;
        int buffer = -1; // returned to the free list once written; -1: external bytes
    };
    void run();
    void rethrowLocked();

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::vector<uint8_t>> buffers_;
    std::vector<int> free_;
    std::deque<Job> queue_;
    int acquired_ = -1;
    bool busy_ = false;   // the thread is writing a job it took off the queue
    bool stop_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

} // namespace ll
