#include "pipeline/compression_result.h"

#include <algorithm>

namespace ll {

LayerOutcome quantizedOutcome(const LogicalTensor& t, QuantizedLayer q, double seconds)
{
    LayerOutcome o;
    o.name = t.logicalName;
    o.block = t.block;
    o.role = t.role;
    o.method = q.method;
    o.rowsBefore = o.rows = t.shape.at(0);
    o.colsBefore = o.cols = t.shape.size() > 1 ? t.shape[1] : 1;
    o.paramsBefore = o.paramsAfter = o.rows * o.cols; // a quantizer keeps every weight
    o.weightError = q.error.weightError;
    o.outputError = q.error.outputError;
    o.quantized = std::move(q);
    o.seconds = seconds;
    return o;
}

double ModelCompressionResult::bitsPerWeight() const
{
    double bits = 0.0, n = 0.0;
    for (const LayerOutcome& l : layers)
        if (l.quantized) {
            bits += l.quantized->bits.total();
            n += static_cast<double>(l.rows * l.cols);
        }
    return n > 0 ? bits / n : 0.0;
}

int64_t ModelCompressionResult::quantizedWeights() const
{
    int64_t n = 0;
    for (const LayerOutcome& l : layers)
        if (l.quantized)
            n += l.rows * l.cols;
    return n;
}

void ModelCompressionResult::countParameters(const Model& source)
{
    parametersBefore = source.parameterCount();
    storedParameters = model->parameterCount();
    // Pruned zeros stay in the stored matrices; factored layers already count k (out + in).
    int64_t saved = 0;
    for (const LayerOutcome& o : layers) {
        const LogicalTensor* t = model->findLogical(o.name);
        if (t && t->factored())
            continue;
        saved += o.rows * o.cols - (o.rowsBefore == o.rows && o.colsBefore == o.cols ? o.paramsAfter : o.rows * o.cols);
    }
    parametersAfter = storedParameters - saved;
}

namespace {

nlohmann::json quantizedJson(const QuantizedLayer& q, bool histograms)
{
    const BitsBreakdown& b = q.bits;
    nlohmann::json j{
        {"bits_per_weight", q.bitsPerWeight},
        {"bits", {{"codes", b.codes}, {"scales", b.scales}, {"zeros", b.zeros}, {"group_index", b.groupIndex},
                  {"input_scales", b.inputScales}, {"outliers", b.outliers}, {"low_rank", b.lowRank}}},
        {"loss", q.loss},
    };
    if (!q.info.empty())
        j["info"] = q.info;
    if (histograms) {
        const Histogram& h = q.error.errorStats.histogram;
        j["error_histogram"] = {{"lo", h.lo}, {"hi", h.hi}, {"counts", h.counts}};
    }
    return j;
}

} // namespace

nlohmann::json ModelCompressionResult::toJson(bool histograms) const
{
    nlohmann::json layersJson = nlohmann::json::array();
    for (const LayerOutcome& o : layers) {
        nlohmann::json j{
            {"name", o.name},
            {"method", o.method},
            {"shape_before", {o.rowsBefore, o.colsBefore}},
            {"shape", {o.rows, o.cols}},
            {"params_before", o.paramsBefore},
            {"params_after", o.paramsAfter},
            {"sparsity", o.sparsity},
            {"weight_error", o.weightError},
            {"output_error", o.outputError ? nlohmann::json(*o.outputError) : nlohmann::json(nullptr)},
            {"seconds", o.seconds},
        };
        if (o.rank > 0)
            j["rank"] = o.rank;
        if (o.quantized)
            j.update(quantizedJson(*o.quantized, histograms));
        layersJson.push_back(std::move(j));
    }
    nlohmann::json j{
        {"method", method},
        {"stats_mode", statsMode},
        {"parameters", parametersAfter},
        {"parameters_before", parametersBefore},
        {"stored_parameters", storedParameters},
        {"calibration_tokens", calibrationTokens},
        {"seconds", seconds},
        {"layers", std::move(layersJson)},
    };
    if (std::any_of(layers.begin(), layers.end(), [](const LayerOutcome& o) { return o.quantized.has_value(); })) {
        j["bits_per_weight"] = bitsPerWeight();
        j["quantized_weights"] = quantizedWeights();
    }
    if (calibrationTokens > 0)
        j["time_breakdown"] = {{"embedding", times.embedding},
                               {"forward", times.forward},
                               {"statistics", times.statistics},
                               {"method", times.compress}};
    return j;
}

} // namespace ll
