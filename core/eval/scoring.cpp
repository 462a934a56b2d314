#include "eval/scoring.h"

#include "util/spill_buffer.h"

#include "util/threads.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <memory>

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

namespace {

// Windows per batch: the caller's, or sized by the model's widest layer (a
// thread's windows hold about 16 activations of it per token; a 7B model: one
// window of 512 per thread; SmolLM: four).
int64_t batchWindows(const Transformer& model, const WindowPlan& plan, const ScoringOptions& options)
{
    if (options.windowsPerBatch > 0)
        return plan.windowsPerBatch;
    const ModelConfig& c = model.config();
    const int64_t widest = std::max<int64_t>({c.hidden, c.intermediate, 1});
    const int64_t perThread = std::clamp<int64_t>(kActivationBytesPerThread / (16 * 4 * widest * plan.context), 1,
                                                  std::max<int64_t>(1, kTokensPerBatch / plan.context));
    return std::min(plan.windows, perThread * computeThreads());
}

// The windows of every batch, split into one group per thread (each group runs
// its own forward pass); fn(w0, w1) per group, progress per batch.
void forEachGroup(const WindowPlan& plan, int64_t windowsPerBatch, Progress* progress,
                  const std::function<void(int64_t w0, int64_t w1)>& fn)
{
    for (int64_t b0 = 0; b0 < plan.windows; b0 += windowsPerBatch) {
        throwIfCancelled(progress);
        const int64_t b1 = std::min(plan.windows, b0 + windowsPerBatch);
        const int64_t groups = std::min<int64_t>(computeThreads(), b1 - b0);
        runParallel(groups, [&](int64_t g) { fn(b0 + (b1 - b0) * g / groups, b0 + (b1 - b0) * (g + 1) / groups); });
        if (progress)
            progress->report(static_cast<double>(b1) / static_cast<double>(plan.windows),
                             "window " + std::to_string(b1) + " of " + std::to_string(plan.windows));
    }
}

// The ids a window is run with: the text's, the first replaced by BOS under llama.cpp's protocol.
std::vector<int32_t> windowIds(std::span<const int32_t> tokens, int64_t w0, int64_t w1, int64_t ctx,
                               const ScoringOptions& options, int32_t bos)
{
    std::vector<int32_t> ids(tokens.begin() + w0 * ctx, tokens.begin() + w1 * ctx);
    if (options.protocol == ScoringProtocol::LlamaCpp && bos >= 0)
        for (int64_t w = 0; w < w1 - w0; ++w)
            ids[static_cast<size_t>(w * ctx)] = bos;
    return ids;
}

int32_t startToken(const Transformer& model, const ScoringOptions& options)
{
    return options.windowStartToken == ScoringOptions::kModelBos ? static_cast<int32_t>(model.config().bosId)
                                                                 : options.windowStartToken;
}

using HiddenFn = std::function<MatrixRM(size_t model, int64_t w0, int64_t w1, const std::vector<int32_t>& ids)>;

// Windows [w0, w1): final hidden states of every model, the head on the scored
// rows chunk by chunk, onChunk.
void scoreGroup(std::span<const Transformer* const> models, std::span<const int32_t> tokens, const WindowPlan& plan,
                const ScoringOptions& options, int32_t bos, int64_t w0, int64_t w1, const HiddenFn& hiddenOf,
                const std::function<void(const ScoredChunk&)>& onChunk)
{
    const int64_t ctx = plan.context, nw = w1 - w0;
    const int64_t vocab = models.front()->vocab();
    const int64_t chunkRows = std::max<int64_t>(1, kLogitFloatsPerChunk / vocab);
    const std::vector<int32_t> ids = windowIds(tokens, w0, w1, ctx, options, bos);
    // What each scored position predicts: the next token of the original text.
    std::vector<int32_t> targets;
    targets.reserve(static_cast<size_t>(nw * plan.scoredPerWindow));
    for (int64_t w = w0; w < w1; ++w)
        for (int64_t p = plan.firstPredictor; p < ctx - 1; ++p)
            targets.push_back(tokens[static_cast<size_t>(w * ctx + p + 1)]);
    std::vector<MatrixRM> hidden(models.size()), logits(models.size());
    std::vector<const MatrixRM*> logitPtrs(models.size());
    for (size_t m = 0; m < models.size(); ++m)
        hidden[m] = hiddenOf(m, w0, w1, ids);
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
}

} // namespace

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
    const int32_t bos = startToken(*models.front(), options);
    if (options.protocol == ScoringProtocol::LlamaCpp && bos >= vocab)
        fail(ErrorCode::InvalidArgument, "", "window start token " + std::to_string(bos) + " is outside the vocabulary");
    const HiddenFn whole = [&](size_t m, int64_t, int64_t, const std::vector<int32_t>& ids) {
        return models[m]->hiddenBatch(ids, plan.context);
    };
    forEachGroup(plan, batchWindows(*models.front(), plan, options), progress, [&](int64_t w0, int64_t w1) {
        scoreGroup(models, tokens, plan, options, bos, w0, w1, whole, onChunk);
    });
}

