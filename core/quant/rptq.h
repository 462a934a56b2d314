#pragma once
// RPTQ (Yuan et al., 2023, "RPTQ: Reorder-based Post-training Quantization for
// Large Language Models", arXiv:2304.01089): the channels of an activation
// have very different ranges, so one range per tensor wastes most codes on
// the few wide channels. RPTQ clusters the channels by their (min, max) on the
// calibration samples with k-means and gives every cluster its own static,
// asymmetric range:
//   x̂_j = lo_c + Δ_c · clamp(round((x_j − lo_c) / Δ_c), 0, 2^a − 1),
//   lo_c = min over the cluster's channels of min x_j, Δ_c = (hi_c − lo_c) / (2^a − 1)
// The paper then REORDERS the channels so that each cluster is contiguous
// (the permutation folds into the norm and the weights that read the input),
// which lets an int kernel treat a cluster as one block; numerically that is
// the same per-cluster quantization, which is what LayerLab simulates. Weights
// are symmetric per output row, 4 to 8 bits (the paper pairs W4 with GPTQ).
#include "model/tensor_data.h"

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace ll {

struct RptqClusters {
    std::vector<int32_t> cluster;   // (in,) the cluster of each channel
    Eigen::VectorXf low, step;      // (in,) lo_c and Δ_c of each channel's cluster
    int clusters = 0;               // clusters in use (≤ the requested count)
};

// k-means (Lloyd, 50 iterations, deterministic start at the quantiles of the
// channels' max) on the points (min x_j, max x_j) of X (tokens, in).
RptqClusters rptqClusters(const MatrixRM& X, int clusters, int actBits);

// x_j ← lo_j + Δ_j · clamp(round((x_j − lo_j) / Δ_j), 0, 2^bits − 1), in place
// (Δ_j = 0: the channel stays lo_j).
void quantizeClusteredRows(Eigen::Ref<MatrixRM> X, const Eigen::VectorXf& low, const Eigen::VectorXf& step, int bits);

} // namespace ll
