#include "export/tensor_stream.h"

#include "util/atomic_file.h"
#include "export/float_encode.h"
#include "kernels/stored_matrix.h"
#include "quant/ggml_quantize.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/progress.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ll {

namespace {

// How far ahead of the band being converted the source is asked for.
constexpr uint64_t kReadAheadBytes = uint64_t{32} << 20;

// Asks the kernel to read [p, p + n) of a mapped file now, asynchronously, so
// that decoding a cold model does not wait for one page fault after another.
void adviseWillNeed(const uint8_t* p, uint64_t n)
{
    static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    if (n == 0)
        return;
    const uintptr_t start = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
    const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
    ::madvise(reinterpret_cast<void*>(start), end - start, MADV_WILLNEED); // advice only: errors do not matter
}

// Keeps the source of a stored tensor's rows requested ahead of the bands being read.
class ReadAhead {
public:
    ReadAhead(const PlannedTensor& t, size_t rowBytes) : t_(t), rowBytes_(rowBytes) {}
    void before(int64_t r0, int64_t n)
    {
        if (!t_.stored || !t_.stored->data || n <= 0)
            return;
        int64_t lo = t_.storedRow(r0), hi = lo;
        if (t_.storedRowOf)
            for (int64_t i = 1; i < n; ++i) {
                const int64_t s = t_.storedRow(r0 + i);
                lo = std::min(lo, s);
                hi = std::max(hi, s);
            }
        else
            hi = r0 + n - 1;
        const uint64_t bandEnd = static_cast<uint64_t>(hi + 1) * rowBytes_;
        if (bandEnd + kReadAheadBytes / 2 <= advisedEnd_)
            return;
        const uint64_t from = std::max<uint64_t>(advisedEnd_, static_cast<uint64_t>(lo) * rowBytes_);
        const uint64_t to = std::min<uint64_t>(t_.stored->nbytes, from + kReadAheadBytes);
        if (to > from)
            adviseWillNeed(t_.stored->data + from, to - from);
        advisedEnd_ = std::max(advisedEnd_, to);
    }

private:
    const PlannedTensor& t_;
    size_t rowBytes_;
    uint64_t advisedEnd_ = 0;
};

size_t rowBytesOf(DType type, int64_t cols, const PlannedTensor& t, const std::string& file)
{
    const size_t b = storedRowBytes(type, cols);
    if (b == 0 && cols > 0)
        fail(ErrorCode::InvalidArgument, file,
             "tensor '" + t.name + "': rows of " + std::to_string(cols) + " values are not a whole number of "
                 + std::string(dtypeName(type)) + " blocks");
    return b;
}

// Rows decoded into the F32 band, encoded into a writer buffer, queued. A band
// is split into slices converted on the band workers when the conversion is the
// costly part (quantization, or floats without vector instructions); slices read
// their own rows when rows of a stored tensor can be read concurrently.
void convertBands(FileWriter& out, const PlannedTensor& t, DType type, StreamBuffers& buffers, const std::string& file,
                  const std::function<void(int64_t)>& afterBand, StreamedTensor& result, const float* importance)
{
    constexpr int64_t kMinSliceValues = 1 << 15;
    const int64_t cols = t.rowLength(), rows = t.rows();
    const size_t outRow = storedRowBytes(type, cols);
    const bool floats = type == DType::F32 || type == DType::F16 || type == DType::BF16;
    const bool threaded = !floats || (type != DType::F32 && bestEncodePath() == EncodePath::Scalar);
    const BandReader read = t.openRows();
    const bool concurrentReads = t.stored != nullptr; // stored rows are decoded where they lie
    ReadAhead ahead(t, !t.stored ? 0 : storedRowBytes(*t.stored, cols));
    BandWriter& writer = buffers.writer();
    const int64_t band = chunkRows(cols, t.rowAlign, rows, buffers.chunkBytes());
    for (int64_t r0 = 0; r0 < rows; r0 += band) {
        const int64_t n = std::min(band, rows - r0);
        ahead.before(r0, n);
        float* v = buffers.values(static_cast<size_t>(n * cols));
        uint8_t* dst = writer.acquire(static_cast<size_t>(n) * outRow);
        const int64_t slices =
            threaded ? std::clamp<int64_t>(n * cols / kMinSliceValues, 1, std::min<int64_t>(n, buffers.workers().threads())) : 1;
        if (!concurrentReads || slices == 1)
            read(r0, n, v);
        std::vector<int64_t> overflow(static_cast<size_t>(slices), 0);
        buffers.workers().run(slices, [&](int64_t k) {
            const int64_t a = n * k / slices, b = n * (k + 1) / slices; // rows [a, b) of the band
            float* sv = v + a * cols;
            if (concurrentReads && slices > 1)
                read(r0 + a, b - a, sv);
            if (floats) {
                overflow[static_cast<size_t>(k)] = encodeFloatsInto(sv, (b - a) * cols, type, dst + a * outRow);
                return;
            }
            try {
                if (importance)
                    quantizeGgmlRowsSerial(type, sv, b - a, cols, importance, dst + a * outRow);
                else
                    quantizeGgmlSerial(type, sv, (b - a) * cols, dst + a * outRow);
            } catch (const Error& e) {
                fail(e.code(), file, "tensor '" + t.name + "': " + e.problem());
            }
        });
        for (int64_t o : overflow)
            result.overflow += o;
        writer.submit(out, static_cast<size_t>(n) * outRow);
        if (afterBand)
            afterBand((r0 + n) * cols);
    }
}

} // namespace

