#include "stats/stats_passes.h"

#include <cmath>
// The vector kernels use AVX-512 F and DQ; other builds take the portable loops.
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define LL_STATS_AVX512 1
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace ll::stats_detail {

namespace {

constexpr size_t kFold = 4096; // values summed in float before folding into doubles

// Flushes denormals to zero while alive. Fourth powers of small weights are
// denormal floats, and denormal arithmetic is ~50x slower on x86; the values
// lost are below 1e-38, far under the rounding of the sums they join.
class FlushDenormals {
public:
    FlushDenormals()
    {
#if defined(__SSE__)
        saved_ = _mm_getcsr();
        _mm_setcsr(saved_ | 0x8040u); // FTZ | DAZ
#endif
    }
    ~FlushDenormals()
    {
#if defined(__SSE__)
        _mm_setcsr(saved_);
#endif
    }
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;

private:
    unsigned saved_ = 0;
};

// Careful path: doubles, explicit checks for NaN/Inf. Used for blocks where
// the fast path's float sums came out non-finite, and for the few values
// after a block's last full vector.
void firstPassCareful(const float* v, size_t m, float pivot, FirstPass& acc)
{
    for (size_t i = 0; i < m; ++i) {
        if (!(std::fabs(v[i]) <= std::numeric_limits<float>::max())) {
            ++acc.nonFinite;
            continue;
        }
        const double d = static_cast<double>(v[i]) - pivot;
        acc.s1 += d; acc.s2 += d * d; acc.s3 += d * d * d; acc.s4 += d * d * d * d;
        acc.min = std::min(acc.min, v[i]);
        acc.max = std::max(acc.max, v[i]);
        acc.zeros += v[i] == 0.0f;
    }
}

#if defined(LL_STATS_AVX512)
// Prefetches the two cache lines 8 KiB past v into L2. Without it a pass's
// compute and its memory reads hardly overlap (pass 2 ran 35 ms instead of
// 18); prefetching into L1 measured slower.
inline void prefetchAhead(const float* v)
{
    // Integer arithmetic: the address may lie past the end (prefetches never fault).
    const uintptr_t ahead = reinterpret_cast<uintptr_t>(v) + 8192;
    _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T1);
}

constexpr int kPairBins = 128; // up to 128 x 128 16-bit counters (32 KiB): the table stays in L1
static_assert(kChunk / 2 <= 0xFFFF, "a chunk's pairs must fit 16-bit counters");
static_assert(kPairBins == 4 * 32, "a table row is four vectors of 32 counters");

// Pass 2 for up to 128 bins. The scatter of counts is the bottleneck (about
// one increment a cycle), so each increment counts two values: value k of one
// vector and value k of the next make one index a * 128 + b into a table of
// counters, whose row sums are the histogram of the first values and whose
// column sums that of the second. Bin indices are the scalar path's formula,
// 16 at a time.
template <bool Finite>
void secondPassPairs(const float* x, size_t n, float mean, float lo, float invWidth, float cut, SecondPass& acc)
{
    const int bins = static_cast<int>(acc.counts.size());
    acc.pairs.resize(kPairBins * kPairBins);
    uint16_t* table = acc.pairs.data(); // [first value's bin][second value's bin], row stride kPairBins
    const __m512 vmean = _mm512_set1_ps(mean), vlo = _mm512_set1_ps(lo), vinv = _mm512_set1_ps(invWidth);
    const __m512 vcut = _mm512_set1_ps(cut), vtop = _mm512_set1_ps(static_cast<float>(bins - 1));
    const __m512 vmax = _mm512_set1_ps(std::numeric_limits<float>::max());
    const __m512i minusOne = _mm512_set1_epi32(-1);
    __m512i outliers = _mm512_setzero_si512(), nonFinite = _mm512_setzero_si512(); // per-lane counts
    auto binsOf = [&](__m512 v) {
        __mmask16 out = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, vmean)), vcut, _CMP_GT_OQ);
        // f >= 0 for finite v, as v >= lo: only the upper clamp is needed.
        const __m512 f = _mm512_mul_ps(_mm512_sub_ps(v, vlo), vinv);
        __m512i idx = _mm512_cvttps_epi32(_mm512_min_ps(f, vtop));
        if constexpr (!Finite) { // NaN/Inf go to bin 0, taken out again below
            const __mmask16 finite = _mm512_cmp_ps_mask(_mm512_abs_ps(v), vmax, _CMP_LE_OQ);
            out &= finite;
            idx = _mm512_maskz_mov_epi32(finite, idx);
            nonFinite = _mm512_mask_sub_epi32(nonFinite, static_cast<__mmask16>(~finite), nonFinite, minusOne);
        }
        outliers = _mm512_mask_sub_epi32(outliers, out, outliers, minusOne);
        return idx;
    };
    // Values per batch of indices, then per batch of increments: small enough that
    // the out-of-order window spans batches and the loads keep flowing.
    constexpr size_t kBlock = 256;
    alignas(64) uint32_t pairIdx[kBlock / 2];
    const size_t nv = n & ~size_t{31};
    for (size_t b = 0; b < nv; b += kBlock) {
        const size_t m = std::min(kBlock, nv - b);
        const float* v = x + b;
        for (size_t i = 0; i < m; i += 32) {
            prefetchAhead(v + i);
            const __m512i first = binsOf(_mm512_loadu_ps(v + i));
            const __m512i second = binsOf(_mm512_loadu_ps(v + i + 16));
            _mm512_store_si512(pairIdx + i / 2, _mm512_add_epi32(_mm512_slli_epi32(first, 7), second));
        }
#pragma GCC unroll 16
        for (size_t k = 0; k < m / 2; ++k)
            ++table[pairIdx[k]];
    }
    // Row and column sums back into the histogram, 16 bits wide (no sum can
    // exceed a chunk's pairs), leaving the table zero.
    __m512i cols[4] = {};
    const __m512i zeroI = _mm512_setzero_si512(), low16 = _mm512_set1_epi32(0xFFFF);
    for (int a = 0; a < bins; ++a) {
        __m512i* row = reinterpret_cast<__m512i*>(table + static_cast<size_t>(a) * kPairBins);
        __m512i sum = zeroI;
        for (int j = 0; j < 4; ++j) {
            const __m512i r = _mm512_loadu_si512(row + j);
            _mm512_storeu_si512(row + j, zeroI);
            cols[j] = _mm512_add_epi16(cols[j], r);
            sum = _mm512_add_epi16(sum, r);
        }
        const __m512i wide = _mm512_add_epi32(_mm512_and_si512(sum, low16), _mm512_srli_epi32(sum, 16));
        acc.counts[static_cast<size_t>(a)] += _mm512_reduce_add_epi32(wide);
    }
    alignas(64) uint16_t colSums[kPairBins];
    for (int j = 0; j < 4; ++j)
        _mm512_store_si512(colSums + 32 * j, cols[j]);
    for (int b = 0; b < bins; ++b)
        acc.counts[static_cast<size_t>(b)] += colSums[b];
    acc.counts[0] -= _mm512_reduce_add_epi32(nonFinite);
    int64_t outlierCount = _mm512_reduce_add_epi32(outliers);
    // The last < 32 values one at a time.
    for (size_t i = nv; i < n; ++i) {
        if (!(std::fabs(x[i]) <= std::numeric_limits<float>::max()))
            continue;
        outlierCount += std::fabs(x[i] - mean) > cut;
        const float f = (x[i] - lo) * invWidth;
        ++acc.counts[static_cast<size_t>(std::min(std::max(f, 0.0f), static_cast<float>(bins - 1)))];
    }
    acc.outliers += outlierCount;
}
#endif

} // namespace

