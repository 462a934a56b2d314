#pragma once
// GGUF v3 container writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
// typed key/values in insertion order, tensor infos with ggml's reversed dims
// (ne[0] innermost), the data section aligned to `alignment` (32 by default, so
// general.alignment is not written) with every tensor padded to it.
#include "model/dtype.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ll {

class FileWriter;

// gguf_metadata_value_type of the specification.
enum class GgufType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
    String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};

// The GGUF type a JSON value (as the GGUF reader produced it) most likely had:
// booleans, strings, integers as U32 (I32 when negative, 64-bit when they need it),
// other numbers as F32. For an array, the type of its elements (the widest needed).
GgufType inferGgufType(const nlohmann::json& value);

class GgufWriter {
public:
    static constexpr uint64_t kDefaultAlignment = 32;

    // A scalar or string value; a key set twice keeps its first position and the last value.
    // Throws InvalidArgument when `value` does not fit `type` (an integer out of range, a string as a number...).
    void set(const std::string& key, GgufType type, const nlohmann::json& value);
    // An array of `elementType` values (no nested arrays).
    void setArray(const std::string& key, GgufType elementType, const nlohmann::json& values);
    void setString(const std::string& key, const std::string& v) { set(key, GgufType::String, v); }
    void setU32(const std::string& key, uint32_t v) { set(key, GgufType::U32, v); }
    void setF32(const std::string& key, float v) { set(key, GgufType::F32, v); }
    void setBool(const std::string& key, bool v) { set(key, GgufType::Bool, v); }
    // A value of the type its JSON suggests (see inferGgufType); arrays of scalars included.
    void setInferred(const std::string& key, const nlohmann::json& value);
    bool has(const std::string& key) const;
    size_t keyCount() const { return kvs_.size(); }

    // Tensors in file order; `shape` row-major (outermost first). Returns its index.
    // Throws InvalidArgument when the innermost dimension is not a whole number of the type's blocks.
    size_t addTensor(const std::string& name, const std::vector<int64_t>& shape, DType type);
    uint64_t tensorBytes(size_t index) const { return tensors_.at(index).nbytes; }
    size_t tensorCount() const { return tensors_.size(); }

    // The file's size once written: the header and every tensor with its padding.
    uint64_t fileBytes() const { return header().size() + dataBytes_; }
    // Everything before the data section, padded to the alignment.
    std::string header() const;
    // Writes header() to `out`; then write each tensor (in order) with writeTensor().
    void writeHeader(FileWriter& out) const;
    // Writes tensor `index`'s bytes (exactly tensorBytes(index)) and the padding after it.
    void writeTensor(FileWriter& out, size_t index, const std::vector<uint8_t>& bytes) const;
    // The same, the bytes written by `write` (streamed); throws when it wrote another count.
    void writeTensor(FileWriter& out, size_t index, const std::function<void(FileWriter&)>& write) const;

private:
    struct TensorInfo {
        std::string name;
        std::vector<int64_t> shape;
        DType type;
        uint64_t offset = 0; // within the data section
        uint64_t nbytes = 0;
    };
    std::vector<std::pair<std::string, std::string>> kvs_; // key -> encoded type + value
    std::vector<TensorInfo> tensors_;
    uint64_t dataBytes_ = 0;
    uint64_t alignment_ = kDefaultAlignment;
};

} // namespace ll
