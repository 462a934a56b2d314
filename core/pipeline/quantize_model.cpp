#include "pipeline/quantize_model.h"

#include "pipeline/layer_driver.h"
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
#include "util/eta.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>

namespace ll {

namespace {

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
std::vector<QuantizedLayer> quantizeGroup(const InputGroup& group, bool foldable, const LayerInputs& in,
                                          const QuantizeModelOptions& opt, Progress* progress)
{
    const QuantConfig& c = opt.config;
    std::vector<QuantizedLayer> out;
    if (const MethodSpec& spec = requireMethodSpec(StepAction::Quantize, c.method); spec.quantizeGroup) {
        LinearGroup g;
        for (size_t i = 0; i < group.tensors.size(); ++i) {
            g.weights.push_back(&group.weights[i]);
            g.roles.push_back(group.tensors[i]->role);
        }
        g.scaleFoldsIntoNorm = group.inputRole == Role::AttnQ || group.inputRole == Role::MlpUp;
        g.scaleFolds = foldable;
        out = spec.quantizeGroup(g, c, in, progress);
        for (size_t i = 0; i < out.size(); ++i)
            out[i] = lowRankCorrect(group.weights[i], std::move(out[i]), c, in);
        return out;
    }
    for (const MatrixRM& W : group.weights)
        out.push_back(quantizeLayer(W, c, in, progress));
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

ModelCompressionResult quantizeModel(const Model& source, const QuantizeModelOptions& opt,
                                     std::span<const int32_t> calibrationTokens, Progress* progress)
{
    const EtaClock clock;
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
    ModelCompressionResult r;
    r.model = std::make_unique<Model>(source);
    r.method = c.label();

    // The edited model keeps the packed form (quant/packed_storage.h); the
    // per-layer result keeps the figures, not the weights (a 7B model's
    // weights in F32 would be 27 GB).
    const auto record = [&](const LogicalTensor& t, QuantizedLayer q, double seconds) {
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
        return quantizedOutcome(t, std::move(q), seconds);
    };

    if (!opt.importance.empty())
        calibrationTokens = {}; // the file's importance replaces the calibration statistics
    LayerDriverOptions driver;
    driver.calibration = opt.calibration;
    driver.mode = resolveStatsMode(opt.mode, spec.sequentialByDefault ? CalibrationMode::Sequential : CalibrationMode::OneShot);
    driver.asymmetric = (spec.needs & kNeedsAsymmetry) != 0;
    driver.requireStats = true;
    SampleCapture samples;
    if ((spec.needsFor(c.params) & kNeedsSamples) && opt.activationSampleTokens > 0)
        driver.beforePasses = [&](Transformer& engine, std::span<const int32_t> windows) {
            const int64_t ctx = opt.calibration.context;
            const int64_t w = std::max<int64_t>(1, std::min<int64_t>(opt.activationSampleTokens / ctx,
                                                                     static_cast<int64_t>(windows.size()) / ctx));
            (void)engine.hiddenBatch(windows.first(static_cast<size_t>(w * ctx)), ctx, &samples);
        };

    compressTargets(source, targets, calibrationTokens, driver, r,
        [&](InputGroup& g, Progress* sub) {
            std::vector<LayerOutcome> out;
            if (!g.stats) { // no calibration text: one linear, no statistics (the file's importance at most)
                const EtaClock layerClock;
                const LogicalTensor& t = *g.tensors.front();
                LayerInputs in;
                if (const auto it = opt.importance.find(t.logicalName); it != opt.importance.end())
                    in.importance = &it->second;
                QuantizedLayer q = namingLayer(t.logicalName, [&] { return quantizeLayer(g.weights.front(), c, in, sub); });
                out.push_back(record(t, std::move(q), layerClock.elapsed()));
                return out;
            }
            InputStats& st = *g.stats;
            const Eigen::MatrixXf gram = st.gramFloat();
            // The double sums are not needed once converted (969 MB at a 7B's down_proj input).
            st.releaseGram();
            LayerInputs in;
            in.gram = &gram;
            in.meanAbs = st.meanAbs();
            in.maxAbs = st.maxAbs;
            in.samples = samples.get(g.block, g.inputRole);
            if (st.asymmetry.size() > 0)
                in.asymmetry = &st.asymmetry;
            const EtaClock groupClock;
            std::vector<QuantizedLayer> qs = namingLayer(g.tensors.front()->logicalName, [&] {
                return quantizeGroup(g, scaleFoldable(*g.engine, g.block, g.inputRole), in, opt, sub);
            });
            if (c.simulatesActivations()) {
                ActivationQuantInput aq;
                aq.block = g.block;
                aq.inputRole = g.inputRole;
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
                r.activations.bits = c.actBits;
                r.activations.inputs.push_back(std::move(aq));
            }
            const double seconds = groupClock.elapsed() / static_cast<double>(g.tensors.size());
            for (size_t i = 0; i < g.tensors.size(); ++i)
                out.push_back(record(*g.tensors[i], std::move(qs[i]), seconds));
            return out;
        },
        progress);
    if (!opt.importance.empty())
        r.statsMode = "imatrix";
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
    r.countParameters(source);
    r.seconds = clock.elapsed();
    if (progress)
        progress->report(1.0, "done");
    return r;
}

} // namespace ll