#if defined(LL_STATS_AVX512)
// AVX-512: all pass-1 work in one read of each value, two independent sets of
// accumulators (32 values a step) so that no add chain limits the rate.
void firstPassChunk(const float* x, size_t n, float pivot, FirstPass& acc)
{
    FlushDenormals ftz;
    const __m512 p = _mm512_set1_ps(pivot);
    const __m512 zero = _mm512_setzero_ps();
    for (size_t b = 0; b < n; b += kFold) {
        const size_t m = std::min(kFold, n - b);
        const size_t mv = m & ~size_t{31};
        const float* v = x + b;
        if (mv == 0) {
            firstPassCareful(v, m, pivot, acc);
            continue;
        }
        __m512 s1[2] = {zero, zero}, s2[2] = {zero, zero}, s3[2] = {zero, zero}, s4[2] = {zero, zero};
        __m512 lo[2], hi[2];
        lo[0] = lo[1] = hi[0] = hi[1] = _mm512_loadu_ps(v);
        __m512i zeros = _mm512_setzero_si512();
        for (size_t i = 0; i < mv; i += 32) {
            prefetchAhead(v + i);
            for (int u = 0; u < 2; ++u) {
                const __m512 a = _mm512_loadu_ps(v + i + 16 * u);
                const __m512 d = _mm512_sub_ps(a, p);
                const __m512 d2 = _mm512_mul_ps(d, d);
                s1[u] = _mm512_add_ps(s1[u], d);
                s2[u] = _mm512_add_ps(s2[u], d2);
                s3[u] = _mm512_fmadd_ps(d2, d, s3[u]);
                s4[u] = _mm512_fmadd_ps(d2, d2, s4[u]);
                lo[u] = _mm512_min_ps(lo[u], a);
                hi[u] = _mm512_max_ps(hi[u], a);
                // A lane of the mask counts as -1: subtracting it counts zeros.
                zeros = _mm512_sub_epi32(zeros, _mm512_movm_epi32(_mm512_cmp_ps_mask(a, zero, _CMP_EQ_OQ)));
            }
        }
        const __m512 t1 = _mm512_add_ps(s1[0], s1[1]), t2 = _mm512_add_ps(s2[0], s2[1]);
        const __m512 t3 = _mm512_add_ps(s3[0], s3[1]), t4 = _mm512_add_ps(s4[0], s4[1]);
        // A NaN/Inf value (or an overflow) makes some lane of the sums non-finite: x - x is then NaN.
        const __m512 all = _mm512_add_ps(_mm512_add_ps(t1, t2), _mm512_add_ps(t3, t4));
        if (_mm512_cmp_ps_mask(_mm512_sub_ps(all, all), zero, _CMP_EQ_OQ) != 0xFFFF) {
            firstPassCareful(v, m, pivot, acc);
            continue;
        }
        auto fold = [](__m512 t) { // lanes summed in double
            return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(t)),
                                                      _mm512_cvtps_pd(_mm512_extractf32x8_ps(t, 1))));
        };
        acc.s1 += fold(t1); acc.s2 += fold(t2); acc.s3 += fold(t3); acc.s4 += fold(t4);
        acc.min = std::min(acc.min, _mm512_reduce_min_ps(_mm512_min_ps(lo[0], lo[1])));
        acc.max = std::max(acc.max, _mm512_reduce_max_ps(_mm512_max_ps(hi[0], hi[1])));
        acc.zeros += _mm512_reduce_add_epi32(zeros);
        firstPassCareful(v + mv, m - mv, pivot, acc); // the last < 32 values
    }
}
#else
void firstPassChunk(const float* x, size_t n, float pivot, FirstPass& acc)
{
    FlushDenormals ftz;
    constexpr int L = 16; // explicit lanes: GCC turns these into vminps/vmaxps, an omp min/max reduction it does not
    for (size_t b = 0; b < n; b += kFold) {
        const size_t m = std::min(kFold, n - b);
        const float* v = x + b;
        float s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        // Fast path: plain arithmetic; a NaN/Inf value (or overflow) makes the sums non-finite.
#pragma omp simd reduction(+ : s1, s2, s3, s4)
        for (size_t i = 0; i < m; ++i) {
            const float d = v[i] - pivot;
            const float d2 = d * d;
            s1 += d; s2 += d2; s3 += d2 * d; s4 += d2 * d2;
        }
        if (!std::isfinite(s1 + s2 + s3 + s4)) {
            firstPassCareful(v, m, pivot, acc);
            continue;
        }
        float lo[L], hi[L], zeros[L] = {};
        std::fill(lo, lo + L, v[0]);
        std::fill(hi, hi + L, v[0]);
        size_t i = 0;
        for (; i + L <= m; i += L)
            for (int l = 0; l < L; ++l) {
                const float a = v[i + l];
                lo[l] = a < lo[l] ? a : lo[l];
                hi[l] = a > hi[l] ? a : hi[l];
                zeros[l] += a == 0.0f ? 1.0f : 0.0f;
            }
        for (; i < m; ++i) {
            lo[0] = std::min(lo[0], v[i]);
            hi[0] = std::max(hi[0], v[i]);
            zeros[0] += v[i] == 0.0f ? 1.0f : 0.0f;
        }
        for (int l = 0; l < L; ++l) {
            acc.min = std::min(acc.min, lo[l]);
            acc.max = std::max(acc.max, hi[l]);
            acc.zeros += static_cast<int64_t>(zeros[l]);
        }
        acc.s1 += s1; acc.s2 += s2; acc.s3 += s3; acc.s4 += s4;
    }
}
#endif

