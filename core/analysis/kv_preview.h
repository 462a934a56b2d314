#pragma once
// What the Compress dock shows for a kv-cache step: one block's cached keys
// before and after quantization (histograms), the keys' and values' relative
// errors against bits, and the cache's size at 4k positions.
#include "analysis/compression_preview.h"

#include <cstdint>
#include <span>

namespace ll {

class Transformer;

// The keys and values block `block` caches for `tokens` (positions × kvHeads·headDim).
struct CachedKv {
    MatrixRM keys, values;
};
CachedKv cachedKeysAndValues(const Transformer& engine, std::span<const int32_t> tokens, int block);

// ||K − K̂||_F / ||K||_F (and V's) over the positions the scheme quantizes
// (keys per channel: whole groups only).
struct KvError {
    double keys = 0.0, values = 0.0;
};
KvError kvQuantizationError(const CachedKv& kv, const KvCacheQuantization& q, int64_t headDim);

// Positions of calibration text the preview runs (the first ones of the first window).
constexpr int64_t kKvPreviewPositions = 256;

// computePreview for StepAction::KvCache on the block of linear `t`.
PreviewResult previewKvCache(const CompressionState& state, const RecipeStep& step, const LogicalTensor& t,
                             const CalibrationText& calibration, Progress* progress);

} // namespace ll
