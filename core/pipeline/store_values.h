#pragma once
// How an edited tensor's new dense values are kept in the edited model.
//
// In the tensor's own type when it was F16 or BF16 (the checkpoint's
// precision), rounded to nearest, as the methods' reference code casts a layer
// back to the model's dtype (SparseGPT's `.to(dtype)`, QuaRot's and SliceGPT's
// rotated weights): a pruned, rotated or sliced 7B BF16 model then stays at 2
// bytes a weight instead of growing to 27 GB of F32. A tensor held in a ggml
// block type (coarser than F16) takes F16. F32 stays F32, and so do values
// that F16 cannot hold (beyond ±65504). A pruned layer keeps only its kept
// values, in that type, beside a mask. Packed quantized layers do not come
// here (quant/packed_storage.h).
#include "model/model.h"
#include "model/tensor_data.h"

#include <string>

namespace ll {

// The type storeDense keeps `name`'s values in: F16, BF16 or F32.
DType denseEditType(const Model& m, const std::string& name);

// Stores W as `name`'s new values in denseEditType(m, name), rounded to it
// (F32 when a value does not fit). Pruned values (about 30 % zeros or more)
// are kept as Sparse rows of that type: a mask and the kept values
// (quant/packed_storage.h sparseTensor), decoding to the same values.
void storeDense(Model& m, const std::string& name, const MatrixRM& W);

} // namespace ll
