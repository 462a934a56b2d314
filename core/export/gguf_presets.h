#pragma once
// llama.cpp's named quantization presets (llama-quantize's Q4_K_M, Q3_K_S, ...):
// the type each tensor of a llama model gets, chosen exactly as llama-quantize
// does without an importance matrix (llama_tensor_get_type and
// llama_model_quantize_impl in llama.cpp's src/llama-quant.cpp, commit c392e50):
// output.weight (or the embedding when the head is tied) in Q6_K, more bits for
// attn_v and ffn_down in some blocks, attn_output in some presets, the n_gqa
// rule for attn_v, then the fallback of rows that do not hold whole blocks.
// Only presets made of types LayerLab writes are here; the others are named so
// that they can be refused with a reason (ggufPresetRefusal).
#include "model/dtype.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ll {

enum class GgufPreset { Q4_K_M, Q4_K_S, Q5_K_M, Q5_K_S, Q6_K, Q8_0, Q3_K_L, Q3_K_M, Q3_K_S, Q2_K, IQ4_NL };

struct GgufPresetInfo {
    GgufPreset preset;
    const char* name;       // llama-quantize's name, "Q4_K_M"
    uint32_t fileType;      // llama_ftype, written as general.file_type
    DType base;             // llama-quantize's default_type: what a tensor gets when no rule applies
    const char* summary;    // one line for usage texts and tooltips
};

// Every preset, in the order shown to users (Q4_K_M, the recommended one, first).
const std::vector<GgufPresetInfo>& ggufPresets();
const GgufPresetInfo& ggufPresetInfo(GgufPreset p);
// Case-insensitive, as llama-quantize reads them. Only the exact preset names:
// llama-quantize's aliases Q3_K, Q4_K and Q5_K (for Q3_K_M, Q4_K_M, Q5_K_M) are
// LayerLab's single types.
std::optional<GgufPreset> ggufPresetNamed(std::string_view name);
// Why LayerLab cannot write llama-quantize's preset `name` (its IQ1/IQ2/IQ3/IQ4_XS/TQ
// types, or Q2_K_S's required importance matrix); empty when `name` is no such preset.
std::string ggufPresetRefusal(std::string_view name);

// The model's hyper-parameters as the GGUF states them (llama-quantize reads them there).
struct GgufPresetModel {
    int64_t layers = 0;     // block_count
    int64_t heads = 0;      // attention.head_count
    int64_t kvHeads = 0;    // attention.head_count_kv
    bool imatrix = false;   // quantized with an importance matrix (some rules differ)
};

// One tensor of the output file: llama.cpp's name and the row-major shape.
struct GgufPresetTensor {
    std::string name;
    std::vector<int64_t> shape;
};

struct GgufTypeChoice {
    bool quantized = false;   // false: llama-quantize leaves it as it is (norms, 1-D tensors): written F32
    DType chosen = DType::F32;  // the preset's choice before the row-length fallback
    DType type = DType::F32;    // what is written
    std::string rule;         // why `chosen` is not the preset's base type; empty when it is
    std::string fallback;     // why `type` differs from `chosen`; empty when it does not
};

// The type of every tensor (same order as `tensors`) under `preset`. llama-quantize
// counts attn_v and ffn_down in the order it reads tensors (by block, then by
// name), so the whole list is needed. Rows that fit no block of the fallback
// type either become F16 (where llama-quantize stops with "Unsupported tensor size").
std::vector<GgufTypeChoice> chooseGgufPresetTypes(GgufPreset preset, const GgufPresetModel& model,
                                                  const std::vector<GgufPresetTensor>& tensors);

} // namespace ll
