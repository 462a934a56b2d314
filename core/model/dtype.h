#pragma once
// Storage types of tensors across safetensors, GGUF and llama2.c files.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ll {

enum class DType : uint8_t {
    F32, F16, BF16, F64,
    I8, I16, I32, I64, U8, Bool,
    F8_E4M3, F8_E5M2,
    // ggml block types (https://github.com/ggml-org/ggml, ggml-common.h)
    Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
    Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
    IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M,
    TQ1_0, TQ2_0, MXFP4,
    // LayerLab's packed integer grid (model/packed_grid.h): edited RTN / GPTQ /
    // AWQ weights in memory; never read from or written to a file.
    Grid,
    // LayerLab's sparse rows (model/sparse_rows.h): pruned weights in memory,
    // a mask and the kept values; never read from or written to a file.
    Sparse,
    Unknown,
};

std::string_view dtypeName(DType t);
// Every type of the table, in its order (F32 first, Unknown last): the one list
// other lists (types a GGUF export writes, ggml types LayerLab quantizes) filter.
const std::vector<DType>& allDTypes();
std::optional<DType> dtypeFromSafetensors(std::string_view name);
std::optional<DType> dtypeFromGgml(uint32_t ggmlType);
std::optional<uint32_t> ggmlTypeOf(DType t);

// Layout of a row: `blockElems` values are stored in `blockBytes` bytes
// (0 / 0 for Grid and Sparse, whose rows carry their own layout).
struct DTypeLayout {
    uint32_t blockElems = 0; // 0 = size unknown
    uint32_t blockBytes = 0;
};
DTypeLayout dtypeLayout(DType t);

// True when LayerLab can turn this type into floats.
bool canDecode(DType t);
bool isQuantized(DType t);
// True for LayerLab's own in-memory forms (Grid, Sparse): no file holds them.
bool inMemoryOnly(DType t);

} // namespace ll
