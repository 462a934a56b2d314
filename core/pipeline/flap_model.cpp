#include "pipeline/flap_model.h"

#include "engine/transformer.h"
#include "model/naming.h"
#include "pipeline/sliced_layers.h"
#include "prune/flap.h"
#include "prune/structured.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

namespace ll {

namespace {

// Σx and Σx² of o_proj's (module 0) and down_proj's (module 1) inputs, per
// block. The engine calls observers from several threads at once.
class MomentObserver : public LinearInputObserver {
public:
    explicit MomentObserver(int64_t layers) : sums_(2 * layers), squares_(2 * layers), rows_(2 * layers, 0) {}

    void linearInput(int block, Role role, const ConstMatrixRef& x) override
    {
        if (role != Role::AttnO && role != Role::MlpDown)
            return;
        std::lock_guard<std::mutex> lock(mutex_);
        const size_t i = slot(block, role == Role::AttnO ? 0 : 1);
        if (sums_[i].size() == 0) {
            sums_[i] = Eigen::VectorXd::Zero(x.cols());
            squares_[i] = Eigen::VectorXd::Zero(x.cols());
        }
        // In slices of rows: a 7B's down_proj input in double at once would be gigabytes.
        for (Eigen::Index r0 = 0; r0 < x.rows(); r0 += 256) {
            const Eigen::Index n = std::min<Eigen::Index>(256, x.rows() - r0);
            const Eigen::MatrixXd part = x.middleRows(r0, n).cast<double>();
            sums_[i] += part.colwise().sum().transpose();
            squares_[i] += part.cwiseAbs2().colwise().sum().transpose();
        }
        rows_[i] += x.rows();
    }

