// AVX-512 VNNI integer dot products of ggml weight rows with Q8K activations
// (int8_dot.h). Compiled with AVX-512 flags (core/CMakeLists.txt) and reached
// only through int8DotKernel() on CPUs with VNNI; as in row_kernels_avx512.cpp,
// everything here is static and uses intrinsics only.
//
// VPDPBUSD multiplies 64 unsigned bytes with 64 signed bytes and adds each
// group of four products into one of 16 int32 lanes. Weight codes are unsigned
// (Q4_0/1, Q5_0/1, Q4_K, Q5_K, Q6_K store q + offset); Q8_0's signed codes take their absolute
// value and move their sign onto x. A lane then holds 4 values' products, all
// of one sub-block, and is multiplied by that sub-block's integer scale; the
// float scales (weights' d and dmin, x's d) are applied once per 256 values.
#include "kernels/int8_dot_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) \
    && defined(__AVX512VNNI__) && defined(__F16C__) && defined(__BMI2__)

#include "model/ggml_blocks.h"
#include "kernels/grid_decode_impl.h"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

namespace ll::avx512 {

namespace {

using namespace ll::ggml;

inline float halfAt(const uint8_t* p)
{
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

inline __m512i load512(const void* p)
{
    return _mm512_loadu_si512(p);
}

inline __m256i load256(const void* p)
{
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 32 bytes at a, then 32 bytes at b.
inline __m512i load2x256(const void* a, const void* b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(a)), load256(b), 1);
}

// Lanes 0-7 take lane a of v, lanes 8-15 lane b.
inline __m512i halves(__m512i v, int a, int b)
{
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b), v);
}

// Each group of four lanes takes one lane of v: base, base+1, base+2, base+3.
inline __m512i quarters(__m512i v, int base)
{
    const int a = base, b = base + 1, c = base + 2, d = base + 3;
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d), v);
}

inline float reduce256(__m256 v)
{
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

inline __m512i dot4(__m512i u8, __m512i s8)
{
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u8, s8);
}

// The 6-bit scales and mins of Q4_K / Q5_K (ggml's get_scale_min_k4 for all
// eight sub-blocks at once): scales[0..7] and mins[0..7] as two 8-byte words.
inline void kScalesMins(const uint8_t* packed, uint64_t& scales, uint64_t& mins)
{
    uint32_t s[3];
    std::memcpy(s, packed, 12);
    const uint32_t scLo = s[0] & 0x3f3f3f3f, mLo = s[1] & 0x3f3f3f3f;
    const uint32_t scHi = (s[2] & 0x0f0f0f0f) | ((s[0] >> 2) & 0x30303030);
    const uint32_t mHi = ((s[2] >> 4) & 0x0f0f0f0f) | ((s[1] >> 2) & 0x30303030);
    scales = scLo | static_cast<uint64_t>(scHi) << 32;
    mins = mLo | static_cast<uint64_t>(mHi) << 32;
}

// sum_j mins[j] * (bsums[2j] + bsums[2j+1]) as 8 int32 lanes (one per sub-block).
inline __m256i minTerms(uint64_t mins, const int16_t* bsums)
{
    const __m128i m = _mm_cvtsi64_si128(static_cast<long long>(mins));
    const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)); // m0 m0 m1 m1 ...
    return _mm256_madd_epi16(load256(bsums), m16);
}

