#pragma once
// LLM.int8() (Dettmers et al. 2022), the weight side plus a simulation of its
// mixed-precision matrix product on captured inputs:
//   - outlier input columns: max |x_j| >= threshold (6.0 in the paper) over
//     the calibration tokens, or the topK largest max |x_j|; those columns of
//     W stay at 16 bits (the values as given; FP16 storage is assumed);
//   - every other weight: int8 "vector-wise" per output row,
//     scale_r = absmax_r / 127, q = round(w / scale_r) in [-127, 127].
// Bits: 8 per int8 weight, a 16-bit scale per row, 16 bits per kept value
// and a 32-bit index per kept column.
//
// The activation side (per-token absmax int8 of the non-outlier columns of X)
// changes the product, not the weights: simulated here on captured inputs
// (w8a8OutputError) and applied in the forward pass by quantizeModel's
// ActivationQuantization (quantize_model.h) through the engine's input hook.
#include "model/tensor_data.h"
#include "quant/quantized_layer.h"

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace ll {

// Symmetric absmax per output row at `bits` (2..8) bits: LLM.int8's vector-wise
// int8, SmoothQuant's W8, OS+'s and RPTQ's W4..W8.
struct IntRows {
    int bits = 8;
    MatrixRM dequantized;          // scale_r * q
    std::vector<int8_t> codes;     // rows * cols in [-(2^(b-1) - 1), 2^(b-1) - 1]
    Eigen::VectorXf scales;        // (rows,) absmax / (2^(b-1) - 1) (1 for an all-zero row)
};
IntRows intRowAbsmax(const MatrixRM& W, int bits = 8);
// Stores q as a `bits`-bit symmetric IntGrid (one scale per row, zero 2^(b-1)) in `packed`.
void packIntRows(const IntRows& q, PackedQuant& packed);

// Per-token (row) symmetric absmax quantization of activations X (tokens, in)
// to `bits` bits (levels +-(2^(b-1) - 1)); columns listed in `skipColumns`
// stay exact and do not count towards the token's absmax.
MatrixRM quantizeActivationsPerToken(const MatrixRM& X, int bits, const std::vector<int32_t>& skipColumns = {});

// In place, one token (row) at a time: x_c *= inputScale_c where given (the
// explicit SmoothQuant scale 1/s), then quantizeActivationsPerToken's rounding
// for the columns whose skip flag is 0 (skip: X.cols() flags, or nullptr).
// The run-time activation side of W8A8 (Transformer::setLinearInputTransform).
void quantizeActivationRows(Eigen::Ref<MatrixRM> X, int bits, const std::vector<char>* skip = nullptr,
                            const Eigen::VectorXf* inputScale = nullptr);

// The relative output error of a W8A8 product on captured inputs X (tokens, in):
//   Y  = X W^T,   Y^ = Q_tok(X diag(s)^-1) Wq^T
// where Wq (out, in) are the weights as stored (already multiplied by s when
// inputScale is set) and Q_tok quantizes per token except `fpColumns`.
double w8a8OutputError(const MatrixRM& W, const MatrixRM& Wq, const Eigen::VectorXf* inputScale, const MatrixRM& X,
                       int actBits, const std::vector<int32_t>& fpColumns = {});
// ‖Xq Wqᵀ − X Wᵀ‖ / ‖X Wᵀ‖ in double (0 when X Wᵀ is 0): the output error of a
// product with quantized activations Xq and weights Wq, whatever grids made them.
double quantizedProductError(const MatrixRM& X, const MatrixRM& Xq, const MatrixRM& W, const MatrixRM& Wq);

struct Int8OutlierOptions {
    double threshold = 6.0;        // max |x_j| at or above it: a 16-bit column
    int topK = 0;                  // > 0: the topK columns by max |x_j| instead of the threshold
    int actBits = 8;               // activation bits of the simulation (with inputs.samples)
};

// Outlier columns by activation magnitude, ascending.
std::vector<int32_t> activationOutlierColumns(const Eigen::VectorXf& maxAbs, double threshold, int topK);

// inputs.maxAbs is required; inputs.gram gives the (weight-only) output error,
// inputs.samples the W8A8 simulation (info "w8a8_output_error").
QuantizedLayer int8OutlierQuantize(const MatrixRM& W, const LayerInputs& inputs, const Int8OutlierOptions& options = {});

} // namespace ll
