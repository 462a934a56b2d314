// layerlab-bench quant: quantizer throughput against plain references measured
// in the same run.
//
//   layerlab-bench quant [--quick] [--threads N] [--reps R] [--gptq-only] [--shape OUTxIN]
//
// GPTQ (4-bit asym per row and g128, blocksize 128, damp 0.01) on (out, in) =
// 4096x4096, 11008x4096 and 4096x11008 (--quick: 1024x1024, 2752x1024,
// 1024x2752; --shape: that one only). The Gram matrix H = X^T X / n of random
// inputs (max(2 in, 4096) tokens) is generated outside the timing.
// FLOP count (stated, not measured):
//   sweep factor            n^3/3       LLT of the reversed H, blocked and threaded
//                                       (gptqSweepFactor in quant/gptq_factor.h; FP64
//                                       up to 4096 columns, FP32 above)
//   (the FP64 route of layer/obs_hessian.h, timed beside it for in <= 4096:
//    LLT n^3/3, solve against the identity 2 n^3, LLT of the inverse n^3/3)
//   column / block updates  m n^2       2 m flops per (column, later column) pair:
//                                       in-block updates plus the lazy batch GEMMs
// with m = out, n = in. The factor is also timed alone.
// Reference: Eigen GEMM 4096x4096x4096 float (--quick 1024^3), 2 n^3 flops.
//
// RTN (4-bit asym per row) and the ggml quantizers (Q4_0, Q8_0, Q4_K, rows of
// 4096 as llama-quantize does a tensor) in GB/s of F32 input read, against a
// plain read (sum) of the same bytes, on one thread and on every thread (the
// percentages are against the threaded read; best of max(reps, 10 quick / 5)).
#include "bench.h"

#include "util/threads.h"
#include "model/tensor_data.h"
#include "layer/obs_hessian.h"
#include "quant/ggml_quantize.h"
#include "quant/gptq.h"
#include "quant/gptq_factor.h"
#include "quant/rtn.h"

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace ll::bench {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

long long intOpt(const std::vector<std::string>& args, const std::string& name, long long fallback)
{
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "--" + name)
            return std::stoll(args[i + 1]);
    return fallback;
}

struct Rng {
    uint64_t state = 0x2545f4914f6cdd1dull;
    float next()
    {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        return static_cast<float>(static_cast<double>(z >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
};

MatrixRM randomMatrix(int64_t rows, int64_t cols, Rng& rng, float scale = 0.02f)
{
    MatrixRM m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i)
        m.data()[i] = scale * rng.next();
    return m;
}

// Best of `reps` runs of f (seconds).
template <class F>
double best(int reps, F f)
{
    double b = 1e300;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        f();
        b = std::min(b, secondsSince(t0));
    }
    return b;
}

volatile float g_sink = 0.0f;

int benchQuant(const std::vector<std::string>& args)
{
    const bool quick = flag(args, "quick"), gptqOnly = flag(args, "gptq-only");
    const int threads = static_cast<int>(intOpt(args, "threads", 0));
    const int reps = static_cast<int>(intOpt(args, "reps", quick ? 3 : 1));
    if (threads > 0)
        setComputeThreads(threads);
    Eigen::setNbThreads(computeThreads());
    const int64_t d = quick ? 1024 : 4096, f = quick ? 2752 : 11008;
    std::printf("layerlab-bench quant%s: %d threads, Eigen %d threads, best of %d\n", quick ? " --quick" : "",
                computeThreads(), Eigen::nbThreads(), reps);
    Rng rng;

    // Reference GEMM.
    {
        const Eigen::MatrixXf A = randomMatrix(d, d, rng, 1.0f), B = randomMatrix(d, d, rng, 1.0f);
        Eigen::MatrixXf C(d, d);
        C.noalias() = A * B; // warm-up
        const double s = best(reps, [&] { C.noalias() = A * B; g_sink = C(0, 0); });
        std::printf("GEMM  %lldx%lldx%lld f32        %8.3f s  %8.1f GFLOP/s\n", static_cast<long long>(d),
                    static_cast<long long>(d), static_cast<long long>(d), s, 2.0 * double(d) * d * d / s / 1e9);
    }

    // GPTQ.
    std::vector<std::pair<int64_t, int64_t>> shapes = {{d, d}, {f, d}, {d, f}};
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "--shape") {
            const std::string& v = args[i + 1];
            const size_t x = v.find('x');
            shapes = {{std::stoll(v.substr(0, x)), std::stoll(v.substr(x + 1))}};
        }
    for (const auto& [m, n] : shapes) {
        const MatrixRM W = randomMatrix(m, n, rng);
        Eigen::MatrixXf H;
        {
            const int64_t tokens = std::max<int64_t>(2 * n, 4096);
            const MatrixRM X = randomMatrix(tokens, n, rng, 1.0f);
            H.noalias() = X.transpose() * X;
            H /= static_cast<float>(tokens);
        }
        const double damp = 0.01;
        const double cholFlops = double(n) * n * n / 3.0, updFlops = double(m) * n * n;
        const double factor = best(reps, [&] { g_sink = gptqSweepFactor(H, damp).scaled(0, 0); });
        // The old route once, where it takes seconds rather than minutes.
        const double fp64 = n <= 4096 ? best(1, [&] { g_sink = inverseHessianFactor(H, damp).upper(0, 0); }) : 0.0;
        std::printf("GPTQ  %5lldx%-5lld factor     %8.3f s  %8.1f GFLOP/s  (%s; FP64 inverse route %s)\n",
                    static_cast<long long>(m), static_cast<long long>(n), factor, cholFlops / factor / 1e9,
                    factorInDouble(n, FactorPrecision::Auto) ? "FP64" : "FP32",
                    fp64 > 0.0 ? (std::to_string(fp64).substr(0, 6) + " s").c_str() : "not timed above 4096");
        for (int group : {0, 128}) {
            GptqOptions o;
            o.grid = {4, false, group};
            o.blockSize = 128;
            o.percDamp = damp;
            const double total = best(reps, [&] { g_sink = gptqQuantize(W, H, o).dequantized(0, 0); });
            std::printf("GPTQ  %5lldx%-5lld w4 %-5s  %8.3f s  %8.1f GFLOP/s  (updates+quant %.3f s = %.1f GFLOP/s; "
                        "%.3g flop)\n",
                        static_cast<long long>(m), static_cast<long long>(n), group ? "g128" : "row", total,
                        (cholFlops + updFlops) / total / 1e9, total - factor,
                        updFlops / std::max(total - factor, 1e-9) / 1e9, cholFlops + updFlops);
        }
    }
    if (gptqOnly)
        return 0;

