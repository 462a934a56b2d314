// The kv-cache action's registry entries. Nothing in the model changes: the
// step records a KvCacheQuantization (engine/kv_quant.h) that every engine
// built from the state simulates; recipe/apply.cpp runs it.
#include "methods/method_spec.h"

namespace ll {

namespace {

ParamSpec bitsParam(const char* defaultBits)
{
    ParamSpec bits{"bits", ParamType::Int, "Bits", "bits of the cached keys and values", 2, 8};
    bits.defaultValue = defaultBits;
    bits.presets = {{"2", "2 bits"}, {"3", "3 bits"}, {"4", "4 bits"}, {"8", "8 bits"}};
    return bits;
}

ParamSpec valueBitsParam()
{
    ParamSpec v{"value-bits", ParamType::Int, "Value bits", "bits of the cached values when they differ from the keys'",
                2, 8};
    v.advanced = true;
    return v;
}

} // namespace

const MethodSpec& kiviMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::KvCache;
        m.id = "kivi";
        m.name = "KIVI (keys per channel, values per token)";
        m.teaching = {"Quantizes the KV cache: each key channel over a group of positions shares a scale and zero "
                      "(keys have outlier channels), each value token over a group of channels does (values do "
                      "not). The most recent positions stay in full precision, so the tokens a query attends to "
                      "most are exact. No calibration data; the weights are not touched.",
                      "K̂[t, c] = round((K[t, c] − min) / s)·s + min over the group's positions t of channel c, "
                      "V̂ likewise over a token's group of channels; s = (max − min) / (2<sup>b</sup> − 1). A query "
                      "at position p reads quantized keys before ⌊p / R⌋·R and quantized values before p − R.",
                      "long contexts, where the KV cache outgrows the weights (a 7B model at 32k positions holds "
                      "16 GB of F16 cache). 4 bits is nearly free; 2 bits costs a little perplexity.",
                      "Liu et al., 2024, KIVI (arXiv:2402.02750)"};
        ParamSpec group{"group", ParamType::Int, "Group", "positions per key group (each channel), channels per value group",
                        1, 4096};
        group.defaultValue = "32";
        group.presets = {{"32", "32"}, {"64", "64"}, {"128", "128"}};
        ParamSpec residual{"residual", ParamType::Int, "Full-precision window",
                           "recent positions kept in full precision (a multiple of the group)", 1, 1 << 20};
        residual.defaultValue = "128";
        residual.presets = {{"32", "32 positions"}, {"64", "64 positions"}, {"128", "128 positions"}};
        m.params = {bitsParam("2"), group, residual, valueBitsParam()};
        return m;
    }();
    return spec;
}

const MethodSpec& llmQatKvMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::KvCache;
        m.id = "llm-qat";
        m.name = "Per-token KV (LLM-QAT's MinMax)";
        m.teaching = {"Quantizes every cached key and value per token and head with a symmetric absmax scale, "
                      "the plain scheme LLM-QAT trains for. Every position is quantized, the newest one included.",
                      "x̂ = round(x / α · (2<sup>b−1</sup> − 1)) · α / (2<sup>b−1</sup> − 1), α = max |x| over the "
                      "token's head.",
                      "a baseline for KIVI: at 4 bits and below, keys' outlier channels make per-token ranges wide.",
                      "Liu et al., 2023, LLM-QAT (arXiv:2305.17888)"};
        m.params = {bitsParam("4"), valueBitsParam()};
        return m;
    }();
    return spec;
}

} // namespace ll
