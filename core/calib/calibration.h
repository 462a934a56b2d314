#pragma once
// Calibration: runs calibration text through a model and accumulates, for
// every linear input the methods need, streaming statistics (the activations
// themselves are never kept):
//   X^T X (in, in)          in double, its lower triangle (SparseGPT / GPTQ Hessians, SVD-LLM whitening, output errors)
//   token count
//   sum |x_j|, sum x_j^2, max |x_j| per input channel (ASVD's mean |x|, Wanda's norm, RMS)
//
// One linear input per (block, input role): the engine observes AttnQ (the
// input of q, k and v), AttnO, MlpUp (gate and up) and MlpDown; inputRoleOf()
// maps a linear's role to the input it reads.
//
// Accumulation: each observed window of `context` rows contributes a float
// partial X_w^T X_w (256 products per entry) that is added to the double
// accumulator. Partials of float products summed in double are exact unless
// their magnitudes span 2^29, so the result does not depend on how the
// engine spreads windows over threads.
//
// Protocol (shared/reference/stories260K_compression.json): the calibration set
// is the first 64 non-overlapping windows of 256 tokens of calib.txt, tokenized
// as the whole file with one BOS; every window starts at position 0.
//
// Sequential mode (the GPTQ / SparseGPT / Wanda protocol: "layers compressed in
// order with inputs from the already compressed earlier layers"): the
// statistics of block l come from the hidden states that went through the
// already replaced blocks 0..l-1.
//
// Streaming (forEachBlockStats, as GPTQ's reference code and llm-compressor's
// sequential pipeline): every calibration window's hidden states at the
// current block's input are kept (in memory, or past a budget in a temporary
// file), block l runs on them once for its statistics, the caller compresses
// it, and it runs again, compressed, to give block l + 1 its input. Each block
// is computed once (twice when sequential), and memory is the hidden states of
// the calibration set plus one block's statistics, never the model's
// activations for more than one batch of windows.
#include "engine/transformer.h"
#include "model/model.h"

