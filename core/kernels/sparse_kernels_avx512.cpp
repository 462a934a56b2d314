// Sparse rows with AVX-512, 16 columns at a time: the next 16 values are
// loaded (the pool ends in zero bytes, so a load never leaves the buffer),
// widened to F32, and the first popcount(mask) of them moved to the columns
// whose mask bit is set by one VPERMPS, zeros elsewhere; its indices come
// from a table of the mask's bytes. (Masked loads of exactly the kept values
// took 2.5x the time of these plain ones here; VEXPANDPS, and VPEXPANDW on 32
// BF16 values at once, were no faster than the table.)
// Bit-identical with model/sparse_rows.cpp's reference decoder.
#include "kernels/sparse_kernels.h"

#include "model/sparse_row_access.h"

#include <immintrin.h>

#include <array>
#include <bit>
#include <cstring>

namespace ll::avx512 {

namespace {

// For each mask byte b, lane j: the position of column j's value among the
// byte's kept values, popcount(b & ((1 << j) - 1)) (any value where bit j is clear).
// Computed at compile time: a constructor run at start-up would be compiled
// with this file's AVX-512 flags and kill the program on any CPU without them.
struct ExpandTable {
    alignas(32) std::array<std::array<int32_t, 8>, 256> index{};
    constexpr ExpandTable()
    {
        for (int b = 0; b < 256; ++b)
            for (int j = 0; j < 8; ++j)
                index[b][j] = std::popcount(static_cast<unsigned>(b) & ((1u << j) - 1u));
    }
};
constexpr ExpandTable kExpand;

// The mask bits of columns [c, c + 16) (zero past cols).
inline unsigned maskBits(const uint8_t* row, int64_t c, int64_t cols)
{
    const int64_t w = c / 64, s = c % 64;
    uint64_t bits = sparseMaskWord(row, w) >> s;
    if (s > 48 && (w + 1) * 64 < cols)
        bits |= sparseMaskWord(row, w + 1) << (64 - s);
    return static_cast<unsigned>(bits & 0xFFFF);
}


// The first n of 16 lanes (none for n <= 0).
inline __mmask16 first16(int64_t n)
{
    return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
}

// 16 values of type T at v as F32 (the row's next values, or whatever lies
// past them: the pool ends in SparseLayout::kTailBytes, and expand16 keeps
// only the mask's count of them).
template <DType T>
inline __m512 loadValues(const uint8_t* v)
{
    if constexpr (T == DType::F32)
        return _mm512_loadu_ps(v);
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v));
    if constexpr (T == DType::F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); // BF16: the high half of an F32
}

// Lane j of the result: the value of column j of 16 whose mask bits are m, from
// the packed values (zero where the bit is clear).
inline __m512 expand16(unsigned m, __m512 packed)
{
    const unsigned lo = m & 0xFF, hi = m >> 8;
    const __m256i first = _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.index[lo].data()));
    const __m256i second = _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.index[hi].data())),
                                            _mm256_set1_epi32(std::popcount(lo)));
    const __m512i index = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
    return _mm512_maskz_permutexvar_ps(static_cast<__mmask16>(m), index, packed);
}

template <DType T>
constexpr size_t kValueBytes = T == DType::F32 ? 4 : 2;

// Columns [c0, c0 + n) of one row.
template <DType T>
void decodeColumns(const SparseLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    const uint8_t* v = sparseValuesOf(row) + static_cast<size_t>(sparseValuesBefore(row, c0)) * kValueBytes<T>;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 lanes = first16(n - i);
        const unsigned m = maskBits(row, c0 + i, L.cols) & lanes;
        _mm512_mask_storeu_ps(out + i, lanes, expand16(m, loadValues<T>(v)));
        v += static_cast<size_t>(std::popcount(m)) * kValueBytes<T>;
    }
}

// A mask word (64 columns) at a time, into four sums: the four chunks' loads
// and products do not wait for each other.
template <DType T>
float dot(const SparseLayout& L, const uint8_t* row, const float* x)
{
    const uint8_t* v = sparseValuesOf(row);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const int64_t words = (L.cols + 63) / 64;
    for (int64_t w = 0; w < words; ++w) {
        const uint64_t m64 = sparseMaskWord(row, w);
        const float* xw = x + w * 64;
        const int64_t left = L.cols - w * 64; // columns of x from xw on
        for (int k = 0; k < 4; ++k) {
            const unsigned m = static_cast<unsigned>(m64 >> (16 * k)) & 0xFFFF;
            const __m512 xs = left >= 64 ? _mm512_loadu_ps(xw + 16 * k) : _mm512_maskz_loadu_ps(first16(left - 16 * k), xw + 16 * k);
            acc[k] = _mm512_fmadd_ps(expand16(m, loadValues<T>(v)), xs, acc[k]);
            v += static_cast<size_t>(std::popcount(m)) * kValueBytes<T>;
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

} // namespace

void decodeSparseRowBf16(const SparseLayout& L, const uint8_t* row, uint16_t* out)
{
    const uint8_t* v = sparseValuesOf(row);
    for (int64_t i = 0; i < L.cols; i += 16) {
        const __mmask16 lanes = first16(L.cols - i);
        const unsigned m = maskBits(row, i, L.cols) & lanes;
        const __m512i f = _mm512_castps_si512(expand16(m, loadValues<DType::BF16>(v))); // BF16 widened: low halves zero
        _mm256_mask_storeu_epi16(out + i, lanes, _mm512_cvtepi32_epi16(_mm512_srli_epi32(f, 16)));
        v += static_cast<size_t>(std::popcount(m)) * 2;
    }
}

void decodeSparseColumns(const SparseLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    switch (L.valueType) {
    case DType::F16: return decodeColumns<DType::F16>(L, row, c0, n, out);
    case DType::BF16: return decodeColumns<DType::BF16>(L, row, c0, n, out);
    default: return decodeColumns<DType::F32>(L, row, c0, n, out);
    }
}

float sparseDot(const SparseLayout& L, const uint8_t* row, const float* x)
{
    switch (L.valueType) {
    case DType::F16: return dot<DType::F16>(L, row, x);
    case DType::BF16: return dot<DType::BF16>(L, row, x);
    default: return dot<DType::F32>(L, row, x);
    }
}

} // namespace ll::avx512
