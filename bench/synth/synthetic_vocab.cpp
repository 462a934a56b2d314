// The tokenizer of a synthetic checkpoint: real SentencePiece pieces (a llama2.c
// tokenizer.bin, a SentencePiece-style tokenizer.json, or a small built-in BPE
// vocabulary) cut or padded to exactly the model's vocabulary size, because
// llama.cpp requires the GGUF vocabulary to match the embedding's rows.
#include "synthetic_checkpoint.h"

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json_util.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace ll::synth {

namespace {

using Type = SentencePieceVocab::TokenType;

// Text the built-in vocabulary is learned from (plain ASCII, written for this purpose).
constexpr const char* kBuiltinText =
    "Once upon a time there was a little model that lived in a large file on a quiet disk. Every morning the model "
    "woke up, read its weights, and tried to guess the next word of a story. Some days the guesses were good and "
    "some days they were not, but the model kept trying. One day a friendly engineer came to the workbench and "
    "said that the model was too big to carry around. The engineer wanted to make it smaller without making it "
    "forget the stories it knew. So they measured every layer, looked at the numbers, and decided which ones could "
    "lose a few bits. They tried rounding the weights, cutting the small ones, and splitting the large matrices "
    "into two thin ones. After each change they asked the model to read the same stories again and counted how "
    "surprised it was by every word. When the model was not much more surprised than before, the engineer smiled, "
    "wrote the new weights to a file, and the little model was happy to be light enough to run on a small "
    "computer at home. The end.";

constexpr int kBuiltinMerges = 240;

// A tiny byte-pair-encoding trainer over the words of kBuiltinText ("▁" + word):
// the most frequent adjacent pair is merged first (ties: the smallest pair).
std::vector<std::string> learnMerges(const std::string& text)
{
    std::map<std::vector<std::string>, int> words;
    size_t start = 0;
    while (start < text.size()) {
        const size_t end = std::min(text.find(' ', start), text.size());
        if (end > start) {
            std::vector<std::string> w{kMetaspace};
            for (size_t i = start; i < end; ++i)
                w.emplace_back(1, text[i]);
            ++words[w];
        }
        start = end + 1;
    }
    std::vector<std::string> pieces;
    std::set<std::string> seen;
    for (int round = 0; round < kBuiltinMerges; ++round) {
        std::map<std::pair<std::string, std::string>, int> pairs;
        for (const auto& [w, count] : words)
            for (size_t i = 0; i + 1 < w.size(); ++i)
                pairs[{w[i], w[i + 1]}] += count;
        const auto best = std::max_element(pairs.begin(), pairs.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
        if (best == pairs.end() || best->second < 2)
            break;
        const auto [left, right] = best->first;
        std::map<std::vector<std::string>, int> next;
        for (const auto& [w, count] : words) {
            std::vector<std::string> m;
            for (size_t i = 0; i < w.size(); ++i) {
                if (i + 1 < w.size() && w[i] == left && w[i + 1] == right) {
                    m.push_back(left + right);
                    ++i;
                } else {
                    m.push_back(w[i]);
                }
            }
            next[m] += count;
        }
        words = std::move(next);
        if (seen.insert(left + right).second)
            pieces.push_back(left + right);
    }
    return pieces;
}

void add(SentencePieceVocab& v, std::string piece, float score, int32_t type)
{
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
}

// Laid out as a llama SentencePiece model: <unk> <s> </s>, the 256 byte tokens,
// merged pieces best first, then the single characters.
SentencePieceVocab builtinVocab()
{
    SentencePieceVocab v;
    add(v, "<unk>", 0.0f, Type::Unknown);
    add(v, "<s>", 0.0f, Type::Control);
    add(v, "</s>", 0.0f, Type::Control);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        add(v, name, 0.0f, Type::Byte);
    }
    const std::string text = kBuiltinText;
    const std::vector<std::string> merged = learnMerges(text);
    for (size_t r = 0; r < merged.size(); ++r)
        add(v, merged[r], -static_cast<float>(r), Type::Normal);
    std::set<std::string> chars{kMetaspace};
    for (char c : text)
        if (c != ' ')
            chars.insert(std::string(1, c));
    float score = -static_cast<float>(merged.size());
    for (const auto& c : chars)
        add(v, c, score--, Type::Normal);
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    return v;
}

// A SentencePiece-style tokenizer.json (LlamaTokenizerFast): pieces by id, and the
// scores SentencePiece would give them (minus the rank of the merge that makes a
// piece; single characters below every merge), so that the merges regenerated
// from the scores are the file's.
SentencePieceVocab vocabFromTokenizerJson(const std::string& path)
{
    const HfTokenizer tok(path);
    if (tok.isByteLevel())
        fail(ErrorCode::InvalidArgument, path,
             "is a GPT-2 byte-level tokenizer; synthetic checkpoints take a SentencePiece-style one (or a llama2.c tokenizer.bin)");
    const nlohmann::json j = readJsonFile(path);
    const nlohmann::json& model = j.at("model");
    std::unordered_map<std::string, int32_t> idOf;
    for (int32_t id = 0; id < tok.vocabSize(); ++id)
        idOf.emplace(tok.piece(id), id);
    std::vector<float> scores(static_cast<size_t>(tok.vocabSize()), 0.0f);
    std::vector<bool> merged(scores.size(), false);
    int32_t rank = 0;
    if (model.contains("merges") && model["merges"].is_array())
        for (const auto& m : model["merges"]) {
            std::string joined;
            if (m.is_string()) {
                joined = m.get<std::string>();
                joined.erase(std::remove(joined.begin(), joined.end(), ' '), joined.end());
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                joined = m[0].get<std::string>() + m[1].get<std::string>();
            }
            const auto it = idOf.find(joined);
            if (it != idOf.end() && !merged[it->second]) {
                merged[it->second] = true;
                scores[it->second] = -static_cast<float>(rank);
            }
            ++rank;
        }
    const std::string unk = model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"].get<std::string>() : "";
    SentencePieceVocab v;
    float unmerged = -static_cast<float>(rank);
    for (int32_t id = 0; id < tok.vocabSize(); ++id) {
        const std::string piece = tok.piece(id);
        int32_t type = Type::Normal;
        float score = scores[id];
        if (!unk.empty() && piece == unk) { type = Type::Unknown; v.unk = id; score = 0.0f; }
        else if (tok.isControl(id)) { type = Type::Control; score = 0.0f; }
        else if (parseByteToken(piece) >= 0) { type = Type::Byte; score = 0.0f; }
        else if (!merged[id]) score = unmerged--;
        add(v, piece, score, type);
    }
    v.bos = tok.bosId();
    v.eos = tok.eosId();
    const std::vector<int32_t> withBos = tok.encode("a", true);
    v.addBos = v.bos >= 0 && !withBos.empty() && withBos.front() == v.bos;
    const std::vector<int32_t> plain = tok.encode("a", false);
    v.addSpacePrefix = !plain.empty() && tok.piece(plain.front()).rfind(kMetaspace, 0) == 0;
    return v;
}

SentencePieceVocab loadPieces(const std::string& path)
{
    if (path.empty())
        return builtinVocab();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        fail(ErrorCode::NotFound, path, "no such tokenizer file");
    const std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".bin")
        return sentencePieceVocabFromLlama2c(path, 0);
    if (ext == ".json")
        return vocabFromTokenizerJson(path);
    fail(ErrorCode::InvalidArgument, path, "is neither a llama2.c tokenizer (.bin) nor a tokenizer.json");
}

std::string paddedNumber(int64_t n, size_t width)
{
    std::string s = std::to_string(n);
    return std::string(width > s.size() ? width - s.size() : 0, '0') + s;
}

} // namespace

