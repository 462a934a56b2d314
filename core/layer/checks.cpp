#include "layer/checks.h"

#include "util/error.h"

#include <cmath>

namespace ll {

namespace {

std::string shape(Eigen::Index r, Eigen::Index c) { return std::to_string(r) + " x " + std::to_string(c); }

} // namespace

void requireUsableWeights(const Eigen::Ref<const MatrixRM>& W, const std::string& what)
{
    if (W.size() == 0)
        fail(ErrorCode::InvalidArgument, "", what + " is empty");
    for (Eigen::Index r = 0; r < W.rows(); ++r)
        for (Eigen::Index c = 0; c < W.cols(); ++c)
            if (!std::isfinite(W(r, c)))
                fail(ErrorCode::InvalidArgument, "",
                     what + " holds " + (std::isnan(W(r, c)) ? "NaN" : "an infinite value") + " at row "
                         + std::to_string(r) + ", column " + std::to_string(c));
}

void requireGram(const Eigen::MatrixXf& G, Eigen::Index in, const std::string& what)
{
    if (G.rows() != in || G.cols() != in)
        fail(ErrorCode::InvalidArgument, "",
             what + " is " + shape(G.rows(), G.cols()) + " but the layer has " + std::to_string(in) + " inputs");
    if (!G.allFinite())
        fail(ErrorCode::InvalidArgument, "", what + " holds NaN or infinite values");
}

void requireChannelStat(const Eigen::VectorXf& v, Eigen::Index in, const std::string& what)
{
    if (v.size() != in)
        fail(ErrorCode::InvalidArgument, "",
             what + " has " + std::to_string(v.size()) + " values but the layer has " + std::to_string(in) + " inputs");
    for (Eigen::Index j = 0; j < v.size(); ++j)
        if (!std::isfinite(v[j]) || v[j] < 0.0f)
            fail(ErrorCode::InvalidArgument, "",
                 what + " of input channel " + std::to_string(j) + " is " + std::to_string(v[j])
                     + "; it must be a finite value >= 0");
}

} // namespace ll
