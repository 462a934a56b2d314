#pragma once
// What `prune` and `factorize` share: calibration and evaluation options,
// the terminal progress line (Ctrl-C cancels), evaluation, export and output.
#include "args.h"
#include "export_args.h"
#include "methods/method_registry.h"

#include "calib/calibration.h"
#include "util/threads.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/hf_export.h"
#include "pipeline/model_compression.h"
#include "util/error.h"
#include "util/progress.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>

namespace ll::cli::compress {

// Valued options both commands take.
inline const std::set<std::string>& commonValued()
{
    static const std::set<std::string> s{"layers", "calib", "calib-ctx", "calib-windows", "stats", "eval",
                                         "ctx", "out", "dtype", "threads", "gguf", "gguf-type"};
    return s;
}

// The options the methods of an action take (the registry's schemas): the ones
// with a value, and the flags.
inline std::set<std::string> methodOptions(StepAction action, bool flags)
{
    std::set<std::string> s;
    for (const MethodSpec* m : methodSpecsFor(action))
        for (const ParamSpec& p : m->params)
            if ((p.type == ParamType::Flag) == flags)
                s.insert(p.key);
    if (!flags)
        s.insert("method");
    return s;
}

// A progress line on a terminal (silent otherwise); SIGINT / SIGTERM cancel.
class CliProgress : public CancelFlag {
public:
    CliProgress() : terminal_(::isatty(STDERR_FILENO) != 0)
    {
        instance() = this;
        struct sigaction sa {};
        sa.sa_handler = [](int) {
            if (instance())
                instance()->cancel();
        };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &oldInt_);
        sigaction(SIGTERM, &sa, &oldTerm_);
    }
    ~CliProgress() override
    {
        clear();
        sigaction(SIGINT, &oldInt_, nullptr);
        sigaction(SIGTERM, &oldTerm_, nullptr);
        instance() = nullptr;
    }
    CliProgress(const CliProgress&) = delete;
    CliProgress& operator=(const CliProgress&) = delete;

    void report(double fraction, std::string_view what) override
    {
        if (!terminal_)
            return;
        shown_ = true;
        std::fprintf(stderr, "\r\033[K%3.0f %%  %.*s", 100.0 * std::clamp(fraction, 0.0, 1.0), static_cast<int>(what.size()),
                     what.data());
        std::fflush(stderr);
    }
    void clear()
    {
        if (terminal_ && shown_)
            std::fputs("\r\033[K", stderr);
        shown_ = false;
    }

private:
    static CliProgress*& instance()
    {
        static CliProgress* p = nullptr;
        return p;
    }
    bool terminal_;
    bool shown_ = false;
    struct sigaction oldInt_ {}, oldTerm_ {};
};

inline CalibrationOptions calibrationOptions(const Args& a)
{
    return parseOptions([&] { return calibrationOptionsFrom(ArgsParams(a)); }, "");
}

inline StatsMode statsMode(const Args& a)
{
    return parseOptions([&] { return statsModeFrom(ArgsParams(a)); }, "");
}

// --dtype as `export --hf` reads it (F16, f16, float16, ...): one parser for both.
inline DType exportDtype(const Args& a)
{
    return hfDtypeArg(a.valueOr("dtype", "f32"));
}

// Tokens of --calib (empty without it).
inline std::vector<int32_t> calibrationTokens(const Model& model, const Args& a)
{
    const auto path = a.value("calib");
    return path ? tokenizeTextFile(model, *path) : std::vector<int32_t>{};
}

// --eval: perplexity of `model` on the text, recorded in j["ppl"] and j["eval"].
// `prepare` may adjust the engine first (W8A8 activation quantization).
inline std::optional<PerplexityResult> evaluateIfAsked(const Args& a, const Model& model, CliProgress& progress,
                                                       nlohmann::json& j, int64_t& ctx,
                                                       const std::function<void(Transformer&)>& prepare = {})
{
    const auto evalPath = a.value("eval");
    if (!evalPath)
        return std::nullopt;
    const std::vector<int32_t> tokens = tokenizeTextFile(model, *evalPath);
    ScoringOptions opt;
    const int64_t maxCtx = model.config.maxPositions > 1 ? model.config.maxPositions : 512;
    ctx = opt.context = a.intOr("ctx", std::min<int64_t>(256, maxCtx), 2, 1 << 20);
    if (static_cast<int64_t>(tokens.size()) < opt.context)
        fail(ErrorCode::InvalidArgument, *evalPath,
             "the text is " + std::to_string(tokens.size()) + " tokens long, shorter than one window of "
                 + std::to_string(opt.context));
    const auto e0 = std::chrono::steady_clock::now();
    Transformer t(model, &progress);
    if (prepare)
        prepare(t);
    PerplexityResult ppl = evaluatePerplexity(t, tokens, opt, &progress);
    j["ppl"] = ppl.ppl;
    j["eval"] = {{"text", *evalPath},
                 {"context", opt.context},
                 {"tokens_scored", ppl.tokensScored},
                 {"windows", ppl.windows},
                 {"nll_mean", ppl.nllMean},
                 {"stderr", ppl.pplStderr},
                 {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count()}};
    return ppl;
}

