#pragma once
// SparseGPT (Frantar & Alistarh 2023): prune with an OBS-style update of the
// remaining weights, column by column, following the reference fasterprune
// (IST-DASLab/sparsegpt sparsegpt.py) step for step:
//   - H (in, in) = any positive multiple of X^T X (the protocol: 2 X^T X / n);
//     dead inputs (H_jj == 0) get H_jj = 1 and W[:, j] = 0; damping
//     percdamp * mean(diag H); U = upper Cholesky factor of H^-1 (obs_hessian.h).
//   - Columns in blocks of `blockSize`. Unstructured: at the start of each
//     block, over all rows and the block's columns, prune the lowest fraction
//     of w^2 / U_jj^2 (w already updated by the earlier blocks). N:M: at the
//     first column of each group of m, per row, prune the m - n lowest of the
//     group's w^2 / U_jj^2 (w updated by the earlier columns).
//   - For each column j: q = w masked (and quantized), err = (w - q) / U_jj,
//     columns j.. of the block -= err * U[j, j..]; after the block, the later
//     columns -= Err * U[block, later] (the lazy batch update).
// Differences to the reference: exact counts per block unless countRule is
// Inclusive (see score_mask.h);
// the Hessian factor is computed in double.
#include "prune/score_mask.h"
#include "layer/sparsity_mask.h"
#include "prune/weight_quantizer.h"

#include <Eigen/Core>

#include <optional>

namespace ll {

class Progress;

struct SparseGptOptions {
    double sparsity = 0.5;              // unstructured: fraction pruned in each block
    std::optional<NMPattern> nm{};      // set: N:M instead (sparsity is ignored)
    int blockSize = 128;                // N:M: rounded down to a multiple of m
    double percDamp = 0.01;
    CountRule countRule = CountRule::Exact; // unstructured: Inclusive = the reference's `tmp <= thresh`
    WeightQuantizer quantizer{};        // set: joint sparsity + quantization
    const SparsityMask* fixedMask = nullptr; // set: use this mask, only reconstruct
};

struct SparseGptResult {
    MatrixRM weights;  // W^ (out, in): pruned, updated (and quantized) weights
    SparsityMask mask; // the pruning decisions (dead inputs are zero as well)
    double loss = 0.0; // the reference's "error": sum (w - q)^2 / U_jj^2 / 2
};

// W: (out, in), H: (in, in). Cancellable between blocks.
SparseGptResult sparseGpt(const MatrixRM& W, const Eigen::MatrixXf& H, const SparseGptOptions& options,
                          Progress* progress = nullptr);

} // namespace ll
