#include "model/packed_grid.h"

#include "util/error.h"

#include <cstring>
#include <string>

namespace ll {

void GridLayout::validate() const
{
    bool ok = bits >= 1 && bits <= 8 && cols >= 0 && groups >= 1 && groupCols >= 1;
    ok = ok && (groupIndex.empty() ? (cols + groupCols - 1) / groupCols <= groups : static_cast<int64_t>(groupIndex.size()) == cols);
    ok = ok && (columnScale.empty() || static_cast<int64_t>(columnScale.size()) == cols);
    ok = ok && (codebook.empty() || codebook.size() == (size_t{1} << bits));
    for (int32_t g : groupIndex)
        ok = ok && g >= 0 && g < groups;
    if (!ok)
        fail(ErrorCode::InvalidArgument, "", "a packed grid of " + std::to_string(bits) + " bits, " + std::to_string(groups)
                                                 + " groups of " + std::to_string(groupCols) + " for " + std::to_string(cols)
                                                 + " columns is inconsistent");
}

namespace {

// The code of column c: `bits` bits at bit offset c * bits (they may straddle two bytes).
inline int codeAt(const uint8_t* codes, int64_t c, int bits)
{
    const size_t bit = static_cast<size_t>(c) * static_cast<size_t>(bits);
    const size_t byte = bit / 8;
    const unsigned shift = static_cast<unsigned>(bit % 8);
    unsigned v = codes[byte] >> shift;
    if (shift + static_cast<unsigned>(bits) > 8)
        v |= static_cast<unsigned>(codes[byte + 1]) << (8 - shift);
    return static_cast<int>(v & ((1u << bits) - 1u));
}

} // namespace

void decodeGridColumns(const GridLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    const uint8_t* zeros = row + static_cast<size_t>(L.groups) * 4;
    const uint8_t* codes = zeros + L.groups;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t c = c0 + i;
        const int64_t g = L.groupOf(c);
        float scale;
        std::memcpy(&scale, row + static_cast<size_t>(g) * 4, 4);
        const int code = codeAt(codes, c, L.bits);
        out[i] = L.codebook.empty() ? scale * (static_cast<float>(code) - static_cast<float>(zeros[g]))
                                    : scale * L.codebook[static_cast<size_t>(code)];
    }
    if (!L.columnScale.empty())
        for (int64_t i = 0; i < n; ++i)
            out[i] *= L.columnScale[static_cast<size_t>(c0 + i)];
}

void decodeGridRow(const GridLayout& L, const uint8_t* row, float* out)
{
    decodeGridColumns(L, row, 0, L.cols, out);
}

void encodeGridRow(const GridLayout& L, const float* scales, const uint8_t* zeros, const uint8_t* codes, uint8_t* row)
{
    std::memcpy(row, scales, static_cast<size_t>(L.groups) * 4);
    std::memcpy(row + static_cast<size_t>(L.groups) * 4, zeros, static_cast<size_t>(L.groups));
    uint8_t* out = row + static_cast<size_t>(L.groups) * 5;
    std::memset(out, 0, L.codeBytes());
    for (int64_t c = 0; c < L.cols; ++c) {
        const size_t bit = static_cast<size_t>(c) * static_cast<size_t>(L.bits);
        const unsigned v = codes[c] & ((1u << L.bits) - 1u);
        out[bit / 8] = static_cast<uint8_t>(out[bit / 8] | (v << (bit % 8)));
        if (bit % 8 + static_cast<size_t>(L.bits) > 8)
            out[bit / 8 + 1] = static_cast<uint8_t>(out[bit / 8 + 1] | (v >> (8 - bit % 8)));
    }
}

} // namespace ll
