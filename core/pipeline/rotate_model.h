#pragma once
// QuaRot's rotations folded into a model's weights (Ashkboos et al., 2024,
// arXiv:2404.00456). The model computes the same function, but its weights
// and the activations between blocks have their outliers spread out, so they
// round better at 4 bits.
//
// For Llama-style models (RMSNorm, pre-norm; Llama, Mistral, Qwen2):
//   1. each RMSNorm's weight g folds into the linears that read it
//      (W ← W diag(g); g ← 1): RMSNorm(x Q) = RMSNorm(x) Q for orthogonal Q
//      only without the per-channel weight;
//   2. the residual stream is rotated by Q1 (hidden × hidden):
//      embedding E ← E Q1; q, k, v, gate, up, lm_head W ← W Q1 (their input
//      is now x Q1); o and down W ← Q1ᵀ W (their outputs land in the rotated
//      stream), biases b ← b Q1;
//   3. each value head is rotated by Qh (head_dim): v's rows of head h ← Qhᵀ,
//      o's columns of head h ← W Qh (attention mixes tokens, not channels, so
//      the rotation passes through it);
//   4. with `onlineDown`, down_proj's input is rotated by Qf (intermediate):
//      W_down ← W_down Qf, and the engine rotates its input x ← x Qf at run
//      time (it comes out of SiLU(gate) · up, where no weight can absorb it).
//      Such a model is only right in LayerLab's engine: exports refuse it.
// Before any quantization the rotated model's logits equal the original's up
// to float rounding.
#include "model/model.h"
#include "model/tensor_data.h"
#include "kernels/hadamard.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ll {

class Progress;

struct RotationOptions {
    uint64_t seed = 0;        // Q1, Qh and Qf are drawn from it
    bool onlineDown = false;  // also rotate down_proj's input (online, at run time)
};

// The three rotations of a model, drawn from options.seed.
struct ModelRotations {
    std::shared_ptr<const RandomHadamard> residual; // Q1 (hidden)
    std::shared_ptr<const RandomHadamard> head;     // Qh (head_dim)
    std::shared_ptr<const RandomHadamard> down;     // Qf (intermediate); null without onlineDown
};
ModelRotations modelRotations(const ModelConfig& config, const RotationOptions& options);

// Throws UnsupportedArch (naming the model) for families whose norms or
// layout the folding does not cover (LayerNorm with a mean, Gemma's 1 + g,
// parallel or post-norm blocks, fused qkv).
void checkRotatable(const Model& model);

struct RotatedTensor {
    std::string name;
    double kurtosisBefore = 0.0, kurtosisAfter = 0.0; // Pearson, of the weights (3 for a Gaussian)
};

struct ModelRotationResult {
    std::unique_ptr<Model> model;
    ModelRotations rotations;
    std::vector<RotatedTensor> tensors; // every tensor changed (norms set to 1 included)
    double seconds = 0.0;
    // {"method": "quarot", "seed", "online_down", "seconds", "tensors": [{"name", "kurtosis_before", "kurtosis_after"}]}
    nlohmann::json toJson(const RotationOptions& options) const;
};

ModelRotationResult rotateModel(const Model& source, const RotationOptions& options, Progress* progress = nullptr);

// The RMSNorm weight that scales linear t's input (q, k, v: the attention norm;
// gate, up: the MLP norm; the head: the final norm), as a row; empty for the
// others. Throws Malformed when the norm is missing. (SliceGPT folds it too.)
Eigen::RowVectorXf normWeightBefore(const Model& m, const LogicalTensor& t);

// One logical tensor as rotateModel leaves it (the GUI's preview: the
// histogram and kurtosis before and after). Norms become ones.
MatrixRM rotatedTensor(const Model& model, const LogicalTensor& t, const ModelRotations& rotations);

} // namespace ll
