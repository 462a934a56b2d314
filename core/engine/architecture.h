#pragma once
// What the forward pass does differently per family, decided once from the
// model's configuration (norm kind, gated MLP, positions, rotary layout ...).
#include "model/model.h"

#include <vector>

namespace ll {

enum class NormKind { Rms, RmsPlusOne, Layer }; // RmsPlusOne: Gemma scales by (1 + w)

struct RotarySpec {
    int64_t dims = 0;             // rotated leading dims of each head; 0 = no rotary
    bool interleaved = false;     // pairs (2i, 2i+1) (Meta/GGUF) instead of (i, i + dims/2) (HF)
    std::vector<float> invFreq;   // dims/2 angular frequencies, scaling already applied
};

struct Architecture {
    NormKind norm = NormKind::Rms;
    bool gatedMlp = true;             // down(act(gate x) * up x) instead of down(act(up x))
    Activation activation = Activation::Silu;
    bool learnedPositions = false;    // gpt2, opt
    int64_t positionOffset = 0;       // opt looks up row pos + 2
    float embedScale = 1.0f;          // gemma multiplies embeddings by sqrt(hidden)
    bool parallelResidual = false;    // gpt_neox: x + attn(ln1 x) + mlp(ln2 x)
    bool normBefore = true;           // false: opt-350m post-norm blocks
    int64_t slidingWindow = 0;        // mistral; 0 = full causal attention
    bool scaleAttnByLayer = false;    // gpt2 scale_attn_by_inverse_layer_idx
    float attnScale = 1.0f;           // 1 / sqrt(head_dim)
    RotarySpec rotary;
};

// llama.cpp's rope_freqs.weight (Llama 3 GGUFs, convert_hf_to_gguf.py): each of the
// dims / 2 rotary frequencies divided by its factor. Throws Malformed naming `source`
// unless there are dims / 2 positive, finite factors.
void applyRopeFreqFactors(RotarySpec& rotary, const std::vector<float>& factors, const std::string& source);

// Throws Error(UnsupportedArch) for unknown families and rotary scalings LayerLab does not implement.
Architecture architectureOf(const ModelConfig& config, const nlohmann::json& metadata = {},
                            const std::string& source = {});

} // namespace ll
