#include "pipeline/model_compression.h"
#include "pipeline/layer_driver.h"
#include "pipeline/sliced_layers.h"
#include "pipeline/store_values.h"

#include "quant/packed_storage.h"

#include "engine/transformer.h"
#include "lowrank/rank_choice.h"
#include "layer/layer_error.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/eta.h"
#include "util/input_file.h"
#include "util/progress.h"

#include <algorithm>
#include <initializer_list>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace ll {

namespace {

bool isBlockLinearWeight(const LogicalTensor& t)
{
    return t.block >= 0 && !t.isBias && isLinear(t.role) && t.shape.size() == 2;
}

std::string percent(double fraction)
{
    std::ostringstream s;
    const double p = fraction * 100.0;
    if (std::abs(p - std::round(p)) < 1e-9)
        s << static_cast<long long>(std::llround(p));
    else
        s << p;
    s << '%';
    return s.str();
}

// The statistics of one block input as the layer methods take them; the Gram
// matrix is converted to float into `gram` (and its double sums released).
LayerInputs layerInputsOf(InputStats& st, Eigen::MatrixXf& gram)
{
    LayerInputs in;
    if (st.hasGram()) {
        gram = st.gramFloat();
        st.releaseGram();
        in.gram = &gram;
    }
    in.inputNorm = st.l2Norm();
    in.meanAbs = st.meanAbs();
    return in;
}

// The statistics of one block's inputs, by linear (structured pruning's scores and errors).
class BlockInputs {
public:
    explicit BlockInputs(std::vector<InputStats>& stats) : stats_(stats) {}

    // Inputs of the linear `role` (empty LayerInputs when the input was not observed).
    LayerInputs forLinear(Role role)
    {
        const Role input = inputRoleOf(role);
        if (const auto it = inputs_.find(input); it != inputs_.end())
            return it->second; // the Gram matrix is converted once per input
        for (InputStats& st : stats_)
            if (st.role == input)
                return inputs_[input] = layerInputsOf(st, grams_[input]);
        return {};
    }

private:
    std::vector<InputStats>& stats_;
    std::map<Role, Eigen::MatrixXf> grams_;
    std::map<Role, LayerInputs> inputs_;
};

using CompressFn = std::function<CompressedLayer(const LogicalTensor&, const MatrixRM& W, const LayerInputs&, Progress*)>;

struct DriverSpec {
    bool needsStats = false;      // the method cannot run without calibration statistics
    bool needsGram = true;        // gather X^T X (also for the output error)
    CalibrationMode mode = CalibrationMode::OneShot;
    CalibrationOptions calibration;
    std::string what;             // "Wanda", for the message when calibration text is missing
    bool storeFactors = false;    // low rank: the model keeps A and B (replaceTensorFactored), not A B
};

// Low rank keeps the factors only where they are smaller than the product:
// k (out + in) < out in (rank 0 too: A (out, 0), B (0, in)).
bool storesFactors(const DriverSpec& spec, const CompressedLayer& c)
{
    const int64_t out = c.factorA.rows(), in = c.factorB.cols(), k = c.factorA.cols();
    return spec.storeFactors && out > 0 && in > 0 && k * (out + in) < out * in;
}

// storedDense: a low-rank result kept as the product (storesFactors false), which holds out * in parameters.
LayerOutcome outcomeOf(const LogicalTensor& t, const CompressedLayer& c, double seconds, bool storedDense)
{
    LayerOutcome o;
    o.name = t.logicalName;
    o.block = t.block;
    o.role = t.role;
    o.method = c.method;
    o.rowsBefore = o.rows = c.weights.rows();
    o.colsBefore = o.cols = c.weights.cols();
    o.paramsBefore = c.paramsBefore;
    o.paramsAfter = storedDense ? c.weights.size() : c.paramsAfter;
    o.sparsity = o.paramsBefore > 0 ? 1.0 - static_cast<double>(o.paramsAfter) / static_cast<double>(o.paramsBefore) : 0.0;
    o.weightError = c.error.weightError;
    o.outputError = c.error.outputError;
    o.seconds = seconds;
    return o;
}

} // namespace

