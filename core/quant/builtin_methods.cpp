// The registry entries of the quantization methods that came before the
// registry (each unit in core/quant): schema, teaching text, and the run
// function that turns the checked parameters into the unit's options.
#include "methods/method_registry.h"

#include "quant/awq.h"
#include "quant/bcq.h"
#include "quant/fp4.h"
#include "quant/fp8.h"
#include "model/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/gptq.h"
#include "quant/int8_outlier.h"
#include "quant/minifloat.h"
#include "quant/nf4.h"
#include "quant/outlier_aware.h"
#include "quant/quant_method.h"
#include "quant/rtn.h"
#include "quant/smoothquant.h"
#include "util/error.h"
#include "util/half.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace ll {

namespace {

// ---- parameters several methods share -------------------------------------

ParamSpec bitsParam(int lo, int hi, const std::string& fallback = {})
{
    ParamSpec p{"bits", ParamType::Int, "Bits", "bits per weight", static_cast<double>(lo), static_cast<double>(hi)};
    p.defaultValue = fallback;
    p.required = fallback.empty();
    return p;
}

ParamSpec groupParam(const std::string& fallback = "0")
{
    ParamSpec p{"group", ParamType::Int, "Groups", "input columns per scale (0: one scale per row)", 0, 1 << 20};
    p.defaultValue = fallback;
    p.presets = {{"0", "per row"}, {"32", "groups of 32"}, {"64", "groups of 64"}, {"128", "groups of 128"}};
    p.presetLabel = "groups of {}";
    return p;
}

ParamSpec flagParam(const std::string& key, const std::string& label, const std::string& help, bool advanced = false)
{
    ParamSpec p{key, ParamType::Flag, label, help};
    p.advanced = advanced;
    return p;
}

ParamSpec intParam(const std::string& key, const std::string& label, const std::string& help, double lo, double hi,
                   const std::string& fallback, bool advanced = false)
{
    ParamSpec p{key, ParamType::Int, label, help, lo, hi};
    p.defaultValue = fallback;
    p.advanced = advanced;
    return p;
}

ParamSpec realParam(const std::string& key, const std::string& label, const std::string& help, double lo, double hi,
                    const std::string& fallback, bool advanced = false)
{
    ParamSpec p{key, ParamType::Real, label, help, lo, hi};
    p.defaultValue = fallback;
    p.advanced = advanced;
    return p;
}

ParamSpec symParam() { return flagParam("sym", "symmetric", "symmetric grid (zero point in the middle)"); }
ParamSpec lorcParam()
{
    ParamSpec p = intParam("lorc-rank", "LoRC rank", "add a rank-R correction of the quantization error (0: off)", 0, 1 << 20, "0");
    p.needsWhenSet = kNeedsGram; // its output error is measured on the calibration inputs
    p.notWith = {"eora-rank"};
    return p;
}

// EoRA (quant/eora.h): the correction fitted to the inputs' eigenspace.
ParamSpec eoraParam()
{
    ParamSpec p = intParam("eora-rank", "EoRA rank",
                           "add a rank-R correction of the error fitted in the inputs' eigenspace (needs calibration; 0: off)",
                           0, 1 << 20, "0", true);
    p.needsWhenSet = kNeedsGram;
    p.notWith = {"lorc-rank"};
    return p;
}

std::vector<ParamSpec> gptqParams()
{
    return {bitsParam(2, 8), groupParam(), symParam(),
            flagParam("act-order", "act-order", "quantize the columns with the largest activations first"),
            flagParam("static-groups", "static groups", "fix the groups' grids before the updates (needs a group)", true),
            intParam("blocksize", "Block size", "columns updated together", 1, 1 << 20, "128", true),
            realParam("damp", "Dampening", "added to the Hessian's diagonal, as a fraction of its mean", 0, 1e9, "0.01", true),
            lorcParam(), eoraParam()};
}

void configureGptq(const ParamValues& p, QuantConfig& c)
{
    c.actOrder = p.flag("act-order");
    c.staticGroups = p.flag("static-groups");
    if (c.staticGroups && c.grid.groupSize == 0)
        fail(ErrorCode::InvalidArgument, "", "static-groups needs a group size (group G)");
    c.blockSize = static_cast<int>(p.integer("blocksize"));
    c.percDamp = p.real("damp");
}

GptqOptions gptqOptions(const QuantConfig& c)
{
    GptqOptions g;
    g.grid = c.grid;
    g.blockSize = c.blockSize;
    g.percDamp = c.percDamp;
    g.actOrder = c.actOrder;
    g.staticGroups = c.staticGroups;
    return g;
}

std::string gptqLabel(const QuantConfig& c)
{
    return c.method + " " + c.grid.label() + (c.actOrder ? " act-order" : "") + (c.staticGroups ? " static" : "");
}


MethodTeaching teaching(const char* what, const char* formula, const char* when, const char* citation = "")
{
    return {what, formula, when, citation};
}

// Formats with their own packing (codes and bits from their modules; not dequantizePacked's).
QuantizedLayer fromDense(const MatrixRM& W, MatrixRM What, std::vector<uint8_t> codes, int codeBits, double bitsPerWeight,
                         std::string method, const LayerInputs& in)
{
    QuantizedLayer out;
    out.method = std::move(method);
    out.packed.format = PackedQuant::Format::Dense;
    out.packed.bits = codeBits;
    out.packed.codes = std::move(codes);
    const double n = static_cast<double>(W.size());
    out.bits.codes = std::min(bitsPerWeight, static_cast<double>(codeBits)) * n;
    out.bits.scales = std::max(0.0, bitsPerWeight - codeBits) * n;
    finishQuantizedLayer(out, W, std::move(What), in);
    return out;
}

// ---- the methods ----------------------------------------------------------

QuantizedLayer runRtn(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    RtnResult r = rtnQuantize(W, c.grid);
    QuantizedLayer out;
    out.method = "rtn " + c.grid.label();
    out.packed.format = PackedQuant::Format::IntGrid;
    out.packed.bits = c.grid.bits;
    out.packed.codes = std::move(r.codes);
    out.packed.grid = std::move(r.params);
    addGridBits(out.bits, c.grid, W.rows(), W.cols(), W.size());
    finishQuantizedLayer(out, W, std::move(r.dequantized), in);
    return out;
}

const MethodSpec& specRtn()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "rtn";
    m.name = "RTN (round to nearest)";
    m.teaching = teaching(
        "Rounds every weight to the nearest point of an evenly spaced integer grid, one scale (and zero point) "
        "per row or per group of input columns.",
        "w&#770; = scale · (round(w / scale + zero) − zero); the scale spans the group's min–max.",
        "you want a fast baseline. 8 and 6 bits are nearly lossless; below 4 bits the error grows quickly and "
        "calibrated methods (GPTQ, AWQ) win.");
    m.params = {bitsParam(2, 8), groupParam(), symParam(), lorcParam(), eoraParam()};
    m.quantize = runRtn;
    return m;
    }();
    return spec;
}

