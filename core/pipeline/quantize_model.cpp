#include "pipeline/quantize_model.h"

#include "pipeline/store_values.h"

#include "methods/method_registry.h"

#include "quant/packed_storage.h"

#include "engine/transformer.h"
#include "quant/awq.h"
#include "quant/int8_outlier.h"
#include "quant/lorc.h"
#include "quant/olive.h"
#include "quant/os_plus.h"
#include "quant/rptq.h"
#include "quant/smoothquant.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>

namespace ll {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool sequentialByDefault(const std::string& m) { return requireMethodSpec(StepAction::Quantize, m).sequentialByDefault; }

// Captures the rows of every block input it sees (thread-safe).
class SampleCapture : public LinearInputObserver {
public:
    void linearInput(int block, Role role, const ConstMatrixRef& x) override
    {
        std::lock_guard<std::mutex> lock(mutex_);
        Rows& r = rows_[{block, role}];
        r.cols = x.cols();
        for (Eigen::Index i = 0; i < x.rows(); ++i)
            for (Eigen::Index c = 0; c < x.cols(); ++c)
                r.values.push_back(x(i, c));
    }
    // The captured inputs of (block, input role), or nullptr.
    const MatrixRM* get(int block, Role role)
    {
        auto it = rows_.find({block, role});
        if (it == rows_.end() || it->second.cols == 0)
            return nullptr;
        Rows& r = it->second;
        if (r.matrix.size() == 0)
            r.matrix = Eigen::Map<const MatrixRM>(r.values.data(), static_cast<Eigen::Index>(r.values.size()) / r.cols, r.cols);
        return &r.matrix;
    }

private:
    struct Rows {
        Eigen::Index cols = 0;
        std::vector<float> values;
        MatrixRM matrix;
    };
    std::mutex mutex_;
    std::map<std::pair<int, Role>, Rows> rows_;
};

// Runs f; an InvalidArgument it throws names the layer.
template <class F>
auto namingLayer(const std::string& name, F f)
{
    try {
        return f();
    } catch (const Error& e) {
        if (e.code() != ErrorCode::InvalidArgument)
            throw;
        fail(ErrorCode::InvalidArgument, e.file(), name + ": " + e.problem());
    }
}

struct Target {
    const LogicalTensor* tensor;
    MatrixRM W;
};

// Can an input scale of `inputRole` fold into the op before it?
bool scaleFoldable(const Transformer& t, int block, Role inputRole)
{
    if (inputRole == Role::AttnQ || inputRole == Role::MlpUp)
        return true; // the norm before attention / the MLP
    if (inputRole == Role::AttnO)
        return t.linear(block, Role::AttnV).outFeatures() == t.linear(block, Role::AttnO).inFeatures();
    if (inputRole == Role::MlpDown)
        return !t.weights().blocks[static_cast<size_t>(block)].gate.empty();
    return false;
}

// Quantizes the targets that read one input (q,k,v / o / gate,up / down).
std::vector<QuantizedLayer> quantizeGroup(const std::vector<Target>& group, Role inputRole, bool foldable,
                                          const LayerInputs& in, const QuantizeModelOptions& opt, Progress* progress)
{
    const QuantConfig& c = opt.config;
    std::vector<QuantizedLayer> out;
    if (const MethodSpec& spec = requireMethodSpec(StepAction::Quantize, c.method); spec.quantizeGroup) {
        LinearGroup g;
        for (const Target& t : group) {
            g.weights.push_back(&t.W);
            g.roles.push_back(t.tensor->role);
        }
        g.scaleFoldsIntoNorm = inputRole == Role::AttnQ || inputRole == Role::MlpUp;
        g.scaleFolds = foldable;
        out = spec.quantizeGroup(g, c, in, progress);
        for (size_t i = 0; i < out.size(); ++i)
            out[i] = lowRankCorrect(group[i].W, std::move(out[i]), c, in);
        return out;
    }
    for (const Target& t : group)
        out.push_back(quantizeLayer(t.W, c, in, progress));
    return out;
}

int inputSlot(Role inputRole)
{
    switch (inputRole) {
    case Role::AttnQ: return 0;
    case Role::AttnO: return 1;
    case Role::MlpUp: return 2;
    case Role::MlpDown: return 3;
    default: return -1;
    }
}

// The linears that read one block input.
std::vector<Role> readersOf(const Transformer& t, int block, Role inputRole)
{
    std::vector<Role> roles;
    switch (inputRole) {
    case Role::AttnQ: roles = {Role::AttnQ, Role::AttnK, Role::AttnV}; break;
    case Role::AttnO: roles = {Role::AttnO}; break;
    case Role::MlpUp: roles = {Role::MlpGate, Role::MlpUp}; break;
    case Role::MlpDown: roles = {Role::MlpDown}; break;
    default: break;
    }
    std::vector<Role> out;
    for (Role r : roles)
        if (!(r == Role::MlpGate && t.weights().blocks[static_cast<size_t>(block)].gate.empty()))
            out.push_back(r);
    return out;
}

} // namespace

