#pragma once
// What an export wrote, for the CLI's --json, the GUI's summary and the tests.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ll {

struct ExportedTensor {
    std::string name;            // as written in the output
    std::vector<int64_t> shape;  // row-major, outermost first (GGUF files store it reversed)
    std::string type;            // "F32", "Q4_K", ...
    std::string file;            // file name (shards differ)
    uint64_t bytes = 0;
    std::string rule;            // why a GGUF preset chose this type (empty: the preset's base type, or no preset)
};

// A tensor that could not take the requested type (row length not a multiple of its block).
struct TypeFallback {
    std::string tensor;
    std::string requested;
    std::string used;
    std::string reason;
};

struct ExportedFile {
    std::string path;
    uint64_t bytes = 0;
};

struct ExportResult {
    std::string format;                  // "gguf" or "hf"
    std::string path;                    // the file or folder written
    std::string preset;                  // the GGUF preset (llama-quantize's name, "Q4_K_M"); empty: one type
    std::vector<ExportedFile> files;
    uint64_t totalBytes = 0;
    std::vector<ExportedTensor> tensors;
    std::vector<TypeFallback> fallbacks;
    std::vector<std::string> notes;      // things the user should know (tied head kept, config changed, ...)

    nlohmann::json toJson() const;
    // Which tensors got which type, one line per type and reason, tensor names
    // folded over blocks ("blk.{0-1,4}.attn_v.weight"); for the CLI and the GUI.
    std::vector<std::string> typeLines() const;
};

// Names folded over their block numbers: "blk.{0-2,5}.attn_v.weight, output.weight".
std::string foldTensorNames(const std::vector<std::string>& names);

} // namespace ll
