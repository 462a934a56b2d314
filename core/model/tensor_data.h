#pragma once
// Turning stored bytes into floats. Everything numerical in LayerLab works on
// F32 copies produced here, whatever the stored type.
#include "model/model.h"

#include <Eigen/Core>

#include <string>
#include <vector>

namespace ll {

class Progress;

using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Decodes a whole stored tensor, row-major in its stored shape.
// Throws UnsupportedDType for types LayerLab cannot decode.
std::vector<float> decodeStored(const TensorRef& t, Progress* progress = nullptr);

// Decodes `count` consecutive values starting at element `first` (which must
// be a multiple of the type's block size); for streaming statistics.
void decodeRange(const TensorRef& t, int64_t first, int64_t count, float* out);

// The logical tensor's values, row-major in its logical shape (part selected,
// Conv1D transposed; a factored tensor's dense product A B, a corrected
// one's W^ + A B).
std::vector<float> readLogical(const Model& m, const LogicalTensor& t, Progress* progress = nullptr);

// A 1-D or 2-D logical tensor as a row-major matrix (1-D tensors become one row).
MatrixRM readMatrix(const Model& m, const LogicalTensor& t);

// The factors A (out, k) and B (k, in) of a factored or corrected tensor;
// false (A, B untouched) when t has none.
bool readFactors(const Model& m, const LogicalTensor& t, MatrixRM& A, MatrixRM& B);

// W += A B in place, a corrected tensor's value: the one function that LoRC /
// EoRA, readLogical and the packing check compute it with, so that they agree
// bit for bit. In place, because W is a whole layer (180 MB for a 7B down_proj).
void addLowRank(Eigen::Ref<MatrixRM> W, const MatrixRM& A, const MatrixRM& B);
// The same into a copy of W.
MatrixRM plusLowRank(const MatrixRM& W, const MatrixRM& A, const MatrixRM& B);

// replaceTensorFactored (model.h) with the factors as matrices: W = A (out, k) B (k, in).
void replaceTensorFactored(Model& m, const std::string& logicalName, const MatrixRM& A, const MatrixRM& B);

} // namespace ll
