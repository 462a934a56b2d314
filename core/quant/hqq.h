#pragma once
// HQQ, half-quadratic quantization (Badri & Shaji, 2023,
// mobiusml.github.io/hqq_blog): an asymmetric integer grid per group whose
// zero point is fitted, without calibration data, to make the error small in
// an lp "norm" with p < 1, which cares about the many small errors more than
// about a few large ones (the outliers).
//
// Per (row, group) slice x with scale s = (max - min) / (2^b - 1) fixed:
//   minimise_z,e  |e|_p^p + beta/2 |e - (x - s (q(z) - z))|^2,  q(z) = clamp(round(x / s + z))
// solved by alternating (half-quadratic splitting), starting at z = -min / s:
//   e <- shrink_p(x - s (q - z), beta)   shrink_p(r) = sign(r) max(0, |r| - |r|^(p-1) / beta)
//   z <- mean(q - (x - e) / s)
//   beta <- kappa beta
// and stopping when the mean |x - x^| stops decreasing. The zero point stays a
// real number (stored as FP16 beside an FP16 scale).
#include "quant/grid.h"

#include <cstdint>
#include <vector>

namespace ll {

struct HqqOptions {
    int bits = 4;           // 1..8
    int groupSize = 64;     // input columns per (scale, zero); 0: per row
    double lpNorm = 0.7;    // p of the error term
    double beta = 10.0;     // initial weight of the quadratic coupling
    double kappa = 1.01;    // beta grows by this factor per iteration
    int iterations = 20;    // at most
};

struct HqqResult {
    MatrixRM dequantized;       // (rows, cols): scale * (code - zero)
    std::vector<uint8_t> codes; // rows * cols, row-major
    GridParams params;          // scales and (real) zeros per (row, group)
    double meanAbsErrorStart = 0.0; // the min-max grid's mean |x - x^|, before any iteration
    double meanAbsError = 0.0;      // after
};

// The proximal operator of |.|^p for the splitting above (the paper's eq. 6).
float hqqShrink(float r, double beta, double p);

// W: (out, in); groups run along the input dimension (the last one may be shorter).
HqqResult hqqQuantize(const MatrixRM& W, const HqqOptions& options);

} // namespace ll