// With AVX-512, up to 128 bins and `pairs`: the pair kernel. Otherwise bin
// indices are computed a block at a time (vectorised), then counted into four
// interleaved sub-histograms so that repeated bins do not serialise.
void secondPassChunk(const float* x, size_t n, float mean, float lo, float invWidth, float cut, bool allFinite,
                     bool pairs, SecondPass& acc)
{
    const int bins = static_cast<int>(acc.counts.size());
#if defined(LL_STATS_AVX512)
    if (pairs && bins <= kPairBins) {
        if (allFinite)
            secondPassPairs<true>(x, n, mean, lo, invWidth, cut, acc);
        else
            secondPassPairs<false>(x, n, mean, lo, invWidth, cut, acc);
        return;
    }
#else
    (void)pairs;
#endif
    constexpr size_t kBlock = 256;
    int32_t idx[kBlock];
    std::vector<uint32_t> sub(static_cast<size_t>(bins) * 4, 0);
    int64_t outliers = 0;
    for (size_t b = 0; b < n; b += kBlock) {
        const size_t m = std::min(kBlock, n - b);
        const float* v = x + b;
        int32_t out = 0;
#pragma omp simd reduction(+ : out)
        for (size_t i = 0; i < m; ++i) {
            out += std::fabs(v[i] - mean) > cut;
            const float f = (v[i] - lo) * invWidth;
            // Clamp in float first: converting NaN/huge values to int is undefined.
            const float c = std::min(std::max(f, 0.0f), static_cast<float>(bins - 1));
            idx[i] = static_cast<int32_t>(c);
        }
        if (!allFinite) {
            for (size_t i = 0; i < m; ++i)
                if (!(std::fabs(v[i]) <= std::numeric_limits<float>::max()))
                    idx[i] = -1, out -= std::fabs(v[i] - mean) > cut;
        }
        outliers += out;
        size_t i = 0;
        if (allFinite) {
            for (; i + 4 <= m; i += 4) {
                ++sub[static_cast<size_t>(idx[i]) * 4];
                ++sub[static_cast<size_t>(idx[i + 1]) * 4 + 1];
                ++sub[static_cast<size_t>(idx[i + 2]) * 4 + 2];
                ++sub[static_cast<size_t>(idx[i + 3]) * 4 + 3];
            }
        }
        for (; i < m; ++i)
            if (idx[i] >= 0)
                ++sub[static_cast<size_t>(idx[i]) * 4];
    }
    for (int k = 0; k < bins; ++k) {
        const size_t o = static_cast<size_t>(k) * 4;
        acc.counts[static_cast<size_t>(k)] += int64_t{sub[o]} + sub[o + 1] + sub[o + 2] + sub[o + 3];
    }
    acc.outliers += outliers;
}

} // namespace ll::stats_detail
