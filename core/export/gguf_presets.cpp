#include "export/gguf_presets.h"

#include "util/text.h"

#include "export/gguf_export.h"
#include "util/error.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>

namespace ll {

namespace {

using P = GgufPreset;

std::string typeName(DType t) { return std::string(dtypeName(t)); }

// llama-quantize's use_more_bits: the first and last eighth of the blocks and every third block between.
bool useMoreBits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

const char* kMoreBits = "one of the blocks that get more bits (the first and last eighth, every third between)";

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool endsWith(const std::string& s, const std::string& tail)
{
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// ggml_n_dims: dimensions up to the last one above 1 (a one-row matrix is 1-D to ggml).
int ggmlDims(const std::vector<int64_t>& shape)
{
    int dims = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) // shape is outermost first: ne[k] = shape[size - 1 - k]
        if (shape[i] > 1) {
            dims = static_cast<int>(shape.size() - i);
            break;
        }
    return dims;
}

// llama_model_quantize_impl's test of which tensors it quantizes (the names of
// every architecture it lists, although a llama export has only some of them).
bool llamaQuantizes(const GgufPresetTensor& t)
{
    const std::string& n = t.name;
    if (!endsWith(n, "weight") || ggmlDims(t.shape) < 2 || contains(n, "_norm.weight"))
        return false;
    for (const char* kept : {"ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight", "time_mix_w1.weight",
                             "time_mix_w2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
                             "time_mix_lerp_fused.weight", "attn_rel_b.weight"})
        if (contains(n, kept))
            return false;
    return n != "position_embd.weight" && n != "token_types.weight";
}

// The block of "blk.N...." or -1, as llama_model_loader's weight_name_comparer reads it.
int blockOf(const std::string& name)
{
    int block = -1;
    std::sscanf(name.c_str(), "blk.%d.", &block);
    return block;
}

// The order llama-quantize visits tensors in (its weights_map): by block (others first), then by name.
std::vector<size_t> llamaOrder(const std::vector<GgufPresetTensor>& tensors)
{
    std::vector<size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const int la = blockOf(tensors[a].name), lb = blockOf(tensors[b].name);
        return la != lb ? la < lb : tensors[a].name < tensors[b].name;
    });
    return order;
}

// llama_tensor_get_type before its fallback, for LLM_ARCH_LLAMA without experts
// and without an importance matrix: the branches of the presets in ggufPresets().
struct Rules {
    P preset;
    DType base;
    int64_t layers, gqa;
    bool hasOutput, is70B;
    bool imatrix = false; // llama.cpp's qs.has_imatrix
    int64_t attnV = 0, nAttnV = 0, ffnDown = 0;

