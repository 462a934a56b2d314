#include "model/packed_grid.h"

#include "model/grid_exception_access.h"
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
    ok = ok && (!binaryCoding || (codebook.empty() && groupIndex.empty()));
    for (size_t k = 0; k < denseColumns.size(); ++k)
        ok = ok && denseColumns[k] >= 0 && denseColumns[k] < cols && (k == 0 || denseColumns[k] > denseColumns[k - 1]);
    ok = ok && outlierSlots >= 0 && outlierSlots <= cols;
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

// The value of a binary-coding code: the alphas added in order with the signs its bits pick.
inline float binaryCodeValue(const uint8_t* alphas, int bits, int code)
{
    float v = 0.0f;
    for (int i = 0; i < bits; ++i) {
        float a;
        std::memcpy(&a, alphas + static_cast<size_t>(i) * 4, 4);
        v += ((code >> i) & 1) ? a : -a;
    }
    return v;
}

} // namespace

void decodeGridColumns(const GridLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    const uint8_t* zeros = row + static_cast<size_t>(L.groups) * 4;
    const uint8_t* codes = row + L.codesOffset();
    for (int64_t i = 0; i < n; ++i) {
        const int64_t c = c0 + i;
        const int64_t g = L.groupOf(c);
        const int code = codeAt(codes, c, L.bits);
        if (L.binaryCoding) {
            out[i] = binaryCodeValue(row + static_cast<size_t>(g) * L.groupBytes(), L.bits, code);
            continue;
        }
        float scale;
        std::memcpy(&scale, row + static_cast<size_t>(g) * 4, 4);
        out[i] = L.codebook.empty() ? scale * (static_cast<float>(code) - static_cast<float>(zeros[g]))
                                    : scale * L.codebook[static_cast<size_t>(code)];
    }
    if (!L.columnScale.empty())
        for (int64_t i = 0; i < n; ++i)
            out[i] *= L.columnScale[static_cast<size_t>(c0 + i)];
    applyGridExceptions(L, row, c0, n, out);
}

void applyGridExceptions(const GridLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    forEachGridException(L, row, [&](int64_t c, float v) {
        if (c >= c0 && c < c0 + n)
            out[c - c0] = v;
    });
}

void decodeGridRow(const GridLayout& L, const uint8_t* row, float* out)
{
    decodeGridColumns(L, row, 0, L.cols, out);
}

void encodeGridRow(const GridLayout& L, const float* scales, const uint8_t* zeros, const uint8_t* codes, uint8_t* row)
{
    if (L.binaryCoding) {
        std::memcpy(row, scales, L.denseOffset());
    } else {
        std::memcpy(row, scales, static_cast<size_t>(L.groups) * 4);
        std::memcpy(row + static_cast<size_t>(L.groups) * 4, zeros, static_cast<size_t>(L.groups));
    }
    std::memset(row + L.denseOffset(), 0, L.codesOffset() - L.denseOffset());
    for (int64_t k = 0; k < L.outlierSlots; ++k) {
        const int32_t unused = -1;
        std::memcpy(row + L.outlierOffset() + static_cast<size_t>(k) * 8, &unused, 4);
    }
    uint8_t* out = row + L.codesOffset();
    std::memset(out, 0, L.codeBytes());
    for (int64_t c = 0; c < L.cols; ++c) {
        const size_t bit = static_cast<size_t>(c) * static_cast<size_t>(L.bits);
        const unsigned v = codes[c] & ((1u << L.bits) - 1u);
        out[bit / 8] = static_cast<uint8_t>(out[bit / 8] | (v << (bit % 8)));
        if (bit % 8 + static_cast<size_t>(L.bits) > 8)
            out[bit / 8 + 1] = static_cast<uint8_t>(out[bit / 8 + 1] | (v >> (8 - bit % 8)));
    }
}

// Each position is to be an exception once at most (an outlier not in a dense
// column, nor twice): the integer dots add every exception's product.
void writeGridExceptions(const GridLayout& L, const float* dense, const int32_t* outlierCols, const float* outlierValues,
                         int64_t outliers, uint8_t* row)
{
    if (outliers > L.outlierSlots)
        fail(ErrorCode::InvalidArgument, "", "a packed grid row has " + std::to_string(L.outlierSlots)
                                                 + " outlier slots, not " + std::to_string(outliers));
    if (!L.denseColumns.empty())
        std::memcpy(row + L.denseOffset(), dense, L.denseColumns.size() * 4);
    for (int64_t k = 0; k < outliers; ++k) {
        uint8_t* slot = row + L.outlierOffset() + static_cast<size_t>(k) * 8;
        std::memcpy(slot, outlierCols + k, 4);
        std::memcpy(slot + 4, outlierValues + k, 4);
    }
}

} // namespace ll