void applyActivationQuantization(Transformer& t, const ActivationQuantization& a)
{
    t.setKvQuantization(a.kv);
    if (!a.quantizesInputs()) {
        t.setLinearInputTransform({});
        return;
    }
    struct Runtime {
        bool active = false;
        Eigen::VectorXf inputScale;   // 1/s where it does not fold (empty: none)
        Eigen::VectorXf shift;        // OS+: z / s, in the scaled input's units (empty: none)
        float range = 0.0f;           // OS+: the static range of the shifted input (0: per token)
        Eigen::VectorXf low, step;    // RPTQ: each channel's cluster range (empty: none)
        std::vector<char> skip;       // fp columns (empty: none)
        float pairScale = 0.0f;       // OliVe: outlier-victim pairs on this scale (0: none)
    };
    auto table = std::make_shared<std::vector<Runtime>>(static_cast<size_t>(t.layers()) * 4);
    for (const ActivationQuantInput& in : a.inputs) {
        const int slot = inputSlot(in.inputRole);
        if (slot < 0 || in.block < 0 || in.block >= t.layers())
            fail(ErrorCode::InvalidArgument, "", "activation quantization of an input that is not a block's linear input");
        Runtime& rt = (*table)[static_cast<size_t>(in.block) * 4 + static_cast<size_t>(slot)];
        rt.active = true;
        const int64_t width = t.linear(in.block, readersOf(t, in.block, in.inputRole).front()).inFeatures();
        if (in.smoothScale.size() > 0) {
            if (in.smoothScale.size() != width)
                fail(ErrorCode::InvalidArgument, "", "SmoothQuant scales do not fit block " + std::to_string(in.block));
            // Every reader computes with W diag(s), quantized or not (then x diag(s)^-1 W'^T = x W^T).
            for (Role r : readersOf(t, in.block, in.inputRole))
                t.setLinearWeight(in.block, r, t.linear(in.block, r).dense() * in.smoothScale.asDiagonal());
            if (!t.scaleNormOutput(in.block, in.inputRole, in.smoothScale))
                rt.inputScale = in.smoothScale.cwiseInverse();
        }
        if (in.staticRange > 0.0f) {
            if (in.shift.size() != width || in.smoothScale.size() != width)
                fail(ErrorCode::InvalidArgument, "", "OS+ shift does not fit block " + std::to_string(in.block));
            rt.shift = in.shift.cwiseQuotient(in.smoothScale);
            rt.range = in.staticRange;
        }
        if (in.channelStep.size() > 0) {
            if (in.channelStep.size() != width || in.channelLow.size() != width)
                fail(ErrorCode::InvalidArgument, "", "RPTQ ranges do not fit block " + std::to_string(in.block));
            rt.low = in.channelLow;
            rt.step = in.channelStep;
        }
        rt.pairScale = in.pairScale;
        if (!in.fpColumns.empty()) {
            rt.skip.assign(static_cast<size_t>(width), 0);
            for (int32_t c : in.fpColumns)
                if (c >= 0 && c < width)
                    rt.skip[static_cast<size_t>(c)] = 1;
        }
    }
    const int bits = a.bits;
    t.setLinearInputTransform([table, bits](int block, Role inputRole, MatrixRef x) {
        const int slot = inputSlot(inputRole);
        if (slot < 0 || block < 0)
            return;
        const size_t i = static_cast<size_t>(block) * 4 + static_cast<size_t>(slot);
        if (i >= table->size() || !(*table)[i].active)
            return;
        const Runtime& rt = (*table)[i];
        if (rt.pairScale > 0.0f) { // OliVe: each row's adjacent pairs, outliers taking their victims' codes
            oliveQuantizeRows(x, rt.pairScale, bits);
            return;
        }
        if (rt.step.size() > 0) { // RPTQ: each channel on its cluster's static range
            quantizeClusteredRows(x, rt.low, rt.step, bits);
            return;
        }
        if (rt.range > 0.0f) { // OS+: the centred input on one static grid, the shift added back exactly
            if (rt.inputScale.size() > 0)
                x.array().rowwise() *= rt.inputScale.transpose().array();
            quantizeShiftedRows(x, rt.shift, rt.range, bits);
            return;
        }
        quantizeActivationRows(x, bits, rt.skip.empty() ? nullptr : &rt.skip,
                               rt.inputScale.size() > 0 ? &rt.inputScale : nullptr);
    });
}

