#pragma once
// Per-type block quantizers behind quantizeGgml (internal to core/quant).
// *Ref: llama.cpp's quantize_row_*_ref, the path llama-quantize takes without
// an imatrix. *Weighted: its quantize_row_*_impl with per-value importance qw
// (one row of nPerRow values; qw[i] weighs x[i]). *Fast: the same bytes as
// *Ref from vectorisable loops.
#include "model/ggml_blocks.h"

#include <cstdint>

namespace ll::ggmlq {

using namespace ll::ggml;

void quantizeQ4_0Ref(const float* x, BlockQ4_0* y, int64_t k);
void quantizeQ4_1Ref(const float* x, BlockQ4_1* y, int64_t k);
void quantizeQ5_0Ref(const float* x, BlockQ5_0* y, int64_t k);
void quantizeQ5_1Ref(const float* x, BlockQ5_1* y, int64_t k);
void quantizeQ8_0Ref(const float* x, BlockQ8_0* y, int64_t k);

void quantizeQ4_0Fast(const float* x, BlockQ4_0* y, int64_t k);
void quantizeQ8_0Fast(const float* x, BlockQ8_0* y, int64_t k);

void quantizeQ4_0Weighted(const float* x, BlockQ4_0* y, int64_t nPerRow, const float* qw);
void quantizeQ4_1Weighted(const float* x, BlockQ4_1* y, int64_t nPerRow, const float* qw);
void quantizeQ5_0Weighted(const float* x, BlockQ5_0* y, int64_t nPerRow, const float* qw);
void quantizeQ5_1Weighted(const float* x, BlockQ5_1* y, int64_t nPerRow, const float* qw);

void quantizeIQ4_NLRef(const float* x, BlockIQ4_NL* y, int64_t k);
void quantizeIQ4_NLWeighted(const float* x, BlockIQ4_NL* y, int64_t nPerRow, const float* qw);

void quantizeQ2_KRef(const float* x, BlockQ2_K* y, int64_t k);
void quantizeQ3_KRef(const float* x, BlockQ3_K* y, int64_t k);
void quantizeQ4_KRef(const float* x, BlockQ4_K* y, int64_t k);
void quantizeQ5_KRef(const float* x, BlockQ5_K* y, int64_t k);
void quantizeQ6_KRef(const float* x, BlockQ6_K* y, int64_t k);

void quantizeQ2_KWeighted(const float* x, BlockQ2_K* y, int64_t nPerRow, const float* qw);
void quantizeQ3_KWeighted(const float* x, BlockQ3_K* y, int64_t nPerRow, const float* qw);
void quantizeQ4_KWeighted(const float* x, BlockQ4_K* y, int64_t nPerRow, const float* qw);
void quantizeQ5_KWeighted(const float* x, BlockQ5_K* y, int64_t nPerRow, const float* qw);
void quantizeQ6_KWeighted(const float* x, BlockQ6_K* y, int64_t nPerRow, const float* qw);

} // namespace ll::ggmlq
