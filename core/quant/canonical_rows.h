#pragma once
// Calibration searches that must not depend on thread timing. The engine hands
// captured input rows over from several threads, in any order; a search that
// reads "the first n rows" or sums losses row by row would then differ
// between two runs. canonicalRows picks rows by their values instead.
#include "model/tensor_data.h"

namespace ll {

// The first min(n, rows) rows of X in lexicographic order of their values.
MatrixRM canonicalRows(const MatrixRM& X, Eigen::Index n);

} // namespace ll
