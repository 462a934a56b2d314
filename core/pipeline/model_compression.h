#pragma once
// Model-level pruning and low-rank factorization: pick the target linears by a
// regular expression on their logical names, run the per-layer method of
// core/prune or core/lowrank on each (with calibration statistics from
// core/calib where the method needs them), and produce a new Model whose
// edited tensors live in memory (replaceTensor) plus one result per layer.
//
// Targets: by default every q, k, v, o, gate, up, down weight inside the blocks
// (defaultTargetPattern()); embeddings, norms, biases and the LM head stay.
// A pattern is searched in the logical name ("blocks.3.mlp.down.weight"):
// "mlp" selects every MLP linear, "^blocks\.0\." the first block's.
//
// Calibration statistics:
//   Wanda, SparseGPT   sequential by default: block l is pruned with inputs that
//                      went through the already pruned blocks 0..l-1 (the
//                      protocol, and the Wanda and SparseGPT reference code).
//                      Within a block every linear sees the block's unpruned
//                      inputs (the references do the same).
//   ASVD, SVD-LLM      one-shot by default: statistics of the original model
//                      (the ASVD and SVD-LLM references profile it).
//   magnitude, SVD     need none; given calibration text, one-shot statistics
//                      are gathered only to report each layer's output error.
//
// Low-rank layers are stored in the model as their two factors A (out, k) and
// B (k, in) (replaceTensorFactored): the model's parameterCount() counts
// k (out + in), the engine computes (x B^T) A^T, and readLogical / readMatrix
// still return the dense product A B (statistics, later quantization, the
// exporters, which write A B as one dense matrix). keepFactors = false stores
// the dense product instead (the forward pass then costs out * in per row).
// The per-layer results carry the factors either way.
//
// Structured MLP pruning removes the same number of neurons from every block
// (a Hugging Face config has one intermediate_size) and shrinks gate / up rows,
// down columns (and the up / gate biases); ModelConfig.intermediate follows.
//
// Structured attention pruning removes the same number of KV groups (one KV
// head and the heads / kvHeads query heads that read it, see prune/structured.h)
// from every block: q rows, k and v rows (and their biases), o columns.
// ModelConfig.heads and kvHeads follow; headDim and hidden stay. Families whose
// Hugging Face config derives the head size from the hidden size (gpt2, opt,
// gpt_neox) cannot describe fewer heads and are refused.
#include "calib/calibration.h"
#include "lowrank/lowrank_layer.h"
#include "model/model.h"
#include "pipeline/compression_result.h"
#include "prune/prune_layer.h"
#include "prune/structured.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ll {

class Progress;

// ^blocks\.\d+\.(attn\.(q|k|v|o)|mlp\.(gate|up|down))\.weight$
const std::string& defaultTargetPattern();

// The linear weights inside the blocks whose logical name matches `pattern`
// (ECMAScript, searched; empty = the default), in the model's order. Throws
// InvalidArgument for a bad pattern or when it matches no block linear.
std::vector<const LogicalTensor*> selectTargets(const Model& model, const std::string& pattern);

enum class StatsMode {
    Auto,       // the method's default (see above)
    OneShot,    // statistics of the original model
    Sequential, // statistics through the already compressed earlier blocks
};

struct ModelPruneOptions {
    PruneConfig layer;                 // method, sparsity or N:M, SparseGPT block size and damping
    // Unset: the reference code's count rule for the method (layer.countRule is
    // ignored): Inclusive for magnitude and SparseGPT (`scores <= sort(scores)[int(s n)]`,
    // one weight more per matrix / block), Exact for Wanda (its reference sorts per row).
    // At 70 % magnitude on stories260K the one extra weight per matrix moves the
    // perplexity by 2 % (386.6 exact vs 395.06 inclusive = the reference).
    std::optional<CountRule> countRule;
    std::string layers;                // target pattern (empty: every block linear)
    StatsMode mode = StatsMode::Auto;
    CalibrationOptions calibration;    // the protocol: 64 windows of 256 tokens
};

struct ModelFactorizeOptions {
    LowRankMethod method = LowRankMethod::Svd;
    // Exactly one of: k = round(rankRatio * min(out, in)) (the protocol's svd_rank50),
    // or the smallest k keeping `energy` of the sum of squared singular values
    // (of W, W diag(s) for ASVD, W L for SVD-LLM).
    std::optional<double> rankRatio;
    std::optional<double> energy;
    double asvdAlpha = 0.5;
    std::string layers;
    StatsMode mode = StatsMode::Auto;
    CalibrationOptions calibration;
    bool keepFactors = true;           // false: store the dense product A B (see above)
};

struct StructuredMlpOptions {
    double ratio = 0.25;                       // fraction of every block's neurons removed
    StructuredScore score = StructuredScore::Magnitude; // ActivationAware needs calibration text
    CalibrationOptions calibration;
};

struct StructuredAttentionOptions {
    double ratio = 0.25;                       // fraction of every block's KV groups removed (floor of ratio * kvHeads)
    StructuredScore score = StructuredScore::Magnitude; // ActivationAware needs calibration text (o's input norms)
    CalibrationOptions calibration;
};

// `calibrationTokens`: the whole tokenized calibration text (its first
// calibration.windows windows are used), or empty. Methods that need
// statistics throw InvalidArgument without it. Cancellable (Cancelled), with
// progress; the source model is never changed.
ModelCompressionResult pruneModel(const Model& source, const ModelPruneOptions& options,
                                  std::span<const int32_t> calibrationTokens = {}, Progress* progress = nullptr);
ModelCompressionResult factorizeModel(const Model& source, const ModelFactorizeOptions& options,
                                      std::span<const int32_t> calibrationTokens = {}, Progress* progress = nullptr);
ModelCompressionResult pruneMlpNeurons(const Model& source, const StructuredMlpOptions& options,
                                       std::span<const int32_t> calibrationTokens = {}, Progress* progress = nullptr);
ModelCompressionResult pruneAttentionHeads(const Model& source, const StructuredAttentionOptions& options,
                                           std::span<const int32_t> calibrationTokens = {}, Progress* progress = nullptr);

// The whole text file tokenized with the model's tokenizer and one BOS (the protocol's tokenization).
std::vector<int32_t> tokenizeTextFile(const Model& model, const std::string& path);

} // namespace ll
