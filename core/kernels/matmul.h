#pragma once
// y = x W^T with the weights W read in their stored type (kernels/stored_matrix.h).
//
//   decoding (a few rows of x): every weight row is read once and dotted with
//     the rows of x: by integer dot products with x quantized to 8 bits
//     (int8_dot.h) for Q4_K, Q5_K, Q6_K, Q8_0 and LayerLab's integer grids
//     (groups of a multiple of 32 columns) on CPUs with VNNI, otherwise
//     by the fused dequantize-and-dot kernels of row_kernels.h;
//   prefill (many rows): the weights are decoded panel by panel into a
//     buffer of a few MB that stays in cache, and multiplied by x with the F32
//     GEMM of kernels/gemm.h (F32 weights are used in place).
// No copy of the whole matrix is ever made.
#include "kernels/stored_matrix.h"

#include <cstdint>

namespace ll {

// y (m, n) = x (m, k) @ W^T, W (n, k); row-major with leading dimensions in
// floats. Splits the output columns over the compute threads when the product
// is large enough and the caller is not already in a parallel region.
void matmulStored(const float* x, int64_t ldx, const StoredMatrix& W, float* y, int64_t ldy, int64_t m);

// Rows of x up to which matmulStored takes the decoding path.
constexpr int64_t kMatmulRowsPath = 4;

// How the prefill multiplies BF16 weights on CPUs with AVX-512 BF16:
//   Native  x rounded to BF16, the CPU's BF16 dot products, F32 sums: twice the
//           F32 rate; what llama.cpp and PyTorch's BF16 matmul compute.
//   F32     the weights decoded to F32 (exact products of x and W), as every
//           other type and every CPU without BF16 instructions.
// LAYERLAB_BF16=f32 in the environment selects F32 at start-up.
enum class Bf16Products { Native, F32 };
void setBf16Products(Bf16Products p);
Bf16Products bf16Products();

// How the prefill multiplies F32 weights on CPUs with AVX-512:
//   Tiles  the AVX-512 tile GEMM every other type takes (the weights copied
//          panel by panel): 1.2x Eigen's speed in a -march=native build on this
//          machine, 2x in a portable one, whose Eigen is compiled for plain x86-64.
//   Eigen  Eigen's GEMM on the weights in place.
// LAYERLAB_F32_GEMM=eigen in the environment selects Eigen at start-up.
enum class F32Gemm { Eigen, Tiles };
void setF32Gemm(F32Gemm g);
F32Gemm f32Gemm();

// How the decoding path multiplies Q4_K, Q5_K, Q6_K, Q8_0 and integer grid
// weights on CPUs with AVX-512 VNNI:
//   Int8  x quantized to 8 bits per 256 values, integer dot products (what
//         llama.cpp computes for these types); about 3x the F32 rate.
//   F32   the weights decoded to F32 and dotted with x as it is.
// LAYERLAB_QDOT=f32 in the environment selects F32 at start-up.
enum class QuantProducts { Int8, F32 };
void setQuantProducts(QuantProducts p);
QuantProducts quantProducts();

// How the decoding path multiplies F16 weights on CPUs with AVX-512:
//   HalfX  x rounded to F16 once per product, both converted to F32 in the dot
//          (what llama.cpp computes for F16 weights: its vec_dot_type is F16);
//          x takes half the L1 space beside the streamed weights: 1.3x the
//          F32-x rate on rows of 8192, 1.2x on rows of 2048 (one thread).
//          Activations beyond F16's range (|x| > 65504) become infinite, as in llama.cpp.
//   F32    x as it is.
// LAYERLAB_F16DOT=f32 in the environment selects F32 at start-up.
enum class F16Products { HalfX, F32 };
void setF16Products(F16Products p);
F16Products f16Products();

} // namespace ll
