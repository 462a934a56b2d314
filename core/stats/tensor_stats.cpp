#include "stats/tensor_stats.h"

#include "stats/stats_passes.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

namespace ll {

namespace {

using stats_detail::FirstPass;
using stats_detail::SecondPass;
using stats_detail::kChunk;
using stats_detail::firstPassChunk;
using stats_detail::secondPassChunk;

// A mean of up to 4096 evenly spaced finite values: the pivot of pass 1.
float samplePivot(std::span<const float> values)
{
    const size_t step = std::max<size_t>(1, values.size() / 4096);
    double sum = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < values.size(); i += step)
        if (std::fabs(values[i]) <= std::numeric_limits<float>::max()) {
            sum += values[i];
            ++count;
        }
    return count ? static_cast<float>(sum / static_cast<double>(count)) : 0.0f;
}

// Runs `work(first, count, slot)` over chunks on `threads` threads, in order of chunks per thread.
template <typename Work>
void parallelChunks(size_t n, int threads, Progress* progress, double base, double span, Work&& work)
{
    const size_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<std::thread> pool;
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
    std::atomic<bool> stop{false};
    auto run = [&](int slot) {
        for (;;) {
            if (stop.load())
                return;
            const size_t c = next.fetch_add(1);
            if (c >= chunks)
                return;
            const size_t first = c * kChunk;
            work(first, std::min(kChunk, n - first), slot);
            const size_t d = done.fetch_add(1) + 1;
            if (slot == 0 && progress) {
                if (progress->cancelled())
                    stop.store(true);
                progress->report(base + span * static_cast<double>(d) / static_cast<double>(chunks), "statistics");
            }
        }
    };
    for (int t = 1; t < threads; ++t)
        pool.emplace_back(run, t);
    run(0);
    for (auto& th : pool)
        th.join();
    throwIfCancelled(progress);
}

int threadCount(const StatsOptions& o, size_t n)
{
    int t = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const size_t chunks = (n + kChunk - 1) / kChunk;
    return static_cast<int>(std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(t), chunks)));
}

} // namespace

bool TensorStats::binHasOutliers(size_t i) const
{
    if (i >= histogram.counts.size() || histogram.counts[i] == 0)
        return false;
    const double cut = outlierSigma * std;
    const double left = histogram.lo + static_cast<double>(i) * histogram.binWidth();
    const double right = left + histogram.binWidth();
    return right > mean + cut || left < mean - cut;
}

TensorStats computeStats(std::span<const float> values, const StatsOptions& options, Progress* progress)
{
    if (options.bins < 1 || options.bins > (1 << 20))
        fail(ErrorCode::InvalidArgument, "", "histogram bins must be between 1 and 1048576");
    TensorStats st;
    st.outlierSigma = options.outlierSigma;
    const size_t n = values.size();
    const int threads = threadCount(options, n);
    const float* x = values.data();

    const float pivot = samplePivot(values);
    std::vector<FirstPass> first(static_cast<size_t>(threads));
    parallelChunks(n, threads, progress, 0.0, 0.5, [&](size_t b, size_t c, int slot) {
        firstPassChunk(x + b, c, pivot, first[static_cast<size_t>(slot)]);
    });
    FirstPass f;
    for (const auto& p : first)
        f.merge(p);

    st.nans = f.nonFinite;
    st.count = static_cast<int64_t>(n) - f.nonFinite;
    st.zeros = f.zeros;
    st.histogram.counts.assign(static_cast<size_t>(options.bins), 0);
    if (st.count == 0)
        return st;
    st.min = f.min;
    st.max = f.max;
    // Central moments from the pivoted power sums (d = x - pivot, delta = mean - pivot).
    const double cnt = static_cast<double>(st.count);
    const double e1 = f.s1 / cnt, e2 = f.s2 / cnt, e3 = f.s3 / cnt, e4 = f.s4 / cnt;
    st.mean = pivot + e1;
    const double var = std::max(0.0, e2 - e1 * e1);
    const double m4 = e4 - 4 * e1 * e3 + 6 * e1 * e1 * e2 - 3 * e1 * e1 * e1 * e1;
    st.std = std::sqrt(var);
    st.kurtosis = var > 0 ? std::max(0.0, m4) / (var * var) : 0.0;
    st.absMax = std::max(std::fabs(st.min), std::fabs(st.max));
    st.absMaxOverStd = st.std > 0 ? st.absMax / st.std : 0.0;

    // Degenerate range: widen so that every value falls in a bin.
    double lo = st.min, hi = st.max;
    if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
    st.histogram.lo = lo;
    st.histogram.hi = hi;
    const float invWidth = static_cast<float>(options.bins / (hi - lo));
    const float cut = static_cast<float>(options.outlierSigma * st.std);

    std::vector<SecondPass> second(static_cast<size_t>(threads));
    for (auto& s : second)
        s.counts.assign(static_cast<size_t>(options.bins), 0);
    // Pairs of equal values all hit one counter, and increments of one counter
    // serialise: a mostly-zero (pruned) tensor keeps the 4-way sub-histograms.
    const bool pairs = f.zeros * 4 < st.count;
    parallelChunks(n, threads, progress, 0.5, 0.5, [&](size_t b, size_t c, int slot) {
        secondPassChunk(x + b, c, static_cast<float>(st.mean), static_cast<float>(lo), invWidth, cut, f.nonFinite == 0,
                        pairs, second[static_cast<size_t>(slot)]);
    });
    SecondPass s;
    s.counts.assign(static_cast<size_t>(options.bins), 0);
    for (const auto& p : second)
        s.merge(p);
    st.outliers = s.outliers;
    st.histogram.counts = std::move(s.counts);
    return st;
}

Heatmap absHeatmap(std::span<const float> values, int64_t rows, int64_t cols, int maxRows, int maxCols)
{
    if (rows <= 0 || cols <= 0 || static_cast<int64_t>(values.size()) != rows * cols)
        fail(ErrorCode::InvalidArgument, "", "heatmap: shape does not match the data");
    Heatmap h;
    h.rows = static_cast<int>(std::min<int64_t>(rows, std::max(1, maxRows)));
    h.cols = static_cast<int>(std::min<int64_t>(cols, std::max(1, maxCols)));
    h.cells.assign(static_cast<size_t>(h.rows) * static_cast<size_t>(h.cols), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
        const size_t hr = static_cast<size_t>(r * h.rows / rows);
        const float* row = values.data() + r * cols;
        float* out = h.cells.data() + hr * static_cast<size_t>(h.cols);
        for (int64_t c = 0; c < cols; ++c) {
            const size_t hc = static_cast<size_t>(c * h.cols / cols);
            const float a = std::fabs(row[c]);
            if (a > out[hc])
                out[hc] = a;
        }
    }
    return h;
}

} // namespace ll
