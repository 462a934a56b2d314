// layerlab-bench grid: LayerLab's packed grid (how an applied RTN, GPTQ, AWQ or
// HQQ layer is held) against the scalar reference decoder and against the ggml
// types of about the same size, measured in the same run, alternating.
//
//   layerlab-bench grid [--rows N] [--cols N] [--bits B] [--group G] [--reps R] [--prefill M]
//                       [--form int|bcq|owq|spqr]
//
// Defaults: a 4096 x 4096 matrix, 4 bits, groups of 128 (an RTN w4 g128 layer).
// --form: the integer grid (default); BCQ's binary coding; the integer grid
// with 1 % of the columns held as float values (OWQ, LLM.int8); or with 1 %
// of each row's weights as float outliers (SpQR).
// Figures:
//   decode   every row to F32: the reference (model/packed_grid.cpp, one code at
//            a time) and the fast decoder (kernels/grid_kernels.h), in ms and GB/s
//            of floats written;
//   gemv     matmulStored with one row of x (decoding a token): grid, Q4_0, Q4_K, F32;
//   prefill  matmulStored with M rows of x (default 512: a perplexity window):
//            grid, Q4_0, Q4_K, F32, in GFLOP/s (2 M rows cols flops).
// Best of R repetitions (default 5), each repetition running every variant once.
#include "bench.h"

#include "kernels/grid_kernels.h"
#include "kernels/matmul.h"
#include "kernels/stored_matrix.h"
#include "quant/ggml_quantize.h"
#include "util/threads.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
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
    std::function<void()> run;
    double best = std::numeric_limits<double>::infinity();
};

// Runs every variant once per repetition, in turn, and keeps each one's best time.
void timeAlternating(std::vector<Variant>& variants, int reps)
{
    for (int r = 0; r < reps; ++r)
        for (Variant& v : variants) {
            const auto t0 = Clock::now();
            v.run();
            v.best = std::min(v.best, std::chrono::duration<double>(Clock::now() - t0).count());
        }
}

StoredMatrix ownedMatrix(DType t, std::vector<uint8_t> bytes, int64_t rows, int64_t cols, std::shared_ptr<const GridLayout> grid = nullptr)
{
    auto owner = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    return StoredMatrix::view(t, owner->data(), rows, cols, owner, std::move(grid));
}

