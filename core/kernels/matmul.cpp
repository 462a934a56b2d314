#include "kernels/matmul.h"

#include "kernels/cpu_features.h"
#include "kernels/gemm.h"
#include "kernels/gemm_avx512.h"
#include "kernels/int8_dot.h"
#include "kernels/row_kernels_avx512.h"
#include "kernels/row_kernels.h"
#include "kernels/sparse_kernels.h"
#include "util/threads.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ll {

namespace {

// A per-thread scratch buffer, reused (a fresh one per product costs page
// faults), 64-byte aligned for the AVX-512 kernels' aligned loads.
float* scratch(size_t floats)
{
    thread_local std::vector<float> buf;
    if (buf.size() < floats + 16)
        buf.resize(floats + 16);
    const auto address = reinterpret_cast<uintptr_t>(buf.data());
    return buf.data() + ((64 - address % 64) % 64) / sizeof(float);
}

std::atomic<int>& bf16Slot()
{
    static std::atomic<int> slot{[] {
        const char* env = std::getenv("LAYERLAB_BF16");
        return static_cast<int>(env && std::strcmp(env, "f32") == 0 ? Bf16Products::F32 : Bf16Products::Native);
    }()};
    return slot;
}

std::atomic<int>& f32GemmSlot()
{
    static std::atomic<int> slot{[] {
        const char* env = std::getenv("LAYERLAB_F32_GEMM");
        if (env && std::strcmp(env, "eigen") == 0)
            return static_cast<int>(F32Gemm::Eigen);
        return static_cast<int>(F32Gemm::Tiles);
    }()};
    return slot;
}

std::atomic<int>& quantSlot()
{
    static std::atomic<int> slot{[] {
        const char* env = std::getenv("LAYERLAB_QDOT");
        return static_cast<int>(env && std::strcmp(env, "f32") == 0 ? QuantProducts::F32 : QuantProducts::Int8);
    }()};
    return slot;
}

// Q8K blocks of m rows of x, in the calling thread's buffer (reused like
// scratch()); made once per product, before its columns are split over threads.
// For a packed grid, x times its column scales (gridInt8Input).
const BlockQ8K* quantizedRows(const float* x, int64_t ldx, int64_t m, int64_t cols, const GridLayout* grid)
{
    thread_local std::vector<BlockQ8K> buf;
    const int64_t blocks = cols / kQ8Block;
    buf.resize(static_cast<size_t>(m * blocks));
    for (int64_t i = 0; i < m; ++i) {
        if (grid)
            gridInt8Input(*grid, x + i * ldx, buf.data() + i * blocks);
        else
            quantizeRowQ8K(x + i * ldx, buf.data() + i * blocks, cols);
    }
    return buf.data();
}

// The m rows of x rounded to F16 (F16Products::HalfX), in a per-thread buffer.
const uint16_t* halfRows(const float* x, int64_t ldx, int64_t m, int64_t cols)
{
    thread_local std::vector<uint16_t> buf;
    buf.resize(static_cast<size_t>(m * cols));
    for (int64_t i = 0; i < m; ++i)
        avx512::floatsToHalf(x + i * ldx, buf.data() + i * cols, cols);
    return buf.data();
}

std::atomic<int>& f16Slot()
{
    static std::atomic<int> slot{[] {
        const char* env = std::getenv("LAYERLAB_F16DOT");
        return static_cast<int>(env && std::strcmp(env, "f32") == 0 ? F16Products::F32 : F16Products::HalfX);
    }()};
    return slot;
}

// Output columns [c0, c1) of the decoding path for F16 weights with x in F16 (xh: m rows of W.cols).
void halfRowsPath(const uint16_t* xh, const StoredMatrix& W, float* y, int64_t ldy, int64_t m, int64_t c0, int64_t c1)
{
    for (int64_t j = c0; j < c1; ++j)
        for (int64_t i = 0; i < m; ++i)
            y[i * ldy + j] = avx512::dotF16HalfX(W.row(j), xh + i * W.cols, W.cols);
}

void decodeSegment(const void* reader, int64_t row, int64_t k0, int64_t n, float* out)
{
    static_cast<const RowReader*>(reader)->decodeColumns(row, k0, n, out);
}

// Output columns [c0, c1) of the decoding path.
void rowsPath(const float* x, int64_t ldx, const StoredMatrix& W, float* y, int64_t ldy, int64_t m, int64_t c0, int64_t c1)
{
    const int64_t cols = W.cols;
    const RowReader reader(W);
    if (m == 1) {
        for (int64_t j = c0; j < c1; ++j)
            y[j] = reader.dot(j, x);
        return;
    }
    float* row = W.type == DType::F32 ? nullptr : scratch(static_cast<size_t>(cols));
    for (int64_t j = c0; j < c1; ++j) {
        const float* w = reinterpret_cast<const float*>(W.row(j));
        if (row) {
            reader.decode(j, row);
            w = row;
        }
        for (int64_t i = 0; i < m; ++i)
            y[i * ldy + j] = dotF32(w, x + i * ldx, cols);
    }
}

// Output columns [c0, c1) of the decoding path with integer products: xq holds
// the m rows of x as Q8K blocks (quantizedRows); dot(row, xq row) is a ggml
// type's or a packed grid's kernel.
template <class RowDot>
void int8RowsPath(const RowDot& dot, const BlockQ8K* xq, const StoredMatrix& W, float* y, int64_t ldy, int64_t m, int64_t c0, int64_t c1)
{
    const int64_t blocks = W.cols / kQ8Block;
    for (int64_t j = c0; j < c1; ++j)
        for (int64_t i = 0; i < m; ++i)
            y[i * ldy + j] = dot(W.row(j), xq + i * blocks);
}

// Output columns [c0, c1) of the GEMM path: decoded panels of `panel` weight rows.
void gemmPath(const float* x, int64_t ldx, const StoredMatrix& W, float* y, int64_t ldy, int64_t m, int64_t c0, int64_t c1)
{
    const int64_t k = W.cols;
    const KernelLevel level = kernelLevel();
    if (level == KernelLevel::Avx512Bf16 && W.type == DType::BF16 && bf16Products() == Bf16Products::Native) {
        avx512::gemmBf16(x, ldx, m, k, W.data, W.rowBytes, y, ldy, c0, c1, scratch(avx512::gemmScratchFloats(m, k)));
        return;
    }
    if (level == KernelLevel::Avx512Bf16 && W.type == DType::Sparse && W.sparse->valueType == DType::BF16
        && bf16Products() == Bf16Products::Native) {
        // A pruned BF16 layer: panels of rows decoded back to BF16 (exactly), each
        // through the BF16 GEMM; about 2 MB a panel, so that packing x once per
        // panel stays a small share of the panel's products.
        const int64_t panel = std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(k, 1) / 32 * 32, 32, 512);
        thread_local std::vector<uint16_t> rows;
        rows.resize(static_cast<size_t>(std::min(panel, c1 - c0) * k));
        float* s = scratch(avx512::gemmScratchFloats(m, k));
        for (int64_t j0 = c0; j0 < c1; j0 += panel) {
            const int64_t n = std::min(panel, c1 - j0);
            for (int64_t r = 0; r < n; ++r)
                avx512::decodeSparseRowBf16(*W.sparse, W.row(j0 + r), rows.data() + r * k);
            avx512::gemmBf16(x, ldx, m, k, reinterpret_cast<const uint8_t*>(rows.data()), static_cast<size_t>(k) * 2, y + j0, ldy,
                             0, n, s);
        }
        return;
    }
    if (level != KernelLevel::Portable && (W.type != DType::F32 || f32Gemm() == F32Gemm::Tiles)) {
        const RowReader reader(W);
        avx512::gemmF32(x, ldx, m, k, &reader, decodeSegment, W.data, W.rowBytes, y, ldy, c0, c1,
                        scratch(avx512::gemmScratchFloats(m, k)));
        return;
    }
    if (W.type == DType::F32) {
        gemmABt(x, ldx, reinterpret_cast<const float*>(W.row(c0)), static_cast<int64_t>(W.rowBytes / sizeof(float)),
                y + c0, ldy, m, c1 - c0, k);
        return;
    }
    // About 2 MB of decoded weights per panel: in L2/L3 while the GEMM reuses them.
    const int64_t panel = std::clamp<int64_t>((int64_t{1} << 19) / std::max<int64_t>(k, 1) / 16 * 16, 16, 512);
    float* buf = scratch(static_cast<size_t>(std::min(panel, c1 - c0) * k));
    const RowReader reader(W);
    for (int64_t j0 = c0; j0 < c1; j0 += panel) {
        const int64_t rows = std::min(panel, c1 - j0);
        for (int64_t r = 0; r < rows; ++r)
            reader.decode(j0 + r, buf + r * k);
        gemmABt(x, ldx, buf, k, y + j0, ldy, m, rows, k);
    }
}

} // namespace

