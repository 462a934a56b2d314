#include "export/hf_tokenizer_json.h"

#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <algorithm>
#include <unordered_map>

namespace ll {

namespace {

using ojson = nlohmann::ordered_json;

// Byte offsets where a UTF-8 character starts (transformers splits pieces by characters).
std::vector<size_t> charStarts(const std::string& s)
{
    std::vector<size_t> starts;
    for (size_t i = 0; i < s.size(); ++i)
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80)
            starts.push_back(i);
    return starts;
}

std::string pieceOr(const SentencePieceVocab& v, int64_t id, const std::string& fallback)
{
    return id >= 0 && id < static_cast<int64_t>(v.tokens.size()) ? v.tokens[static_cast<size_t>(id)] : fallback;
}

ojson addedToken(int64_t id, const std::string& content, bool special)
{
    return {{"id", id},         {"content", content}, {"single_word", false}, {"lstrip", false},
            {"rstrip", false},  {"normalized", false}, {"special", special}};
}

ojson replace(const std::string& from, const std::string& to)
{
    return {{"type", "Replace"}, {"pattern", {{"String", from}}}, {"content", to}};
}

} // namespace

SentencePieceVocab sentencePieceVocabFromLlama2c(const std::string& path, int64_t vocab)
{
    const Llama2cTokenizer tok(path, vocab);
    SentencePieceVocab v;
    for (int32_t id = 0; id < tok.vocabSize(); ++id) {
        std::string text = tok.piece(id);
        int32_t type = SentencePieceVocab::Normal;
        if (id == 0) { text = "<unk>"; type = SentencePieceVocab::Unknown; }
        else if (id == 1) { text = "<s>"; type = SentencePieceVocab::Control; }
        else if (id == 2) { text = "</s>"; type = SentencePieceVocab::Control; }
        else if (text.empty()) type = SentencePieceVocab::Control;
        else if (parseByteToken(text) >= 0) type = SentencePieceVocab::Byte;
        std::string escaped;
        for (char c : text)
            escaped += c == ' ' ? kMetaspace : std::string(1, c);
        v.tokens.push_back(escaped);
        v.scores.push_back(tok.score(id));
        v.types.push_back(type);
    }
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
    return v;
}

std::optional<SentencePieceVocab> sentencePieceVocabFromGguf(const nlohmann::json& md)
{
    if (!md.is_object() || md.value("tokenizer.ggml.model", std::string()) != "llama")
        return std::nullopt;
    const auto tokens = md.find("tokenizer.ggml.tokens");
    if (tokens == md.end() || !tokens->is_array())
        return std::nullopt;
    SentencePieceVocab v;
    try {
        v.tokens = tokens->get<std::vector<std::string>>();
        const size_t n = v.tokens.size();
        v.scores = md.value("tokenizer.ggml.scores", std::vector<float>(n, 0.0f));
        v.types = md.value("tokenizer.ggml.token_type", std::vector<int32_t>(n, SentencePieceVocab::Normal));
        if (v.scores.size() != n || v.types.size() != n)
            return std::nullopt;
        v.bos = md.value("tokenizer.ggml.bos_token_id", int64_t{-1});
        v.eos = md.value("tokenizer.ggml.eos_token_id", int64_t{-1});
        v.unk = md.value("tokenizer.ggml.unknown_token_id", int64_t{-1});
        v.addBos = md.value("tokenizer.ggml.add_bos_token", true);
        v.addEos = md.value("tokenizer.ggml.add_eos_token", false);
        v.addSpacePrefix = md.value("tokenizer.ggml.add_space_prefix", true);
    } catch (const nlohmann::json::exception&) {
        return std::nullopt; // keys of the wrong types: no tokenizer rather than a wrong one
    }
    return v;
}

std::vector<std::pair<std::string, std::string>> sentencePieceMerges(const SentencePieceVocab& v)
{
    // Python's {piece: id}: a repeated piece keeps its first position and its last id.
    std::unordered_map<std::string, int64_t> id;
    std::vector<const std::string*> unique;
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        const auto [it, inserted] = id.insert_or_assign(v.tokens[i], static_cast<int64_t>(i));
        if (inserted)
            unique.push_back(&it->first);
    }
    struct Merge {
        std::string left, right;
        float score; // of the merged piece
        size_t leftChars, rightChars;
    };
    std::vector<Merge> merges;
    for (const std::string* piece : unique) {
        // Every split costs a copy and a lookup of its halves, quadratic in the
        // piece's length: pieces past kMaxMergedPieceBytes (SentencePiece's own
        // limit is 16 characters) come from a damaged or hostile file, not a model.
        if (piece->size() > kMaxMergedPieceBytes)
            continue;
        const float score = v.scores[static_cast<size_t>(id.at(*piece))];
        const std::vector<size_t> starts = charStarts(*piece);
        for (size_t k = 1; k < starts.size(); ++k) {
            std::string left = piece->substr(0, starts[k]), right = piece->substr(starts[k]);
            if (id.count(left) && id.count(right))
                merges.push_back({std::move(left), std::move(right), score, k, starts.size() - k});
        }
    }
    // sorted(key=(score, len(left), len(right)), reverse=True): stable, so ties keep the vocabulary's order.
    std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
        return std::tie(a.score, a.leftChars, a.rightChars) > std::tie(b.score, b.leftChars, b.rightChars);
    });
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(merges.size());
    for (Merge& m : merges)
        out.emplace_back(std::move(m.left), std::move(m.right));
    return out;
}

