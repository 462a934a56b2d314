#pragma once
// Pieces shared by the exporters: where the source model lives, the model's
// current dimensions, notes. The output tensors themselves are planned in
// export/planned_tensor.h and written band by band by export/tensor_stream.h.
#include "export/float_encode.h"
#include "export/planned_tensor.h"
#include "model/model.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ll {

class Progress;

// The files an opened model reads (never to be written), and the folder the user opened (HF folders).
// Throws InvalidArgument (naming `target`) for a model no file format can
// describe: QuaRot's online rotation of down_proj's input.
void refuseUnexportable(const Model& m, const std::string& target);

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

} // namespace ll
