// Tensor statistics: computeStats against a plain one-value-at-a-time
// reference, over the paths its kernels take (several chunks and a ragged
// tail, NaN/Inf inside vector blocks, fewer values than one vector, one bin,
// many bins, equal values, mostly zeros, huge values), thread counts, and
// cancellation.
#include "test_support.h"

#include "stats/tensor_stats.h"
#include "util/error.h"
#include "util/progress.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

using namespace ll;

namespace {

// Moments come from float sums over blocks of a few thousand values, folded
// into doubles: relative agreement asked of them against a double reference.
// The portable path (builds without AVX-512, e.g. the sanitizer build) sums
// 4096-value blocks in 16 float lanes: 2.8e-5 on std in mostlyZeros.
constexpr double kMomentRelTol = 1e-4;
// Kurtosis is m4 / m2²: its relative error is up to rel(m4) + 2 rel(m2), about four times the moments'.
constexpr double kKurtosisRelTol = 4 * kMomentRelTol;

struct Reference {
    int64_t count = 0, nans = 0, zeros = 0;
    float min = 0, max = 0;
    double mean = 0, std = 0, kurtosis = 0;
};

Reference reference(const std::vector<float>& v)
{
    Reference r;
    r.min = std::numeric_limits<float>::infinity();
    r.max = -r.min;
    double sum = 0;
    for (float x : v) {
        if (!std::isfinite(x)) {
            ++r.nans;
            continue;
        }
        ++r.count;
        sum += x;
        r.min = std::min(r.min, x);
        r.max = std::max(r.max, x);
        r.zeros += x == 0.0f;
    }
    if (r.count == 0)
        return r;
    r.mean = sum / static_cast<double>(r.count);
    double m2 = 0, m4 = 0;
    for (float x : v)
        if (std::isfinite(x)) {
            const double d = x - r.mean;
            m2 += d * d;
            m4 += d * d * d * d;
        }
    m2 /= static_cast<double>(r.count);
    m4 /= static_cast<double>(r.count);
    r.std = std::sqrt(m2);
    r.kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0.0;
    return r;
}

// The histogram and outlier definitions, one value at a time, from the
// range, mean and std that computeStats reports.
void checkCounts(const std::vector<float>& v, const TensorStats& st, int bins)
{
    double lo = st.min, hi = st.max;
    if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
    QCOMPARE(st.histogram.lo, lo);
    QCOMPARE(st.histogram.hi, hi);
    const float loF = static_cast<float>(lo);
    const float invWidth = static_cast<float>(bins / (hi - lo));
    const float mean = static_cast<float>(st.mean);
    const float cut = static_cast<float>(st.outlierSigma * st.std);
    std::vector<int64_t> counts(static_cast<size_t>(bins), 0);
    int64_t outliers = 0;
    for (float x : v) {
        if (!std::isfinite(x))
            continue;
        const float f = (x - loF) * invWidth;
        ++counts[static_cast<size_t>(std::clamp(f, 0.0f, static_cast<float>(bins - 1)))];
        outliers += std::fabs(x - mean) > cut;
    }
    QCOMPARE(st.histogram.counts, counts);
    QCOMPARE(st.outliers, outliers);
}

void checkStats(const std::vector<float>& v, int bins, int threads)
{
    StatsOptions o;
    o.bins = bins;
    o.threads = threads;
    const TensorStats st = computeStats(v, o);
    const Reference r = reference(v);
    QCOMPARE(st.count, r.count);
    QCOMPARE(st.nans, r.nans);
    QCOMPARE(st.zeros, r.zeros);
    QCOMPARE(static_cast<int64_t>(st.histogram.counts.size()), static_cast<int64_t>(bins));
    if (r.count == 0)
        return;
    QCOMPARE(st.min, static_cast<double>(r.min));
    QCOMPARE(st.max, static_cast<double>(r.max));
    const double scale = std::max(std::fabs(r.mean), r.std);
    QVERIFY2(std::fabs(st.mean - r.mean) <= kMomentRelTol * scale + 1e-30, qPrintable(QString::number(st.mean)));
    QVERIFY2(std::fabs(st.std - r.std) <= kMomentRelTol * r.std + 1e-30, qPrintable(QString::number(st.std)));
    QVERIFY2(std::fabs(st.kurtosis - r.kurtosis) <= kKurtosisRelTol * r.kurtosis + 1e-12,
             qPrintable(QStringLiteral("%1, reference %2").arg(st.kurtosis, 0, 'g', 10).arg(r.kurtosis, 0, 'g', 10)));
    checkCounts(v, st, bins);
}

// Heavy-ish tails like real weights: a sum of uniforms cubed, plus a few large values.
std::vector<float> weights(size_t n, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) {
        const float a = u(rng);
        x = 0.02f * a * a * a + 0.01f * a;
    }
    for (size_t i = 0; i < n; i += 9973)
        v[i] *= 40.0f;
    return v;
}

} // namespace

