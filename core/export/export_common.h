#pragma once
// Pieces shared by the exporters: planned output tensors, rebuilding a source
// file's (fused, transposed) layout from the logical tensors, the rotary row
// permutations, float encodings and the model's current dimensions. Values come
// from readLogical, so a factored tensor is exported as its dense product A B.
#include "model/model.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ll {

class Progress;

// One tensor of an output file: its name there, its shape (row-major, outermost
// first) and how to compute its current values in that layout.
struct PlannedTensor {
    std::string name;
    std::vector<int64_t> shape;
    std::function<std::vector<float>()> values;
    bool isBias = false;

    int64_t elements() const;
    // Values of the innermost dimension (ggml's ne[0], what quantization blocks run along).
    int64_t rowLength() const { return shape.empty() ? 1 : shape.back(); }
};

// The stored tensor the logical tensors `parts` live in, rebuilt from their
// current (possibly edited, possibly shrunk) values: fused parts (GPT-2 c_attn,
// Phi-3 qkv_proj / gate_up_proj, GPT-NeoX's per-head interleaved
// query_key_value) are concatenated again and Conv1D weights transposed back.
// Throws InvalidArgument when the parts no longer fit together.
PlannedTensor rebuildStored(const Model& m, const std::string& name, std::vector<const LogicalTensor*> parts);

// A logical tensor as is (its logical layout), optionally with its rotary rows permuted.
enum class RotaryPermute { None, InterleavedToHalves, HalvesToInterleaved };
PlannedTensor logicalAsIs(const Model& m, const LogicalTensor& t, const std::string& name,
                          RotaryPermute permute = RotaryPermute::None, int64_t headDim = 0);

// Rows of (rows x cols) values, per head of headDim rows:
//   interleaved (GGUF / llama2.c): rotary pairs are rows (2i, 2i+1);
//   halves (Hugging Face rotate_half): pairs are rows (i, i + headDim/2).
// HF row h*hd + i = interleaved row h*hd + (i < hd/2 ? 2i : 2(i - hd/2) + 1).
std::vector<float> interleavedToHalves(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t headDim);
std::vector<float> halvesToInterleaved(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t headDim);

// F32 / F16 / BF16 bytes of `values`; `overflowed` counts finite values that became ±inf (F16 beyond ±65504).
std::vector<uint8_t> encodeFloats(const std::vector<float>& values, DType type, int64_t* overflowed = nullptr);

// The files an opened model reads (never to be written), and the folder the user opened (HF folders).
std::vector<std::string> sourceFilesOf(const Model& m);
std::string sourceFolderOf(const Model& m);
// The folder that holds the model's side files (config.json, tokenizer): the folder
// opened, or the folder of the file opened.
std::string sourceSideFolderOf(const Model& m);

// Dimensions as the current tensor shapes say (structured pruning shrinks them).
struct CurrentDims {
    int64_t vocab = 0, hidden = 0;
    std::vector<int64_t> ffn, heads, kvHeads; // one per block
    bool uniformFfn() const;
    bool uniformHeads() const;
    bool uniformKvHeads() const;
};
CurrentDims currentDims(const Model& m);

// "12 tensors were already quantized in the source (Q4_K, Q6_K): ..." when the source
// holds block-quantized weights whose dequantized values are exported (those
// `copiedAsIs` says were copied byte for byte do not count); empty otherwise.
std::string quantizedSourceNote(const Model& m, const std::function<bool(const LogicalTensor&)>& copiedAsIs = {});

// Shortest decimal that reads back as the same float: 9.99999975e-06 (a GGUF f32) -> 1e-05.
double shortestFloat(double v);

// "64 x 172" for messages.
std::string shapeText(const std::vector<int64_t>& shape);

} // namespace ll