nlohmann::ordered_json hfTokenizerJson(const SentencePieceVocab& v)
{
    ojson added = ojson::array();
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        const int32_t t = v.types[i];
        if (t == SentencePieceVocab::Control || t == SentencePieceVocab::Unknown || t == SentencePieceVocab::UserDefined)
            added.push_back(addedToken(static_cast<int64_t>(i), v.tokens[i], t != SentencePieceVocab::UserDefined));
    }

    ojson normalizer = replace(" ", kMetaspace);
    if (v.addSpacePrefix)
        normalizer = {{"type", "Sequence"},
                      {"normalizers", ojson::array({{{"type", "Prepend"}, {"prepend", kMetaspace}}, normalizer})}};

    // <s> $A (</s>), and for pairs the same again with type id 1.
    ojson postProcessor = nullptr;
    const bool bos = v.addBos && v.bos >= 0, eos = v.addEos && v.eos >= 0;
    if (bos || eos) {
        const std::string bosText = pieceOr(v, v.bos, "<s>"), eosText = pieceOr(v, v.eos, "</s>");
        auto special = [](const std::string& token, int type) { return ojson{{"SpecialToken", {{"id", token}, {"type_id", type}}}}; };
        auto sequence = [](const char* which, int type) { return ojson{{"Sequence", {{"id", which}, {"type_id", type}}}}; };
        ojson single = ojson::array(), pair = ojson::array();
        for (int part = 0; part < 2; ++part) {
            ojson& into = part == 0 ? single : pair;
            for (int type = 0; type <= part; ++type) {
                if (bos)
                    into.push_back(special(bosText, type));
                into.push_back(sequence(type == 0 ? "A" : "B", type));
                if (eos)
                    into.push_back(special(eosText, type));
            }
        }
        ojson specials = ojson::object();
        if (bos)
            specials[bosText] = {{"id", bosText}, {"ids", {v.bos}}, {"tokens", {bosText}}};
        if (eos)
            specials[eosText] = {{"id", eosText}, {"ids", {v.eos}}, {"tokens", {eosText}}};
        postProcessor = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
    }

    ojson decoders = ojson::array({replace(kMetaspace, " "), {{"type", "ByteFallback"}}, {{"type", "Fuse"}}});
    if (v.addSpacePrefix)
        decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});

    // Python's {piece: id} (a repeated piece keeps its first position and its last id).
    // ordered_json's operator[] finds a key by a linear scan, quadratic over a 128k
    // vocabulary (25 s for Llama 3's), so positions are looked up in a hash map.
    ojson vocab = ojson::object();
    auto& entries = vocab.get_ref<ojson::object_t&>();
    std::unordered_map<std::string, size_t> position;
    position.reserve(v.tokens.size());
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        const auto [it, inserted] = position.emplace(v.tokens[i], entries.size());
        if (inserted)
            entries.emplace_back(v.tokens[i], static_cast<int64_t>(i)); // the vector's own, no key search
        else
            (entries.begin() + static_cast<std::ptrdiff_t>(it->second))->second = static_cast<int64_t>(i);
    }
    ojson merges = ojson::array();
    for (const auto& [l, r] : sentencePieceMerges(v))
        merges.push_back({l, r});

    ojson model = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", v.unk >= 0 ? ojson(pieceOr(v, v.unk, "<unk>")) : ojson(nullptr)},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", true},
                   {"byte_fallback", true},
                   {"ignore_merges", false},
                   {"vocab", vocab},
                   {"merges", merges}};
    ojson j = {{"version", "1.0"},       {"truncation", nullptr}, {"padding", nullptr},
               {"added_tokens", added},  {"normalizer", normalizer}, {"pre_tokenizer", nullptr},
               {"post_processor", postProcessor}, {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
               {"model", model}};
    return j;
}

nlohmann::ordered_json hfTokenizerConfig(const SentencePieceVocab& v, int64_t maxLength)
{
    ojson c = {{"tokenizer_class", "LlamaTokenizerFast"}};
    if (v.bos >= 0)
        c["bos_token"] = pieceOr(v, v.bos, "<s>");
    if (v.eos >= 0)
        c["eos_token"] = pieceOr(v, v.eos, "</s>");
    if (v.unk >= 0)
        c["unk_token"] = pieceOr(v, v.unk, "<unk>");
    c["add_bos_token"] = v.addBos;
    c["add_eos_token"] = v.addEos;
    c["legacy"] = true;
    if (maxLength > 0)
        c["model_max_length"] = maxLength;
    c["clean_up_tokenization_spaces"] = false;
    return c;
}

} // namespace ll