// Q4_K and Q5_K: value 64c + l (l < 32) is the low nibble of qs[32c + l] (sub-block 2c),
// value 64c + 32 + l its high nibble (sub-block 2c + 1). A 64-byte load covers
// c and c + 1: low nibbles are sub-blocks (2c, 2c+2), high nibbles (2c+1, 2c+3).
template <bool Five>
float dotQ45_K(const uint8_t* w, const BlockQ8K* x, int64_t n)
{
    constexpr size_t kBytes = Five ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
    constexpr size_t kQs = Five ? offsetof(BlockQ5_K, qs) : offsetof(BlockQ4_K, qs);
    const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    __m512 acc = _mm512_setzero_ps();
    __m256 accMin = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQK_K; ++b, w += kBytes, ++x) {
        const float d = halfAt(w) * x->d, dmin = halfAt(w + 2) * x->d;
        uint64_t scales, mins;
        kScalesMins(w + 4, scales, mins);
        const __m512i sc = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(scales)));
        const uint8_t* qs = w + kQs;
        const int8_t* xq = x->qs;
        __m512i sum = _mm512_setzero_si512();
        for (int k = 0; k < 2; ++k) { // sub-blocks 4k .. 4k + 3
            const __m512i q = load512(qs + 64 * k);
            __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            if constexpr (Five) {
                // bit 4 of sub-block s's value l is bit s of qh[l]; a 64-bit
                // shift moves neighbours' bits in, the mask takes them out.
                const __m512i qh = _mm512_broadcast_i64x4(load256(w + offsetof(BlockQ5_K, qh)));
                const long long s = 4 * k;
                const __m512i bitLo = _mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_setr_epi64(s, s, s, s, s + 2, s + 2, s + 2, s + 2)), one);
                const __m512i bitHi = _mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_setr_epi64(s + 1, s + 1, s + 1, s + 1, s + 3, s + 3, s + 3, s + 3)), one);
                lo = _mm512_or_si512(lo, _mm512_slli_epi16(bitLo, 4));
                hi = _mm512_or_si512(hi, _mm512_slli_epi16(bitHi, 4));
            }
            const int8_t* xk = xq + 128 * k;
            const __m512i pLo = dot4(lo, load2x256(xk, xk + 64)), pHi = dot4(hi, load2x256(xk + 32, xk + 96));
            sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(pLo, halves(sc, 4 * k, 4 * k + 2)));
            sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(pHi, halves(sc, 4 * k + 1, 4 * k + 3)));
        }
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d), acc);
        accMin = _mm256_fmadd_ps(_mm256_cvtepi32_ps(minTerms(mins, x->bsums)), _mm256_set1_ps(dmin), accMin);
    }
    return _mm512_reduce_add_ps(acc) - reduce256(accMin);
}

// Q6_K: in half h (128 values), value l < 32 takes the low nibble of ql[64h + l]
// and bits 0-1 of qh[32h + l]; value 32 + l the low nibble of ql[64h + 32 + l] and
// bits 2-3; values 64 + l and 96 + l the high nibbles and bits 4-5, 6-7. Codes
// are q + 32 in [0, 63]; every 16 values share a signed 8-bit scale.
float dotQ6_K(const uint8_t* w, const BlockQ8K* x, int64_t n)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), three = _mm512_set1_epi8(3);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQK_K; ++b, w += sizeof(BlockQ6_K), ++x) {
        const float d = halfAt(w + offsetof(BlockQ6_K, d)) * x->d;
        const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + offsetof(BlockQ6_K, scales))));
        // The +32 offset: sum_j scale_j * 32 * bsums_j, taken off the integer sum.
        __m512i sum = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_slli_epi32(_mm512_mullo_epi32(sc, _mm512_cvtepi16_epi32(load256(x->bsums))), 5));
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = load512(w + offsetof(BlockQ6_K, ql) + 64 * h);
            const __m512i qh = _mm512_broadcast_i64x4(load256(w + offsetof(BlockQ6_K, qh) + 32 * h));
            const __m512i bitsLo = _mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2)), three);
            const __m512i bitsHi = _mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6)), three);
            const __m512i lo = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(bitsLo, 4));
            const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_slli_epi16(bitsHi, 4));
            const int8_t* xh = x->qs + 128 * h;
            sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(dot4(lo, load512(xh)), quarters(sc, 8 * h)));
            sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(dot4(hi, load512(xh + 64)), quarters(sc, 8 * h + 4)));
        }
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

