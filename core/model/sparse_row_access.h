#pragma once
// Reading one stored sparse row's header (model/sparse_rows.h), shared by the
// scalar reference and the AVX-512 kernels. Internal linkage on purpose: the
// AVX-512 file is compiled with other flags, and one merged copy could run
// AVX-512 code in the portable path.
#include <bit>
#include <cstdint>
#include <cstring>

namespace ll {
namespace {

// Mask word w of the row: bit c % 64 set when column w * 64 + c holds a value.
inline uint64_t sparseMaskWord(const uint8_t* row, int64_t w)
{
    uint64_t word;
    std::memcpy(&word, row + 8 + w * 8, 8);
    return word;
}

// Where the row's kept values start.
inline const uint8_t* sparseValuesOf(const uint8_t* row)
{
    uint64_t distance;
    std::memcpy(&distance, row, 8);
    return row + distance;
}

// Kept values in columns [0, c) of the row.
inline int64_t sparseValuesBefore(const uint8_t* row, int64_t c)
{
    int64_t n = 0;
    for (int64_t w = 0; w < c / 64; ++w)
        n += std::popcount(sparseMaskWord(row, w));
    if (c % 64)
        n += std::popcount(sparseMaskWord(row, c / 64) & ((uint64_t{1} << (c % 64)) - 1));
    return n;
}

} // namespace
} // namespace ll
