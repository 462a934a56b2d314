#include "export/gguf_vocab.h"

#include "export/gguf_writer.h"
#include "export/hf_tokenizer_json.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json_util.h"

#include <filesystem>
#include <map>
#include <optional>
#include <unordered_map>

namespace ll {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// llama.cpp's token types (llama_token_type).
using enum SentencePieceVocab::TokenType;

// A vocabulary on its way into GGUF keys.
struct Vocab {
    std::string model;               // "llama" or "gpt2"
    std::string pre;                 // gpt2 only
    std::vector<std::string> tokens;
    std::vector<float> scores;       // llama only
    std::vector<int32_t> types;
    std::vector<std::string> merges; // gpt2 only
    int64_t bos = -1, eos = -1, unk = -1;
    bool addBos = false, addEos = false;
    std::optional<bool> addSpacePrefix;
    std::string chatTemplate;
};

// ---- copying a GGUF source's keys ----

bool endsWith(const std::string& s, const std::string& tail)
{
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The type llama.cpp's gguf-py gives a tokenizer key; inferred from the value for keys it does not know.
GgufType elementTypeOf(const std::string& key, const json& v)
{
    if (key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.merges") return GgufType::String;
    if (key == "tokenizer.ggml.scores") return GgufType::F32;
    if (key == "tokenizer.ggml.token_type") return GgufType::I32;
    if (key == "tokenizer.ggml.precompiled_charsmap") return GgufType::U8;
    if (endsWith(key, "_token_id") || key == "tokenizer.ggml.token_type_count") return GgufType::U32;
    return inferGgufType(v);
}

void copyGgufTokenizerKeys(GgufWriter& w, const json& md, int64_t vocabRows, std::vector<std::string>& notes)
{
    for (const auto& [key, value] : md.items()) {
        if (key.rfind("tokenizer.", 0) != 0)
            continue;
        if (value.is_array()) {
            bool nested = false;
            for (const auto& e : value)
                nested = nested || e.is_array() || e.is_object();
            if (nested) {
                notes.push_back("tokenizer key '" + key + "' holds nested arrays and was left out");
                continue;
            }
            w.setArray(key, elementTypeOf(key, value), value);
        } else {
            w.set(key, elementTypeOf(key, value), value);
        }
    }
    const auto it = md.find("tokenizer.ggml.tokens");
    if (it != md.end() && it->is_array() && static_cast<int64_t>(it->size()) != vocabRows)
        notes.push_back("the copied vocabulary has " + std::to_string(it->size()) + " tokens but the embedding has "
                        + std::to_string(vocabRows) + " rows");
}

// ---- llama2.c tokenizer.bin ----

Vocab fromLlama2c(const std::string& path, int64_t vocab)
{
    SentencePieceVocab spm = sentencePieceVocabFromLlama2c(path, vocab);
    Vocab v;
    v.model = "llama";
    v.tokens = std::move(spm.tokens);
    v.scores = std::move(spm.scores);
    v.types = std::move(spm.types);
    v.bos = spm.bos;
    v.eos = spm.eos;
    v.unk = spm.unk;
    v.addBos = spm.addBos;
    v.addEos = spm.addEos;
    return v;
}

// ---- Hugging Face tokenizer.json ----

std::optional<bytelevel::SplitStyle> splitStyleOf(const json& pre)
{
    if (pre.is_null())
        return bytelevel::SplitStyle::None;
    const std::string type = pre.value("type", "");
    if (type == "ByteLevel")
        return pre.value("use_regex", true) ? bytelevel::SplitStyle::Gpt2 : bytelevel::SplitStyle::None;
    if (type == "Split") {
        if (pre.contains("pattern") && pre["pattern"].is_object() && pre["pattern"].contains("Regex")
            && pre["pattern"]["Regex"].is_string())
            return bytelevel::splitStyleFromPattern(pre["pattern"]["Regex"].get<std::string>());
        return std::nullopt;
    }
    if (type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
        for (const auto& p : pre["pretokenizers"]) {
            const auto s = splitStyleOf(p);
            if (!s || *s != bytelevel::SplitStyle::None)
                return s;
        }
        return bytelevel::SplitStyle::None;
    }
    return std::nullopt;
}

std::string ggufPreName(const json& tokenizerJson, std::vector<std::string>& notes)
{
    const auto style = splitStyleOf(tokenizerJson.contains("pre_tokenizer") ? tokenizerJson["pre_tokenizer"] : json());
    if (style == bytelevel::SplitStyle::Gpt2) return "gpt-2";
    if (style == bytelevel::SplitStyle::Llama3) return "llama-bpe";
    if (style == bytelevel::SplitStyle::Qwen2) return "qwen2";
    notes.push_back("the tokenizer's pre-tokenizer has no llama.cpp equivalent; the GGUF says \"default\" (GPT-2's split), "
                    "so tokenization in llama.cpp may differ");
    return "default";
}

std::pair<std::string, std::string> mergePair(const json& m, const std::string& file)
{
    if (m.is_string()) {
        const std::string& s = m.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos)
            fail(ErrorCode::Malformed, file, "merge \"" + s + "\" is not two tokens");
        return {s.substr(0, space), s.substr(space + 1)};
    }
    if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        return {m[0].get<std::string>(), m[1].get<std::string>()};
    fail(ErrorCode::Malformed, file, "a merge is neither \"a b\" nor [\"a\", \"b\"]");
}

Vocab fromTokenizerJson(const std::string& path, const ModelConfig& config, std::vector<std::string>& notes)
{
    const json j = readJsonFile(path);
    const HfTokenizer tok(path); // validates the file; with tokenizer_config.json beside it, knows BOS / EOS
    const json& model = j.at("model");
    const json& vocabJson = model.at("vocab");
    std::unordered_map<std::string, int32_t> idOf;
    for (const auto& [piece, id] : vocabJson.items())
        idOf.emplace(piece, id.get<int32_t>());
    std::map<int32_t, bool> added; // id -> special
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
        for (const auto& a : j["added_tokens"])
            if (a.contains("id") && a["id"].is_number_integer()) {
                added[a["id"].get<int32_t>()] = a.value("special", false);
                if (a.contains("content") && a["content"].is_string())
                    idOf.emplace(a["content"].get<std::string>(), a["id"].get<int32_t>());
            }
    std::vector<std::pair<std::string, std::string>> merges;
    if (model.contains("merges") && model["merges"].is_array())
        for (const auto& m : model["merges"])
            merges.push_back(mergePair(m, path));

    Vocab v;
    const int32_t n = tok.vocabSize();
    // The tokenizer's own BOS / EOS, else the model config's (config.json's bos_token_id / eos_token_id).
    v.bos = tok.bosId() >= 0 ? tok.bosId() : (config.bosId < n ? config.bosId : -1);
    v.eos = tok.eosId() >= 0 ? tok.eosId() : (config.eosId < n ? config.eosId : -1);
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
        const auto it = idOf.find(model["unk_token"].get<std::string>());
        v.unk = it == idOf.end() ? -1 : it->second;
    }
    // What the tokenizer adds around a text, found by asking it.
    const std::vector<int32_t> probe = tok.encode("a", true);
    v.addBos = v.bos >= 0 && !probe.empty() && probe.front() == v.bos;
    v.addEos = v.eos >= 0 && probe.size() > 1 && probe.back() == v.eos;
    const auto cfgPath = fs::path(path).parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (fs::is_regular_file(cfgPath, ec)) {
        const json cfg = readJsonFile(cfgPath.string());
        if (cfg.is_object() && cfg.contains("chat_template") && cfg["chat_template"].is_string())
            v.chatTemplate = cfg["chat_template"].get<std::string>();
    }

    auto typeOf = [&](int32_t id, const std::string& piece) -> int32_t {
        if (const auto a = added.find(id); a != added.end())
            return id == v.unk ? Unknown : (a->second ? Control : UserDefined);
        if (id == v.unk) return Unknown;
        if (tok.isControl(id)) return Control;
        if (piece.empty() && !idOf.count(piece)) return Unused;
        return Normal;
    };

    if (tok.isByteLevel()) {
        v.model = "gpt2";
        v.pre = ggufPreName(j, notes);
        for (int32_t id = 0; id < n; ++id) {
            const std::string piece = tok.piece(id);
            const int32_t type = typeOf(id, piece);
            v.tokens.push_back(type == Unused ? "[PAD" + std::to_string(id) + "]" : piece);
            v.types.push_back(type);
        }
        for (const auto& [a, b] : merges)
            v.merges.push_back(a + " " + b);
        return v;
    }

    // SentencePiece-style BPE: llama.cpp merges the adjacent pair whose result
    // scores highest, so a token's score is minus the rank of the first merge making it.
    v.model = "llama";
    std::vector<float> scores(static_cast<size_t>(n), 0.0f);
    std::vector<bool> merged(static_cast<size_t>(n), false);
    for (size_t r = 0; r < merges.size(); ++r) {
        const auto it = idOf.find(merges[r].first + merges[r].second);
        if (it != idOf.end() && it->second >= 0 && it->second < n && !merged[it->second]) {
            merged[it->second] = true;
            scores[it->second] = -static_cast<float>(r);
        }
    }
    int64_t unmerged = 0;
    for (int32_t id = 0; id < n; ++id) {
        const std::string piece = tok.piece(id);
        int32_t type = typeOf(id, piece);
        if (type == Normal && parseByteToken(piece) >= 0)
            type = Byte;
        float score = scores[id];
        if (type == Normal && !merged[id]) // single characters: below every merge, in id order
            score = -static_cast<float>(merges.size() + unmerged++);
        if (type == Unused)
            score = -1000.0f;
        v.tokens.push_back(type == Unused ? "[PAD" + std::to_string(id) + "]" : piece);
        v.scores.push_back(score);
        v.types.push_back(type);
    }
    // A dummy space before the text shows as a leading "▁" on the first piece.
    const std::vector<int32_t> plain = tok.encode("a", false);
    v.addSpacePrefix = !plain.empty() && tok.piece(plain.front()).rfind(kMetaspace, 0) == 0;
    return v;
}

void writeVocab(GgufWriter& w, Vocab v, int64_t vocabRows)
{
    const int64_t have = static_cast<int64_t>(v.tokens.size());
    if (have > vocabRows)
        fail(ErrorCode::InvalidArgument, "",
             "the tokenizer has " + std::to_string(have) + " tokens but the embedding only " + std::to_string(vocabRows)
                 + " rows");
    for (int64_t id = have; id < vocabRows; ++id) { // as llama.cpp's converter pads
        v.tokens.push_back("[PAD" + std::to_string(id) + "]");
        if (v.model == "llama")
            v.scores.push_back(-1000.0f);
        v.types.push_back(Unused);
    }
    w.setString("tokenizer.ggml.model", v.model);
    if (!v.pre.empty())
        w.setString("tokenizer.ggml.pre", v.pre);
    w.setArray("tokenizer.ggml.tokens", GgufType::String, v.tokens);
    if (v.model == "llama")
        w.setArray("tokenizer.ggml.scores", GgufType::F32, v.scores);
    w.setArray("tokenizer.ggml.token_type", GgufType::I32, v.types);
    if (!v.merges.empty())
        w.setArray("tokenizer.ggml.merges", GgufType::String, v.merges);
    if (v.bos >= 0)
        w.setU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos));
    if (v.eos >= 0)
        w.setU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos));
    if (v.unk >= 0)
        w.setU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk));
    w.setBool("tokenizer.ggml.add_bos_token", v.addBos);
    w.setBool("tokenizer.ggml.add_eos_token", v.addEos);
    if (v.addSpacePrefix)
        w.setBool("tokenizer.ggml.add_space_prefix", *v.addSpacePrefix);
    if (!v.chatTemplate.empty())
        w.setString("tokenizer.chat_template", v.chatTemplate);
}

} // namespace

bool writeTokenizerKeys(GgufWriter& w, const Model& m, int64_t vocabRows, std::vector<std::string>& notes)
{
    if (m.metadata.is_object() && m.metadata.contains("tokenizer.ggml.tokens")) {
        copyGgufTokenizerKeys(w, m.metadata, vocabRows, notes);
        return true;
    }
    const std::string ext = fs::path(m.tokenizerPath).extension().string();
    if (!m.tokenizerPath.empty() && ext == ".bin") {
        writeVocab(w, fromLlama2c(m.tokenizerPath, m.config.vocab), vocabRows);
        return true;
    }
    if (!m.tokenizerPath.empty() && ext == ".json") {
        writeVocab(w, fromTokenizerJson(m.tokenizerPath, m.config, notes), vocabRows);
        return true;
    }
    w.setString("tokenizer.ggml.model", "none");
    notes.push_back("the source has no tokenizer, so the GGUF has none (tokenizer.ggml.model \"none\"): llama.cpp can load "
                    "it but not turn text into tokens");
    return false;
}

} // namespace ll
