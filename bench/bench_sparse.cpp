// layerlab-bench sparse: pruned layers as LayerLab holds them (model/sparse_rows.h:
// a mask and the kept values) against the same values dense, measured in the
// same run, alternating.
//
//   layerlab-bench sparse [--rows N] [--cols N] [--sparsity S] [--type BF16|F16|F32] [--reps R] [--prefill M]
//
// Defaults: a 4096 x 4096 BF16 matrix, half its values pruned. Variants:
//   dense       the pruned matrix as stored before (zeros included), --type
//   sparse      unstructured: each value pruned with probability S, rows differ
//   sparse 2:4  two of every four values kept (S ignored)
// Figures: bytes a weight; gemv (one row of x: decoding a token) and prefill
// (M rows, default 512) through matmulStored, best of R (default 5).
#include "bench.h"

#include "kernels/matmul.h"
#include "kernels/stored_matrix.h"
#include "model/sparse_rows.h"
#include "util/half.h"
#include "util/threads.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace ll::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct Variant {
    std::string name;
    StoredMatrix weights;
    double best = std::numeric_limits<double>::infinity();
};

// values (rows x cols, already values of `type`) as Sparse rows.
StoredMatrix sparseOf(const std::vector<float>& values, int64_t rows, int64_t cols, DType type)
{
    auto layout = std::make_shared<SparseLayout>();
    layout->valueType = type;
    layout->cols = cols;
    auto bytes = std::make_shared<std::vector<uint8_t>>(
        layout->bytes(rows, sparseKept(values.data(), static_cast<int64_t>(values.size()))));
    encodeSparseRows(*layout, values.data(), rows, bytes->data());
    StoredMatrix m = StoredMatrix::view(DType::Sparse, bytes->data(), rows, cols, bytes, nullptr, layout);
    m.poolBytes = bytes->size() - m.bytes();
    return m;
}

StoredMatrix denseOf(const std::vector<float>& values, int64_t rows, int64_t cols, DType type)
{
    const size_t width = type == DType::F32 ? 4 : 2;
    auto bytes = std::make_shared<std::vector<uint8_t>>(values.size() * width);
    for (size_t i = 0; i < values.size(); ++i) {
        if (type == DType::F32) {
            std::memcpy(bytes->data() + 4 * i, &values[i], 4);
        } else {
            const uint16_t h = type == DType::F16 ? floatToFp16(values[i]) : floatToBf16(values[i]);
            std::memcpy(bytes->data() + 2 * i, &h, 2);
        }
    }
    return StoredMatrix::view(type, bytes->data(), rows, cols, bytes);
}

int benchSparse(const std::vector<std::string>& args)
{
    const int64_t rows = std::stoll(option(args, "rows", "4096")), cols = std::stoll(option(args, "cols", "4096"));
    const double sparsity = std::stod(option(args, "sparsity", "0.5"));
    const int64_t prefill = std::stoll(option(args, "prefill", "512"));
    const int reps = std::stoi(option(args, "reps", "5"));
    const std::string typeName = option(args, "type", "BF16");
    const DType type = typeName == "F32" ? DType::F32 : typeName == "F16" ? DType::F16 : DType::BF16;

    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    std::vector<float> unstructured(static_cast<size_t>(rows * cols)), nm(unstructured.size());
    for (size_t i = 0; i < unstructured.size(); ++i) {
        float v = normal(rng);
        v = type == DType::F16 ? fp16ToFloat(floatToFp16(v)) : type == DType::BF16 ? bf16ToFloat(floatToBf16(v)) : v;
        unstructured[i] = uniform(rng) < sparsity ? 0.0f : v;
        nm[i] = i % 4 < 2 ? v : 0.0f;
    }
    std::vector<Variant> variants = {{"dense " + typeName, denseOf(unstructured, rows, cols, type)},
                                     {"sparse", sparseOf(unstructured, rows, cols, type)},
                                     {"sparse 2:4", sparseOf(nm, rows, cols, type)}};

    std::printf("sparse rows, %lld x %lld %s, %.0f %% pruned, %d threads, best of %d\n", static_cast<long long>(rows),
                static_cast<long long>(cols), typeName.c_str(), 100 * sparsity, computeThreads(), reps);
    for (const Variant& v : variants)
        std::printf("  %-12s %6.2f bits a weight\n", v.name.c_str(),
                    8.0 * static_cast<double>(v.weights.bytes()) / static_cast<double>(rows * cols));
    for (const int64_t m : {int64_t{1}, prefill}) {
        std::vector<float> x(static_cast<size_t>(m * cols)), y(static_cast<size_t>(m * rows));
        for (float& v : x)
            v = normal(rng);
        for (Variant& v : variants)
            v.best = std::numeric_limits<double>::infinity();
        for (int r = 0; r < (m == 1 ? reps * 20 : reps); ++r)
            for (Variant& v : variants) {
                const auto t0 = Clock::now();
                matmulStored(x.data(), cols, v.weights, y.data(), rows, m);
                v.best = std::min(v.best, std::chrono::duration<double>(Clock::now() - t0).count());
            }
        std::printf("%s (%lld row%s of x)\n", m == 1 ? "gemv" : "prefill", static_cast<long long>(m), m == 1 ? "" : "s");
        for (const Variant& v : variants)
            std::printf("  %-12s %8.3f ms  %7.1f GB/s of weights   %.2fx dense's time\n", v.name.c_str(), v.best * 1e3,
                        static_cast<double>(v.weights.bytes()) / v.best / 1e9, v.best / variants[0].best);
    }
    return 0;
}

const Registration reg("sparse", "pruned layers as sparse rows (mask + kept values) vs dense: bytes, gemv, prefill", benchSparse);

} // namespace

} // namespace ll::bench
