#pragma once
// Splitting a token stream into evaluation windows and running them through
// one or more models in batches, handing back the logits of the scored
// positions chunk by chunk (so a 49k-vocabulary head never needs all logits).
#include "engine/transformer.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace ll {

class Progress;

enum class ScoringProtocol {
    // Every window scores positions 1..ctx-1 from their prefix (the protocol of
    // LayerLab's reference numbers and of most papers' "non-overlapping" PPL).
    Full,
    // llama.cpp's `perplexity`: each window starts with BOS (replacing its first
    // token) and only its second half, positions ctx/2+1 .. ctx-1, is scored.
    LlamaCpp,
};

struct ScoringOptions {
    int64_t context = 256;            // tokens per window
    ScoringProtocol protocol = ScoringProtocol::Full;
    int64_t maxWindows = 0;           // 0: every whole window of the text (the tail is dropped)
    int64_t windowsPerBatch = 0;      // 0: about 4096 tokens, at least one window per thread
    // LlamaCpp only: the token each window starts with. llama.cpp puts BOS there
    // when its vocabulary adds BOS, else keeps the text's token (-1 here).
    // kModelBos: the model's configured BOS, if it has one.
    static constexpr int32_t kModelBos = -2;
    int32_t windowStartToken = kModelBos;
};

// Which windows and positions are scored.
struct WindowPlan {
    int64_t windows = 0;
    int64_t context = 0;
    int64_t firstPredictor = 0;      // position whose logits predict the first scored token
    int64_t scoredPerWindow = 0;     // positions firstPredictor .. context-2 predict the next token
    int64_t windowsPerBatch = 0;
    int64_t tokensScored() const { return windows * scoredPerWindow; }
};
// Throws InvalidArgument when the text has less than one window.
WindowPlan planWindows(int64_t tokens, const ScoringOptions& options);

// One chunk of scored positions: logits (rows, vocab) per model and the tokens they should predict.
struct ScoredChunk {
    std::span<const MatrixRM* const> logits;
    std::span<const int32_t> targets;
    int64_t firstRow = 0;            // index of the chunk's first row among all scored positions
};

// Runs every model over the windows of `tokens` (batch by batch, progress per
// batch, cancellable between batches) and calls onChunk for every chunk of
// scored positions. Chunks of one batch come from several threads at once, in
// no particular order, for disjoint rows: onChunk must only write the results
// of its own rows (firstRow .. firstRow + rows - 1).
void scoreWindows(std::span<const Transformer* const> models, std::span<const int32_t> tokens,
                  const ScoringOptions& options, Progress* progress,
                  const std::function<void(const ScoredChunk&)>& onChunk);

// The hidden states of every evaluation window at the input of every block of
// one model, kept (in memory, past a budget in a temporary file: tokens x
// hidden x 4 bytes per block) so that a model differing from it only from
// block `first` on can be scored by running blocks first..L-1 alone. The
// windows are grouped as scoreWindows groups them, so a score from the cache
// is bit for bit the score of a whole forward pass.
class BlockInputCache {
public:
    BlockInputCache(const Transformer& model, std::span<const int32_t> tokens, const ScoringOptions& options,
                    uint64_t memoryBudgetBytes, Progress* progress = nullptr);
    ~BlockInputCache();
    BlockInputCache(const BlockInputCache&) = delete;
    BlockInputCache& operator=(const BlockInputCache&) = delete;

    int layers() const;
    uint64_t bytes() const;
    // Rows of windows [w0, w1) at block `block`'s input (a view into the cache).
    ConstMatrixRef rows(int block, int64_t w0, int64_t w1) const;

private:
    struct Impl;
    Impl* impl_;
};

// scoreWindows for one model that equals the cache's model before block
// `first`: each window's forward pass starts from the cached input of `first`.
void scoreWindowsFrom(const Transformer& model, const BlockInputCache& cache, int first, std::span<const int32_t> tokens,
                      const ScoringOptions& options, Progress* progress,
                      const std::function<void(const ScoredChunk&)>& onChunk);

} // namespace ll