    DType choose(const GgufPresetTensor& t, std::string& rule)
    {
        const std::string& name = t.name;
        DType type = base;
        auto set = [&](DType to, std::string why) {
            type = to;
            rule = std::move(why);
        };
        if (name == "output.weight" || (!hasOutput && name == "token_embd.weight")) {
            const char* what = name == "output.weight" ? "the output layer" : "the embedding, which is also the output layer";
            const int64_t qk = dtypeLayout(base).blockElems;
            if (t.shape.back() % qk != 0)
                set(DType::Q8_0, std::string(what) + ", whose rows of " + std::to_string(t.shape.back())
                                     + " values do not fill " + typeName(base) + "'s " + std::to_string(qk) + "-value blocks");
            else if (base != DType::Q8_0)
                set(DType::Q6_K, what);
        } else if (name == "token_embd.weight") {
            // no rule for these presets
        } else if (contains(name, "attn_v.weight")) {
            if (preset == P::Q2_K)
                set(gqa >= 4 ? DType::Q4_K : DType::Q3_K, "attn_v (n_gqa " + std::to_string(gqa) + (gqa >= 4 ? " >= 4)" : " < 4)"));
            else if (preset == P::Q3_K_M)
                set(attnV < 2 ? DType::Q5_K : DType::Q4_K, attnV < 2 ? "attn_v of the first 2 blocks" : "attn_v");
            else if (preset == P::Q3_K_L)
                set(DType::Q5_K, "attn_v");
            else if (preset == P::IQ4_NL && gqa >= 4)
                set(DType::Q5_K, "attn_v (n_gqa " + std::to_string(gqa) + " >= 4)");
            else if ((preset == P::Q4_K_M || preset == P::Q5_K_M) && useMoreBits(attnV, nAttnV))
                set(DType::Q6_K, "attn_v in " + std::string(kMoreBits));
            else if (preset == P::Q4_K_S && attnV < 4)
                set(DType::Q5_K, "attn_v of the first 4 blocks");
            // llama.cpp's LLM_TYPE_70B: the 80-block llama with grouped-query attention
            if (is70B && (type == DType::Q3_K || type == DType::Q4_K))
                set(DType::Q5_K, "attn_v of a 70B model (80 blocks, grouped-query attention)");
            ++attnV;
        } else if (contains(name, "attn_k.weight") || contains(name, "attn_q.weight")) {
            // only the IQ3 presets and 8-expert models change these
        } else if (contains(name, "ffn_down")) {
            const int64_t i = ffnDown, n = layers;
            if (preset == P::Q2_K)
                set(DType::Q3_K, "ffn_down");
            else if (preset == P::Q3_K_M)
                set(i < n / 16 ? DType::Q5_K : DType::Q4_K, i < n / 16 ? "ffn_down of the first sixteenth of the blocks" : "ffn_down");
            else if (preset == P::Q3_K_L)
                set(DType::Q5_K, "ffn_down");
            else if (preset == P::Q4_K_M) {
                if (useMoreBits(i, n))
                    set(DType::Q6_K, "ffn_down in " + std::string(kMoreBits));
            } else if (i < n / 8 && preset == P::IQ4_NL && !imatrix)
                set(DType::Q5_K, "ffn_down of the first eighth of the blocks (no imatrix)");
            else if (preset == P::Q5_K_M && useMoreBits(i, n))
                set(DType::Q6_K, "ffn_down in " + std::string(kMoreBits));
            else if (preset == P::Q4_K_S && i < n / 8)
                set(DType::Q5_K, "ffn_down of the first eighth of the blocks");
            ++ffnDown;
        } else if (contains(name, "attn_output.weight")) {
            if (preset == P::Q2_K)
                set(DType::Q3_K, "attn_output");
            else if (preset == P::Q3_K_M)
                set(DType::Q4_K, "attn_output");
            else if (preset == P::Q3_K_L)
                set(DType::Q5_K, "attn_output");
        } else if (contains(name, "attn_qkv.weight")) {
            if (preset == P::Q3_K_M || preset == P::Q3_K_L)
                set(DType::Q4_K, "attn_qkv");
            else if (preset == P::Q4_K_M)
                set(DType::Q5_K, "attn_qkv");
            else if (preset == P::Q5_K_M)
                set(DType::Q6_K, "attn_qkv");
        }
        return type;
    }
};

} // namespace

const std::vector<GgufPresetInfo>& ggufPresets()
{
    static const std::vector<GgufPresetInfo> presets{
        {P::Q4_K_M, "Q4_K_M", 15, DType::Q4_K, "Q4_K; Q6_K for half of attn_v and ffn_down and the output (recommended)"},
        {P::Q4_K_S, "Q4_K_S", 14, DType::Q4_K, "Q4_K; Q5_K for the first attn_v and ffn_down, Q6_K output"},
        {P::Q5_K_M, "Q5_K_M", 17, DType::Q5_K, "Q5_K; Q6_K for half of attn_v and ffn_down and the output"},
        {P::Q5_K_S, "Q5_K_S", 16, DType::Q5_K, "Q5_K; Q6_K output"},
        {P::Q6_K, "Q6_K", 18, DType::Q6_K, "Q6_K everywhere"},
        {P::Q8_0, "Q8_0", 7, DType::Q8_0, "Q8_0 everywhere"},
        {P::Q3_K_L, "Q3_K_L", 13, DType::Q3_K, "Q3_K; Q5_K attn_v, attn_output and ffn_down, Q6_K output"},
        {P::Q3_K_M, "Q3_K_M", 12, DType::Q3_K, "Q3_K; Q4_K/Q5_K attn_v, attn_output and ffn_down, Q6_K output"},
        {P::Q3_K_S, "Q3_K_S", 11, DType::Q3_K, "Q3_K; Q6_K output"},
        {P::Q2_K, "Q2_K", 10, DType::Q2_K, "Q2_K; Q3_K/Q4_K attn_v, Q3_K attn_output and ffn_down, Q6_K output"},
        {P::IQ4_NL, "IQ4_NL", 25, DType::IQ4_NL, "IQ4_NL; Q5_K for attn_v (n_gqa >= 4) and the first ffn_down, Q6_K output"},
    };
    return presets;
}