// Q4_0 / Q5_0 (x = d (q - 8), d (q - 16)) and Q4_1 / Q5_1 (x = d q + m): two
// 32-value blocks per 64-byte product, the codes as unsigned bytes (value j is
// the low nibble of qs[j], j + 16 its high nibble, as ggml stores them; Q5's
// fifth bit of value j is bit j of qh). Per 256 values the eight blocks'
// scales are converted together. Q4_0 / Q5_0 take their offset off in
// integers, by a second VPDPBUSD of x with a constant whose lanes group x as
// the codes' product does; Q4_1 / Q5_1 add m times the sum of x over each
// block from x's 16-value sums. No scalar work per block.
template <int Bits, bool Min>
float dotQ45_01(const uint8_t* w, const BlockQ8K* x, int64_t n)
{
    using Block = std::conditional_t<Bits == 4, std::conditional_t<Min, BlockQ4_1, BlockQ4_0>,
                                     std::conditional_t<Min, BlockQ5_1, BlockQ5_0>>;
    constexpr size_t kBytes = sizeof(Block);
    constexpr int kBlocks = kQK_K / kQK; // 8 blocks of 32 per Q8K block
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m512i offset = _mm512_set1_epi8(Bits == 4 ? 8 : 16);
    const auto codes = [&](const uint8_t* block) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + offsetof(Block, qs)));
        const __m256i c = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), nibble), _mm_and_si128(q, nibble));
        if constexpr (Bits == 5) {
            uint32_t qh;
            std::memcpy(&qh, block + offsetof(Block, qh), 4);
            return _mm256_mask_blend_epi8(qh, c, _mm256_or_si256(c, _mm256_set1_epi8(0x10)));
        } else {
            return c;
        }
    };
    // The F16 at `field` of the 8 blocks from p, as floats.
    const auto eight = [](const uint8_t* p, size_t field) {
        alignas(16) uint16_t h[kBlocks];
        for (int b = 0; b < kBlocks; ++b)
            std::memcpy(&h[b], p + b * kBytes + field, 2);
        return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
    };
    __m512 acc = _mm512_setzero_ps();
    __m256 minAcc = _mm256_setzero_ps(); // Q4_1 / Q5_1: m d_x times the sum of x, per block
    for (int64_t b = 0; b < n / kQK_K; ++b, ++x) {
        const __m256 dx = _mm256_set1_ps(x->d);
        const __m512 d8 = _mm512_castps256_ps512(_mm256_mul_ps(eight(w, offsetof(Block, d)), dx)); // lanes 8-15 unused
        if constexpr (Min) { // sums of x over each 32-value block: pairs of its 16-value sums
            const __m512i s16 = _mm512_cvtepi16_epi32(load256(x->bsums));
            const __m256 sums = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(_mm512_add_epi32(s16, _mm512_srli_epi64(s16, 32))));
            minAcc = _mm256_fmadd_ps(_mm256_mul_ps(eight(w, offsetof(Block, m)), dx), sums, minAcc);
        }
        for (int k = 0; k < kBlocks / 2; ++k, w += 2 * kBytes) {
            const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(codes(w)), codes(w + kBytes), 1);
            const __m512i xs = load512(x->qs + 64 * k);
            const __m512i p = Min ? dot4(q, xs) : _mm512_sub_epi32(dot4(q, xs), dot4(offset, xs));
            const int a = 2 * k, c = 2 * k + 1;
            const __m512 d = _mm512_permutexvar_ps(_mm512_setr_epi32(a, a, a, a, a, a, a, a, c, c, c, c, c, c, c, c), d8);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
        }
    }
    if constexpr (Min)
        acc = _mm512_add_ps(acc, _mm512_insertf32x8(_mm512_setzero_ps(), minAcc, 0));
    return _mm512_reduce_add_ps(acc);
}

// Q8_0: two 32-value blocks per 64-byte product, each with its own f16 scale.
float dotQ8_0(const uint8_t* w, const BlockQ8K* x, int64_t n)
{
    constexpr size_t kBytes = sizeof(BlockQ8_0);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / kQK_K; ++b, ++x) {
        for (int k = 0; k < kQK_K / (2 * kQK); ++k, w += 2 * kBytes) {
            const __m512i q = load2x256(w + offsetof(BlockQ8_0, qs), w + kBytes + offsetof(BlockQ8_0, qs));
            const __m512i xs = load512(x->qs + 64 * k);
            // |q| times x with q's sign: the same products, unsigned times signed.
            const __m512i xSigned = _mm512_mask_sub_epi8(xs, _mm512_movepi8_mask(q), _mm512_setzero_si512(), xs);
            const __m512i p = dot4(_mm512_abs_epi8(q), xSigned);
            const __m512 scale = _mm512_insertf32x8(_mm512_set1_ps(halfAt(w) * x->d), _mm256_set1_ps(halfAt(w + kBytes) * x->d), 1);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc);
        }
    }
    return _mm512_reduce_add_ps(acc);
}

