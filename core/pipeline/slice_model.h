#pragma once
// SliceGPT (Ashkboos et al., 2024, arXiv:2401.15024) with one rotation for the
// whole residual stream, so that the sliced model keeps its family's layout
// (transformers and llama.cpp load it with a smaller hidden size).
//
// The norms fold into the linears that read them (as QuaRot's rotation), the
// residual stream is rotated by the eigenvectors Q of the covariance of the
// normalised hidden states (every block's input and the final norm's, over
// the calibration tokens), and only the k = (1 − slicing)·d leading principal
// directions are kept: E ← E Q_k, readers W ← W diag(g) Q_k, writers
// W ← Q_kᵀ W. RMSNorm then divides by the RMS of k values instead of d: the
// norms' weights become √(d / k · kept share of the variance), the expected
// ratio of the two (‖x Q_k‖² / ‖x‖² is that share on average). The paper's per-block rotations
// with Q_lᵀQ_l+1 on the shortcuts fit the data better but need a shortcut
// matrix no standard checkpoint layout has.
// At slicing 0 the model computes the original's logits (a rotation).
#include "calib/calibration.h"
#include "model/model.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <span>
#include <vector>

namespace ll {

class Progress;

struct SliceOptions {
    double slicing = 0.25;            // share of the hidden dimensions removed, [0, 1)
    CalibrationOptions calibration;
};

struct SliceResult {
    std::unique_ptr<Model> model;
    std::vector<double> eigenvalues;  // of the covariance, descending (the PCA spectrum the preview plots)
    int64_t hiddenBefore = 0, hiddenAfter = 0;
    double keptEnergy = 0.0;          // share of the eigenvalues' sum kept
    std::vector<std::string> tensors; // every tensor changed
    int64_t calibrationTokens = 0;
    double seconds = 0.0;
    nlohmann::json toJson() const;
};

// Throws UnsupportedArch for families the folding does not cover (as rotations),
// InvalidArgument without calibration text or for a slicing outside [0, 1).
SliceResult sliceModel(const Model& source, const SliceOptions& options, std::span<const int32_t> calibrationTokens,
                       Progress* progress = nullptr);

} // namespace ll
