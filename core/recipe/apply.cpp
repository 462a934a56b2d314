#include "recipe/apply.h"

#include "pipeline/imatrix.h"

#include "engine/transformer.h"
#include "eval/sample_text.h"
#include "model/held_bytes.h"
#include "model/tensor_data.h"
#include "methods/method_registry.h"
#include "pipeline/model_compression.h"
#include "recipe/step_options.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <cmath>

namespace ll {

namespace {

// Bits a weight as the tensor is held: an edited one by its bytes (packed
// codes, sparse rows, values in F16 / BF16 / F32, factors), the file's by its type.
double storedBitsPerWeight(const Model& m, const LogicalTensor& t)
{
    if (t.edited() && t.elements() > 0)
        return 8.0 * static_cast<double>(heldBytes(m, t)) / static_cast<double>(t.elements());
    const DTypeLayout l = dtypeLayout(m.storedOf(t).dtype);
    if (l.blockElems == 0)
        return 32.0; // a type of unknown size
    return 8.0 * l.blockBytes / l.blockElems;
}

// Refreshes the records of the touched tensors from the new model: shape,
// zeros, error against the source.
void refreshRecords(CompressionState& s, const std::vector<std::string>& touched)
{
    for (const std::string& name : touched) {
        const LogicalTensor* now = s.model->findLogical(name);
        if (!now)
            continue;
        LayerRecord& rec = s.layers[name];
        rec.shape = now->shape;
        const MatrixRM W = readMatrix(*s.model, *now);
        rec.sparsity = W.size() > 0 ? static_cast<double>((W.array() == 0.0f).count()) / static_cast<double>(W.size()) : 0.0;
        rec.weightError.reset();
        const Model& basis = s.basis ? *s.basis : *s.source;
        if (const LogicalTensor* before = basis.findLogical(name); before && before->shape == now->shape) {
            const MatrixRM W0 = readMatrix(basis, *before);
            const double ref = W0.cast<double>().norm();
            const double diff = (W0 - W).cast<double>().norm();
            rec.weightError = ref > 0.0 ? diff / ref : (diff > 0.0 ? INFINITY : 0.0);
        }
    }
}

// The state after a per-layer step: its model, its activation quantization
// (W8A8 steps), and each changed layer's badge, bits and errors.
StepOutcome compressionStep(const CompressionState& state, const RecipeStep& step, ModelCompressionResult r,
                            bool shapesChange)
{
    StepOutcome out{state, r.toJson(), {}};
    out.state.model = std::shared_ptr<const Model>(std::move(r.model));
    if (r.activations.quantizesInputs()) {
        out.state.activations.bits = r.activations.bits;
        out.state.activations.inputs = r.activations.inputs; // the KV cache's quantization stays
    }
    const std::string badge = step.badge();
    for (const LayerOutcome& l : r.layers) {
        LayerRecord& rec = out.state.layers[l.name];
        rec.badges.push_back(badge);
        rec.outputError = l.outputError;
        rec.rank = l.rank; // 0 after a quantizer: the weight is one matrix again
        if (l.quantized)
            rec.bitsPerWeight = l.quantized->bitsPerWeight;
        else if (shapesChange || l.rank > 0)
            rec.bitsPerWeight.reset(); // the codes no longer describe the weight
        out.touched.push_back(l.name);
    }
    return out;
}

StepOutcome quantizeStep(const CompressionState& state, const RecipeStep& step, const JsonParams& p,
                         const CalibrationText& calib, Progress* progress)
{
    QuantizeModelOptions o = quantizeOptionsFrom(p);
    o.calibration = calib.options;
    useImatrixParam(*state.model, o);
    if (o.config.simulatesActivations() && state.activations.quantizesInputs())
        fail(ErrorCode::InvalidArgument, "",
             "the activations are already quantized by an earlier step; apply one step that quantizes activations "
             "(SmoothQuant, LLM.int8, ZeroQuant, OS+, RPTQ, OliVe with act-bits)");
    return compressionStep(state, step, quantizeModel(*state.model, o, calib.tokens, progress), false);
}

// Steps that rebuild weights from dense values (SliceGPT, FLAP): after a
// quantization they would turn its codes back into dense weights.
void refuseAfterQuantization(const CompressionState& state, const std::string& doThis)
{
    for (const RecipeStep& before : state.steps)
        if (before.action == StepAction::Quantize)
            fail(ErrorCode::InvalidArgument, "", doThis + " before quantizing (after " + before.badge()
                                                     + ", it would turn the codes back into dense weights)");
}

// Steps that change the shapes or numbering the activation quantization calibrated.
void refuseAfterActivationQuantization(const CompressionState& state, const std::string& why, const std::string& doThis)
{
    if (state.activations.quantizesInputs())
        fail(ErrorCode::InvalidArgument, "", why + "; " + doThis + " before SmoothQuant / LLM.int8 / ZeroQuant / OS+ / RPTQ");
}

// ShortGPT: whole blocks go and later ones move up, so every record and the
// basis of the weight errors follow the new numbering.
// No tensor that remains changed, so no record gets a badge: the recipe lists the step.
StepOutcome blockRemovalStep(const CompressionState& state, BlockRemovalOptions o, const CalibrationText& calib,
                             Progress* progress)
{
    refuseAfterActivationQuantization(state, "removing blocks renumbers the ones the activation quantization calibrated",
                                      "remove blocks");
    o.calibration = calib.options;
    BlockRemovalResult r = removeBlocksByInfluence(*state.model, o, calib.tokens, progress);
    StepOutcome out{state, r.toJson(), {}};
    out.state.model = std::shared_ptr<const Model>(std::move(r.model));
    // The weight errors' basis loses the same blocks (it is the model itself before any edit).
    out.state.basis = state.basis && state.basis != state.model
                          ? std::shared_ptr<const Model>(removeBlocks(*state.basis, r.removed))
                          : out.state.model;
    out.state.layers.clear();
    for (const auto& [name, rec] : state.layers)
        if (const std::string now = renamedAfterRemoval(name, r.removed); !now.empty())
            out.state.layers[now] = rec;
    return out;
}

// SliceGPT re-projects every weight from the model in front of it.
StepOutcome sliceStep(const CompressionState& state, const RecipeStep& step, SliceOptions o, const CalibrationText& calib,
                      Progress* progress)
{
    refuseAfterQuantization(state, "slice");
    if (state.model->config.onlineDownRotation)
        fail(ErrorCode::InvalidArgument, "", "slicing would break the online rotation of down_proj's input (rotate without online)");
    o.calibration = calib.options;
    SliceResult r = sliceModel(*state.model, o, calib.tokens, progress);
    StepOutcome out{state, r.toJson(), {}};
    out.state.model = std::shared_ptr<const Model>(std::move(r.model));
    out.state.basis = out.state.model; // every weight changed shape: errors are measured from here on
    const std::string badge = step.badge();
    for (const std::string& name : r.tensors) {
        LayerRecord& rec = out.state.layers[name];
        rec.badges.push_back(badge);
        rec.bitsPerWeight.reset();
        rec.outputError.reset();
        out.touched.push_back(name);
    }
    return out;
}

// FLAP slices heads and neurons out of every block and adds biases.
StepOutcome flapStep(const CompressionState& state, const RecipeStep& step, FlapOptions o, const CalibrationText& calib,
                     Progress* progress)
{
    refuseAfterQuantization(state, "prune with FLAP");
    refuseAfterActivationQuantization(state, "structured pruning changes the shapes the activation quantization calibrated",
                                      "prune");
    o.calibration = calib.options;
    FlapResult r = flapPrune(*state.model, o, calib.tokens, progress);
    nlohmann::json summary = r.toJson();
    StepOutcome out = compressionStep(state, step, std::move(r.compression), true);
    out.summary = std::move(summary);
    return out;
}

StepOutcome pruneStep(const CompressionState& state, const RecipeStep& step, const JsonParams& p,
                      const CalibrationText& calib, Progress* progress)
{
    PruneStepOptions o = pruneOptionsFrom(p);
    switch (o.kind) {
    case PruneStepOptions::Kind::Unstructured:
        o.unstructured.calibration = calib.options;
        return compressionStep(state, step, pruneModel(*state.model, o.unstructured, calib.tokens, progress), false);
    case PruneStepOptions::Kind::Neurons:
    case PruneStepOptions::Kind::Heads:
        refuseAfterActivationQuantization(
            state, "structured pruning changes the shapes the activation quantization calibrated", "prune");
        if (o.kind == PruneStepOptions::Kind::Neurons) {
            if (state.model->config.onlineDownRotation)
                fail(ErrorCode::InvalidArgument, "",
                     "removing MLP neurons would break the online rotation of down_proj's input (rotate without online)");
            o.neurons.calibration = calib.options;
            return compressionStep(state, step, pruneMlpNeurons(*state.model, o.neurons, calib.tokens, progress), true);
        }
        o.heads.calibration = calib.options;
        return compressionStep(state, step, pruneAttentionHeads(*state.model, o.heads, calib.tokens, progress), true);
    case PruneStepOptions::Kind::Blocks:
        return blockRemovalStep(state, o.blocks, calib, progress);
    case PruneStepOptions::Kind::Hidden:
        return sliceStep(state, step, o.slice, calib, progress);
    case PruneStepOptions::Kind::Flap:
        return flapStep(state, step, o.flap, calib, progress);
    }
    return {state, {}, {}};
}

StepOutcome factorizeStep(const CompressionState& state, const RecipeStep& step, const JsonParams& p,
                          const CalibrationText& calib, Progress* progress)
{
    ModelFactorizeOptions o = factorizeOptionsFrom(p);
    o.calibration = calib.options;
    return compressionStep(state, step, factorizeModel(*state.model, o, calib.tokens, progress), false);
}

// A rotation re-folds every weight from the model in front of it, so it must
// come first: after a quantization it would turn the packed codes back into
// dense F32 rotated values.
StepOutcome rotateStep(const CompressionState& state, const RecipeStep& step, const JsonParams& p, Progress* progress)
{
    const RotationOptions o = rotationOptionsFrom(p);
    if (!state.steps.empty())
        fail(ErrorCode::InvalidArgument, "",
             "rotate before every other step (after " + state.steps.front().badge()
                 + ", rotating would undo its compressed weights, or rotate twice)");
    ModelRotationResult r = rotateModel(*state.model, o, progress);
    StepOutcome out{state, r.toJson(o), {}};
    out.state.model = std::shared_ptr<const Model>(std::move(r.model));
    out.state.basis = out.state.model;
    const std::string badge = step.badge();
    for (const RotatedTensor& t : r.tensors) {
        out.state.layers[t.name].badges.push_back(badge);
        out.touched.push_back(t.name);
    }
    return out;
}

// The model is not touched: every engine built from the state simulates the
// cache (makeEngine, EngineCache). One per recipe, like activation steps.
StepOutcome kvCacheStep(const CompressionState& state, const JsonParams& p)
{
    const KvCacheQuantization q = kvCacheOptionsFrom(p);
    if (state.activations.kv.active())
        fail(ErrorCode::InvalidArgument, "",
             "the KV cache is already quantized by an earlier step (" + state.activations.kv.label() + "); apply one kv-cache step");
    q.validate(state.model->config.headDim, state.model->path);
    StepOutcome out{state, nlohmann::json::object(), {}};
    out.state.activations.kv = q;
    const int64_t at = 4096;
    out.summary = {{"method", q.label()},
                   {"kv_bytes_4k", kvCacheBytes(state.model->config, q, at)},
                   {"kv_bytes_4k_f16", kvCacheBytes(state.model->config, {}, at)}};
    return out;
}

} // namespace

CompressionState CompressionState::initial(std::shared_ptr<const Model> source)
{
    if (!source)
        fail(ErrorCode::InvalidArgument, "", "no model");
    CompressionState s;
    s.source = source;
    s.basis = source;
    s.model = std::move(source);
    return s;
}

Recipe CompressionState::recipe() const
{
    Recipe r;
    r.calibration = calibration;
    r.steps = steps;
    if (source && !source->config.synthetic)
        r.model = source->path;
    return r;
}

double CompressionState::linearBitsPerWeight() const
{
    double bits = 0.0, n = 0.0;
    for (const LogicalTensor& t : model->tensors) {
        if (!isLinear(t.role) || t.isBias || t.block < 0)
            continue;
        const double count = static_cast<double>(t.elements());
        const auto rec = layers.find(t.logicalName);
        const double b = rec != layers.end() && rec->second.bitsPerWeight ? *rec->second.bitsPerWeight
                                                                           : storedBitsPerWeight(*model, t);
        bits += b * count;
        n += count;
    }
    return n > 0.0 ? bits / n : 0.0;
}

std::unique_ptr<Transformer> CompressionState::makeEngine(Progress* progress) const
{
    auto t = std::make_unique<Transformer>(*model, progress);
    if (!activations.empty())
        applyActivationQuantization(*t, activations);
    return t;
}

nlohmann::json CompressionState::toJson() const
{
    nlohmann::json j;
    j["steps"] = nlohmann::json::array();
    for (const RecipeStep& s : steps)
        j["steps"].push_back(s.toJson());
    j["bits_per_weight"] = linearBitsPerWeight();
    j["parameters"] = model->parameterCount();
    j["parameters_before"] = source->parameterCount();
    j["w8a8"] = activations.quantizesInputs();
    if (activations.kv.active())
        j["kv_cache"] = activations.kv.label();
    nlohmann::json layersJson = nlohmann::json::object();
    for (const auto& [name, rec] : layers) {
        nlohmann::json l;
        l["badges"] = rec.badges;
        l["shape"] = rec.shape;
        l["sparsity"] = rec.sparsity;
        if (rec.bitsPerWeight)
            l["bits_per_weight"] = *rec.bitsPerWeight;
        if (rec.weightError)
            l["weight_error"] = *rec.weightError;
        if (rec.outputError)
            l["output_error"] = *rec.outputError;
        if (rec.rank > 0)
            l["rank"] = rec.rank;
        layersJson[name] = std::move(l);
    }
    j["layers"] = std::move(layersJson);
    return j;
}

CalibrationText loadCalibration(const Model& model, const RecipeCalibration& calibration)
{
    CalibrationText c;
    c.name = calibration.isBuiltin() ? std::string("builtin") : calibration.text;
    c.recipe = calibration;
    if (calibration.isBuiltin())
        c.tokens = loadTokenizer(model)->encode(std::string(builtinSampleText()), true);
    else
        c.tokens = tokenizeTextFile(model, calibration.text);
    c.options.context = calibration.context;
    const int64_t fit = static_cast<int64_t>(c.tokens.size()) / calibration.context;
    if (fit < 1)
        fail(ErrorCode::InvalidArgument, c.name,
             "the calibration text is " + std::to_string(c.tokens.size()) + " tokens long, shorter than one window of "
                 + std::to_string(calibration.context));
    c.options.windows = std::min<int64_t>(calibration.windows, fit);
    return c;
}

CalibrationText loadCalibrationFor(const Model& model, const RecipeCalibration& calibration,
                                   std::span<const RecipeStep> steps)
{
    try {
        return loadCalibration(model, calibration);
    } catch (const Error& e) {
        const bool needed = std::any_of(steps.begin(), steps.end(), [](const RecipeStep& s) { return s.usesCalibration(); });
        if (needed || e.code() == ErrorCode::Cancelled)
            throw;
        CalibrationText none;
        none.recipe = calibration;
        none.name = "none";
        return none;
    }
}

StepOutcome applyStep(const CompressionState& state, const RecipeStep& step, const CalibrationText& calibration,
                      Progress* progress)
{
    nlohmann::json params = step.params;
    if (!step.layers.empty())
        params["layers"] = step.layers;
    params.erase("output-error");
    const JsonParams p(params);
    // Methods that need no data run without the calibration text: its
    // statistics would only give the output-error figure, at the cost of a
    // forward pass through the model (minutes and GBs on a 7B). Asked for
    // (output-error: true), that figure comes from a bounded sample.
    const CalibrationText* calib = &calibration;
    CalibrationText reduced;
    if (!step.usesCalibration() && !calibration.tokens.empty()) {
        reduced.recipe = calibration.recipe;
        reduced.name = calibration.name;
        if (JsonParams(step.params).flag("output-error")) {
            reduced.tokens = calibration.tokens;
            reduced.options = calibration.options;
            reduced.options.windows = std::min<int64_t>(reduced.options.windows, kOutputErrorWindows);
        }
        calib = &reduced;
    }
    StepOutcome out;
    switch (step.action) {
    case StepAction::Quantize: out = quantizeStep(state, step, p, *calib, progress); break;
    case StepAction::Prune: out = pruneStep(state, step, p, *calib, progress); break;
    case StepAction::Factorize: out = factorizeStep(state, step, p, *calib, progress); break;
    case StepAction::Rotate: out = rotateStep(state, step, p, progress); break;
    case StepAction::KvCache: out = kvCacheStep(state, p); break;
    }
    out.state.steps.push_back(step);
    out.state.calibration = calibration.recipe;
    refreshRecords(out.state, out.touched);
    // Structured pruning shrinks tensors it does not list (biases, the other
    // side of the unit); their records follow the model.
    for (auto& [name, rec] : out.state.layers)
        if (const LogicalTensor* t = out.state.model->findLogical(name))
            rec.shape = t->shape;
    return out;
}

StepOutcome applyRecipe(std::shared_ptr<const Model> source, const Recipe& recipe, Progress* progress)
{
    StepOutcome out{CompressionState::initial(std::move(source)), nlohmann::json::array(), {}};
    out.state.calibration = recipe.calibration;
    if (recipe.steps.empty())
        return out;
    const CalibrationText calib = loadCalibrationFor(*out.state.model, recipe.calibration, recipe.steps);
    const double n = static_cast<double>(recipe.steps.size());
    nlohmann::json summaries = nlohmann::json::array();
    for (size_t i = 0; i < recipe.steps.size(); ++i) {
        throwIfCancelled(progress);
        SubProgress sub(progress, static_cast<double>(i) / n, static_cast<double>(i + 1) / n);
        StepOutcome next;
        try {
            next = applyStep(out.state, recipe.steps[i], calib, &sub);
        } catch (const Error& e) {
            if (e.code() != ErrorCode::InvalidArgument)
                throw;
            fail(ErrorCode::InvalidArgument, e.file(),
                 "step " + std::to_string(i + 1) + " (" + recipe.steps[i].badge() + "): " + e.problem());
        }
        summaries.push_back(std::move(next.summary));
        for (std::string& name : next.touched)
            out.touched.push_back(std::move(name));
        out.state = std::move(next.state);
    }
    out.summary = std::move(summaries);
    return out;
}

} // namespace ll
