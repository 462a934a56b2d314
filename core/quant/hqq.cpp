#include "quant/hqq.h"

#include "methods/method_registry.h"
#include "quant/quant_method.h"
#include "util/error.h"
#include "util/threads.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ll {

float hqqShrink(float r, double beta, double p)
{
    const double a = std::fabs(static_cast<double>(r));
    const double shrunk = p == 1.0 ? a - 1.0 / beta : a - std::pow(a, p - 1.0) / beta;
    return shrunk > 0.0 ? static_cast<float>(std::copysign(shrunk, static_cast<double>(r))) : 0.0f;
}

namespace {

// Mean |x - x^| of slice x on (s, z), and the update of z that the splitting gives.
struct SliceStep {
    double meanAbsError = 0.0;
    double nextZero = 0.0;
};

SliceStep sliceStep(const float* x, int64_t n, float s, float z, int maxq, double beta, double p)
{
    double err = 0.0, sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const float q = std::clamp(std::nearbyint(x[i] / s + z), 0.0f, static_cast<float>(maxq));
        const float r = x[i] - s * (q - z);
        err += std::fabs(static_cast<double>(r));
        sum += static_cast<double>(q) - static_cast<double>(x[i] - hqqShrink(r, beta, p)) / s;
    }
    return {err / static_cast<double>(n), sum / static_cast<double>(n)};
}

// Fits the zero of one slice; returns (scale, zero).
ScaleZero fitSlice(const float* x, int64_t n, const HqqOptions& o, double& startError, double& finalError)
{
    const int maxq = gridMaxQ(o.bits);
    const auto [lo, hi] = std::minmax_element(x, x + n);
    const float range = *hi - *lo;
    ScaleZero best{range > 0.0f ? range / static_cast<float>(maxq) : 1.0f, 0.0f};
    best.zero = -*lo / best.scale;
    double bestError = std::numeric_limits<double>::infinity();
    float z = best.zero;
    double beta = o.beta;
    for (int it = 0;; ++it) {
        const SliceStep step = sliceStep(x, n, best.scale, z, maxq, beta, o.lpNorm);
        if (it == 0)
            startError = step.meanAbsError;
        if (!(step.meanAbsError < bestError))
            break;
        bestError = step.meanAbsError;
        best.zero = z;
        if (it == o.iterations)
            break;
        z = static_cast<float>(step.nextZero);
        beta *= o.kappa;
    }
    finalError = bestError;
    return best;
}

} // namespace

HqqResult hqqQuantize(const MatrixRM& W, const HqqOptions& o)
{
    if (o.bits < 1 || o.bits > 8)
        fail(ErrorCode::InvalidArgument, "", "HQQ bits must be in [1, 8]");
    if (!(o.lpNorm > 0.0 && o.lpNorm <= 1.0) || !(o.beta > 0.0) || !(o.kappa >= 1.0) || o.iterations < 0)
        fail(ErrorCode::InvalidArgument, "", "HQQ needs 0 < p <= 1, beta > 0, kappa >= 1 and iterations >= 0");
    requireFinite(W, "weight");
    const int64_t rows = W.rows(), cols = W.cols();
    const int64_t groupCols = o.groupSize > 0 ? std::min<int64_t>(o.groupSize, cols) : cols;
    const int64_t groups = cols == 0 ? 0 : (cols + groupCols - 1) / groupCols;
    HqqResult r;
    r.params.grid = QuantGrid{o.bits, false, o.groupSize > 0 ? o.groupSize : 0};
    r.params.rows = rows;
    r.params.cols = cols;
    r.params.groupCols = groupCols;
    r.params.scales.resize(rows, groups);
    r.params.zeros.resize(rows, groups);
    r.dequantized.resize(rows, cols);
    r.codes.resize(static_cast<size_t>(rows * cols));
    std::vector<double> startErr(static_cast<size_t>(rows), 0.0), finalErr(static_cast<size_t>(rows), 0.0);
    const int maxq = gridMaxQ(o.bits);
    runParallel(rows, [&](int64_t row) {
        const float* x = W.data() + row * cols;
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t c0 = g * groupCols, n = std::min(groupCols, cols - c0);
            double e0 = 0.0, e1 = 0.0;
            const ScaleZero sz = fitSlice(x + c0, n, o, e0, e1);
            startErr[static_cast<size_t>(row)] += e0 * static_cast<double>(n);
            finalErr[static_cast<size_t>(row)] += e1 * static_cast<double>(n);
            r.params.scales(row, g) = sz.scale;
            r.params.zeros(row, g) = sz.zero;
            for (int64_t c = c0; c < c0 + n; ++c) {
                const float q = std::clamp(std::nearbyint(x[c] / sz.scale + sz.zero), 0.0f, static_cast<float>(maxq));
                r.codes[static_cast<size_t>(row * cols + c)] = static_cast<uint8_t>(q);
                r.dequantized(row, c) = sz.scale * (q - sz.zero);
            }
        }
    });
    const double n = static_cast<double>(std::max<int64_t>(1, rows * cols));
    for (int64_t row = 0; row < rows; ++row) {
        r.meanAbsErrorStart += startErr[static_cast<size_t>(row)] / n;
        r.meanAbsError += finalErr[static_cast<size_t>(row)] / n;
    }
    return r;
}

