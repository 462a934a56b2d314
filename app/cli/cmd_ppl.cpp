// layerlab-cli ppl: perplexity of a model on a text file.
#include "args.h"
#include "commands.h"

#include "util/threads.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/progress.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace ll::cli {

namespace {

// "window 12 of 1222" on one line of a terminal; silent when stderr is a file.
class TerminalProgress : public Progress {
public:
    TerminalProgress() : enabled_(::isatty(STDERR_FILENO) != 0) {}
    ~TerminalProgress() override
    {
        if (enabled_ && shown_)
            std::fputs("\r\033[K", stderr);
    }
    void report(double fraction, std::string_view what) override
    {
        if (!enabled_)
            return;
        shown_ = true;
        std::fprintf(stderr, "\r\033[K%3.0f %%  %.*s", 100.0 * fraction, static_cast<int>(what.size()), what.data());
        std::fflush(stderr);
    }

private:
    bool enabled_;
    bool shown_ = false;
};

std::string readText(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(ErrorCode::Io, path, "cannot open the text file");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

int cmdPpl(const std::vector<std::string>& argv)
{
    const Args a(argv, {"text", "ctx", "protocol", "threads", "max-windows", "batch"}, {"json"});
    const std::string modelPath = a.positionalAt(0, "MODEL");
    const auto textPath = a.value("text");
    if (!textPath)
        throw UsageError("usage: layerlab-cli ppl MODEL --text FILE [--ctx N] [--protocol full|llamacpp] [--json]");
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
    opt.maxWindows = a.intOr("max-windows", 0, 0, int64_t{1} << 40);
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
        TerminalProgress progress;
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
        std::cout << j.dump(1) << "\n";
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
