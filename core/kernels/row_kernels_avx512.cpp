// AVX-512 row kernels. This file is compiled with AVX-512 flags (core/CMakeLists.txt)
// and only reached through rowKernels() when the CPU has AVX-512, so it must
// not define or instantiate anything another file could share (inline
// functions of common headers, templates of the standard library): the linker
// could keep this file's AVX-512 copy for everyone. Everything here is static
// and uses intrinsics only.
//
// Decoders compute exactly what model/ggml_dequant.cpp computes, operation for
// operation (multiplies then subtracts, never fused: -ffp-contract=off), so a
// decoded row is bit-identical to the scalar reference.
#include "kernels/row_kernels_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__F16C__)

#include "model/ggml_blocks.h"

#include <immintrin.h>

#include <cstring>

namespace ll::avx512 {

namespace {

using namespace ll::ggml;

inline float halfToFloat(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

template <class Block>
inline Block loadBlock(const uint8_t* p)
{
    Block b;
    std::memcpy(&b, p, sizeof(Block));
    return b;
}

// 16 bytes -> 16 int32 lanes (unsigned).
inline __m512i widenU8(const uint8_t* p)
{
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline __m512i widenU8(__m128i v)
{
    return _mm512_cvtepu8_epi32(v);
}

inline void store(float* y, __m512i q, __m512 scale)
{
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(q), scale));
}

// scale * q - min (two roundings, as the reference)
inline void storeAffine(float* y, __m512i q, __m512 scale, __m512 min)
{
    _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(scale, _mm512_cvtepi32_ps(q)), min));
}

// q * d + m (Q4_1 / Q5_1 order)
inline void storeQm(float* y, __m512i q, __m512 d, __m512 m)
{
    _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), d), m));
}

// ---- plain types -------------------------------------------------------

void decodeF16(const uint8_t* src, float* dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i))));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + 2 * i)));
    }
}

inline __m512 bf16x16(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

void decodeBF16(const uint8_t* src, float* dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, bf16x16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i))));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, bf16x16(_mm256_maskz_loadu_epi16(m, src + 2 * i)));
    }
}

// ---- 32-value blocks ---------------------------------------------------

void decodeQ8_0(const uint8_t* src, float* dst, int64_t n)
{
    for (int64_t b = 0; b < n / kQK; ++b, src += sizeof(BlockQ8_0), dst += kQK) {
        const __m512 d = _mm512_set1_ps(halfToFloat(loadBlock<uint16_t>(src)));
        const uint8_t* qs = src + 2;
        store(dst, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs))), d);
        store(dst + 16, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16))), d);
    }
}

void decodeQ4_0(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i low = _mm512_set1_epi32(0x0F), eight = _mm512_set1_epi32(8);
    for (int64_t b = 0; b < n / kQK; ++b, src += sizeof(BlockQ4_0), dst += kQK) {
        const __m512 d = _mm512_set1_ps(halfToFloat(loadBlock<uint16_t>(src)));
        const __m512i q = widenU8(src + 2);
        store(dst, _mm512_sub_epi32(_mm512_and_si512(q, low), eight), d);
        store(dst + 16, _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight), d);
    }
}

void decodeQ4_1(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i low = _mm512_set1_epi32(0x0F);
    for (int64_t b = 0; b < n / kQK; ++b, src += sizeof(BlockQ4_1), dst += kQK) {
        const BlockQ4_1 blk = loadBlock<BlockQ4_1>(src);
        const __m512 d = _mm512_set1_ps(halfToFloat(blk.d)), m = _mm512_set1_ps(halfToFloat(blk.m));
        const __m512i q = widenU8(blk.qs);
        storeQm(dst, _mm512_and_si512(q, low), d, m);
        storeQm(dst + 16, _mm512_srli_epi32(q, 4), d, m);
    }
}

// The fifth bits of a Q5 block: bit j of qh for value j.
inline void q5Values(const uint8_t* qs, uint32_t qh, __m512i& lo, __m512i& hi)
{
    const __m512i low = _mm512_set1_epi32(0x0F), sixteen = _mm512_set1_epi32(16);
    const __m512i q = widenU8(qs);
    lo = _mm512_mask_or_epi32(_mm512_and_si512(q, low), static_cast<__mmask16>(qh & 0xFFFF), _mm512_and_si512(q, low), sixteen);
    hi = _mm512_mask_or_epi32(_mm512_srli_epi32(q, 4), static_cast<__mmask16>(qh >> 16), _mm512_srli_epi32(q, 4), sixteen);
}

