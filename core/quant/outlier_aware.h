#pragma once
// Outlier-aware weight quantization: a few sensitive weights stay at 16 bits,
// the rest go on an integer grid with GPTQ (or RTN), all counted in bits.
//
// OWQ spirit (Lee et al. 2024): whole input columns. Sensitivity of column j
//   H_jj * ||W_:,j - RTN(W)_:,j||^2   (the OBS estimate of the output error its
//   quantization causes, with H = X^T X); the `columns` most sensitive stay at
//   16 bits. With GPTQ they are swept last, so they absorb the updates of
//   every quantized column (OWQ's reordering), and they are left out of the
//   grid ranges. Cost: 16 bits per kept value + a 32-bit index per column.
//
// SpQR spirit (Dettmers et al. 2023): single weights. A first GPTQ pass gives
//   each weight's loss (w - q)^2 / [H^-1]_jj / 2; the `fraction` of weights
//   with the largest losses stay at 16 bits and a second pass quantizes the
//   rest around them (kept weights out of the grid ranges, error 0 when
//   reached). Cost: 16-bit value + 32-bit index per kept weight (a CSR-like
//   layout; SpQR's own stores 16-bit column indices and groups of 3-bit
//   statistics, which this does not attempt).
#include "model/tensor_data.h"
#include "quant/gptq.h"
#include "quant/quantized_layer.h"

#include <cstdint>
#include <vector>

namespace ll {

class Progress;

// Indices of the `k` most sensitive columns (ascending). H: (in, in).
std::vector<int32_t> owqSensitiveColumns(const MatrixRM& W, const Eigen::MatrixXf& H, const QuantGrid& grid, int64_t k);

struct OutlierAwareOptions {
    GptqOptions gptq;            // grid, damping, block size, act-order for the quantized part
    bool useGptq = true;         // false: RTN on the quantized part (the selection still needs H)
    int64_t columns = 0;         // OWQ: columns kept at 16 bits
    double fraction = 0.01;      // SpQR: share of weights kept at 16 bits
};

// inputs.gram is required.
QuantizedLayer owqQuantize(const MatrixRM& W, const LayerInputs& inputs, const OutlierAwareOptions& options,
                           Progress* progress = nullptr);
QuantizedLayer spqrQuantize(const MatrixRM& W, const LayerInputs& inputs, const OutlierAwareOptions& options,
                            Progress* progress = nullptr);

} // namespace ll
