#pragma once
// Hugging Face folder export: config.json, safetensors weights (one file or
// shards with model.safetensors.index.json), generation_config.json and the
// tokenizer files. Weights carry the source's stored names and layouts (fused
// and Conv1D tensors rebuilt from the logical ones); GGUF and llama2.c sources
// get Hugging Face llama names with q/k rows permuted back to rotate_half.
// A factored (low-rank) layer is written as its dense product A B under the
// layer's own name, so transformers loads the folder as the plain architecture.
#include "export/export_result.h"
#include "model/model.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace ll {

class Progress;

struct HfExportOptions {
    DType dtype = DType::F32;    // F32, F16 or BF16
    uint64_t shardBytes = 0;     // split when the weights exceed this many bytes (0: one file)
    bool overwrite = false;      // replace an existing export folder
    Progress* progress = nullptr;
    size_t chunkBytes = 0;       // F32 bytes converted at once (0: kDefaultExportChunkBytes, export/tensor_stream.h)
};

// Writes `folder` atomically (built as "<folder>.partial-XXXXXX", renamed at the end).
ExportResult exportHf(const Model& m, const std::string& folder, const HfExportOptions& options = {});

} // namespace ll
