#pragma once
// The tensors an export writes, read a band of rows at a time so that no
// tensor is ever held whole as F32: each output tensor knows its name and
// shape there and how to produce rows [r0, r0 + n) of its values in that
// layout (fused parts concatenated again, Conv1D weights transposed back, q/k
// rows permuted between rotary layouts). When its rows are rows of a stored,
// unedited tensor, it says which, so that bytes of the same type are copied
// as they are. Values come from the model as readLogical sees them (a factored
// tensor is its dense product A B), row by row.
#include "model/model.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ll {

// Writes rows [r0, r0 + n) of a tensor as F32 into out (n * rowLength values, row-major).
using BandReader = std::function<void(int64_t r0, int64_t n, float* out)>;

struct PlannedTensor {
    std::string name;
    std::vector<int64_t> shape;   // row-major, outermost first
    bool isBias = false;
    // Makes a reader of the rows; what the reader holds (a decoded factor, a
    // tensor that could only be read whole) is freed with it.
    std::function<BandReader()> openRows;
    // Set when every row is a whole row of the stored tensor `stored` as the
    // file holds it: row r is its row storedRowOf(r) (identity when empty).
    const TensorRef* stored = nullptr;
    std::function<int64_t(int64_t)> storedRowOf;
    // Bands of rows start on a multiple of this (whole rotary heads when a
    // computed tensor's rows are permuted), so that a band needs no rows outside it.
    int64_t rowAlign = 1;

    int64_t elements() const;
    // Values of the innermost dimension (ggml's ne[0], what quantization blocks run along).
    int64_t rowLength() const { return shape.empty() ? 1 : shape.back(); }
    // elements / rowLength: 1 for a 1-D tensor.
    int64_t rows() const;
    // The stored row that holds row r (stored must be set).
    int64_t storedRow(int64_t r) const { return storedRowOf ? storedRowOf(r) : r; }
    // The whole tensor as F32 (tests and small tensors only).
    std::vector<float> values() const;
};

// The stored tensor the logical tensors `parts` live in, rebuilt from their
// current (possibly edited, possibly shrunk) values: fused parts (GPT-2 c_attn,
// Phi-3 qkv_proj / gate_up_proj, GPT-NeoX's per-head interleaved
// query_key_value) are concatenated again and Conv1D weights transposed back.
// Unedited, it is the stored tensor itself. Throws InvalidArgument when the
// parts no longer fit together.
PlannedTensor rebuildStored(const Model& m, const std::string& name, std::vector<const LogicalTensor*> parts);

// A logical tensor as is (its logical layout), optionally with its rotary rows permuted.
enum class RotaryPermute { None, InterleavedToHalves, HalvesToInterleaved };
PlannedTensor logicalAsIs(const Model& m, const LogicalTensor& t, const std::string& name,
                          RotaryPermute permute = RotaryPermute::None, int64_t headDim = 0);

// A tensor of values computed by the exporter (rope_freqs.weight).
PlannedTensor computedTensor(const std::string& name, std::vector<float> values);

// Rows of (rows x cols) values, per head of headDim rows:
//   interleaved (GGUF / llama2.c): rotary pairs are rows (2i, 2i+1);
//   halves (Hugging Face rotate_half): pairs are rows (i, i + headDim/2).
// HF row h*hd + i = interleaved row h*hd + (i < hd/2 ? 2i : 2(i - hd/2) + 1).
std::vector<float> interleavedToHalves(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t headDim);
std::vector<float> halvesToInterleaved(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t headDim);

// "64 x 172" for messages.
std::string shapeText(const std::vector<int64_t>& shape);

} // namespace ll
