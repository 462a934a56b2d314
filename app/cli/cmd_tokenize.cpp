// layerlab-cli tokenize: the model's own tokenizer on a text file.
#include "args.h"
#include "commands.h"

#include "formats/open_model.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/input_file.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace ll::cli {

int cmdTokenize(const std::vector<std::string>& argv)
{
    const Args a(argv, {"text", "prompt"}, {"json", "no-bos", "pieces"});
    const std::string path = a.positionalAt(0, "MODEL");
    std::string text;
    if (auto file = a.value("text")) {
        text = readInputFile(*file, kMaxTextFileBytes, "the text file");
    } else if (auto prompt = a.value("prompt")) {
        text = *prompt;
    } else {
        throw UsageError("give --text FILE or --prompt TEXT");
    }
    const auto model = openModel(path);
    const auto tokenizer = loadTokenizer(*model);
    // BOS is added as the model's tokenizer does, unless --no-bos.
    const std::vector<int32_t> ids = tokenizer->encode(text, !a.flag("no-bos"));
    if (a.flag("json")) {
        nlohmann::json j{{"ids", ids}, {"count", ids.size()}, {"tokenizer", tokenizer->description()}};
        if (a.flag("pieces")) {
            nlohmann::json pieces = nlohmann::json::array();
            for (int32_t id : ids) // tokenText may hold partial UTF-8 (byte tokens): escape it
                pieces.push_back(nlohmann::json(tokenizer->tokenText(id)).dump(-1, ' ', false,
                                                                               nlohmann::json::error_handler_t::replace));
            j["pieces"] = pieces;
        }
        std::cout << jsonText(j, -1) << "\n";
        return 0;
    }
    std::printf("%zu tokens (%s)\n", ids.size(), tokenizer->description().c_str());
    for (size_t i = 0; i < ids.size(); ++i)
        std::printf("%d%c", ids[i], i + 1 == ids.size() ? '\n' : ' ');
    return 0;
}

} // namespace ll::cli
