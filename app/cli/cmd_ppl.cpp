// layerlab-cli ppl: perplexity of a model on a text file.
#include "args.h"
#include "commands.h"
#include "terminal_progress.h"

#include "formats/open_model.h"
#include "util/threads.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/input_file.h"
#include "util/progress.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace ll::cli {

namespace {

std::string readText(const std::string& path)
{
    return readInputFile(path, kMaxTextFileBytes, "the text file");
}

// --windows N (--max-windows, its older name) or --tokens N: how much of the
// text to score, as the first windows of it (0 or absent: every whole window).
int64_t windowsToScore(const Args& a, int64_t context)
{
    const bool byWindows = a.value("windows") || a.value("max-windows");
    if (a.value("windows") && a.value("max-windows"))
        throw UsageError("--max-windows is the older name of --windows: give one of them");
    if (byWindows && a.value("tokens"))
        throw UsageError("give --windows or --tokens, not both");
    if (const auto tokens = a.value("tokens")) {
        const int64_t n = a.intOr("tokens", 0, 1, int64_t{1} << 50);
        return (n + context - 1) / context; // whole windows covering at least n tokens
    }
    return a.intOr(a.value("windows") ? "windows" : "max-windows", 0, 0, int64_t{1} << 40);
}

} // namespace

int cmdPpl(const std::vector<std::string>& argv)
{
    const Args a(argv, {"text", "ctx", "protocol", "threads", "windows", "max-windows", "tokens", "batch"}, {"json", "progress"});
    const std::string modelPath = a.positionalAt(0, "MODEL");
    const auto textPath = a.value("text");
    if (!textPath)
        throw UsageError("usage: layerlab-cli ppl MODEL --text FILE [--ctx N] [--windows N | --tokens N] "
                         "[--protocol full|llamacpp] [--json]");
    const std::string protocol = a.valueOr("protocol", "full");
    if (protocol != "full" && protocol != "llamacpp")
        throw UsageError("--protocol must be full or llamacpp");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));

    const auto model = openModel(modelPath);
    ScoringOptions opt;
    // Default: 512 tokens (llama.cpp's), never more than the model's positions.
    const int64_t maxCtx = model->config.maxPositions > 1 ? model->config.maxPositions : 512;
    opt.context = a.intOr("ctx", std::min<int64_t>(512, maxCtx), 2, 1 << 20);
    opt.protocol = protocol == "llamacpp" ? ScoringProtocol::LlamaCpp : ScoringProtocol::Full;
    opt.maxWindows = windowsToScore(a, opt.context);
    opt.windowsPerBatch = a.intOr("batch", 0, 0, 1 << 20);

    const auto started = std::chrono::steady_clock::now();
    const Transformer t(*model);
    const auto loaded = std::chrono::steady_clock::now();
    const auto tokenizer = loadTokenizer(*model);
    const std::vector<int32_t> tokens = tokenizer->encode(readText(*textPath), true);
    // As llama.cpp: windows start with BOS only when the vocabulary adds one.
    opt.windowStartToken = !tokens.empty() && tokenizer->bosId() >= 0 && tokens.front() == tokenizer->bosId() ? tokenizer->bosId() : -1;
    if (static_cast<int64_t>(tokens.size()) < opt.context)
        fail(ErrorCode::InvalidArgument, *textPath,
             "the text is " + std::to_string(tokens.size()) + " tokens long, shorter than one window of "
                 + std::to_string(opt.context) + " (use a longer text or a smaller --ctx)");
    PerplexityResult r;
    const auto evaluating = std::chrono::steady_clock::now();
    {
        // The clock starts here: the ETA is of the scoring, after the engine and the text are ready.
        TerminalProgress progress(a.flag("progress") ? TerminalProgress::Mode::Lines : TerminalProgress::Mode::Auto);
        r = evaluatePerplexity(t, tokens, opt, &progress);
    }
    const auto finished = std::chrono::steady_clock::now();
    const auto secondsBetween = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    const double seconds = secondsBetween(started, finished);
    const double evalSeconds = secondsBetween(evaluating, finished);

    if (a.flag("json")) {
        const nlohmann::json j{
            {"ppl", r.ppl},
            {"nll_mean", r.nllMean},
            {"tokens_scored", r.tokensScored},
            {"stderr", r.pplStderr},
            {"nll_stderr", r.nllStderr},
            {"windows", r.windows},
            {"context", opt.context},
            {"protocol", protocol},
            {"text_tokens", tokens.size()},
            {"seconds", seconds},
            // Opening the model was earlier (headers only); load = the engine on the mapped weights.
            {"load_seconds", secondsBetween(started, loaded)},
            {"eval_seconds", evalSeconds},
            // Every position of every window goes through the model (scored or not), as llama.cpp counts.
            {"tokens_per_second", evalSeconds > 0 ? static_cast<double>(r.windows * opt.context) / evalSeconds : 0.0},
        };
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s on %s: PPL = %.4f +/- %.4f  (mean NLL %.5f +/- %.5f nats, %lld tokens scored in %lld windows of %lld, "
                "protocol %s, %.1f s)\n",
                modelPath.c_str(), textPath->c_str(), r.ppl, r.pplStderr, r.nllMean, r.nllStderr,
                static_cast<long long>(r.tokensScored), static_cast<long long>(r.windows),
                static_cast<long long>(opt.context), protocol.c_str(), seconds);
    return 0;
}

} // namespace ll::cli
