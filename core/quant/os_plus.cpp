// Outlier Suppression+ (quant/os_plus.h) and its registry entry.
#include "quant/os_plus.h"

#include "methods/method_registry.h"
#include "layer/checks.h"
#include "quant/canonical_rows.h"
#include "quant/int8_outlier.h"
#include "quant/quant_method.h"
#include "quant/smoothquant.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace ll {

namespace {

constexpr Eigen::Index kSearchTokens = 256;

void checkInputs(const MatrixRM& X, std::span<const MatrixRM* const> Ws)
{
    if (Ws.empty() || X.rows() == 0)
        fail(ErrorCode::InvalidArgument, "", "Outlier Suppression+ needs calibration samples and at least one linear");
    for (const MatrixRM* W : Ws) {
        if (W->cols() != X.cols())
            fail(ErrorCode::InvalidArgument, "", "the samples have " + std::to_string(X.cols()) + " channels, a linear "
                                                     + std::to_string(W->cols()) + " inputs");
        requireUsableWeights(*W, "the weight matrix");
    }
    if (!X.allFinite())
        fail(ErrorCode::InvalidArgument, "", "the calibration samples hold NaN or Inf");
}

// ‖Q_b(W diag s) Q_R((X − z) ⊘ s)ᵀ − W (X − z)ᵀ‖² summed over Ws (the shift's W z is
// exact), R the samples' range of (X − z) ⊘ s, returned in `range`.
double lossAt(const MatrixRM& centred, std::span<const MatrixRM* const> Ws, const Eigen::VectorXf& scale, int actBits,
              int weightBits, float& range)
{
    MatrixRM U = centred * scale.cwiseInverse().asDiagonal();
    range = U.cwiseAbs().maxCoeff();
    quantizeStatic(U, range, actBits);
    double loss = 0.0;
    for (const MatrixRM* W : Ws) {
        const MatrixRM Wq = intRowAbsmax(*W * scale.asDiagonal(), weightBits).dequantized;
        const MatrixRM E = U * Wq.transpose() - centred * W->transpose();
        // A plain loop: Eigen's vectorised sum starts where the heap put E, and
        // the search compares losses that can tie to the last bits.
        for (Eigen::Index i = 0; i < E.size(); ++i)
            loss += static_cast<double>(E.data()[i]) * E.data()[i];
    }
    return loss;
}

} // namespace

void quantizeStatic(Eigen::Ref<MatrixRM> U, float range, int bits)
{
    if (bits < 2 || bits > 16)
        fail(ErrorCode::InvalidArgument, "", "activation bits must be 2..16, not " + std::to_string(bits));
    if (!(range > 0.0f))
        return; // all zeros
    const float levels = static_cast<float>((1 << (bits - 1)) - 1), step = range / levels;
    U = (U / step).array().round().min(levels).max(-levels).matrix() * step;
}

OsPlusParams osPlusParams(const MatrixRM& Xall, std::span<const MatrixRM* const> Ws, int actBits, int gridPoints,
                          bool shift, int weightBits)
{
    checkInputs(Xall, Ws);
    if (gridPoints < 1)
        fail(ErrorCode::InvalidArgument, "", "the threshold search needs at least one grid point");
    // The search reads kSearchTokens rows picked by their values, not by the threads' timing.
    const MatrixRM X = canonicalRows(Xall, kSearchTokens);
    OsPlusParams p;
    const Eigen::VectorXf hi = Xall.colwise().maxCoeff().transpose(), lo = Xall.colwise().minCoeff().transpose();
    p.shift = shift ? Eigen::VectorXf((hi + lo) / 2.0f) : Eigen::VectorXf::Zero(X.cols());
    const Eigen::VectorXf half = (hi - p.shift).cwiseMax(p.shift - lo); // the range either side of z
    const MatrixRM centred = X.rowwise() - p.shift.transpose();
    const float top = half.maxCoeff();
    p.loss = std::numeric_limits<double>::infinity();
    for (int k = 1; k <= gridPoints; ++k) {
        const double t = static_cast<double>(top) * k / gridPoints;
        if (!(t > 0.0))
            break;
        const Eigen::VectorXf s = (half / static_cast<float>(t)).cwiseMax(1.0f);
        float range = 0.0f;
        const double loss = lossAt(centred, Ws, s, actBits, weightBits, range);
        if (loss < p.loss) {
            p.loss = loss;
            p.threshold = t;
            p.scale = s;
            p.range = range;
        }
    }
    if (p.scale.size() == 0) { // every channel constant: only the shift
        p.scale = Eigen::VectorXf::Ones(X.cols());
        p.loss = lossAt(centred, Ws, p.scale, actBits, weightBits, p.range);
    }
    for (const MatrixRM* W : Ws) {
        const MatrixRM Y = X * W->transpose();
        for (Eigen::Index i = 0; i < Y.size(); ++i)
            p.outputNorm2 += static_cast<double>(Y.data()[i]) * Y.data()[i];
    }
    // The static range covers every sample, not only the searched ones.
    p.range = std::max(p.range, ((Xall.rowwise() - p.shift.transpose()) * p.scale.cwiseInverse().asDiagonal()).cwiseAbs().maxCoeff());
    return p;
}

