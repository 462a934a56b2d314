#pragma once
// FLAP on a whole model (prune/flap.h has the per-layer pieces): one pass of
// the calibration text through the unchanged model gives every block's mean
// and variance of o_proj's and down_proj's inputs; KV groups are scored by
// the fluctuation of their o_proj channels, MLP neurons by that of their
// down_proj channel; the lowest go, and the removed channels' mean
// contributions become o_proj's and down_proj's biases.
//
// Structure. FLAP's "AL-AM" standardizes each block's scores per module and
// prunes by one global threshold, which gives every block its own widths.
// Transformers' Llama config has one intermediate_size and one head count,
// and llama.cpp's llama loader one n_ff for every layer, so per-block widths
// would not export to either. LayerLab keeps the global threshold for the
// split between the modules — how many KV groups and how many neurons go, in
// all — and removes that many in every block ("adaptive"); "uniform" removes
// the ratio of each module (FLAP's UL-UM).
//
// Biases: llama-family models get o_proj and down_proj biases (and zero q, k,
// v, gate and up biases, so that transformers' attention_bias / mlp_bias
// configs reload them); GGUF exports carry them as attn_output.bias and
// ffn_down.bias, which llama.cpp's llama loader reads.
#include "pipeline/model_compression.h"

#include <nlohmann/json.hpp>

namespace ll {

struct FlapOptions {
    double ratio = 0.2;          // share of the attention and MLP weights removed
    enum class Structure { Adaptive, Uniform } structure = Structure::Adaptive;
    bool compensate = true;      // the bias compensation
    CalibrationOptions calibration;
};

struct FlapResult {
    ModelCompressionResult compression; // layers: q, k, v, o, gate, up, down of every block
    int64_t groupsBefore = 0, groupsRemoved = 0;   // KV groups per block
    int64_t neuronsBefore = 0, neuronsRemoved = 0; // MLP neurons per block
    // Per block: the fluctuation score of each KV group and of each neuron (the GUI's bars).
    std::vector<std::vector<double>> groupScores, neuronScores;
    // {"method": "flap", "structure", "compensated", "kv_groups": [before, after], "neurons": [...], ...}
    nlohmann::json toJson() const;
};

// Throws InvalidArgument for a ratio outside [0, 1), without calibration
// text, or one that would leave a block without a KV group or a neuron;
// UnsupportedArch for families other than llama (their configs cannot hold
// the biases, or derive the head size from the hidden size).
FlapResult flapPrune(const Model& source, const FlapOptions& options, std::span<const int32_t> calibrationTokens,
                     Progress* progress = nullptr);

} // namespace ll
