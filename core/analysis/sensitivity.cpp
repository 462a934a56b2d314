#include "analysis/sensitivity.h"

#include "engine/kernels.h"
#include "engine/transformer.h"
#include "eval/mean_accumulator.h"
#include "model/tensor_data.h"
#include "pipeline/model_compression.h"
#include "quant/quant_method.h"
#include "recipe/step_options.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace ll {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The base model's log-probabilities (float, as compareModels computes them) and argmax per scored position.
struct ReferenceLogits {
    int64_t vocab = 0;
    std::vector<float> logProbs;
    std::vector<int32_t> argmax;
    bool empty() const { return argmax.empty(); }
};

struct Evaluation {
    PerplexityResult ppl;
    std::optional<double> kl, top1;
};

// One pass over the windows: NLL per position (as evaluatePerplexity), and
// either captures the reference or compares against it (as compareModels).
// With a cache, the model equals the cache's from block `first` on and only those blocks run.
Evaluation evaluate(const Transformer& model, std::span<const int32_t> tokens, const ScoringOptions& scoring,
                    ReferenceLogits* capture, const ReferenceLogits* reference, Progress* progress,
                    const BlockInputCache* cache = nullptr, int first = 0)
{
    const WindowPlan plan = planWindows(static_cast<int64_t>(tokens.size()), scoring);
    const size_t rows = static_cast<size_t>(plan.tokensScored());
    std::vector<double> nll(rows), kl(reference ? rows : 0);
    std::vector<char> agree(reference ? rows : 0);
    const int64_t vocab = model.vocab();
    if (capture) {
        capture->vocab = vocab;
        capture->logProbs.assign(rows * static_cast<size_t>(vocab), 0.0f);
        capture->argmax.assign(rows, 0);
    }
    if (reference && reference->vocab != vocab)
        fail(ErrorCode::InvalidArgument, "", "the compressed model's vocabulary differs from the base model's");
    const Transformer* models[] = {&model};
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(vocab, 1));
    const auto onChunk = [&](const ScoredChunk& c) {
        const MatrixRM& q = *c.logits[0];
        parallelFor(q.rows(), grain, [&](int64_t r0, int64_t r1) {
            Eigen::ArrayXf lq;
            for (int64_t r = r0; r < r1; ++r) {
                const size_t row = static_cast<size_t>(c.firstRow + r);
                const RowLogSoftmax sq = rowLogSoftmax(q.row(r).data(), vocab);
                nll[row] = sq.logSumExp - q(r, c.targets[static_cast<size_t>(r)]);
                if (!capture && !reference)
                    continue;
                lq = q.row(r).transpose().array() - static_cast<float>(sq.logSumExp);
                Eigen::Index aq = 0;
                q.row(r).maxCoeff(&aq);
                if (capture) {
                    std::copy(lq.data(), lq.data() + vocab, capture->logProbs.data() + row * static_cast<size_t>(vocab));
                    capture->argmax[row] = static_cast<int32_t>(aq);
                }
                if (reference) {
                    const Eigen::Map<const Eigen::ArrayXf> lp(reference->logProbs.data() + row * static_cast<size_t>(vocab),
                                                              vocab);
                    const double klRow = (lp.exp().cast<double>() * (lp - lq).cast<double>()).sum();
                    kl[row] = std::max(0.0, klRow);
                    agree[row] = reference->argmax[row] == static_cast<int32_t>(aq);
                }
            }
        });
    };
    if (cache)
        scoreWindowsFrom(model, *cache, first, tokens, scoring, progress, onChunk);
    else
        scoreWindows(models, tokens, scoring, progress, onChunk);
    MeanAccumulator acc, klAcc;
    for (double x : nll)
        acc.add(x);
    Evaluation e;
    e.ppl.tokensScored = acc.n;
    e.ppl.windows = plan.windows;
    e.ppl.nllMean = acc.mean();
    e.ppl.nllStderr = acc.stderrOfMean();
    e.ppl.ppl = std::exp(e.ppl.nllMean);
    e.ppl.pplStderr = e.ppl.ppl * e.ppl.nllStderr;
    if (reference) {
        int64_t same = 0;
        for (size_t i = 0; i < rows; ++i) {
            klAcc.add(kl[i]);
            same += agree[i] ? 1 : 0;
        }
        e.kl = klAcc.mean();
        e.top1 = rows ? static_cast<double>(same) / static_cast<double>(rows) : 0.0;
    }
    return e;
}