#include <Eigen/Core>

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace ll {

class Progress;

struct CalibrationOptions {
    int64_t context = 256;        // tokens per window
    int64_t windows = 64;         // the first `windows` non-overlapping windows of the text
    int64_t windowsPerBatch = 0;  // windows per forward pass; 0: about 4096 tokens, >= one per thread
};

// The first windows * context tokens of a tokenized text. Throws
// InvalidArgument (saying how many windows the text has) when it is shorter.
std::vector<int32_t> calibrationWindows(std::span<const int32_t> tokens, const CalibrationOptions& options);

// Where element (i, j), i >= j, of an n x n lower triangle packed column by column sits.
inline size_t gramLowerIndex(int64_t n, int64_t i, int64_t j)
{
    return static_cast<size_t>(j * n - j * (j - 1) / 2 + (i - j));
}

// The input a linear reads: AttnK, AttnV -> AttnQ; MlpGate -> MlpUp; others unchanged.
Role inputRoleOf(Role linear);

// The statistics of one linear input over the calibration tokens.
struct InputStats {
    int block = -1;
    Role role = Role::Other;      // AttnQ, AttnO, MlpUp or MlpDown (see inputRoleOf)
    int64_t tokens = 0;
    // X^T X (in, in) in double, symmetric: its lower triangle packed column by
    // column (gramLowerIndex), half the bytes of the full matrix (485 MB at a
    // 7B's down_proj input); empty when not collected.
    std::vector<double> gramLower;
    Eigen::VectorXd sumAbs;       // (in,) sum over tokens of |x_j|
    Eigen::VectorXd sumSquares;   // (in,) sum over tokens of x_j^2
    Eigen::VectorXf maxAbs;       // (in,) max over tokens of |x_j|
    // GPTAQ's Σ_t (x̃_t − x_t)ᵀ x_t (in, in): x̃ the full-precision model's input,
    // x this one's (BlockStatsOptions::asymmetric); empty otherwise.
    Eigen::MatrixXf asymmetry;

    int64_t features() const { return sumAbs.size(); }
    Eigen::VectorXf meanAbs() const;   // sumAbs / tokens (ASVD)
    Eigen::VectorXf rms() const;       // sqrt(sumSquares / tokens)
    Eigen::VectorXf l2Norm() const;    // sqrt(sumSquares) = ||X_j||_2 (Wanda)
    bool hasGram() const { return !gramLower.empty(); }
    Eigen::MatrixXd gram() const;      // the full symmetric matrix in double
    Eigen::MatrixXf gramFloat() const; // the full symmetric matrix as float, for the layer methods
    void releaseGram();                // frees the double sums (once converted)
    // Bytes this record holds (the Gram matrix dominates).
    uint64_t bytes() const;
};

// Bytes the statistics of one block take: its four inputs' Gram matrices (when
// `gram`) and channel vectors.
uint64_t blockStatsBytes(const Transformer& model, int block, bool gram);

// Accumulates InputStats for the inputs of blocks [firstBlock, lastBlock] as
// the engine reports them (thread-safe). Once the forward pass reaches a block
// after lastBlock it throws an internal exception that collectInputStats
// catches: the rest of the pass is not computed.
class InputStatsCollector : public LinearInputObserver {
public:
    InputStatsCollector(int firstBlock, int lastBlock, int64_t windowLength, bool gram, int64_t layers,
                        const Progress* progress = nullptr);
    ~InputStatsCollector() override;
    void linearInput(int block, Role role, const ConstMatrixRef& x) override;

    // The statistics gathered so far, by block then AttnQ, AttnO, MlpUp, MlpDown
    // (inputs never observed are left out). Moves them out.
    std::vector<InputStats> take();

private:
    struct Impl;
    Impl* impl_;
};

// Runs `windows` (whole windows of options.context tokens, e.g. from
// calibrationWindows) through `model` in batches and returns the statistics
// of the inputs of blocks [firstBlock, lastBlock]; the forward passes stop after
// lastBlock. Progress per batch; throws Cancelled (checked in every observer call).
std::vector<InputStats> collectInputStats(const Transformer& model, std::span<const int32_t> windows,
                                          const CalibrationOptions& options, int firstBlock, int lastBlock, bool gram,
                                          Progress* progress = nullptr);

enum class CalibrationMode {
    OneShot,     // every block's statistics from the model as given
    Sequential,  // block l's statistics through the blocks 0..l-1 the caller already replaced
};
const char* calibrationModeName(CalibrationMode mode); // "one-shot", "sequential"

// Where a streaming calibration pass spent its wall time (seconds).
struct BlockStatsTimes {
    double embedding = 0;   // the windows' embeddings
    double forward = 0;     // block runs without statistics (to the first target; a sequential block once compressed)
    double statistics = 0;  // block runs with the statistics collector: that block's forward plus the Gram (Hessian) sums
    double compress = 0;    // the onBlock calls (the method itself)
};

struct BlockStatsOptions {
    CalibrationOptions calibration;
    CalibrationMode mode = CalibrationMode::Sequential;
    bool gram = true;
    // The calibration windows' hidden states (tokens x hidden floats) stay in
    // memory up to this size, else in a temporary file (util/spill_buffer.h).
    uint64_t activationBudgetBytes = uint64_t{2} << 30;
    BlockStatsTimes* times = nullptr; // filled in when given
    // Sequential only: also run the windows through the blocks as they were
    // before onBlock replaced them (a second stream of hidden states) and give
    // each input's InputStats::asymmetry (GPTAQ). Costs one more block run per
    // block, the second stream's memory and an (in, in) matrix per input.
    bool asymmetric = false;
};

// For each block of `blocks` (ascending, unique), in order: gathers the
// statistics of that block's inputs and calls onBlock(block, stats).
// Sequential: onBlock is expected to replace the block's weights in `model`
// (Transformer::setLinearWeight) before it returns; the next block's
// statistics see them. One-shot: onBlock must leave `model` unchanged.
// Memory: the hidden states of the windows plus the statistics of one block.
// Progress covers the block runs and the onBlock calls; cancellable.
void forEachBlockStats(Transformer& model, std::span<const int32_t> windows, std::span<const int> blocks,
                       const BlockStatsOptions& options,
                       const std::function<void(int block, std::vector<InputStats>& stats, Progress* progress)>& onBlock,
                       Progress* progress = nullptr);

} // namespace ll