void recordSlicedLayer(ModelCompressionResult& r, const LogicalTensor& t, int64_t b, const MatrixRM& W,
                       const MatrixRM& slicedW, bool rows, const std::vector<char>& isKept, const LayerInputs& in)
{
    MatrixRM zeroed = W;
    for (size_t j = 0; j < isKept.size(); ++j)
        if (!isKept[j]) {
            if (rows)
                zeroed.row(static_cast<int64_t>(j)).setZero();
            else
                zeroed.col(static_cast<int64_t>(j)).setZero();
        }
    const LayerErrorReport err = layerErrorReport(W, zeroed, in.gram);
    LayerOutcome o;
    o.name = t.logicalName;
    o.block = b;
    o.role = t.role;
    o.method = r.method;
    o.rowsBefore = W.rows();
    o.colsBefore = W.cols();
    o.rows = slicedW.rows();
    o.cols = slicedW.cols();
    o.paramsBefore = W.size();
    o.paramsAfter = slicedW.size();
    o.sparsity = 1.0 - static_cast<double>(o.paramsAfter) / static_cast<double>(o.paramsBefore);
    o.weightError = err.weightError;
    o.outputError = err.outputError;
    r.layers.push_back(std::move(o));
    storeDense(*r.model, t.logicalName, slicedW);
}

namespace {

// Runs `compress` on every target, with statistics when calibration tokens are given.
ModelCompressionResult compressLinears(const Model& source, const std::vector<const LogicalTensor*>& targets,
                                       const DriverSpec& spec, std::span<const int32_t> calibrationTokens,
                                       const CompressFn& compress, Progress* progress)
{
    const EtaClock clock;
    if (spec.needsStats && calibrationTokens.empty())
        fail(ErrorCode::InvalidArgument, source.path,
             spec.what + " needs calibration text (the statistics of each layer's inputs)");
    ModelCompressionResult r;
    r.model = std::make_unique<Model>(source);

    // Dense results are kept in the tensor's type (store_values.h): rounded to
    // it here, so that the weight error and the engine see what is stored. (The
    // output error stays the method's, measured before the rounding: measuring
    // it again costs out * in^2, and BF16's rounding moves it by about 0.2 %.)
    const auto apply = [&](const LogicalTensor& t, const MatrixRM& W, CompressedLayer& c, double seconds) {
        const bool factored = storesFactors(spec, c);
        const DType type = denseEditType(*r.model, t.logicalName);
        if (!factored && type != DType::F32 && roundToType(c.weights, type)) {
            const LayerErrorReport rounded = layerErrorReport(W, c.weights);
            c.error.weightError = rounded.weightError;
            c.error.errorStats = rounded.errorStats;
        }
        LayerOutcome o = outcomeOf(t, c, seconds, spec.storeFactors && !factored);
        if (factored)
            replaceTensorFactored(*r.model, t.logicalName, c.factorA, c.factorB);
        else
            storeDense(*r.model, t.logicalName, c.weights);
        return o;
    };

    LayerDriverOptions driver;
    driver.calibration = spec.calibration;
    driver.mode = spec.mode;
    driver.gram = spec.needsGram;
    driver.requireStats = spec.needsStats;
    compressTargets(source, targets, calibrationTokens, driver, r,
        [&](InputGroup& g, Progress* progress) {
            // The input's statistics as the layer methods take them (none without calibration).
            Eigen::MatrixXf gram;
            const LayerInputs in = g.stats ? layerInputsOf(*g.stats, gram) : LayerInputs{};
            std::vector<LayerOutcome> out;
            const double n = static_cast<double>(g.tensors.size());
            for (size_t i = 0; i < g.tensors.size(); ++i) {
                const EtaClock layerClock;
                SubProgress sub(progress, static_cast<double>(i) / n, static_cast<double>(i + 1) / n);
                CompressedLayer c = compress(*g.tensors[i], g.weights[i], in, &sub);
                out.push_back(apply(*g.tensors[i], g.weights[i], c, layerClock.elapsed()));
            }
            return out;
        },
        progress);
    r.countParameters(source);
    r.seconds = clock.elapsed();
    if (progress)
        progress->report(1.0, "done");
    return r;
}

} // namespace

