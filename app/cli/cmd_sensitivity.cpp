// layerlab-cli sensitivity: each block linear compressed alone by one step
// (core/analysis/sensitivity.h), ranked by how much the model suffers.
#include "analysis_common.h"
#include "args.h"
#include "commands.h"
#include "compress_common.h"

#include "analysis/sensitivity.h"
#include "formats/open_model.h"
#include "model/model.h"

#include <cmath>
#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

const char* kSensitivityUsage =
    "usage: layerlab-cli sensitivity MODEL [--action quantize|prune|factorize] --method M [that action's options:\n"
    "         --bits B --group G --sym ... | --sparsity S --nm N:M | --rank-ratio F --energy E]\n"
    "         --eval FILE [--ctx 128] [--windows 8] [--layers REGEX] [--calib FILE|builtin [--calib-ctx 256]\n"
    "         [--calib-windows 64]] [--metric dppl|dnll|kl|top1|output-error] [--no-kl] [--no-cache] [--threads N] [--json]\n"
    "       layerlab-cli sensitivity MODEL --proxy ... (no --eval): every layer at once, ranked by its output error";

std::string optional(const std::optional<double>& v, const char* format)
{
    if (!v)
        return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, format, *v);
    return buf;
}

} // namespace

int cmdSensitivity(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = analysis::commonValued();
    const std::set<std::string> stepValued = analysis::stepValued();
    valued.insert(stepValued.begin(), stepValued.end());
    std::set<std::string> flags{"json", "no-kl", "proxy", "no-cache"};
    flags.insert(analysis::stepFlags().begin(), analysis::stepFlags().end());
    const Args a(argv, valued, flags);
    if (a.positional().size() != 1)
        throw UsageError(kSensitivityUsage);
    SensitivityOptions o;
    o.step = analysis::stepTemplate(a, kSensitivityUsage);
    o.layers = a.valueOr("layers", "");
    o.scoring = analysis::scoringOptions(a);
    o.compareLogits = !a.flag("no-kl");
    o.proxyOutputError = a.flag("proxy");
    o.cacheBlockInputs = !a.flag("no-cache"); // a whole forward pass per layer (for comparisons)
    const SensitivityMetric metric = analysis::metric(a, o.proxyOutputError ? "output-error" : "dppl");
    if ((metric == SensitivityMetric::Kl || metric == SensitivityMetric::Top1) && !o.compareLogits)
        throw UsageError("--metric kl and top1 need the logit comparison (drop --no-kl)");
    if (o.proxyOutputError && metric != SensitivityMetric::OutputError)
        throw UsageError("--proxy measures the output error only: --metric output-error");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));

    compress::CliProgress progress;
    const std::shared_ptr<const Model> model = openModel(a.positional()[0]);
    const std::vector<int32_t> eval = o.proxyOutputError ? std::vector<int32_t>{}
                                                         : analysis::evalTokens(*model, a, o.scoring, kSensitivityUsage);
    // The proxy measures output errors: data-free methods need the text too.
    const CalibrationText calib = o.step.usesCalibration() || o.proxyOutputError
                                      ? loadCalibration(*model, analysis::recipeCalibration(a))
                                      : CalibrationText{};
    SensitivityResult r = measureSensitivity(CompressionState::initial(model), o, eval, calib, {}, &progress);
    progress.clear();
    sortBySensitivity(r.rows, metric);

    if (a.flag("json")) {
        nlohmann::json j = r.toJson(); // rows most sensitive first
        j["sorted_by"] = sensitivityMetricName(metric);
        j["eval"] = a.value("eval") ? nlohmann::json(*a.value("eval")) : nlohmann::json(nullptr);
        j["calibration"] = calib.tokens.empty() ? nlohmann::json(nullptr) : nlohmann::json(calib.name);
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    if (o.proxyOutputError) {
        std::printf("%s on %zu layers together, ranked by each layer's output error on %s, %.1f s\n", o.step.badge().c_str(),
                    r.rows.size(), calib.name.c_str(), r.seconds);
        std::printf("  %4s  %-28s %8s %10s %12s\n", "rank", "layer", "bits/w", "weight err", "output err");
        for (size_t i = 0; i < r.rows.size(); ++i) {
            const LayerSensitivity& l = r.rows[i];
            std::printf("  %4zu  %-28s %8s %10s %12s\n", i + 1, l.name.c_str(), optional(l.bitsPerWeight, "%.3f").c_str(),
                        optional(l.weightError, "%.4f").c_str(), optional(l.outputError, "%.5f").c_str());
        }
        return 0;
    }
    std::printf("%s on %zu layers alone: base PPL %.4f (%lld windows of %lld, %lld tokens scored), %.1f s\n",
                o.step.badge().c_str(), r.rows.size(), r.base.ppl, static_cast<long long>(r.base.windows),
                static_cast<long long>(o.scoring.context), static_cast<long long>(r.base.tokensScored), r.seconds);
    std::printf("  sorted by %s, most sensitive first\n", sensitivityMetricName(metric));
    std::printf("  %4s  %-28s %8s %10s %10s %10s %10s %7s %6s\n", "rank", "layer", "bits/w", "weight err", "ppl", "dppl",
                "KL", "top-1", "s");
    for (size_t i = 0; i < r.rows.size(); ++i) {
        const LayerSensitivity& l = r.rows[i];
        std::printf("  %4zu  %-28s %8s %10s %10.4f %+10.4f %10s %7s %6.2f\n", i + 1, l.name.c_str(),
                    optional(l.bitsPerWeight, "%.3f").c_str(), optional(l.weightError, "%.4f").c_str(), l.ppl,
                    l.deltaPpl, optional(l.kl, "%.5f").c_str(),
                    optional(l.top1 ? std::optional<double>(100.0 * *l.top1) : std::nullopt, "%.1f%%").c_str(), l.seconds);
    }
    return 0;
}

} // namespace ll::cli
