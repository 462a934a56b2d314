#include "analysis/model_cost.h"

#include "analysis/model_size.h"

#include "methods/method_registry.h"

#include "calib/calibration.h"
#include "model/model.h"
#include "pipeline/model_compression.h"
#include "recipe/step_options.h"
#include "util/error.h"
#include "util/spill_buffer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace ll {

namespace {

// Multiply-adds of one row through a 2-D tensor as held: out * in for a dense
// one; a factored one multiplies by B then A, k (out + in); a corrected one does both.
double matrixMacs(const Model& m, const LogicalTensor& t)
{
    const int64_t rank = t.hasFactors() ? m.stored.at(static_cast<size_t>(t.factorA)).shape.at(1) : 0;
    return static_cast<double>((t.factored() ? 0 : t.shape[0] * t.shape[1]) + rank * (t.shape[0] + t.shape[1]));
}

// 2 * multiply-adds of one token through every matrix of `m` that a forward pass multiplies by.
double matrixFlops(const Model& m)
{
    double macs = 0.0;
    for (const LogicalTensor& t : m.tensors) {
        if (t.isBias || t.shape.size() != 2)
            continue;
        if (t.role == Role::Embedding || t.role == Role::PositionEmbedding)
            continue; // a lookup, not a product
        if (!isLinear(t.role) && t.role != Role::LmHead && t.role != Role::EmbedProjIn && t.role != Role::EmbedProjOut)
            continue;
        macs += matrixMacs(m, t);
    }
    return 2.0 * macs;
}

double attentionFlops(const Model& m, int64_t context)
{
    const ModelConfig& c = m.config;
    // q k^T over the context and the weighted sum of v: 2 * heads * headDim * context each.
    return 2.0 * 2.0 * static_cast<double>(c.layers * c.heads * c.headDim) * static_cast<double>(context);
}

} // namespace

ModelCost estimateCost(const CompressionState& state, int64_t context)
{
    ModelCost c;
    const Model& m = *state.model;
    const ModelSize size = modelSize(state);
    c.parameters = size.parameters;
    c.bytes = static_cast<double>(size.bytes);
    c.bitsPerWeight = state.linearBitsPerWeight();
    c.sourceBytes = static_cast<double>(modelSize(CompressionState::initial(state.source)).bytes);
    c.compressionRatio = c.bytes > 0.0 ? c.sourceBytes / c.bytes : 0.0;
    c.flopsPerToken = matrixFlops(m) + attentionFlops(m, context);
    c.denseFlopsPerToken = matrixFlops(*state.source) + attentionFlops(*state.source, context);
    return c;
}

} // namespace ll

// ---- Jobs (docs/cost-model.md) -------------------------------------------