    // RTN and ggml against a plain read of the same bytes.
    {
        const int64_t rows = quick ? 1024 : 4096, cols = quick ? 1024 : 4096;
        const MatrixRM W = randomMatrix(rows, cols, rng);
        const double gb = double(W.size()) * sizeof(float) / 1e9;
        const int r = std::max(reps, quick ? 10 : 5);
        const double read1 = best(r, [&] { g_sink = W.sum(); });
        std::printf("read  1 thread                   %8.4f s  %8.2f GB/s\n", read1, gb / read1);
        const double read = best(r, [&] {
            // Threaded like the quantizers: one slice of rows per thread.
            const int64_t parts = computeThreads();
            std::vector<float> sums(static_cast<size_t>(parts), 0.0f);
            runParallel(parts, [&](int64_t p) {
                const int64_t r0 = rows * p / parts, r1 = rows * (p + 1) / parts;
                sums[static_cast<size_t>(p)] = W.middleRows(r0, r1 - r0).sum();
            });
            float s = 0.0f;
            for (float v : sums)
                s += v;
            g_sink = s;
        });
        std::printf("read  %lldx%lld f32 (%.0f MB)  %8.4f s  %8.2f GB/s\n", static_cast<long long>(rows),
                    static_cast<long long>(cols), gb * 1e3, read, gb / read);
        const double rtn = best(r, [&] { g_sink = rtnQuantize(W, {4, false, 0}).dequantized(0, 0); });
        std::printf("RTN   w4 asym per row           %8.4f s  %8.2f GB/s  (%.1f %% of read)\n", rtn, gb / rtn,
                    100.0 * read / rtn);
        const std::pair<const char*, DType> types[] = {{"Q4_0", DType::Q4_0}, {"Q8_0", DType::Q8_0}, {"Q4_K", DType::Q4_K}};
        for (const auto& [name, t] : types) {
            const double s = best(r, [&] { g_sink = static_cast<float>(quantizeGgmlRows(t, W.data(), rows, cols)[0]); });
            std::printf("ggml  %-4s                       %8.4f s  %8.2f GB/s  (%.1f %% of read)\n", name, s, gb / s,
                        100.0 * read / s);
        }
    }
    return 0;
}

const Registration reg("quant", "GPTQ GFLOP/s vs Eigen GEMM; RTN / ggml quantizer GB/s vs a plain read", benchQuant);

} // namespace

} // namespace ll::bench
