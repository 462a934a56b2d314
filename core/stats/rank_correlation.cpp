#include "stats/rank_correlation.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace ll {

namespace {

// Ranks 1..n, ties sharing their mean rank.
std::vector<double> ranks(std::span<const double> v)
{
    std::vector<size_t> order(v.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]])
            ++j;
        const double mean = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
        for (size_t k = i; k <= j; ++k)
            r[order[k]] = mean;
        i = j + 1;
    }
    return r;
}

// The two-sided normal quantile for a confidence level (0.90, 0.95, 0.99 and between, by bisection on erfc).
double normalQuantile(double confidence)
{
    const double tail = (1.0 - confidence) / 2.0;
    double lo = 0, hi = 10;
    for (int i = 0; i < 100; ++i) {
        const double mid = (lo + hi) / 2;
        (0.5 * std::erfc(mid / std::sqrt(2.0)) > tail ? lo : hi) = mid;
    }
    return (lo + hi) / 2;
}

RankCorrelation withInterval(double r, int n, double se, double confidence)
{
    RankCorrelation c;
    c.value = r;
    c.n = n;
    if (!std::isfinite(se) || se <= 0)
        return c;
    const double z = std::atanh(std::clamp(r, -0.999999, 0.999999));
    const double q = normalQuantile(confidence);
    c.low = std::tanh(z - q * se);
    c.high = std::tanh(z + q * se);
    return c;
}

void check(std::span<const double> x, std::span<const double> y)
{
    if (x.size() != y.size() || x.size() < 2)
        fail(ErrorCode::InvalidArgument, "", "a rank correlation needs two series of equal length, at least 2");
}

} // namespace

RankCorrelation spearman(std::span<const double> x, std::span<const double> y, double confidence)
{
    check(x, y);
    const std::vector<double> rx = ranks(x), ry = ranks(y);
    const double n = static_cast<double>(x.size());
    const double mean = (n + 1) / 2;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < rx.size(); ++i) {
        sxy += (rx[i] - mean) * (ry[i] - mean);
        sxx += (rx[i] - mean) * (rx[i] - mean);
        syy += (ry[i] - mean) * (ry[i] - mean);
    }
    const int count = static_cast<int>(x.size());
    if (sxx == 0 || syy == 0)
        return RankCorrelation{0, -1, 1, count};
    return withInterval(sxy / std::sqrt(sxx * syy), count, count > 3 ? 1.06 / std::sqrt(n - 3) : 0, confidence);
}

RankCorrelation kendallTau(std::span<const double> x, std::span<const double> y, double confidence)
{
    check(x, y);
    double concordant = 0, discordant = 0, tiesX = 0, tiesY = 0;
    for (size_t i = 0; i < x.size(); ++i)
        for (size_t j = i + 1; j < x.size(); ++j) {
            const double dx = x[i] - x[j], dy = y[i] - y[j];
            if (dx == 0 && dy == 0)
                ++tiesX, ++tiesY;
            else if (dx == 0)
                ++tiesX;
            else if (dy == 0)
                ++tiesY;
            else if ((dx > 0) == (dy > 0))
                ++concordant;
            else
                ++discordant;
        }
    const double n = static_cast<double>(x.size());
    const double n0 = n * (n - 1) / 2;
    const int count = static_cast<int>(x.size());
    const double denominator = std::sqrt((n0 - tiesX) * (n0 - tiesY));
    if (denominator == 0)
        return RankCorrelation{0, -1, 1, count};
    return withInterval((concordant - discordant) / denominator, count, count > 4 ? 0.437 / std::sqrt(n - 4) : 0, confidence);
}

} // namespace ll