SentencePieceVocab synthVocab(int64_t vocab, const std::string& tokenizerPath)
{
    SentencePieceVocab v = loadPieces(tokenizerPath);
    const std::string source = tokenizerPath.empty() ? std::string("the built-in vocabulary") : tokenizerPath;
    const auto have = static_cast<int64_t>(v.tokens.size());
    if (have > vocab) {
        // Keep the best pieces; every special and byte token must survive the cut.
        for (int64_t id = vocab; id < have; ++id) {
            const int32_t t = v.types[static_cast<size_t>(id)];
            if (t == Type::Byte || t == Type::Control || t == Type::Unknown)
                fail(ErrorCode::InvalidArgument, source,
                     "has " + std::to_string(have) + " pieces; a vocabulary of " + std::to_string(vocab)
                         + " would cut its special or byte token " + std::to_string(id));
        }
        v.tokens.resize(static_cast<size_t>(vocab));
        v.scores.resize(static_cast<size_t>(vocab));
        v.types.resize(static_cast<size_t>(vocab));
        return v;
    }
    // Padding: "<filler_NNNN>" pieces of one fixed width, so none is a prefix of
    // another, and no real piece starts with "<filler_": no split of a filler into two
    // pieces exists, so no merge (HF) or bigram (llama.cpp) can ever produce one.
    const std::string prefix = "<filler_";
    std::unordered_set<std::string> taken(v.tokens.begin(), v.tokens.end());
    for (const auto& t : v.tokens)
        if (t.rfind(prefix, 0) == 0)
            fail(ErrorCode::InvalidArgument, source, "already holds a piece starting with \"" + prefix + "\" (" + t + ")");
    const size_t width = std::to_string(std::max<int64_t>(vocab - 1, 0)).size();
    float score = v.scores.empty() ? 0.0f : *std::min_element(v.scores.begin(), v.scores.end());
    for (int64_t id = have; id < vocab; ++id)
        add(v, prefix + paddedNumber(id, width) + ">", --score, Type::Unused);
    return v;
}

} // namespace ll::synth
