#pragma once
// What a model-level step of a per-layer method returns, whatever the method
// (quantization, pruning, low rank, structured pruning): the edited model,
// one LayerOutcome per changed linear, and for W8A8 methods the activation
// quantization the forward pass runs. One type for every driver
// (quantize_model.h, model_compression.h, flap_model.h), so the recipe
// player, the CLI and the reports read one shape.
#include "calib/calibration.h"
#include "engine/kv_quant.h"
#include "model/model.h"
#include "quant/quantized_layer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ll {

// The activation side of W8A8 (SmoothQuant, LLM.int8), per block input; run
// in the forward pass by applyActivationQuantization (quantize_model.h).
struct ActivationQuantInput {
    int block = -1;
    Role inputRole = Role::Other;      // AttnQ (q,k,v), AttnO, MlpUp (gate,up), MlpDown
    Eigen::VectorXf smoothScale;       // SmoothQuant's and OS+'s s (empty: none)
    Eigen::VectorXf shift;             // OS+'s z: x − z is quantized, z added back exactly (empty: none)
    float staticRange = 0.0f;          // OS+: one static range for the (shifted, scaled) input; 0: per token
    Eigen::VectorXf channelLow, channelStep; // RPTQ: each channel's cluster range, lo and Δ (empty: none)
    float pairScale = 0.0f;            // OliVe: outlier-victim pairs on one static scale per tensor; 0: none
    std::vector<int32_t> fpColumns;    // LLM.int8's outlier columns, kept in float
};
// What the forward pass quantizes at run time besides the weights: the linears'
// inputs (W8A8 / W4A4) and the KV cache (kv-cache steps).
struct ActivationQuantization {
    int bits = 0;                      // 0: weight-only (every other method)
    std::vector<ActivationQuantInput> inputs;
    KvCacheQuantization kv;            // inactive unless a kv-cache step ran
    bool quantizesInputs() const { return bits != 0 && !inputs.empty(); }
    bool empty() const { return !quantizesInputs() && !kv.active(); }
};

// What happened to one linear.
struct LayerOutcome {
    std::string name;                  // logical name
    int block = -1;
    Role role = Role::Other;
    std::string method;                // "sparsegpt 50%", "svd rank 32", "neurons 25%", "gptq w4 g128"
    int64_t rowsBefore = 0, colsBefore = 0;
    int64_t rows = 0, cols = 0;        // the stored shape after (smaller for structured pruning)
    int64_t paramsBefore = 0;          // rows * cols
    int64_t paramsAfter = 0;           // nonzeros kept; k (out + in) for low rank; rows * cols after slicing or quantization
    double sparsity = 0.0;             // share of the original weights gone: 1 - paramsAfter / paramsBefore
    double weightError = 0.0;          // ||W - W^||_F / ||W||_F (structured: removed units as zeros)
    std::optional<double> outputError; // ||X (W - W^)^T||_F / ||X W^T||_F on the calibration inputs
    int64_t rank = 0;                  // low rank only (a quantizer's LoRC correction is in `quantized`)
    MatrixRM factorA, factorB;         // low rank only: W^ = A (out, k) B (k, in)
    // Quantization only: the bits by part, the method's loss and details; with
    // QuantizeModelOptions::keepLayerWeights also W^ and its codes (weights, packed).
    std::optional<QuantizedLayer> quantized;
    double seconds = 0.0;
};

// The outcome of quantizing t: the figures of q, which it keeps (weights and codes included).
LayerOutcome quantizedOutcome(const LogicalTensor& t, QuantizedLayer q, double seconds);

struct ModelCompressionResult {
    std::unique_ptr<Model> model;      // the source with the edited tensors
    std::vector<LayerOutcome> layers;  // in the model's order
    std::string method;                // "wanda 2:4", "svd-llm rank 50%", "neurons 25%", "gptq w4 g128"
    std::string statsMode;             // "sequential", "one-shot", "imatrix" or "none"
    int64_t calibrationTokens = 0;
    int64_t parametersBefore = 0;      // source model's parameterCount()
    int64_t storedParameters = 0;      // the new model's parameterCount() (shrinks when shapes do or layers are factored)
    // Parameters that remain: storedParameters less every pruned weight, low-rank
    // layers counted as k (out + in) (also with keepFactors = false). What the CLI prints as "parameters".
    int64_t parametersAfter = 0;
    double seconds = 0.0;
    BlockStatsTimes times;             // the streaming pass's breakdown (zero without calibration)
    // SmoothQuant, LLM.int8, ZeroQuant...: the run-time activation quantization
    // (applyActivationQuantization); empty for weight-only methods.
    ActivationQuantization activations;

    // Over the quantized linears: total bits / total weights (0 when none is quantized).
    double bitsPerWeight() const;
    int64_t quantizedWeights() const;
    // Sets the three parameter counts from the source and the edited model.
    void countParameters(const Model& source);
    // {"method", "stats_mode", "parameters", "parameters_before", "stored_parameters",
    //  "calibration_tokens", "seconds", "layers": [{"name", "method", "shape_before", "shape",
    //  "params_before", "params_after", "sparsity", "weight_error", "output_error", "seconds",
    //  "rank" (low rank)}]} (factors left out). With quantized layers also "bits_per_weight",
    //  "quantized_weights", "time_breakdown" (with calibration) and per layer "bits_per_weight",
    //  "bits": {...}, "loss", "info", "error_histogram" (when asked).
    nlohmann::json toJson(bool histograms = false) const;
};

} // namespace ll
