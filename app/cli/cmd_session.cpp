// layerlab-cli session check FILE [--replay] [--json]: opens a GUI session
// (.layerlab) headless. Checks what restoring it needs (the file, its model,
// every recipe step's options and layer pattern against that model) and lists
// the parts the GUI would skip; --replay also applies the recipe, through the
// same applyRecipe() as the GUI, so a session that checks fine also restores.
#include "args.h"
#include "commands.h"
#include "compress_common.h"

#include "model/demo_model.h"
#include "model/model.h"
#include "pipeline/model_compression.h"
#include "recipe/apply.h"
#include "recipe/session_file.h"
#include "util/error.h"

#include <chrono>
#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

const char* kSessionUsage = "usage: layerlab-cli session check FILE.layerlab [--replay] [--threads N] [--json]";

} // namespace

int cmdSession(const std::vector<std::string>& argv)
{
    const Args a(argv, {"threads"}, {"replay", "json"});
    if (a.positional().size() != 2 || a.positional()[0] != "check")
        throw UsageError(kSessionUsage);
    const std::string& file = a.positional()[1];
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));
    const auto started = std::chrono::steady_clock::now();

    const SessionFile s = loadSession(file);
    const std::shared_ptr<const Model> model = openSessionModel(s);
    // Each step as the GUI would replay it: its options, then its layers on this model.
    nlohmann::json steps = nlohmann::json::array();
    for (size_t i = 0; i < s.recipe.steps.size(); ++i) {
        const RecipeStep& step = s.recipe.steps[i];
        const std::string where = "step " + std::to_string(i + 1) + " (" + step.badge() + ")";
        size_t targets = 0;
        try {
            step.validate();
            targets = selectTargets(*model, step.layers).size();
        } catch (const Error& e) {
            fail(e.code(), file, where + ": " + e.problem());
        }
        steps.push_back({{"action", std::string(actionName(step.action))}, {"badge", step.badge()},
                         {"layers", step.layers}, {"targets", targets}});
    }

    nlohmann::json j = {{"session", file},
                        {"format", s.formatVersion},
                        {"written_by", s.writtenBy},
                        {"model", s.demo ? std::string(kDemoModelPath) : s.modelPath},
                        {"model_format", model->format},
                        {"demo", s.demo},
                        {"tensors", model->tensors.size()},
                        {"steps", steps},
                        {"evaluation", s.evaluation},
                        {"compare_entries", s.compare.size()},
                        {"sections", nlohmann::json::array()},
                        {"warnings", s.warnings}};
    for (const auto& [key, value] : s.sections.items())
        j["sections"].push_back(key);

    if (a.flag("replay")) {
        compress::CliProgress progress;
        StepOutcome r;
        try {
            r = applyRecipe(model, s.recipe, &progress);
        } catch (const Error& e) {
            if (!e.file().empty())
                throw;
            fail(e.code(), file, e.problem());
        }
        progress.clear();
        j["replayed"] = {{"bits_per_weight", r.state.linearBitsPerWeight()},
                         {"parameters", r.state.model->parameterCount()},
                         {"summary", r.summary}};
    }
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if (a.flag("json")) {
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s: LayerLab session (format %lld%s%s)\n", oneLine(file).c_str(), static_cast<long long>(s.formatVersion),
                s.writtenBy.empty() ? "" : ", written by ", oneLine(s.writtenBy).c_str());
    std::printf("  model: %s (%s, %zu tensors)\n", oneLine(j["model"].get<std::string>()).c_str(), model->format.c_str(),
                model->tensors.size());
    if (s.recipe.steps.empty())
        std::printf("  recipe: no steps\n");
    for (size_t i = 0; i < s.recipe.steps.size(); ++i)
        std::printf("  %zu. %-9s %-28s %zu layer(s)\n", i + 1, std::string(actionName(s.recipe.steps[i].action)).c_str(),
                    oneLine(s.recipe.steps[i].badge()).c_str(), steps[i]["targets"].get<size_t>());
    if (!s.evaluation.is_null())
        std::printf("  evaluation: perplexity %.4f on %lld tokens (shown as saved)\n", s.evaluation["ppl"].get<double>(),
                    static_cast<long long>(s.evaluation["tokens_scored"].get<int64_t>()));
    if (!s.compare.empty())
        std::printf("  compare: %zu entr%s\n", s.compare.size(), s.compare.size() == 1 ? "y" : "ies");
    for (const std::string& w : s.warnings)
        std::printf("WARNING: %s: %s\n", oneLine(file).c_str(), oneLine(w).c_str());
    if (j.contains("replayed"))
        std::printf("  replayed: %.4f bits per weight over the block linears, %lld parameters\n",
                    j["replayed"]["bits_per_weight"].get<double>(),
                    static_cast<long long>(j["replayed"]["parameters"].get<int64_t>()));
    std::printf("ok (%.1f s)\n", j["seconds"].get<double>());
    return 0;
}

} // namespace ll::cli