int benchGrid(const std::vector<std::string>& args)
{
    const int64_t rows = intOption(args, "rows", 4096), cols = intOption(args, "cols", 4096);
    const int bits = static_cast<int>(intOption(args, "bits", 4));
    const int64_t group = intOption(args, "group", 128), prefill = intOption(args, "prefill", 512);
    const int reps = static_cast<int>(intOption(args, "reps", 5));

    const std::string form = option(args, "form", "int");
    if (form != "int" && form != "bcq" && form != "owq" && form != "spqr") {
        std::fprintf(stderr, "layerlab-bench grid: --form is int, bcq, owq or spqr, not %s\n", form.c_str());
        return 2;
    }

    auto layout = std::make_shared<GridLayout>();
    layout->bits = bits;
    layout->cols = cols;
    layout->groupCols = group;
    layout->groups = (cols + group - 1) / group;
    layout->binaryCoding = form == "bcq";
    const int64_t exceptions = std::max<int64_t>(1, cols / 100);
    if (form == "owq")
        for (int64_t k = 0; k < exceptions; ++k)
            layout->denseColumns.push_back(static_cast<int32_t>(k * (cols / exceptions)));
    if (form == "spqr")
        layout->outlierSlots = exceptions;
    layout->validate();
    std::mt19937 rng(7);
    std::vector<uint8_t> gridBytes(layout->rowBytes() * static_cast<size_t>(rows));
    {
        std::vector<float> scales(static_cast<size_t>(layout->groups) * (layout->binaryCoding ? static_cast<size_t>(bits) : 1));
        std::vector<uint8_t> zeros(static_cast<size_t>(layout->groups)), codes(static_cast<size_t>(cols));
        std::vector<float> values(static_cast<size_t>(exceptions));
        std::vector<int32_t> outlierCols(static_cast<size_t>(exceptions));
        for (int64_t r = 0; r < rows; ++r) {
            for (float& s : scales)
                s = 0.001f + static_cast<float>(rng() % 1000) * 1e-5f;
            for (uint8_t& z : zeros)
                z = static_cast<uint8_t>(rng() % (1u << bits));
            for (uint8_t& c : codes)
                c = static_cast<uint8_t>(rng() % (1u << bits));
            for (int64_t k = 0; k < exceptions; ++k) { // ascending distinct columns, the codes under them zero
                values[static_cast<size_t>(k)] = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f;
                const int64_t c = form == "owq" ? layout->denseColumns[static_cast<size_t>(k)]
                                                : k * (cols / exceptions) + static_cast<int64_t>(rng() % static_cast<uint32_t>(cols / exceptions));
                outlierCols[static_cast<size_t>(k)] = static_cast<int32_t>(c);
                if (form == "owq" || form == "spqr")
                    codes[static_cast<size_t>(c)] = zeros[static_cast<size_t>(c / group)];
            }
            uint8_t* row = gridBytes.data() + r * layout->rowBytes();
            encodeGridRow(*layout, scales.data(), zeros.data(), codes.data(), row);
            writeGridExceptions(*layout, values.data(), outlierCols.data(), values.data(), layout->outlierSlots, row);
        }
    }
    const StoredMatrix grid = ownedMatrix(DType::Grid, std::move(gridBytes), rows, cols, layout);
    MatrixRM dense = grid.toMatrix();
    const StoredMatrix q40 = ownedMatrix(DType::Q4_0, quantizeGgmlRows(DType::Q4_0, dense.data(), rows, cols), rows, cols);
    const StoredMatrix q4k = ownedMatrix(DType::Q4_K, quantizeGgmlRows(DType::Q4_K, dense.data(), rows, cols), rows, cols);
    const StoredMatrix f32 = StoredMatrix::fromMatrix(dense);

    std::printf("grid %s w%d g%lld (%.2f bits a weight), %lld x %lld, %d threads, best of %d\n", form.c_str(), bits,
                static_cast<long long>(group), 8.0 * static_cast<double>(layout->rowBytes()) / static_cast<double>(cols),
                static_cast<long long>(rows), static_cast<long long>(cols), computeThreads(), reps);

    std::vector<float> out(static_cast<size_t>(cols));
    std::vector<Variant> decode = {
        {"reference", [&] { for (int64_t r = 0; r < rows; ++r) decodeGridRow(*layout, grid.row(r), out.data()); }},
        {"fast", [&] { for (int64_t r = 0; r < rows; ++r) decodeGridColumnsFast(*layout, grid.row(r), 0, cols, out.data()); }},
    };
    timeAlternating(decode, reps);
    const double floatsGB = static_cast<double>(rows * cols) * 4 / 1e9;
    std::printf("decode (one thread)\n");
    for (const Variant& v : decode)
        std::printf("  %-10s %8.2f ms  %6.2f GB/s of F32   %.2fx the reference\n", v.name.c_str(), v.best * 1e3,
                    floatsGB / v.best, decode[0].best / v.best);

    const std::vector<std::pair<std::string, const StoredMatrix*>> weights = {
        {"grid", &grid}, {"Q4_0", &q40}, {"Q4_K", &q4k}, {"F32", &f32}};
    for (const int64_t m : {int64_t{1}, prefill}) {
        std::vector<float> x(static_cast<size_t>(m * cols)), y(static_cast<size_t>(m * rows));
        for (float& v : x)
            v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f;
        std::vector<Variant> products;
        for (const auto& [name, w] : weights)
            products.push_back({name, [&, w = w] { matmulStored(x.data(), cols, *w, y.data(), rows, m); }});
        timeAlternating(products, m == 1 ? reps * 20 : reps);
        std::printf("%s (%lld row%s of x)\n", m == 1 ? "gemv" : "prefill", static_cast<long long>(m), m == 1 ? "" : "s");
        for (const Variant& v : products)
            std::printf("  %-10s %8.3f ms  %7.1f GFLOP/s   %.2fx grid's time\n", v.name.c_str(), v.best * 1e3,
                        2.0 * static_cast<double>(m * rows * cols) / v.best / 1e9, v.best / products[0].best);
    }
    return 0;
}

const Registration reg("grid", "packed RTN/GPTQ grid: fast vs reference decoder; gemv and prefill vs Q4_0, Q4_K, F32", benchGrid);

} // namespace

} // namespace ll::bench