// The GPTQ family's sweep (method_spec.h).
MethodWork hessianSweepWork(const ParamValues&, double out, double in)
{
    return obsSweepWork(out, in);
}

QuantizedLayer runGptq(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    return gptqLayer(W, in, gptqOptions(c), progress);
}

const MethodSpec& specGptq()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "gptq";
    m.name = "GPTQ";
    m.teaching = teaching(
        "Quantizes one input column at a time and spreads each column's rounding error over the columns not "
        "yet quantized, using second-order information from the calibration inputs.",
        "minimise ‖(W − W&#770;) X‖² with the Hessian H = 2 XᵀX: after rounding column j, the rest moves by "
        "−err · H⁻¹[j, :] / H⁻¹[j, j].",
        "you quantize to 3–4 bits and have calibration text. Act-order quantizes the columns with the "
        "largest activations first and usually helps at 3 bits.",
        "Frantar et al., 2022, GPTQ (arXiv:2210.17323)");
    m.params = gptqParams();
    m.needs = kNeedsGram;
    m.sequentialByDefault = true;
    m.quantize = runGptq;
    m.configure = configureGptq;
    m.label = gptqLabel;
    m.work = hessianSweepWork;
    return m;
    }();
    return spec;
}

// GPTAQ: GPTQ's sweep against the full-precision model's outputs. Without the
// asymmetry term (one-shot statistics: both streams are the same) it is GPTQ.
QuantizedLayer runGptaq(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    GptqOptions o = gptqOptions(c);
    o.asymmetry = in.asymmetry;
    o.alpha = c.params.contains("alpha") ? c.params.real("alpha") : 0.25;
    QuantizedLayer out = gptqLayer(W, in, o, progress);
    out.method = "gptaq" + out.method.substr(4); // "gptq w4 ..." -> "gptaq w4 ..."
    return out;
}

