#pragma once
// ShortGPT (Men et al., 2024, arXiv:2403.03853): whole transformer blocks
// removed by Block Influence, BI_i = 1 − mean_t cos(x_i,t, x_i+1,t), the cosine
// between a block's input and output hidden states over the calibration
// tokens. The blocks that change their input least go. The model keeps its
// family and file layout: later blocks move up (logical and stored names,
// config.layers), so exports describe a shorter model of the same kind.
#include "calib/calibration.h"
#include "model/model.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace ll {

class Progress;
class Transformer;

struct BlockRemovalOptions {
    int64_t blocks = 1;               // how many blocks to remove (at least one block stays)
    CalibrationOptions calibration;
};

// BI of every block of `t` on whole windows of `context` tokens (progress per
// block, cancellable). Streaming: the windows' hidden states are kept at one
// block's input at a time.
std::vector<double> blockInfluence(const Transformer& t, std::span<const int32_t> windows, int64_t context,
                                   Progress* progress = nullptr);

// A copy of `m` without `blocks` (indices, any order): their tensors are
// dropped, later blocks renumbered ("blocks.5." -> "blocks.4.", stored
// "model.layers.5." -> "model.layers.4."), config.layers reduced. Throws
// InvalidArgument for an index outside the model or for removing every block.
std::unique_ptr<Model> removeBlocks(const Model& m, std::vector<int> blocks);
// The logical name a tensor of the original model has after removeBlocks
// (empty when it was removed).
std::string renamedAfterRemoval(const std::string& logicalName, const std::vector<int>& removedSorted);

struct BlockRemovalResult {
    std::unique_ptr<Model> model;
    std::vector<double> influence;    // per block of the source
    std::vector<int> removed;         // ascending
    int64_t calibrationTokens = 0;
    double seconds = 0.0;
    // {"method": "shortgpt", "block_influence": [...], "removed": [...], "blocks_before", "blocks_after", ...}
    nlohmann::json toJson() const;
};

// BI on the calibration windows, then removeBlocks of the `blocks` lowest.
BlockRemovalResult removeBlocksByInfluence(const Model& source, const BlockRemovalOptions& options,
                                           std::span<const int32_t> calibrationTokens, Progress* progress = nullptr);

} // namespace ll
