// AVX-512 float encoders. Compiled with AVX-512 flags (core/CMakeLists.txt) and
// only reached through encodeFloatsInto when the CPU has AVX-512, so, as in
// kernels/row_kernels_avx512.cpp, nothing here may be shared with other files
// (no inline functions of common headers): intrinsics and static functions only.
#include "export/float_encode_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__F16C__)

#include <immintrin.h>

namespace ll::avx512 {

namespace {

inline __mmask16 tailMask(int64_t left)
{
    return static_cast<__mmask16>((1u << left) - 1u);
}

// vcvtps2ph rounds to nearest even and keeps NaNs quiet, as the scalar cast does.
inline int64_t toF16(__m512 v, __mmask16 lanes, uint16_t* dst)
{
    const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_mask_storeu_epi16(dst, lanes, h);
    const __m512 absV = _mm512_abs_ps(v);
    const __mmask16 finite = _mm512_mask_cmp_ps_mask(lanes, absV, _mm512_set1_ps(__builtin_inff()), _CMP_LT_OQ);
    const __mmask16 inf = _mm256_cmpeq_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x7fff)), _mm256_set1_epi16(0x7c00));
    return __builtin_popcount(static_cast<unsigned>(finite & inf));
}

// Integer rounding as floatToBf16: bits + 0x7fff + lsb, NaN -> (bits >> 16) | 0x40.
// (vcvtneps2bf16 would flush denormal inputs to zero.)
inline int64_t toBf16(__m512 v, __mmask16 lanes, uint16_t* dst)
{
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i absBits = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(absBits, _mm512_set1_epi32(0x7f800000));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    const __m512i out = _mm512_mask_blend_epi32(nan, rounded, quiet);
    _mm256_mask_storeu_epi16(dst, lanes, _mm512_cvtepi32_epi16(out));
    const __mmask16 finite = _mm512_mask_cmplt_epu32_mask(lanes, absBits, _mm512_set1_epi32(0x7f800000));
    const __mmask16 inf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(out, _mm512_set1_epi32(0x7fff)), _mm512_set1_epi32(0x7f80));
    return __builtin_popcount(static_cast<unsigned>(finite & inf));
}

template <int64_t (*Encode)(__m512, __mmask16, uint16_t*)>
int64_t encodeAll(const float* src, uint16_t* dst, int64_t n)
{
    int64_t over = 0, i = 0;
    for (; i + 16 <= n; i += 16)
        over += Encode(_mm512_loadu_ps(src + i), static_cast<__mmask16>(0xffff), dst + i);
    if (i < n) {
        const __mmask16 m = tailMask(n - i);
        over += Encode(_mm512_maskz_loadu_ps(m, src + i), m, dst + i);
    }
    return over;
}

} // namespace

int64_t floatsToF16(const float* src, uint16_t* dst, int64_t n)
{
    return encodeAll<toF16>(src, dst, n);
}

int64_t floatsToBf16(const float* src, uint16_t* dst, int64_t n)
{
    return encodeAll<toBf16>(src, dst, n);
}

} // namespace ll::avx512

#else // not an x86-64 build with AVX-512 flags (never called: hostCpu().avx512() is false)

namespace ll::avx512 {
int64_t floatsToF16(const float*, uint16_t*, int64_t) { return 0; }
int64_t floatsToBf16(const float*, uint16_t*, int64_t) { return 0; }
} // namespace ll::avx512

#endif
