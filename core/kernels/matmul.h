#pragma once
// y = x W^T with the weights W read in their stored type (kernels/stored_matrix.h).
//
//   decoding (a few rows of x): every weight row is decoded once, straight
//     into registers or an L1 buffer, and dotted with the rows of x (the fused
//     dequantize-and-dot kernels of row_kernels.h);
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

} // namespace ll
