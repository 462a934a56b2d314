// OliVe's outlier-victim pairs (quant/olive.h) and its registry entry.
#include "quant/olive.h"

#include "methods/method_registry.h"
#include "quant/canonical_rows.h"
#include "quant/int8_outlier.h"
#include "quant/quant_method.h"
#include "quant/quantized_layer.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ll {

namespace {

constexpr float kOutlierEdge = 32.0f; // the normal grid stays below, the abfloat grid above
constexpr Eigen::Index kScaleSearchRows = 256; // calibration rows an activation scale is searched on

void checkBits(int bits)
{
    if (bits < 3 || bits > 8)
        fail(ErrorCode::InvalidArgument, "", "OliVe takes 3 to 8 bits, not " + std::to_string(bits));
}

struct Grids {
    std::vector<float> normal, outlier; // magnitudes, ascending
    float maxNormal = 0.0f;
    int identifier = 0;                 // the code of a victim
};

Grids gridsFor(int bits)
{
    Grids g{oliveNormalMagnitudes(bits), oliveOutlierMagnitudes(bits), 0.0f, -(1 << (bits - 1))};
    g.maxNormal = g.normal.back();
    return g;
}

// Nearest index of |x| in an ascending list.
int nearest(const std::vector<float>& v, float x)
{
    const auto it = std::lower_bound(v.begin(), v.end(), x);
    if (it == v.begin())
        return 0;
    if (it == v.end())
        return static_cast<int>(v.size()) - 1;
    const int i = static_cast<int>(it - v.begin());
    return x - v[static_cast<size_t>(i - 1)] <= v[static_cast<size_t>(i)] - x ? i - 1 : i;
}

uint8_t lowBits(int code, int bits) { return static_cast<uint8_t>(code & ((1 << bits) - 1)); }
int signedCode(uint8_t c, int bits)
{
    const int v = c & ((1 << bits) - 1);
    return v >= (1 << (bits - 1)) ? v - (1 << bits) : v;
}

// One row in scale units: codes and values after the pairing. Returns the squared error (in units).
double encodeRow(const Grids& g, int bits, const float* x, int64_t n, float scale, uint8_t* codes, float* values,
                 int64_t* outliers, int64_t* victims)
{
    const int maxq = (1 << (bits - 1)) - 1;
    const float step = g.normal[1];
    // Each value alone: its nearest point of normal ∪ outlier, and whether that is an outlier.
    std::vector<float> q(static_cast<size_t>(n));
    std::vector<int> outlierIndex(static_cast<size_t>(n), -1);
    for (int64_t i = 0; i < n; ++i) {
        const float u = std::fabs(x[i] / scale);
        const bool canBeOutlier = (i ^ 1) < n; // a value without a partner stays on the normal grid
        const float normal = std::min(std::nearbyint(u / step), static_cast<float>(maxq)) * step;
        float best = normal;
        if (canBeOutlier) {
            const int k = nearest(g.outlier, u);
            if (std::fabs(g.outlier[static_cast<size_t>(k)] - u) < std::fabs(normal - u)) {
                best = g.outlier[static_cast<size_t>(k)];
                outlierIndex[static_cast<size_t>(i)] = k;
            }
        }
        q[static_cast<size_t>(i)] = std::copysign(best, x[i]);
    }
    double err = 0.0;
    for (int64_t i = 0; i < n; i += 2) {
        const int64_t j = i + 1;
        const bool oi = outlierIndex[static_cast<size_t>(i)] >= 0;
        const bool oj = j < n && outlierIndex[static_cast<size_t>(j)] >= 0;
        for (const int64_t k : {i, j}) {
            if (k >= n)
                continue;
            const bool victim = (k == j && oi) || (k == i && !oi && oj);
            if (victim) {
                q[static_cast<size_t>(k)] = 0.0f;
                codes[k] = lowBits(g.identifier, bits);
                ++*victims;
            } else if (outlierIndex[static_cast<size_t>(k)] >= 0) {
                // sign bit, then the outlier's index + 1 (index 0 of the code space is the unused 32)
                const int idx = outlierIndex[static_cast<size_t>(k)] + 1;
                codes[k] = static_cast<uint8_t>((x[k] < 0 ? 1 << (bits - 1) : 0) | idx);
                ++*outliers;
            } else {
                codes[k] = lowBits(static_cast<int>(std::nearbyint(q[static_cast<size_t>(k)] / step)), bits);
            }
            values[k] = q[static_cast<size_t>(k)] * scale;
            const double d = static_cast<double>(values[k]) - x[k];
            err += d * d;
        }
    }
    return err;
}

// The reference's scale search: α = xmax · pct % for pct = 50, 52, ..., 148, where
// xmax = max |mean ± 3σ| of the values; the scale maps α to the normal grid's edge.
template <class Error>
float searchScale(const Grids& g, double mean, double sd, Error errorAt)
{
    const double xmax = std::max(std::fabs(mean + 3.0 * sd), std::fabs(mean - 3.0 * sd));
    float bestScale = 1.0f;
    double bestErr = std::numeric_limits<double>::infinity();
    if (!(xmax > 0.0))
        return bestScale;
    for (int pct = 50; pct < 150; pct += 2) {
        const float scale = static_cast<float>(xmax * pct / 100.0) / g.maxNormal;
        const double err = errorAt(scale);
        if (err < bestErr) {
            bestErr = err;
            bestScale = scale;
        }
    }
    return bestScale;
}

} // namespace