struct BlockInputCache::Impl {
    int layers = 0;
    int64_t context = 0, hidden = 0, windows = 0;
    std::unique_ptr<SpillBuffer> buffer; // layers blocks of (windows x context, hidden)

    float* block(int l) const { return buffer->data() + static_cast<size_t>(l) * static_cast<size_t>(windows * context * hidden); }
};

BlockInputCache::BlockInputCache(const Transformer& model, std::span<const int32_t> tokens, const ScoringOptions& options,
                                 uint64_t memoryBudgetBytes, Progress* progress)
    : impl_(new Impl)
{
    std::unique_ptr<Impl> guard(impl_);
    const WindowPlan plan = planWindows(static_cast<int64_t>(tokens.size()), options);
    const int32_t bos = startToken(model, options);
    Impl& c = *impl_;
    c.layers = static_cast<int>(model.layers());
    c.context = plan.context;
    c.hidden = model.config().hidden;
    c.windows = plan.windows;
    c.buffer = std::make_unique<SpillBuffer>(static_cast<size_t>(c.layers) * static_cast<size_t>(c.windows * c.context * c.hidden)
                                                 * sizeof(float),
                                             memoryBudgetBytes, "block inputs of the evaluation windows");
    forEachGroup(plan, batchWindows(model, plan, options), progress, [&](int64_t w0, int64_t w1) {
        MatrixRM x = model.embedWindows(windowIds(tokens, w0, w1, c.context, options, bos), c.context);
        for (int l = 0; l < c.layers; ++l) {
            Eigen::Map<MatrixRM>(c.block(l), c.windows * c.context, c.hidden).middleRows(w0 * c.context, x.rows()) = x;
            model.runBlocks(x, c.context, l, l);
        }
    });
    guard.release();
}

BlockInputCache::~BlockInputCache()
{
    delete impl_;
}

int BlockInputCache::layers() const
{
    return impl_->layers;
}

uint64_t BlockInputCache::bytes() const
{
    return impl_->buffer->size();
}

ConstMatrixRef BlockInputCache::rows(int block, int64_t w0, int64_t w1) const
{
    const Impl& c = *impl_;
    if (block < 0 || block >= c.layers || w0 < 0 || w1 > c.windows || w0 > w1)
        fail(ErrorCode::OutOfRange, "", "no cached input for block " + std::to_string(block) + ", windows "
                                            + std::to_string(w0) + ".." + std::to_string(w1));
    return Eigen::Map<const MatrixRM>(c.block(block), c.windows * c.context, c.hidden)
        .middleRows(w0 * c.context, (w1 - w0) * c.context);
}

void scoreWindowsFrom(const Transformer& model, const BlockInputCache& cache, int first, std::span<const int32_t> tokens,
                      const ScoringOptions& options, Progress* progress,
                      const std::function<void(const ScoredChunk&)>& onChunk)
{
    const WindowPlan plan = planWindows(static_cast<int64_t>(tokens.size()), options);
    if (cache.layers() != model.layers() || first < 0 || first >= model.layers())
        fail(ErrorCode::InvalidArgument, "", "the cached block inputs do not belong to this model");
    const Transformer* models[] = {&model};
    const HiddenFn fromCache = [&](size_t, int64_t w0, int64_t w1, const std::vector<int32_t>&) {
        MatrixRM x = cache.rows(first, w0, w1);
        model.runBlocks(x, plan.context, first, static_cast<int>(model.layers()) - 1);
        return model.finishHidden(std::move(x));
    };
    const int32_t bos = startToken(model, options);
    forEachGroup(plan, batchWindows(model, plan, options), progress, [&](int64_t w0, int64_t w1) {
        scoreGroup(models, tokens, plan, options, bos, w0, w1, fromCache, onChunk);
    });
}

} // namespace ll
