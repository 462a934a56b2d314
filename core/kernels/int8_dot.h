#pragma once
// Integer dot products for decoding (one row of x at a time), as llama.cpp's
// vec_dot kernels compute them: x is quantized once per product to 8 bits in
// blocks of 256 values (ggml's Q8_K), and each weight row's integer codes are
// multiplied with it by the CPU's 8-bit dot instructions (AVX-512 VNNI), the
// block scales applied to the integer sums. Four times as many products per
// instruction as decoding the weights to float, and the weight bytes are read
// once; the price is x rounded to 8 bits (error bound in intDotErrorBound).
//
// Used by matmulStored's decoding path for Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K and Q8_0 rows of a
// multiple of 256 values, on CPUs with VNNI, unless QuantProducts::F32 is set
// (matmul.h). Every kernel has a scalar reference: the reference-decoded weights
// dotted in double with the dequantized x (tests/test_kernels.cpp).
#include "model/dtype.h"
#include "model/packed_grid.h"

#include <cstdint>

namespace ll {

constexpr int64_t kQ8Block = 256;

// 256 values of x: x_i ~ d * qs[i], |qs[i]| <= 127; bsums[j] = sum of qs[16 j .. 16 j + 15].
struct BlockQ8K {
    float d;
    int8_t qs[kQ8Block];
    int16_t bsums[kQ8Block / 16];
};
static_assert(sizeof(BlockQ8K) == 292);

// x (n values, a multiple of 256) to n / 256 blocks: d = max |x| / 127, qs
// rounded to nearest. A block with a NaN or infinite value gets d = NaN and
// zero codes, so the product is NaN as the float product would be.
void quantizeRowQ8K(const float* x, BlockQ8K* out, int64_t n);

// sum_i w_i * (d * qs)_i over n values (a multiple of 256) of w stored at w.
using Int8DotFn = float (*)(const uint8_t* w, const BlockQ8K* x, int64_t n);

// The fast kernel for weights of type t, or nullptr: no kernel for the type,
// no VNNI on this CPU, the portable kernel level, or QuantProducts::F32.
Int8DotFn int8DotKernel(DType t);
// True when t has a VNNI kernel (whether or not this CPU can run it).
bool hasInt8Dot(DType t);
// The scalar reference (every type with row kernels): the weights decoded by
// the reference decoder, dotted in double with d * qs.
float referenceInt8Dot(DType t, const uint8_t* w, const BlockQ8K* x, int64_t n);

// A bound on |dot(w, x) - dot(w, dequantized Q8K of x)|: x is off by at most
// d/2 per value, so the sum is off by at most sum over blocks of d/2 * sum |w_i|.
double int8DotErrorBound(const float* w, const BlockQ8K* x, int64_t n);

// Packed grid rows (model/packed_grid.h: an applied RTN, GPTQ, AWQ or HQQ
// layer) with an integer grid whose groups are runs of a multiple of 32
// columns: no act-order group index, no codebook or binary coding, no
// exceptions beside column scales, cols a multiple of 256. Each
// run of 32 columns lies in one group g and one Q8K block b, so
//   dot = sum over runs  scale_g d_b (sum code * qs - zero_g sum qs),
// the codes multiplied as unsigned bytes by VPDPBUSD, the zero point taken off
// with the block's 16-value sums. AWQ's column scales multiply x before it is
// quantized (gridInt8Input), as the float path multiplies the decoded weights.
using GridInt8DotFn = float (*)(const GridLayout& layout, const uint8_t* row, const BlockQ8K* x);
// True when the layout has a kernel (whether or not this CPU can run it).
bool gridHasInt8Dot(const GridLayout& layout);
// The fast kernel for the layout, or nullptr (as int8DotKernel).
GridInt8DotFn gridInt8DotKernel(const GridLayout& layout);
// The scalar reference: the row decoded by the reference decoder without its
// column scales, dotted in double with d * qs.
float referenceGridInt8Dot(const GridLayout& layout, const uint8_t* row, const BlockQ8K* x);
// The exceptions' share of a grid row's dot (model/packed_grid.h): each dense
// column's and outlier's value times x's d * qs there. The codes under them add
// 0, so the fast kernels add this to the grid's own dot.
float gridExceptionsInt8Dot(const GridLayout& layout, const uint8_t* row, const BlockQ8K* x);
// x (layout.cols values) times the layout's column scales, if any, as Q8K
// blocks into out (layout.cols / 256 blocks).
void gridInt8Input(const GridLayout& layout, const float* x, BlockQ8K* out);

} // namespace ll
