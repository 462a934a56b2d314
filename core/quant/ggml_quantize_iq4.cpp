// ggml's IQ4_NL (32-value blocks, one FP16 scale, 4-bit indices into the
// non-linear table kIq4nlValues), as llama-quantize writes it: llama.cpp's
// quantize_iq4_nl (quantize_row_iq4_nl_impl with ntry = 7), with or without an
// imatrix. It is the type llama.cpp falls back to for Q2_K / Q3_K rows that are
// not a whole number of 256-value super-blocks (quant/ggml_quantize.h).
#include "quant/no_fma.h" // first: no fused multiply-adds in this file

#include "quant/ggml_quantize_impl.h"

#include "util/half.h"

#include <cmath>

namespace ll::ggmlq {

namespace {

// The index of the table value nearest to x (the lower one on ties), by bisection as llama.cpp.
int bestIndex(float x)
{
    const int8_t* v = kIq4nlValues;
    if (x <= v[0])
        return 0;
    if (x >= v[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < v[mid])
            hi = mid;
        else
            lo = mid;
    }
    return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

constexpr float kGroupMaxEps = 1e-15f;
constexpr int kTries = 7;

void quantizeBlock(const float* x, BlockIQ4_NL& y, const float* qw)
{
    float sigma2 = 0.0f; // over the block (the super-block of IQ4_NL is one block)
    for (int j = 0; j < kQK; ++j)
        sigma2 += x[j] * x[j];
    sigma2 *= 2.0f / kQK;
    float weight[kQK];
    for (int j = 0; j < kQK; ++j)
        weight[j] = qw ? qw[j] * std::sqrt(sigma2 + x[j] * x[j]) : x[j] * x[j];

    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j)
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    float d = 0.0f;
    if (amax >= kGroupMaxEps) {
        // Start from the scale that maps the extreme value onto the table's end, then try 2 * 7 others.
        float id = 1.0f / (-max / kIq4nlValues[0]);
        float sumqx = 0.0f, sumq2 = 0.0f;
        for (int j = 0; j < kQK; ++j) {
            const float q = kIq4nlValues[bestIndex(id * x[j])];
            sumqx += weight[j] * q * x[j];
            sumq2 += weight[j] * q * q;
        }
        d = sumqx / sumq2;
        float best = d * sumqx;
        for (int t = -kTries; t <= kTries; ++t) {
            id = (static_cast<float>(t) + kIq4nlValues[0]) / max;
            sumqx = sumq2 = 0.0f;
            for (int j = 0; j < kQK; ++j) {
                const float q = kIq4nlValues[bestIndex(id * x[j])];
                sumqx += weight[j] * q * x[j];
                sumq2 += weight[j] * q * q;
            }
            if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
    }
    y.d = floatToFp16(d);
    // Indices from the final (unrounded) scale.
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t L[kQK];
    for (int j = 0; j < kQK; ++j)
        L[j] = static_cast<uint8_t>(bestIndex(id * x[j]));
    for (int j = 0; j < kQK / 2; ++j)
        y.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kQK / 2] << 4));
}

} // namespace

void quantizeIQ4_NLRef(const float* x, BlockIQ4_NL* y, int64_t k)
{
    for (int64_t ib = 0; ib < k / kQK; ++ib)
        quantizeBlock(x + kQK * ib, y[ib], nullptr);
}

void quantizeIQ4_NLWeighted(const float* x, BlockIQ4_NL* y, int64_t nPerRow, const float* qw)
{
    for (int64_t ib = 0; ib < nPerRow / kQK; ++ib)
        quantizeBlock(x + kQK * ib, y[ib], qw + kQK * ib);
}

} // namespace ll::ggmlq