double osPlusLossRef(const MatrixRM& X, std::span<const MatrixRM* const> Ws, const Eigen::VectorXf& shift,
                     const Eigen::VectorXf& scale, float range, int actBits, int weightBits)
{
    checkInputs(X, Ws);
    const double levels = static_cast<double>((1 << (actBits - 1)) - 1), step = static_cast<double>(range) / levels;
    MatrixRM U(X.rows(), X.cols());
    for (Eigen::Index t = 0; t < X.rows(); ++t)
        for (Eigen::Index j = 0; j < X.cols(); ++j) {
            const double u = (static_cast<double>(X(t, j)) - shift[j]) / scale[j];
            U(t, j) = step > 0.0 ? static_cast<float>(std::clamp(std::nearbyint(u / step), -levels, levels) * step)
                                 : static_cast<float>(u);
        }
    double loss = 0.0;
    for (const MatrixRM* W : Ws) {
        MatrixRM Ws_(W->rows(), W->cols());
        for (Eigen::Index i = 0; i < W->rows(); ++i)
            for (Eigen::Index j = 0; j < W->cols(); ++j)
                Ws_(i, j) = (*W)(i, j) * scale[j];
        const MatrixRM Wq = intRowAbsmax(Ws_, weightBits).dequantized;
        for (Eigen::Index t = 0; t < X.rows(); ++t)
            for (Eigen::Index i = 0; i < W->rows(); ++i) {
                double got = 0.0, want = 0.0;
                for (Eigen::Index j = 0; j < X.cols(); ++j) {
                    got += static_cast<double>(U(t, j)) * Wq(i, j) + static_cast<double>((*W)(i, j)) * shift[j];
                    want += static_cast<double>((*W)(i, j)) * X(t, j);
                }
                loss += (got - want) * (got - want);
            }
    }
    return loss;
}

void quantizeShiftedRows(Eigen::Ref<MatrixRM> U, const Eigen::VectorXf& scaledShift, float range, int bits)
{
    if (scaledShift.size() != U.cols())
        fail(ErrorCode::InvalidArgument, "", "the OS+ shift does not fit the input");
    U.rowwise() -= scaledShift.transpose();
    quantizeStatic(U, range, bits);
    U.rowwise() += scaledShift.transpose();
}

namespace {

// One shift, scale and range for every linear reading the input (q, k, v share theirs).
std::vector<QuantizedLayer> osPlusGroup(const LinearGroup& g, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    if (!in.samples)
        fail(ErrorCode::InvalidArgument, "", "Outlier Suppression+ needs calibration samples of the layer's inputs");
    const std::span<const MatrixRM* const> ws(g.weights);
    const OsPlusParams p = osPlusParams(*in.samples, ws, c.actBits, 20, !c.params.flag("no-shift"), c.grid.bits);
    SmoothQuantOptions o;
    o.foldable = g.scaleFoldsIntoNorm;
    o.actBits = c.actBits;
    o.weightBits = c.grid.bits;
    std::vector<QuantizedLayer> out;
    for (const MatrixRM* W : ws) {
        QuantizedLayer q = smoothQuantLayer(*W, in, o, &p.scale);
        q.packed.inputShift = p.shift;
        q.packed.inputRange = p.range;
        q.method = c.label();
        q.info.erase("alpha");
        q.info["threshold"] = p.threshold;
        q.info["range"] = p.range;
        // The relative output error of the W8A8 products with the shift on the searched samples, over
        // the group's linears together (smoothQuantLayer's has no shift).
        q.info["w8a8_output_error"] = p.outputNorm2 > 0.0 ? std::sqrt(p.loss / p.outputNorm2) : 0.0;
        out.push_back(std::move(q));
    }
    return out;
}

} // namespace

const MethodSpec& osPlusMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.id = "os-plus";
        m.name = "Outlier Suppression+ (W8A8 / W4A8, shift and scale)";
        m.teaching = {"Centres every input channel of a linear with a shift and shrinks its outlier channels with a "
                      "scale that moves into the weights, so that activations quantized with one static range per "
                      "tensor (8 bits or fewer) lose less; the shift's effect returns exactly as a bias W z.",
                      "z<sub>j</sub> = (max x<sub>j</sub> + min x<sub>j</sub>) / 2, s<sub>j</sub> = max(1, "
                      "(max x<sub>j</sub> − z<sub>j</sub>) / t); x̃ = (x − z) / s, W̃ = W diag(s), b̃ = b + W z; "
                      "t searched for the smallest error of the quantized product on the calibration samples.",
                      "activations with asymmetric outlier channels (OPT, BLOOM, LLaMA's down_proj inputs) and "
                      "SmoothQuant still loses accuracy, at 8 bits or below.",
                      "Wei et al., 2023, Outlier Suppression+ (arXiv:2304.09145)"};
        ParamSpec bits{"bits", ParamType::Int, "Bits", "bits per weight, symmetric per output row", 4, 8};
        bits.defaultValue = "8";
        ParamSpec act{"act-bits", ParamType::Int, "Activation bits", "bits per activation, one scale per token", 2, 16};
        act.defaultValue = "8";
        act.help = "bits per activation, one static range per input (per tensor)";
        ParamSpec noShift{"no-shift", ParamType::Flag, "No shift", "scale only (z = 0): the shift's ablation"};
        noShift.advanced = true;
        m.params = {bits, act, noShift};
        m.needs = kNeedsSamples;
        m.simulatesActivations = true;
        m.quantizeGroup = osPlusGroup;
        m.configure = [](const ParamValues& p, QuantConfig& c) { c.actBits = static_cast<int>(p.integer("act-bits")); };
        m.label = [](const QuantConfig& c) {
            return "os+ w" + std::to_string(c.grid.bits) + "a" + std::to_string(c.actBits) + (c.params.flag("no-shift") ? " no-shift" : "");
        };
        m.badge = [](const ParamValues& v) { return "OS+ W" + v.text("bits") + "A" + v.text("act-bits") + (v.flag("no-shift") ? " no shift" : ""); };
        m.bitsPerWeight = [](const QuantConfig& c, double cols) { return c.grid.bits + 32.0 / cols; };
        return m;
    }();
    return spec;
}

} // namespace ll
