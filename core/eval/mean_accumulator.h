#pragma once
// Running mean and standard error of per-token values, summed in a fixed
// order so that results do not depend on the thread count. Perplexity,
// model comparison and the sensitivity sweep share it, so that a sweep's row
// is bit-identical to evaluatePerplexity on the same windows.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace ll {

struct MeanAccumulator {
    double sum = 0, sumSq = 0;
    int64_t n = 0;

    void add(double x)
    {
        sum += x;
        sumSq += x * x;
        ++n;
    }
    double mean() const { return n ? sum / static_cast<double>(n) : 0.0; }
    double stderrOfMean() const
    {
        if (n < 2)
            return 0.0;
        const double m = mean();
        const double var = std::max(0.0, (sumSq - static_cast<double>(n) * m * m) / static_cast<double>(n - 1));
        return std::sqrt(var / static_cast<double>(n));
    }
};

} // namespace ll
