// layerlab-bench prune: the per-layer compression kernels at LLaMA-7B shapes.
//
//   layerlab-bench prune [--quick] [--threads 2] [--samples 4096] [--rank 512]
//
//   Wanda and SparseGPT (50 % unstructured, block size 128, damping 0.01) on
//   random 4096 x 4096 and 11008 x 4096 weights, given the Gram matrix
//   G = X^T X of a random correlated X (samples x 4096: a shared low-rank
//   part, heavy-tailed channel scales); generating G is not timed.
//   Randomized SVD (rank 512, oversampling 10, 2 power iterations) against a
//   full BDCSVD of a 4096 x 4096 matrix with a known decaying spectrum
//   (W = U diag(s) V^T, U and V randomly signed and permuted Walsh-Hadamard
//   bases, s_i = 1 / (1 + i / 64)), with the relative Frobenius error of each
//   rank-512 approximation and the optimum sqrt(sum_{i>=k} s_i^2 / sum s_i^2).
//   --quick: 1024 x 1024 and 2752 x 1024 weights, 1024 samples, rank 128, a 1024-wide SVD.
//
// GFLOP/s use nominal operation counts (stated with each figure); Wanda is
// memory-bound and reported in weights per second instead.
#include "bench.h"

#include "util/threads.h"
#include "lowrank/randomized_svd.h"
#include "lowrank/svd.h"
#include "prune/sparsegpt.h"
#include "prune/wanda.h"

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace ll::bench {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// splitmix64 -> uniform / Gaussian (Box-Muller).
struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t bits()
    {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return (static_cast<double>(bits() >> 11) + 0.5) * 0x1.0p-53; }
    float gauss()
    {
        const double u = uniform(), v = uniform();
        return static_cast<float>(std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v));
    }
    MatrixRM gaussian(int64_t rows, int64_t cols, float std)
    {
        MatrixRM m(rows, cols);
        for (int64_t i = 0; i < m.size(); ++i)
            m.data()[i] = std * gauss();
        return m;
    }
};

// X (samples, d): independent noise with heavy-tailed channel scales plus a
// shared rank-32 part (correlated channels), as LLM activations look. G = X^T X.
Eigen::MatrixXf correlatedGram(int64_t samples, int64_t d)
{
    Rng r(7);
    MatrixRM x = r.gaussian(samples, d, 1.0f);
    Eigen::VectorXf scale(d);
    for (int64_t j = 0; j < d; ++j)
        scale[j] = std::exp(0.75f * r.gauss()); // log-normal channel magnitudes
    for (int64_t j = 0; j < 8 && j < d; ++j)
        scale[j * (d / 8)] *= 20.0f;            // a few outlier channels
    x = x * scale.asDiagonal();
    const MatrixRM f = r.gaussian(samples, 32, 1.0f), l = r.gaussian(32, d, 1.0f);
    x.noalias() += f * l;
    Eigen::MatrixXf g = Eigen::MatrixXf::Zero(d, d);
    g.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
    g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
    return g;
}

double relativeError(const MatrixRM& W, const MatrixRM& approx)
{
    return static_cast<double>((W - approx).norm()) / static_cast<double>(W.norm());
}

// A (n, n) Walsh-Hadamard matrix / sqrt(n) with random column signs and a random column order: orthogonal.
MatrixRM randomHadamard(int64_t n, Rng& r)
{
    std::vector<int64_t> perm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        perm[static_cast<size_t>(i)] = i;
    for (int64_t i = n - 1; i > 0; --i)
        std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(r.bits() % static_cast<uint64_t>(i + 1))]);
    MatrixRM h(n, n);
    const float s = 1.0f / std::sqrt(static_cast<float>(n));
    for (int64_t j = 0; j < n; ++j) {
        const int64_t c = perm[static_cast<size_t>(j)];
        const float sign = (r.bits() & 1) ? s : -s;
        for (int64_t i = 0; i < n; ++i)
            h(i, j) = (__builtin_popcountll(static_cast<unsigned long long>(i & c)) & 1) ? -sign : sign;
    }
    return h;
}

void benchPruneShape(int64_t rows, int64_t cols, const Eigen::MatrixXf& gram, const Eigen::VectorXf& inputNorm)
{
    Rng r(static_cast<uint64_t>(rows * 31 + cols));
    const MatrixRM W = r.gaussian(rows, cols, 0.02f);
    const double weights = static_cast<double>(rows * cols);

    // Wanda: scores |W| * ||X_j||, per-row 50 % cut, mask applied.
    auto t0 = Clock::now();
    const SparsityMask wm = wandaMask(W, inputNorm, 0.5);
    MatrixRM wandaW = W;
    wm.applyTo(wandaW);
    const double wandaSeconds = secondsSince(t0);
    const double wandaKept = static_cast<double>((wandaW.array() != 0.0f).count()) / weights;

    // SparseGPT: 50 %, block size 128, damping 0.01 (H = G; the damping is added inside).
    SparseGptOptions o;
    o.sparsity = 0.5;
    o.blockSize = 128;
    o.percDamp = 0.01;
    t0 = Clock::now();
    const SparseGptResult sg = sparseGpt(W, gram, o);
    const double sgSeconds = secondsSince(t0);
    const double sgKept = static_cast<double>((sg.weights.array() != 0.0f).count()) / weights;
    // Nominal count: the OBS updates rows * cols^2 (one multiply-add per weight and later
    // column, half the pairs), the inverse Hessian and its Cholesky factor (4/3) cols^3.
    const double c = static_cast<double>(cols);
    const double sgFlops = static_cast<double>(rows) * c * c + (4.0 / 3.0) * c * c * c;

    // Output error on the calibration inputs: tr(D G D^T) / tr(W G W^T), D = W - W^,
    // on the first 512 rows (the full product would cost more than the pruning).
    const int64_t er = std::min<int64_t>(rows, 512);
    const auto outputError = [&](const MatrixRM& pruned) {
        const MatrixRM w = W.topRows(er), d = w - pruned.topRows(er);
        const double num = static_cast<double>(((d * gram).array() * d.array()).sum());
        const double den = static_cast<double>(((w * gram).array() * w.array()).sum());
        return std::sqrt(num / den);
    };
    std::printf("  %5lld x %-5lld  wanda     %8.3f s  %7.1f Mweights/s  kept %.3f  output err %.4f\n",
                static_cast<long long>(rows), static_cast<long long>(cols), wandaSeconds, weights / wandaSeconds * 1e-6,
                wandaKept, outputError(wandaW));
    std::printf("  %5lld x %-5lld  sparsegpt %8.3f s  %7.1f GFLOP/s (nominal rows*cols^2 + 4/3 cols^3 = %.0f GFLOP)  kept %.3f  "
                "output err %.4f\n",
                static_cast<long long>(rows), static_cast<long long>(cols), sgSeconds, sgFlops / sgSeconds * 1e-9,
                sgFlops * 1e-9, sgKept, outputError(sg.weights));
    std::fflush(stdout);
}

