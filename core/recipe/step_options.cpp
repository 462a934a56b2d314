#include "recipe/step_options.h"

#include "util/error.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

namespace ll {

namespace {

[[noreturn]] void bad(const std::string& message)
{
    fail(ErrorCode::InvalidArgument, "", message);
}

std::string upper(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

DType ggmlTypeFrom(const std::string& text)
{
    static const std::map<std::string, DType> kTypes{
        {"Q4_0", DType::Q4_0}, {"Q4_1", DType::Q4_1}, {"Q5_0", DType::Q5_0}, {"Q5_1", DType::Q5_1},
        {"Q8_0", DType::Q8_0}, {"Q2_K", DType::Q2_K}, {"Q3_K", DType::Q3_K}, {"Q4_K", DType::Q4_K},
        {"Q5_K", DType::Q5_K}, {"Q6_K", DType::Q6_K},
    };
    const auto it = kTypes.find(upper(text));
    if (it == kTypes.end())
        bad("type for ggml must be one of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K");
    return it->second;
}

// Bits each method defaults to (0: "bits" is required).
int defaultBits(QuantMethod m)
{
    switch (m) {
    case QuantMethod::SmoothQuant:
    case QuantMethod::Int8:
    case QuantMethod::Fp8:
        return 8;
    case QuantMethod::Nf4:
    case QuantMethod::Fp4:
    case QuantMethod::Ggml: // unused: the type decides
        return 4;
    default:
        return 0;
    }
}

NMPattern nmFrom(const std::string& text)
{
    const auto colon = text.find(':');
    if (colon == std::string::npos)
        bad("nm must look like 2:4 (N kept of every M)");
    char* end = nullptr;
    const long n = std::strtol(text.c_str(), &end, 10);
    if (end != text.c_str() + colon)
        bad("nm must look like 2:4 (N kept of every M)");
    const char* mStart = text.c_str() + colon + 1;
    const long m = std::strtol(mStart, &end, 10);
    if (end == mStart || *end != '\0' || n <= 0 || m <= n || m > 64)
        bad("nm N:M needs 0 < N < M <= 64");
    return {static_cast<int>(n), static_cast<int>(m)};
}

double fractionFrom(const ParamSource& p, const std::string& key, double fallback, const std::string& what,
                    bool closedAbove = true)
{
    const double x = p.doubleOr(key, fallback);
    if (!(x >= 0.0 && (closedAbove ? x <= 1.0 : x < 1.0)))
        bad(key + " must be " + what);
    return x;
}

} // namespace

std::string ParamSource::valueOr(const std::string& key, const std::string& fallback) const
{
    const auto v = value(key);
    return v ? *v : fallback;
}

long long ParamSource::intOr(const std::string& key, long long fallback, long long lo, long long hi) const
{
    const auto v = value(key);
    if (!v)
        return fallback;
    char* end = nullptr;
    const long long x = std::strtoll(v->c_str(), &end, 10);
    if (end == v->c_str() || *end != '\0' || x < lo || x > hi)
        bad(key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

double ParamSource::doubleOr(const std::string& key, double fallback) const
{
    const auto v = value(key);
    if (!v)
        return fallback;
    char* end = nullptr;
    const double x = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0' || !std::isfinite(x))
        bad(key + " must be a number");
    return x;
}

std::string canonicalKey(std::string key)
{
    std::replace(key.begin(), key.end(), '_', '-');
    return key;
}

JsonParams::JsonParams(const nlohmann::json& object) : object_(nlohmann::json::object())
{
    if (!object.is_object())
        bad("a step's parameters must be a mapping of names to values");
    for (const auto& [key, v] : object.items()) {
        if (!(v.is_string() || v.is_number() || v.is_boolean()))
            bad("parameter '" + key + "' must be a string, a number or true/false");
        object_[canonicalKey(key)] = v;
    }
}

std::optional<std::string> JsonParams::value(const std::string& key) const
{
    const auto it = object_.find(canonicalKey(key));
    if (it == object_.end() || it->is_boolean())
        return std::nullopt;
    if (it->is_string())
        return it->get<std::string>();
    if (it->is_number_integer())
        return std::to_string(it->get<long long>());
    // Shortest text that reads back as the same double.
    char buf[64];
    for (int precision = 15; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, it->get<double>());
        if (std::strtod(buf, nullptr) == it->get<double>())
            break;
    }
    return std::string(buf);
}

bool JsonParams::flag(const std::string& key) const
{
    const auto it = object_.find(canonicalKey(key));
    if (it == object_.end())
        return false;
    if (it->is_boolean())
        return it->get<bool>();
    bad(key + " must be true or false");
}

std::set<std::string> JsonParams::unknownKeys(const std::set<std::string>& known) const
{
    std::set<std::string> unknown;
    for (const auto& [key, v] : object_.items())
        if (!known.count(key))
            unknown.insert(key);
    return unknown;
}

const std::set<std::string>& quantizeKeys()
{
    static const std::set<std::string> s{"bits", "group", "sym", "act-order", "static-groups", "type", "blocksize", "damp",
                                         "alpha", "threshold", "topk", "outlier-columns", "outlier-fraction",
                                         "lorc-rank", "no-clip", "stats", "output-error"};
    return s;
}

const std::set<std::string>& pruneKeys()
{
    static const std::set<std::string> s{"sparsity", "nm", "structured", "ratio", "blocksize", "damp", "stats",
                                         "output-error"};
    return s;
}

const std::set<std::string>& factorizeKeys()
{
    static const std::set<std::string> s{"rank-ratio", "energy", "alpha", "stats", "output-error"};
    return s;
}

CalibrationOptions calibrationOptionsFrom(const ParamSource& p)
{
    CalibrationOptions c;
    c.context = p.intOr("calib-ctx", 256, 2, 1 << 20);
    c.windows = p.intOr("calib-windows", 64, 1, 1 << 20);
    return c;
}

StatsMode statsModeFrom(const ParamSource& p)
{
    const std::string s = p.valueOr("stats", "auto");
    if (s == "auto")
        return StatsMode::Auto;
    if (s == "sequential")
        return StatsMode::Sequential;
    if (s == "one-shot")
        return StatsMode::OneShot;
    bad("stats must be auto, sequential or one-shot");
}

QuantizeModelOptions quantizeOptionsFrom(const ParamSource& p)
{
    const std::string name = p.valueOr("method", "");
    const auto method = parseQuantMethod(name);
    if (!method)
        bad("quantization method must be rtn, gptq, awq, smoothquant, int8, owq, spqr, bcq, nf4, fp8, fp4 or ggml"
            + (name.empty() ? std::string() : " (not '" + name + "')"));
    QuantizeModelOptions o;
    QuantConfig& c = o.config;
    c.method = *method;
    const int fallback = defaultBits(c.method);
    if (!p.value("bits") && fallback == 0)
        bad("bits is required for " + name);
    const int bits = static_cast<int>(p.intOr("bits", fallback, c.method == QuantMethod::Bcq ? 1 : 2, 8));
    if ((c.method == QuantMethod::SmoothQuant || c.method == QuantMethod::Int8 || c.method == QuantMethod::Fp8) && bits != 8)
        bad(name + " quantizes to 8 bits");
    if ((c.method == QuantMethod::Nf4 || c.method == QuantMethod::Fp4) && bits != 4)
        bad(name + " quantizes to 4 bits");
    c.grid.bits = bits; // BCQ takes 1..8 planes; the integer grids 2..8
    c.grid.symmetric = p.flag("sym");
    c.grid.groupSize = static_cast<int>(p.intOr("group", c.method == QuantMethod::Fp4 ? 32 : 0, 0, 1 << 20));
    c.actOrder = p.flag("act-order");
    c.staticGroups = p.flag("static-groups");
    if (c.staticGroups && c.grid.groupSize == 0)
        bad("static-groups needs a group size (group G)");
    c.blockSize = static_cast<int>(p.intOr("blocksize", 128, 1, 1 << 20));
    c.percDamp = p.doubleOr("damp", 0.01);
    if (!(c.percDamp >= 0.0))
        bad("damp must be >= 0");
    c.smoothAlpha = fractionFrom(p, "alpha", 0.5, "in [0, 1]");
    c.int8Threshold = p.doubleOr("threshold", 6.0);
    c.int8TopK = static_cast<int>(p.intOr("topk", 0, 0, 1 << 20));
    c.owqColumns = p.intOr("outlier-columns", 0, 0, 1 << 20);
    c.spqrFraction = fractionFrom(p, "outlier-fraction", 0.01, "in [0, 1)", false);
    c.lorcRank = p.intOr("lorc-rank", 0, 0, 1 << 20);
    c.awqClip = !p.flag("no-clip");
    if (const auto type = p.value("type")) {
        if (c.method == QuantMethod::Ggml) {
            c.ggmlType = ggmlTypeFrom(*type);
        } else if (c.method == QuantMethod::Fp8) {
            const std::string t = upper(*type);
            if (t != "E4M3" && t != "E5M2")
                bad("type for fp8 must be E4M3 or E5M2");
            c.fp8Format = t == "E4M3" ? Fp8Format::E4M3 : Fp8Format::E5M2;
        } else {
            bad("type applies to method ggml (Q4_K, ...) and fp8 (E4M3, E5M2)");
        }
    }
    o.layers = p.valueOr("layers", "");
    o.mode = statsModeFrom(p);
    o.calibration = calibrationOptionsFrom(p);
    return o;
}

PruneStepOptions pruneOptionsFrom(const ParamSource& p)
{
    const std::string method = p.valueOr("method", "");
    if (method != "magnitude" && method != "wanda" && method != "sparsegpt")
        bad("pruning method must be magnitude, wanda or sparsegpt" + (method.empty() ? std::string() : " (not '" + method + "')"));
    PruneStepOptions o;
    const CalibrationOptions calibration = calibrationOptionsFrom(p);
    if (const auto structured = p.value("structured")) {
        if (*structured != "neurons" && *structured != "heads")
            bad("structured takes 'neurons' (MLP neurons) or 'heads' (attention KV groups: a KV head and its query "
                "heads); the same count in every block");
        const bool heads = *structured == "heads";
        if (p.value("sparsity") || p.value("nm") || p.value("layers"))
            bad("structured " + *structured + " takes ratio R (not sparsity, nm or layers)");
        if (method == "sparsegpt")
            bad("structured " + *structured + " scores units by magnitude or by Wanda's |W| * ||X||, not SparseGPT");
        if (p.value("blocksize") || p.value("damp"))
            bad("blocksize and damp belong to SparseGPT");
        const double ratio = fractionFrom(p, "ratio", 0.25, std::string("a fraction of ") + (heads ? "KV groups" : "neurons")
                                                                + " in [0, 1)", false);
        const StructuredScore score = method == "wanda" ? StructuredScore::ActivationAware : StructuredScore::Magnitude;
        o.needsCalibration = score == StructuredScore::ActivationAware;
        if (heads) {
            o.kind = PruneStepOptions::Kind::Heads;
            o.heads.ratio = ratio;
            o.heads.score = score;
            o.heads.calibration = calibration;
        } else {
            o.kind = PruneStepOptions::Kind::Neurons;
            o.neurons.ratio = ratio;
            o.neurons.score = score;
            o.neurons.calibration = calibration;
        }
        return o;
    }
    if (p.value("ratio"))
        bad("ratio belongs to structured neurons|heads");
    ModelPruneOptions& u = o.unstructured;
    u.layer.method = method == "magnitude" ? PruneMethod::Magnitude
                     : method == "wanda"   ? PruneMethod::Wanda
                                           : PruneMethod::SparseGpt;
    const bool haveSparsity = p.value("sparsity").has_value(), haveNM = p.value("nm").has_value();
    if (haveSparsity == haveNM)
        bad("give exactly one of sparsity S or nm N:M");
    if (haveNM)
        u.layer.nm = nmFrom(*p.value("nm"));
    else
        u.layer.sparsity = fractionFrom(p, "sparsity", 0.5, "a fraction in [0, 1]");
    if (method != "sparsegpt" && (p.value("blocksize") || p.value("damp")))
        bad("blocksize and damp belong to SparseGPT");
    u.layer.blockSize = static_cast<int>(p.intOr("blocksize", 128, 1, 1 << 20));
    u.layer.percDamp = p.doubleOr("damp", 0.01);
    if (!(u.layer.percDamp >= 0.0))
        bad("damp must be >= 0");
    u.layers = p.valueOr("layers", "");
    u.mode = statsModeFrom(p);
    u.calibration = calibration;
    o.needsCalibration = method != "magnitude";
    return o;
}

ModelFactorizeOptions factorizeOptionsFrom(const ParamSource& p)
{
    const std::string method = p.valueOr("method", "");
    ModelFactorizeOptions o;
    if (method == "svd")
        o.method = LowRankMethod::Svd;
    else if (method == "asvd")
        o.method = LowRankMethod::Asvd;
    else if (method == "svd-llm")
        o.method = LowRankMethod::Whitened;
    else
        bad("factorization method must be svd, asvd or svd-llm" + (method.empty() ? std::string() : " (not '" + method + "')"));
    const bool haveRatio = p.value("rank-ratio").has_value(), haveEnergy = p.value("energy").has_value();
    if (haveRatio == haveEnergy)
        bad("give exactly one of rank-ratio F or energy E");
    if (haveRatio)
        o.rankRatio = fractionFrom(p, "rank-ratio", 0.5, "a fraction in [0, 1] of min(out, in)");
    else
        o.energy = fractionFrom(p, "energy", 0.9, "a fraction in [0, 1] of the squared singular values");
    if (p.value("alpha") && o.method != LowRankMethod::Asvd)
        bad("alpha belongs to ASVD");
    o.asvdAlpha = p.doubleOr("alpha", 0.5);
    o.layers = p.valueOr("layers", "");
    o.mode = statsModeFrom(p);
    o.calibration = calibrationOptionsFrom(p);
    return o;
}

} // namespace ll
