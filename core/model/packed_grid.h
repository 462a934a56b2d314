#pragma once
// LayerLab's packed integer grid: how RTN, GPTQ and AWQ weights are held once
// applied, so that an edited layer costs its bits, not 32 bits a weight.
//
// A (rows, cols) matrix; each row is stored as
//   scales  groups x float32   scale of each group of the row
//   zeros   groups x uint8     its zero point (an integer of the grid)
//   codes   ceil(cols * bits / 8) bytes, value c at bit offset c * bits, little-endian
// and decodes as quant/grid.h dequantizes (bit for bit):
//   x = scale(g) * (code - zero(g)),  g = groupIndex[c] or c / groupCols,
//   then x *= columnScale[c] where a column scale is kept (AWQ's W^ = Q(W diag s) diag(1/s):
//   columnScale = 1/s, multiplied as AWQ multiplies).
// With a codebook (NF4, FP8, FP4: 2^bits values) a code is an index instead:
//   x = scale(g) * codebook[code]   (the zero points are unused, stored as 0).
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

    size_t codeBytes() const { return (static_cast<size_t>(cols) * static_cast<size_t>(bits) + 7) / 8; }
    size_t rowBytes() const { return static_cast<size_t>(groups) * 5 + codeBytes(); }
    int64_t groupOf(int64_t c) const { return groupIndex.empty() ? c / groupCols : groupIndex[static_cast<size_t>(c)]; }
    // Throws InvalidArgument when the fields do not describe a grid.
    void validate() const;
};

// Decodes one stored row (layout.rowBytes() bytes) into layout.cols floats: the scalar reference.
void decodeGridRow(const GridLayout& layout, const uint8_t* row, float* out);
// Columns [c0, c0 + n) of one row into out (n floats).
void decodeGridColumns(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);

// Writes one row: scales and zeros (layout.groups each), codes (layout.cols values < 2^bits).
void encodeGridRow(const GridLayout& layout, const float* scales, const uint8_t* zeros, const uint8_t* codes, uint8_t* row);

} // namespace ll