const std::string& defaultTargetPattern()
{
    static const std::string p = R"(^blocks\.\d+\.(attn\.(q|k|v|o)|mlp\.(gate|up|down))\.weight$)";
    return p;
}

std::vector<const LogicalTensor*> selectTargets(const Model& model, const std::string& pattern)
{
    const std::string& p = pattern.empty() ? defaultTargetPattern() : pattern;
    std::regex re;
    try {
        re = std::regex(p, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        fail(ErrorCode::InvalidArgument, "", "the layer pattern '" + p + "' is not a valid regular expression (" + e.what() + ")");
    }
    std::vector<const LogicalTensor*> out;
    for (const LogicalTensor& t : model.tensors)
        if (isBlockLinearWeight(t) && std::regex_search(t.logicalName, re))
            out.push_back(&t);
    if (out.empty())
        fail(ErrorCode::InvalidArgument, model.path,
             "the layer pattern '" + p + "' matches none of the linear weights inside the blocks (names such as "
                 "blocks.0.attn.q.weight, blocks.0.mlp.down.weight)");
    return out;
}

ModelCompressionResult pruneModel(const Model& source, const ModelPruneOptions& options,
                                  std::span<const int32_t> calibrationTokens, Progress* progress)
{
    PruneConfig cfg = options.layer;
    cfg.countRule = options.countRule ? *options.countRule
                                      : cfg.method == PruneMethod::Wanda ? CountRule::Exact : CountRule::Inclusive;
    if (cfg.nm)
        validateNM(*cfg.nm);
    else
        validateSparsity(cfg.sparsity);
    const bool usesStats = cfg.method == PruneMethod::Wanda || cfg.method == PruneMethod::SparseGpt;
    DriverSpec spec;
    spec.needsStats = usesStats;
    spec.mode = resolveStatsMode(options.mode, usesStats ? CalibrationMode::Sequential : CalibrationMode::OneShot);
    spec.calibration = options.calibration;
    spec.what = cfg.method == PruneMethod::Wanda ? "Wanda" : "SparseGPT";
    const auto targets = selectTargets(source, options.layers);
    ModelCompressionResult r = compressLinears(
        source, targets, spec, calibrationTokens,
        [&](const LogicalTensor&, const MatrixRM& W, const LayerInputs& in, Progress* p) {
            return pruneLayer(W, cfg, in, p);
        },
        progress);
    r.method = r.layers.empty() ? std::string(pruneMethodName(cfg.method)) : r.layers.front().method;
    return r;
}

ModelCompressionResult factorizeModel(const Model& source, const ModelFactorizeOptions& options,
                                      std::span<const int32_t> calibrationTokens, Progress* progress)
{
    if (options.rankRatio.has_value() == options.energy.has_value())
        fail(ErrorCode::InvalidArgument, "", "give exactly one of a rank ratio or an energy fraction");
    if (options.rankRatio && !(*options.rankRatio >= 0.0 && *options.rankRatio <= 1.0))
        fail(ErrorCode::InvalidArgument, "", "the rank ratio must lie between 0 and 1");
    if (options.energy && !(*options.energy >= 0.0 && *options.energy <= 1.0))
        fail(ErrorCode::InvalidArgument, "", "the energy fraction must lie between 0 and 1");
    const bool usesStats = options.method == LowRankMethod::Asvd || options.method == LowRankMethod::Whitened;
    DriverSpec spec;
    spec.needsStats = usesStats;
    spec.mode = resolveStatsMode(options.mode, CalibrationMode::OneShot);
    spec.calibration = options.calibration;
    spec.what = options.method == LowRankMethod::Asvd ? "ASVD" : "SVD-LLM";
    spec.storeFactors = options.keepFactors;
    LowRankConfig cfg;
    cfg.method = options.method;
    cfg.asvdAlpha = options.asvdAlpha;
    const auto targets = selectTargets(source, options.layers);
    std::map<std::string, std::pair<int64_t, std::pair<MatrixRM, MatrixRM>>> factors;
    ModelCompressionResult r = compressLinears(
        source, targets, spec, calibrationTokens,
        [&](const LogicalTensor& t, const MatrixRM& W, const LayerInputs& in, Progress* p) {
            LowRankConfig c = cfg;
            c.rank = options.rankRatio ? rankForFraction(*options.rankRatio, W.rows(), W.cols())
                                       : std::min(W.rows(), W.cols());
            SubProgress basisProgress(p, 0.0, 0.9);
            const SvdBasis basis = lowRankBasis(W, c, in, c.rank, &basisProgress);
            if (options.energy)
                c.rank = rankForEnergy(basis.sigma, *options.energy);
            CompressedLayer layer = compressedFromFactors(W, truncate(basis, c.rank), c, in);
            factors[t.logicalName] = {c.rank, {layer.factorA, layer.factorB}};
            return layer;
        },
        progress);
    for (LayerOutcome& o : r.layers) {
        auto it = factors.find(o.name);
        if (it == factors.end())
            continue;
        o.rank = it->second.first;
        o.factorA = std::move(it->second.second.first);
        o.factorB = std::move(it->second.second.second);
    }
    r.method = std::string(lowRankMethodName(options.method))
               + (options.rankRatio ? " rank " + percent(*options.rankRatio) : " energy " + percent(*options.energy));
    return r;
}

namespace {

// One-shot statistics of the inputs `roles` of every block (empty without
// calibration tokens), for structured pruning's scores and output errors.
// Records the tokens used in r; progress 0..0.7.
std::vector<std::vector<InputStats>> oneShotBlockStats(const Model& source, std::span<const int32_t> calibrationTokens,
                                                       const CalibrationOptions& calibration, std::initializer_list<Role> roles,
                                                       ModelCompressionResult& r, Progress* progress)
{
    const int layers = static_cast<int>(source.config.layers);
    std::vector<std::vector<InputStats>> stats(static_cast<size_t>(layers));
    if (calibrationTokens.empty())
        return stats;
    const std::vector<int32_t> windows = calibrationWindows(calibrationTokens, calibration);
    r.calibrationTokens = static_cast<int64_t>(windows.size());
    SubProgress loading(progress, 0.0, 0.05);
    Transformer model(source, &loading);
    std::vector<int> blocks(static_cast<size_t>(layers));
    for (int b = 0; b < layers; ++b)
        blocks[static_cast<size_t>(b)] = b;
    BlockStatsOptions bo;
    bo.calibration = calibration;
    bo.mode = CalibrationMode::OneShot;
    SubProgress passes(progress, 0.05, 0.7);
    forEachBlockStats(model, windows, blocks, bo,
                      [&](int block, std::vector<InputStats>& s, Progress*) {
                          for (InputStats& st : s)
                              if (std::find(roles.begin(), roles.end(), st.role) != roles.end())
                                  stats[static_cast<size_t>(block)].push_back(std::move(st));
                      },
                      &passes);
    return stats;
}

} // namespace

ModelCompressionResult pruneMlpNeurons(const Model& source, const StructuredMlpOptions& options,
                                       std::span<const int32_t> calibrationTokens, Progress* progress)
{
    const EtaClock t0;
    validateSparsity(options.ratio);
    const bool aware = options.score == StructuredScore::ActivationAware;
    if (aware && calibrationTokens.empty())
        fail(ErrorCode::InvalidArgument, source.path,
             "activation-aware neuron pruning needs calibration text (the norms of the down projection's inputs)");
    const int layers = static_cast<int>(source.config.layers);
    if (layers <= 0)
        fail(ErrorCode::InvalidArgument, source.path, "the model has no blocks");

    // Every block must have the same width: one intermediate_size for all.
    int64_t ff = -1;
    for (int b = 0; b < layers; ++b) {
        const LogicalTensor* up = source.find(b, Role::MlpUp);
        const LogicalTensor* down = source.find(b, Role::MlpDown);
        if (!up || !down || up->shape.size() != 2)
            fail(ErrorCode::InvalidArgument, source.path, "block " + std::to_string(b) + " has no MLP up / down projection");
        if (ff >= 0 && up->shape[0] != ff)
            fail(ErrorCode::InvalidArgument, source.path,
                 "the blocks' MLP widths differ; neuron pruning keeps one width for every block");
        ff = up->shape[0];
    }
    const int64_t keep = keepCountFor(options.ratio, ff);
    if (keep < 1)
        fail(ErrorCode::InvalidArgument, source.path, "pruning " + percent(options.ratio) + " of " + std::to_string(ff)
                                                          + " neurons leaves none");

    ModelCompressionResult r;
    r.model = std::make_unique<Model>(source);
    r.method = "neurons " + percent(options.ratio) + (aware ? " (activation-aware)" : " (magnitude)");
    r.statsMode = calibrationTokens.empty() ? "none" : "one-shot";

    // One-shot statistics of every block's inputs (down's norms for the score, Grams for the output errors).
    std::vector<std::vector<InputStats>> stats =
        oneShotBlockStats(source, calibrationTokens, options.calibration, {Role::MlpUp, Role::MlpDown}, r, progress);

    for (int b = 0; b < layers; ++b) {
        throwIfCancelled(progress);
        if (progress)
            progress->report(0.7 + 0.3 * b / layers, "pruning the neurons of block " + std::to_string(b));
        const EtaClock l0;
        const LogicalTensor* gateT = source.find(b, Role::MlpGate);
        const LogicalTensor* upT = source.find(b, Role::MlpUp);
        const LogicalTensor* downT = source.find(b, Role::MlpDown);
        MlpWeights mlp;
        if (gateT)
            mlp.gate = readMatrix(source, *gateT);
        mlp.up = readMatrix(source, *upT);
        mlp.down = readMatrix(source, *downT);
        BlockInputs inputs(stats[static_cast<size_t>(b)]);
        const LayerInputs upIn = inputs.forLinear(Role::MlpUp), downIn = inputs.forLinear(Role::MlpDown);
        const std::vector<double> importance =
            mlpNeuronImportance(mlp, options.score, aware ? &downIn.inputNorm : nullptr);
        const std::vector<int64_t> kept = keepMostImportant(importance, keep);
        const MlpWeights sliced = sliceMlp(mlp, kept);
        std::vector<char> isKept(static_cast<size_t>(ff), 0);
        for (int64_t j : kept)
            isKept[static_cast<size_t>(j)] = 1;

        // Errors with the removed neurons as zeros (rows of gate / up, columns of down).
        const auto record = [&](const LogicalTensor& t, const MatrixRM& W, const MatrixRM& slicedW, bool rowsAreNeurons,
                                const LayerInputs& in) {
            recordSlicedLayer(r, t, b, W, slicedW, rowsAreNeurons, isKept, in);
        };
        if (gateT)
            record(*gateT, mlp.gate, sliced.gate, true, upIn);
        record(*upT, mlp.up, sliced.up, true, upIn);
        record(*downT, mlp.down, sliced.down, false, downIn);
        // Biases of the neurons (gpt2, opt, gpt_neox): the kept entries.
        for (Role role : {Role::MlpGate, Role::MlpUp}) {
            const LogicalTensor* bias = source.find(b, role, true);
            if (!bias)
                continue;
            const std::vector<float> v = readLogical(source, *bias);
            if (static_cast<int64_t>(v.size()) != ff)
                fail(ErrorCode::Malformed, source.path, bias->logicalName + " does not have one value per neuron");
            std::vector<float> k;
            k.reserve(kept.size());
            for (int64_t j : kept)
                k.push_back(v[static_cast<size_t>(j)]);
            replaceTensor(*r.model, bias->logicalName, std::move(k), {keep});
        }
        const double s = l0.elapsed();
        for (size_t i = r.layers.size() - (gateT ? 3 : 2); i < r.layers.size(); ++i)
            r.layers[i].seconds = s / (gateT ? 3.0 : 2.0);
    }
    r.model->config.intermediate = keep;
    // The Hugging Face config carried into an export: the exporter compares the
    // tensors' widths with ModelConfig, which now says `keep` already.
    if (source.format == "safetensors" && r.model->metadata.is_object()) {
        const char* key = source.config.family == Family::Gpt2  ? "n_inner"
                          : source.config.family == Family::Opt ? "ffn_dim"
                                                                : "intermediate_size";
        r.model->metadata[key] = keep;
    }
    r.countParameters(source);
    r.seconds = t0.elapsed();
    if (progress)
        progress->report(1.0, "done");
    return r;
}

ModelCompressionResult pruneAttentionHeads(const Model& source, const StructuredAttentionOptions& options,
                                           std::span<const int32_t> calibrationTokens, Progress* progress)
{
    const EtaClock t0;
    validateSparsity(options.ratio);
    const bool aware = options.score == StructuredScore::ActivationAware;
    if (aware && calibrationTokens.empty())
        fail(ErrorCode::InvalidArgument, source.path,
             "activation-aware head pruning needs calibration text (the norms of the output projection's inputs)");
    const ModelConfig& c = source.config;
    const int layers = static_cast<int>(c.layers);
    if (layers <= 0)
        fail(ErrorCode::InvalidArgument, source.path, "the model has no blocks");
    if (c.family == Family::Gpt2 || c.family == Family::Opt || c.family == Family::GptNeoX)
        fail(ErrorCode::InvalidArgument, source.path,
             std::string(familyName(c.family))
                 + " configs derive the head size from the hidden size, so fewer heads cannot be described; "
                   "head pruning needs a llama-style config (num_key_value_heads, head_dim)");
    const AttentionShape shape{c.heads, c.kvHeads, c.headDim};
    if (shape.heads <= 0 || shape.kvHeads <= 0 || shape.headDim <= 0 || shape.heads % shape.kvHeads != 0)
        fail(ErrorCode::InvalidArgument, source.path,
             "attention with " + std::to_string(shape.heads) + " heads and " + std::to_string(shape.kvHeads)
                 + " KV heads has no whole KV groups");
    const int64_t qDim = shape.heads * shape.headDim, kvDim = shape.kvHeads * shape.headDim;
    for (int b = 0; b < layers; ++b) {
        for (Role role : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO}) {
            const LogicalTensor* t = source.find(b, role);
            if (!t || t->shape.size() != 2)
                fail(ErrorCode::InvalidArgument, source.path,
                     "block " + std::to_string(b) + " has no separate q, k, v and o projections");
            const int64_t width = role == Role::AttnO ? t->shape[1] : t->shape[0];
            const int64_t want = role == Role::AttnQ || role == Role::AttnO ? qDim : kvDim;
            if (width != want)
                fail(ErrorCode::InvalidArgument, source.path,
                     t->logicalName + " does not match the config's heads (the blocks' head counts must be "
                                      "those of the config)");
        }
    }
    const int64_t keep = keepCountFor(options.ratio, shape.kvHeads);
    if (keep < 1)
        fail(ErrorCode::InvalidArgument, source.path, "pruning " + percent(options.ratio) + " of " + std::to_string(shape.kvHeads)
                                                          + " KV groups leaves none");

    ModelCompressionResult r;
    r.model = std::make_unique<Model>(source);
    r.method = "heads " + percent(options.ratio) + (aware ? " (activation-aware)" : " (magnitude)");
    r.statsMode = calibrationTokens.empty() ? "none" : "one-shot";

    // One-shot statistics of the attention inputs (o's norms for the score, Grams for the output errors).
    std::vector<std::vector<InputStats>> stats =
        oneShotBlockStats(source, calibrationTokens, options.calibration, {Role::AttnQ, Role::AttnO}, r, progress);

    const int64_t hd = shape.headDim, g = shape.groupSize();
    for (int b = 0; b < layers; ++b) {
        throwIfCancelled(progress);
        if (progress)
            progress->report(0.7 + 0.3 * b / layers, "pruning the attention heads of block " + std::to_string(b));
        const EtaClock l0;
        const LogicalTensor* qT = source.find(b, Role::AttnQ);
        const LogicalTensor* kT = source.find(b, Role::AttnK);
        const LogicalTensor* vT = source.find(b, Role::AttnV);
        const LogicalTensor* oT = source.find(b, Role::AttnO);
        AttentionWeights attn;
        attn.q = readMatrix(source, *qT);
        attn.k = readMatrix(source, *kT);
        attn.v = readMatrix(source, *vT);
        attn.o = readMatrix(source, *oT);
        attn.shape = shape;
        BlockInputs inputs(stats[static_cast<size_t>(b)]);
        const LayerInputs qIn = inputs.forLinear(Role::AttnQ), oIn = inputs.forLinear(Role::AttnO);
        const std::vector<double> importance =
            attentionGroupImportance(attn, options.score, aware ? &oIn.inputNorm : nullptr);
        const std::vector<int64_t> kept = keepMostImportant(importance, keep);
        const AttentionWeights sliced = sliceAttention(attn, kept);

        // The kept channels, in sliceAttention's order: q (and o's columns) per query head, k / v per KV head.
        std::vector<int64_t> qChannels, kvChannels;
        for (int64_t kv : kept) {
            for (int64_t j = 0; j < g * hd; ++j)
                qChannels.push_back(kv * g * hd + j);
            for (int64_t j = 0; j < hd; ++j)
                kvChannels.push_back(kv * hd + j);
        }
        std::vector<char> qKept(static_cast<size_t>(qDim), 0), kvKept(static_cast<size_t>(kvDim), 0);
        for (int64_t j : qChannels)
            qKept[static_cast<size_t>(j)] = 1;
        for (int64_t j : kvChannels)
            kvKept[static_cast<size_t>(j)] = 1;

        // Errors with the removed heads as zeros (rows of q / k / v, columns of o).
        const size_t first = r.layers.size();
        const auto record = [&](const LogicalTensor& t, const MatrixRM& W, const MatrixRM& slicedW, bool rows,
                                const std::vector<char>& isKept, const LayerInputs& in) {
            recordSlicedLayer(r, t, b, W, slicedW, rows, isKept, in);
        };
        record(*qT, attn.q, sliced.q, true, qKept, qIn);
        record(*kT, attn.k, sliced.k, true, kvKept, qIn);
        record(*vT, attn.v, sliced.v, true, kvKept, qIn);
        record(*oT, attn.o, sliced.o, false, qKept, oIn);
        // Biases of q, k, v (qwen2): the kept channels. o's bias (per output) stays.
        for (Role role : {Role::AttnQ, Role::AttnK, Role::AttnV}) {
            const LogicalTensor* bias = source.find(b, role, true);
            if (!bias)
                continue;
            const std::vector<int64_t>& channels = role == Role::AttnQ ? qChannels : kvChannels;
            const std::vector<float> v = readLogical(source, *bias);
            if (static_cast<int64_t>(v.size()) != (role == Role::AttnQ ? qDim : kvDim))
                fail(ErrorCode::Malformed, source.path, bias->logicalName + " does not have one value per channel");
            std::vector<float> k;
            k.reserve(channels.size());
            for (int64_t j : channels)
                k.push_back(v[static_cast<size_t>(j)]);
            replaceTensor(*r.model, bias->logicalName, std::move(k), {static_cast<int64_t>(channels.size())});
        }
        const double s = l0.elapsed();
        for (size_t i = first; i < r.layers.size(); ++i)
            r.layers[i].seconds = s / 4.0;
    }
    r.model->config.heads = keep * g;
    r.model->config.kvHeads = keep;
    // The Hugging Face config carried into an export (the exporter compares the
    // tensors' widths with ModelConfig, which already has the new counts).
    if (source.format == "safetensors" && r.model->metadata.is_object()) {
        r.model->metadata["num_attention_heads"] = keep * g;
        r.model->metadata["num_key_value_heads"] = keep;
        if (keep * g * hd != c.hidden)
            r.model->metadata["head_dim"] = hd; // no longer hidden / heads
    }
    r.countParameters(source);
    r.seconds = t0.elapsed();
    if (progress)
        progress->report(1.0, "done");
    return r;
}

std::vector<int32_t> tokenizeTextFile(const Model& model, const std::string& path)
{
    return loadTokenizer(model)->encode(readInputFile(path, kMaxTextFileBytes, "the text file"), true);
}

} // namespace ll
