// layerlab-cli eval: log-likelihood tasks (HellaSwag, ARC, MMLU, ...) with
// lm-evaluation-harness's prompts and metrics, on a model and, with a recipe,
// on the compressed model beside it.
#include "args.h"
#include "commands.h"
#include "compress_common.h"
#include "recipe_args.h"

#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "recipe/apply.h"
#include "report/report_writer.h"
#include "tasks/proxy.h"
#include "recipe/recipe.h"
#include "tasks/task_eval.h"
#include "tasks/task_formats.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <numeric>

namespace ll::cli {

namespace {

const char* kEvalUsage =
    "usage: layerlab-cli eval MODEL --tasks NAME=FILE[,NAME=FILE|DEF.yaml...] [--shots K] [--limit N] [--seed S]\n"
    "         [--recipe R.yaml [--calib FILE]] [--no-bos] [--alone] [--per-item] [--max-tokens N] [--refusal-phrases FILE]\n"
    "         [--report OUT.h5 [--force]] [--threads N] [--json]\n"
    "       layerlab-cli eval MODEL --tasks ... --recipes R1.yaml,R2.yaml,... --text FILE [--ctx 256] [--windows N]\n"
    "         [--report OUT.h5 [--force]] [--json]   (perplexity as a proxy: rank correlations over the configurations)\n"
    "       layerlab-cli eval MODEL1 MODEL2 ... --tasks ... [--json]   (accuracy against size: several models, their Pareto front)";

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


std::vector<std::string> splitList(const std::string& list)
{
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos <= list.size()) {
        const size_t comma = list.find(',', pos);
        std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        if (!item.empty())
            out.push_back(std::move(item));
        pos = comma == std::string::npos ? list.size() + 1 : comma + 1;
    }
    return out;
}

// --report OUT.h5 [--force]: the HDF5 report of `model` with `results` under /tasks (and `recipe` under /recipe).
void writeReportIfAsked(const Args& a, const Model& model, std::optional<nlohmann::json> recipe, const nlohmann::json& results,
                        compress::CliProgress& progress)
{
    const auto report = a.value("report");
    if (!report)
        return;
    ReportInputs in;
    in.model = &model;
    in.recipe = std::move(recipe);
    in.tasks = results;
    in.options.overwrite = a.flag("force");
    writeReport(*report, in, &progress);
    progress.clear();
}

std::string rankText(const RankCorrelation& r)
{
    char b[96];
    std::snprintf(b, sizeof b, "%+.3f [%+.2f, %+.2f]", r.value, r.low, r.high);
    return b;
}

// --recipes: the original and every recipe's model, each scored for perplexity
// on --text and on every task; then how well perplexity ranks them as each task does.
int proxyMode(const Args& a, const std::string& modelPath, const std::vector<Task>& tasks, const TaskOptions& opt)
{
    const auto textPath = a.value("text");
    if (!textPath)
        throw UsageError(std::string("--recipes needs --text FILE for the perplexity of each configuration\n") + kEvalUsage);
    std::vector<std::pair<std::string, Recipe>> recipes;
    for (const std::string& file : splitList(*a.value("recipes")))
        recipes.emplace_back(file, loadRecipeArg(a, file));
    compress::CliProgress progress;
    std::shared_ptr<const Model> source = openModel(modelPath);
    const auto tokenizer = loadTokenizer(*source);
    const std::vector<int32_t> text = tokenizeTextFile(*source, *textPath);
    ScoringOptions scoring;
    const int64_t maxCtx = source->config.maxPositions > 1 ? source->config.maxPositions : 512;
    scoring.context = a.intOr("ctx", std::min<int64_t>(256, maxCtx), 2, 1 << 20);
    scoring.maxWindows = a.intOr("windows", 0, 0, int64_t{1} << 40);
    if (static_cast<int64_t>(text.size()) < scoring.context)
        fail(ErrorCode::InvalidArgument, *textPath, "the text is " + std::to_string(text.size()) + " tokens long, shorter than one window of "
                                                        + std::to_string(scoring.context));
    std::vector<ProxyConfig> configs;
    const auto score = [&](const std::string& name, const Transformer& t) {
        ProxyConfig c;
        c.name = name;
        c.ppl = evaluatePerplexity(t, text, scoring, &progress).ppl;
        for (const Task& task : tasks)
            c.tasks.push_back(evaluateTask(t, *tokenizer, task, opt, &progress));
        configs.push_back(std::move(c));
    };
    score("original", Transformer(*source, &progress));
    for (const auto& [file, recipe] : recipes) {
        const StepOutcome out = applyRecipeNamingFile(source, recipe, file, &progress);
        score(file, *stateEngine(out.state, &progress));
    }
    progress.clear();
    const std::vector<ProxyCorrelation> corr = perplexityAsProxy(configs);
    nlohmann::json j = proxyJson(configs, corr);
    j["model"] = modelPath;
    j["text"] = *textPath;
    j["context"] = scoring.context;
    j["shots"] = opt.shots;
    writeReportIfAsked(a, *source, std::nullopt, j, progress);
    if (a.flag("json")) {
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s: perplexity on %s (ctx %lld) and %d-shot tasks over %zu configurations\n", oneLine(modelPath).c_str(),
                oneLine(*textPath).c_str(), static_cast<long long>(scoring.context), opt.shots, configs.size());
    std::printf("  %-32s %10s", "configuration", "ppl");
    for (const Task& t : tasks)
        std::printf(" %14s", oneLine(t.name).substr(0, 14).c_str());
    std::printf("\n");
    for (const ProxyConfig& c : configs) {
        std::printf("  %-32s %10.4f", oneLine(c.name).substr(0, 32).c_str(), c.ppl);
        for (const TaskResult& r : c.tasks)
            std::printf(" %14.4f", r.metrics[0].value);
        std::printf("\n");
    }
    std::printf("rank correlation of perplexity with each task's metric (95 %% interval; negative: lower perplexity, better task):\n");
    for (const ProxyCorrelation& p : corr)
        std::printf("  %-16s %-8s Spearman %s   Kendall %s   (n = %d)\n", oneLine(p.task).c_str(), p.metric.c_str(),
                    rankText(p.spearman).c_str(), rankText(p.kendall).c_str(), p.spearman.n);
    if (const auto report = a.value("report"))
        std::printf("report: %s (/tasks)\n", oneLine(*report).c_str());
    return 0;
}

// Several MODELs: each scored on every task, beside its size as held, and for
// each task the models no other model beats while being smaller (the Pareto
// front of accuracy against bytes): the "is a quantized larger model better
// than a smaller one at the same memory" question.
int scalingMode(const Args& a, const std::vector<Task>& tasks, const TaskOptions& opt)
{
    struct Row {
        std::string model;
        int64_t parameters = 0;
        uint64_t bytes = 0;
        std::vector<TaskResult> results;
    };
    std::vector<Row> rows;
    compress::CliProgress progress;
    for (const std::string& path : a.positional()) {
        const auto model = openModel(path);
        const auto tokenizer = loadTokenizer(*model);
        const Transformer t(*model, &progress);
        Row r;
        r.model = path;
        r.parameters = model->parameterCount();
        r.bytes = t.weightBytes();
        for (const Task& task : tasks)
            r.results.push_back(evaluateTask(t, *tokenizer, task, opt, &progress));
        rows.push_back(std::move(r));
    }
    progress.clear();
    // front[t][i]: no other model is at most as large and at least as good on task t's main metric (and smaller or better).
    std::vector<std::vector<bool>> front(tasks.size(), std::vector<bool>(rows.size(), true));
    for (size_t t = 0; t < tasks.size(); ++t)
        for (size_t i = 0; i < rows.size(); ++i)
            for (size_t j = 0; j < rows.size(); ++j) {
                const double vi = rows[i].results[t].metrics[0].value, vj = rows[j].results[t].metrics[0].value;
                const bool lowerBetter = rows[i].results[t].metrics[0].name == "perplexity";
                // j dominates i: no larger and no worse, and smaller or better.
                const bool noWorse = lowerBetter ? vj <= vi : vj >= vi;
                const bool better = lowerBetter ? vj < vi : vj > vi;
                if (j != i && rows[j].bytes <= rows[i].bytes && noWorse && (rows[j].bytes < rows[i].bytes || better))
                    front[t][i] = false;
            }
    if (a.flag("json")) {
        nlohmann::json list = nlohmann::json::array();
        for (size_t i = 0; i < rows.size(); ++i) {
            nlohmann::json results = nlohmann::json::array(), onFront = nlohmann::json::array();
            for (size_t t = 0; t < tasks.size(); ++t) {
                results.push_back(taskResultToJson(rows[i].results[t], a.flag("per-item")));
                onFront.push_back(static_cast<bool>(front[t][i]));
            }
            list.push_back({{"model", rows[i].model}, {"parameters", rows[i].parameters}, {"weight_bytes", rows[i].bytes},
                            {"tasks", results}, {"pareto", onFront}});
        }
        std::cout << jsonText({{"models", list}, {"shots", opt.shots}, {"seed", opt.seed}}) << "\n";
        return 0;
    }
    std::printf("%zu models, %d-shot: each task's main metric against the weights' size (* on the front: no model of at most its size does as well)\n",
                rows.size(), opt.shots);
    std::printf("  %-40s %12s %11s", "model", "parameters", "weights MiB");
    for (const Task& t : tasks)
        std::printf(" %16s", oneLine(t.name).substr(0, 16).c_str());
    std::printf("\n");
    std::vector<size_t> order(rows.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return rows[x].bytes < rows[y].bytes; });
    for (const size_t i : order) {
        const std::string name = oneLine(rows[i].model);
        std::printf("  %-40s %12lld %11.1f", (name.size() > 40 ? "..." + name.substr(name.size() - 37) : name).c_str(), static_cast<long long>(rows[i].parameters),
                    static_cast<double>(rows[i].bytes) / (1024.0 * 1024.0));
        for (size_t t = 0; t < tasks.size(); ++t)
            std::printf(" %8.4f±%.4f%s", rows[i].results[t].metrics[0].value, rows[i].results[t].metrics[0].standardError,
                        front[t][i] ? "*" : " ");
        std::printf("\n");
    }
    return 0;
}

} // namespace

