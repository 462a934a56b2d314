#pragma once
// The per-layer result that every pruning and low-rank method returns, in the
// quantizers' shape: the reconstructed weights W^, parameters and bytes before
// and after, and the error report of layer/layer_error.h.
//
// Storage accounting (bits per stored value `valueBits`, 32 = F32 by default):
//   dense         rows * cols values
//   unstructured  the kept values + a 1-bit-per-weight bitmap
//   N:M           the kept values + ceil(log2 m) index bits per kept value
//                 (2 bits for 2:4, as NVIDIA's sparse tensor cores store it)
//   low rank      k * (rows + cols) values
// Joint sparsity + quantization stores each kept value in the grid's bits and
// adds the grid's scale / zero overhead (quant/rtn.h gridBitsPerWeight).
#include "model/tensor_data.h"
#include "layer/sparsity_mask.h"
#include "layer/layer_error.h"

#include <Eigen/Core>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ll {

// What a method may know about the layer's calibration inputs X (tokens, in):
// one type for quantization, pruning and low rank.
struct LayerInputs {
    const Eigen::MatrixXf* gram = nullptr; // (in, in) X^T X: GPTQ's Hessian, SparseGPT, whitening, AWQ's losses, the output error
    Eigen::VectorXf inputNorm;             // (in,) ||X_j|| or RMS (Wanda); taken from gram when empty
    Eigen::VectorXf meanAbs;               // (in,) mean |x_j| (AWQ, ASVD)
    Eigen::VectorXf maxAbs;                // (in,) max |x_j| (SmoothQuant, LLM.int8's outlier columns)
    const MatrixRM* samples = nullptr;     // (tokens, in) captured inputs (W8A8 activation simulation)
    const Eigen::MatrixXf* asymmetry = nullptr; // (in, in) Σ (x̃ − x)ᵀ x, x̃ the full-precision model's input (GPTAQ)
    // (in,) llama.cpp's imatrix entry of this linear (mean x_j² from a file):
    // ggml methods weigh their rounding by it instead of diag(XᵀX), as llama-quantize --imatrix.
    const std::vector<float>* importance = nullptr;
};

struct CompressedLayer {
    std::string method;                  // "sparsegpt 50%", "wanda 2:4", "svd rank 16"
    MatrixRM weights;                    // W^ (out, in)
    int64_t paramsBefore = 0, paramsAfter = 0;  // stored values (nonzeros, factor entries)
    double bytesBefore = 0.0, bytesAfter = 0.0;
    LayerErrorReport error;              // weight error, output error when a Gram matrix was given
    std::optional<SparsityMask> mask;    // pruning methods
    MatrixRM factorA, factorB;           // low rank: W^ = A (out, k) * B (k, in); empty otherwise

    double compressionRatio() const { return bytesAfter > 0.0 ? bytesBefore / bytesAfter : 0.0; }
};

// One point of an error curve (error vs sparsity, error vs rank).
struct ErrorCurvePoint {
    double x = 0.0;                      // the sparsity or the rank
    double weightError = 0.0;
    std::optional<double> outputError;
    int64_t paramsAfter = 0;
    double bytesAfter = 0.0;
};

double denseBytes(int64_t rows, int64_t cols, int valueBits);
double unstructuredBytes(const SparsityMask& mask, int valueBits);
double nmBytes(const SparsityMask& mask, const NMPattern& nm, int valueBits);
double lowRankBytes(int64_t rank, int64_t rows, int64_t cols, int valueBits);

// Fills weights, the dense "before" numbers and the error report (output
// error when inputs.gram is set); the caller sets method and the "after" numbers.
CompressedLayer makeCompressedLayer(const MatrixRM& W, MatrixRM What, const LayerInputs& inputs, int valueBits);

ErrorCurvePoint curvePoint(double x, const CompressedLayer& layer);

} // namespace ll
