#pragma once
// LayerLab's sparse rows: how pruned weights are held once applied, so that a
// 50 % pruned BF16 layer costs about 9 bits a weight in the state, the undo
// stack and the engine instead of 16 (zeros included).
//
// A (rows, cols) matrix is stored as `rows` fixed-size row headers, then the
// values of all rows:
//   header r   rowBytes() bytes at r * rowBytes():
//                uint64  distance in bytes from the header's start to the row's values
//                mask    maskWords() 64-bit little-endian words, bit c % 64 of
//                        word c / 64 set when column c holds a value (a weight
//                        the pruning kept)
//   values     the kept values of each row in column order, valueType each
//              (F32, F16 or BF16), row after row, then kTailBytes zeros
// and decodes to the kept values at their columns, +0 elsewhere. Row r's
// header starts at r * rowBytes() as in every other stored type, so rows can
// be read in any order and a view of some rows still finds its values, while
// each row holds only what it kept (magnitude and SparseGPT keep more in some
// rows than in others).
#include "model/dtype.h"

#include <cstddef>
#include <cstdint>

namespace ll {

struct SparseLayout {
    DType valueType = DType::F32; // F32, F16 or BF16
    int64_t cols = 0;

    size_t maskWords() const { return static_cast<size_t>((cols + 63) / 64); }
    size_t valueBytes() const { return valueType == DType::F32 ? 4 : 2; }
    size_t rowBytes() const { return 8 + maskWords() * 8; }
    // Zero bytes after the last value: the vector kernels load 16 values
    // wherever they stand and use those the mask keeps.
    static constexpr size_t kTailBytes = 64;
    // Bytes of `rows` rows that keep `kept` values in all.
    size_t bytes(int64_t rows, int64_t kept) const
    {
        return static_cast<size_t>(rows) * rowBytes() + static_cast<size_t>(kept) * valueBytes() + kTailBytes;
    }
    // Throws InvalidArgument when the fields do not describe sparse rows.
    void validate() const;
};

// Columns [c0, c0 + n) of one stored row (its header) into out (n floats): the scalar reference.
void decodeSparseColumns(const SparseLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);
// The whole row (layout.cols floats).
void decodeSparseRow(const SparseLayout& layout, const uint8_t* row, float* out);

// Values one row keeps: every value whose bits are not +0 (-0 is a value).
int64_t sparseKept(const float* values, int64_t n);

// Writes `rows` rows of `values` (rows x cols, row-major, each already a value
// of valueType) into out, layout.bytes(rows, kept) bytes where kept is the
// sum of sparseKept over the rows.
void encodeSparseRows(const SparseLayout& layout, const float* values, int64_t rows, uint8_t* out);

} // namespace ll