    ChannelMoments moments(int block, int module, const std::string& path) const
    {
        const size_t i = slot(block, module);
        if (rows_[i] == 0)
            fail(ErrorCode::Malformed, path, "the calibration pass did not reach block " + std::to_string(block));
        return ChannelMoments::fromSums(sums_[i], squares_[i], rows_[i]);
    }

private:
    static size_t slot(int block, int module) { return static_cast<size_t>(2 * block + module); }
    std::mutex mutex_;
    std::vector<Eigen::VectorXd> sums_, squares_;
    std::vector<int64_t> rows_;
};

// The stored name a new bias gets: its weight's, ".weight" -> ".bias" (the
// Hugging Face and GGUF conventions), so that exports of the source layout
// write it where transformers and llama.cpp look.
std::string biasStoredName(const Model& m, const LogicalTensor& weight)
{
    std::string name = m.storedOf(weight).name;
    const std::string suffix = ".weight";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        return name.substr(0, name.size() - suffix.size()) + ".bias";
    return logicalNameOf(weight.role, weight.block, true);
}

// Adds `delta` to the bias of linear (block, role), creating a zero bias first.
void addToBias(Model& m, int block, Role role, const Eigen::VectorXf& delta)
{
    if (const LogicalTensor* bias = m.find(block, role, true)) {
        std::vector<float> v = readLogical(m, *bias);
        if (static_cast<Eigen::Index>(v.size()) != delta.size())
            fail(ErrorCode::Malformed, m.path, bias->logicalName + " does not have one value per output");
        for (size_t i = 0; i < v.size(); ++i)
            v[i] += delta[static_cast<Eigen::Index>(i)];
        replaceTensor(m, bias->logicalName, std::move(v), {delta.size()});
        return;
    }
    const LogicalTensor* weight = m.find(block, role);
    auto values = std::make_shared<std::vector<float>>(delta.data(), delta.data() + delta.size());
    TensorRef ref;
    ref.name = biasStoredName(m, *weight);
    ref.shape = {delta.size()};
    ref.dtype = DType::F32;
    ref.dtypeLabel = "F32";
    ref.sourceFile = "(in memory)";
    ref.nbytes = values->size() * sizeof(float);
    ref.data = reinterpret_cast<const uint8_t*>(values->data());
    ref.keepAlive = values;
    ref.edited = true;
    m.stored.push_back(std::move(ref));
    LogicalTensor t;
    t.logicalName = logicalNameOf(role, block, true);
    t.role = role;
    t.block = block;
    t.isBias = true;
    t.stored = m.stored.size() - 1;
    t.shape = {delta.size()};
    m.tensors.push_back(std::move(t));
}

std::vector<char> keptFlags(const std::vector<int64_t>& kept, int64_t units, int64_t width)
{
    std::vector<char> flags(static_cast<size_t>(units * width), 0);
    for (int64_t u : kept)
        std::fill_n(flags.begin() + u * width, width, 1);
    return flags;
}

} // namespace

nlohmann::json FlapResult::toJson() const
{
    nlohmann::json j = compression.toJson();
    j["flap"] = {{"kv_groups", {groupsBefore, groupsBefore - groupsRemoved}},
                 {"neurons", {neuronsBefore, neuronsBefore - neuronsRemoved}},
                 {"group_scores", groupScores},
                 {"neuron_scores", neuronScores}};
    return j;
}

FlapResult flapPrune(const Model& source, const FlapOptions& o, std::span<const int32_t> calibrationTokens,
                     Progress* progress)
{
    const auto t0 = std::chrono::steady_clock::now();
    const ModelConfig& c = source.config;
    if (!(o.ratio >= 0.0 && o.ratio < 1.0))
        fail(ErrorCode::InvalidArgument, source.path, "FLAP's ratio must be in [0, 1)");
    if (c.family != Family::Llama)
        fail(ErrorCode::UnsupportedArch, source.path,
             "FLAP here prunes llama-family models (" + std::string(familyName(c.family))
                 + " configs cannot hold the compensating o_proj / down_proj biases, or derive the head size from the hidden size)");
    if (calibrationTokens.empty())
        fail(ErrorCode::InvalidArgument, source.path, "FLAP needs calibration text (the fluctuation of each channel is measured on it)");
    if (c.onlineDownRotation)
        fail(ErrorCode::InvalidArgument, source.path, "pruning neurons would break the online rotation of down_proj's input");
    const int layers = static_cast<int>(c.layers);
    const AttentionShape shape{c.heads, c.kvHeads, c.headDim};
    if (layers <= 0 || shape.heads <= 0 || shape.kvHeads <= 0 || shape.headDim <= 0 || shape.heads % shape.kvHeads != 0)
        fail(ErrorCode::InvalidArgument, source.path, "FLAP needs blocks with whole KV groups");
    const int64_t g = shape.groupSize(), hd = shape.headDim, d = c.hidden;
    for (int b = 0; b < layers; ++b)
        for (Role role : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpGate, Role::MlpUp, Role::MlpDown})
            if (!source.find(b, role))
                fail(ErrorCode::InvalidArgument, source.path,
                     "block " + std::to_string(b) + " has no " + std::string(roleName(role)) + " (FLAP needs separate projections)");
    const int64_t ff = source.find(0, Role::MlpUp)->shape[0];

    FlapResult out;
    ModelCompressionResult& r = out.compression;
    r.model = std::make_unique<Model>(source);
    r.statsMode = "one-shot";
    out.groupsBefore = shape.kvHeads;
    out.neuronsBefore = ff;

    // One pass: the moments of o's and down's inputs in every block.
    const std::vector<int32_t> windows = calibrationWindows(calibrationTokens, o.calibration);
    r.calibrationTokens = static_cast<int64_t>(windows.size());
    MomentObserver moments(layers);
    {
        SubProgress loading(progress, 0.0, 0.05);
        const Transformer t(source, &loading);
        if (progress)
            progress->report(0.05, "FLAP: measuring the fluctuation of every channel");
        MatrixRM x = t.embedWindows(windows, o.calibration.context);
        t.runBlocks(x, o.calibration.context, 0, layers - 1, &moments);
    }
    throwIfCancelled(progress);