std::vector<float> oliveNormalMagnitudes(int bits)
{
    checkBits(bits);
    const int B = bits - 1;
    std::vector<float> v;
    for (int c = 0; c < (1 << B); ++c)
        v.push_back(static_cast<float>(c) * kOutlierEdge / static_cast<float>(1 << B));
    return v;
}

std::vector<float> oliveOutlierMagnitudes(int bits)
{
    checkBits(bits);
    const int B = bits - 1, mant = B - 2;
    std::vector<float> v;
    for (int e = 5; e < 5 + 4; ++e)
        for (int j = 0; j < (1 << mant); ++j)
            if (e != 5 || j != 0)
                v.push_back(std::ldexp(1.0f + static_cast<float>(j) / static_cast<float>(1 << mant), e));
    return v;
}

std::vector<float> oliveDecodeRow(const uint8_t* codes, int64_t n, int bits)
{
    const Grids g = gridsFor(bits);
    const float step = g.normal[1];
    std::vector<float> out(static_cast<size_t>(n), 0.0f);
    const auto outlierValue = [&](uint8_t c) {
        const int idx = (c & ((1 << (bits - 1)) - 1)) - 1;
        if (idx < 0 || idx >= static_cast<int>(g.outlier.size()))
            fail(ErrorCode::Malformed, "", "OliVe: an outlier code outside the abfloat grid");
        const float m = g.outlier[static_cast<size_t>(idx)];
        return (c >> (bits - 1)) & 1 ? -m : m;
    };
    for (int64_t i = 0; i < n; i += 2) {
        const int64_t j = i + 1;
        const bool vi = signedCode(codes[i], bits) == g.identifier;
        const bool vj = j < n && signedCode(codes[j], bits) == g.identifier;
        if (vi && vj)
            fail(ErrorCode::Malformed, "", "OliVe: a pair of two identifiers");
        if (vi || vj) { // an outlier pair: the other slot holds abfloat
            const int64_t o = vi ? j : i;
            if (o >= n)
                fail(ErrorCode::Malformed, "", "OliVe: an identifier without a partner");
            out[static_cast<size_t>(o)] = outlierValue(codes[o]);
            continue;
        }
        out[static_cast<size_t>(i)] = static_cast<float>(signedCode(codes[i], bits)) * step;
        if (j < n)
            out[static_cast<size_t>(j)] = static_cast<float>(signedCode(codes[j], bits)) * step;
    }
    return out;
}

