#pragma once
// AWQ (Lin et al. 2024), following mit-han-lab/llm-awq auto_scale.py and
// auto_clip.py, with the losses computed from the calibration Gram matrix
// G = X^T X instead of re-running the block:
//   Scale search: for alpha = i / n (i = 0 .. n-1, n = 20),
//     s = max(mean|x|^alpha, 1e-4), s /= sqrt(max(s) * min(s)),
//     W^ = Q(W diag(s)) diag(s)^-1 for every linear sharing the input,
//     loss = sum over those linears of ||(W^ - W) X^T||^2 = tr(D G D^T);
//   the alpha with the lowest loss wins (alpha = 0 is plain RTN, so the
//   search never does worse than RTN on this loss). llm-awq measures the
//   loss on the output of the whole attention / MLP block for q,k,v and
//   gate,up; here it is the sum of the linears' own output errors.
//   Clip search (on the scaled weights W diag(s) and inputs X diag(s)^-1):
//     per (row, group), max_val = absmax * (1 - i / n), i = 0 .. n * maxShrink - 1,
//     W clamped to [-max_val, max_val], then quantized; the max_val whose
//     group output error d^T G'_gg d is lowest is kept (d = Q(clamp w) - w).
//   llm-awq skips the clip search for q and k (the attention scores); the
//   model driver does the same.
// The integer grid is quant/grid.h's (the protocol's, holding 0), not
// llm-awq's own min/max grid, so AWQ and RTN / GPTQ numbers compare directly.
// The scales fold into the preceding op (the norm for q,k,v and gate,up; v for
// o; up for down), so awqQuantize counts no bits for them; the model driver
// counts 16 bits per input channel where they cannot fold (o under grouped-query
// attention, down without a gate). Cost: the scale search evaluates
// tr(D G D^T) 20 times, 2 * out * in^2 multiply-adds each (a 1024 x 1024
// layer: 4 s on two cores; 4096 x 4096: minutes).
//
// The reconstruction W^ = Q(W diag(s)) diag(s)^-1 is exactly what folding
// does to the product, so the perplexity of the dequantized model is AWQ's.
#include "model/tensor_data.h"
#include "quant/grid.h"
#include "quant/quantized_layer.h"

#include <Eigen/Core>

#include <span>
#include <vector>

namespace ll {

class Progress;
struct QuantConfig;

struct AwqOptions {
    QuantGrid grid{4, false, 128};
    bool searchScale = true;
    int scaleGridPoints = 20;
    bool clip = true;
    int clipGridPoints = 20;
    double maxShrink = 0.5;
};

// A step's AWQ settings (grid, scale search, clipping, grid points) as the per-layer options.
AwqOptions awqOptions(const QuantConfig& c);

struct AwqScaleSearch {
    Eigen::VectorXf scales;             // (in,) the winning s
    double alpha = 0.0;                 // its exponent
    std::vector<double> losses;         // per alpha, sum of tr(D G D^T)
};

// The scales s = mean|x|^alpha normalised as llm-awq does.
Eigen::VectorXf awqScalesFor(const Eigen::VectorXf& meanAbs, double alpha);

// Scale search over linears sharing one input: Ws (out_i, in), gram (in, in),
// meanAbs (in,). Cancellable between grid points.
AwqScaleSearch awqSearchScale(std::span<const MatrixRM* const> Ws, const Eigen::MatrixXf& gram,
                              const Eigen::VectorXf& meanAbs, const AwqOptions& options, Progress* progress = nullptr);

// Clip search on an already scaled weight Ws = W diag(s) with the Gram matrix
// of the scaled inputs; returns the clipping threshold per (row, group).
Eigen::MatrixXf awqSearchClip(const MatrixRM& Ws, const Eigen::MatrixXf& gramScaled, const AwqOptions& options);
// W clamped row/group-wise to [-maxVal, maxVal].
MatrixRM applyClip(const MatrixRM& W, const Eigen::MatrixXf& maxVal, int64_t groupCols);

// One linear: W^ = Q(clip(W diag(s))) diag(s)^-1 with s from `scales` (when
// given, e.g. found jointly for q,k,v) or from a search on this layer alone.
// inputs.gram and inputs.meanAbs are required for the searches.
QuantizedLayer awqQuantize(const MatrixRM& W, const LayerInputs& inputs, const AwqOptions& options,
                           const Eigen::VectorXf* scales = nullptr, Progress* progress = nullptr);

} // namespace ll
