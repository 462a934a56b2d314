#pragma once
// What a compressed model costs, for the Compare view: parameters, an
// estimate of its size in bytes (quantized linears at their bits per weight,
// the rest at their stored type), the compression ratio against the source,
// and the multiply-adds per token of a forward pass.
#include "recipe/apply.h"

#include <cstdint>

namespace ll {

struct ModelCost {
    int64_t parameters = 0;          // Model::parameterCount() (factored layers as k (out + in))
    double bytes = 0.0;              // estimated storage
    double sourceBytes = 0.0;        // the source model's stored bytes
    double compressionRatio = 0.0;   // sourceBytes / bytes
    double bitsPerWeight = 0.0;      // over the block linears (CompressionState::linearBitsPerWeight)
    // FLOPs per generated token at `context` tokens of history (2 per multiply-add):
    // every linear (factored: k (out + in); pruned weights still counted, as a
    // dense kernel computes them), attention scores and values over the
    // context, and the LM head. Norms and activations are left out (< 1 %).
    double flopsPerToken = 0.0;
    double denseFlopsPerToken = 0.0; // the same for the source model
};

ModelCost estimateCost(const CompressionState& state, int64_t context);

} // namespace ll
