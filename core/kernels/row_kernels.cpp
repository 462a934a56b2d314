#include "kernels/row_kernels.h"

#include "kernels/cpu_features.h"
#include "kernels/row_kernels_avx512.h"
#include "model/ggml_dequant.h"
#include "util/error.h"
#include "util/half.h"

#include <cstring>
#include <string>
#include <vector>

namespace ll {

namespace {

void decodeF32(const uint8_t* src, float* dst, int64_t n)
{
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void decodeF16(const uint8_t* src, float* dst, int64_t n)
{
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = fp16ToFloat(h);
    }
}

void decodeBF16(const uint8_t* src, float* dst, int64_t n)
{
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16ToFloat(h);
    }
}

template <DType T>
void decodeGgml(const uint8_t* src, float* dst, int64_t n)
{
    dequantizeGgml(T, src, dst, n);
}

RowDecodeFn referenceDecoder(DType t)
{
    switch (t) {
    case DType::F32: return decodeF32;
    case DType::F16: return decodeF16;
    case DType::BF16: return decodeBF16;
    case DType::Q4_0: return decodeGgml<DType::Q4_0>;
    case DType::Q4_1: return decodeGgml<DType::Q4_1>;
    case DType::Q5_0: return decodeGgml<DType::Q5_0>;
    case DType::Q5_1: return decodeGgml<DType::Q5_1>;
    case DType::Q8_0: return decodeGgml<DType::Q8_0>;
    case DType::Q2_K: return decodeGgml<DType::Q2_K>;
    case DType::Q3_K: return decodeGgml<DType::Q3_K>;
    case DType::Q4_K: return decodeGgml<DType::Q4_K>;
    case DType::Q5_K: return decodeGgml<DType::Q5_K>;
    case DType::Q6_K: return decodeGgml<DType::Q6_K>;
    case DType::IQ4_NL: return decodeGgml<DType::IQ4_NL>;
    case DType::IQ4_XS: return decodeGgml<DType::IQ4_XS>;
    default: return nullptr;
    }
}

// The reference dot: the whole run decoded, products summed in double.
template <DType T>
float referenceDot(const uint8_t* w, const float* x, int64_t n)
{
    std::vector<float> values(static_cast<size_t>(n));
    referenceDecoder(T)(w, values.data(), n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i)
        sum += static_cast<double>(values[static_cast<size_t>(i)]) * static_cast<double>(x[i]);
    return static_cast<float>(sum);
}

// The portable dot: 256 values at a time through a buffer on the stack.
template <DType T>
float portableDot(const uint8_t* w, const float* x, int64_t n)
{
    constexpr int64_t kChunk = 256; // a multiple of every block size (32, 256)
    const DTypeLayout layout = dtypeLayout(T);
    const RowDecodeFn decode = referenceDecoder(T);
    float buf[kChunk];
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = n - i < kChunk ? n - i : kChunk;
        decode(w + i / layout.blockElems * layout.blockBytes, buf, len);
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int64_t j = 0; j < len; ++j)
            part += buf[j] * x[i + j];
        sum += part;
    }
    return sum;
}

template <DType T>
RowKernels kernelsOf(bool reference)
{
    return {referenceDecoder(T), reference ? referenceDot<T> : portableDot<T>};
}

RowKernels scalarKernels(DType t, bool reference)
{
    switch (t) {
    case DType::F32: return kernelsOf<DType::F32>(reference);
    case DType::F16: return kernelsOf<DType::F16>(reference);
    case DType::BF16: return kernelsOf<DType::BF16>(reference);
    case DType::Q4_0: return kernelsOf<DType::Q4_0>(reference);
    case DType::Q4_1: return kernelsOf<DType::Q4_1>(reference);
    case DType::Q5_0: return kernelsOf<DType::Q5_0>(reference);
    case DType::Q5_1: return kernelsOf<DType::Q5_1>(reference);
    case DType::Q8_0: return kernelsOf<DType::Q8_0>(reference);
    case DType::Q2_K: return kernelsOf<DType::Q2_K>(reference);
    case DType::Q3_K: return kernelsOf<DType::Q3_K>(reference);
    case DType::Q4_K: return kernelsOf<DType::Q4_K>(reference);
    case DType::Q5_K: return kernelsOf<DType::Q5_K>(reference);
    case DType::Q6_K: return kernelsOf<DType::Q6_K>(reference);
    case DType::IQ4_NL: return kernelsOf<DType::IQ4_NL>(reference);
    case DType::IQ4_XS: return kernelsOf<DType::IQ4_XS>(reference);
    default:
        fail(ErrorCode::UnsupportedDType, "", "the engine cannot compute with " + std::string(dtypeName(t)) + " weights");
    }
}

} // namespace

bool hasRowKernels(DType t)
{
    return referenceDecoder(t) != nullptr;
}

RowKernels referenceRowKernels(DType t)
{
    return scalarKernels(t, true);
}

RowKernels rowKernels(DType t)
{
    RowKernels k = scalarKernels(t, false);
    if (kernelLevel() != KernelLevel::Portable) {
        const RowKernels fast = avx512::rowKernels(t);
        if (fast.decode)
            k.decode = fast.decode;
        if (fast.dot)
            k.dot = fast.dot;
    }
    return k;
}

float dotF32(const float* a, const float* b, int64_t n)
{
    if (kernelLevel() != KernelLevel::Portable)
        return avx512::dotF32(a, b, n);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i)
        sum += a[i] * b[i];
    return sum;
}

} // namespace ll
