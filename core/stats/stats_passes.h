#pragma once
// The two passes of computeStats over one chunk of values, vectorised
// (AVX-512 where the build targets it). Internal to core/stats.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace ll::stats_detail {

constexpr size_t kChunk = size_t{1} << 16; // values per work item; small enough to cancel promptly

// Pass 1: power sums of (x - pivot) up to the fourth, extremes, zeros. The
// pivot (a sample mean) keeps the raw-moment formulas free of cancellation.
struct FirstPass {
    double s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0;
    float min = std::numeric_limits<float>::infinity();
    float max = -std::numeric_limits<float>::infinity();
    int64_t zeros = 0, nonFinite = 0;

    void merge(const FirstPass& o)
    {
        s1 += o.s1; s2 += o.s2; s3 += o.s3; s4 += o.s4;
        min = std::min(min, o.min); max = std::max(max, o.max);
        zeros += o.zeros; nonFinite += o.nonFinite;
    }
};

// Pass 2: outliers and the histogram (its range needs pass 1's extremes).
struct SecondPass {
    int64_t outliers = 0;
    std::vector<int64_t> counts;
    std::vector<uint16_t> pairs; // scratch of the pair-counting path, zero between chunks

    void merge(const SecondPass& o)
    {
        outliers += o.outliers;
        for (size_t i = 0; i < counts.size(); ++i)
            counts[i] += o.counts[i];
    }
};

// Pass 1 over x[0, n), added to acc.
void firstPassChunk(const float* x, size_t n, float pivot, FirstPass& acc);

// Pass 2 over x[0, n), added to acc (acc.counts sized to the bins). The bin of
// v is (v - lo) * invWidth in float, clamped to [0, bins - 1]; an outlier has
// |v - mean| > cut. allFinite: pass 1 saw no NaN/Inf. pairs: the pair-counting
// path may be used (see computeStats).
void secondPassChunk(const float* x, size_t n, float mean, float lo, float invWidth, float cut, bool allFinite,
                     bool pairs, SecondPass& acc);

} // namespace ll::stats_detail
