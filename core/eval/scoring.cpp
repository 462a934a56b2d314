#include "eval/scoring.h"

#include "util/threads.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>

namespace ll {

namespace {
constexpr int64_t kTokensPerBatch = 4096;
// Logits held at once per model: 16 Mi floats (64 MB), i.e. ~340 rows of a 49k vocabulary.
constexpr int64_t kLogitFloatsPerChunk = int64_t{1} << 24;
constexpr int64_t kActivationBytesPerThread = int64_t{128} << 20;
} // namespace

WindowPlan planWindows(int64_t tokens, const ScoringOptions& o)
{
    if (o.context < 2)
        fail(ErrorCode::InvalidArgument, "", "the context must hold at least 2 tokens");
    WindowPlan p;
    p.context = o.context;
    p.windows = tokens / o.context;
    if (o.maxWindows > 0)
        p.windows = std::min(p.windows, o.maxWindows);
    if (p.windows < 1)
        fail(ErrorCode::InvalidArgument, "",
             "the text has " + std::to_string(tokens) + " tokens, fewer than one window of " + std::to_string(o.context));
    p.firstPredictor = o.protocol == ScoringProtocol::LlamaCpp ? o.context / 2 : 0;
    p.scoredPerWindow = o.context - 1 - p.firstPredictor;
    // Auto: ~4096 tokens, and at least one window per thread (each thread runs its own windows).
    p.windowsPerBatch = o.windowsPerBatch > 0 ? o.windowsPerBatch
                                              : std::max<int64_t>({1, kTokensPerBatch / o.context, computeThreads()});
    p.windowsPerBatch = std::min(p.windowsPerBatch, p.windows);
    return p;
}

void scoreWindows(std::span<const Transformer* const> models, std::span<const int32_t> tokens,
                  const ScoringOptions& options, Progress* progress,
                  const std::function<void(const ScoredChunk&)>& onChunk)
{
    if (models.empty())
        fail(ErrorCode::InvalidArgument, "", "no model to evaluate");
    const int64_t vocab = models.front()->vocab();
    for (const Transformer* m : models)
        if (m->vocab() != vocab)
            fail(ErrorCode::InvalidArgument, "", "the models have different vocabularies (" + std::to_string(vocab)
                                                     + " and " + std::to_string(m->vocab()) + " tokens)");
    const WindowPlan plan = planWindows(static_cast<int64_t>(tokens.size()), options);
    const int64_t ctx = plan.context;
    const int32_t bos = options.windowStartToken == ScoringOptions::kModelBos
                            ? static_cast<int32_t>(models.front()->config().bosId)
                            : options.windowStartToken;
    if (options.protocol == ScoringProtocol::LlamaCpp && bos >= vocab)
        fail(ErrorCode::InvalidArgument, "", "window start token " + std::to_string(bos) + " is outside the vocabulary");
    const int64_t chunkRows = std::max<int64_t>(1, kLogitFloatsPerChunk / vocab);
    // Auto batches: a thread's windows hold about 16 activations of the model's
    // widest layer per token; keep that near kActivationBytesPerThread (a 7B
    // model: one window of 512 per thread; SmolLM: four).
    int64_t windowsPerBatch = plan.windowsPerBatch;
    if (options.windowsPerBatch <= 0) {
        const ModelConfig& c = models.front()->config();
        const int64_t widest = std::max<int64_t>({c.hidden, c.intermediate, 1});
        const int64_t perThread = std::clamp<int64_t>(kActivationBytesPerThread / (16 * 4 * widest * ctx), 1,
                                                      std::max<int64_t>(1, kTokensPerBatch / ctx));
        windowsPerBatch = std::min(plan.windows, perThread * computeThreads());
    }

    // Windows [w0, w1): forward, head on the scored rows chunk by chunk, onChunk.
    const auto scoreRange = [&](int64_t w0, int64_t w1) {
        const int64_t nw = w1 - w0;
        std::vector<int32_t> ids(tokens.begin() + w0 * ctx, tokens.begin() + w1 * ctx);
        if (options.protocol == ScoringProtocol::LlamaCpp && bos >= 0)
            for (int64_t w = 0; w < nw; ++w)
                ids[static_cast<size_t>(w * ctx)] = bos;
        // What each scored position predicts: the next token of the original text.
        std::vector<int32_t> targets;
        targets.reserve(static_cast<size_t>(nw * plan.scoredPerWindow));
        for (int64_t w = w0; w < w1; ++w)
            for (int64_t p = plan.firstPredictor; p < ctx - 1; ++p)
                targets.push_back(tokens[static_cast<size_t>(w * ctx + p + 1)]);
        std::vector<MatrixRM> hidden(models.size()), logits(models.size());
        std::vector<const MatrixRM*> logitPtrs(models.size());
        for (size_t m = 0; m < models.size(); ++m)
            hidden[m] = models[m]->hiddenBatch(ids, ctx);
        MatrixRM scoredHidden;
        const int64_t rows = nw * plan.scoredPerWindow;
        for (int64_t r0 = 0; r0 < rows; r0 += chunkRows) {
            const int64_t n = std::min(chunkRows, rows - r0);
            for (size_t m = 0; m < models.size(); ++m) {
                // Gather the scored rows (each window's unscored positions are skipped).
                scoredHidden.resize(n, hidden[m].cols());
                for (int64_t i = 0; i < n; ++i) {
                    const int64_t r = r0 + i;
                    scoredHidden.row(i) =
                        hidden[m].row((r / plan.scoredPerWindow) * ctx + plan.firstPredictor + r % plan.scoredPerWindow);
                }
                logits[m].resize(n, vocab);
                models[m]->applyHead(scoredHidden, logits[m]);
                logitPtrs[m] = &logits[m];
            }
            onChunk({logitPtrs, std::span<const int32_t>(targets).subspan(static_cast<size_t>(r0), static_cast<size_t>(n)),
                     w0 * plan.scoredPerWindow + r0});
        }
    };

    for (int64_t b0 = 0; b0 < plan.windows; b0 += windowsPerBatch) {
        throwIfCancelled(progress);
        const int64_t b1 = std::min(plan.windows, b0 + windowsPerBatch);
        // One group of windows per thread: no synchronisation inside a forward pass.
        const int64_t groups = std::min<int64_t>(computeThreads(), b1 - b0);
        runParallel(groups, [&](int64_t g) {
            scoreRange(b0 + (b1 - b0) * g / groups, b0 + (b1 - b0) * (g + 1) / groups);
        });
        if (progress)
            progress->report(static_cast<double>(b1) / static_cast<double>(plan.windows),
                             "window " + std::to_string(b1) + " of " + std::to_string(plan.windows));
    }
}

} // namespace ll
