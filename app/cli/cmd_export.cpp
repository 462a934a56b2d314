// layerlab-cli export: a model as GGUF, a Hugging Face folder and/or an HDF5
// report; with --recipe, the model the recipe makes (the same applyRecipe as
// `layerlab-cli apply` and the GUI, so the weights are bit-identical).
#include "args.h"
#include "commands.h"
#include "recipe_args.h"
#include "terminal_progress.h"
#include "export_report.h"
#include "export_args.h"

#include "pipeline/imatrix.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "util/error.h"
#include "util/progress.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>

namespace ll::cli {

namespace {

// Ctrl-C cancels the export, so that the partial file is removed instead of left behind.
CancelFlag* gCancel = nullptr;

extern "C" void onInterrupt(int)
{
    if (gCancel)
        gCancel->cancel();
}

void printSummary(const ExportResult& r)
{
    std::printf("wrote %s (%llu bytes, %zu tensors)\n", r.path.c_str(), static_cast<unsigned long long>(r.totalBytes),
                r.tensors.size());
    std::map<std::string, int> types;
    for (const auto& t : r.tensors)
        ++types[t.type];
    std::string line;
    for (const auto& [type, n] : types)
        line += (line.empty() ? "" : ", ") + type + " x" + std::to_string(n);
    std::printf("  tensor types: %s\n", line.c_str());
    if (!r.preset.empty()) {
        // Which tensors the preset put in which type, and why (fallbacks included).
        std::printf("  %s, each tensor's type as llama-quantize chooses it:\n", r.preset.c_str());
        for (const std::string& l : r.typeLines())
            std::printf("    %s\n", l.c_str());
        for (const auto& n : r.notes)
            std::printf("  note: %s\n", n.c_str());
        return;
    }
    // Fallbacks grouped by cause: a small model can have dozens of identical ones (--json lists each).
    std::map<std::string, std::vector<std::string>> groups;
    for (const auto& f : r.fallbacks)
        groups[f.requested + " -> " + f.used + " (" + f.reason + ")"].push_back(f.tensor);
    for (const auto& [cause, names] : groups) {
        std::string list;
        for (size_t i = 0; i < names.size() && i < 3; ++i)
            list += (i ? ", " : "") + names[i];
        if (names.size() > 3)
            list += ", ...";
        std::printf("  fallback: %zu tensor%s %s: %s\n", names.size(), names.size() == 1 ? "" : "s", cause.c_str(), list.c_str());
    }
    for (const auto& n : r.notes)
        std::printf("  note: %s\n", n.c_str());
}

} // namespace

int cmdExport(const std::vector<std::string>& args)
{
    std::set<std::string> valued{"gguf", "gguf-type", "hf", "dtype", "shard-mb", "recipe", "calib", "imatrix"};
    valued.insert(reportValuedOptions().begin(), reportValuedOptions().end()); // report, eval, ctx
    const Args a(args, valued, {"force", "json", "gguf-pure"});
    if (a.value("calib") && !a.value("recipe"))
        throw UsageError("--calib replaces the recipe's calibration text; it needs --recipe R.yaml");
    checkReportArgs(a);
    const std::string modelPath = a.positionalAt(0, "MODEL");
    if (a.positional().size() > 1)
        throw UsageError("unexpected argument '" + a.positional()[1] + "'");
    const bool gguf = a.value("gguf").has_value(), hf = a.value("hf").has_value();
    const bool report = a.value("report").has_value();
    if (gguf && hf)
        throw UsageError("give one of --gguf OUT.gguf or --hf DIR, not both");
    if (!gguf && !hf && !report)
        throw UsageError("give --gguf OUT.gguf, --hf DIR or --report OUT.h5");
    if (gguf && (a.value("dtype") || a.value("shard-mb")))
        throw UsageError("--dtype and --shard-mb belong to --hf; GGUF takes --gguf-type");
    if (hf && (a.value("gguf-type") || a.flag("gguf-pure") || a.value("imatrix")))
        throw UsageError("--gguf-type, --gguf-pure and --imatrix belong to --gguf; the Hugging Face export takes --dtype");
    if (a.flag("gguf-pure") && !a.value("gguf-type"))
        throw UsageError("--gguf-pure needs --gguf-type PRESET (the preset's base type for every 2-D weight)");

    TerminalProgress progress;
    gCancel = &progress;
    struct sigaction sa {};
    sa.sa_handler = onInterrupt;
    sigemptyset(&sa.sa_mask);
    struct sigaction oldInt {}, oldTerm {};
    sigaction(SIGINT, &sa, &oldInt);
    sigaction(SIGTERM, &sa, &oldTerm);
    struct RestoreSignals {
        struct sigaction i, t;
        ~RestoreSignals()
        {
            sigaction(SIGINT, &i, nullptr);
            sigaction(SIGTERM, &t, nullptr);
            gCancel = nullptr;
        }
    } restore{oldInt, oldTerm};

    // The recipe is read before the model is opened, so that a bad recipe fails fast.
    std::optional<Recipe> recipeIn;
    if (const auto path = a.value("recipe"))
        recipeIn = loadRecipeArg(a, *path);
    std::shared_ptr<const Model> model = openModel(modelPath);
    // With --recipe, everything below sees the compressed model; the report
    // records the recipe under /recipe, and its /layers describe the edited tensors.
    std::optional<nlohmann::json> recipe;
    std::optional<CompressionState> state;
    if (recipeIn) {
        StepOutcome applied = applyRecipeNamingFile(model, *recipeIn, *a.value("recipe"), &progress);
        state = std::move(applied.state);
        model = state->model;
        recipe = recipeIn->toJson();
        progress.clear();
        if (!a.flag("json"))
            std::printf("applied %zu step(s) of %s: %.4f bits per weight over the block linears, %lld parameters\n",
                        recipeIn->steps.size(), a.value("recipe")->c_str(), state->linearBitsPerWeight(),
                        static_cast<long long>(model->parameterCount()));
        if (state->activations.quantizesInputs() && !a.flag("json"))
            std::printf("  note: the recipe quantizes activations at run time (W8A8); the files hold the weights only\n");
        if (state->activations.kv.active() && !a.flag("json"))
            std::printf("  note: the recipe quantizes the KV cache at run time (%s); the files hold the weights only "
                        "(llama.cpp sets its own with --cache-type-k / --cache-type-v)\n",
                        state->activations.kv.label().c_str());
    }
    ExportResult result;
    if (gguf) {
        GgufExportOptions opt;
        setGgufType(opt, a.valueOr("gguf-type", "F16"), a.flag("gguf-pure"));
        Imatrix imatrix;
        if (const auto file = a.value("imatrix")) {
            imatrix = loadImatrix(*file);
            opt.imatrix = &imatrix;
            opt.imatrixFile = *file;
        }
        opt.overwrite = a.flag("force");
        opt.progress = &progress;
        result = exportGguf(*model, *a.value("gguf"), opt);
    } else if (hf) {
        HfExportOptions opt;
        opt.dtype = hfDtypeArg(a.valueOr("dtype", "f32"));
        const double shardMb = a.doubleOr("shard-mb", 0.0);
        if (!(shardMb >= 0.0) || shardMb > 1e9)
            throw UsageError("--shard-mb must be a non-negative number of megabytes (10^6 bytes)");
        opt.shardBytes = static_cast<uint64_t>(shardMb * 1e6);
        opt.overwrite = a.flag("force");
        opt.progress = &progress;
        result = exportHf(*model, *a.value("hf"), opt);
    }
    progress.clear();
    if (!a.flag("json") && (gguf || hf))
        printSummary(result);
    // --report (with or without an export): the HDF5 report of the same model (export_report.cpp).
    const std::optional<nlohmann::json> reportJson = reportIfAsked(a, *model, recipe, progress, a.flag("json"));
    if (a.flag("json")) {
        nlohmann::json j = gguf || hf ? result.toJson() : nlohmann::json::object();
        if (state) {
            j["recipe"] = *recipe;
            j["state"] = state->toJson();
        }
        if (reportJson)
            j["report"] = *reportJson;
        std::cout << jsonText(j) << "\n";
    }
    return 0;
}

} // namespace ll::cli