double ModelQuantizationResult::bitsPerWeight() const
{
    double bits = 0.0, n = 0.0;
    for (const QuantizedLinear& l : layers) {
        bits += l.layer.bits.total();
        n += static_cast<double>(l.rows * l.cols);
    }
    return n > 0 ? bits / n : 0.0;
}

int64_t ModelQuantizationResult::quantizedWeights() const
{
    int64_t n = 0;
    for (const QuantizedLinear& l : layers)
        n += l.rows * l.cols;
    return n;
}

nlohmann::json ModelQuantizationResult::toJson(bool histograms) const
{
    nlohmann::json arr = nlohmann::json::array();
    for (const QuantizedLinear& l : layers) {
        const QuantizedLayer& q = l.layer;
        const BitsBreakdown& b = q.bits;
        nlohmann::json j{
            {"name", l.name},
            {"method", q.method},
            {"shape", {l.rows, l.cols}},
            {"bits_per_weight", q.bitsPerWeight},
            {"bits", {{"codes", b.codes}, {"scales", b.scales}, {"zeros", b.zeros}, {"group_index", b.groupIndex},
                      {"input_scales", b.inputScales}, {"outliers", b.outliers}, {"low_rank", b.lowRank}}},
            {"weight_error", q.error.weightError},
            {"output_error", q.error.outputError ? nlohmann::json(*q.error.outputError) : nlohmann::json(nullptr)},
            {"loss", q.loss},
            {"seconds", l.seconds},
        };
        if (!q.info.empty())
            j["info"] = q.info;
        if (histograms) {
            const Histogram& h = q.error.errorStats.histogram;
            j["error_histogram"] = {{"lo", h.lo}, {"hi", h.hi}, {"counts", h.counts}};
        }
        arr.push_back(std::move(j));
    }
    nlohmann::json j{
        {"method", method},
        {"stats_mode", statsMode},
        {"bits_per_weight", bitsPerWeight()},
        {"quantized_weights", quantizedWeights()},
        {"calibration_tokens", calibrationTokens},
        {"seconds", seconds},
        {"layers", std::move(arr)},
    };
    if (calibrationTokens > 0)
        j["time_breakdown"] = {{"embedding", times.embedding},
                               {"forward", times.forward},
                               {"statistics", times.statistics},
                               {"method", times.compress}};
    return j;
}

