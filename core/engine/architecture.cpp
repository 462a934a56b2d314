#include "engine/architecture.h"

#include "util/error.h"
#include "util/json_util.h"

#include <cmath>
#include <cstdio>

namespace ll {

namespace {

// The HF rotary scaling block: transformers 5 "rope_parameters", 4.x "rope_scaling".
nlohmann::json ropeScalingOf(const nlohmann::json& meta)
{
    if (!meta.is_object())
        return {};
    for (const char* key : {"rope_parameters", "rope_scaling"})
        if (meta.contains(key) && meta[key].is_object())
            return meta[key];
    return {};
}

std::string ropeTypeOf(const nlohmann::json& scaling)
{
    for (const char* key : {"rope_type", "type"})
        if (scaling.contains(key) && scaling[key].is_string())
            return scaling[key].get<std::string>();
    return "default";
}

std::string numberText(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// A rope scaling number that divides frequencies: finite and positive.
double positiveFactor(const nlohmann::json& s, const char* key, double fallback, const std::string& src)
{
    const double v = jsonNumber(s, key, fallback, src);
    if (!(v > 0.0) || !std::isfinite(v))
        fail(ErrorCode::Malformed, src, std::string("rope scaling: ") + key + " is " + numberText(v) + "; it must be a finite number above 0");
    return v;
}

// inv_freq[i] = theta^(-2i/dims), in float like the reference implementations.
std::vector<float> baseFrequencies(int64_t dims, double theta)
{
    std::vector<float> f(static_cast<size_t>(dims / 2));
    for (int64_t i = 0; i < dims / 2; ++i)
        f[static_cast<size_t>(i)] = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(dims)));
    return f;
}

// Llama 3.x: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
void applyLlama3Scaling(std::vector<float>& invFreq, const nlohmann::json& s, const std::string& src)
{
    const double factor = positiveFactor(s, "factor", 8.0, src);
    const double lowFactor = positiveFactor(s, "low_freq_factor", 1.0, src);
    const double highFactor = positiveFactor(s, "high_freq_factor", 4.0, src);
    const double oldContext = positiveFactor(s, "original_max_position_embeddings", 8192.0, src);
    if (!(highFactor > lowFactor))
        fail(ErrorCode::Malformed, src, "rope scaling: high_freq_factor must be above low_freq_factor");
    const double lowWavelen = oldContext / lowFactor;
    const double highWavelen = oldContext / highFactor;
    for (float& f : invFreq) {
        const double wavelen = 2.0 * M_PI / f;
        if (wavelen > lowWavelen) {
            f = static_cast<float>(f / factor);
        } else if (wavelen >= highWavelen) {
            const double smooth = (oldContext / wavelen - lowFactor) / (highFactor - lowFactor);
            f = static_cast<float>((1.0 - smooth) * f / factor + smooth * f);
        }
    }
}

RotarySpec rotaryOf(const ModelConfig& c, const nlohmann::json& meta, const std::string& src)
{
    RotarySpec r;
    r.dims = static_cast<int64_t>(std::floor(static_cast<double>(c.headDim) * c.partialRotary + 1e-9));
    r.dims -= r.dims % 2;
    if (r.dims <= 0 || r.dims > c.headDim)
        fail(ErrorCode::UnsupportedArch, src, "rotary dimension " + std::to_string(r.dims) + " does not fit head size "
                                                  + std::to_string(c.headDim));
    r.interleaved = c.ropeInterleaved;
    // theta <= 1 (0, negative, denormal) gives infinite or NaN frequencies;
    // every released model uses 10^4 .. 10^7.
    if (!(c.ropeTheta > 1.0) || !std::isfinite(c.ropeTheta))
        fail(ErrorCode::Malformed, src, "the rotary base (rope_theta / rope.freq_base) is " + numberText(c.ropeTheta)
                                            + "; it must be a finite number above 1");
    r.invFreq = baseFrequencies(r.dims, c.ropeTheta);
    nlohmann::json scaling = ropeScalingOf(meta);
    // A GGUF says it with llama.cpp's keys: {arch}.rope.scaling.type / .factor.
    if (!scaling.is_object() && meta.is_object() && meta.contains("general.architecture")
        && meta["general.architecture"].is_string()) {
        const std::string p = meta["general.architecture"].get<std::string>() + ".rope.scaling.";
        if (meta.contains(p + "type") && meta[p + "type"].is_string() && meta[p + "type"].get<std::string>() != "none")
            scaling = {{"rope_type", meta[p + "type"]}, {"factor", meta.value(p + "factor", nlohmann::json(1.0))}};
    }
    const std::string type = scaling.is_object() ? ropeTypeOf(scaling) : "default";
    if (type == "linear") {
        const double factor = positiveFactor(scaling, "factor", 1.0, src);
        for (float& f : r.invFreq)
            f = static_cast<float>(f / factor);
    } else if (type == "llama3") {
        applyLlama3Scaling(r.invFreq, scaling, src);
    } else if (type != "default") {
        fail(ErrorCode::UnsupportedArch, src, "rotary scaling \"" + type + "\" is not supported (default, linear, llama3 are)");
    }
    return r;
}

} // namespace

