#pragma once
// What `sensitivity` and `mixed` share: the evaluation windows (--eval, --ctx,
// --windows), the calibration text (--calib FILE|builtin), and a step template
// built from the quantize / prune / factorize options.
#include "args.h"
#include "methods/method_registry.h"

#include "analysis/sensitivity.h"
#include "pipeline/model_compression.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "recipe/step_options.h"

#include <set>
#include <string>
#include <vector>

namespace ll::cli::analysis {

// Options every analysis command takes.
inline std::set<std::string> commonValued()
{
    return {"layers", "eval", "ctx", "windows", "calib", "calib-ctx", "calib-windows", "threads", "metric"};
}

inline ScoringOptions scoringOptions(const Args& a)
{
    ScoringOptions s = SensitivityOptions::defaultScoring();
    s.context = a.intOr("ctx", s.context, 2, 1 << 20);
    s.maxWindows = a.intOr("windows", s.maxWindows, 1, 1 << 20);
    return s;
}

// --eval FILE, required; at least one window.
inline std::vector<int32_t> evalTokens(const Model& model, const Args& a, const ScoringOptions& s, const char* usage)
{
    const auto path = a.value("eval");
    if (!path)
        throw UsageError(std::string("--eval FILE is required\n") + usage);
    std::vector<int32_t> tokens = tokenizeTextFile(model, *path);
    if (static_cast<int64_t>(tokens.size()) < s.context)
        fail(ErrorCode::InvalidArgument, *path,
             "the text is " + std::to_string(tokens.size()) + " tokens long, shorter than one window of "
                 + std::to_string(s.context));
    return tokens;
}

// --calib FILE|builtin (default builtin), --calib-ctx 256, --calib-windows 64: as a recipe's calibration.
inline RecipeCalibration recipeCalibration(const Args& a)
{
    RecipeCalibration c;
    c.text = a.valueOr("calib", "builtin");
    c.context = a.intOr("calib-ctx", c.context, 2, 1 << 20);
    c.windows = a.intOr("calib-windows", c.windows, 1, 1 << 20);
    return c;
}

inline SensitivityMetric metric(const Args& a, const std::string& fallback)
{
    const std::string m = a.valueOr("metric", fallback);
    const auto parsed = parseSensitivityMetric(m);
    if (!parsed)
        throw UsageError("--metric must be dppl, dnll, kl, top1 or output-error (not '" + m + "')");
    return *parsed;
}

// The step options every action may take (their values are read by core/recipe/step_options).
inline const std::set<std::string>& stepFlags()
{
    static const std::set<std::string> s = [] {
        std::set<std::string> flags;
        for (const MethodSpec* m : methodRegistry())
            for (const ParamSpec& p : m->params)
                if (p.type == ParamType::Flag)
                    flags.insert(p.key);
        return flags;
    }();
    return s;
}
inline std::set<std::string> stepValued()
{
    std::set<std::string> s{"action", "method", "structured", "ratio"};
    for (const auto* keys : {&quantizeKeys(), &pruneKeys(), &factorizeKeys()})
        for (const std::string& k : *keys)
            if (!stepFlags().count(k))
                s.insert(k);
    return s;
}

// --action quantize|prune|factorize (default quantize), --method and that action's options.
inline RecipeStep stepTemplate(const Args& a, const char* usage)
{
    RecipeStep s;
    const std::string action = a.valueOr("action", "quantize");
    const std::set<std::string>* keys = nullptr;
    if (action == "quantize") {
        s.action = StepAction::Quantize;
        keys = &quantizeKeys();
    } else if (action == "prune") {
        s.action = StepAction::Prune;
        keys = &pruneKeys();
    } else if (action == "factorize") {
        s.action = StepAction::Factorize;
        keys = &factorizeKeys();
    } else {
        throw UsageError("--action must be quantize, prune or factorize\n" + std::string(usage));
    }
    const auto method = a.value("method");
    if (!method)
        throw UsageError("--method is required\n" + std::string(usage));
    s.params["method"] = *method;
    std::set<std::string> all = stepValued();
    all.insert(stepFlags().begin(), stepFlags().end());
    for (const std::string& k : all) {
        if (k == "action" || k == "method" || !(a.flag(k) || a.value(k)))
            continue;
        if (!keys->count(k))
            throw UsageError(action + " has no option --" + k + "\n" + usage);
        if (a.flag(k)) {
            s.params[k] = true;
            continue;
        }
        const std::string v = *a.value(k);
        // Numbers as numbers, so that a saved recipe reads like a hand-written one.
        try {
            size_t used = 0;
            const double d = std::stod(v, &used);
            if (used == v.size()) {
                if (v.find_first_of(".eE") == std::string::npos)
                    s.params[k] = static_cast<long long>(d);
                else
                    s.params[k] = d;
                continue;
            }
        } catch (const std::exception&) {
        }
        s.params[k] = v;
    }
    parseOptions([&] { s.validate(); return 0; }, usage);
    return s;
}

} // namespace ll::cli::analysis
