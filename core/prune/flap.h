#pragma once
// FLAP (An et al., 2024, "Fluctuation-based Adaptive Structured Pruning for
// Large Language Models", arXiv:2312.11983): the per-layer pieces.
//
// A structured unit (an MLP neuron, an attention KV group) feeds the output
// projection W (out, in) through input channels j. If channel j barely moves
// across tokens, x_j ≈ mean_j, and its contribution W[:, j] x_j is nearly a
// constant that a bias can carry. So FLAP scores channels by how much they
// FLUCTUATE, weighted by the weights that read them:
//   score_j = Var_t(x_j) · ||W[:, j]||²        (the paper's WIFV metric)
// removes the lowest-scoring units, and compensates with
//   b' = b + Σ_{j removed} W[:, j] · mean_t(x_j)
// which is exact when a removed channel is constant.
#include "model/tensor_data.h"

#include <Eigen/Core>

#include <cstdint>
#include <span>
#include <vector>

namespace ll {

// Per input channel of one linear: the mean and the (population) variance over
// the calibration tokens.
struct ChannelMoments {
    Eigen::VectorXd mean, variance;
    int64_t tokens = 0;
    // From Σx and Σx² over `tokens` rows; variance clamped at 0 (rounding).
    static ChannelMoments fromSums(const Eigen::VectorXd& sum, const Eigen::VectorXd& sumSquares, int64_t tokens);
};

// (in,) score_j = variance_j · ||W[:, j]||² for W (out, in).
std::vector<double> fluctuationScores(const MatrixRM& W, const ChannelMoments& x);
// The same by plain loops in double, for tests.
std::vector<double> fluctuationScoresRef(const MatrixRM& W, const ChannelMoments& x);

// Sums of `width` consecutive channel scores (a KV group's query channels of o).
std::vector<double> groupSums(std::span<const double> channelScores, int64_t width);

// FLAP's standardisation of one layer's scores: (s − mean) / std (population
// std); all zeros when the scores are all equal.
std::vector<double> standardized(std::span<const double> scores);

// (out,) the bias change W[:, removed] · mean[removed] for W (out, in);
// kept[j] != 0 for the input channels that stay.
Eigen::VectorXf compensationBias(const MatrixRM& W, const Eigen::VectorXd& mean, const std::vector<char>& kept);

// FLAP's adaptive structure over every block and both modules. Each unit has
// a standardized score and a parameter cost (a KV group: (2g + 2)·hd·d, a
// neuron: 3·d when gated); the units with the highest scores are kept until
// (1 − ratio) of the total cost is reached, and the rest are removed.
// scores[m][b] are module m's standardized scores in block b. Returns how many
// units of each module are removed in all, as FLAP's global threshold decides.
std::vector<int64_t> adaptiveRemovalCounts(const std::vector<std::vector<std::vector<double>>>& scores,
                                           const std::vector<double>& unitCost, double ratio);

} // namespace ll