const MethodSpec& specGptaq()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "gptaq";
    m.name = "GPTAQ (asymmetric GPTQ)";
    m.teaching = teaching(
        "GPTQ whose target is the full-precision model's output, not the output of this layer's own (already "
        "perturbed) inputs: the error the quantized earlier layers left in the inputs is compensated too. The "
        "calibration text runs through the model twice, once as it was.",
        "minimise ‖W&#770; X − W X&#771;‖², X&#771; the full-precision model's inputs: after rounding column j, the rest "
        "moves by −err · U[j, :] (GPTQ) plus w<sub>j</sub> · P[j, :], P = α · triu(ΔXᵀX Uᵀ) U, H⁻¹ = UᵀU.",
        "you quantize to 2–3 bits, where the errors of earlier layers pile up; at 4 bits it is close to GPTQ. "
        "α (0.25) damps the correction.",
        "Li et al., 2025, GPTAQ / GPTQv2 (arXiv:2504.02692)");
    m.params = gptqParams();
    m.params.insert(m.params.begin() + 3, realParam("alpha", "α", "share of the asymmetry correction applied", 0, 1, "0.25", true));
    m.needs = kNeedsGram | kNeedsAsymmetry;
    m.sequentialByDefault = true;
    m.quantize = runGptaq;
    m.configure = configureGptq;
    m.label = gptqLabel;
    m.work = hessianSweepWork;
    return m;
    }();
    return spec;
}

QuantizedLayer runAwq(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    return awqQuantize(W, in, awqOptions(c), nullptr, progress);
}

// llm-awq's search for a group: one scale for every linear reading the input
// (per linear with per-linear-scales), no clip search for q and k (unless
// clip-qk); the scale folds into the op before where it can, else it is kept
// (16 bits per input channel).
std::vector<QuantizedLayer> awqGroup(const LinearGroup& g, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    if (!in.gram || in.meanAbs.size() == 0)
        fail(ErrorCode::InvalidArgument, "", "AWQ needs calibration statistics of the layer's inputs");
    const AwqOptions o = awqOptions(c);
    std::optional<AwqScaleSearch> joint;
    if (c.awqJointScales && o.searchScale)
        joint = awqSearchScale(g.weights, *in.gram, in.meanAbs, o, progress);
    std::vector<QuantizedLayer> out;
    for (size_t i = 0; i < g.weights.size(); ++i) {
        const MatrixRM& W = *g.weights[i];
        AwqOptions lo = o;
        if (!c.awqClipQK && (g.roles[i] == Role::AttnQ || g.roles[i] == Role::AttnK))
            lo.clip = false;
        QuantizedLayer q = awqQuantize(W, in, lo, joint ? &joint->scales : nullptr, progress);
        if (joint)
            q.info["alpha"] = joint->alpha;
        q.packed.inputScaleFolded = g.scaleFolds;
        if (!g.scaleFolds) {
            q.bits.inputScales = 16.0 * static_cast<double>(W.cols());
            refreshBits(q);
        }
        out.push_back(std::move(q));
    }
    return out;
}

const MethodSpec& specAwq()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "awq";
    m.name = "AWQ";
    m.teaching = teaching(
        "Activation-aware weight quantization: scales up the input channels that see large activations before "
        "rounding, so the weights that matter most lose less precision.",
        "search s = mean|x|<sup>α</sup> over a grid of α, quantize W · diag(s) and divide the input by s; "
        "then search a clipping range per group.",
        "4-bit with groups on models whose activations have a few strong channels.",
        "Lin et al., 2023, AWQ (arXiv:2306.00978)");
    m.params = {bitsParam(2, 8), groupParam(), symParam(),
                flagParam("no-clip", "no clipping search", "skip the per-group clipping search", true),
                flagParam("per-linear-scales", "a scale per linear",
                          "search the input scale for each linear alone, not once for the linears that share the input", true),
                flagParam("clip-qk", "clip q and k", "run the clipping search on q and k too (llm-awq skips it there)", true),
                lorcParam(), eoraParam()};
    m.needs = kNeedsGram | kNeedsMeanAbs;
    m.quantize = runAwq;
    m.quantizeGroup = awqGroup;
    m.configure = [](const ParamValues& p, QuantConfig& c) {
        c.awqClip = !p.flag("no-clip");
        c.awqJointScales = !p.flag("per-linear-scales");
        c.awqClipQK = p.flag("clip-qk");
    };
    m.work = [](const ParamValues&, double out, double in) {
        // Each of the grid's scales: quantize, then the output error tr(ΔW G ΔWᵀ).
        return MethodWork{QuantConfig{}.awqGridPoints * (2.0 * out * in * in + 20.0 * out * in), sizeof(float) * in * in};
    };
    return m;
    }();
    return spec;
}

