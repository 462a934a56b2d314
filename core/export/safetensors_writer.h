#pragma once
// safetensors writer (https://github.com/huggingface/safetensors): 8-byte
// little-endian header length, the JSON header padded with spaces to a multiple
// of 8 (as the safetensors library does, so the data starts aligned), then the
// tensors' bytes. Tensors are sorted by name, in the header and in the data.
#include "model/dtype.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ll {

class FileWriter;

struct SafetensorsTensor {
    std::string name;
    DType dtype = DType::F32;         // F32, F16 or BF16
    std::vector<int64_t> shape;
    // Produces the tensor's bytes (row-major, exactly nbytes()), called once while writing.
    std::function<std::vector<uint8_t>()> bytes;
    // Or writes them itself (streamed, exactly nbytes()); used instead of `bytes` when set.
    std::function<void(FileWriter&)> write;

    uint64_t nbytes() const;
};

// The header (length field excluded) for tensors sorted by name; `metadata`
// becomes "__metadata__" (string values only, as the format requires).
std::string safetensorsHeader(const std::vector<SafetensorsTensor>& sortedTensors,
                              const std::map<std::string, std::string>& metadata);

// Writes a whole file: sorts `tensors` by name, writes the header and the data.
// `beforeTensor` (optional) runs before each tensor is produced: progress and cancellation.
// Returns the bytes written.
uint64_t writeSafetensors(FileWriter& out, std::vector<SafetensorsTensor> tensors,
                          const std::map<std::string, std::string>& metadata,
                          const std::function<void(const SafetensorsTensor&)>& beforeTensor = {});

} // namespace ll