void decodeQ5_0(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i sixteen = _mm512_set1_epi32(16);
    for (int64_t b = 0; b < n / kQK; ++b, src += sizeof(BlockQ5_0), dst += kQK) {
        const BlockQ5_0 blk = loadBlock<BlockQ5_0>(src);
        const __m512 d = _mm512_set1_ps(halfToFloat(blk.d));
        uint32_t qh;
        std::memcpy(&qh, blk.qh, 4);
        __m512i lo, hi;
        q5Values(blk.qs, qh, lo, hi);
        store(dst, _mm512_sub_epi32(lo, sixteen), d);
        store(dst + 16, _mm512_sub_epi32(hi, sixteen), d);
    }
}

void decodeQ5_1(const uint8_t* src, float* dst, int64_t n)
{
    for (int64_t b = 0; b < n / kQK; ++b, src += sizeof(BlockQ5_1), dst += kQK) {
        const BlockQ5_1 blk = loadBlock<BlockQ5_1>(src);
        const __m512 d = _mm512_set1_ps(halfToFloat(blk.d)), m = _mm512_set1_ps(halfToFloat(blk.m));
        uint32_t qh;
        std::memcpy(&qh, blk.qh, 4);
        __m512i lo, hi;
        q5Values(blk.qs, qh, lo, hi);
        storeQm(dst, lo, d, m);
        storeQm(dst + 16, hi, d, m);
    }
}

inline __m512i iq4Table()
{
    return _mm512_setr_epi32(kIq4nlValues[0], kIq4nlValues[1], kIq4nlValues[2], kIq4nlValues[3], kIq4nlValues[4],
                             kIq4nlValues[5], kIq4nlValues[6], kIq4nlValues[7], kIq4nlValues[8], kIq4nlValues[9],
                             kIq4nlValues[10], kIq4nlValues[11], kIq4nlValues[12], kIq4nlValues[13], kIq4nlValues[14],
                             kIq4nlValues[15]);
}

// d * value (the reference's operand order; multiplication commutes exactly).
void decodeIQ4_NL(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i table = iq4Table(), low = _mm512_set1_epi32(0x0F);
    for (int64_t b = 0; b < n / kQK; ++b, src += sizeof(BlockIQ4_NL), dst += kQK) {
        const __m512 d = _mm512_set1_ps(halfToFloat(loadBlock<uint16_t>(src)));
        const __m512i q = widenU8(src + 2);
        store(dst, _mm512_permutexvar_epi32(_mm512_and_si512(q, low), table), d);
        store(dst + 16, _mm512_permutexvar_epi32(_mm512_srli_epi32(q, 4), table), d);
    }
}

// ---- 256-value super-blocks ---------------------------------------------

inline void kScaleMin(const uint8_t* s, int i, int& scale, int& min)
{
    if (i < 4) {
        scale = s[i] & 63;
        min = s[i + 4] & 63;
    } else {
        scale = (s[i + 4] & 0x0F) | (s[i - 4] >> 6) << 4;
        min = (s[i + 4] >> 4) | (s[i] >> 6) << 4;
    }
}

void decodeQ4_K(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i low = _mm512_set1_epi32(0x0F);
    for (int64_t b = 0; b < n / kQK_K; ++b, src += sizeof(BlockQ4_K), dst += kQK_K) {
        const BlockQ4_K blk = loadBlock<BlockQ4_K>(src);
        const float d = halfToFloat(blk.d), dmin = halfToFloat(blk.dmin);
        for (int c = 0; c < 4; ++c) {
            int sc0, m0, sc1, m1;
            kScaleMin(blk.scales, 2 * c, sc0, m0);
            kScaleMin(blk.scales, 2 * c + 1, sc1, m1);
            const __m512 d0 = _mm512_set1_ps(d * static_cast<float>(sc0)), mn0 = _mm512_set1_ps(dmin * static_cast<float>(m0));
            const __m512 d1 = _mm512_set1_ps(d * static_cast<float>(sc1)), mn1 = _mm512_set1_ps(dmin * static_cast<float>(m1));
            const uint8_t* q = blk.qs + 32 * c;
            float* y = dst + 64 * c;
            for (int h = 0; h < 2; ++h) {
                const __m512i v = widenU8(q + 16 * h);
                storeAffine(y + 16 * h, _mm512_and_si512(v, low), d0, mn0);
                storeAffine(y + 32 + 16 * h, _mm512_srli_epi32(v, 4), d1, mn1);
            }
        }
    }
}

