#pragma once
// Quantization to ggml's block formats, byte for byte as llama.cpp writes
// them: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (quantize_row_*_ref), IQ4_NL (quantize_iq4_nl) and the k-quants
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (their reference scale searches). With an
// importance vector (llama.cpp's imatrix: mean squared activation per input
// column) the scale searches minimise the importance-weighted error instead,
// as llama.cpp's quantize_row_*_impl do. Q8_0 ignores importance, as llama.cpp.
// Decode the result with ll::dequantizeGgml (model/ggml_dequant.h).
#include "model/dtype.h"

#include <cstdint>
#include <vector>

namespace ll {

bool canQuantizeGgml(DType t);

// n values (a multiple of the type's block size: 32, or 256 for k-quants) to
// n / block blocks. importance, when given, has n non-negative weights and x is
// taken as ONE row (the legacy types' weighting uses the row's mean square).
// Throws InvalidArgument for NaN / Inf values or a bad length, UnsupportedDType
// for other types. Threaded over blocks; the bytes equal quantizeGgmlRef's.
std::vector<uint8_t> quantizeGgml(DType t, const float* x, int64_t n, const float* importance = nullptr);

// quantizeGgml without importance on the calling thread only, into out (the
// type's bytes for n values): for callers that run their own threads (the
// exporters' band workers), where an OpenMP team per call would spin between calls.
void quantizeGgmlSerial(DType t, const float* x, int64_t n, uint8_t* out);
// The same for `rows` rows of `cols` values each weighted by `importance`
// (cols values, an imatrix entry), as quantizeGgmlRows does them.
void quantizeGgmlRowsSerial(DType t, const float* x, int64_t rows, int64_t cols, const float* importance, uint8_t* out);

// The serial scalar reference (llama.cpp's algorithms as written there).
std::vector<uint8_t> quantizeGgmlRef(DType t, const float* x, int64_t n, const float* importance = nullptr);

// A (rows, cols) row-major matrix, row by row, as llama-quantize does a
// tensor; importance has cols weights shared by every row. Threaded over rows.
std::vector<uint8_t> quantizeGgmlRows(DType t, const float* x, int64_t rows, int64_t cols,
                                      const float* importance = nullptr);

// The type llama-quantize uses for a tensor with rows of `cols` values when
// rows are not a whole number of t's blocks (llama.cpp llama_tensor_get_type):
// Q2_K, Q3_K -> IQ4_NL; Q4_K -> Q5_0; Q5_K -> Q5_1; Q6_K -> Q8_0; F16 when the
// row does not fill that type's 32-value blocks either. t itself when the rows
// fit; other types have no fallback (llama.cpp stops there too): t, and
// quantizing then throws InvalidArgument.
DType ggmlFallbackType(DType t, int64_t cols);

// Storage bits per weight of a ggml type (block bytes * 8 / block values): Q4_0 4.5, Q4_K 4.5, Q6_K 6.5625.
double ggmlBitsPerWeight(DType t);

} // namespace ll