namespace {

QuantizedLayer runHqq(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    HqqOptions o;
    o.bits = c.grid.bits;
    o.groupSize = c.grid.groupSize;
    o.lpNorm = c.params.real("lp");
    o.iterations = static_cast<int>(c.params.integer("iterations"));
    HqqResult r = hqqQuantize(W, o);
    QuantizedLayer out;
    out.method = c.label();
    out.packed.format = PackedQuant::Format::IntGrid;
    out.packed.bits = o.bits;
    out.packed.codes = std::move(r.codes);
    out.packed.grid = std::move(r.params);
    // Codes, an FP16 scale and an FP16 zero per group (the zero is a real number).
    const double groups = static_cast<double>(out.packed.grid.scales.size());
    out.bits.codes = static_cast<double>(o.bits) * static_cast<double>(W.size());
    out.bits.scales = 16.0 * groups;
    out.bits.zeros = 16.0 * groups;
    out.info["mean_abs_error_minmax"] = r.meanAbsErrorStart;
    out.info["mean_abs_error"] = r.meanAbsError;
    finishQuantizedLayer(out, W, std::move(r.dequantized), in);
    return out;
}

} // namespace

const MethodSpec& hqqMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.id = "hqq";
        m.name = "HQQ (half-quadratic)";
        m.teaching = {"Fits each group's zero point so that the rounding error is small in an l<sub>p</sub> sense "
                      "(p &lt; 1): many small errors count more than a few large ones, so outliers no longer "
                      "stretch the grid. No calibration data; seconds per model.",
                      "alternate e = shrink<sub>p</sub>(w − w&#770;, β) and z = mean(q − (w − e) / s), with β growing "
                      "by κ = 1.01, until mean |w − w&#770;| stops falling; the scale stays min–max.",
                      "you want better than RTN at 3–4 bits without calibration text.",
                      "Badri & Shaji, 2023, Half-Quadratic Quantization (mobiusml.github.io/hqq_blog)"};
        ParamSpec bits{"bits", ParamType::Int, "Bits", "bits per weight", 1, 8};
        bits.required = true;
        ParamSpec group{"group", ParamType::Int, "Groups", "input columns per scale and zero (0: per row)", 0, 1 << 20};
        group.defaultValue = "64";
        group.presets = {{"0", "per row"}, {"32", "groups of 32"}, {"64", "groups of 64"}, {"128", "groups of 128"}};
        ParamSpec lp{"lp", ParamType::Real, "p", "the error's l_p exponent (p < 1 discounts outliers)", 0.01, 1};
        lp.defaultValue = "0.7";
        lp.advanced = true;
        ParamSpec iterations{"iterations", ParamType::Int, "Iterations", "at most this many updates of the zeros", 0, 1000};
        iterations.defaultValue = "20";
        iterations.advanced = true;
        m.params = {bits, group, lp, iterations};
        m.quantize = runHqq;
        m.label = [](const QuantConfig& c) {
            return "hqq w" + std::to_string(c.grid.bits)
                   + (c.grid.groupSize > 0 ? " g" + std::to_string(c.grid.groupSize) : std::string(" row"));
        };
        m.bitsPerWeight = [](const QuantConfig& c, double cols) {
            return c.grid.bits + 32.0 / (c.grid.groupSize > 0 ? c.grid.groupSize : cols);
        };
        return m;
    }();
    return spec;
}

} // namespace ll