QuantizedLayer runSmoothQuant(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    SmoothQuantOptions o;
    o.alpha = c.smoothAlpha;
    o.foldable = true; // one linear alone, as after a norm
    o.actBits = c.actBits;
    return smoothQuantLayer(W, in, o);
}

// One scale for every linear reading the input: it folds into the norm before q, k and v.
std::vector<QuantizedLayer> smoothQuantGroup(const LinearGroup& g, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    if (in.maxAbs.size() == 0)
        fail(ErrorCode::InvalidArgument, "", "SmoothQuant needs calibration statistics of the layer's inputs");
    const Eigen::VectorXf s = smoothQuantScales(in.maxAbs, g.weights, c.smoothAlpha);
    SmoothQuantOptions o;
    o.alpha = c.smoothAlpha;
    o.foldable = g.scaleFoldsIntoNorm;
    o.actBits = c.actBits;
    std::vector<QuantizedLayer> out;
    for (const MatrixRM* W : g.weights)
        out.push_back(smoothQuantLayer(*W, in, o, &s));
    return out;
}

const MethodSpec& specSmoothQuant()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "smoothquant";
    m.name = "SmoothQuant (W8A8)";
    m.teaching = teaching(
        "Moves the difficulty of quantizing activations into the weights, then quantizes both to 8 bits; "
        "evaluation simulates per-token activation quantization.",
        "s<sub>j</sub> = max|X<sub>j</sub>|<sup>α</sup> / max|W<sub>j</sub>|<sup>1−α</sup>; X diag(s)⁻¹ and "
        "diag(s) W are both easier to round.",
        "you want integer matrix products (weights and activations), with α ≈ 0.5.",
        "Xiao et al., 2022, SmoothQuant (arXiv:2211.10438)");
    m.params = {bitsParam(8, 8, "8"),
                realParam("alpha", "α", "migration strength: 0 keeps the activations, 1 moves it all", 0, 1, "0.5"),
                lorcParam(), eoraParam()};
    m.needs = kNeedsMaxAbs | kNeedsSamples;
    m.simulatesActivations = true;
    m.quantize = runSmoothQuant;
    m.quantizeGroup = smoothQuantGroup;
    m.configure = [](const ParamValues& p, QuantConfig& c) { c.smoothAlpha = p.real("alpha"); };
    m.label = [](const QuantConfig& c) {
        std::ostringstream s;
        s << c.method << " a" << c.smoothAlpha << " w8a" << c.actBits;
        return s.str();
    };
    m.badge = [](const ParamValues&) { return std::string("SmoothQuant W8A8"); };
    m.bitsPerWeight = [](const QuantConfig&, double cols) { return 8.0 + 32.0 / cols; };
    return m;
    }();
    return spec;
}

QuantizedLayer runInt8(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    Int8OutlierOptions o;
    o.threshold = c.int8Threshold;
    o.topK = c.int8TopK;
    o.actBits = c.actBits;
    return int8OutlierQuantize(W, in, o);
}

