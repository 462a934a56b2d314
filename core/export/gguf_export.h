#pragma once
// GGUF export of llama-family models (general.architecture "llama"), loadable by
// llama.cpp: llama.cpp's tensor names, q/k rows in its interleaved rotary layout,
// the llama.* hyper-parameters, rope scaling as llama.cpp's converter writes it
// (linear: keys; Llama 3: the rope_freqs.weight tensor), the tokenizer, and 2-D
// weights in the requested type (F32, F16, BF16 or any ggml block type
// quantizeGgml writes) or in the types a llama-quantize preset chooses per tensor
// (Q4_K_M ...: export/gguf_presets.h), streamed band by band (export/tensor_stream.h).
// 1-D tensors (norms, biases) stay F32. A weight whose rows do not hold whole blocks of
// its type falls back the way llama-quantize does; every fallback is listed.
// A factored (low-rank) layer is written as its dense product A B (llama.cpp has
// no factored linear), quantized like any other weight.
#include "export/export_result.h"
#include "export/gguf_presets.h"
#include "model/model.h"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace ll {

class Progress;
struct Imatrix;

struct GgufExportOptions {
    DType type = DType::F16;     // for 2-D weights, unless a preset is given
    // llama-quantize's per-tensor choice of types (general.file_type is the preset's); `type` is then unused.
    std::optional<GgufPreset> preset;
    bool overwrite = false;
    Progress* progress = nullptr;
    std::string name;            // general.name; empty: the source's name
    size_t chunkBytes = 0;       // F32 bytes converted at once (0: kDefaultExportChunkBytes, export/tensor_stream.h)
    // llama.cpp's importance matrix (pipeline/imatrix.h): each quantized tensor it
    // has an entry for is rounded with it, as llama-quantize --imatrix FILE does;
    // imatrixFile is FILE as the user named it (the quantize.imatrix.* keys).
    const Imatrix* imatrix = nullptr;
    std::string imatrixFile;
};

// Llama 3.x rope scaling (transformers' rope_type "llama3").
struct Llama3RopeScaling {
    double factor = 8.0;
    double lowFreqFactor = 1.0;
    double highFreqFactor = 4.0;
    double originalContext = 8192.0; // original_max_position_embeddings
};

// rope_freqs.weight as llama.cpp's convert_hf_to_gguf.py computes it for Llama 3
// (LlamaModel.generate_extra_tensors): for each of the ropeDims / 2 frequencies
// f_i = theta^(-2i / ropeDims) (in float), with wavelength w = 2 pi / f_i,
//   1                                    when w < original_context / high_freq_factor,
//   factor                               when w > original_context / low_freq_factor,
//   1 / ((1 - s) / factor + s)           between, s = (original_context / w - low) / (high - low).
// llama.cpp divides each rotary frequency by its factor. Computed in double and
// rounded once (the converter computes in float32: the middle band may differ by an ulp).
// Throws Malformed for factors that make no band (low == high) or are not positive.
std::vector<float> llama3RopeFreqFactors(int64_t ropeDims, double theta, const Llama3RopeScaling& scaling);

// Writes `path` atomically ("<path>.partial-XXXXXX", renamed when complete).
ExportResult exportGguf(const Model& m, const std::string& path, const GgufExportOptions& options = {});

// What exportGguf(m, path, options) would write, without writing or reading
// tensor data: each tensor's type and bytes, the fallbacks, the notes known
// before writing, and totalBytes, the file's exact size. Throws as exportGguf.
ExportResult estimateGgufExport(const Model& m, const GgufExportOptions& options = {});

// The types a GGUF export accepts: F32, F16, BF16 and every block type quantizeGgml
// writes (today Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K .. Q6_K).
bool canExportGgufType(DType t);
// Those types, most bits per weight first (F32, F16, BF16, Q8_0, ... Q2_K).
std::vector<DType> ggufExportTypes();
// Their names joined by ", " (for usage texts and errors).
std::string ggufExportTypeNames();

// The type a 2-D weight with rows of `rowLength` values gets when `requested` is asked:
// `requested` when its blocks fit; else llama-quantize's fallback (Q4_K -> Q5_0,
// Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K / Q3_K -> IQ4_NL), and F16 when that does not fit
// either (or when `requested` has no fallback: 32-value types, where llama-quantize stops).
// `reason` (optional) says why when the type changed.
DType ggufTypeFor(DType requested, int64_t rowLength, std::string* reason = nullptr);

// llama.cpp's general.file_type (llama_ftype) for a whole-model type.
uint32_t ggufFileType(DType t);

} // namespace ll
