#pragma once
// LayerLab's packed integer grid: how RTN, GPTQ and AWQ weights are held once
// applied, so that an edited layer costs its bits, not 32 bits a weight.
//
// A (rows, cols) matrix; each row is stored as
//   scales  groups x float32   scale of each group of the row
//   zeros   groups x uint8     its zero point (an integer of the grid)
//   dense   k x float32        the row's values in the k denseColumns (when any)
//   outliers slots x (int32 column, float32 value), column -1 in unused slots
//   codes   ceil(cols * bits / 8) bytes, value c at bit offset c * bits, little-endian
// and decodes as quant/grid.h dequantizes (bit for bit):
//   x = scale(g) * (code - zero(g)),  g = groupIndex[c] or c / groupCols,
//   then x *= columnScale[c] where a column scale is kept (AWQ's W^ = Q(W diag s) diag(1/s):
//   columnScale = 1/s, multiplied as AWQ multiplies).
// With a codebook (NF4, FP8, FP4: 2^bits values) a code is an index instead:
//   x = scale(g) * codebook[code]   (the zero points are unused, stored as 0).
// Binary coding (BCQ, LUT-GEMM's format) keeps `bits` float alphas per group
// where the scale and zero are, and a code's bit i picks +alpha_i or -alpha_i:
//   x = sum over i < bits, in order, of (bit i of code ? alpha_i : -alpha_i).
// Last, the exceptions overwrite their positions with their own values: the
// 16-bit input columns of OWQ and LLM.int8 (dense) and SpQR's single weights
// (outliers). The codes under an exception hold the group's zero point, so
// that they add exactly 0 to an integer dot and the exceptions' products are
// added on top (kernels/int8_dot.h).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace ll {

struct GridLayout {
    int bits = 4;                     // 1..8
    int64_t cols = 0;
    int64_t groupCols = 0;            // columns per group (cols: one group per row)
    int64_t groups = 0;               // per row
    std::vector<int32_t> groupIndex;  // (cols,) when groups follow a permutation (GPTQ act-order); empty: c / groupCols
    std::vector<float> columnScale;   // (cols,) multipliers applied after the grid; empty: none
    std::vector<float> codebook;      // (2^bits,) the value of each code, times the group's scale; empty: integer grid
    bool binaryCoding = false;        // BCQ: `bits` alphas per group, no scale, zero or codebook
    std::vector<int32_t> denseColumns; // columns every row holds as float32 values (ascending)
    int64_t outlierSlots = 0;         // (column, value) pairs per row for single weights

    size_t codeBytes() const { return (static_cast<size_t>(cols) * static_cast<size_t>(bits) + 7) / 8; }
    size_t groupBytes() const { return binaryCoding ? static_cast<size_t>(bits) * 4 : 5; }
    size_t denseOffset() const { return static_cast<size_t>(groups) * groupBytes(); }
    size_t outlierOffset() const { return denseOffset() + denseColumns.size() * 4; }
    size_t codesOffset() const { return outlierOffset() + static_cast<size_t>(outlierSlots) * 8; }
    size_t rowBytes() const { return codesOffset() + codeBytes(); }
    bool hasExceptions() const { return !denseColumns.empty() || outlierSlots > 0; }
    int64_t groupOf(int64_t c) const { return groupIndex.empty() ? c / groupCols : groupIndex[static_cast<size_t>(c)]; }
    // Throws InvalidArgument when the fields do not describe a grid.
    void validate() const;
};

// Decodes one stored row (layout.rowBytes() bytes) into layout.cols floats: the scalar reference.
void decodeGridRow(const GridLayout& layout, const uint8_t* row, float* out);
// Columns [c0, c0 + n) of one row into out (n floats).
void decodeGridColumns(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);

// Writes one row: scales and zeros (layout.groups each; for binary coding,
// scales holds groups x bits alphas and zeros is unused), codes (layout.cols
// values < 2^bits). The exceptions' area is zeroed (no outliers: every slot's
// column is -1 until writeGridExceptions fills it).
void encodeGridRow(const GridLayout& layout, const float* scales, const uint8_t* zeros, const uint8_t* codes, uint8_t* row);
// Writes a row's exceptions: dense (layout.denseColumns.size() values) and up
// to layout.outlierSlots outliers (columns ascending, values).
void writeGridExceptions(const GridLayout& layout, const float* dense, const int32_t* outlierCols, const float* outlierValues,
                         int64_t outliers, uint8_t* row);
// Overwrites columns [c0, c0 + n) of a decoded row (out: n floats) with the
// row's exceptions in that range: the last step of every decoder.
void applyGridExceptions(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);

} // namespace ll
