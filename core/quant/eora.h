#pragma once
// EoRA (Liu et al., 2024, "EoRA: Training-free Compensation for Compressed
// LLM with Eigenspace Low-Rank Approximation", arXiv:2410.21271): like LoRC,
// a rank-r correction B A of the compression error E = W - W^, but fitted in
// the eigenspace of the layer's input activations, so that it removes the
// error the OUTPUTS see rather than the error of the weights:
//   X^T X = Q diag(lambda) Q^T,  E' = E Q diag(lambda)^(1/2)
//   E' ~ U_r S_r V_r^T (truncated SVD),  B = U_r S_r^(1/2),  A = S_r^(1/2) V_r^T diag(lambda)^(-1/2) Q^T
// Since ||(E - B A) X^T||_F^2 = ||(E - B A) Q diag(lambda)^(1/2)||_F^2, this B A
// is the best rank-r correction in output error, at least as good as LoRC's
// (which is best in weight error). Eigenvalues below 1e-6 of their mean are
// raised to it (dead or dependent input channels), as the whitening of
// SVD-LLM here. The factors are counted at 16 bits, as LoRC's.
#include "model/tensor_data.h"
#include "quant/quantized_layer.h"

#include <cstdint>

namespace ll {

class Progress;

// `base` is any method's result for W; returns it with the correction added.
// Needs inputs.gram. rank 0 returns base unchanged; a rank above min(out, in)
// or a missing Gram matrix is InvalidArgument.
QuantizedLayer eoraCorrect(const MatrixRM& W, QuantizedLayer base, int64_t rank, const LayerInputs& inputs,
                           Progress* progress = nullptr);

} // namespace ll
