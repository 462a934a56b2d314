#pragma once
// How big a model is, answered once. The model tree, the status bar, Compare,
// the cost model and the quick-compress dialog all show these figures, so they
// cannot contradict each other:
//   - a tied tensor (an LM head sharing the embedding) costs nothing of its own;
//   - a part of a fused tensor (GPT-2's c_attn, Phi-3's qkv_proj) costs its share;
//   - an edited tensor costs its form as held: a packed grid's or ggml type's
//     bytes, a factored layer's two factors, pruned values in their type;
//   - a method whose format LayerLab still holds as F32 values (NF4 blocks
//     that straddle rows) costs its format's bits per weight, marked nominal.
// What a file written from the model will take is exportGguf's plan
// (export/gguf_export.h: estimateGgufExport, exact to the byte).
#include "recipe/apply.h"

#include <cstdint>
#include <string>

namespace ll {

struct TensorSize {
    uint64_t bytes = 0;
    int64_t parameters = 0;   // values held: k (out + in) when factored; 0 when tied
    std::string type;         // "F32", "Q4_K", "4-bit grid", "3-bit BCQ", "factored F32"
    bool nominal = false;     // bytes from the method's bits per weight, not the values held
};
TensorSize tensorSize(const CompressionState& state, const LogicalTensor& t);

struct ModelSize {
    uint64_t bytes = 0;       // every logical tensor's tensorSize
    int64_t parameters = 0;   // a tied head counted once (Model::uniqueParameterCount)
};
ModelSize modelSize(const CompressionState& state);

} // namespace ll
