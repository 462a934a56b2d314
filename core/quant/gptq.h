#pragma once
// GPTQ (Frantar et al. 2023), following the reference fasterquant
// (IST-DASLab/gptq gptq.py) step for step:
//   - H (in, in): any positive multiple of X^T X (the protocol: 2 X^T X / n).
//   - Grid parameters: per row (or per tensor) found once on W as given;
//     groups refit when the sweep reaches their first column, from the
//     group's weights with the updates of every earlier column applied. (The
//     IST-DASLab fasterquant reads the outer W there, which misses the current
//     block's in-block updates; the protocol's reference numbers come from the
//     updated weights: gptq_w3_asym_g32 7.5708 reproduced to 1e-6, the
//     outer-W variant gives 7.7128.) Static groups: every group's parameters
//     found on W before the sweep (after dead columns are zeroed), in natural
//     column order, so act-order needs no g_idx.
//   - Dead inputs (H_jj == 0): H_jj = 1, W[:, j] = 0.
//   - Act-order: columns permuted by descending diag(H) (a stable sort: ties
//     keep their natural order).
//   - Damping percdamp * mean(diag H), U = upper Cholesky factor of H^-1
//     (the reference: layer/obs_hessian.h, computed in double, used in float).
//   - The fast path gets U from quant/gptq_factor.h (one Cholesky of the
//     reversed H and a triangular inverse, in double), sweeps slices of rows
//     on separate threads (rows never interact given U), the block's columns
//     in sub-blocks of 32 (rank-1 updates inside, GEMMs for the rest).
//   - Column j: q = quant(w), err = (w - q) / U_jj, the block's later columns
//     -= err U[j, j..]; after the block, later columns -= Err U[block, later]
//     (lazy batch updates, blocks of `blockSize` columns).
//   - loss = sum (w - q)^2 / U_jj^2 / 2, the reference's printed "error".
// Extensions for the outlier-aware methods (quant/outlier_aware.h): a keep
// mask (weights that stay at their current value, err = 0, and are left out
// of the grid's ranges) and columns moved to the end of the order.
#include "model/tensor_data.h"
#include "quant/grid.h"
#include "quant/quantized_layer.h"

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace ll {

class Progress;

struct GptqOptions {
    QuantGrid grid{4, false, 0};
    int blockSize = 128;
    double percDamp = 0.01;
    bool actOrder = false;
    bool staticGroups = false;                   // only with groups
    // Outlier-aware extensions. keep: rows * cols, row-major, nonzero = keep
    // the weight unquantized; lastColumns: processed after every other column.
    const std::vector<char>* keep = nullptr;
    std::vector<int32_t> lastColumns;
    // GPTAQ (Li et al., 2025, arXiv:2504.02692): ΔXᵀX = Σ_t (x̃_t − x_t)ᵀ x_t over the
    // calibration tokens, (in, in), summed like H (x̃: the full-precision model's
    // input to this layer, x: the input through the already quantized layers).
    // The sweep then also targets the full-precision outputs: with U the upper
    // factor of H⁻¹ and P = alpha · triu₁(ΔXᵀX Uᵀ) U, each column's value before
    // rounding, times P's row, moves onto the later columns. Null: plain GPTQ.
    const Eigen::MatrixXf* asymmetry = nullptr;
    double alpha = 0.25;
};

struct GptqResult {
    MatrixRM dequantized;               // (out, in) W^; kept weights hold their updated values
    std::vector<uint8_t> codes;         // rows * cols, natural column order (kept weights: 0)
    GridParams params;                  // (rows, groups); with act-order and refit groups, groups in sweep order
    std::vector<int32_t> groupIndex;    // (in,) group of each column (empty when it is c / groupCols);
                                        // counted as a 32-bit g_idx per column with act-order
    std::vector<int32_t> order;         // (in,) the sweep order: order[k] = column quantized k-th
    std::vector<char> dead;             // (in,) 1 where diag(H) was 0
    MatrixRM weightLoss;                // (out, in) (w - q)^2 / U_jj^2 / 2 per weight (w as updated when reached)
    double loss = 0.0;
    double bitsPerWeight = 0.0;         // grid bits (+ 32 bits per column of g_idx with act-order and refit groups)
};

// W: (out, in), H: (in, in). Throws InvalidArgument for bad shapes, NaN / Inf,
// a Hessian that damping cannot make positive definite, or staticGroups
// without groups. Cancellable between blocks.
GptqResult gptqQuantize(const MatrixRM& W, const Eigen::MatrixXf& H, const GptqOptions& options,
                        Progress* progress = nullptr);

// The scalar reference: the same sweep with plain loops, every update applied
// at once to every later column (no lazy batches). Slow; for tests.
GptqResult gptqQuantizeRef(const MatrixRM& W, const Eigen::MatrixXf& H, const GptqOptions& options);

// The common layer result: packed codes, bits (g_idx included), loss, errors.
// inputs.gram is the Hessian (required). Kept weights (options.keep) become
// sparse 16-bit outliers.
QuantizedLayer gptqLayer(const MatrixRM& W, const LayerInputs& inputs, const GptqOptions& options,
                         Progress* progress = nullptr);
QuantizedLayer quantizedLayerFromGptq(const MatrixRM& W, GptqResult r, const LayerInputs& inputs,
                                      const GptqOptions& options);

} // namespace ll