OliveResult oliveQuantize(const MatrixRM& W, int bits)
{
    checkBits(bits);
    if (!W.allFinite())
        fail(ErrorCode::InvalidArgument, "", "OliVe: the weights hold NaN or Inf");
    const Grids g = gridsFor(bits);
    const int64_t rows = W.rows(), cols = W.cols();
    OliveResult r;
    r.dequantized.resize(rows, cols);
    r.codes.assign(static_cast<size_t>(rows * cols), 0);
    r.scales.assign(static_cast<size_t>(rows), 1.0f);
    std::vector<uint8_t> codes(static_cast<size_t>(cols));
    std::vector<float> values(static_cast<size_t>(cols));
    for (int64_t row = 0; row < rows; ++row) {
        const float* x = W.row(row).data();
        const double mean = W.row(row).cast<double>().mean();
        const double sd = cols > 1 ? std::sqrt((W.row(row).cast<double>().array() - mean).square().sum() / static_cast<double>(cols - 1)) : 0.0;
        const float bestScale = searchScale(g, mean, sd, [&](float scale) {
            int64_t no = 0, nv = 0;
            return encodeRow(g, bits, x, cols, scale, codes.data(), values.data(), &no, &nv);
        });
        int64_t o = 0, v = 0;
        encodeRow(g, bits, x, cols, bestScale, r.codes.data() + row * cols, r.dequantized.row(row).data(), &o, &v);
        r.scales[static_cast<size_t>(row)] = bestScale;
        r.outliers += o;
        r.victims += v;
    }
    return r;
}

float oliveTensorScale(const MatrixRM& Xall, int bits)
{
    checkBits(bits);
    if (Xall.rows() == 0 || !Xall.allFinite())
        fail(ErrorCode::InvalidArgument, "", "OliVe needs finite calibration samples of the input");
    const Grids g = gridsFor(bits);
    const MatrixRM X = canonicalRows(Xall, kScaleSearchRows);
    const double n = static_cast<double>(X.size());
    const double mean = X.cast<double>().sum() / n;
    const double sd = n > 1 ? std::sqrt((X.cast<double>().array() - mean).square().sum() / (n - 1.0)) : 0.0;
    std::vector<uint8_t> codes(static_cast<size_t>(X.cols()));
    std::vector<float> values(static_cast<size_t>(X.cols()));
    return searchScale(g, mean, sd, [&](float scale) {
        double err = 0.0;
        int64_t no = 0, nv = 0;
        for (Eigen::Index t = 0; t < X.rows(); ++t)
            err += encodeRow(g, bits, X.row(t).data(), X.cols(), scale, codes.data(), values.data(), &no, &nv);
        return err;
    });
}

void oliveQuantizeRows(Eigen::Ref<MatrixRM> X, float scale, int bits)
{
    const Grids g = gridsFor(bits);
    if (!(scale > 0.0f))
        fail(ErrorCode::InvalidArgument, "", "OliVe's activation scale must be positive");
    std::vector<uint8_t> codes(static_cast<size_t>(X.cols()));
    std::vector<float> values(static_cast<size_t>(X.cols()));
    int64_t no = 0, nv = 0;
    for (Eigen::Index t = 0; t < X.rows(); ++t) {
        float* x = X.data() + t * X.outerStride();
        encodeRow(g, bits, x, X.cols(), scale, codes.data(), values.data(), &no, &nv);
        std::copy(values.begin(), values.end(), x);
    }
}