// Puts one layer of the stepped model into the base engine for the scope, then restores the original.
class SwappedLinear {
public:
    SwappedLinear(Transformer& engine, const Model& stepped, const LogicalTensor& t)
        : engine_(engine), block_(t.block), role_(t.role), original_(engine.linear(t.block, t.role))
    {
        engine_.setLinear(block_, role_, loadLinearWeights(stepped, t));
    }
    ~SwappedLinear() { engine_.setLinear(block_, role_, std::move(original_)); }
    SwappedLinear(const SwappedLinear&) = delete;
    SwappedLinear& operator=(const SwappedLinear&) = delete;

private:
    Transformer& engine_;
    int block_;
    Role role_;
    LinearWeights original_;
};

// The step changed only `name`'s values, keeping its shape, and no activation quantization is involved.
bool swappable(const CompressionState& base, const StepOutcome& out, const LogicalTensor& before)
{
    if (!base.activations.empty() || !out.state.activations.empty())
        return false;
    if (out.touched.size() != 1 || out.touched.front() != before.logicalName)
        return false;
    const LogicalTensor* after = out.state.model->findLogical(before.logicalName);
    return after && after->shape == before.shape && before.block >= 0;
}

// Every target at once per template, ranked by each layer's own output error.
std::vector<SensitivityResult> proxySensitivities(const CompressionState& base, const std::vector<RecipeStep>& steps,
                                                  const std::vector<const LogicalTensor*>& targets,
                                                  const CalibrationText& calibration, const SensitivitySweepCallback& onRow,
                                                  Progress* progress)
{
    std::string names;
    for (const LogicalTensor* t : targets) {
        if (!names.empty())
            names += '|';
        names += exactNamePattern(t->logicalName);
    }
    std::vector<SensitivityResult> results;
    for (size_t si = 0; si < steps.size(); ++si) {
        const auto s0 = Clock::now();
        RecipeStep step = steps[si];
        step.layers = names;
        if (!step.usesCalibration())
            step.params["output_error"] = true;
        SubProgress sub(progress, static_cast<double>(si) / static_cast<double>(steps.size()),
                        static_cast<double>(si + 1) / static_cast<double>(steps.size()));
        const StepOutcome out = applyStep(base, step, calibration, &sub);
        SensitivityResult result;
        result.step = steps[si];
        for (size_t i = 0; i < targets.size(); ++i) {
            const LogicalTensor& t = *targets[i];
            LayerSensitivity row;
            row.name = t.logicalName;
            row.block = t.block;
            row.role = t.role;
            row.badge = singleLayerStep(steps[si], t.logicalName).badge();
            row.weights = t.elements();
            row.ppl = row.deltaPpl = row.nll = row.deltaNll = kNaN;
            if (const auto rec = out.state.layers.find(t.logicalName); rec != out.state.layers.end()) {
                row.bitsPerWeight = rec->second.bitsPerWeight;
                row.weightError = rec->second.weightError;
                row.outputError = rec->second.outputError;
            }
            result.rows.push_back(row);
            if (onRow)
                onRow(si, result.rows.back(), i, targets.size());
        }
        result.seconds = secondsSince(s0);
        results.push_back(std::move(result));
    }
    return results;
}

} // namespace

const char* sensitivityMetricName(SensitivityMetric m)
{
    switch (m) {
    case SensitivityMetric::DeltaPpl: return "dppl";
    case SensitivityMetric::DeltaNll: return "dnll";
    case SensitivityMetric::Kl: return "kl";
    case SensitivityMetric::Top1: return "top1";
    case SensitivityMetric::OutputError: return "output-error";
    }
    return "?";
}

std::optional<SensitivityMetric> parseSensitivityMetric(const std::string& name)
{
    for (SensitivityMetric m : {SensitivityMetric::DeltaPpl, SensitivityMetric::DeltaNll, SensitivityMetric::Kl,
                                SensitivityMetric::Top1, SensitivityMetric::OutputError})
        if (name == sensitivityMetricName(m))
            return m;
    return std::nullopt;
}

ScoringOptions SensitivityOptions::defaultScoring()
{
    ScoringOptions s;
    s.context = 128;
    s.maxWindows = 8;
    return s;
}