const MethodSpec& specInt8()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "int8";
    m.name = "LLM.int8()";
    m.teaching = teaching(
        "8-bit weights and activations, except the input columns where activations exceed a threshold, which "
        "stay in 16 bits.",
        "columns with |x| ≥ 6 anywhere in the calibration text are kept exact; the rest is int8 × int8.",
        "large models with activation outliers.", "Dettmers et al., 2022, LLM.int8() (arXiv:2208.07339)");
    m.params = {bitsParam(8, 8, "8"),
                realParam("threshold", "Threshold", "an input column is an outlier when some |x| reaches this", 0, 1e9,
                          "6", true),
                intParam("topk", "Top K", "keep the K columns with the largest |x| instead (0: use the threshold)", 0,
                         1 << 20, "0", true),
                lorcParam(), eoraParam()};
    m.needs = kNeedsMaxAbs | kNeedsSamples;
    m.simulatesActivations = true;
    m.quantize = runInt8;
    m.configure = [](const ParamValues& p, QuantConfig& c) {
        c.int8Threshold = p.real("threshold");
        c.int8TopK = static_cast<int>(p.integer("topk"));
    };
    m.label = [](const QuantConfig& c) {
        return c.method
               + (c.int8TopK > 0 ? " top" + std::to_string(c.int8TopK) : " t" + std::to_string(c.int8Threshold).substr(0, 3));
    };
    m.badge = [](const ParamValues&) { return std::string("LLM.int8 W8A8"); };
    m.bitsPerWeight = [](const QuantConfig&, double cols) { return 8.0 + 32.0 / cols; };
    return m;
    }();
    return spec;
}

QuantizedLayer runOwq(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    OutlierAwareOptions o;
    o.gptq = gptqOptions(c);
    o.useGptq = c.outlierBaseGptq;
    o.columns = c.owqColumns > 0
                    ? c.owqColumns
                    : std::max<int64_t>(1, static_cast<int64_t>(std::llround(0.01 * static_cast<double>(W.cols()))));
    return owqQuantize(W, in, o, progress);
}

const MethodSpec& specOwq()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "owq";
    m.name = "OWQ (outlier columns)";
    m.teaching = teaching(
        "Keeps the input columns most sensitive to quantization in 16 bits and quantizes the rest with GPTQ.",
        "sensitivity of column j ∝ H[j, j] · ‖W[:, j]‖²; the top 1 % stay dense.",
        "3-bit quantization where a few columns dominate the error.", "Lee et al., 2024, OWQ (arXiv:2306.02272)");
    m.params = gptqParams();
    m.params.insert(m.params.end() - 1, intParam("outlier-columns", "Outlier columns",
                                                 "input columns kept at 16 bits (0: 1 % of them, at least 1)", 0,
                                                 1 << 20, "0", true));
    m.needs = kNeedsGram;
    m.sequentialByDefault = true;
    m.quantize = runOwq;
    m.configure = [](const ParamValues& p, QuantConfig& c) {
        configureGptq(p, c);
        c.owqColumns = p.integer("outlier-columns");
    };
    m.label = gptqLabel;
    m.work = hessianSweepWork;
    return m;
    }();
    return spec;
}

QuantizedLayer runSpqr(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    OutlierAwareOptions o;
    o.gptq = gptqOptions(c);
    o.useGptq = c.outlierBaseGptq;
    o.fraction = c.spqrFraction;
    return spqrQuantize(W, in, o, progress);
}

const MethodSpec& specSpqr()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "spqr";
    m.name = "SpQR (sparse outliers)";
    m.teaching = teaching(
        "Keeps the individual weights whose rounding would cost the most in 16 bits, stored sparse, "
        "and quantizes the rest with GPTQ.",
        "a weight is an outlier when its error (w − w&#770;)² / H⁻¹[j, j] is in the top 1 %.",
        "near-lossless 3–4 bits; the outliers cost about 1 % × 48 bits per weight.",
        "Dettmers et al., 2023, SpQR (arXiv:2306.03078)");
    m.params = gptqParams();
    m.params.insert(m.params.end() - 1, realParam("outlier-fraction", "Outlier share",
                                                  "share of the weights kept at 16 bits", 0, 0.999999, "0.01", true));
    m.needs = kNeedsGram;
    m.sequentialByDefault = true;
    m.quantize = runSpqr;
    m.configure = [](const ParamValues& p, QuantConfig& c) {
        configureGptq(p, c);
        c.spqrFraction = p.real("outlier-fraction");
    };
    m.label = gptqLabel;
    m.work = hessianSweepWork;
    return m;
    }();
    return spec;
}

QuantizedLayer runBcq(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    BcqOptions o;
    o.bits = c.grid.bits;
    o.groupSize = std::max(0, c.grid.groupSize);
    o.iterations = c.bcqIterations;
    return bcqQuantize(W, o, in);
}