void setF32Gemm(F32Gemm g)
{
    f32GemmSlot().store(static_cast<int>(g));
}

F32Gemm f32Gemm()
{
    return static_cast<F32Gemm>(f32GemmSlot().load(std::memory_order_relaxed));
}

void setBf16Products(Bf16Products p)
{
    bf16Slot().store(static_cast<int>(p));
}

Bf16Products bf16Products()
{
    return static_cast<Bf16Products>(bf16Slot().load(std::memory_order_relaxed));
}

void setQuantProducts(QuantProducts p)
{
    quantSlot().store(static_cast<int>(p));
}

QuantProducts quantProducts()
{
    return static_cast<QuantProducts>(quantSlot().load(std::memory_order_relaxed));
}

void setF16Products(F16Products p)
{
    f16Slot().store(static_cast<int>(p));
}

F16Products f16Products()
{
    return static_cast<F16Products>(f16Slot().load(std::memory_order_relaxed));
}

void matmulStored(const float* x, int64_t ldx, const StoredMatrix& W, float* y, int64_t ldy, int64_t m)
{
    const int64_t n = W.rows, k = W.cols;
    if (n == 0 || m == 0)
        return;
    if (k == 0) {
        for (int64_t i = 0; i < m; ++i)
            std::fill(y + i * ldy, y + i * ldy + n, 0.0f);
        return;
    }
    const bool rows = m <= kMatmulRowsPath;
    // Worth splitting: ~0.5 ms of work or more, so that the barrier ending the
    // split stays cheap even when the OS makes a thread wait for a core. The
    // decoding path splits sooner: its work is reading the weights.
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    const double minWork = rows ? 1024.0 * 1024 : 16.0 * 1024 * 1024;
    const int64_t parts = work >= minWork && !inParallelRegion() ? std::min<int64_t>(computeThreads(), n / 16) : 1;
    const Int8DotFn int8 = rows && k % kQ8Block == 0 ? int8DotKernel(W.type) : nullptr;
    const GridInt8DotFn gridInt8 = rows && W.type == DType::Grid ? gridInt8DotKernel(*W.grid) : nullptr;
    const BlockQ8K* xq = int8 || gridInt8 ? quantizedRows(x, ldx, m, k, gridInt8 ? W.grid.get() : nullptr) : nullptr;
    const bool half = rows && W.type == DType::F16 && f16Products() == F16Products::HalfX && kernelLevel() != KernelLevel::Portable;
    const uint16_t* xh = half ? halfRows(x, ldx, m, k) : nullptr;
    const auto columns = [&](int64_t c0, int64_t c1) {
        if (int8)
            int8RowsPath([&](const uint8_t* w, const BlockQ8K* q) { return int8(w, q, k); }, xq, W, y, ldy, m, c0, c1);
        else if (gridInt8)
            int8RowsPath([&](const uint8_t* w, const BlockQ8K* q) { return gridInt8(*W.grid, w, q); }, xq, W, y, ldy, m, c0, c1);
        else if (half)
            halfRowsPath(xh, W, y, ldy, m, c0, c1);
        else if (rows)
            rowsPath(x, ldx, W, y, ldy, m, c0, c1);
        else
            gemmPath(x, ldx, W, y, ldy, m, c0, c1);
    };
    if (parts <= 1) {
        columns(0, n);
        return;
    }
    // Output columns in multiples of 16, one barrier per product. The decoding
    // path, bound by reading the weights, takes 8 chunks per thread as they come:
    // a thread that the OS slows (another process on its core) does less of the
    // product instead of the others spinning at the barrier (12 % of an F16
    // decode's time with one chunk each, 4 % with eight, on a shared 2-core machine).
    const int64_t chunks = rows ? std::max<int64_t>(parts, std::min<int64_t>(n / 16, parts * 8)) : parts;
#pragma omp parallel for num_threads(static_cast<int>(parts)) schedule(dynamic)
    for (int64_t p = 0; p < chunks; ++p)
        columns(n * p / chunks / 16 * 16, p + 1 == chunks ? n : n * (p + 1) / chunks / 16 * 16);
}

} // namespace ll
