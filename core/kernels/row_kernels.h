#pragma once
// Per-type row kernels, in the manner of ggml's type_traits: for every stored
// type the engine computes with, how to turn a run of values into floats and
// how to take its dot product with a float vector without materialising it.
//
// Every kernel has a scalar reference (referenceRowKernels) that the fast
// paths are tested against (tests/test_kernels.cpp): decoding is bit-exact
// with the reference (the same float operations in the same order, no fused
// multiply-adds), dot products agree within a rounding bound.
#include "model/dtype.h"

#include <cstdint>

namespace ll {

// n values (a whole number of the type's blocks) from src into dst.
using RowDecodeFn = void (*)(const uint8_t* src, float* dst, int64_t n);
// sum_i w_i * x_i over n values (a whole number of blocks) of w stored at src.
using RowDotFn = float (*)(const uint8_t* w, const float* x, int64_t n);

struct RowKernels {
    RowDecodeFn decode = nullptr;
    RowDotFn dot = nullptr;
};

// True for F32, F16, BF16 and every ggml block type LayerLab decodes.
bool hasRowKernels(DType t);
// The fastest kernels for kernelLevel() (cpu_features.h). Throws UnsupportedDType.
RowKernels rowKernels(DType t);
// Scalar references: decoding as model/ggml_dequant.cpp (bit-exact with
// ggml's dequantize_row_*), dot products accumulated in double.
RowKernels referenceRowKernels(DType t);

// Dot product of two float vectors (the fast path where the CPU has one).
float dotF32(const float* a, const float* b, int64_t n);

} // namespace ll
