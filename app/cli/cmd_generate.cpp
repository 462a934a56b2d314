// layerlab-cli generate: continue a prompt, greedy or sampled.
#include "args.h"
#include "commands.h"

#include "engine/generate.h"
#include "formats/open_model.h"
#include "util/threads.h"
#include "engine/transformer.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace ll::cli {

int cmdGenerate(const std::vector<std::string>& argv)
{
    const Args a(argv, {"prompt", "n", "temp", "top-p", "seed", "threads"}, {"json", "no-eos"});
    const std::string modelPath = a.positionalAt(0, "MODEL");
    const auto prompt = a.value("prompt");
    if (!prompt)
        throw UsageError("usage: layerlab-cli generate MODEL --prompt TEXT [-n N] [--temp T] [--top-p P] [--seed S]");
    GenerateOptions opt;
    opt.maxNewTokens = a.intOr("n", 64, 1, 1 << 20);
    opt.temperature = static_cast<float>(a.doubleOr("temp", 0.0));
    opt.topP = static_cast<float>(a.doubleOr("top-p", 1.0));
    opt.seed = static_cast<uint64_t>(a.intOr("seed", 0, 0, INT64_MAX));
    opt.stopAtEos = !a.flag("no-eos");
    if (opt.temperature < 0 || !(opt.topP > 0 && opt.topP <= 1))
        throw UsageError("--temp must be >= 0 and --top-p in (0, 1]");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));

    const auto model = openModel(modelPath);
    const Transformer t(*model);
    const auto tokenizer = loadTokenizer(*model);
    const std::vector<int32_t> promptIds = tokenizer->encode(*prompt, true);
    const bool json = a.flag("json");

    // The continuation's text: decode prompt + new tokens and drop the prompt's
    // text, so a leading space of the first new token is kept.
    std::vector<int32_t> all = promptIds;
    const std::string promptText = tokenizer->decode(promptIds);
    const auto continuation = [&] {
        const std::string text = tokenizer->decode(all);
        if (text.compare(0, promptText.size(), promptText) == 0)
            return text.substr(promptText.size());
        return tokenizer->decode(std::span<const int32_t>(all).subspan(promptIds.size()));
    };
    // Stream as it grows (a character split over byte tokens appears once its last byte arrives).
    std::string printed;
    if (!json) {
        std::fputs(prompt->c_str(), stdout);
        std::fflush(stdout);
    }
    const auto onToken = [&](int32_t id) {
        all.push_back(id);
        if (json)
            return;
        const std::string text = continuation();
        if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
            std::fputs(text.c_str() + printed.size(), stdout);
            std::fflush(stdout);
            printed = text;
        }
    };
    const std::vector<int32_t> generated = generate(t, promptIds, opt, nullptr, onToken);
    if (json) {
        const nlohmann::json j{{"prompt_ids", promptIds}, {"ids", generated}, {"text", continuation()}};
        std::cout << jsonText(j) << "\n";
    } else {
        std::fputs("\n", stdout);
    }
    return 0;
}

} // namespace ll::cli