const MethodSpec& specBcq()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "bcq";
    m.name = "BCQ (binary coding)";
    m.teaching = teaching(
        "Binary-coding quantization (LUT-GEMM): each weight is a sum of ±α<sub>i</sub> over `bits` binary planes.",
        "w&#770; = Σ<sub>i</sub> α<sub>i</sub> b<sub>i</sub>, b<sub>i</sub> ∈ {−1, +1}, fitted by alternating "
        "least squares.",
        "studying non-uniform grids that run as table lookups.", "Park et al., 2022, LUT-GEMM (arXiv:2206.09557)");
    m.params = {bitsParam(1, 8), groupParam(), lorcParam(), eoraParam()};
    m.quantize = runBcq;
    m.label = [](const QuantConfig& c) {
        return c.method + " b" + std::to_string(c.grid.bits)
               + (c.grid.groupSize > 0 ? " g" + std::to_string(c.grid.groupSize) : std::string(" row"));
    };
    m.work = [](const ParamValues& p, double out, double in) {
        return MethodWork{40.0 * static_cast<double>(p.integer("bits")) * QuantConfig{}.bcqIterations * out * in, 0.0};
    };
    return m;
    }();
    return spec;
}

QuantizedLayer runNf4(const MatrixRM& W, const QuantConfig&, const LayerInputs& in, Progress*)
{
    const Nf4Options o;
    Nf4Result r = nf4Quantize(W);
    MatrixRM What = Eigen::Map<const MatrixRM>(r.dequantized.data(), W.rows(), W.cols());
    QuantizedLayer out = fromDense(W, std::move(What), std::move(r.codes), 4, r.bitsPerWeight, "nf4", in);
    // bitsandbytes' blocks run over the flattened matrix: a row of whole blocks is a grid row.
    if (W.cols() % o.blockSize == 0) {
        const int64_t groups = W.cols() / o.blockSize;
        out.packed.codebook.assign(kNf4Levels, kNf4Levels + 16);
        out.packed.grid.groupCols = o.blockSize;
        out.packed.grid.scales = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(r.absmax.data(), W.rows(), groups);
    }
    return out;
}

const MethodSpec& specNf4()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "nf4";
    m.name = "NF4 (QLoRA)";
    m.teaching = teaching(
        "4-bit NormalFloat: 16 levels placed at quantiles of a normal distribution, one absmax scale per "
        "block of 64 weights; the scales themselves are quantized to 8 bits (double quantization).",
        "w&#770; = absmax · level[argmin |w / absmax − level|].",
        "weights look Gaussian and you want 4 bits without calibration.", "Dettmers et al., 2023, QLoRA (arXiv:2305.14314)");
    m.params = {bitsParam(4, 4, "4"), lorcParam(), eoraParam()};
    // Recipes written before the registry carried the GUI's group, which NF4 never used (blocks of 64).
    m.ignoredKeys = {"group"};
    m.quantize = runNf4;
    m.label = [](const QuantConfig& c) { return c.method; };
    m.badge = [](const ParamValues&) { return std::string("NF4"); };
    m.bitsPerWeight = [](const QuantConfig&, double) { return 4.5; };
    return m;
    }();
    return spec;
}

QuantizedLayer runFp8(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    Fp8Result r = fp8Quantize(W, c.fp8Format, true);
    std::vector<float> scales = std::move(r.scales);
    QuantizedLayer out = fromDense(W, std::move(r.dequantized), std::move(r.codes), 8, r.bitsPerWeight,
                                   c.fp8Format == Fp8Format::E4M3 ? "fp8 e4m3" : "fp8 e5m2", in);
    if (static_cast<int64_t>(scales.size()) == W.rows()) { // per channel: one group per row
        for (int code = 0; code < 256; ++code)
            out.packed.codebook.push_back(fp8Decode(static_cast<uint8_t>(code), c.fp8Format));
        out.packed.grid.groupCols = W.cols();
        out.packed.grid.scales = Eigen::Map<const Eigen::MatrixXf>(scales.data(), W.rows(), 1);
    }
    return out;
}