int cmdEval(const std::vector<std::string>& argv)
{
    const Args a(argv, {"tasks", "shots", "limit", "seed", "recipe", "recipes", "calib", "threads", "max-length", "text", "ctx",
                        "windows", "report", "refusal-phrases", "max-tokens"},
                 {"json", "no-bos", "alone", "per-item", "formats", "force"});
    if (a.flag("formats")) {
        std::printf("task formats (one JSON object per line; MMLU also as question,A,B,C,D,answer CSV):\n%s", formatList().c_str());
        return 0;
    }
    const auto taskList = a.value("tasks");
    if (a.positional().empty() || !taskList)
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
    const std::vector<std::string> phrases = loadRefusalPhrases(a.valueOr("refusal-phrases", ""));
    for (Task& t : tasks) {
        if (t.metric == TaskMetric::Refusal)
            t.generation.refusalPhrases = phrases;
        if (t.generates() && a.value("max-tokens"))
            t.generation.maxTokens = a.intOr("max-tokens", 256, 1, 1 << 20);
    }
    const bool anyRefusal = std::any_of(tasks.begin(), tasks.end(), [](const Task& t) { return t.metric == TaskMetric::Refusal; });

    if (a.positional().size() > 1) {
        if (a.value("recipe") || a.value("recipes"))
            throw UsageError("several MODELs are compared as they are: --recipe and --recipes take one MODEL");
        return scalingMode(a, tasks, opt);
    }
    if (a.value("recipes")) {
        if (a.value("recipe"))
            throw UsageError("give --recipe (one model beside the original) or --recipes (a correlation over several), not both");
        return proxyMode(a, modelPath, tasks, opt);
    }
    if (a.value("text"))
        throw UsageError(std::string("--text goes with --recipes\n") + kEvalUsage);

    compress::CliProgress progress;
    std::shared_ptr<const Model> source = openModel(modelPath);
    const auto tokenizer = loadTokenizer(*source);
    std::optional<CompressionState> compressed;
    std::string recipeFile;
    if (const auto r = a.value("recipe")) {
        recipeFile = *r;
        compressed = applyRecipeNamingFile(source, loadRecipeArg(a, recipeFile), recipeFile, &progress).state;
    }

    // The original, then (with a recipe) the compressed model, on every task.
    std::vector<TaskResult> original, edited;
    {
        const Transformer t(*source, &progress);
        for (const Task& task : tasks)
            original.push_back(evaluateTask(t, *tokenizer, task, opt, &progress));
    }
    if (compressed) {
        const auto t = stateEngine(*compressed, &progress);
        for (const Task& task : tasks)
            edited.push_back(evaluateTask(*t, *tokenizer, task, opt, &progress));
    }
    progress.clear();

    nlohmann::json j{{"model", modelPath}, {"shots", opt.shots}, {"seed", opt.seed}, {"bos", opt.addBos},
                     {"shared_prefix", opt.sharedPrefix}};
    if (compressed)
        j["recipe"] = recipeFile;
    if (anyRefusal)
        j["refusal_phrases"] = phrases;
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < tasks.size(); ++i) {
        nlohmann::json t{{"task", original[i].task}, {"source", original[i].source}, {"items", original[i].items},
                         {"chance", original[i].chance}, {"original", taskResultToJson(original[i], a.flag("per-item"))}};
        if (compressed)
            t["compressed"] = taskResultToJson(edited[i], a.flag("per-item"));
        list.push_back(t);
    }
    j["tasks"] = list;
    // The HDF5 report of the model evaluated last (the compressed one with --recipe), with the results under /tasks.
    writeReportIfAsked(a, compressed ? *compressed->model : *source,
                       compressed ? std::optional<nlohmann::json>(compressed->recipe().toJson()) : std::nullopt, j, progress);
    if (a.flag("json")) {
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s: %d-shot%s%s\n", oneLine(modelPath).c_str(), opt.shots, opt.addBos ? "" : ", no BOS",
                compressed ? (", original and after " + oneLine(recipeFile)).c_str() : "");
    int metricWidth = 10; // the longest metric name ("exact_match,flexible-extract")
    for (const TaskResult& r : original)
        for (const MetricValue& m : r.metrics)
            metricWidth = std::max(metricWidth, static_cast<int>(m.name.size()));
    std::printf("  %-16s %6s  %-*s %-19s%s\n", "task", "items", metricWidth, "metric", compressed ? "original" : "value ± stderr",
                compressed ? "  compressed" : "");
    for (size_t i = 0; i < tasks.size(); ++i) {
        const TaskResult& r = original[i];
        for (size_t m = 0; m < r.metrics.size(); ++m) {
            const MetricValue& v = r.metrics[m];
            std::printf("  %-16s %6s  %-*s %8.4f ± %-8.4f", m == 0 ? oneLine(r.task).c_str() : "",
                        m == 0 ? std::to_string(r.items).c_str() : "", metricWidth, v.name.c_str(), v.value, v.standardError);
            if (compressed) {
                const MetricValue& c = edited[i].metrics[m];
                std::printf("  %8.4f ± %-8.4f", c.value, c.standardError);
            }
            std::printf("\n");
        }
        if (tasks[i].generates())
            std::printf("  %-16s %6s  greedy generation, up to %lld tokens; %.1f s; %lld positions run\n", "", "",
                        static_cast<long long>(tasks[i].generation.maxTokens), r.seconds, static_cast<long long>(r.positionsRun));
        else
            std::printf("  %-16s %6s  chance %.4f; %.1f s; %lld positions run (%lld without the shared prefix)\n", "", "",
                        r.chance, r.seconds, static_cast<long long>(r.positionsRun), static_cast<long long>(r.positionsAlone));
    }
    if (anyRefusal) { // the user sees what counts as a refusal
        std::string list;
        for (const std::string& p : phrases)
            list += (list.empty() ? "\"" : ", \"") + p + "\"";
        std::printf("refused = the output holds one of (case-insensitive; --refusal-phrases FILE to change): %s\n", oneLine(list).c_str());
    }
    return 0;
}

} // namespace ll::cli