int64_t chunkRows(int64_t rowLength, int64_t rowAlign, int64_t rows, size_t chunkBytes)
{
    if (rows <= 0)
        return 0;
    const int64_t align = std::max<int64_t>(1, rowAlign);
    const uint64_t unit = static_cast<uint64_t>(std::max<int64_t>(1, rowLength)) * sizeof(float) * static_cast<uint64_t>(align);
    const int64_t units = std::max<int64_t>(1, static_cast<int64_t>(chunkBytes / unit));
    return std::min(rows, units * align);
}

void StreamBuffers::released(const TensorRef& t) const
{
    static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    if (!t.data || t.nbytes == 0)
        return;
    const auto* begin = t.data;
    const auto* end = t.data + t.nbytes;
    for (const auto& f : mapped_) {
        // Only whole pages of a read-only file mapping: never an owned (edited) buffer,
        // whose pages MADV_DONTNEED would zero.
        if (!f || begin < f->data() || end > f->data() + f->size())
            continue;
        const uintptr_t from = (reinterpret_cast<uintptr_t>(begin) + page - 1) & ~(page - 1);
        const uintptr_t to = reinterpret_cast<uintptr_t>(end) & ~(page - 1);
        if (to > from)
            ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
        return;
    }
}

float* StreamBuffers::values(size_t n)
{
    if (values_.size() < n)
        values_.resize(n);
    return values_.data();
}

BandProgress::BandProgress(Progress* progress, std::string file, int64_t totalValues)
    : progress_(progress), file_(std::move(file)), total_(totalValues)
{
}

void BandProgress::report(int64_t done)
{
    lastReported_ = done;
    if (progress_)
        progress_->report(total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 0.0, what_);
}

void BandProgress::startTensor(const std::string& what)
{
    throwIfCancelledWriting(progress_, file_);
    what_ = what;
    report(done_);
}

void BandProgress::band(int64_t doneInTensor)
{
    throwIfCancelledWriting(progress_, file_);
    if ((done_ + doneInTensor - lastReported_) * 100 >= total_)
        report(done_ + doneInTensor);
}

void BandProgress::finishTensor(int64_t values)
{
    done_ += values;
}

StreamedTensor streamTensor(FileWriter& out, const PlannedTensor& t, DType type, StreamBuffers& buffers,
                            const std::string& file, const std::function<void(int64_t)>& afterBand,
                            const float* importance)
{
    const int64_t cols = t.rowLength(), rows = t.rows();
    const size_t outRow = rowBytesOf(type, cols, t, file);
    const uint64_t start = out.written();
    BandWriter& writer = buffers.writer();
    StreamedTensor result;
    try {
        if (!importance && t.stored && t.stored->dtype == type && t.stored->data
            && (t.stored->shape.empty() ? 1 : t.stored->shape.back()) == cols) {
            // Same type, whole rows: the stored bytes, straight from the mapping when in order.
            result.copied = true;
            ReadAhead ahead(t, outRow);
            const int64_t band = std::max<int64_t>(1, static_cast<int64_t>(buffers.chunkBytes() / std::max<size_t>(outRow, 1)));
            for (int64_t r0 = 0; r0 < rows; r0 += band) {
                const int64_t n = std::min(band, rows - r0);
                const size_t bytes = static_cast<size_t>(n) * outRow;
                ahead.before(r0, n);
                if (!t.storedRowOf) {
                    writer.submitExternal(out, t.stored->data + static_cast<size_t>(r0) * outRow, bytes);
                } else {
                    uint8_t* b = writer.acquire(bytes);
                    for (int64_t i = 0; i < n; ++i)
                        std::memcpy(b + i * outRow, t.stored->data + static_cast<size_t>(t.storedRow(r0 + i)) * outRow, outRow);
                    writer.submit(out, bytes);
                }
                if (afterBand)
                    afterBand((r0 + n) * cols);
            }
        } else if (rows > 0) {
            convertBands(out, t, type, buffers, file, afterBand, result, importance);
        }
        writer.flush();
        if (t.stored)
            buffers.released(*t.stored);
    } catch (...) {
        writer.abandon(); // no band may reach `out` after this returns
        throw;
    }
    result.bytes = out.written() - start;
    if (result.bytes != static_cast<uint64_t>(rows) * outRow)
        fail(ErrorCode::InvalidArgument, file,
             "tensor '" + t.name + "' gave " + std::to_string(result.bytes) + " bytes, its type and shape need "
                 + std::to_string(static_cast<uint64_t>(rows) * outRow));
    return result;
}

} // namespace ll
