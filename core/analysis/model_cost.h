#pragma once
// What a compressed model costs, for the Compare view: parameters, an
// estimate of its size in bytes (quantized linears at their bits per weight,
// the rest at their stored type), the compression ratio against the source,
// and the multiply-adds per token of a forward pass.
//
// And what a job will cost before it starts (docs/cost-model.md): the memory
// it allocates at its peak, part by part, the stored weights it reads through
// the mapping, and its floating-point operations, so that the GUI can refuse
// a job that cannot fit with a message that says what to change, and show
// how long it will take.
#include "recipe/apply.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ll {

struct ModelCost {
    int64_t parameters = 0;          // modelSize(): a tied head once, factored layers as k (out + in)
    double bytes = 0.0;              // modelSize(): the model as held (analysis/model_size.h)
    double sourceBytes = 0.0;        // modelSize() of the source
    double compressionRatio = 0.0;   // sourceBytes / bytes
    double bitsPerWeight = 0.0;      // over the block linears (CompressionState::linearBitsPerWeight)
    // FLOPs per generated token at `context` tokens of history (2 per multiply-add):
    // every linear (factored: k (out + in); pruned weights still counted, as a
    // dense kernel computes them), attention scores and values over the
    // context, and the LM head. Norms and activations are left out (< 1 %).
    double flopsPerToken = 0.0;
    double denseFlopsPerToken = 0.0; // the same for the source model
};

ModelCost estimateCost(const CompressionState& state, int64_t context);

// ---- Jobs ---------------------------------------------------------------

// One part of a job's memory, and what the user can change to shrink it.
struct MemoryPart {
    std::string what;        // "calibration activations"
    double bytes = 0.0;
    std::string remedy;      // "fewer calibration windows (64 now) or a shorter context (256)"
};

struct JobCost {
    std::string job;                   // "evaluation of 40 windows of 512 tokens"
    std::vector<MemoryPart> memory;    // anonymous memory the job allocates, at its peak
    double modelBytes = 0.0;           // stored weights it reads through the mapping (page cache)
    double spillBytes = 0.0;           // calibration activations past the in-memory budget: a temporary file
    double flops = 0.0;                // floating-point operations (2 per multiply-add)
    // Work bound by memory, not arithmetic (decoding, packing, checking the
    // packed form, the weight error of every layer a step writes), in seconds.
    double fixedSeconds = 0.0;

    double workingBytes() const;       // the sum of `memory`
    double seconds(double gflops) const { return (gflops > 0.0 ? flops / (gflops * 1e9) : 0.0) + fixedSeconds; }
    // The largest part (what to change first); nullptr when there is none.
    const MemoryPart* largestPart() const;
};

// The throughput assumed before LayerLab has measured one on this machine:
// the forward pass of the 1B model ran at 72 GFLOP/s on the development
// machine with one of its two cores busy elsewhere; kept on the low side, so
// that estimates err long. The GUI replaces it by the rate of its last evaluation.
constexpr double kAssumedGflops = 50.0;
// Per weight a step writes: reading it, encoding the result, checking the
// packed form and the weight error (measured 18-30 ns for RTN on the 1B model,
// where the rounding itself is 2 % of it).
constexpr double kStepSecondsPerWeight = 25e-9;

// Calibration text run through blocks 0..lastBlock (streaming, core/calib).
struct CalibrationShape {
    int64_t windows = 64;
    int64_t context = 256;
    int lastBlock = 0;                 // the last block whose statistics are gathered
    int statsBlocks = 1;               // blocks whose statistics are gathered (each a Gram per input)
    bool sequential = true;            // each statistics block runs twice (statistics, then compressed)
    bool grams = true;                 // X^T X per linear input (GPTQ, SparseGPT, output errors...)
    int threads = 2;
    double activationBudgetBytes = double(uint64_t{2} << 30); // BlockStatsOptions: past it, a temporary file
};

// Stored bytes of the weights a job reads through the mapping, every stored
// tensor once, edited ones (already in memory) left out: the whole model, or
// with `lastBlock` >= 0 what a pass through blocks 0..lastBlock reads (the
// embedding and those blocks).
double modelStoredBytes(const Model& model, int lastBlock = -1);
// The same for a list of logical tensors (the layers a data-free step reads).
double tensorStoredBytes(const Model& model, const std::vector<std::string>& names);
// 2 × multiply-adds per token of one block (its linears, and causal attention
// over `context` positions: on average context / 2 of history).
double blockFlopsPerToken(const Model& model, int block, int64_t context);
// Forward scratch per token row: hidden, residual and norm (3 × hidden), q, k,
// v and attention output, gate and up (2 × FFN), in F32.
double forwardBytesPerRow(const ModelConfig& config);

// Perplexity on `windows` windows of `context` tokens (`models` engines side
// by side: 2 for a comparison): one batch of about 4096 tokens (at least one
// window per thread) through the blocks, the head's logits in chunks of 64 MB
// per thread, the per-token results.
JobCost estimateEvaluation(const Model& model, int64_t windows, int64_t context, int threads, int models = 1);
// Hidden states of every window at the current block (in memory up to the
// budget, the rest in a temporary file), the Grams of one block (double), one
// batch's forward scratch; the block runs and the Gram products.
JobCost estimateCalibration(const Model& model, const CalibrationShape& shape);
// One recipe step on `targets` (logical names of block linears) of the state's
// model: the calibration pass when the step uses one (or, with output_error, a
// pass over at most kOutputErrorWindows windows), the largest layer's working
// copies in F32, the method's own work, and the compressed results kept in the new state.
JobCost estimateStep(const CompressionState& state, const RecipeStep& step, const std::vector<std::string>& targets,
                     const RecipeCalibration& calibration, int threads);
// The compression panel's preview of `step` on one tensor: the step on that
// tensor alone (its calibration pass through blocks 0..block, over
// `calibrationWindows`), the statistics for the error curve (one more pass
// when the step is calibrated or measures its output error), the curve's
// seven settings, and the before/after copies it shows.
JobCost estimatePreview(const CompressionState& state, const RecipeStep& step, const std::string& tensor,
                        int64_t calibrationWindows, int64_t context, int threads);
// Layer sensitivity: the base evaluation (with the kept log-probabilities
// when `compareLogits`), then per layer the step on that layer and one evaluation.
JobCost estimateSensitivity(const CompressionState& state, const RecipeStep& step, const std::vector<std::string>& targets,
                            int64_t windows, int64_t context, bool compareLogits, const RecipeCalibration& calibration,
                            int threads);
// Writing the model: one tensor at a time, decoded to F32 and encoded (two
// copies of the largest), streamed to the file.
JobCost estimateExport(const Model& model);

// Whether a job fits: its working memory plus the stored weights not yet
// resident (`modelResidentBytes`: what the process already maps, RssFile)
// against `availableBytes` (MemAvailable plus what the job can reuse), with a
// 10 % margin. When it does not, `message` says how much it needs, of what,
// and what to change.
struct FitCheck {
    bool fits = true;
    double neededBytes = 0.0;
    double availableBytes = 0.0;
    std::string message;
};
FitCheck checkFits(const JobCost& cost, double availableBytes, double modelResidentBytes = 0.0);

// "100 kB", "850 MB", "1.2 GB", "13.5 GB" (decimal units, as the refusal messages use).
std::string formatGigabytes(double bytes);

} // namespace ll