const MethodSpec& specFp8()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "fp8";
    m.name = "FP8";
    m.teaching = teaching("8-bit floating point: E4M3 (more precision) or E5M2 (more range), one scale per row.",
                          "each weight is scaled into the format's range and rounded to the nearest representable float.",
                          "the hardware runs FP8; nearly lossless for most models.",
                          "Micikevicius et al., 2022, FP8 formats (arXiv:2209.05433)");
    ParamSpec type{"type", ParamType::Choice, "Format", "E4M3: more precision; E5M2: more range"};
    type.choices = {"E4M3", "E5M2"};
    type.defaultValue = "E4M3";
    m.params = {bitsParam(8, 8, "8"), type, lorcParam(), eoraParam()};
    m.quantize = runFp8;
    m.configure = [](const ParamValues& p, QuantConfig& c) {
        c.fp8Format = p.text("type") == "E4M3" ? Fp8Format::E4M3 : Fp8Format::E5M2;
    };
    m.label = [](const QuantConfig& c) { return c.method + (c.fp8Format == Fp8Format::E4M3 ? " e4m3" : " e5m2"); };
    m.badge = [](const ParamValues& p) { return "FP8 " + p.text("type"); };
    m.bitsPerWeight = [](const QuantConfig&, double cols) { return 8.0 + 32.0 / cols; };
    return m;
    }();
    return spec;
}

QuantizedLayer runFp4(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    Fp4Options o;
    o.groupSize = c.grid.groupSize > 0 ? c.grid.groupSize : 0;
    Fp4Result r = fp4Quantize(W, o);
    Eigen::MatrixXf fp4Scales = std::move(r.scales);
    std::string name = "fp4 e2m1 ";
    if (o.groupSize > 0) {
        name += 'g';
        name += std::to_string(o.groupSize);
    } else {
        name += "row";
    }
    QuantizedLayer out = fromDense(W, std::move(r.dequantized), std::move(r.codes), 4, r.bitsPerWeight, name, in);
    if (fp4Scales.rows() == W.rows()) {
        for (int code = 0; code < 16; ++code)
            out.packed.codebook.push_back(decodeMiniFloat(static_cast<uint8_t>(code), formatE2M1()));
        out.packed.grid.groupCols = o.groupSize > 0 ? o.groupSize : W.cols();
        out.packed.grid.scales = std::move(fp4Scales);
    }
    return out;
}

const MethodSpec& specFp4()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "fp4";
    m.name = "FP4 (E2M1)";
    m.teaching = teaching("4-bit floating point E2M1 with a scale per group.",
                          "levels 0, 0.5, 1, 1.5, 2, 3, 4, 6 (and negatives), times the group's scale.",
                          "comparing float and integer 4-bit grids; outliers hurt less than on an integer grid.",
                          "Wu et al., 2023, ZeroQuant-FP (arXiv:2307.09782)");
    m.params = {bitsParam(4, 4, "4"), groupParam("32"), lorcParam(), eoraParam()};
    m.quantize = runFp4;
    m.label = [](const QuantConfig& c) {
        return c.method + (c.grid.groupSize > 0 ? " g" + std::to_string(c.grid.groupSize) : std::string(" row"));
    };
    m.badge = [](const ParamValues& p) {
        return std::string("FP4") + (p.text("group") == "0" ? std::string(" row") : " g" + p.text("group"));
    };
    m.bitsPerWeight = [](const QuantConfig& c, double cols) {
        return 4.0 + 32.0 / (c.grid.groupSize > 0 ? c.grid.groupSize : cols);
    };
    return m;
    }();
    return spec;
}

// The ggml block types LayerLab quantizes to, from model/dtype's table.
std::vector<std::string> ggmlTypeNames()
{
    std::vector<std::string> names;
    for (DType t : allDTypes())
        if (canQuantizeGgml(t))
            names.emplace_back(dtypeName(t));
    return names;
}

DType ggmlTypeNamed(const std::string& name)
{
    for (DType t : allDTypes())
        if (canQuantizeGgml(t) && dtypeName(t) == name)
            return t;
    fail(ErrorCode::InvalidArgument, "", "unknown ggml type " + name);
}

