#pragma once
// Compressed layers stay compressed: the stored form of a quantized layer in
// the edited model (replaceTensorStored), so that an applied RTN / GPTQ / AWQ
// 4-bit layer costs about 4.3 bits a weight in the state, the undo stack and
// the engine, not 32.
//
//   integer grids (RTN, GPTQ, AWQ ...): a packed Grid (model/packed_grid.h):
//     codes at their bits, a float scale and a byte zero point per group, the
//     permutation and input scale when used;
//   NF4, FP8, FP4: a packed Grid whose codes index the format's codebook,
//     with the method's scale per group (NF4's 64-value blocks when a row holds
//     whole blocks, FP8's per channel, FP4's groups);
//   BCQ: a binary-coding Grid, the alphas of each group beside the codes;
//   OWQ, LLM.int8 (16-bit input columns) and SpQR (single 16-bit weights):
//     the Grid with those values as its exceptions, kept as float32, while a
//     row stays within 2 bytes a weight;
//   ggml methods: the type's blocks as llama.cpp stores them (or F16).
//
// Only when the stored form decodes to exactly the layer's weights, bit for
// bit (checked here on every row): other forms (NF4 blocks that straddle rows)
// are kept as dense values by the caller. A LoRC / EoRA layer keeps its base's
// packed codes and its F16 factors.
#include "model/model.h"
#include "quant/quantized_layer.h"

#include <optional>

namespace ll {

// Moves the codes out of `layer` into a TensorRef of shape (rows, cols) when
// they are an exact stored form of layer.weights, or, for a layer with a
// low-rank correction (LoRC, EoRA: factorA, factorB), when their values plus
// A B are; nullopt (layer untouched) otherwise.
std::optional<TensorRef> takePackedTensor(QuantizedLayer& layer);

// A correction's factor as stored beside its base (replaceTensorCorrected):
// F16 when every value is one (LoRC and EoRA round them so), F32 otherwise.
TensorRef factorTensor(const MatrixRM& factor);

// The values of `values` (rows, cols) in `type` (F16 or BF16) when every one
// is exactly representable there, e.g. weights pruned from a BF16 checkpoint;
// nullopt otherwise.
std::optional<TensorRef> narrowExactly(const MatrixRM& values, DType type);
// The same rounded to nearest (what a cast to the model's dtype gives);
// nullopt when a finite value overflows the type.
std::optional<TensorRef> narrowRounded(const MatrixRM& values, DType type);

// The values of `values` (rows, cols) as Sparse rows (model/sparse_rows.h)
// of `type` (F32, F16 or BF16, each value rounded to nearest): a mask and the
// values that are not +0, when that takes at most 3/4 of the dense bytes
// (about 28 % zeros or more in F32, 31 % in F16 / BF16, with the mask and
// the row headers); nullopt otherwise, or when a finite value overflows the
// type. Decodes to narrowRounded's values bit for bit.
std::optional<TensorRef> sparseTensor(const MatrixRM& values, DType type);

// W rounded to `type` in place (F16 or BF16; F32 leaves it). False, and W
// unchanged, when a finite value would overflow the type.
bool roundToType(MatrixRM& W, DType type);

} // namespace ll
