#pragma once
// llama.cpp's importance matrix ("imatrix", llama-imatrix): for every block
// linear, the mean of x_j² over the calibration tokens for each input column
// j. llama-quantize --imatrix weighs each column's rounding error by it
// (quantize_row_*_impl); LayerLab's ggml quantizers do the same
// (quant/ggml_quantize.h), so a GGUF export with an imatrix is byte-identical
// to llama-quantize's with the same file.
//
// The file is llama.cpp's (examples/imatrix at c392e50), little-endian:
//   int32 n_entries
//   n_entries × { int32 name length, name (the GGUF tensor name, "blk.0.attn_q.weight"),
//                 int32 ncall, int32 nval, float32 values[nval] = mean(x_j²) · ncall }
//   int32 chunks, int32 dataset length, dataset (the text's file name)   — optional trailer
#include "model/model.h"
#include "pipeline/quantize_model.h"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace ll {

class Progress;

struct ImatrixEntry {
    std::vector<float> meanSquare; // mean of x_j² per input column
    int32_t calls = 0;             // llama.cpp's ncall: the chunks (matrix products) it was gathered over
};

struct Imatrix {
    std::map<std::string, ImatrixEntry> entries; // by GGUF tensor name
    int32_t chunks = 0;                          // chunks of the text it was computed on
    std::string dataset;                         // the text it was computed on

    // The importance of a tensor (nullptr when the file has none for it).
    const std::vector<float>* find(const std::string& ggufName) const;
};

struct ImatrixOptions {
    int64_t context = 512; // tokens per chunk (llama-imatrix -c); the first of each is BOS
    int64_t chunks = 0;    // at most this many chunks (0: every whole chunk of the text)
};

// As llama-imatrix gathers it: the text's tokens cut into chunks of
// `context` (each starting with BOS), every chunk through the model, the
// squares of each block linear's input summed per column and divided by the
// tokens seen. `dataset` names the text in the file.
Imatrix computeImatrix(const Model& model, std::span<const int32_t> tokens, const ImatrixOptions& options,
                       const std::string& dataset, Progress* progress = nullptr);

// Written atomically (a partial file renamed when complete).
void saveImatrix(const Imatrix& imatrix, const std::string& path, bool overwrite = true);
// Errors (Truncated, Malformed) name the file; sizes are checked against it.
Imatrix loadImatrix(const std::string& path);

// The block linears of `model` the imatrix has no entry of the right length
// for, by GGUF name (llama-quantize quantizes those without one).
std::vector<std::string> imatrixGaps(const Imatrix& imatrix, const Model& model);

// A quantize step's `imatrix` parameter (ggml method): the file's entries put
// into options.importance by logical name, for every block linear it has one
// for (the others are quantized without, as llama-quantize does). Nothing
// when the parameter is absent or empty. An entry whose length does not fit
// its tensor is an error naming the file.
void useImatrixParam(const Model& model, QuantizeModelOptions& options);

} // namespace ll
