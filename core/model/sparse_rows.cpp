#include "model/sparse_rows.h"

#include "model/sparse_row_access.h"
#include "util/error.h"
#include "util/half.h"

#include <cstring>
#include <string>

namespace ll {

void SparseLayout::validate() const
{
    const bool typeOk = valueType == DType::F32 || valueType == DType::F16 || valueType == DType::BF16;
    if (!typeOk || cols < 0)
        fail(ErrorCode::InvalidArgument, "", "sparse rows of " + std::string(dtypeName(valueType)) + " and "
                                                 + std::to_string(cols) + " columns are inconsistent");
}

namespace {

float valueAt(const SparseLayout& L, const uint8_t* values, int64_t i)
{
    if (L.valueType == DType::F32) {
        float v;
        std::memcpy(&v, values + i * 4, 4);
        return v;
    }
    uint16_t h;
    std::memcpy(&h, values + i * 2, 2);
    return L.valueType == DType::F16 ? fp16ToFloat(h) : bf16ToFloat(h);
}

bool isKept(float v)
{
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return bits != 0;
}

} // namespace

void decodeSparseColumns(const SparseLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    int64_t next = sparseValuesBefore(row, c0);
    const uint8_t* values = sparseValuesOf(row);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t c = c0 + i;
        const bool kept = (sparseMaskWord(row, c / 64) >> (c % 64)) & 1;
        out[i] = kept ? valueAt(L, values, next++) : 0.0f;
    }
}

void decodeSparseRow(const SparseLayout& L, const uint8_t* row, float* out)
{
    decodeSparseColumns(L, row, 0, L.cols, out);
}

int64_t sparseKept(const float* values, int64_t n)
{
    int64_t kept = 0;
    for (int64_t c = 0; c < n; ++c)
        kept += isKept(values[c]);
    return kept;
}

void encodeSparseRows(const SparseLayout& L, const float* values, int64_t rows, uint8_t* out)
{
    uint8_t* next = out + static_cast<size_t>(rows) * L.rowBytes(); // where the next kept value goes
    for (int64_t r = 0; r < rows; ++r) {
        uint8_t* row = out + static_cast<size_t>(r) * L.rowBytes();
        const uint64_t distance = static_cast<uint64_t>(next - row);
        std::memcpy(row, &distance, 8);
        uint8_t* mask = row + 8;
        std::memset(mask, 0, L.maskWords() * 8);
        const float* v = values + r * L.cols;
        for (int64_t c = 0; c < L.cols; ++c) {
            if (!isKept(v[c]))
                continue;
            mask[c / 8] |= static_cast<uint8_t>(1u << (c % 8)); // bit c % 64 of little-endian word c / 64
            if (L.valueType == DType::F32) {
                std::memcpy(next, &v[c], 4);
            } else {
                const uint16_t h = L.valueType == DType::F16 ? floatToFp16(v[c]) : floatToBf16(v[c]);
                std::memcpy(next, &h, 2);
            }
            next += L.valueBytes();
        }
    }
    std::memset(next, 0, SparseLayout::kTailBytes);
}

} // namespace ll