QuantizedLayer runGgml(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    if (!canQuantizeGgml(c.ggmlType))
        fail(ErrorCode::InvalidArgument, "", "cannot quantize to ggml type " + std::string(dtypeName(c.ggmlType)));
    // Rows that do not fill the type's blocks take llama-quantize's fallback
    // type; the label names it so the caller can tell the user.
    const DType type = ggmlFallbackType(c.ggmlType, W.cols());
    std::string label = "ggml " + std::string(dtypeName(type));
    if (type != c.ggmlType)
        label += " (fallback for " + std::string(dtypeName(c.ggmlType)) + ": rows of " + std::to_string(W.cols()) + ")";
    if (type == DType::F16) {
        MatrixRM What(W.rows(), W.cols());
        std::vector<uint8_t> bytes(static_cast<size_t>(W.size()) * 2);
        for (Eigen::Index i = 0; i < W.size(); ++i) {
            const uint16_t h = floatToFp16(W.data()[i]);
            std::memcpy(bytes.data() + 2 * i, &h, 2);
            What.data()[i] = fp16ToFloat(h);
        }
        QuantizedLayer q = fromDense(W, std::move(What), std::move(bytes), 16, 16.0, label, in);
        q.packed.storedType = DType::F16;
        return q;
    }
    std::vector<float> importance;
    if (in.importance) {
        if (in.importance->size() != static_cast<size_t>(W.cols()))
            fail(ErrorCode::InvalidArgument, "", "the imatrix has " + std::to_string(in.importance->size())
                                                     + " values for a tensor whose rows have " + std::to_string(W.cols()));
        importance = *in.importance;
    } else if (c.ggmlImportance && in.gram) {
        importance.resize(static_cast<size_t>(W.cols()));
        for (Eigen::Index j = 0; j < W.cols(); ++j)
            importance[static_cast<size_t>(j)] = std::max(0.0f, (*in.gram)(j, j));
    }
    std::vector<uint8_t> blocks = quantizeGgmlRows(type, W.data(), W.rows(), W.cols(),
                                                   importance.empty() ? nullptr : importance.data());
    MatrixRM What(W.rows(), W.cols());
    dequantizeGgml(type, blocks.data(), What.data(), W.size());
    QuantizedLayer q = fromDense(W, std::move(What), std::move(blocks), 8, ggmlBitsPerWeight(type), label, in);
    q.packed.storedType = type;
    return q;
}

const MethodSpec& specGgml()
{
    static const MethodSpec spec = [] {
    MethodSpec m;
    m.id = "ggml";
    m.name = "ggml block type (llama.cpp)";
    m.teaching = teaching("llama.cpp's block formats (Q8_0, Q4_K, …): what a GGUF export will store, byte for byte.",
                          "blocks of 32 or 256 weights with their own scales (K-quants: scales of scales).",
                          "you will run the model in llama.cpp and want to see the cost of a type before exporting.",
                          "ggml / llama.cpp (github.com/ggml-org/llama.cpp)");
    ParamSpec type{"type", ParamType::Choice, "Type", "the block type every target layer gets"};
    type.choices = ggmlTypeNames();
    type.defaultValue = "Q4_K";
    ParamSpec imatrix{"imatrix", ParamType::Text, "imatrix file",
                      "llama.cpp's importance matrix (llama-imatrix or layerlab-cli imatrix): each tensor rounded "
                      "with its entry, as llama-quantize --imatrix, instead of the calibration text's"};
    imatrix.defaultValue = "";
    imatrix.advanced = true;
    m.params = {type, imatrix};
    // Calibration, when given, weights the k-quants' scale search by diag(XᵀX), as llama.cpp's imatrix.
    m.needs = kNeedsGram;
    m.needsOptional = true;
    m.quantize = runGgml;
    m.configure = [](const ParamValues& p, QuantConfig& c) { c.ggmlType = ggmlTypeNamed(p.text("type")); };
    m.label = [](const QuantConfig& c) { return c.method + " " + std::string(dtypeName(c.ggmlType)); };
    m.badge = [](const ParamValues& p) { return p.text("type"); };
    m.bitsPerWeight = [](const QuantConfig& c, double) {
        const DTypeLayout l = dtypeLayout(c.ggmlType);
        return 8.0 * l.blockBytes / std::max<uint32_t>(1, l.blockElems);
    };
    m.work = [](const ParamValues& p, double out, double in) {
        // The k-quants' iterative scale search is ~50x slower than a plain grid (docs/benchmarks.md).
        const DType t = ggmlTypeNamed(p.text("type"));
        const bool kQuant = t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
        return MethodWork{(kQuant ? 2000.0 : 40.0) * out * in, 0.0};
    };
    return m;
    }();
    return spec;
}

} // namespace

std::vector<const MethodSpec*> builtinQuantMethods()
{
    return {&specRtn(), &specGptq(), &specGptaq(), &specAwq(), &specSmoothQuant(), &specInt8(), &specOwq(), &specSpqr(), &specBcq(), &specNf4(), &specFp8(), &specFp4(), &specGgml()};
}

} // namespace ll