namespace ll {

namespace {

constexpr double kFloat = 4.0, kDouble = 8.0;
constexpr int64_t kTokensPerBatch = 4096;              // eval/scoring.cpp, calib/calibration.cpp
constexpr double kLogitChunkBytes = double(int64_t{1} << 24) * kFloat; // eval/scoring.cpp: 64 MB per thread
constexpr double kFitMargin = 1.10;

std::string str(int64_t v) { return std::to_string(v); }

// Calibration batches (calib/calibration.cpp): about 4096 tokens, at least one window per thread.
int64_t windowsPerBatch(int64_t windows, int64_t context, int threads)
{
    return std::min<int64_t>(windows, std::max<int64_t>({1, kTokensPerBatch / std::max<int64_t>(context, 1), threads}));
}

// Evaluation batches (eval/scoring.cpp): per thread, the windows whose
// activations (about 16 of the widest layer a token) fit in 128 MB, at least
// one and at most 4096 tokens' worth.
int64_t evaluationWindowsPerBatch(const ModelConfig& c, int64_t windows, int64_t context, int threads)
{
    const int64_t widest = std::max<int64_t>({c.hidden, c.intermediate, 1});
    const int64_t ctx = std::max<int64_t>(context, 1);
    const int64_t perThread = std::clamp<int64_t>((int64_t{128} << 20) / (16 * 4 * widest * ctx), 1,
                                                  std::max<int64_t>(1, kTokensPerBatch / ctx));
    return std::min(windows, perThread * threads);
}

// Widths of the four linear inputs of a block (AttnQ: q/k/v, AttnO, MlpUp: gate/up, MlpDown) in `model`.
std::vector<std::pair<Role, int64_t>> blockInputs(const Model& model, int block)
{
    std::map<Role, int64_t> widths;
    for (const LogicalTensor& t : model.tensors)
        if (t.block == block && isLinear(t.role) && !t.isBias && t.shape.size() == 2)
            widths[inputRoleOf(t.role)] = std::max(widths[inputRoleOf(t.role)], t.shape[1]);
    return {widths.begin(), widths.end()};
}

// X^T X in double (its lower triangle) for every input of the widest block.
double gramBytes(const Model& model)
{
    double most = 0.0;
    for (int b = 0; b < model.config.layers; ++b) {
        double sum = 0.0;
        for (const auto& [role, in] : blockInputs(model, b))
            sum += kDouble * static_cast<double>(in) * static_cast<double>(in + 1) / 2.0;
        most = std::max(most, sum);
    }
    return most;
}

// 2 in² per token per input: accumulating X^T X.
double gramFlopsPerToken(const Model& model, int block)
{
    double f = 0.0;
    for (const auto& [role, in] : blockInputs(model, block))
        f += 2.0 * static_cast<double>(in) * static_cast<double>(in);
    return f;
}

const LogicalTensor& logical(const Model& model, const std::string& name)
{
    const LogicalTensor* t = model.findLogical(name);
    if (!t)
        fail(ErrorCode::InvalidArgument, model.path, "no tensor named " + name);
    return *t;
}

double rowsOf(const LogicalTensor& t) { return static_cast<double>(t.shape.at(0)); }
double colsOf(const LogicalTensor& t) { return static_cast<double>(t.shape.size() > 1 ? t.shape[1] : 1); }

// What one layer's method costs: floating-point work and the bytes of its result.
struct LayerWork {
    double flops = 0.0;
    double resultBytes = 0.0;      // the compressed layer kept in the new state
    double workBytes = 0.0;        // the method's own temporaries beyond the F32 copies of W
};

// The method's own work on one layer (MethodSpec::work), or the action's default.
MethodWork methodWork(const RecipeStep& step, double out, double in)
{
    const MethodSpec* spec = findMethodSpec(step.action, step.method());
    if (spec && spec->work)
        return spec->work(readMethodParams(*spec, JsonParams(step.params)), out, in);
    switch (step.action) {
    case StepAction::Quantize: return {20.0 * out * in, 0.0}; // a scale and a rounding per weight
    case StepAction::Prune: return {30.0 * out * in, 0.0};    // a score and a partial sort per weight
    case StepAction::Factorize: return svdWork(out, in);
    // A fast Hadamard transform per row (n log n); the transposed copy of o and down.
    case StepAction::Rotate: return {2.0 * out * in * std::log2(std::max(2.0, in)), kFloat * out * in};
    case StepAction::KvCache: break; // no weights change
    }
    return {};
}

LayerWork layerWork(const RecipeStep& step, double out, double in)
{
    const JsonParams p(step.params);
    const double weights = out * in;
    const MethodWork mw = methodWork(step, out, in);
    LayerWork w;
    w.flops = mw.flops;
    w.workBytes = mw.workBytes;
    switch (step.action) {
    case StepAction::Quantize: {
        const QuantConfig c = quantizeOptionsFrom(p).config;
        const int group = c.grid.groupSize > 0 ? c.grid.groupSize : static_cast<int>(in);
        // Packed codes plus a float scale and a byte zero per group (model/packed_grid.h).
        double bits = c.grid.bits + 40.0 / group;
        if (const MethodSpec* spec = findMethodSpec(StepAction::Quantize, c.method); spec && spec->bitsPerWeight)
            bits = spec->bitsPerWeight(c, in);
        // LoRC / EoRA keep their F16 factors beside the base's codes (replaceTensorCorrected).
        if (const int64_t rank = std::max(c.lorcRank, c.eoraRank); rank > 0)
            bits += 16.0 * static_cast<double>(rank) * (out + in) / std::max(weights, 1.0);
        w.resultBytes = weights * bits / 8.0;
        if (c.lorcRank > 0 || c.eoraRank > 0)
            w.flops += 4.0 * out * in * std::min(out, in);
        break;
    }
    case StepAction::Prune:
        w.resultBytes = kFloat * weights; // pruned layers stay dense F32 with zeros
        break;
    case StepAction::Factorize: {
        const ModelFactorizeOptions o = factorizeOptionsFrom(p);
        const double k = std::max(1.0, std::round(o.rankRatio.value_or(0.5) * std::min(out, in)));
        w.resultBytes = kFloat * k * (out + in);
        break;
    }
    case StepAction::Rotate:
        w.resultBytes = kFloat * weights; // rotated weights are held as F32
        break;
    case StepAction::KvCache:
        break;
    }
    return w;
}

} // namespace

double JobCost::workingBytes() const
{
    double sum = 0.0;
    for (const MemoryPart& p : memory)
        sum += p.bytes;
    return sum;
}

const MemoryPart* JobCost::largestPart() const
{
    const MemoryPart* best = nullptr;
    for (const MemoryPart& p : memory)
        if (!best || p.bytes > best->bytes)
            best = &p;
    return best;
}

namespace {

// Stored bytes of the logical tensors `keep` accepts, each stored tensor once.
template <class Keep>
double storedBytesWhere(const Model& model, Keep keep)
{
    if (model.config.synthetic)
        return 0.0; // generated in memory: nothing to map
    std::set<size_t> seen;
    double bytes = 0.0;
    for (const LogicalTensor& t : model.tensors) {
        if (t.edited() || !keep(t) || !seen.insert(t.stored).second)
            continue;
        const TensorRef& s = model.stored.at(t.stored);
        if (!s.edited)
            bytes += static_cast<double>(s.nbytes);
    }
    return bytes;
}

} // namespace

double modelStoredBytes(const Model& model, int lastBlock)
{
    return storedBytesWhere(model, [lastBlock](const LogicalTensor& t) {
        if (lastBlock < 0)
            return true;
        if (t.block >= 0)
            return t.block <= lastBlock;
        return t.role == Role::Embedding || t.role == Role::PositionEmbedding || t.role == Role::EmbedProjIn;
    });
}

double tensorStoredBytes(const Model& model, const std::vector<std::string>& names)
{
    const std::set<std::string> wanted(names.begin(), names.end());
    return storedBytesWhere(model, [&](const LogicalTensor& t) { return wanted.count(t.logicalName) != 0; });
}

double blockFlopsPerToken(const Model& model, int block, int64_t context)
{
    double macs = 0.0;
    for (const LogicalTensor& t : model.tensors) {
        if (t.block != block || t.isBias || t.shape.size() != 2 || !isLinear(t.role))
            continue;
        macs += matrixMacs(model, t);
    }
    const ModelConfig& c = model.config;
    // q·k and p·v over context / 2 positions of history on average.
    macs += 2.0 * static_cast<double>(c.heads * c.headDim) * static_cast<double>(context) / 2.0;
    return 2.0 * macs;
}

double forwardBytesPerRow(const ModelConfig& c)
{
    const double attn = static_cast<double>(c.heads * c.headDim), kv = static_cast<double>(c.kvHeads * c.headDim);
    return kFloat * (3.0 * static_cast<double>(c.hidden) + 2.0 * attn + 2.0 * kv + 2.0 * static_cast<double>(c.intermediate));
}

JobCost estimateEvaluation(const Model& model, int64_t windows, int64_t context, int threads, int models)
{
    const ModelConfig& c = model.config;
    threads = std::max(1, threads);
    JobCost j;
    j.job = "evaluation of " + str(windows) + " windows of " + str(context) + " tokens";
    const double batchRows = static_cast<double>(evaluationWindowsPerBatch(c, windows, context, threads) * context);
    const std::string shorter = "a shorter context (" + str(context) + " now)";
    j.memory.push_back({"forward pass of one batch", models * batchRows * (forwardBytesPerRow(c) + kFloat * c.hidden), shorter});
    const double vocab = static_cast<double>(std::max<int64_t>(c.vocab, 1));
    const double chunk = std::min(kLogitChunkBytes, batchRows / threads * vocab * kFloat);
    j.memory.push_back({"logits", models * threads * chunk, shorter});
    // Each scored token's NLL in double, its id and its target.
    j.memory.push_back({"per-token results", (kDouble + 8.0) * static_cast<double>(windows * context),
                        "fewer windows (" + str(windows) + " now)"});
    j.modelBytes = modelStoredBytes(model);
    double perToken = 2.0 * static_cast<double>(c.hidden) * vocab; // the head
    for (int b = 0; b < c.layers; ++b)
        perToken += blockFlopsPerToken(model, b, context);
    j.flops = models * perToken * static_cast<double>(windows * context);
    return j;
}

JobCost estimateCalibration(const Model& model, const CalibrationShape& s)
{
    const ModelConfig& c = model.config;
    JobCost j;
    j.job = "calibration through blocks 0.." + str(s.lastBlock) + " on " + str(s.windows) + " windows of " + str(s.context) + " tokens";
    const double rows = static_cast<double>(s.windows * s.context);
    const double activations = rows * static_cast<double>(c.hidden) * kFloat;
    const std::string fewer = "fewer calibration windows (" + str(s.windows) + " now) or a shorter context (" + str(s.context) + ")";
    j.memory.push_back({"calibration activations", std::min(activations, s.activationBudgetBytes), fewer});
    j.spillBytes = std::max(0.0, activations - s.activationBudgetBytes);
    const double batchRows = static_cast<double>(windowsPerBatch(s.windows, s.context, s.threads) * s.context);
    j.memory.push_back({"forward pass of one batch", batchRows * (forwardBytesPerRow(c) + (s.sequential ? kFloat * c.hidden : 0.0)),
                        "a shorter context (" + str(s.context) + " now)"});
    if (s.grams) {
        // Each thread's float partial of X_wᵀX_w (a 256-column tile of the widest input) beside the double accumulators.
        int64_t widest = 0;
        for (int b = 0; b < c.layers; ++b)
            for (const auto& [role, in] : blockInputs(model, b))
                widest = std::max(widest, in);
        j.memory.push_back({"Hessians (XᵀX of one block)",
                            gramBytes(model) + s.threads * kFloat * static_cast<double>(widest)
                                                   * static_cast<double>(std::min<int64_t>(widest, 256)),
                            "a method that needs no Hessians (RTN, NF4, magnitude or Wanda pruning, SVD)"});
    }
    j.modelBytes = modelStoredBytes(model, s.lastBlock);
    double perToken = 0.0;
    for (int b = 0; b <= s.lastBlock && b < c.layers; ++b)
        perToken += blockFlopsPerToken(model, b, s.context);
    // Statistics blocks run once more when sequential (statistics, then compressed), and accumulate Grams.
    const int lastStats = std::min<int>(s.lastBlock, static_cast<int>(c.layers) - 1);
    for (int i = 0; i < s.statsBlocks && lastStats - i >= 0; ++i) {
        const int b = lastStats - i;
        if (s.sequential)
            perToken += blockFlopsPerToken(model, b, s.context);
        if (s.grams)
            perToken += gramFlopsPerToken(model, b);
    }
    j.flops = perToken * rows;
    return j;
}

namespace {

bool sequentialStats(const RecipeStep& step)
{
    const JsonParams p(step.params);
    const std::string stats = p.valueOr("stats", "auto");
    if (stats != "auto")
        return stats == "sequential";
    // GPTQ and its relatives, SparseGPT, Wanda: sequential by default; the rest one-shot (the registry says).
    const MethodSpec* spec = findMethodSpec(step.action, step.method());
    return spec && spec->sequentialByDefault;
}

// Merges `from` into `into`: memory parts side by side, work added.
void addCost(JobCost& into, const JobCost& from)
{
    for (const MemoryPart& p : from.memory)
        into.memory.push_back(p);
    into.modelBytes = std::max(into.modelBytes, from.modelBytes);
    into.spillBytes += from.spillBytes;
    into.flops += from.flops;
    into.fixedSeconds += from.fixedSeconds;
}

std::vector<const LogicalTensor*> logicalTargets(const Model& model, const std::vector<std::string>& names)
{
    std::vector<const LogicalTensor*> out;
    for (const std::string& n : names)
        out.push_back(&logical(model, n));
    return out;
}

} // namespace

JobCost estimateStep(const CompressionState& state, const RecipeStep& step, const std::vector<std::string>& targets,
                     const RecipeCalibration& calibration, int threads)
{
    const Model& model = *state.model;
    const std::vector<const LogicalTensor*> layers = logicalTargets(model, targets);
    JobCost j;
    j.job = step.badge() + " on " + (targets.size() == 1 ? targets.front() : str(static_cast<int64_t>(targets.size())) + " layers");
    const bool outputError = JsonParams(step.params).flag("output-error");
    if (step.usesCalibration() || outputError) {
        std::set<int> blocks;
        for (const LogicalTensor* t : layers)
            blocks.insert(t->block);
        CalibrationShape s;
        s.context = calibration.context;
        s.windows = step.usesCalibration() ? calibration.windows : std::min<int64_t>(calibration.windows, kOutputErrorWindows);
        s.lastBlock = blocks.empty() ? 0 : *blocks.rbegin();
        s.statsBlocks = static_cast<int>(blocks.size());
        s.sequential = step.usesCalibration() && sequentialStats(step);
        s.threads = threads;
        addCost(j, estimateCalibration(model, s));
    }
    // The layers it writes are read (a calibration pass reads its blocks as well).
    j.modelBytes = std::max(j.modelBytes, tensorStoredBytes(model, targets));
    double largest = 0.0, work = 0.0, results = 0.0, flops = 0.0;
    for (const LogicalTensor* t : layers) {
        const LayerWork w = layerWork(step, rowsOf(*t), colsOf(*t));
        largest = std::max(largest, rowsOf(*t) * colsOf(*t));
        work = std::max(work, w.workBytes);
        results += w.resultBytes;
        flops += w.flops;
        j.fixedSeconds += kStepSecondsPerWeight * rowsOf(*t) * colsOf(*t);
    }
    // W in F32, the method's result in F32, its error or update: three copies of the largest layer.
    j.memory.push_back({"the largest layer in F32 (3 copies)", 3.0 * kFloat * largest + work,
                        "fewer or smaller target layers"});
    // Edited tensors stay in memory while all edits fit the edit budget (util/spill_buffer.h), the rest spills.
    const double inMemory = std::min(results, std::max(0.0, static_cast<double>(editMemoryBudget())
                                                                 - static_cast<double>(editBytesInMemory())));
    j.memory.push_back({"compressed layers kept in the new state", inMemory,
                        step.action == StepAction::Quantize ? "fewer target layers" : "fewer target layers (pruned and low-rank layers are kept in F32)"});
    j.spillBytes += results - inMemory;
    j.flops += flops;
    return j;
}

JobCost estimatePreview(const CompressionState& state, const RecipeStep& step, const std::string& tensor,
                        int64_t calibrationWindows, int64_t context, int threads)
{
    const Model& model = *state.model;
    const LogicalTensor& t = logical(model, tensor);
    RecipeCalibration calib;
    calib.windows = calibrationWindows;
    calib.context = context;
    JobCost j = estimateStep(state, step, {tensor}, calib, threads);
    j.job = "preview of " + step.badge() + " on " + tensor;
    const bool outputError = JsonParams(step.params).flag("output-error");
    const double out = rowsOf(t), in = colsOf(t);
    if (step.usesCalibration() || outputError) {
        // The error curve's statistics: one more one-shot pass through blocks 0..block.
        CalibrationShape s;
        s.windows = step.usesCalibration() ? calibrationWindows : std::min<int64_t>(calibrationWindows, kOutputErrorWindows);
        s.context = context;
        s.lastBlock = t.block;
        s.sequential = false;
        s.threads = threads;
        j.flops += estimateCalibration(model, s).flops;
    }
    // The curve: the method at seven bit widths (or sparsities, ranks); before and after, twice each.
    j.flops += 7.0 * layerWork(step, out, in).flops;
    j.memory.push_back({"before and after values", 4.0 * kFloat * out * in, "a smaller tensor"});
    return j;
}

JobCost estimateSensitivity(const CompressionState& state, const RecipeStep& step, const std::vector<std::string>& targets,
                            int64_t windows, int64_t context, bool compareLogits, const RecipeCalibration& calibration,
                            int threads)
{
    const Model& model = *state.model;
    JobCost j = estimateEvaluation(model, windows, context, threads);
    j.job = "sensitivity of " + str(static_cast<int64_t>(targets.size())) + " layers to " + step.badge();
    if (compareLogits)
        j.memory.push_back({"the base model's log-probabilities",
                            kFloat * static_cast<double>(windows * (context - 1)) * static_cast<double>(model.config.vocab),
                            "fewer evaluation windows (" + str(windows) + " now), a shorter context (" + str(context)
                                + ") or Δperplexity instead of KL"});
    const double evalFlops = j.flops;
    double stepFlops = 0.0, worst = 0.0;
    for (const std::string& name : targets) {
        const JobCost one = estimateStep(state, step, {name}, calibration, threads);
        stepFlops += one.flops;
        j.fixedSeconds += one.fixedSeconds;
        worst = std::max(worst, one.workingBytes());
    }
    j.memory.push_back({"one layer's step", worst, "a method that needs no calibration"});
    j.flops = evalFlops * static_cast<double>(targets.size() + 1) + stepFlops;
    return j;
}

JobCost estimateExport(const Model& model)
{
    JobCost j;
    j.job = "export";
    double largest = 0.0;
    for (const LogicalTensor& t : model.tensors)
        largest = std::max(largest, static_cast<double>(t.elements()));
    j.memory.push_back({"the largest tensor in F32 and encoded", 2.0 * kFloat * largest, "another output type"});
    j.modelBytes = modelStoredBytes(model);
    j.flops = 10.0 * static_cast<double>(model.parameterCount());
    j.fixedSeconds = kStepSecondsPerWeight * static_cast<double>(model.parameterCount()); // decode, encode, write
    return j;
}

std::string formatGigabytes(double bytes)
{
    char buf[32];
    if (bytes < 1e6)
        std::snprintf(buf, sizeof buf, "%.0f kB", std::max(0.0, bytes) / 1e3);
    else if (bytes < 1e9)
        std::snprintf(buf, sizeof buf, "%.0f MB", bytes / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1e9);
    return buf;
}

FitCheck checkFits(const JobCost& cost, double availableBytes, double modelResidentBytes)
{
    FitCheck f;
    const double model = std::max(0.0, cost.modelBytes - std::max(0.0, modelResidentBytes));
    f.neededBytes = kFitMargin * (cost.workingBytes() + model);
    f.availableBytes = availableBytes;
    f.fits = f.neededBytes <= availableBytes;
    if (f.fits)
        return f;
    std::vector<const MemoryPart*> parts;
    for (const MemoryPart& p : cost.memory)
        if (p.bytes > 0.0)
            parts.push_back(&p);
    std::sort(parts.begin(), parts.end(), [](const MemoryPart* a, const MemoryPart* b) { return a->bytes > b->bytes; });
    std::string what;
    for (size_t i = 0; i < parts.size() && i < 3; ++i)
        what += (i ? ", " : "") + parts[i]->what + " " + formatGigabytes(parts[i]->bytes);
    if (model > 0.0)
        what += (what.empty() ? "" : ", ") + std::string("the model's weights ") + formatGigabytes(model);
    f.message = (cost.job.empty() ? std::string("This job") : cost.job) + " needs about " + formatGigabytes(f.neededBytes)
                + " of memory (" + what + "), but only " + formatGigabytes(availableBytes) + " is available.";
    const MemoryPart* first = cost.largestPart();
    if (first && first->bytes >= model && !first->remedy.empty())
        f.message += " Use " + first->remedy + ", or close other programs.";
    else
        f.message += " Close other programs, or open a smaller model or a more compressed copy of it.";
    return f;
}

} // namespace ll
