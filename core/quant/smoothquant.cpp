#include "quant/smoothquant.h"

#include "layer/checks.h"
#include "quant/int8_outlier.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

namespace ll {

Eigen::VectorXf smoothQuantScales(const Eigen::VectorXf& actMax, std::span<const MatrixRM* const> Ws, double alpha)
{
    if (Ws.empty())
        fail(ErrorCode::InvalidArgument, "", "SmoothQuant scales need at least one weight matrix");
    if (!(alpha >= 0.0 && alpha <= 1.0))
        fail(ErrorCode::InvalidArgument, "", "the SmoothQuant migration strength must lie in [0, 1]");
    const Eigen::Index in = Ws[0]->cols();
    requireChannelStat(actMax, in, "max |x|");
    Eigen::VectorXf wMax = Eigen::VectorXf::Zero(in);
    for (const MatrixRM* W : Ws) {
        if (W->cols() != in)
            fail(ErrorCode::InvalidArgument, "", "linears sharing an input must have the same number of inputs");
        requireUsableWeights(*W, "the weight matrix");
        wMax = wMax.cwiseMax(W->cwiseAbs().colwise().maxCoeff().transpose());
    }
    Eigen::VectorXf s(in);
    for (Eigen::Index j = 0; j < in; ++j) {
        const double a = std::max(static_cast<double>(actMax(j)), 1e-5);
        const double w = std::max(static_cast<double>(wMax(j)), 1e-5);
        s(j) = static_cast<float>(std::max(std::pow(a, alpha) / std::pow(w, 1.0 - alpha), 1e-5));
    }
    return s;
}

QuantizedLayer smoothQuantLayer(const MatrixRM& W, const LayerInputs& in, const SmoothQuantOptions& o,
                                const Eigen::VectorXf* scales)
{
    requireUsableWeights(W, "the weight matrix");
    Eigen::VectorXf s;
    if (scales) {
        requireChannelStat(*scales, W.cols(), "the SmoothQuant scales");
        s = *scales;
    } else {
        if (in.maxAbs.size() == 0)
            fail(ErrorCode::InvalidArgument, "", "SmoothQuant needs max |x| of the layer's inputs (calibration text)");
        const MatrixRM* ws[] = {&W};
        s = smoothQuantScales(in.maxAbs, ws, o.alpha);
    }
    if ((s.array() <= 0.0f).any())
        fail(ErrorCode::InvalidArgument, "", "SmoothQuant scales must be positive");
    const MatrixRM Ws = W * s.asDiagonal();
    IntRows q = intRowAbsmax(Ws, o.weightBits);

    QuantizedLayer out;
    std::ostringstream name;
    name << "smoothquant a" << o.alpha << " w" << o.weightBits;
    out.method = name.str();
    packIntRows(q, out.packed);
    out.packed.inputScale = s;
    out.packed.inputScaleFolded = o.foldable;
    out.bits.codes = o.weightBits * static_cast<double>(W.size());
    out.bits.scales = 16.0 * static_cast<double>(W.rows());
    if (!o.foldable)
        out.bits.inputScales = 16.0 * static_cast<double>(W.cols());
    out.info["alpha"] = o.alpha;
    if (in.samples)
        out.info["w8a8_output_error"] = w8a8OutputError(W, q.dequantized, &s, *in.samples, o.actBits);
    MatrixRM What = q.dequantized * s.cwiseInverse().asDiagonal();
    finishQuantizedLayer(out, W, std::move(What), in);
    return out;
}

} // namespace ll