void decodeQ5_K(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i low = _mm512_set1_epi32(0x0F), one = _mm512_set1_epi32(1);
    for (int64_t b = 0; b < n / kQK_K; ++b, src += sizeof(BlockQ5_K), dst += kQK_K) {
        const BlockQ5_K blk = loadBlock<BlockQ5_K>(src);
        const float d = halfToFloat(blk.d), dmin = halfToFloat(blk.dmin);
        const __m512i qh[2] = {widenU8(blk.qh), widenU8(blk.qh + 16)};
        for (int sub = 0; sub < 8; ++sub) {
            int sc, mn;
            kScaleMin(blk.scales, sub, sc, mn);
            const __m512 dl = _mm512_set1_ps(d * static_cast<float>(sc)), ml = _mm512_set1_ps(dmin * static_cast<float>(mn));
            const uint8_t* q = blk.qs + 32 * (sub / 2);
            const int shift = 4 * (sub % 2);
            for (int h = 0; h < 2; ++h) {
                const __m512i nib = _mm512_and_si512(_mm512_srl_epi32(widenU8(q + 16 * h), _mm_cvtsi32_si128(shift)), low);
                const __m512i fifth = _mm512_and_si512(_mm512_srl_epi32(qh[h], _mm_cvtsi32_si128(sub)), one);
                storeAffine(dst + 32 * sub + 16 * h, _mm512_or_si512(nib, _mm512_slli_epi32(fifth, 4)), dl, ml);
            }
        }
    }
}

// d * scale * q in the reference's order: (d * scale) first, then times q.
void decodeQ6_K(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i low = _mm512_set1_epi32(0x0F), three = _mm512_set1_epi32(3), bias = _mm512_set1_epi32(32);
    for (int64_t b = 0; b < n / kQK_K; ++b, src += sizeof(BlockQ6_K), dst += kQK_K) {
        const BlockQ6_K blk = loadBlock<BlockQ6_K>(src);
        const float d = halfToFloat(blk.d);
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = blk.ql + 64 * h;
            const uint8_t* qh = blk.qh + 32 * h;
            const int8_t* sc = blk.scales + 8 * h;
            float* out = dst + 128 * h;
            for (int is = 0; is < 2; ++is) { // l in [16 is, 16 is + 16)
                const __m512i a = widenU8(ql + 16 * is), c = widenU8(ql + 32 + 16 * is), hb = widenU8(qh + 16 * is);
                const __m512i q1 = _mm512_or_si512(_mm512_and_si512(a, low), _mm512_slli_epi32(_mm512_and_si512(hb, three), 4));
                const __m512i q2 = _mm512_or_si512(_mm512_and_si512(c, low),
                                                   _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hb, 2), three), 4));
                const __m512i q3 = _mm512_or_si512(_mm512_srli_epi32(a, 4),
                                                   _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hb, 4), three), 4));
                const __m512i q4 = _mm512_or_si512(_mm512_srli_epi32(c, 4),
                                                   _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hb, 6), three), 4));
                const int l = 16 * is;
                store(out + l, _mm512_sub_epi32(q1, bias), _mm512_set1_ps(d * static_cast<float>(sc[is])));
                store(out + l + 32, _mm512_sub_epi32(q2, bias), _mm512_set1_ps(d * static_cast<float>(sc[is + 2])));
                store(out + l + 64, _mm512_sub_epi32(q3, bias), _mm512_set1_ps(d * static_cast<float>(sc[is + 4])));
                store(out + l + 96, _mm512_sub_epi32(q4, bias), _mm512_set1_ps(d * static_cast<float>(sc[is + 6])));
            }
        }
    }
}

// Q2_K and Q3_K: in half h, value 32 j + l takes bits (2j, 2j+1) of qs[32 h + l];
// every 16 values share a scale.
void decodeQ2_K(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i three = _mm512_set1_epi32(3);
    for (int64_t b = 0; b < n / kQK_K; ++b, src += sizeof(BlockQ2_K), dst += kQK_K) {
        const BlockQ2_K blk = loadBlock<BlockQ2_K>(src);
        const float d = halfToFloat(blk.d), dmin = halfToFloat(blk.dmin);
        for (int h = 0; h < 2; ++h)
            for (int half16 = 0; half16 < 2; ++half16) {
                const __m512i q = widenU8(blk.qs + 32 * h + 16 * half16);
                for (int j = 0; j < 4; ++j) {
                    const uint8_t sc = blk.scales[8 * h + 2 * j + half16];
                    const __m512 dl = _mm512_set1_ps(d * static_cast<float>(sc & 0x0F));
                    const __m512 ml = _mm512_set1_ps(dmin * static_cast<float>(sc >> 4));
                    const __m512i v = _mm512_and_si512(_mm512_srl_epi32(q, _mm_cvtsi32_si128(2 * j)), three);
                    storeAffine(dst + 128 * h + 32 * j + 16 * half16, v, dl, ml);
                }
            }
    }
}

