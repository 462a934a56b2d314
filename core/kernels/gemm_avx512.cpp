// AVX-512 GEMM kernels (see gemm_avx512.h). Compiled with AVX-512 flags and
// reached only on CPUs that have them; like row_kernels_avx512.cpp it uses
// intrinsics and file-local functions only, no shared inline code.
#include "kernels/gemm_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512BF16__)

#include <immintrin.h>

#include <cstring>

namespace ll::avx512 {

namespace {

constexpr int kMr = static_cast<int>(kGemmMr);
constexpr int kNr = static_cast<int>(kGemmNr);

inline int64_t minI(int64_t a, int64_t b) { return a < b ? a : b; }

// Masks for the two 16-lane halves of a 32-column tile holding nr valid columns.
inline void columnMasks(int nr, __mmask16& m0, __mmask16& m1)
{
    m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1u);
    m1 = nr >= 32 ? static_cast<__mmask16>(0xFFFF) : nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1u) : 0;
}

// The tile's rows [0, mr) into c: stored, or added to what the earlier slabs left.
inline void storeTile(const __m512 (&a0)[kMr], const __m512 (&a1)[kMr], float* c, int64_t ldc, int mr, int nr, bool accumulate)
{
    __mmask16 m0, m1;
    columnMasks(nr, m0, m1);
    for (int i = 0; i < mr; ++i) {
        float* row = c + i * ldc;
        __m512 v0 = a0[i], v1 = a1[i];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
}

// 12 x 32 tile over kc columns: a [kc][12] packed x, b [kc][32] packed weights.
void kernelF32(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, int mr, int nr, bool accumulate)
{
    __m512 acc0[kMr], acc1[kMr];
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i)
        acc0[i] = acc1[i] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; ++p) {
        const __m512 b0 = _mm512_load_ps(b + p * kNr), b1 = _mm512_load_ps(b + p * kNr + 16);
        const float* ap = a + p * kMr;
#pragma GCC unroll 12
        for (int i = 0; i < kMr; ++i) {
            const __m512 ai = _mm512_set1_ps(ap[i]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
    }
    storeTile(acc0, acc1, c, ldc, mr, nr, accumulate);
}

// The same with BF16 pairs: a [kc/2][12] and b [kc/2][32] hold two values per 32 bits.
void kernelBf16(const uint32_t* a, const uint32_t* b, int64_t pairs, float* c, int64_t ldc, int mr, int nr, bool accumulate)
{
    __m512 acc0[kMr], acc1[kMr];
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i)
        acc0[i] = acc1[i] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(b + p * kNr);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(b + p * kNr + 16);
        const uint32_t* ap = a + p * kMr;
#pragma GCC unroll 12
        for (int i = 0; i < kMr; ++i) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[i]));
            acc0[i] = _mm512_dpbf16_ps(acc0[i], ai, b0);
            acc1[i] = _mm512_dpbf16_ps(acc1[i], ai, b1);
        }
    }
    storeTile(acc0, acc1, c, ldc, mr, nr, accumulate);
}

// x rows [0, mc), columns [0, kc) -> 12-row panels [kc][12], missing rows zero.
void packX(const float* x, int64_t ldx, int64_t mc, int64_t kc, float* out)
{
    for (int64_t i0 = 0; i0 < mc; i0 += kMr) {
        float* panel = out + i0 * kc;
        const int rows = static_cast<int>(minI(kMr, mc - i0));
        for (int i = 0; i < kMr; ++i) {
            const float* src = x + (i0 + i) * ldx;
            if (i < rows)
                for (int64_t p = 0; p < kc; ++p)
                    panel[p * kMr + i] = src[p];
            else
                for (int64_t p = 0; p < kc; ++p)
                    panel[p * kMr + i] = 0.0f;
        }
    }
}

// Two floats rounded to BF16 (nearest even) in one 32-bit word, the first low.
inline uint32_t bf16Pair(float lo, float hi)
{
    const __m128bh v = _mm_cvtneps_pbh(_mm_setr_ps(lo, hi, 0.0f, 0.0f));
    uint32_t out;
    std::memcpy(&out, &v, 4);
    return out;
}

// 16 floats -> 8 pairs (vectorised rounding).
inline __m256i bf16Pairs16(const float* src)
{
    return (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src));
}

// x as BF16 pairs: 12-row panels [pairs][12], missing rows and an odd last column zero.
void packXBf16(const float* x, int64_t ldx, int64_t mc, int64_t kc, uint32_t* out)
{
    const int64_t pairs = (kc + 1) / 2;
    alignas(64) uint32_t row[kGemmKc / 2];
    for (int64_t i0 = 0; i0 < mc; i0 += kMr) {
        uint32_t* panel = out + (i0 / kMr) * pairs * kMr;
        const int rows = static_cast<int>(minI(kMr, mc - i0));
        for (int i = 0; i < kMr; ++i) {
            if (i >= rows) {
                for (int64_t p = 0; p < pairs; ++p)
                    panel[p * kMr + i] = 0;
                continue;
            }
            const float* src = x + (i0 + i) * ldx;
            int64_t c = 0;
            for (; c + 16 <= kc; c += 16)
                _mm256_store_si256(reinterpret_cast<__m256i*>(row + c / 2), bf16Pairs16(src + c));
            for (; c < kc; c += 2)
                row[c / 2] = bf16Pair(src[c], c + 1 < kc ? src[c + 1] : 0.0f);
            for (int64_t p = 0; p < pairs; ++p)
                panel[p * kMr + i] = row[p];
        }
    }
}

} // namespace