const GgufPresetInfo& ggufPresetInfo(GgufPreset p)
{
    for (const auto& info : ggufPresets())
        if (info.preset == p)
            return info;
    fail(ErrorCode::InvalidArgument, "", "unknown GGUF preset");
}

std::optional<GgufPreset> ggufPresetNamed(std::string_view name)
{
    const std::string u = asciiUpper(name);
    for (const auto& info : ggufPresets())
        if (u == info.name)
            return info.preset;
    return std::nullopt;
}

std::string ggufPresetRefusal(std::string_view name)
{
    // llama-quantize's other presets and the types they need that LayerLab does not write.
    struct Refused {
        const char* name;
        const char* types;
    };
    static const Refused kRefused[] = {
        {"IQ1_S", "IQ1_S and IQ2_XXS"}, {"IQ1_M", "IQ1_M and IQ2_XXS"}, {"IQ2_XXS", "IQ2_XXS"},
        {"IQ2_XS", "IQ2_XS"},           {"IQ2_S", "IQ2_XS and IQ3_S"},  {"IQ2_M", "IQ2_S and IQ3_S"},
        {"IQ3_XXS", "IQ3_XXS, IQ3_S and IQ2_S"}, {"IQ3_XS", "IQ3_S and IQ3_XXS"}, {"IQ3_S", "IQ3_S"},
        {"IQ3_M", "IQ3_S"},             {"IQ4_XS", "IQ4_XS"},           {"TQ1_0", "TQ1_0"},
        {"TQ2_0", "TQ2_0"},
    };
    const std::string u = asciiUpper(name);
    if (u == "Q2_K_S")
        return "llama-quantize's Q2_K_S needs an importance matrix (it refuses to write Q2_K weights without one), "
               "which LayerLab's export does not use; Q2_K is the nearest preset";
    for (const auto& r : kRefused)
        if (u == r.name)
            return std::string("llama-quantize's ") + r.name + " is made of " + r.types
                   + " blocks, which LayerLab does not write";
    return "";
}

std::vector<GgufTypeChoice> chooseGgufPresetTypes(GgufPreset preset, const GgufPresetModel& model,
                                                  const std::vector<GgufPresetTensor>& tensors)
{
    const GgufPresetInfo& info = ggufPresetInfo(preset);
    Rules rules{preset, info.base, model.layers, model.kvHeads > 0 ? model.heads / model.kvHeads : 0, false,
                model.layers == 80 && model.heads != model.kvHeads, model.imatrix};
    for (const auto& t : tensors) {
        if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") || contains(t.name, "attn_kv_b.weight"))
            ++rules.nAttnV;
        rules.hasOutput = rules.hasOutput || t.name == "output.weight";
    }
    std::vector<GgufTypeChoice> out(tensors.size());
    for (size_t i : llamaOrder(tensors)) {
        const GgufPresetTensor& t = tensors[i];
        GgufTypeChoice& c = out[i];
        if (!llamaQuantizes(t))
            continue;
        c.quantized = true;
        c.chosen = rules.choose(t, c.rule);
        c.type = ggufTypeFor(c.chosen, t.shape.back(), &c.fallback);
    }
    return out;
}

} // namespace ll
