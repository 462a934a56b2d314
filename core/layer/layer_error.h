#pragma once
// How much a compressed layer differs from the original: the numbers the GUI
// shows per layer and GPTQ / AWQ report.
//   weight error  ||W - W^||_F / ||W||_F
//   output error  ||X (W - W^)^T||_F / ||X W^T||_F for calibration inputs X
//                 (tokens, in), from their Gram matrix G = X^T X alone:
//                 sqrt(tr(D G D^T) / tr(W G W^T)), D = W - W^
//   statistics and histogram of the error values W^ - W (core/stats).
#include "model/tensor_data.h"
#include "stats/tensor_stats.h"

#include <Eigen/Core>

#include <optional>

namespace ll {

struct LayerErrorReport {
    double weightError = 0.0;            // relative Frobenius error of the weights
    std::optional<double> outputError;   // relative output error, when a Gram matrix was given
    TensorStats errorStats;              // of W^ - W, with its histogram
};

// W, What: (out, in); gram: (in, in) = X^T X, symmetric positive semi-definite.
// A zero W gives relative errors 0 when What is zero too, +inf otherwise.
// Throws InvalidArgument on mismatched shapes.
LayerErrorReport layerErrorReport(const MatrixRM& W, const MatrixRM& What, const Eigen::MatrixXf* gram = nullptr,
                                  const StatsOptions& statsOptions = {});

// The output error alone: sqrt(tr(D G D^T) / tr(W G W^T)). Costs two
// (out, in) x (in, in) products, i.e. 2 * out * in^2 multiply-adds.
double gramOutputError(const MatrixRM& W, const MatrixRM& What, const Eigen::MatrixXf& gram);

} // namespace ll
