#pragma once
// Outlier Suppression+ (Wei et al., 2023, arXiv:2304.09145): activation
// outliers are asymmetric and sit in a few channels, so each input channel j
// is first SHIFTED to be centred and then SCALED down:
//   z_j = (max_t x_j + min_t x_j) / 2,   s_j = max(1, (max_t x_j − z_j) / t)
//   x̃ = (x − z) / s,   W̃ = W diag(s),   b̃ = b + W z
// which computes W x + b exactly before quantization. The threshold t is
// searched on the calibration samples for the smallest output error of the
// quantized product Q(W̃) Q(x̃) (the paper's equivalent, optimal shifting and scaling).
//
// Activations are quantized PER TENSOR with a static range measured on the
// calibration samples, as in the paper: a shift pays off there (the range of
// x − z is narrower); with per-token dynamic scales, centring a skewed channel
// by its mid-range makes every token's largest value larger (on stories260K
// W8A4: 40.1 per token with the shift, 7.6 without).
//
// Simulation in LayerLab: the weight side is SmoothQuant's (W^ =
// Q8(W diag s) diag(s)^-1 in the model, W diag(s) in the engine, 1/s folded
// into the norms of q, k, v and gate, up), and the engine's input hook
// quantizes x̃ − z/s with the static step and adds z/s back, which is the
// folded form's Q(x̃) W̃ᵀ + W z up to float rounding. z needs no bias in the
// file: exports hold the weights only, as for SmoothQuant.
#include "model/tensor_data.h"

#include <Eigen/Core>

#include <span>

namespace ll {

struct OsPlusParams {
    Eigen::VectorXf shift, scale; // z and s, (in,)
    float range = 0.0f;           // max |(x − z) / s| on the samples: the static activation range
    double threshold = 0.0;       // t
    double loss = 0.0;            // Σ over the linears of ‖Ŷ − Y‖² on the searched samples at t
    double outputNorm2 = 0.0;     // Σ ‖Y‖² on the same samples
};

// Searches t over `gridPoints` fractions k / gridPoints (k = 1..gridPoints) of
// the largest half-range, on X (tokens, in) — 256 of its rows, the first in
// lexicographic order (captured rows arrive in any order) — for the
// linears Ws (out, in) that read it, weights symmetric per row at weightBits, activations per
// tensor with `actBits` over the range the samples give. shift = false: z = 0
// (the ablation).
OsPlusParams osPlusParams(const MatrixRM& X, std::span<const MatrixRM* const> Ws, int actBits, int gridPoints = 20,
                          bool shift = true, int weightBits = 8);

// Σ_W ‖Q_b(W diag s) Q_R((X − z) ⊘ s)ᵀ + W z − W Xᵀ‖² (the search's loss), by loops in double;
// Q_b: symmetric per row at weightBits;
// Q_R rounds to the symmetric grid of `bits` over [−R, R].
double osPlusLossRef(const MatrixRM& X, std::span<const MatrixRM* const> Ws, const Eigen::VectorXf& shift,
                     const Eigen::VectorXf& scale, float range, int actBits, int weightBits = 8);

// Q_R in place: clamp(round(u / Δ)) Δ with Δ = R / (2^(bits−1) − 1).
void quantizeStatic(Eigen::Ref<MatrixRM> U, float range, int bits);

// The engine's hook on inputs u already divided by s: u ← Q_R(u − z') + z'
// with z' = z ⊘ s (in place).
void quantizeShiftedRows(Eigen::Ref<MatrixRM> U, const Eigen::VectorXf& scaledShift, float range, int bits);

} // namespace ll
