#include "quant/ggml_quantize.h"

#include "util/threads.h"
#include "quant/ggml_quantize_impl.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace ll {

namespace {

using namespace ggmlq;

// One ggml type's quantizers, adapted to byte buffers.
struct Kernel {
    int blockElems = 0;
    int blockBytes = 0;
    void (*ref)(const float* x, uint8_t* out, int64_t blocks) = nullptr;
    void (*fast)(const float* x, uint8_t* out, int64_t blocks) = nullptr;
    void (*weighted)(const float* x, uint8_t* out, int64_t blocks, const float* qw) = nullptr; // one row
};

// Blocks are built in a typed buffer and copied out, so no Block is ever
// accessed through storage that was not created as one.
template <class Block, int Elems, void (*F)(const float*, Block*, int64_t)>
void viaBlocks(const float* x, uint8_t* out, int64_t blocks)
{
    constexpr int64_t kChunk = 64;
    Block buf[kChunk];
    for (int64_t b0 = 0; b0 < blocks; b0 += kChunk) {
        const int64_t nb = std::min(kChunk, blocks - b0);
        F(x + b0 * Elems, buf, nb * Elems);
        std::memcpy(out + b0 * static_cast<int64_t>(sizeof(Block)), buf, static_cast<size_t>(nb) * sizeof(Block));
    }
}

template <class Block, int Elems, void (*F)(const float*, Block*, int64_t, const float*)>
void viaBlocksWeighted(const float* x, uint8_t* out, int64_t blocks, const float* qw)
{
    std::vector<Block> buf(static_cast<size_t>(blocks));
    F(x, buf.data(), blocks * Elems, qw);
    std::memcpy(out, buf.data(), buf.size() * sizeof(Block));
}

template <class Block, int Elems, void (*Ref)(const float*, Block*, int64_t),
          void (*Weighted)(const float*, Block*, int64_t, const float*),
          void (*Fast)(const float*, Block*, int64_t) = Ref>
Kernel kernel()
{
    Kernel k;
    k.blockElems = Elems;
    k.blockBytes = static_cast<int>(sizeof(Block));
    k.ref = viaBlocks<Block, Elems, Ref>;
    k.fast = viaBlocks<Block, Elems, Fast>;
    k.weighted = viaBlocksWeighted<Block, Elems, Weighted>;
    return k;
}

// Q8_0 has no importance-weighted variant in llama.cpp: the weights are ignored.
void quantizeQ8_0Weighted(const float* x, BlockQ8_0* y, int64_t n, const float*) { quantizeQ8_0Ref(x, y, n); }

const Kernel* kernelFor(DType t)
{
    static const Kernel q4_0 = kernel<BlockQ4_0, kQK, quantizeQ4_0Ref, quantizeQ4_0Weighted, quantizeQ4_0Fast>();
    static const Kernel q4_1 = kernel<BlockQ4_1, kQK, quantizeQ4_1Ref, quantizeQ4_1Weighted>();
    static const Kernel q5_0 = kernel<BlockQ5_0, kQK, quantizeQ5_0Ref, quantizeQ5_0Weighted>();
    static const Kernel q5_1 = kernel<BlockQ5_1, kQK, quantizeQ5_1Ref, quantizeQ5_1Weighted>();
    static const Kernel q8_0 = kernel<BlockQ8_0, kQK, quantizeQ8_0Ref, quantizeQ8_0Weighted, quantizeQ8_0Fast>();
    static const Kernel iq4_nl = kernel<BlockIQ4_NL, kQK, quantizeIQ4_NLRef, quantizeIQ4_NLWeighted>();
    static const Kernel q2_k = kernel<BlockQ2_K, kQK_K, quantizeQ2_KRef, quantizeQ2_KWeighted>();
    static const Kernel q3_k = kernel<BlockQ3_K, kQK_K, quantizeQ3_KRef, quantizeQ3_KWeighted>();
    static const Kernel q4_k = kernel<BlockQ4_K, kQK_K, quantizeQ4_KRef, quantizeQ4_KWeighted>();
    static const Kernel q5_k = kernel<BlockQ5_K, kQK_K, quantizeQ5_KRef, quantizeQ5_KWeighted>();
    static const Kernel q6_k = kernel<BlockQ6_K, kQK_K, quantizeQ6_KRef, quantizeQ6_KWeighted>();
    switch (t) {
    case DType::Q4_0: return &q4_0;
    case DType::Q4_1: return &q4_1;
    case DType::Q5_0: return &q5_0;
    case DType::Q5_1: return &q5_1;
    case DType::Q8_0: return &q8_0;
    case DType::IQ4_NL: return &iq4_nl;
    case DType::Q2_K: return &q2_k;
    case DType::Q3_K: return &q3_k;
    case DType::Q4_K: return &q4_k;
    case DType::Q5_K: return &q5_k;
    case DType::Q6_K: return &q6_k;
    default: return nullptr;
    }
}

const Kernel& requireKernel(DType t, int64_t n)
{
    const Kernel* k = kernelFor(t);
    if (!k)
        fail(ErrorCode::UnsupportedDType, "", "LayerLab cannot quantize to " + std::string(dtypeName(t)));
    if (n < 0 || n % k->blockElems != 0)
        fail(ErrorCode::InvalidArgument, "",
             std::to_string(n) + " values are not a whole number of " + std::to_string(k->blockElems) + "-value "
                 + std::string(dtypeName(t)) + " blocks");
    return *k;
}

void requireFiniteValues(const float* x, int64_t n, const char* what, bool nonNegative)
{
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i]) || (nonNegative && x[i] < 0.0f))
            fail(ErrorCode::InvalidArgument, "",
                 std::string(what) + " " + std::to_string(i) + " is "
                     + (std::isnan(x[i]) ? "NaN" : std::isfinite(x[i]) ? "negative" : "infinite")
                     + "; it cannot be quantized");
}