ModelQuantizationResult quantizeModel(const Model& source, const QuantizeModelOptions& opt,
                                      std::span<const int32_t> calibrationTokens, Progress* progress)
{
    const auto t0 = Clock::now();
    const QuantConfig& c = opt.config;
    const MethodSpec& spec = requireMethodSpec(StepAction::Quantize, c.method);
    if (spec.needsCalibration() && calibrationTokens.empty())
        fail(ErrorCode::InvalidArgument, source.path,
             c.method + " needs calibration text (the statistics of each layer's inputs)");
    // A static activation grid (OliVe's act-bits) is measured on captured inputs: no text, no grid.
    if ((spec.needsFor(c.params) & kNeedsSamples) && calibrationTokens.empty() && opt.importance.empty())
        fail(ErrorCode::InvalidArgument, source.path,
             c.label() + " needs calibration text (its activation grid is measured on the layers' inputs)");
    const std::vector<const LogicalTensor*> targets = selectTargets(source, opt.layers);
    ModelQuantizationResult r;
    r.model = std::make_unique<Model>(source);
    r.method = c.label();
    std::map<const LogicalTensor*, QuantizedLinear> done;

    // The edited model keeps the packed form (quant/packed_storage.h); the
    // per-layer result keeps the figures, not the weights (a 7B model's
    // weights in F32 would be 27 GB).
    const auto record = [&](const LogicalTensor& t, QuantizedLayer q, double seconds) {
        QuantizedLinear l;
        l.rows = q.weights.rows();
        l.cols = q.weights.cols();
        if (std::optional<TensorRef> packed = takePackedTensor(q)) {
            if (q.factorA.size() > 0) // LoRC, EoRA: the packed base and the correction's factors
                replaceTensorCorrected(*r.model, t.logicalName, std::move(*packed), factorTensor(q.factorA),
                                       factorTensor(q.factorB));
            else
                replaceTensorStored(*r.model, t.logicalName, std::move(*packed));
        } else { // NF4 blocks across rows: dense, in the tensor's type (store_values.h)
            storeDense(*r.model, t.logicalName, q.weights);
        }
        if (!opt.keepLayerWeights) {
            q.weights = MatrixRM();
            q.packed.codes = {};
            q.packed.denseValues = MatrixRM();
            q.factorA = q.factorB = MatrixRM();
        }
        l.name = t.logicalName;
        l.block = t.block;
        l.role = t.role;
        l.layer = std::move(q);
        l.seconds = seconds;
        done[&t] = std::move(l);
    };

    if (!opt.importance.empty())
        calibrationTokens = {}; // the file's importance replaces the calibration statistics
    if (calibrationTokens.empty()) {
        r.statsMode = opt.importance.empty() ? "none" : "imatrix";
        for (size_t i = 0; i < targets.size(); ++i) {
            throwIfCancelled(progress);
            const auto l0 = Clock::now();
            SubProgress sub(progress, static_cast<double>(i) / static_cast<double>(targets.size()),
                            static_cast<double>(i + 1) / static_cast<double>(targets.size()));
            const MatrixRM W = readMatrix(source, *targets[i]);
            LayerInputs in;
            if (const auto it = opt.importance.find(targets[i]->logicalName); it != opt.importance.end())
                in.importance = &it->second;
            record(*targets[i], namingLayer(targets[i]->logicalName, [&] { return quantizeLayer(W, c, in, &sub); }),
                   secondsSince(l0));
        }
    } else {
        CalibrationMode mode = sequentialByDefault(c.method) ? CalibrationMode::Sequential : CalibrationMode::OneShot;
        if (opt.mode == StatsMode::OneShot)
            mode = CalibrationMode::OneShot;
        else if (opt.mode == StatsMode::Sequential)
            mode = CalibrationMode::Sequential;
        r.statsMode = calibrationModeName(mode);
        const std::vector<int32_t> windows = calibrationWindows(calibrationTokens, opt.calibration);
        r.calibrationTokens = static_cast<int64_t>(windows.size());
        SubProgress loading(progress, 0.0, 0.05);
        Transformer model(source, &loading);

        std::mutex activationMutex;
        SampleCapture samples;
        if ((requireMethodSpec(StepAction::Quantize, c.method).needsFor(c.params) & kNeedsSamples) && opt.activationSampleTokens > 0) {
            const int64_t ctx = opt.calibration.context;
            const int64_t w = std::max<int64_t>(1, std::min<int64_t>(opt.activationSampleTokens / ctx,
                                                                     static_cast<int64_t>(windows.size()) / ctx));
            (void)model.hiddenBatch(std::span<const int32_t>(windows.data(), static_cast<size_t>(w * ctx)), ctx, &samples);
        }

        std::set<int> blockSet;
        for (const LogicalTensor* t : targets)
            blockSet.insert(t->block);
        const std::vector<int> blocks(blockSet.begin(), blockSet.end());
        BlockStatsOptions bo;
        bo.calibration = opt.calibration;
        bo.mode = mode;
        bo.gram = true;
        bo.times = &r.times;
        bo.asymmetric = (requireMethodSpec(StepAction::Quantize, c.method).needs & kNeedsAsymmetry) != 0;
        SubProgress passes(progress, 0.05, 1.0);
        forEachBlockStats(
            model, windows, blocks, bo,
            [&](int block, std::vector<InputStats>& stats, Progress* blockProgress) {
                std::vector<const LogicalTensor*> quantized;
                const Role inputs[] = {Role::AttnQ, Role::AttnO, Role::MlpUp, Role::MlpDown};
                for (size_t gi = 0; gi < 4; ++gi) {
                    const Role inputRole = inputs[gi];
                    std::vector<Target> group;
                    for (const LogicalTensor* t : targets)
                        if (t->block == block && inputRoleOf(t->role) == inputRole)
                            group.push_back({t, model.linear(block, t->role).dense()});
                    if (group.empty())
                        continue;
                    InputStats* st = nullptr;
                    for (InputStats& s : stats)
                        if (s.role == inputRole)
                            st = &s;
                    if (!st || st->tokens == 0)
                        fail(ErrorCode::InvalidArgument, source.path,
                             "no calibration statistics reached " + group.front().tensor->logicalName);
                    const Eigen::MatrixXf gram = st->gramFloat();
                    // The double sums are not needed once converted (969 MB at a 7B's down_proj input).
                    st->releaseGram();
                    LayerInputs in;
                    in.gram = &gram;
                    in.meanAbs = st->meanAbs();
                    in.maxAbs = st->maxAbs;
                    in.samples = samples.get(block, inputRole);
                    if (st->asymmetry.size() > 0)
                        in.asymmetry = &st->asymmetry;
                    SubProgress sub(blockProgress, static_cast<double>(gi) / 4.0, static_cast<double>(gi + 1) / 4.0);
                    const auto l0 = Clock::now();
                    std::vector<QuantizedLayer> qs = namingLayer(group.front().tensor->logicalName, [&] {
                        return quantizeGroup(group, inputRole, scaleFoldable(model, block, inputRole), in, opt, &sub);
                    });
                    if (c.simulatesActivations()) {
                        ActivationQuantInput aq;
                        aq.block = block;
                        aq.inputRole = inputRole;
                        // What the group's method decided for the input (SmoothQuant's and OS+'s scale,
                        // shift and range, RPTQ's channel grid, OliVe's pair scale); input columns whose
                        // weights stay at 16 bits stay in float on the input too (LLM.int8's outliers).
                        const PackedQuant& p = qs.front().packed;
                        aq.smoothScale = p.inputScale;
                        aq.shift = p.inputShift;
                        aq.staticRange = p.inputRange;
                        aq.channelLow = p.inputLow;
                        aq.channelStep = p.inputStep;
                        aq.pairScale = p.inputPairScale;
                        aq.fpColumns = p.denseColumns;
                        std::lock_guard<std::mutex> lock(activationMutex);
                        r.activations.bits = c.actBits;
                        r.activations.inputs.push_back(std::move(aq));
                    }
                    const double seconds = secondsSince(l0) / static_cast<double>(group.size());
                    for (size_t i = 0; i < group.size(); ++i) {
                        quantized.push_back(group[i].tensor);
                        record(*group[i].tensor, std::move(qs[i]), seconds);
                    }
                }
                // Only now: every linear of the block saw the block's unquantized inputs.
                // The engine computes with the stored form, as the result will.
                if (mode == CalibrationMode::Sequential)
                    for (const LogicalTensor* t : quantized)
                        model.setLinear(block, t->role, loadLinearWeights(*r.model, *r.model->findLogical(t->logicalName)));
            },
            &passes);
    }
    for (const LogicalTensor* t : targets) {
        auto it = done.find(t);
        if (it != done.end())
            r.layers.push_back(std::move(it->second));
    }
    // Per-token activations that need no statistics (ZeroQuant) without calibration text.
    if (c.simulatesActivations() && r.activations.inputs.empty()) {
        std::set<std::pair<int, Role>> inputs;
        for (const LogicalTensor* t : targets)
            inputs.insert({t->block, inputRoleOf(t->role)});
        for (const auto& [block, role] : inputs) {
            ActivationQuantInput aq;
            aq.block = block;
            aq.inputRole = role;
            r.activations.inputs.push_back(std::move(aq));
        }
        r.activations.bits = c.actBits;
    }
    r.seconds = secondsSince(t0);
    if (progress)
        progress->report(1.0, "done");
    return r;
}

} // namespace ll