// 64 codes of a packed grid row from column c (a multiple of 64), one byte
// each in column order. 4 bits: byte i holds columns 2i (low nibble) and 2i+1;
// widened to 16-bit lanes, each lane's two bytes are those two columns. 2 bits:
// widened to 32-bit lanes, the same for four columns. 8 bits: as stored.
template <int Bits>
inline __m512i gridCodes(const uint8_t* codes, int64_t c)
{
    if constexpr (Bits == 4) {
        const __m512i w = _mm512_cvtepu8_epi16(load256(codes + c / 2));
        return _mm512_or_si512(_mm512_and_si512(w, _mm512_set1_epi16(0x000F)),
                               _mm512_and_si512(_mm512_slli_epi16(w, 4), _mm512_set1_epi16(0x0F00)));
    } else if constexpr (Bits == 2) {
        const __m512i w = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + c / 4)));
        const __m512i c01 = _mm512_or_si512(_mm512_and_si512(w, _mm512_set1_epi32(0x3)),
                                            _mm512_and_si512(_mm512_slli_epi32(w, 6), _mm512_set1_epi32(0x300)));
        const __m512i c23 = _mm512_or_si512(_mm512_and_si512(_mm512_slli_epi32(w, 12), _mm512_set1_epi32(0x30000)),
                                            _mm512_and_si512(_mm512_slli_epi32(w, 18), _mm512_set1_epi32(0x3000000)));
        return _mm512_or_si512(c01, c23);
    } else if constexpr (Bits == 8) {
        return load512(codes + c);
    } else {
        // Odd widths: 8 codes are Bits bytes, spread to one a byte by PDEP
        // (grid_decode_impl.h) and moved into the vector through registers.
        const uint8_t* p = codes + c / 8 * Bits;
        const auto pair = [p](int j) {
            return _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(grid_impl::spreadOctet<Bits>(p + j * Bits))),
                                    static_cast<long long>(grid_impl::spreadOctet<Bits>(p + (j + 1) * Bits)), 1);
        };
        const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(pair(0)), pair(2), 1);
        const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(pair(4)), pair(6), 1);
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
}

// A packed grid row (int8_dot.h, gridHasInt8Dot) whose groups either divide
// 256 or are made of whole Q8K blocks: the 8 runs of 32 columns of every block
// then belong to groups g0 + idx[r] with the same idx for every block. Per
// block, the runs' scales (times x's d) and zeros come in one masked load each;
// per 64 columns, one VPDPBUSD of the codes with x's bytes, whose lanes 0-7
// hold run 2k and lanes 8-15 run 2k + 1, scaled by those runs' scales. The
// zero points' share, zero scale d sum qs, comes from the 16-value sums.
template <int Bits>
float gridDotBlocks(const GridLayout& L, const uint8_t* row, const BlockQ8K* x)
{
    const auto* scales = reinterpret_cast<const float*>(row); // unaligned: only loadu
    const uint8_t* zeros = row + static_cast<size_t>(L.groups) * 4;
    const uint8_t* codes = row + L.codesOffset();
    const int gc = static_cast<int>(std::min<int64_t>(L.groupCols, kQ8Block));
    const __m256i idx = _mm256_setr_epi32(0, 32 / gc, 64 / gc, 96 / gc, 128 / gc, 160 / gc, 192 / gc, 224 / gc);
    const auto touched = static_cast<__mmask8>((1u << (224 / gc + 1)) - 1u);
    const __m256i ones = _mm256_set1_epi16(1);
    // With groups of 32, the scales and zeros ahead of the codes (10 of a row's
    // 42 lines) are read too sparsely for the hardware prefetcher: waiting for
    // them took 1.7x the time. Each block asks for those of 8 blocks ahead
    // (past the row's end: harmless, a prefetch never faults). Larger groups
    // gained nothing from it.
    const int64_t groupsPerBlock = L.groupCols <= kQ8Block ? kQ8Block / L.groupCols : 0;
    const int64_t blocksPerGroup = L.groupCols <= kQ8Block ? 1 : L.groupCols / kQ8Block;
    __m512 acc = _mm512_setzero_ps();
    __m256 zeroAcc = _mm256_setzero_ps();
    int64_t g0 = 0, inGroup = 0;
    for (int64_t c0 = 0; c0 < L.cols; c0 += kQ8Block, ++x) {
        if (groupsPerBlock >= 8) {
            _mm_prefetch(reinterpret_cast<const char*>(scales + g0 + 8 * groupsPerBlock), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(zeros + g0 + 8 * groupsPerBlock), _MM_HINT_T0);
        }
        const __m256 s = _mm256_mul_ps(_mm256_permutexvar_ps(idx, _mm256_maskz_loadu_ps(touched, scales + g0)), _mm256_set1_ps(x->d));
        const __m256i z = _mm256_permutexvar_epi32(idx, _mm256_cvtepu8_epi32(_mm_maskz_loadu_epi8(touched, zeros + g0)));
        const __m256i runSums = _mm256_madd_epi16(load256(x->bsums), ones); // sum of qs over each run of 32
        zeroAcc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(z, runSums)), s, zeroAcc);
        const __m512 s512 = _mm512_castps256_ps512(s);
        for (int k = 0; k < 4; ++k) {
            const __m512i p = dot4(gridCodes<Bits>(codes, c0 + 64 * k), load512(x->qs + 64 * k));
            const __m512 runScale = _mm512_permutexvar_ps(
                _mm512_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k,
                                  2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1),
                s512);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), runScale, acc);
        }
        g0 += groupsPerBlock;
        if (groupsPerBlock == 0 && ++inGroup == blocksPerGroup) {
            inGroup = 0;
            ++g0;
        }
    }
    return _mm512_reduce_add_ps(acc) - reduce256(zeroAcc);
}

