// layerlab-cli imatrix: llama.cpp's importance matrix of a model on a text,
// written in llama-imatrix's file format (pipeline/imatrix.h), for
// `layerlab-cli export --imatrix` or llama-quantize --imatrix.
#include "args.h"
#include "commands.h"
#include "terminal_progress.h"

#include "pipeline/imatrix.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/input_file.h"
#include "util/threads.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

namespace ll::cli {

int cmdImatrix(const std::vector<std::string>& argv)
{
    const Args a(argv, {"text", "out", "ctx", "chunks", "threads"}, {"json", "force"});
    const char* usage = "usage: layerlab-cli imatrix MODEL --text FILE --out OUT.dat [--ctx 512] [--chunks N] [--force] [--json]";
    const std::string modelPath = a.positionalAt(0, "MODEL");
    const auto text = a.value("text");
    const auto out = a.value("out");
    if (!text || !out || a.positional().size() != 1)
        throw UsageError(usage);
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));
    ImatrixOptions o;
    o.context = a.intOr("ctx", 512, 16, 1 << 20);
    o.chunks = a.intOr("chunks", 0, 0, int64_t{1} << 40);
    if (!a.flag("force") && std::filesystem::exists(*out))
        fail(ErrorCode::InvalidArgument, *out, "exists; pass --force to replace it");

    const auto started = std::chrono::steady_clock::now();
    const auto model = openModel(modelPath);
    const std::vector<int32_t> tokens = loadTokenizer(*model)->encode(readInputFile(*text, kMaxTextFileBytes, "the text file"), true);
    Imatrix m;
    {
        TerminalProgress progress(TerminalProgress::Mode::Auto);
        m = computeImatrix(*model, tokens, o, *text, &progress);
    }
    saveImatrix(m, *out, true);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (a.flag("json")) {
        std::cout << nlohmann::json{{"file", *out}, {"entries", m.entries.size()}, {"chunks", m.chunks},
                                    {"context", o.context}, {"tokens", m.chunks * o.context}, {"seconds", seconds}}
                         .dump(2)
                  << "\n";
        return 0;
    }
    std::printf("wrote %s: %zu tensors, %d chunks of %lld tokens, %.1f s\n", out->c_str(), m.entries.size(), m.chunks,
                static_cast<long long>(o.context), seconds);
    return 0;
}

} // namespace ll::cli
