#pragma once
// Model-level weight quantization: pick the target linears (the pipeline's
// selectTargets: every q, k, v, o, gate, up, down by default), quantize each
// with a method of core/quant (quant_method.h), and produce a new Model whose
// target weights are replaced by their stored form (quant/packed_storage.h:
// packed codes that decode to the dequantized values bit for bit, or those
// values in F32 for the methods without one).
//
// Calibration statistics (core/calib, the protocol's 64 windows of 256 tokens):
//   GPTQ, OWQ, SpQR   sequential by default: block l is quantized with inputs
//                     that went through the already quantized blocks 0..l-1
//                     (the protocol; within a block every linear sees the
//                     block's unquantized inputs, as GPTQ's llama.py without
//                     --true-sequential).
//   AWQ, SmoothQuant, one-shot by default: statistics of the original model
//   LLM.int8          (llm-awq and smoothquant profile the FP model).
//   RTN, NF4, FP8,    need none; given calibration text, one-shot statistics
//   FP4, BCQ, ggml    are gathered only to report each layer's output error
//                     (ggml also uses diag(X^T X) as its importance).
// AWQ's scale search is shared by the linears that read one input (q,k,v;
// gate,up), as in llm-awq; its clip search skips q and k, as llm-awq does.
// SmoothQuant's scales likewise use the weight maxima of all of them.
// Input scales that cannot fold into a preceding op are counted in the bits:
// SmoothQuant's o / down; AWQ's o when v has fewer rows than o has inputs
// (grouped-query attention) and down without a gate (ungated MLPs).
#include "calib/calibration.h"
#include "engine/kv_quant.h"
#include "model/model.h"
#include "pipeline/model_compression.h"
#include "quant/quant_method.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ll {

class Progress;
class Transformer;

struct QuantizeModelOptions {
    QuantConfig config;
    std::string layers;                  // target pattern (empty: every block linear)
    StatsMode mode = StatsMode::Auto;
    CalibrationOptions calibration;      // the protocol: 64 windows of 256 tokens
    // SmoothQuant / LLM.int8: calibration tokens whose inputs are captured for
    // the W8A8 simulation (whole windows; 0: no simulation). Memory: this many
    // rows of every block input, 4 bytes per value.
    int64_t activationSampleTokens = 1024;
    // Keep each layer's dequantized weights and codes in the result
    // (LayerOutcome::quantized->weights / packed.codes); otherwise they are freed
    // once the model holds the stored form.
    bool keepLayerWeights = false;
    // llama.cpp's importance matrix by logical tensor name (pipeline/imatrix's
    // useImatrixParam reads the step's `imatrix` file into it): ggml methods
    // round with it, and the step then reads no calibration text.
    std::map<std::string, std::vector<float>> importance;
};

// Makes `t` (built from ModelCompressionResult::model) compute the W8A8
// products. SmoothQuant: every linear reading a smoothed input gets W^ diag(s)
// (the stored dequantized W^ = Q8(W diag s) diag(s)^-1, so Q8(W diag s) up to
// float rounding); for AttnQ / MlpUp, diag(s)^-1 folds into the preceding norm
// (Transformer::scaleNormOutput); for AttnO / MlpDown (and post-norm models) the
// input hook multiplies by 1/s explicitly. Then every listed input is quantized
// per token (symmetric absmax, `bits`), LLM.int8's outlier columns excepted.
// Replaces t's input transform and KV-cache quantization. Call once per Transformer.
void applyActivationQuantization(Transformer& t, const ActivationQuantization& a);

// `calibrationTokens`: the whole tokenized calibration text (its first
// calibration.windows windows are used), or empty. Methods that need
// statistics throw InvalidArgument without it. Cancellable (Cancelled), with
// progress; the source model is never changed.
ModelCompressionResult quantizeModel(const Model& source, const QuantizeModelOptions& options,
                                     std::span<const int32_t> calibrationTokens = {}, Progress* progress = nullptr);

} // namespace ll
