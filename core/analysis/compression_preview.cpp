#include "analysis/compression_preview.h"

#include "analysis/kv_preview.h"

#include "calib/calibration.h"
#include "engine/transformer.h"
#include "lowrank/lowrank_layer.h"
#include "methods/method_registry.h"
#include "model/tensor_data.h"
#include "prune/prune_layer.h"
#include "util/progress.h"
#include "quant/quant_method.h"
#include "recipe/step_options.h"
#include "stats/tensor_stats.h"
#include "util/error.h"

#include <Eigen/SVD>

#include <chrono>
#include <cstdio>

namespace ll {

namespace {

// `before` (rows, cols) with the rows (or columns) that structured pruning
// removed set to zero: the kept ones are `after`'s, in their original order,
// found as a subsequence. Empty when both dimensions changed or none did.
std::vector<float> removedAsZeros(const std::vector<float>& before, int64_t rows, int64_t cols,
                                  const std::vector<float>& after, int64_t rowsAfter, int64_t colsAfter)
{
    const bool byRow = colsAfter == cols && rowsAfter < rows, byCol = rowsAfter == rows && colsAfter < cols;
    if (!byRow && !byCol)
        return {};
    const int64_t units = byRow ? rows : cols, kept = byRow ? rowsAfter : colsAfter, len = byRow ? cols : rows;
    const auto at = [](const std::vector<float>& m, int64_t stride, bool row, int64_t unit, int64_t i) {
        return row ? m[static_cast<size_t>(unit * stride + i)] : m[static_cast<size_t>(i * stride + unit)];
    };
    std::vector<float> out(before.size(), 0.0f);
    int64_t next = 0; // the next kept unit of `after` to find
    for (int64_t u = 0; u < units && next < kept; ++u) {
        bool same = true;
        for (int64_t i = 0; i < len && same; ++i)
            same = at(before, cols, byRow, u, i) == at(after, colsAfter, byRow, next, i);
        if (!same)
            continue;
        for (int64_t i = 0; i < len; ++i)
            (byRow ? out[static_cast<size_t>(u * cols + i)] : out[static_cast<size_t>(i * cols + u)]) = at(before, cols, byRow, u, i);
        ++next;
    }
    return next == kept ? out : std::vector<float>{};
}

// The layer's calibration statistics from the state's model (one-shot, its block only).
std::optional<InputStats> layerStats(const CompressionState& state, const LogicalTensor& t, const CalibrationText& calib,
                                     Progress* progress)
{
    if (calib.tokens.empty() || t.block < 0)
        return std::nullopt;
    const auto engine = state.makeEngine();
    const std::vector<int32_t> windows = calibrationWindows(calib.tokens, calib.options);
    std::vector<InputStats> stats = collectInputStats(*engine, windows, calib.options, t.block, t.block, true, progress);
    const Role input = inputRoleOf(t.role);
    for (InputStats& s : stats)
        if (s.role == input)
            return std::move(s);
    return std::nullopt;
}

std::vector<double> singularValuesOf(const MatrixRM& W)
{
    Eigen::MatrixXf m = W;
    Eigen::BDCSVD<Eigen::MatrixXf> svd(m);
    const Eigen::VectorXf s = svd.singularValues();
    return std::vector<double>(s.data(), s.data() + s.size());
}

void fillCurve(PreviewResult& r, const RecipeStep& step, const MatrixRM& W, const std::optional<InputStats>& stats,
               Progress* progress)
{
    nlohmann::json params = step.params;
    const JsonParams p(params);
    Eigen::MatrixXf gram;
    if (stats)
        gram = stats->gramFloat();
    switch (step.action) {
    case StepAction::Quantize: {
        const QuantConfig c = quantizeOptionsFrom(p).config;
        // A curve over the widths the method's schema allows (the registry's "bits").
        const MethodSpec& spec = requireMethodSpec(StepAction::Quantize, c.method);
        const ParamSpec* bitsParam = spec.param("bits");
        if (!bitsParam || bitsParam->min == bitsParam->max)
            return;
        LayerInputs in;
        if (stats) {
            in.gram = &gram;
            in.meanAbs = stats->meanAbs();
            in.maxAbs = stats->maxAbs;
        }
        if (!in.gram && spec.needsCalibration())
            return;
        std::vector<int> bits;
        for (const int b : defaultBitSteps())
            if (b >= bitsParam->min && b <= bitsParam->max)
                bits.push_back(b);
        r.curve = quantErrorVsBits(W, c, bits, in, progress);
        r.curveLabel = "bits";
        r.curveCurrent = c.grid.bits;
        return;
    }
    case StepAction::Prune: {
        const PruneStepOptions o = pruneOptionsFrom(p);
        if (o.kind != PruneStepOptions::Kind::Unstructured)
            return;
        LayerInputs in;
        if (stats) {
            in.gram = &gram;
            in.inputNorm = stats->l2Norm();
            in.meanAbs = stats->meanAbs();
        }
        if (!in.gram && o.unstructured.layer.method != PruneMethod::Magnitude)
            return;
        r.curve = errorVsSparsity(W, o.unstructured.layer, defaultSparsitySteps(), in, progress);
        r.curveLabel = "sparsity";
        r.curveCurrent = o.unstructured.layer.nm ? 1.0 - static_cast<double>(o.unstructured.layer.nm->n) / o.unstructured.layer.nm->m
                                                 : o.unstructured.layer.sparsity;
        return;
    }
    case StepAction::Factorize: {
        const ModelFactorizeOptions o = factorizeOptionsFrom(p);
        LowRankConfig c;
        c.method = o.method;
        c.asvdAlpha = o.asvdAlpha;
        LayerInputs in;
        if (stats) {
            in.gram = &gram;
            in.inputNorm = stats->l2Norm();
            in.meanAbs = stats->meanAbs();
        }
        if (!in.gram && o.method != LowRankMethod::Svd)
            return;
        const int64_t full = std::min<int64_t>(W.rows(), W.cols());
        std::vector<int64_t> ranks;
        for (int i = 1; i <= 16; ++i)
            ranks.push_back(std::max<int64_t>(1, full * i / 16));
        ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
        r.curve = errorVsRank(W, c, ranks, in, progress);
        r.curveLabel = "rank";
        r.curveCurrent = static_cast<double>(r.rank);
        return;
    }
    case StepAction::Rotate:
    case StepAction::KvCache: return;
    }
}

} // namespace

PreviewResult computePreview(const CompressionState& state, const RecipeStep& step, const std::string& tensor,
                             const CalibrationText& calibration, Progress* progress)
{
    const auto started = std::chrono::steady_clock::now();
    const LogicalTensor* t = state.model->findLogical(tensor);
    if (!t || !isLinear(t->role) || t->isBias || t->block < 0)
        fail(ErrorCode::InvalidArgument, "", tensor + " is not a linear weight inside a block: select a q, k, v, o, gate, up or down weight to preview");
    if (step.action == StepAction::KvCache) {
        PreviewResult r = previewKvCache(state, step, *t, calibration, progress);
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return r;
    }
    PreviewResult r;
    r.tensor = tensor;
    const MatrixRM W = readMatrix(*state.model, *t);
    r.rows = W.rows();
    r.cols = W.cols();
    r.before.assign(W.data(), W.data() + W.size());
    // After an Apply on this layer, "before" is the source's weights, not the compressed ones the step now
    // stacks on (comparing a compressed tensor with a re-compressed copy shows almost nothing).
    // After a rotation, the rotated weights (state.basis) are the ones compression starts from.
    const std::shared_ptr<const Model> basis = state.basis ? state.basis : state.source;
    const bool edited = state.layers.count(tensor) && basis && basis != state.model;
    const LogicalTensor* original = edited ? basis->findLogical(tensor) : nullptr;
    if (original && original->shape == t->shape) {
        const MatrixRM W0 = readMatrix(*basis, *original);
        r.before.assign(W0.data(), W0.data() + W0.size());
        r.beforeIsSource = true;
    }

    if (step.action == StepAction::Rotate) {
        // A rotation changes the whole model; this tensor's share of it, computed alone.
        if (!state.steps.empty())
            fail(ErrorCode::InvalidArgument, "", "rotate before every other step (undo the steps first)");
        checkRotatable(*state.model);
        const RotationOptions o = rotationOptionsFrom(JsonParams(step.params));
        const ModelRotations rotations = modelRotations(state.model->config, o);
        const MatrixRM Wa = rotatedTensor(*state.model, *t, rotations);
        r.rowsAfter = Wa.rows();
        r.colsAfter = Wa.cols();
        r.after.assign(Wa.data(), Wa.data() + Wa.size());
        r.badge = step.badge();
        r.action = step.action;
        r.record.shape = {Wa.rows(), Wa.cols()};
        StatsOptions so;
        so.bins = 1;
        const auto kurtosis = [&](std::span<const float> v) { return computeStats(v, so).kurtosis; };
        const auto kurtosisOf = [&](const MatrixRM& m) { return kurtosis({m.data(), static_cast<size_t>(m.size())}); };
        const double kBefore = kurtosis(r.before), kAfter = kurtosis(r.after);
        char buf[160];
        std::snprintf(buf, sizeof buf, "Kurtosis %.2f before, %.2f after (3 for a Gaussian): the rotation spreads outliers.",
                      kBefore, kAfter);
        r.note = buf;
        // The same linear of every block before and after: where the outliers were, and that none remain.
        const int layers = state.model->config.layers;
        for (int b = 0; b < layers; ++b) {
            throwIfCancelled(progress);
            const LogicalTensor* tb = state.model->find(b, t->role);
            if (!tb || tb->shape.size() != 2)
                continue;
            ErrorCurvePoint p;
            p.x = b;
            p.weightError = tb == t ? kBefore : kurtosisOf(readMatrix(*state.model, *tb)); // the selected one is done
            p.outputError = tb == t ? kAfter : kurtosisOf(rotatedTensor(*state.model, *tb, rotations));
            r.curve.push_back(p);
            if (progress)
                progress->report(static_cast<double>(b + 1) / layers, "kurtosis of block " + std::to_string(b + 1));
        }
        r.curveLabel = "block";
        r.curveSeries = {"kurtosis before", "kurtosis after"};
        r.curveYLabel = "kurtosis (3 for a Gaussian)";
        r.curveCurrent = t->block;
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return r;
    }
    if (step.action == StepAction::Prune && step.method() == "slicegpt") {
        // The PCA spectrum of the hidden states with the kept directions marked, and this tensor sliced.
        PruneStepOptions o = pruneOptionsFrom(JsonParams(step.params));
        o.slice.calibration = calibration.options;
        const SliceResult s = sliceModel(*state.model, o.slice, calibration.tokens, progress);
        for (double e : s.eigenvalues)
            r.singularValues.push_back(std::sqrt(e)); // the plot's energy Σσ² is then the variance kept
        r.rank = s.hiddenAfter;
        const LogicalTensor* after = s.model->findLogical(tensor);
        const MatrixRM Wa = readMatrix(*s.model, *after);
        r.rowsAfter = Wa.rows();
        r.colsAfter = Wa.cols();
        r.after.assign(Wa.data(), Wa.data() + Wa.size());
        r.badge = step.badge();
        r.action = step.action;
        char buf[200];
        std::snprintf(buf, sizeof buf, "Hidden size %lld -> %lld, keeping %.1f %% of the hidden states' variance: %lld -> %lld parameters.",
                      static_cast<long long>(s.hiddenBefore), static_cast<long long>(s.hiddenAfter), 100.0 * s.keptEnergy,
                      static_cast<long long>(state.model->parameterCount()), static_cast<long long>(s.model->parameterCount()));
        r.note = buf;
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return r;
    }
    if (step.action == StepAction::Prune && step.method() == "shortgpt") {
        // Whole blocks: the influence of each on the calibration text, and which go.
        PruneStepOptions o = pruneOptionsFrom(JsonParams(step.params));
        o.blocks.calibration = calibration.options;
        const BlockRemovalResult removal = removeBlocksByInfluence(*state.model, o.blocks, calibration.tokens, progress);
        r.blockInfluence = removal.influence;
        r.removedBlocks = removal.removed;
        const bool gone = std::binary_search(removal.removed.begin(), removal.removed.end(), t->block);
        if (!gone)
            r.after = r.before;
        r.rowsAfter = gone ? 0 : r.rows;
        r.colsAfter = gone ? 0 : r.cols;
        r.badge = step.badge();
        r.action = step.action;
        std::string list;
        for (int b : removal.removed)
            list += (list.empty() ? "" : ", ") + std::to_string(b);
        const bool many = removal.removed.size() > 1;
        r.note = (many ? "Blocks " : "Block ") + list + (many ? " change their input least and are" : " changes its input least and is")
                 + " removed: " + std::to_string(state.model->parameterCount())
                 + " -> " + std::to_string(removal.model->parameterCount()) + " parameters. "
                 + (gone ? "This tensor's block goes." : "This tensor's block stays (later blocks move up).");
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return r;
    }
    // The step on this tensor alone; structured pruning has no per-layer form.
    RecipeStep one = step;
    const MethodSpec* spec = findMethodSpec(step.action, step.method());
    const bool structured = step.action == StepAction::Prune
                            && (step.params.contains("structured") || (spec && !spec->wholeModelScope.empty()));
    if (structured)
        r.note = "Structured pruning removes the same units in every block: the preview prunes the whole model.";
    else
        one.layers = exactNamePattern(tensor);
    SubProgress applyPart(progress, 0.0, 0.6);
    const StepOutcome out = applyStep(state, one, calibration, &applyPart);
    const LogicalTensor* after = out.state.model->findLogical(tensor);
    const MatrixRM Wa = readMatrix(*out.state.model, *after);
    r.rowsAfter = Wa.rows();
    r.colsAfter = Wa.cols();
    r.after.assign(Wa.data(), Wa.data() + Wa.size());
    if (structured)
        r.removedAsZeros = removedAsZeros(r.before, r.rows, r.cols, r.after, r.rowsAfter, r.colsAfter);
    if (const auto it = out.state.layers.find(tensor); it != out.state.layers.end())
        r.record = it->second;
    if (const auto f = out.summary.find("flap"); f != out.summary.end()) {
        const auto& g = (*f)["kv_groups"];
        const auto& n = (*f)["neurons"];
        r.note = "FLAP removes " + std::to_string(g[0].get<int64_t>() - g[1].get<int64_t>()) + " of " + g[0].dump()
                 + " KV groups and " + std::to_string(n[0].get<int64_t>() - n[1].get<int64_t>()) + " of " + n[0].dump()
                 + " neurons in every block, the ones whose o_proj / down_proj inputs fluctuate least: "
                 + std::to_string(state.model->parameterCount()) + " -> " + std::to_string(out.state.model->parameterCount())
                 + " parameters.";
    }
    r.badge = step.badge();
    r.action = step.action;
    r.rank = r.record.rank;
    if (step.action == StepAction::Prune && step.params.contains("nm"))
        r.nm = pruneOptionsFrom(JsonParams(step.params)).unstructured.layer.nm;

    // Context: the statistics for the curve (one pass through blocks 0..block), the spectrum.
    // A data-free step gathers none unless it measures its output error, and then on
    // the windows applyStep measured it on: the curve shows weight errors otherwise.
    std::optional<InputStats> stats;
    const bool outputError = JsonParams(step.params).flag("output-error");
    if (step.usesCalibration() || outputError) {
        CalibrationText sample = calibration;
        if (!step.usesCalibration())
            sample.options.windows = std::min<int64_t>(sample.options.windows, kOutputErrorWindows);
        SubProgress statsPart(progress, 0.6, 0.8);
        stats = layerStats(state, *t, sample, &statsPart);
    }
    SubProgress curvePart(progress, 0.8, 1.0);
    if (!structured)
        fillCurve(r, step, W, stats, &curvePart);
    if (step.action == StepAction::Factorize)
        r.singularValues = singularValuesOf(W);
    throwIfCancelled(progress);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return r;
}

} // namespace ll