inline int q3kScale(const uint8_t* s, int i)
{
    const int low = i < 8 ? (s[i] & 0x0F) : (s[i - 8] >> 4);
    const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (low | high << 4) - 32;
}

void decodeQ3_K(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i three = _mm512_set1_epi32(3), one = _mm512_set1_epi32(1), four = _mm512_set1_epi32(4);
    for (int64_t b = 0; b < n / kQK_K; ++b, src += sizeof(BlockQ3_K), dst += kQK_K) {
        const BlockQ3_K blk = loadBlock<BlockQ3_K>(src);
        const float d = halfToFloat(blk.d);
        for (int half16 = 0; half16 < 2; ++half16) {
            const __m512i hm = widenU8(blk.hmask + 16 * half16);
            for (int h = 0; h < 2; ++h) {
                const __m512i q = widenU8(blk.qs + 32 * h + 16 * half16);
                for (int j = 0; j < 4; ++j) {
                    const __m512 dl = _mm512_set1_ps(d * static_cast<float>(q3kScale(blk.scales, 8 * h + 2 * j + half16)));
                    const __m512i lowBits = _mm512_and_si512(_mm512_srl_epi32(q, _mm_cvtsi32_si128(2 * j)), three);
                    const __m512i high = _mm512_and_si512(_mm512_srl_epi32(hm, _mm_cvtsi32_si128(4 * h + j)), one);
                    // high set: no offset; clear: minus 4.
                    const __m512i v = _mm512_sub_epi32(lowBits, _mm512_andnot_si512(_mm512_slli_epi32(high, 2), four));
                    store(dst + 128 * h + 32 * j + 16 * half16, v, dl);
                }
            }
        }
    }
}

void decodeIQ4_XS(const uint8_t* src, float* dst, int64_t n)
{
    const __m512i table = iq4Table(), low = _mm512_set1_epi32(0x0F);
    for (int64_t b = 0; b < n / kQK_K; ++b, src += sizeof(BlockIQ4_XS), dst += kQK_K) {
        const BlockIQ4_XS blk = loadBlock<BlockIQ4_XS>(src);
        const float d = halfToFloat(blk.d);
        for (int sub = 0; sub < 8; ++sub) {
            const int lo = (blk.scales_l[sub / 2] >> (4 * (sub % 2))) & 0x0F;
            const int hi = (blk.scales_h >> (2 * sub)) & 3;
            const __m512 dl = _mm512_set1_ps(d * static_cast<float>((lo | hi << 4) - 32));
            const __m512i q = widenU8(blk.qs + 16 * sub);
            store(dst + 32 * sub, _mm512_permutexvar_epi32(_mm512_and_si512(q, low), table), dl);
            store(dst + 32 * sub + 16, _mm512_permutexvar_epi32(_mm512_srli_epi32(q, 4), table), dl);
        }
    }
}

// ---- dot products ------------------------------------------------------

inline float sum4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

float dotPlainF32(const float* a, const float* b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return sum4(s0, s1, s2, s3);
}

float dotF32w(const uint8_t* w, const float* x, int64_t n)
{
    return dotPlainF32(reinterpret_cast<const float*>(w), x, n);
}

