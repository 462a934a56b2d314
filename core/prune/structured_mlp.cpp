#include "prune/structured.h"

#include "layer/checks.h"
#include "util/error.h"

#include <string>

namespace ll {

namespace {

void checkMlp(const MlpWeights& m)
{
    requireUsableWeights(m.up, "the MLP up projection");
    requireUsableWeights(m.down, "the MLP down projection");
    const Eigen::Index ff = m.up.rows(), d = m.up.cols();
    if (m.down.rows() != d || m.down.cols() != ff)
        fail(ErrorCode::InvalidArgument, "",
             "the down projection must be " + std::to_string(d) + " x " + std::to_string(ff) + " for an up projection of "
                 + std::to_string(ff) + " x " + std::to_string(d));
    if (m.gate.size() > 0) {
        requireUsableWeights(m.gate, "the MLP gate projection");
        if (m.gate.rows() != ff || m.gate.cols() != d)
            fail(ErrorCode::InvalidArgument, "", "the gate projection must have the up projection's shape");
    }
}

void checkIndices(const std::vector<int64_t>& kept, int64_t n, const char* what)
{
    for (int64_t i : kept)
        if (i < 0 || i >= n)
            fail(ErrorCode::InvalidArgument, "",
                 std::string("kept ") + what + " " + std::to_string(i) + " is outside 0.." + std::to_string(n - 1));
}

} // namespace

std::vector<double> mlpNeuronImportance(const MlpWeights& mlp, StructuredScore score, const Eigen::VectorXf* downInputNorm)
{
    checkMlp(mlp);
    const Eigen::Index ff = mlp.up.rows();
    std::vector<double> out(static_cast<size_t>(ff), 0.0);
    if (score == StructuredScore::ActivationAware) {
        if (!downInputNorm)
            fail(ErrorCode::InvalidArgument, "", "activation-aware neuron scores need the down projection's input norms");
        requireChannelStat(*downInputNorm, ff, "the down projection's input norm");
        for (Eigen::Index j = 0; j < ff; ++j) // ||X_j|| * ||W_down[:, j]||
            out[static_cast<size_t>(j)] = static_cast<double>((*downInputNorm)[j])
                                          * mlp.down.col(j).cast<double>().norm();
        return out;
    }
    for (Eigen::Index j = 0; j < ff; ++j) {
        double s = mlp.up.row(j).cast<double>().cwiseAbs().sum() + mlp.down.col(j).cast<double>().cwiseAbs().sum();
        if (mlp.gate.size() > 0)
            s += mlp.gate.row(j).cast<double>().cwiseAbs().sum();
        out[static_cast<size_t>(j)] = s;
    }
    return out;
}

MlpWeights sliceMlp(const MlpWeights& mlp, const std::vector<int64_t>& keptNeurons)
{
    checkMlp(mlp);
    checkIndices(keptNeurons, mlp.up.rows(), "neuron");
    const auto n = static_cast<Eigen::Index>(keptNeurons.size());
    MlpWeights out;
    out.up.resize(n, mlp.up.cols());
    out.down.resize(mlp.down.rows(), n);
    if (mlp.gate.size() > 0)
        out.gate.resize(n, mlp.gate.cols());
    for (Eigen::Index i = 0; i < n; ++i) {
        const Eigen::Index j = keptNeurons[static_cast<size_t>(i)];
        out.up.row(i) = mlp.up.row(j);
        out.down.col(i) = mlp.down.col(j);
        if (mlp.gate.size() > 0)
            out.gate.row(i) = mlp.gate.row(j);
    }
    return out;
}

} // namespace ll
