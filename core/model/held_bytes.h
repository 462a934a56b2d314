#pragma once
// How many bytes a logical tensor is held in, whatever its form: what the size
// model (analysis/model_size) and a state's bits a weight (recipe/apply) count.
#include "model/model.h"

#include <cstdint>

namespace ll {

// An edited tensor: its replaced values as stored (packed codes, sparse rows,
// F16 / BF16 / F32 values) plus its low-rank factors; a file's tensor: its
// share of the stored tensor (a part of a fused tensor by its elements).
uint64_t heldBytes(const Model& m, const LogicalTensor& t);

} // namespace ll
