#pragma once
// OliVe (Guo et al., ISCA 2023, arXiv:2304.07493): outlier-victim pair
// quantization. Values are taken in adjacent pairs (2k, 2k+1 of a row). A
// normal value gets a b-bit integer code; an outlier (beyond the normal
// grid) gets a code in "abfloat", a small float grid that starts where the
// integers stop, and its pair partner — the victim — is set to 0, its code
// slot holding the identifier −2^(b−1) (a code no normal value uses) that
// tells the decoder the pair is an outlier pair. When both are outliers the
// first keeps its value. Memory-aligned: every value is still b bits.
//
// Grids in units of the row's scale s (the reference implementation's
// normalisation): normal values c · 32 / 2^B for c in [−(2^B − 1), 2^B − 1],
// B = b − 1; outliers ±2^e (1 + j / 2^m) for e in 5..8, m = B − 2, except 32
// (the normal grid's edge). The scale per row: s = α / max normal, α searched
// over 50–148 % of max(|mean ± 3σ|) of the row for the least squared error.
#include "model/tensor_data.h"

#include <cstdint>
#include <vector>

namespace ll {

struct OliveResult {
    MatrixRM dequantized;            // (rows, cols)
    std::vector<uint8_t> codes;      // rows * cols b-bit codes (two's complement in the low b bits)
    std::vector<float> scales;       // (rows,)
    int64_t outliers = 0, victims = 0;
};

// bits in [3, 8]. Throws InvalidArgument otherwise or for NaN / Inf.
OliveResult oliveQuantize(const MatrixRM& W, int bits);

// The grids in scale units, ascending magnitudes (positive half).
std::vector<float> oliveNormalMagnitudes(int bits);   // 0, 32/2^B, ..., (2^B − 1) · 32/2^B
std::vector<float> oliveOutlierMagnitudes(int bits);  // abfloat, all > 32

// Activations (the paper's W4A4 / W8A8): one static scale per tensor, found on
// the calibration rows X (tokens, in) as a row's scale is, over 50–148 % of
// max |mean ± 3σ| of all of X for the least total squared error.
float oliveTensorScale(const MatrixRM& X, int bits);
// Every row of X through the pairs on the fixed `scale`, in place (the engine's input hook).
void oliveQuantizeRows(Eigen::Ref<MatrixRM> X, float scale, int bits);

// Decodes one row of codes (pairs as encoded) to values in scale units.
// Throws Malformed for a pair that is not decodable (two identifiers, an
// identifier beside a normal code, an unused outlier code).
std::vector<float> oliveDecodeRow(const uint8_t* codes, int64_t n, int bits);

} // namespace ll