    // Scores of every block's KV groups (the sum over their o channels) and neurons.
    std::vector<ChannelMoments> oIn, downIn;
    std::vector<std::vector<double>> standardizedGroups, standardizedNeurons;
    for (int b = 0; b < layers; ++b) {
        oIn.push_back(moments.moments(b, 0, source.path));
        downIn.push_back(moments.moments(b, 1, source.path));
        const MatrixRM O = readMatrix(source, *source.find(b, Role::AttnO));
        const MatrixRM Down = readMatrix(source, *source.find(b, Role::MlpDown));
        if (Down.cols() != ff)
            fail(ErrorCode::InvalidArgument, source.path, "the blocks' MLP widths differ; FLAP keeps one width for every block");
        out.groupScores.push_back(groupSums(fluctuationScores(O, oIn.back()), g * hd));
        out.neuronScores.push_back(fluctuationScores(Down, downIn.back()));
        standardizedGroups.push_back(standardized(out.groupScores.back()));
        standardizedNeurons.push_back(standardized(out.neuronScores.back()));
    }

    // How many units of each module go in every block.
    if (o.structure == FlapOptions::Structure::Uniform) {
        out.groupsRemoved = shape.kvHeads - keepCountFor(o.ratio, shape.kvHeads);
        out.neuronsRemoved = ff - keepCountFor(o.ratio, ff);
    } else {
        const double groupCost = static_cast<double>((2 * g + 2) * hd * d), neuronCost = static_cast<double>(3 * d);
        const std::vector<int64_t> removed =
            adaptiveRemovalCounts({standardizedGroups, standardizedNeurons}, {groupCost, neuronCost}, o.ratio);
        out.groupsRemoved = static_cast<int64_t>(std::llround(static_cast<double>(removed[0]) / layers));
        out.neuronsRemoved = static_cast<int64_t>(std::llround(static_cast<double>(removed[1]) / layers));
    }
    if (out.groupsRemoved >= shape.kvHeads || out.neuronsRemoved >= ff)
        fail(ErrorCode::InvalidArgument, source.path,
             "FLAP at " + std::to_string(static_cast<int>(std::lround(100 * o.ratio)))
                 + " % would leave a block without attention or MLP; use a lower ratio");
    const int64_t keepGroups = shape.kvHeads - out.groupsRemoved, keepNeurons = ff - out.neuronsRemoved;
    // Each layer's row says "flap 20%"; the whole step's line says what went.
    r.method = "flap " + std::to_string(static_cast<int>(std::lround(100 * o.ratio))) + "%";