// Any other multiple of 32 (groups of 96, 160, ...): per 64 columns, the two
// runs' groups and scales looked up one by one.
template <int Bits>
float gridDotAnyGroups(const GridLayout& L, const uint8_t* row, const BlockQ8K* x)
{
    const uint8_t* zeros = row + static_cast<size_t>(L.groups) * 4;
    const uint8_t* codes = row + L.codesOffset();
    const int64_t gc = L.groupCols;
    __m512 acc = _mm512_setzero_ps();
    float zeroTerm = 0.0f;
    for (int64_t c = 0; c < L.cols; c += 64) {
        const BlockQ8K& xb = x[c / kQ8Block];
        const int64_t q = c % kQ8Block;
        const int64_t g0 = c / gc, g1 = (c + 32) / gc;
        float s0, s1;
        std::memcpy(&s0, row + g0 * 4, 4);
        std::memcpy(&s1, row + g1 * 4, 4);
        s0 *= xb.d;
        s1 *= xb.d;
        const __m512i p = dot4(gridCodes<Bits>(codes, c), load512(xb.qs + q));
        const __m512 scale = _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc);
        const int16_t* bs = xb.bsums + q / 16;
        zeroTerm += s0 * static_cast<float>(zeros[g0] * (bs[0] + bs[1])) + s1 * static_cast<float>(zeros[g1] * (bs[2] + bs[3]));
    }
    return _mm512_reduce_add_ps(acc) - zeroTerm;
}

// A grid with exceptions: its codes there add 0 (model/packed_grid.h), so the
// exceptions' own products are added to the grid's dot.
template <int Bits, bool BlockAligned>
float gridDotWithExceptions(const GridLayout& L, const uint8_t* row, const BlockQ8K* x)
{
    const float grid = BlockAligned ? gridDotBlocks<Bits>(L, row, x) : gridDotAnyGroups<Bits>(L, row, x);
    return grid + gridExceptionsInt8Dot(L, row, x);
}

template <int Bits>
GridInt8DotFn gridKernel(bool blockAligned, bool exceptions)
{
    if (exceptions)
        return blockAligned ? gridDotWithExceptions<Bits, true> : gridDotWithExceptions<Bits, false>;
    return blockAligned ? gridDotBlocks<Bits> : gridDotAnyGroups<Bits>;
}

} // namespace

GridInt8DotFn gridInt8Dot(const GridLayout& layout)
{
    const bool blockAligned = kQ8Block % layout.groupCols == 0 || layout.groupCols % kQ8Block == 0;
    const bool exceptions = layout.hasExceptions();
    switch (layout.bits) {
    case 1: return gridKernel<1>(blockAligned, exceptions);
    case 2: return gridKernel<2>(blockAligned, exceptions);
    case 3: return gridKernel<3>(blockAligned, exceptions);
    case 4: return gridKernel<4>(blockAligned, exceptions);
    case 5: return gridKernel<5>(blockAligned, exceptions);
    case 6: return gridKernel<6>(blockAligned, exceptions);
    case 7: return gridKernel<7>(blockAligned, exceptions);
    default: return gridKernel<8>(blockAligned, exceptions);
    }
}

Int8DotFn int8Dot(DType t)
{
    switch (t) {
    case DType::Q4_K: return dotQ45_K<false>;
    case DType::Q5_K: return dotQ45_K<true>;
    case DType::Q6_K: return dotQ6_K;
    case DType::Q8_0: return dotQ8_0;
    case DType::Q4_0: return dotQ45_01<4, false>;
    case DType::Q4_1: return dotQ45_01<4, true>;
    case DType::Q5_0: return dotQ45_01<5, false>;
    case DType::Q5_1: return dotQ45_01<5, true>;
    default: return nullptr;
    }
}

} // namespace ll::avx512

#else // not an x86-64 build with AVX-512 VNNI flags (never called: hostCpu().avx512vnni is false)

namespace ll::avx512 {
Int8DotFn int8Dot(DType) { return nullptr; }
GridInt8DotFn gridInt8Dot(const GridLayout&) { return nullptr; }
} // namespace ll::avx512

#endif