// --out: the model as a Hugging Face folder, or --gguf OUT.gguf [--gguf-type T]
// (default F16), recorded in j["export"].
inline std::optional<ExportResult> exportIfAsked(const Args& a, const Model& model, CliProgress& progress,
                                                 nlohmann::json& j)
{
    const auto out = a.value("out");
    const auto gguf = a.value("gguf");
    if (out && gguf)
        throw UsageError("give --out DIR (Hugging Face) or --gguf OUT.gguf, not both");
    if (a.value("gguf-type") && !gguf)
        throw UsageError("--gguf-type belongs to --gguf OUT.gguf");
    if (!out && !gguf)
        return std::nullopt;
    ExportResult exported;
    if (gguf) {
        GgufExportOptions opt;
        setGgufType(opt, a.valueOr("gguf-type", "F16"), false);
        opt.overwrite = a.flag("force");
        opt.progress = &progress;
        exported = exportGguf(model, *gguf, opt);
    } else {
        HfExportOptions opt;
        opt.dtype = exportDtype(a);
        opt.overwrite = a.flag("force");
        opt.progress = &progress;
        exported = exportHf(model, *out, opt);
    }
    j["export"] = exported.toJson();
    return exported;
}

// The last lines of a compressing command's text output: the perplexity (after
// `note`, e.g. "W8A8", when given) and what was written.
inline void printEvaluationAndExport(const Args& a, const std::optional<PerplexityResult>& ppl, int64_t ctx,
                                     const std::optional<ExportResult>& exported, const std::string& note = {})
{
    if (ppl)
        std::printf("PPL = %.4f +/- %.4f  (%s%s, %lld tokens scored, windows of %lld)\n", ppl->ppl, ppl->pplStderr,
                    note.empty() ? "" : (note + ", ").c_str(), a.value("eval")->c_str(),
                    static_cast<long long>(ppl->tokensScored), static_cast<long long>(ctx));
    if (exported)
        std::printf("wrote %s (%llu bytes)\n", exported->path.c_str(), static_cast<unsigned long long>(exported->totalBytes));
    else
        std::printf("nothing written (no --out)\n");
}

// Evaluation (--eval), export (--out), output. Returns the exit code.
inline int finish(const Args& a, ModelCompressionResult& r, CliProgress& progress,
                  std::chrono::steady_clock::time_point started)
{
    nlohmann::json j = r.toJson();
    int64_t ctx = 0;
    const std::optional<PerplexityResult> ppl = evaluateIfAsked(a, *r.model, progress, j, ctx);
    const std::optional<ExportResult> exported = exportIfAsked(a, *r.model, progress, j);
    progress.clear();
    j["seconds_total"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (a.flag("json")) {
        std::cout << j.dump(1) << "\n";
        return 0;
    }
    std::printf("%s (%s statistics%s): %lld -> %lld parameters (%.1f %%), %.1f s\n", r.method.c_str(),
                r.statsMode.c_str(),
                r.calibrationTokens > 0 ? (", " + std::to_string(r.calibrationTokens) + " tokens").c_str() : "",
                static_cast<long long>(r.parametersBefore), static_cast<long long>(r.parametersAfter),
                r.parametersBefore > 0 ? 100.0 * static_cast<double>(r.parametersAfter) / static_cast<double>(r.parametersBefore) : 0.0,
                r.seconds);
    std::printf("  %-28s %-22s %9s %9s %10s %10s\n", "layer", "method", "params", "sparsity", "weight err", "output err");
    for (const LayerOutcome& o : r.layers) {
        char outErr[32] = "-";
        if (o.outputError)
            std::snprintf(outErr, sizeof outErr, "%.4f", *o.outputError);
        std::printf("  %-28s %-22s %9lld %8.1f%% %10.4f %10s\n", o.name.c_str(), o.method.c_str(),
                    static_cast<long long>(o.paramsAfter), 100.0 * o.sparsity, o.weightError, outErr);
    }
    printEvaluationAndExport(a, ppl, ctx, exported);
    return 0;
}

} // namespace ll::cli::compress