int benchPrune(const std::vector<std::string>& args)
{
    const bool quick = flag(args, "quick");
    const int threads = static_cast<int>(intOption(args, "threads", 2));
    const int64_t d = quick ? 1024 : 4096, ff = quick ? 2752 : 11008;
    const int64_t samples = intOption(args, "samples", quick ? 1024 : 4096);
    const int64_t rank = intOption(args, "rank", quick ? 128 : 512);
    setComputeThreads(threads);
    Eigen::setNbThreads(threads);
    std::printf("prune kernels, %d threads%s\n", threads, quick ? " (--quick sizes)" : "");

    auto t0 = Clock::now();
    const Eigen::MatrixXf gram = correlatedGram(samples, d);
    const Eigen::VectorXf inputNorm = inputNormFromGram(gram);
    std::printf("Gram matrix of X (%lld x %lld, correlated, heavy-tailed channels): %.2f s (not timed below)\n",
                static_cast<long long>(samples), static_cast<long long>(d), secondsSince(t0));
    std::printf("50 %% unstructured; SparseGPT block size 128, damping 0.01; output err = ||(W - W^) X^T||_F / ||W X^T||_F (first 512 rows)\n");
    { // warm-up (thread pool, first allocations), not reported
        Rng w(3);
        SparseGptOptions o;
        (void)sparseGpt(w.gaussian(128, 256, 0.02f), gram.topLeftCorner(256, 256), o);
    }
    benchPruneShape(d, d, gram, inputNorm);
    benchPruneShape(ff, d, gram, inputNorm);

    // Low rank: a known spectrum s_i = 1 / (1 + i / 64).
    const int64_t n = d;
    Rng r(11);
    Eigen::VectorXf s(n);
    for (int64_t i = 0; i < n; ++i)
        s[i] = 1.0f / (1.0f + static_cast<float>(i) / 64.0f);
    const MatrixRM U = randomHadamard(n, r), V = randomHadamard(n, r);
    MatrixRM W(n, n);
    W.noalias() = (U * s.asDiagonal()) * V.transpose();
    const double tail = std::sqrt(static_cast<double>(s.tail(n - rank).squaredNorm()) / static_cast<double>(s.squaredNorm()));
    std::printf("low rank: %lld x %lld, s_i = 1 / (1 + i/64), rank %lld; optimum relative error %.5f\n",
                static_cast<long long>(n), static_cast<long long>(n), static_cast<long long>(rank), tail);

    t0 = Clock::now();
    const LowRankFactors rs = randomizedSvd(W, rank);
    const double rsSeconds = secondsSince(t0);
    const double l = static_cast<double>(rank + RandomizedSvdOptions{}.oversampling);
    const double q = RandomizedSvdOptions{}.powerIterations;
    const double nn = static_cast<double>(n);
    const double rsFlops = (2.0 + 2.0 * q) * 2.0 * nn * nn * l; // the products with W and W^T
    std::printf("  randomized SVD (oversampling 10, %d power iterations): %8.3f s  %6.1f GFLOP/s (nominal (2+2q) 2 n^2 l "
                "= %.0f GFLOP)  rel. error %.5f\n",
                RandomizedSvdOptions{}.powerIterations, rsSeconds, rsFlops / rsSeconds * 1e-9, rsFlops * 1e-9,
                relativeError(W, rs.product()));
    std::fflush(stdout);

    t0 = Clock::now();
    const SvdBasis basis = svdBasis(W);
    const double fullSeconds = secondsSince(t0);
    const LowRankFactors full = truncate(basis, rank);
    double maxSigmaErr = 0;
    for (int64_t i = 0; i < n; ++i)
        maxSigmaErr = std::max(maxSigmaErr, std::abs(basis.sigma[i] - static_cast<double>(s[i])));
    std::printf("  full BDCSVD (double):                                %8.3f s  rel. error %.5f  (max |sigma_i - s_i| %.2e)\n",
                fullSeconds, relativeError(W, full.product()), maxSigmaErr);
    std::printf("  randomized / full: %.1fx faster, error %.4f vs %.4f (+%.2f %%)\n", fullSeconds / rsSeconds,
                relativeError(W, rs.product()), relativeError(W, full.product()),
                100.0 * (relativeError(W, rs.product()) / relativeError(W, full.product()) - 1.0));
    return 0;
}

const Registration reg("prune", "Wanda / SparseGPT at 4096 and 11008 x 4096; randomized vs full SVD at rank 512",
                       benchPrune);

} // namespace

} // namespace ll::bench