class TestStats : public QObject {
    Q_OBJECT

private slots:
    void manyChunksAndTail_data()
    {
        QTest::addColumn<int>("bins");
        QTest::addColumn<int>("threads");
        for (int bins : {1, 7, 64, 128, 129, 1000})
            for (int threads : {1, 2})
                QTest::addRow("bins=%d threads=%d", bins, threads) << bins << threads;
    }
    void manyChunksAndTail()
    {
        QFETCH(int, bins);
        QFETCH(int, threads);
        // Three full chunks of 65536 values and a tail that is not a multiple of a vector.
        checkStats(weights(3 * 65536 + 77, 1), bins, threads);
    }

    void nonFiniteInsideBlocks_data()
    {
        QTest::addColumn<int>("bins");
        QTest::newRow("pairs") << 128;
        QTest::newRow("sub-histograms") << 300;
    }
    void nonFiniteInsideBlocks()
    {
        QFETCH(int, bins);
        std::vector<float> v = weights(65536 + 1000, 2);
        const float inf = std::numeric_limits<float>::infinity();
        const float nan = std::numeric_limits<float>::quiet_NaN();
        for (size_t i : {size_t{0}, size_t{17}, size_t{4095}, size_t{4096}, size_t{40000}, v.size() - 3})
            v[i] = nan;
        v[100] = inf;
        v[5000] = -inf;
        v[v.size() - 1] = inf;
        checkStats(v, bins, 1);
        checkStats(v, bins, 2);
    }

    void smallerThanOneChunk()
    {
        for (size_t n : {size_t{1}, size_t{5}, size_t{31}, size_t{32}, size_t{33}, size_t{1000}, size_t{4097}})
            checkStats(weights(n, 3), 128, 0);
        checkStats({}, 128, 0);
        checkStats({std::numeric_limits<float>::quiet_NaN(), 1.0f / 0.0f}, 16, 0);
    }

    void equalValues()
    {
        checkStats(std::vector<float>(70000, 0.25f), 128, 2); // range widened to [-0.25, 0.75]
        checkStats(std::vector<float>(70000, 0.0f), 128, 2);
        checkStats(std::vector<float>(100, -3.0f), 1, 1);
    }

    void mostlyZeros()
    {
        std::vector<float> v = weights(2 * 65536 + 5, 4);
        for (size_t i = 0; i < v.size(); ++i)
            if (i % 10 != 0)
                v[i] = (i % 3 == 0) ? -0.0f : 0.0f;
        checkStats(v, 128, 2);
    }

    void hugeValuesOverflowFloatSums()
    {
        std::vector<float> v = weights(20000, 5);
        v[123] = 3e19f;  // its fourth power overflows a float sum
        v[9000] = -2e30f;
        checkStats(v, 128, 1);
    }

    void cancelledBetweenChunks()
    {
        CancelFlag cancel;
        cancel.cancel();
        const std::vector<float> v = weights(4 * 65536, 6);
        QVERIFY_THROWS_EXCEPTION(Error, computeStats(v, {}, &cancel));
    }

    void reportsProgress()
    {
        struct Recorder : Progress {
            std::vector<double> seen;
            void report(double f, std::string_view) override { seen.push_back(f); }
        } rec;
        StatsOptions o;
        o.threads = 1;
        const std::vector<float> v = weights(4 * 65536, 7);
        computeStats(v, o, &rec);
        QVERIFY(rec.seen.size() >= 8);
        QVERIFY(std::is_sorted(rec.seen.begin(), rec.seen.end()));
        QCOMPARE(rec.seen.back(), 1.0);
    }
};

QTEST_APPLESS_MAIN(TestStats)
#include "test_stats.moc"
