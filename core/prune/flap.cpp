#include "prune/flap.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace ll {

ChannelMoments ChannelMoments::fromSums(const Eigen::VectorXd& sum, const Eigen::VectorXd& sumSquares, int64_t tokens)
{
    if (tokens <= 0 || sum.size() != sumSquares.size())
        fail(ErrorCode::InvalidArgument, "", "channel moments need tokens and matching sums");
    ChannelMoments m;
    m.tokens = tokens;
    const double n = static_cast<double>(tokens);
    m.mean = sum / n;
    m.variance = (sumSquares / n - m.mean.cwiseAbs2()).cwiseMax(0.0);
    return m;
}

std::vector<double> fluctuationScores(const MatrixRM& W, const ChannelMoments& x)
{
    if (x.variance.size() != W.cols())
        fail(ErrorCode::InvalidArgument, "", "the channel statistics have " + std::to_string(x.variance.size())
                                                 + " channels, the weight " + std::to_string(W.cols()) + " inputs");
    const Eigen::RowVectorXd colNorms2 = W.cast<double>().colwise().squaredNorm();
    std::vector<double> s(static_cast<size_t>(W.cols()));
    for (Eigen::Index j = 0; j < W.cols(); ++j)
        s[static_cast<size_t>(j)] = x.variance[j] * colNorms2[j];
    return s;
}

std::vector<double> fluctuationScoresRef(const MatrixRM& W, const ChannelMoments& x)
{
    std::vector<double> s(static_cast<size_t>(W.cols()), 0.0);
    for (Eigen::Index j = 0; j < W.cols(); ++j) {
        double n2 = 0.0;
        for (Eigen::Index i = 0; i < W.rows(); ++i)
            n2 += static_cast<double>(W(i, j)) * static_cast<double>(W(i, j));
        s[static_cast<size_t>(j)] = x.variance[j] * n2;
    }
    return s;
}

std::vector<double> groupSums(std::span<const double> channelScores, int64_t width)
{
    if (width <= 0 || channelScores.size() % static_cast<size_t>(width) != 0)
        fail(ErrorCode::InvalidArgument, "", "channel scores do not split into groups of " + std::to_string(width));
    std::vector<double> out(channelScores.size() / static_cast<size_t>(width), 0.0);
    for (size_t c = 0; c < channelScores.size(); ++c)
        out[c / static_cast<size_t>(width)] += channelScores[c];
    return out;
}

std::vector<double> standardized(std::span<const double> scores)
{
    std::vector<double> out(scores.size(), 0.0);
    if (scores.empty())
        return out;
    const double n = static_cast<double>(scores.size());
    const double mean = std::accumulate(scores.begin(), scores.end(), 0.0) / n;
    double var = 0.0;
    for (double s : scores)
        var += (s - mean) * (s - mean);
    const double sd = std::sqrt(var / n);
    if (!(sd > 0.0))
        return out;
    for (size_t i = 0; i < scores.size(); ++i)
        out[i] = (scores[i] - mean) / sd;
    return out;
}

Eigen::VectorXf compensationBias(const MatrixRM& W, const Eigen::VectorXd& mean, const std::vector<char>& kept)
{
    if (mean.size() != W.cols() || static_cast<Eigen::Index>(kept.size()) != W.cols())
        fail(ErrorCode::InvalidArgument, "", "bias compensation needs one mean and one kept flag per input channel");
    Eigen::VectorXd b = Eigen::VectorXd::Zero(W.rows());
    for (Eigen::Index j = 0; j < W.cols(); ++j)
        if (!kept[static_cast<size_t>(j)])
            b += W.col(j).cast<double>() * mean[j];
    return b.cast<float>();
}

std::vector<int64_t> adaptiveRemovalCounts(const std::vector<std::vector<std::vector<double>>>& scores,
                                           const std::vector<double>& unitCost, double ratio)
{
    if (scores.size() != unitCost.size())
        fail(ErrorCode::InvalidArgument, "", "one unit cost per module is needed");
    if (!(ratio >= 0.0 && ratio < 1.0))
        fail(ErrorCode::InvalidArgument, "", "the pruning ratio must be in [0, 1)");
    struct Unit {
        double score;
        size_t module;
    };
    std::vector<Unit> units;
    double total = 0.0;
    for (size_t m = 0; m < scores.size(); ++m)
        for (const std::vector<double>& block : scores[m])
            for (double s : block) {
                units.push_back({s, m});
                total += unitCost[m];
            }
    // Highest scores first (ties: attention before MLP, as the modules are listed).
    std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) { return a.score > b.score; });
    // Keep while the kept cost is nearer to the target with the unit than without it
    // (FLAP: argmin |cumsum(cost) − (1 − ratio)·total|).
    const double target = (1.0 - ratio) * total;
    double kept = 0.0;
    size_t i = 0;
    for (; i < units.size(); ++i) {
        const double next = kept + unitCost[units[i].module];
        if (std::abs(next - target) > std::abs(kept - target))
            break;
        kept = next;
    }
    std::vector<int64_t> removed(scores.size(), 0);
    for (; i < units.size(); ++i)
        ++removed[units[i].module];
    return removed;
}

} // namespace ll