namespace {

QuantizedLayer runOlive(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    OliveResult r = oliveQuantize(W, c.grid.bits);
    QuantizedLayer out;
    out.method = "olive w" + std::to_string(c.grid.bits);
    out.packed.format = PackedQuant::Format::Dense;
    out.packed.bits = c.grid.bits;
    out.packed.codes = std::move(r.codes);
    const double n = static_cast<double>(W.size());
    out.bits.codes = c.grid.bits * n;
    out.bits.scales = 16.0 * static_cast<double>(W.rows()); // one F16 scale per row
    out.info["outliers"] = static_cast<double>(r.outliers);
    out.info["victims"] = static_cast<double>(r.victims);
    finishQuantizedLayer(out, W, std::move(r.dequantized), in);
    return out;
}

// With act-bits: one activation scale per input, shared by the linears that read it.
std::vector<QuantizedLayer> oliveGroup(const LinearGroup& g, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    float pairScale = 0.0f;
    MatrixRM Xq;
    if (c.actBits > 0) {
        if (c.actBits < 3)
            fail(ErrorCode::InvalidArgument, "", "OliVe takes 3 to 8 activation bits (0: weights only), not "
                                                     + std::to_string(c.actBits));
        if (!in.samples)
            fail(ErrorCode::InvalidArgument, "", "OliVe's activation quantization needs calibration samples of the layer's inputs");
        pairScale = oliveTensorScale(*in.samples, c.actBits);
        Xq = *in.samples;
        oliveQuantizeRows(Xq, pairScale, c.actBits);
    }
    std::vector<QuantizedLayer> out;
    for (const MatrixRM* W : g.weights) {
        QuantizedLayer q = runOlive(*W, c, in, progress);
        if (pairScale > 0.0f) {
            q.method = c.label();
            q.packed.inputPairScale = pairScale;
            q.info["activation_scale"] = pairScale;
            // The product of the quantized weights and activations on the samples against the exact one.
            q.info["w8a8_output_error"] = quantizedProductError(*in.samples, Xq, *W, q.weights);
        }
        out.push_back(std::move(q));
    }
    return out;
}

} // namespace

const MethodSpec& oliveMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.id = "olive";
        m.name = "OliVe (outlier-victim pairs)";
        m.teaching = {"Every weight keeps its b bits, but an outlier may take its neighbour's: in each adjacent pair, "
                      "an outlier is stored in a small float format that starts where the integer grid stops, and "
                      "its partner (the victim) becomes 0, its slot marking the pair. Outliers keep their range "
                      "without a side list of exceptions, so the layout stays aligned for hardware. With activation bits, "
                      "every linear input goes through the same pairs at run time, on one static scale per input "
                      "found on the calibration text (the paper's W4A4 and W8A8).",
                      "normal: w&#770; = s · c · 32 / 2<sup>B</sup>, |c| ≤ 2<sup>B</sup> − 1; outlier: w&#770; = ± s · "
                      "2<sup>e</sup>(1 + j / 2<sup>m</sup>), e = 5..8; its pair partner → 0. s per row by the least "
                      "squared error.",
                      "weights or activations with a few large values that a uniform range would waste codes on; at 4 "
                      "bits.",
                      "Guo et al., 2023, OliVe (arXiv:2304.07493)"};
        ParamSpec bits{"bits", ParamType::Int, "Bits", "bits per weight (outliers and victims included)", 3, 8};
        bits.defaultValue = "4";
        ParamSpec act{"act-bits", ParamType::Int, "Activation bits",
                      "bits per activation, pairs on one static scale per input (0: weights only)", 0, 8};
        act.defaultValue = "0";
        act.needsWhenSet = kNeedsSamples;
        m.params = {bits, act};
        m.simulatesActivations = true; // when act-bits is set
        m.quantize = runOlive;
        m.quantizeGroup = oliveGroup;
        m.configure = [](const ParamValues& p, QuantConfig& c) { c.actBits = static_cast<int>(p.integer("act-bits")); };
        m.label = [](const QuantConfig& c) {
            return "olive w" + std::to_string(c.grid.bits) + (c.actBits > 0 ? "a" + std::to_string(c.actBits) : "");
        };
        m.badge = [](const ParamValues& v) {
            return v.integer("act-bits") > 0 ? "OliVe W" + v.text("bits") + "A" + v.text("act-bits") : "OliVe " + v.text("bits") + "b";
        };
        m.bitsPerWeight = [](const QuantConfig& c, double) { return static_cast<double>(c.grid.bits); };
        return m;
    }();
    return spec;
}

} // namespace ll