// Loop order: x is packed once (all its slabs), then each 32-row panel of W
// is decoded slab after slab along its rows, so the weights stream in order
// (prefetch- and TLB-friendly, each decoded once), while x's current slab
// stays in L2 and the output panel (m x 32) in L2 across the slabs.
// Asks for the bytes of the panel's next slab while the kernels run on this one.
inline void prefetchSlab(const uint8_t* base, size_t rowBytes, int64_t j0, int nr, size_t begin, size_t end)
{
    if (!base)
        return;
    end = end < rowBytes ? end : rowBytes;
    for (int r = 0; r < nr; ++r)
        for (size_t b = begin; b < end; b += 64)
            _mm_prefetch(reinterpret_cast<const char*>(base + static_cast<size_t>(j0 + r) * rowBytes + b), _MM_HINT_T0);
}

void gemmF32(const float* x, int64_t ldx, int64_t m, int64_t k, const void* context, SegmentDecoder decode,
             const uint8_t* weights, size_t rowBytes, float* y, int64_t ldy, int64_t c0, int64_t c1, float* scratch)
{
    const int64_t mPadded = (m + kMr - 1) / kMr * kMr;
    float* wp = scratch;                         // [kc][32], 64-byte aligned
    float* xp = scratch + kGemmNr * kGemmKc;     // slab s at xp + s * mPadded * kGemmKc
    alignas(64) float segment[kGemmKc];
    for (int64_t kk = 0; kk < k; kk += kGemmKc)
        packX(x + kk, ldx, m, minI(kGemmKc, k - kk), xp + (kk / kGemmKc) * mPadded * kGemmKc);
    for (int64_t j0 = c0; j0 < c1; j0 += kNr) {
        const int nr = static_cast<int>(minI(kNr, c1 - j0));
        for (int64_t kk = 0; kk < k; kk += kGemmKc) {
            const int64_t kc = minI(kGemmKc, k - kk);
            for (int r = 0; r < kNr; ++r) {
                if (r < nr)
                    decode(context, j0 + r, kk, kc, segment);
                for (int64_t p = 0; p < kc; ++p)
                    wp[p * kNr + r] = r < nr ? segment[p] : 0.0f;
            }
            // Bytes of a row per value, rounded up: the next slab's span, whatever the type.
            const size_t perSlab = (rowBytes * static_cast<size_t>(kGemmKc) + static_cast<size_t>(k) - 1) / static_cast<size_t>(k);
            const size_t next = perSlab * static_cast<size_t>(kk / kGemmKc + 1);
            prefetchSlab(weights, rowBytes, j0, nr, next, next + perSlab);
            const float* slab = xp + (kk / kGemmKc) * mPadded * kGemmKc;
            for (int64_t ip = 0; ip < m; ip += kMr)
                kernelF32(slab + ip * kc, wp, kc, y + ip * ldy + j0, ldy, static_cast<int>(minI(kMr, m - ip)), nr, kk > 0);
        }
    }
}

void gemmBf16(const float* x, int64_t ldx, int64_t m, int64_t k, const uint8_t* w, size_t rowBytes, float* y,
              int64_t ldy, int64_t c0, int64_t c1, float* scratch)
{
    const int64_t mPadded = (m + kMr - 1) / kMr * kMr;
    auto* wp = reinterpret_cast<uint32_t*>(scratch);
    auto* xp = reinterpret_cast<uint32_t*>(scratch + kGemmNr * kGemmKc); // slab s at xp + s * mPadded * kGemmKc / 2
    for (int64_t kk = 0; kk < k; kk += kGemmKc)
        packXBf16(x + kk, ldx, m, minI(kGemmKc, k - kk), xp + (kk / kGemmKc) * mPadded * (kGemmKc / 2));
    for (int64_t j0 = c0; j0 < c1; j0 += kNr) {
        const int nr = static_cast<int>(minI(kNr, c1 - j0));
        for (int64_t kk = 0; kk < k; kk += kGemmKc) {
            const int64_t kc = minI(kGemmKc, k - kk);
            const int64_t pairs = (kc + 1) / 2;
            for (int r = 0; r < kNr; ++r) {
                if (r >= nr) {
                    for (int64_t p = 0; p < pairs; ++p)
                        wp[p * kNr + r] = 0;
                    continue;
                }
                const uint8_t* src = w + static_cast<size_t>(j0 + r) * rowBytes + static_cast<size_t>(kk) * 2;
                const int64_t whole = kc / 2;
                for (int64_t p = 0; p < whole; ++p) {
                    uint32_t v;
                    std::memcpy(&v, src + 4 * p, 4);
                    wp[p * kNr + r] = v;
                }
                if (kc % 2) { // the last value alone: never read past the row
                    uint16_t h;
                    std::memcpy(&h, src + 2 * (kc - 1), 2);
                    wp[whole * kNr + r] = h;
                }
            }
            const uint32_t* slab = xp + (kk / kGemmKc) * mPadded * (kGemmKc / 2);
            for (int64_t ip = 0; ip < m; ip += kMr)
                kernelBf16(slab + (ip / kMr) * pairs * kMr, wp, pairs, y + ip * ldy + j0, ldy,
                           static_cast<int>(minI(kMr, m - ip)), nr, kk > 0);
        }
    }
}

} // namespace ll::avx512

#else // no AVX-512 BF16 flags: never called (hostCpu() says so)

namespace ll::avx512 {
void gemmF32(const float*, int64_t, int64_t, int64_t, const void*, SegmentDecoder, const uint8_t*, size_t, float*, int64_t,
             int64_t, int64_t, float*) {}
void gemmBf16(const float*, int64_t, int64_t, int64_t, const uint8_t*, size_t, float*, int64_t, int64_t, int64_t, float*) {}
} // namespace ll::avx512

#endif
