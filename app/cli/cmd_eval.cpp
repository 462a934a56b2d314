// layerlab-cli eval: log-likelihood tasks (HellaSwag, ARC, MMLU, ...) with
// lm-evaluation-harness's prompts and metrics, on a model and, with a recipe,
// on the compressed model beside it.
#include "args.h"
#include "commands.h"
#include "compress_common.h"

#include "model/model.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "tasks/task_eval.h"
#include "tasks/task_formats.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

const char* kEvalUsage =
    "usage: layerlab-cli eval MODEL --tasks NAME=FILE[,NAME=FILE|DEF.yaml...] [--shots K] [--limit N] [--seed S]\n"
    "         [--recipe R.yaml [--calib FILE]] [--no-bos] [--alone] [--per-item] [--threads N] [--json]";

struct TaskSpec {
    std::string name, path;
};

std::vector<TaskSpec> parseTaskList(const std::string& list)
{
    std::vector<TaskSpec> specs;
    size_t pos = 0;
    while (pos <= list.size()) {
        const size_t comma = list.find(',', pos);
        const std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        pos = comma == std::string::npos ? list.size() + 1 : comma + 1;
        if (item.empty())
            continue;
        const size_t eq = item.find('=');
        specs.push_back(eq == std::string::npos ? TaskSpec{"", item} : TaskSpec{item.substr(0, eq), item.substr(eq + 1)});
    }
    if (specs.empty())
        throw UsageError(std::string("--tasks names no task\n") + kEvalUsage);
    return specs;
}

std::string formatList()
{
    std::string s;
    for (const TaskFormatInfo& f : taskFormats())
        s += std::string("  ") + f.name + ": " + f.fields + " (" + f.metrics + ")\n";
    return s;
}

nlohmann::json resultJson(const TaskResult& r, bool perItem)
{
    nlohmann::json metrics = nlohmann::json::object();
    for (const MetricValue& m : r.metrics)
        metrics[m.name] = {{"value", m.value}, {"stderr", m.standardError}};
    nlohmann::json j{{"metrics", metrics},
                     {"positions_run", r.positionsRun},
                     {"positions_alone", r.positionsAlone},
                     {"seconds", r.seconds}};
    if (perItem) {
        nlohmann::json items = nlohmann::json::array();
        for (const ItemResult& it : r.perItem)
            items.push_back({{"loglikelihoods", it.logLikelihoods}, {"greedy", it.greedy}, {"predicted", it.predicted},
                             {"predicted_norm", it.predictedNorm}, {"score", it.score}});
        j["items"] = items;
    }
    return j;
}

} // namespace

int cmdEval(const std::vector<std::string>& argv)
{
    const Args a(argv, {"tasks", "shots", "limit", "seed", "recipe", "calib", "threads", "max-length"},
                 {"json", "no-bos", "alone", "per-item", "formats"});
    if (a.flag("formats")) {
        std::printf("task formats (one JSON object per line; MMLU also as question,A,B,C,D,answer CSV):\n%s", formatList().c_str());
        return 0;
    }
    const auto taskList = a.value("tasks");
    if (a.positional().size() != 1 || !taskList)
        throw UsageError(std::string(kEvalUsage) + "\ntask formats:\n" + formatList());
    const std::string modelPath = a.positionalAt(0, "MODEL");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));
    TaskOptions opt;
    opt.shots = static_cast<int>(a.intOr("shots", 0, 0, 1000));
    opt.limit = a.intOr("limit", 0, 0, int64_t{1} << 40);
    opt.seed = static_cast<uint64_t>(a.intOr("seed", 1234, 0, INT64_MAX));
    opt.addBos = !a.flag("no-bos");
    opt.maxLength = a.intOr("max-length", 0, 0, 1 << 24);
    opt.sharedPrefix = !a.flag("alone");

    // Every task file is read before the model runs: a typo fails in a second, not after an hour.
    std::vector<Task> tasks;
    for (const TaskSpec& s : parseTaskList(*taskList))
        tasks.push_back(loadTask(s.name, s.path));

    compress::CliProgress progress;
    std::shared_ptr<const Model> source = openModel(modelPath);
    const auto tokenizer = loadTokenizer(*source);
    std::optional<CompressionState> compressed;
    std::string recipeFile;
    if (const auto r = a.value("recipe")) {
        recipeFile = *r;
        Recipe recipe = loadRecipe(recipeFile);
        if (const auto calib = a.value("calib"))
            recipe.calibration.text = *calib;
        try {
            compressed = applyRecipe(source, recipe, &progress).state;
        } catch (const Error& e) {
            if (!e.file().empty())
                throw;
            fail(e.code(), recipeFile, e.problem());
        }
    }

    // The original, then (with a recipe) the compressed model, on every task.
    std::vector<TaskResult> original, edited;
    {
        const Transformer t(*source, &progress);
        for (const Task& task : tasks)
            original.push_back(evaluateTask(t, *tokenizer, task, opt, &progress));
    }
    if (compressed) {
        Transformer t(*compressed->model, &progress);
        if (!compressed->activations.empty())
            applyActivationQuantization(t, compressed->activations);
        for (const Task& task : tasks)
            edited.push_back(evaluateTask(t, *tokenizer, task, opt, &progress));
    }
    progress.clear();

    if (a.flag("json")) {
        nlohmann::json j{{"model", modelPath}, {"shots", opt.shots}, {"seed", opt.seed}, {"bos", opt.addBos},
                         {"shared_prefix", opt.sharedPrefix}};
        if (compressed)
            j["recipe"] = recipeFile;
        nlohmann::json list = nlohmann::json::array();
        for (size_t i = 0; i < tasks.size(); ++i) {
            nlohmann::json t{{"task", original[i].task}, {"source", original[i].source}, {"items", original[i].items},
                             {"chance", original[i].chance}, {"original", resultJson(original[i], a.flag("per-item"))}};
            if (compressed)
                t["compressed"] = resultJson(edited[i], a.flag("per-item"));
            list.push_back(t);
        }
        j["tasks"] = list;
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s: %d-shot%s%s\n", oneLine(modelPath).c_str(), opt.shots, opt.addBos ? "" : ", no BOS",
                compressed ? (", original and after " + oneLine(recipeFile)).c_str() : "");
    std::printf("  %-16s %6s  %-10s %-19s%s\n", "task", "items", "metric", compressed ? "original" : "value ± stderr",
                compressed ? "  compressed" : "");
    for (size_t i = 0; i < tasks.size(); ++i) {
        const TaskResult& r = original[i];
        for (size_t m = 0; m < r.metrics.size(); ++m) {
            const MetricValue& v = r.metrics[m];
            std::printf("  %-16s %6s  %-10s %8.4f ± %-8.4f", m == 0 ? oneLine(r.task).c_str() : "",
                        m == 0 ? std::to_string(r.items).c_str() : "", v.name.c_str(), v.value, v.standardError);
            if (compressed) {
                const MetricValue& c = edited[i].metrics[m];
                std::printf("  %8.4f ± %-8.4f", c.value, c.standardError);
            }
            std::printf("\n");
        }
        std::printf("  %-16s %6s  chance %.4f; %.1f s; %lld positions run (%lld without the shared prefix)\n", "", "",
                    r.chance, r.seconds, static_cast<long long>(r.positionsRun), static_cast<long long>(r.positionsAlone));
    }
    return 0;
}

} // namespace ll::cli
