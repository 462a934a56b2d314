#include "export/float_encode.h"

#include "export/float_encode_avx512.h"
#include "kernels/cpu_features.h"
#include "util/error.h"
#include "util/half.h"

#include <cmath>
#include <cstring>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LL_HAVE_F16C_PATH 1
#endif

namespace ll {

namespace {

int64_t scalarF16(const float* src, uint16_t* dst, int64_t n)
{
    int64_t over = 0;
    for (int64_t i = 0; i < n; ++i) {
        dst[i] = floatToFp16(src[i]);
        over += std::isfinite(src[i]) && !std::isfinite(fp16ToFloat(dst[i]));
    }
    return over;
}

int64_t scalarBf16(const float* src, uint16_t* dst, int64_t n)
{
    int64_t over = 0;
    for (int64_t i = 0; i < n; ++i) {
        dst[i] = floatToBf16(src[i]);
        over += std::isfinite(src[i]) && !std::isfinite(bf16ToFloat(dst[i]));
    }
    return over;
}

#ifdef LL_HAVE_F16C_PATH
// 8 values at a time for CPUs without AVX-512 (most desktops). Compiled for
// AVX2 + F16C by the target attribute alone, so the rest of this file stays portable.
__attribute__((target("avx2,f16c"))) int64_t f16cF16(const float* src, uint16_t* dst, int64_t n)
{
    int64_t over = 0, i = 0;
    const __m256 inf = _mm256_set1_ps(__builtin_inff());
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(src + i);
        const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
        const __m256 finite = _mm256_cmp_ps(_mm256_andnot_ps(signBit, v), inf, _CMP_LT_OQ);
        const __m128i isInf = _mm_cmpeq_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
        // one bit per 16-bit lane from the compare, one per float lane from `finite`
        const unsigned infBits = static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(isInf, _mm_setzero_si128())));
        over += __builtin_popcount(infBits & static_cast<unsigned>(_mm256_movemask_ps(finite)));
    }
    return over + scalarF16(src + i, dst + i, n - i);
}

__attribute__((target("avx2"))) int64_t avx2Bf16(const float* src, uint16_t* dst, int64_t n)
{
    int64_t over = 0, i = 0;
    const __m256i absMask = _mm256_set1_epi32(0x7fffffff), expMask = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
        const __m256i absBits = _mm256_and_si256(bits, absMask);
        const __m256i nan = _mm256_cmpgt_epi32(absBits, expMask); // signed compare is fine: absBits >= 0
        const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
        const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb), 16);
        const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
        const __m256i out = _mm256_blendv_epi8(rounded, quiet, nan);
        // 32 -> 16 bits: values fit in 16 unsigned bits, packus keeps them; undo its lane interleave
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(out, out), 0x08);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_castsi256_si128(packed));
        const __m256i finite = _mm256_cmpgt_epi32(expMask, absBits);
        const __m256i isInf = _mm256_cmpeq_epi32(_mm256_and_si256(out, _mm256_set1_epi32(0x7fff)), _mm256_set1_epi32(0x7f80));
        over += __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_and_si256(finite, isInf)))));
    }
    return over + scalarBf16(src + i, dst + i, n - i);
}
#endif

} // namespace

bool canUseEncodePath(EncodePath path)
{
    const CpuFeatures& cpu = hostCpu();
    switch (path) {
    case EncodePath::Scalar: return true;
#ifdef LL_HAVE_F16C_PATH
    case EncodePath::F16c: return cpu.f16c && cpu.avx2;
#else
    case EncodePath::F16c: return false;
#endif
    case EncodePath::Avx512: return cpu.avx512();
    }
    return false;
}

EncodePath bestEncodePath()
{
    if (kernelLevel() != KernelLevel::Portable)
        return EncodePath::Avx512;
    return canUseEncodePath(EncodePath::F16c) ? EncodePath::F16c : EncodePath::Scalar;
}

int64_t encodeFloatsInto(const float* src, int64_t n, DType type, uint8_t* dst, EncodePath path)
{
    if (!canUseEncodePath(path))
        path = EncodePath::Scalar;
    // dst may be unaligned for uint16_t in principle; the exporters' buffers are not, and memcpy-free stores need it.
    auto* d16 = reinterpret_cast<uint16_t*>(dst);
    switch (type) {
    case DType::F32:
        std::memcpy(dst, src, static_cast<size_t>(n) * 4);
        return 0;
    case DType::F16:
        switch (path) {
        case EncodePath::Avx512: return avx512::floatsToF16(src, d16, n);
#ifdef LL_HAVE_F16C_PATH
        case EncodePath::F16c: return f16cF16(src, d16, n);
#endif
        default: return scalarF16(src, d16, n);
        }
    case DType::BF16:
        switch (path) {
        case EncodePath::Avx512: return avx512::floatsToBf16(src, d16, n);
#ifdef LL_HAVE_F16C_PATH
        case EncodePath::F16c: return avx2Bf16(src, d16, n);
#endif
        default: return scalarBf16(src, d16, n);
        }
    default:
        fail(ErrorCode::UnsupportedDType, "", "cannot encode floats as " + std::string(dtypeName(type)));
    }
}

std::vector<uint8_t> encodeFloats(const std::vector<float>& values, DType type, int64_t* overflowed)
{
    if (type != DType::F32 && type != DType::F16 && type != DType::BF16)
        fail(ErrorCode::UnsupportedDType, "", "cannot encode floats as " + std::string(dtypeName(type)));
    std::vector<uint8_t> out(values.size() * (type == DType::F32 ? 4 : 2));
    const int64_t over = encodeFloatsInto(values.data(), static_cast<int64_t>(values.size()), type, out.data());
    if (overflowed)
        *overflowed = over;
    return out;
}

} // namespace ll
