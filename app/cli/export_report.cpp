#include "export_report.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "pipeline/model_compression.h"
#include "report/report_writer.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace ll::cli {

namespace {

// --eval: perplexity (full protocol, non-overlapping windows) as the report's /evaluation.
nlohmann::json evaluate(const Args& a, const Model& model, const std::string& textPath, Progress& progress)
{
    const std::vector<int32_t> tokens = tokenizeTextFile(model, textPath);
    ScoringOptions opt;
    const int64_t maxCtx = model.config.maxPositions > 1 ? model.config.maxPositions : 512;
    opt.context = a.intOr("ctx", std::min<int64_t>(256, maxCtx), 2, 1 << 20);
    if (static_cast<int64_t>(tokens.size()) < opt.context)
        fail(ErrorCode::InvalidArgument, textPath,
             "the text is " + std::to_string(tokens.size()) + " tokens long, shorter than one window of "
                 + std::to_string(opt.context));
    const auto t0 = std::chrono::steady_clock::now();
    const Transformer t(model, &progress);
    const PerplexityResult p = evaluatePerplexity(t, tokens, opt, &progress);
    return {{"text", textPath},
            {"protocol", "full"},
            {"context", opt.context},
            {"ppl", p.ppl},
            {"ppl_stderr", p.pplStderr},
            {"nll_mean", p.nllMean},
            {"nll_stderr", p.nllStderr},
            {"tokens_scored", p.tokensScored},
            {"windows", p.windows},
            {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
}

} // namespace

const std::set<std::string>& reportValuedOptions()
{
    static const std::set<std::string> s{"report", "eval", "ctx"};
    return s;
}

void checkReportArgs(const Args& a)
{
    if (!a.value("report") && (a.value("eval") || a.value("ctx")))
        throw UsageError("--eval and --ctx put perplexity into the report; they need --report OUT.h5");
    if (a.value("ctx") && !a.value("eval"))
        throw UsageError("--ctx is the evaluation window; it needs --eval FILE");
}

std::optional<nlohmann::json> reportIfAsked(const Args& a, const Model& model, const std::optional<nlohmann::json>& recipe,
                                            Progress& progress, bool json)
{
    const auto path = a.value("report");
    if (!path)
        return std::nullopt;
    ReportInputs in;
    in.model = &model;
    in.recipe = recipe;
    in.options.overwrite = a.flag("force");
    if (const auto evalPath = a.value("eval"))
        in.evaluation = evaluate(a, model, *evalPath, progress);
    const ReportResult r = writeReport(*path, in, &progress);
    nlohmann::json j = r.toJson();
    if (in.evaluation)
        j["evaluation"] = *in.evaluation;
    if (!json) {
        std::printf("wrote report %s (%llu bytes, %lld tensors, %lld sparsity masks)\n", r.path.c_str(),
                    static_cast<unsigned long long>(r.bytes), static_cast<long long>(r.tensors),
                    static_cast<long long>(r.masks));
        if (in.evaluation)
            std::printf("  PPL = %.4f +/- %.4f  (%s, %lld tokens scored)\n", (*in.evaluation)["ppl"].get<double>(),
                        (*in.evaluation)["ppl_stderr"].get<double>(), a.value("eval")->c_str(),
                        static_cast<long long>((*in.evaluation)["tokens_scored"].get<int64_t>()));
    }
    return j;
}

} // namespace ll::cli
