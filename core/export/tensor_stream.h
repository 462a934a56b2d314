#pragma once
// Writing one planned tensor in a file type, a band of rows at a time, so that
// an export holds a few megabytes of values however large the tensor: rows are
// decoded into a bounded F32 buffer, encoded (F16 / BF16 / a ggml block type)
// into one of a few reused buffers (quantized in slices on a few threads) and
// written by a thread of its own while the next band is converted. Rows already stored in the target type are copied as
// they are (straight from the mapping when their order is unchanged): no value
// goes through F32 then.
#include "export/band_workers.h"
#include "export/band_writer.h"
#include "export/planned_tensor.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ll {

class FileWriter;
class MappedFile;
class Progress;

// F32 bytes of rows converted at once, unless a single band of aligned rows needs more.
constexpr size_t kDefaultExportChunkBytes = size_t{4} << 20;

// Rows per band: as many whole multiples of `rowAlign` rows as fit in
// `chunkBytes` of F32, at least one multiple, at most `rows`.
int64_t chunkRows(int64_t rowLength, int64_t rowAlign, int64_t rows, size_t chunkBytes);

// What an export reuses from tensor to tensor: the F32 band, the encoded bands
// going round with the writing thread. Their size is what the export holds
// beyond the mapped model: about 2.5 x chunkBytes (see capacityBytes()).
class StreamBuffers {
public:
    explicit StreamBuffers(size_t chunkBytes = kDefaultExportChunkBytes) : chunkBytes_(chunkBytes ? chunkBytes : 1) {}
    size_t chunkBytes() const { return chunkBytes_; }
    float* values(size_t n); // F32 rows
    BandWriter& writer() { return writer_; }
    BandWorkers& workers() { return workers_; }
    // Bytes allocated so far (grown to the largest band seen).
    size_t capacityBytes() const { return values_.capacity() * sizeof(float) + writer_.capacityBytes(); }

    // The model's mapped files: once a tensor read from one of them is written, its
    // pages are let go of (MADV_DONTNEED; the page cache keeps them, a later read
    // maps them again), so the export's resident memory stays about one tensor of
    // the source instead of growing to the whole model. Nothing else is released.
    void releaseAfterUse(std::vector<std::shared_ptr<const MappedFile>> files) { mapped_ = std::move(files); }
    void released(const TensorRef& t) const;

private:
    size_t chunkBytes_;
    std::vector<std::shared_ptr<const MappedFile>> mapped_;
    std::vector<float> values_;
    BandWriter writer_{2};
    BandWorkers workers_;
};

struct StreamedTensor {
    uint64_t bytes = 0;       // written
    int64_t overflow = 0;     // finite values that became ±inf (F16 / BF16)
    bool copied = false;      // the stored bytes were copied as they are
};

// Writes `t` as `type` (F32, F16, BF16 or a block type quantizeGgml writes) to
// `out`: exactly the tensor's bytes, no padding; every band has reached `out`
// when it returns (or throws). `afterBand(valuesDone)` runs after each band
// (progress; it may throw to cancel). Errors of the encoding name `file` and the
// tensor; a source that cannot be read names itself.
// `importance` (rowLength values, an imatrix entry) weighs the rounding of
// every row when the type is quantized (llama-quantize --imatrix).
StreamedTensor streamTensor(FileWriter& out, const PlannedTensor& t, DType type, StreamBuffers& buffers,
                            const std::string& file, const std::function<void(int64_t)>& afterBand = {},
                            const float* importance = nullptr);

// An export's progress counted in values: a report as each tensor starts and,
// inside large tensors, about every percent; cancellation is checked before
// each tensor and after every band (throwing Cancelled naming `file`).
class BandProgress {
public:
    BandProgress(Progress* progress, std::string file, int64_t totalValues);
    void startTensor(const std::string& what);
    void band(int64_t doneInTensor);
    void finishTensor(int64_t values);

private:
    void report(int64_t done);
    Progress* progress_;
    std::string file_;
    std::string what_;
    int64_t total_;
    int64_t done_ = 0;          // values of the finished tensors
    int64_t lastReported_ = 0;
};

} // namespace ll
