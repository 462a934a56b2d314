#pragma once
// SmoothQuant (Xiao et al. 2023): migrate activation outliers into the weights
// with a per-input-channel scale, then W8A8.
//   s_j = max(max|x_j|, 1e-5)^alpha / max(max_i |W_ij|, 1e-5)^(1 - alpha)
//   (the weight maximum over every linear sharing the input, as smooth.py)
//   W' = W diag(s) (quantized int8 per output row, absmax),
//   X' = X diag(s)^-1 (quantized int8 per token at run time).
// For q,k,v and gate,up, diag(s)^-1 folds into the preceding norm's weight;
// o and down have no preceding norm, so their s stays an explicit per-channel
// input scale (16 bits per input channel in the bit count).
//
// Simulation here: the weight side in the model (W^ = Q8(W diag(s)) diag(s)^-1,
// exactly what folding does to the product) and, on captured inputs, the
// output error of the full W8A8 product (info "w8a8_output_error").
// The real W8A8 forward pass (folding into the norms, explicit 1/s for o and
// down, per-token int8 activations through Transformer::setLinearInputTransform)
// is quantizeModel's ActivationQuantization + applyActivationQuantization
// (quantize_model.h).
#include "model/tensor_data.h"
#include "quant/quantized_layer.h"

#include <Eigen/Core>

#include <span>

namespace ll {

struct SmoothQuantOptions {
    double alpha = 0.5;        // migration strength
    bool foldable = true;      // s folds into a preceding norm (q,k,v, gate,up); false: explicit input scale
    int actBits = 8;           // the simulation's activation bits (with inputs.samples)
    int weightBits = 8;        // symmetric per output row (OS+ and RPTQ take 4..8)
};

// s from max |x| (in,) and the linears sharing the input.
Eigen::VectorXf smoothQuantScales(const Eigen::VectorXf& actMax, std::span<const MatrixRM* const> Ws, double alpha);

// inputs.maxAbs is required unless `scales` is given.
QuantizedLayer smoothQuantLayer(const MatrixRM& W, const LayerInputs& inputs, const SmoothQuantOptions& options = {},
                                const Eigen::VectorXf* scales = nullptr);

} // namespace ll