double LayerSensitivity::value(SensitivityMetric m) const
{
    switch (m) {
    case SensitivityMetric::DeltaPpl: return deltaPpl;
    case SensitivityMetric::DeltaNll: return deltaNll;
    case SensitivityMetric::Kl: return kl ? *kl : kNaN;
    case SensitivityMetric::Top1: return top1 ? 1.0 - *top1 : kNaN;
    case SensitivityMetric::OutputError: return outputError ? *outputError : kNaN;
    }
    return kNaN;
}

nlohmann::json LayerSensitivity::toJson() const
{
    const auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    return {{"name", name},        {"block", block},         {"role", std::string(roleName(role))},
            {"badge", badge},      {"weights", weights},     {"bits_per_weight", opt(bitsPerWeight)},
            {"weight_error", opt(weightError)}, {"ppl", ppl}, {"delta_ppl", deltaPpl},
            {"nll", nll},          {"delta_nll", deltaNll},  {"kl", opt(kl)},
            {"top1", opt(top1)},   {"output_error", opt(outputError)}, {"seconds", seconds}};
}

nlohmann::json SensitivityResult::toJson() const
{
    nlohmann::json r = nlohmann::json::array();
    for (const LayerSensitivity& l : rows)
        r.push_back(l.toJson());
    return {{"step", step.toJson()},
            {"badge", step.badge()},
            {"context", scoring.context},
            {"windows", base.windows},
            {"tokens_scored", base.tokensScored},
            {"base_ppl", base.ppl},
            {"base_nll", base.nllMean},
            {"rows", std::move(r)},
            {"seconds", seconds}};
}

void sortBySensitivity(std::vector<LayerSensitivity>& rows, SensitivityMetric metric)
{
    std::stable_sort(rows.begin(), rows.end(), [metric](const LayerSensitivity& a, const LayerSensitivity& b) {
        const double x = a.value(metric), y = b.value(metric);
        if (std::isnan(x) || std::isnan(y))
            return !std::isnan(x) && std::isnan(y);
        return x > y;
    });
}

RecipeStep singleLayerStep(const RecipeStep& step, const std::string& name)
{
    RecipeStep s = step;
    s.layers = exactNamePattern(name);
    return s;
}

SensitivityResult measureSensitivity(const CompressionState& base, const SensitivityOptions& options,
                                     std::span<const int32_t> evalTokens, const CalibrationText& calibration,
                                     const SensitivityCallback& onRow, Progress* progress)
{
    SensitivitySweepCallback cb;
    if (onRow)
        cb = [&](size_t, const LayerSensitivity& row, size_t i, size_t n) { onRow(row, i, n); };
    return std::move(measureSensitivities(base, {options.step}, options, evalTokens, calibration, cb, progress).front());
}