void validate(const float* x, int64_t n, const float* importance, int64_t importanceLength)
{
    requireFiniteValues(x, n, "value", false);
    if (importance)
        requireFiniteValues(importance, importanceLength, "importance weight", true);
}

} // namespace

bool canQuantizeGgml(DType t) { return kernelFor(t) != nullptr; }

DType ggmlFallbackType(DType t, int64_t cols)
{
    const Kernel* k = kernelFor(t);
    if (!k || cols % k->blockElems == 0)
        return t;
    DType f = t;
    switch (t) {
    case DType::Q2_K:
    case DType::Q3_K: f = DType::IQ4_NL; break;
    case DType::Q4_K: f = DType::Q5_0; break;
    case DType::Q5_K: f = DType::Q5_1; break;
    case DType::Q6_K: f = DType::Q8_0; break;
    default: return t;
    }
    return cols % kQK == 0 ? f : DType::F16;
}

double ggmlBitsPerWeight(DType t)
{
    const Kernel* k = kernelFor(t);
    if (!k)
        fail(ErrorCode::UnsupportedDType, "", "LayerLab cannot quantize to " + std::string(dtypeName(t)));
    return 8.0 * k->blockBytes / k->blockElems;
}

std::vector<uint8_t> quantizeGgmlRef(DType t, const float* x, int64_t n, const float* importance)
{
    const Kernel& k = requireKernel(t, n);
    validate(x, n, importance, n);
    const int64_t blocks = n / k.blockElems;
    std::vector<uint8_t> out(static_cast<size_t>(blocks * k.blockBytes));
    if (importance)
        k.weighted(x, out.data(), blocks, importance);
    else
        k.ref(x, out.data(), blocks);
    return out;
}

void quantizeGgmlSerial(DType t, const float* x, int64_t n, uint8_t* out)
{
    const Kernel& k = requireKernel(t, n);
    validate(x, n, nullptr, 0);
    k.fast(x, out, n / k.blockElems);
}

void quantizeGgmlRowsSerial(DType t, const float* x, int64_t rows, int64_t cols, const float* importance, uint8_t* out)
{
    const Kernel& k = requireKernel(t, cols);
    validate(x, rows * cols, importance, cols);
    const int64_t rowBytes = cols / k.blockElems * k.blockBytes;
    for (int64_t r = 0; r < rows; ++r)
        k.weighted(x + r * cols, out + r * rowBytes, cols / k.blockElems, importance);
}

std::vector<uint8_t> quantizeGgml(DType t, const float* x, int64_t n, const float* importance)
{
    if (importance) // one row: the weighting needs the whole row at once
        return quantizeGgmlRef(t, x, n, importance);
    const Kernel& k = requireKernel(t, n);
    validate(x, n, nullptr, 0);
    const int64_t blocks = n / k.blockElems;
    std::vector<uint8_t> out(static_cast<size_t>(blocks * k.blockBytes));
    // Blocks are independent: chunks of them run on separate threads.
    constexpr int64_t kChunkBlocks = 256;
    const int64_t chunks = (blocks + kChunkBlocks - 1) / kChunkBlocks;
#pragma omp parallel for schedule(dynamic) num_threads(computeThreads()) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t b0 = c * kChunkBlocks;
        const int64_t nb = std::min(kChunkBlocks, blocks - b0);
        k.fast(x + b0 * k.blockElems, out.data() + b0 * k.blockBytes, nb);
    }
    return out;
}

std::vector<uint8_t> quantizeGgmlRows(DType t, const float* x, int64_t rows, int64_t cols, const float* importance)
{
    if (rows < 0)
        fail(ErrorCode::InvalidArgument, "", "negative row count " + std::to_string(rows));
    const Kernel& k = requireKernel(t, cols);
    if (!importance)
        return quantizeGgml(t, x, rows * cols);
    validate(x, rows * cols, importance, cols);
    const int64_t rowBytes = cols / k.blockElems * k.blockBytes;
    std::vector<uint8_t> out(static_cast<size_t>(rows * rowBytes));
#pragma omp parallel for schedule(dynamic) num_threads(computeThreads()) if (rows > 1)
    for (int64_t r = 0; r < rows; ++r)
        k.weighted(x + r * cols, out.data() + r * rowBytes, cols / k.blockElems, importance);
    return out;
}

} // namespace ll