float dotF16(const uint8_t* w, const float* x, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    const auto ld = [&](int64_t j) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * j))); };
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(ld(i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(ld(i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(ld(i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(ld(i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(ld(i), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + 2 * i)), _mm512_maskz_loadu_ps(m, x + i), s1);
    }
    return sum4(s0, s1, s2, s3);
}

float dotBF16(const uint8_t* w, const float* x, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    const auto ld = [&](int64_t j) { return bf16x16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * j))); };
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(ld(i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(ld(i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(ld(i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(ld(i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(ld(i), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(bf16x16(_mm256_maskz_loadu_epi16(m, w + 2 * i)), _mm512_maskz_loadu_ps(m, x + i), s1);
    }
    return sum4(s0, s1, s2, s3);
}

// Block types: decode 256 values at a time into a buffer that stays in L1,
// then multiply-add; the decode dominates, the buffer costs little.
template <RowDecodeFn Decode, int64_t BlockElems, int64_t BlockBytes>
float dotByDecoding(const uint8_t* w, const float* x, int64_t n)
{
    constexpr int64_t kChunk = 256;
    alignas(64) float buf[kChunk];
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk; // a whole number of blocks
        Decode(w + i / BlockElems * BlockBytes, buf, len);
        int64_t j = 0;
        for (; j + 64 <= len; j += 64) {
            s0 = _mm512_fmadd_ps(_mm512_load_ps(buf + j), _mm512_loadu_ps(x + i + j), s0);
            s1 = _mm512_fmadd_ps(_mm512_load_ps(buf + j + 16), _mm512_loadu_ps(x + i + j + 16), s1);
            s2 = _mm512_fmadd_ps(_mm512_load_ps(buf + j + 32), _mm512_loadu_ps(x + i + j + 32), s2);
            s3 = _mm512_fmadd_ps(_mm512_load_ps(buf + j + 48), _mm512_loadu_ps(x + i + j + 48), s3);
        }
        for (; j < len; j += 16)
            s0 = _mm512_fmadd_ps(_mm512_load_ps(buf + j), _mm512_loadu_ps(x + i + j), s0);
    }
    return sum4(s0, s1, s2, s3);
}

template <RowDecodeFn Decode, class Block, int64_t BlockElems>
RowKernels blockKernels()
{
    return {Decode, dotByDecoding<Decode, BlockElems, static_cast<int64_t>(sizeof(Block))>};
}

} // namespace

RowKernels rowKernels(DType t)
{
    switch (t) {
    case DType::F32: return {nullptr, dotF32w};
    case DType::F16: return {decodeF16, dotF16};
    case DType::BF16: return {decodeBF16, dotBF16};
    case DType::Q4_0: return blockKernels<decodeQ4_0, BlockQ4_0, kQK>();
    case DType::Q4_1: return blockKernels<decodeQ4_1, BlockQ4_1, kQK>();
    case DType::Q5_0: return blockKernels<decodeQ5_0, BlockQ5_0, kQK>();
    case DType::Q5_1: return blockKernels<decodeQ5_1, BlockQ5_1, kQK>();
    case DType::Q8_0: return blockKernels<decodeQ8_0, BlockQ8_0, kQK>();
    case DType::Q2_K: return blockKernels<decodeQ2_K, BlockQ2_K, kQK_K>();
    case DType::Q3_K: return blockKernels<decodeQ3_K, BlockQ3_K, kQK_K>();
    case DType::Q4_K: return blockKernels<decodeQ4_K, BlockQ4_K, kQK_K>();
    case DType::Q5_K: return blockKernels<decodeQ5_K, BlockQ5_K, kQK_K>();
    case DType::Q6_K: return blockKernels<decodeQ6_K, BlockQ6_K, kQK_K>();
    case DType::IQ4_NL: return blockKernels<decodeIQ4_NL, BlockIQ4_NL, kQK>();
    case DType::IQ4_XS: return blockKernels<decodeIQ4_XS, BlockIQ4_XS, kQK_K>();
    default: return {};
    }
}

void floatsToHalf(const float* x, uint16_t* out, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

float dotF16HalfX(const uint8_t* w, const uint16_t* x, int64_t n)
{
    const auto* xb = reinterpret_cast<const uint8_t*>(x);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const auto ld = [](const uint8_t* p, int64_t j) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * j))); };
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(ld(w, i), ld(xb, i), s0);
        s1 = _mm512_fmadd_ps(ld(w, i + 16), ld(xb, i + 16), s1);
        s2 = _mm512_fmadd_ps(ld(w, i + 32), ld(xb, i + 32), s2);
        s3 = _mm512_fmadd_ps(ld(w, i + 48), ld(xb, i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(ld(w, i), ld(xb, i), s0);
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + 2 * i)), _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, xb + 2 * i)), s1);
    }
    return sum4(s0, s1, s2, s3);
}

float dotF32(const float* a, const float* b, int64_t n)
{
    return dotPlainF32(a, b, n);
}

} // namespace ll::avx512

#else // not an x86-64 build with AVX-512 flags: no fast kernels (never called: hostCpu().avx512() is false)

namespace ll::avx512 {
RowKernels rowKernels(DType) { return {}; }
float dotF32(const float*, const float*, int64_t) { return 0.0f; }
void floatsToHalf(const float*, uint16_t*, int64_t) {}
float dotF16HalfX(const uint8_t*, const uint16_t*, int64_t) { return 0.0f; }
} // namespace ll::avx512

#endif