std::vector<SensitivityResult> measureSensitivities(const CompressionState& base, const std::vector<RecipeStep>& steps,
                                                    const SensitivityOptions& options, std::span<const int32_t> evalTokens,
                                                    const CalibrationText& calibration,
                                                    const SensitivitySweepCallback& onRow, Progress* progress)
{
    const auto t0 = Clock::now();
    if (!base.model)
        fail(ErrorCode::InvalidArgument, "", "no model");
    if (steps.empty())
        fail(ErrorCode::InvalidArgument, "", "no step to measure");
    for (const RecipeStep& tmpl : steps) {
        if (tmpl.action == StepAction::Prune && tmpl.params.contains("structured"))
            fail(ErrorCode::InvalidArgument, "",
                 "structured pruning removes units in every block at once; it has no per-layer sensitivity");
        RecipeStep check = tmpl;
        check.layers.clear();
        check.validate();
    }

    // The targets, in the model's order.
    std::vector<const LogicalTensor*> targets;
    if (options.names.empty()) {
        targets = selectTargets(*base.model, options.layers);
    } else {
        for (const std::string& n : options.names)
            targets.push_back(selectTargets(*base.model, exactNamePattern(n)).front());
    }

    if (options.proxyOutputError)
        return proxySensitivities(base, steps, targets, calibration, onRow, progress);

    const WindowPlan plan = planWindows(static_cast<int64_t>(evalTokens.size()), options.scoring);
    if (options.compareLogits) {
        const uint64_t bytes = static_cast<uint64_t>(plan.tokensScored()) * static_cast<uint64_t>(base.model->config.vocab) * 4u;
        if (bytes > options.maxCachedLogitBytes)
            fail(ErrorCode::InvalidArgument, "",
                 "keeping the base model's log-probabilities for KL takes " + std::to_string(bytes >> 20)
                     + " MiB; evaluate fewer windows or turn KL off");
    }

    // Base: 5 % for its engine and evaluation, the (template, layer) pairs share the rest evenly.
    const double baseShare = 0.05;
    std::unique_ptr<Transformer> engine;
    ReferenceLogits reference;
    PerplexityResult basePpl;
    {
        SubProgress load(progress, 0.0, baseShare / 2);
        engine = base.makeEngine(&load);
        SubProgress eval(progress, baseShare / 2, baseShare);
        basePpl = evaluate(*engine, evalTokens, options.scoring, options.compareLogits ? &reference : nullptr, nullptr,
                           &eval)
                      .ppl;
    }
    const ReferenceLogits* ref = options.compareLogits ? &reference : nullptr;
    // Every block's input on the evaluation windows, once: a layer swapped into
    // block l then costs blocks l..L-1 (half the model on average), not all.
    std::unique_ptr<BlockInputCache> cache;
    if (options.cacheBlockInputs && base.activations.empty()) {
        SubProgress caching(progress, baseShare, baseShare);
        cache = std::make_unique<BlockInputCache>(*engine, evalTokens, options.scoring, options.cacheBudgetBytes, &caching);
    }
    const double baseSeconds = secondsSince(t0);

    std::vector<SensitivityResult> results;
    const CalibrationText noCalibration;
    const size_t n = targets.size(), total = n * steps.size();
    for (size_t si = 0; si < steps.size(); ++si) {
        const auto s0 = Clock::now();
        const RecipeStep& tmpl = steps[si];
        const CalibrationText& calib = tmpl.usesCalibration() ? calibration : noCalibration;
        SensitivityResult result;
        result.step = tmpl;
        result.scoring = options.scoring;
        result.base = basePpl;
        for (size_t i = 0; i < n; ++i) {
            throwIfCancelled(progress);
            const LogicalTensor& t = *targets[i];
            const size_t k = si * n + i;
            const double from = baseShare + (1.0 - baseShare) * static_cast<double>(k) / static_cast<double>(total);
            const double to = baseShare + (1.0 - baseShare) * static_cast<double>(k + 1) / static_cast<double>(total);
            const double mid = from + 0.5 * (to - from);
            if (progress)
                progress->report(from, tmpl.badge() + ": " + t.logicalName);
            const auto l0 = Clock::now();

            const RecipeStep step = singleLayerStep(tmpl, t.logicalName);
            SubProgress stepProgress(progress, from, mid);
            const StepOutcome out = applyStep(base, step, calib, &stepProgress);

            SubProgress evalProgress(progress, mid, to);
            Evaluation e;
            if (swappable(base, out, t)) {
                const SwappedLinear swap(*engine, *out.state.model, *out.state.model->findLogical(t.logicalName));
                e = evaluate(*engine, evalTokens, options.scoring, nullptr, ref, &evalProgress, cache.get(), t.block);
            } else {
                SubProgress load(&evalProgress, 0.0, 0.3), run(&evalProgress, 0.3, 1.0);
                const std::unique_ptr<Transformer> stepped = out.state.makeEngine(&load);
                e = evaluate(*stepped, evalTokens, options.scoring, nullptr, ref, &run);
            }

            LayerSensitivity row;
            row.name = t.logicalName;
            row.block = t.block;
            row.role = t.role;
            row.badge = step.badge();
            row.weights = t.elements();
            if (const auto rec = out.state.layers.find(t.logicalName); rec != out.state.layers.end()) {
                row.bitsPerWeight = rec->second.bitsPerWeight;
                row.weightError = rec->second.weightError;
                row.outputError = rec->second.outputError;
            }
            row.ppl = e.ppl.ppl;
            row.deltaPpl = e.ppl.ppl - basePpl.ppl;
            row.nll = e.ppl.nllMean;
            row.deltaNll = e.ppl.nllMean - basePpl.nllMean;
            row.kl = e.kl;
            row.top1 = e.top1;
            row.seconds = secondsSince(l0);
            result.rows.push_back(row);
            if (onRow)
                onRow(si, result.rows.back(), i, n);
        }
        // The base engine and evaluation are counted in the first sweep.
        result.seconds = secondsSince(s0) + (si == 0 ? baseSeconds : 0.0);
        results.push_back(std::move(result));
    }
    if (progress)
        progress->report(1.0, "done");
    return results;
}

} // namespace ll