    for (int b = 0; b < layers; ++b) {
        throwIfCancelled(progress);
        if (progress)
            progress->report(0.7 + 0.3 * b / layers, "FLAP: pruning block " + std::to_string(b));
        const auto l0 = std::chrono::steady_clock::now();
        const size_t first = r.layers.size();
        const LogicalTensor* qT = source.find(b, Role::AttnQ);
        const LogicalTensor* kT = source.find(b, Role::AttnK);
        const LogicalTensor* vT = source.find(b, Role::AttnV);
        const LogicalTensor* oT = source.find(b, Role::AttnO);
        AttentionWeights attn{readMatrix(source, *qT), readMatrix(source, *kT), readMatrix(source, *vT),
                              readMatrix(source, *oT), shape};
        const std::vector<int64_t> groups = keepMostImportant(out.groupScores[static_cast<size_t>(b)], keepGroups);
        const AttentionWeights slicedAttn = sliceAttention(attn, groups);
        const std::vector<char> qKept = keptFlags(groups, shape.kvHeads, g * hd), kvKept = keptFlags(groups, shape.kvHeads, hd);
        recordSlicedLayer(r, *qT, b, attn.q, slicedAttn.q, true, qKept, {});
        recordSlicedLayer(r, *kT, b, attn.k, slicedAttn.k, true, kvKept, {});
        recordSlicedLayer(r, *vT, b, attn.v, slicedAttn.v, true, kvKept, {});
        recordSlicedLayer(r, *oT, b, attn.o, slicedAttn.o, false, qKept, {});

        const LogicalTensor* gateT = source.find(b, Role::MlpGate);
        const LogicalTensor* upT = source.find(b, Role::MlpUp);
        const LogicalTensor* downT = source.find(b, Role::MlpDown);
        MlpWeights mlp{readMatrix(source, *gateT), readMatrix(source, *upT), readMatrix(source, *downT)};
        const std::vector<int64_t> neurons = keepMostImportant(out.neuronScores[static_cast<size_t>(b)], keepNeurons);
        const MlpWeights slicedMlp = sliceMlp(mlp, neurons);
        const std::vector<char> nKept = keptFlags(neurons, ff, 1);
        recordSlicedLayer(r, *gateT, b, mlp.gate, slicedMlp.gate, true, nKept, {});
        recordSlicedLayer(r, *upT, b, mlp.up, slicedMlp.up, true, nKept, {});
        recordSlicedLayer(r, *downT, b, mlp.down, slicedMlp.down, false, nKept, {});

        // Biases: the kept channels of q, k, v, gate, up; o and down absorb the
        // removed channels' means. Zero ones where the source had none.
        const auto sliceBias = [&](Role role, const std::vector<char>& kept, int64_t n) {
            std::vector<float> v(static_cast<size_t>(n), 0.0f);
            if (const LogicalTensor* bias = source.find(b, role, true)) {
                const std::vector<float> all = readLogical(source, *bias);
                if (all.size() != kept.size())
                    fail(ErrorCode::Malformed, source.path, bias->logicalName + " does not have one value per channel");
                v.clear();
                for (size_t j = 0; j < kept.size(); ++j)
                    if (kept[j])
                        v.push_back(all[j]);
                replaceTensor(*r.model, bias->logicalName, std::move(v), {n});
            } else if (o.compensate) {
                addToBias(*r.model, b, role, Eigen::VectorXf::Zero(n));
            }
        };
        sliceBias(Role::AttnQ, qKept, keepGroups * g * hd);
        sliceBias(Role::AttnK, kvKept, keepGroups * hd);
        sliceBias(Role::AttnV, kvKept, keepGroups * hd);
        sliceBias(Role::MlpGate, nKept, keepNeurons);
        sliceBias(Role::MlpUp, nKept, keepNeurons);
        if (o.compensate) {
            addToBias(*r.model, b, Role::AttnO, compensationBias(attn.o, oIn[static_cast<size_t>(b)].mean, qKept));
            addToBias(*r.model, b, Role::MlpDown, compensationBias(mlp.down, downIn[static_cast<size_t>(b)].mean, nKept));
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - l0).count();
        for (size_t i = first; i < r.layers.size(); ++i)
            r.layers[i].seconds = s / static_cast<double>(r.layers.size() - first);
    }
    sortLogical(*r.model);
    r.method += std::string(o.structure == FlapOptions::Structure::Uniform ? " uniform" : " adaptive") + " (-"
                + std::to_string(out.groupsRemoved) + "/" + std::to_string(shape.kvHeads) + " KV groups, -"
                + std::to_string(out.neuronsRemoved) + "/" + std::to_string(ff) + " neurons per block"
                + (o.compensate ? ", bias compensated)" : ")");

    Model& m = *r.model;
    m.config.heads = keepGroups * g;
    m.config.kvHeads = keepGroups;
    m.config.intermediate = keepNeurons;
    if (o.compensate)
        m.config.attentionBias = true;
    // The Hugging Face config carried into an export (the exporter compares the
    // tensors' widths with ModelConfig, which already has the new ones).
    if (source.format == "safetensors" && m.metadata.is_object()) {
        m.metadata["num_attention_heads"] = keepGroups * g;
        m.metadata["num_key_value_heads"] = keepGroups;
        m.metadata["intermediate_size"] = keepNeurons;
        if (keepGroups * g * hd != d)
            m.metadata["head_dim"] = hd;
        if (o.compensate) {
            m.metadata["attention_bias"] = true;
            m.metadata["mlp_bias"] = true;
        }
    }
    r.countParameters(source);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress)
        progress->report(1.0, "done");
    return out;
}

} // namespace ll
