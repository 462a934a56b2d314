#pragma once
// Argument checks shared by the pruning and low-rank methods; each throws
// InvalidArgument with a message a user can act on.
#include "model/tensor_data.h"

#include <Eigen/Core>

#include <string>

namespace ll {

// W must be non-empty and hold no NaN / Inf ("what" names it in the message).
void requireUsableWeights(const Eigen::Ref<const MatrixRM>& W, const std::string& what);
// A (in, in) Gram / Hessian matrix for a layer with `in` inputs, finite.
void requireGram(const Eigen::MatrixXf& G, Eigen::Index in, const std::string& what);
// A per-input-channel statistic of length `in`, finite and >= 0.
void requireChannelStat(const Eigen::VectorXf& v, Eigen::Index in, const std::string& what);

} // namespace ll
