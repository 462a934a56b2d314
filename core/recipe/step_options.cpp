#include "recipe/step_options.h"

#include "methods/method_registry.h"
#include "util/error.h"

#include <cstdlib>

namespace ll {

namespace {

[[noreturn]] void bad(const std::string& message)
{
    fail(ErrorCode::InvalidArgument, "", message);
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

} // namespace

const std::set<std::string>& quantizeKeys()
{
    static const std::set<std::string> s = actionParamKeys(StepAction::Quantize);
    return s;
}

const std::set<std::string>& pruneKeys()
{
    static const std::set<std::string> s = actionParamKeys(StepAction::Prune);
    return s;
}

const std::set<std::string>& factorizeKeys()
{
    static const std::set<std::string> s = actionParamKeys(StepAction::Factorize);
    return s;
}

const std::set<std::string>& rotateKeys()
{
    static const std::set<std::string> s = actionParamKeys(StepAction::Rotate);
    return s;
}

RotationOptions rotationOptionsFrom(const ParamSource& p)
{
    const MethodSpec& spec = requireMethodSpec(StepAction::Rotate, p.valueOr("method", ""));
    const ParamValues v = readMethodParams(spec, p);
    if (p.has("layers"))
        bad("a rotation applies to the whole model: it takes no layers");
    RotationOptions o;
    o.seed = static_cast<uint64_t>(v.integer("seed"));
    o.onlineDown = v.flag("online");
    return o;
}

const std::set<std::string>& kvCacheKeys()
{
    static const std::set<std::string> s = actionParamKeys(StepAction::KvCache);
    return s;
}

KvCacheQuantization kvCacheOptionsFrom(const ParamSource& p)
{
    const MethodSpec& spec = requireMethodSpec(StepAction::KvCache, p.valueOr("method", ""));
    const ParamValues v = readMethodParams(spec, p);
    if (p.has("layers"))
        bad("a KV-cache quantization applies to every block's cache: it takes no layers");
    KvCacheQuantization q;
    q.method = spec.id;
    q.keyBits = static_cast<int>(v.integer("bits"));
    q.valueBits = v.contains("value-bits") ? static_cast<int>(v.integer("value-bits")) : q.keyBits;
    if (spec.id == "kivi") {
        q.group = v.integer("group");
        q.residual = v.integer("residual");
        if (q.residual % q.group != 0)
            bad("residual (" + std::to_string(q.residual) + ") must be a multiple of group (" + std::to_string(q.group) + ")");
    } else {
        q.keysPerChannel = false;
        q.symmetric = true;
        q.group = 0;     // the whole head
        q.residual = 0;  // every position quantized
    }
    return q;
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
    const MethodSpec& spec = requireMethodSpec(StepAction::Quantize, p.valueOr("method", ""));
    const ParamValues v = readMethodParams(spec, p);
    QuantizeModelOptions o;
    QuantConfig& c = o.config;
    c.method = spec.id;
    c.params = v;
    // The grid parameters every integer-grid method shares; the rest is the method's own (configure).
    if (v.contains("bits"))
        c.grid.bits = static_cast<int>(v.integer("bits"));
    if (v.contains("group"))
        c.grid.groupSize = static_cast<int>(v.integer("group"));
    if (v.contains("sym"))
        c.grid.symmetric = v.flag("sym");
    if (v.contains("lorc-rank"))
        c.lorcRank = v.integer("lorc-rank");
    if (v.contains("eora-rank"))
        c.eoraRank = v.integer("eora-rank");
    if (spec.configure)
        spec.configure(v, c);
    o.layers = p.valueOr("layers", "");
    o.mode = statsModeFrom(p);
    o.calibration = calibrationOptionsFrom(p);
    return o;
}

PruneStepOptions pruneOptionsFrom(const ParamSource& p)
{
    const MethodSpec& spec = requireMethodSpec(StepAction::Prune, p.valueOr("method", ""));
    const ParamValues v = readMethodParams(spec, p);
    const std::string& method = spec.id;
    PruneStepOptions o;
    const CalibrationOptions calibration = calibrationOptionsFrom(p);
    if (method == "slicegpt") {
        if (p.value("layers"))
            bad("SliceGPT slices the hidden size of the whole model: it takes slicing S (not layers)");
        o.kind = PruneStepOptions::Kind::Hidden;
        o.slice.slicing = v.real("slicing");
        o.slice.calibration = calibration;
        o.needsCalibration = true;
        return o;
    }
    if (method == "flap") {
        if (p.value("layers"))
            bad("FLAP removes the same heads and neurons count from every block: it takes ratio R (not layers)");
        o.kind = PruneStepOptions::Kind::Flap;
        o.flap.ratio = v.real("ratio");
        o.flap.structure = v.text("structure") == "uniform" ? FlapOptions::Structure::Uniform : FlapOptions::Structure::Adaptive;
        o.flap.compensate = !v.flag("no-bias");
        o.flap.calibration = calibration;
        o.needsCalibration = true;
        return o;
    }
    if (method == "shortgpt") {
        if (p.value("layers"))
            bad("ShortGPT removes whole blocks chosen by their influence: it takes blocks N (not layers)");
        o.kind = PruneStepOptions::Kind::Blocks;
        o.blocks.blocks = v.integer("blocks");
        o.blocks.calibration = calibration;
        o.needsCalibration = true;
        return o;
    }
    if (v.contains("structured")) {
        const std::string& unit = v.text("structured");
        const bool heads = unit == "heads";
        if (p.value("layers"))
            bad("structured " + unit + " takes ratio R (not layers): the same count in every block");
        const double ratio = v.real("ratio");
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
    ModelPruneOptions& u = o.unstructured;
    u.layer.method = method == "magnitude" ? PruneMethod::Magnitude
                     : method == "wanda"   ? PruneMethod::Wanda
                                           : PruneMethod::SparseGpt;
    if (v.contains("sparsity") == v.contains("nm"))
        bad("give exactly one of sparsity S or nm N:M");
    if (v.contains("nm"))
        u.layer.nm = nmFrom(v.text("nm"));
    else
        u.layer.sparsity = v.real("sparsity");
    if (v.contains("blocksize"))
        u.layer.blockSize = static_cast<int>(v.integer("blocksize"));
    if (v.contains("damp"))
        u.layer.percDamp = v.real("damp");
    u.layers = p.valueOr("layers", "");
    u.mode = statsModeFrom(p);
    u.calibration = calibration;
    o.needsCalibration = spec.needsCalibration();
    return o;
}

ModelFactorizeOptions factorizeOptionsFrom(const ParamSource& p)
{
    const MethodSpec& spec = requireMethodSpec(StepAction::Factorize, p.valueOr("method", ""));
    const ParamValues v = readMethodParams(spec, p);
    ModelFactorizeOptions o;
    o.method = spec.id == "svd" ? LowRankMethod::Svd : spec.id == "asvd" ? LowRankMethod::Asvd : LowRankMethod::Whitened;
    if (v.contains("rank-ratio") == v.contains("energy"))
        bad("give exactly one of rank-ratio F or energy E");
    if (v.contains("rank-ratio"))
        o.rankRatio = v.real("rank-ratio");
    else
        o.energy = v.real("energy");
    if (v.contains("alpha"))
        o.asvdAlpha = v.real("alpha");
    o.layers = p.valueOr("layers", "");
    o.mode = statsModeFrom(p);
    o.calibration = calibrationOptionsFrom(p);
    return o;
}

} // namespace ll