void applyRopeFreqFactors(RotarySpec& r, const std::vector<float>& factors, const std::string& src)
{
    if (static_cast<int64_t>(factors.size()) != r.dims / 2)
        fail(ErrorCode::Malformed, src,
             "rope_freqs.weight has " + std::to_string(factors.size()) + " values; the rotary dimension "
                 + std::to_string(r.dims) + " needs " + std::to_string(r.dims / 2));
    for (size_t i = 0; i < factors.size(); ++i) {
        if (!(factors[i] > 0.0f) || !std::isfinite(factors[i]))
            fail(ErrorCode::Malformed, src, "rope_freqs.weight value " + std::to_string(i) + " is not a positive factor");
        r.invFreq[i] /= factors[i];
    }
}

Architecture architectureOf(const ModelConfig& c, const nlohmann::json& meta, const std::string& src)
{
    if (c.family == Family::Unknown)
        fail(ErrorCode::UnsupportedArch, src,
             "cannot run model type \"" + c.modelType + "\" (supported: llama, mistral, qwen2, gemma, phi3, gpt2, opt, gpt_neox)");
    Architecture a;
    a.activation = c.activation;
    if (c.headDim <= 0 || c.heads <= 0 || c.kvHeads <= 0 || c.heads % c.kvHeads != 0)
        fail(ErrorCode::Malformed, src, "the model's head configuration is inconsistent");
    a.attnScale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.headDim)));
    switch (c.family) {
    case Family::Llama:
    case Family::Mistral:
    case Family::Qwen2:
    case Family::Phi3:
        a.norm = NormKind::Rms;
        a.rotary = rotaryOf(c, meta, src);
        if (c.family == Family::Mistral && meta.is_object() && meta.contains("sliding_window"))
            a.slidingWindow = jsonInt(meta, "sliding_window", 0, 0, int64_t{1} << 40, src);
        break;
    case Family::Gemma:
        a.norm = NormKind::RmsPlusOne;
        a.rotary = rotaryOf(c, meta, src);
        // The reference rounds sqrt(hidden) to the compute dtype first.
        a.embedScale = static_cast<float>(std::sqrt(static_cast<double>(c.hidden)));
        break;
    case Family::Gpt2:
        a.norm = NormKind::Layer;
        a.gatedMlp = false;
        a.learnedPositions = true;
        a.scaleAttnByLayer = meta.is_object() && jsonBool(meta, "scale_attn_by_inverse_layer_idx", false, src);
        break;
    case Family::Opt:
        a.norm = NormKind::Layer;
        a.gatedMlp = false;
        a.learnedPositions = true;
        a.positionOffset = c.positionOffset;
        a.normBefore = c.normBefore;
        break;
    case Family::GptNeoX:
        a.norm = NormKind::Layer;
        a.gatedMlp = false;
        a.parallelResidual = c.parallelResidual;
        a.rotary = rotaryOf(c, meta, src);
        break;
    case Family::Unknown:
        break;
    }
    return a;
}

} // namespace ll
