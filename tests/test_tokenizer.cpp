// Tokenizers: llama2.c tokenizer.bin, Hugging Face tokenizer.json and the GGUF
// vocabulary against the ids transformers produced for stories260K, against each
// other on the whole TinyStories eval text, and a hand-checked GPT-2 byte-level BPE.
#include "test_support.h"

#include "formats/open_model.h"
#include "model/model.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json_util.h"

#include <QElapsedTimer>
#include <QtTest>

#include <filesystem>

#include <cstring>
#include <map>
#include <random>

using namespace ll;

namespace {

// The perplexity protocol of stories260K_compression.json: non-overlapping windows of
// 256 tokens, 255 scored per window, 311,610 scored tokens over eval.txt (one BOS first).
constexpr int64_t kWindow = 256;
constexpr int64_t kScoredPerWindow = 255;
constexpr int64_t kScoredTokens = 311610;

struct Reference {
    std::string text, prompt;
    std::vector<int32_t> ids, promptIds;
};

const Reference& reference()
{
    static const Reference r = [] {
        const auto j = readJsonFile(test::sharedPath("reference/stories260K_tokenizer.json"));
        Reference out;
        out.text = j.at("text_first_2000_chars_of_eval").get<std::string>();
        out.prompt = j.at("prompt").get<std::string>();
        out.ids = j.at("ids").get<std::vector<int32_t>>();
        out.promptIds = j.at("prompt_ids").get<std::vector<int32_t>>();
        return out;
    }();
    return r;
}

std::unique_ptr<Tokenizer> llama2cTokenizer()
{
    return loadTokenizer(*openModel(test::sharedPath("models/stories260K/stories260K.bin")));
}

std::unique_ptr<Tokenizer> hfTokenizer()
{
    return loadTokenizer(*openModel(test::sharedPath("models/stories260K-hf")));
}

// The GGUF file's vocabulary, or null (with the reason) while the GGUF reader cannot open it.
std::unique_ptr<Tokenizer> ggufTokenizer(std::string* why)
{
    try {
        return loadTokenizer(*openModel(test::sharedPath("models/stories260K-gguf/stories260K-f32.gguf")));
    } catch (const Error& e) {
        *why = e.what();
        return nullptr;
    }
}

// GGUF metadata as llama.cpp's converter writes it for a SentencePiece vocabulary,
// built from tok512.bin: exercises the GGUF tokenizer without the GGUF reader.
nlohmann::json ggufMetadataFromLlama2c(const Llama2cTokenizer& t)
{
    nlohmann::json tokens = nlohmann::json::array(), scores = nlohmann::json::array(), types = nlohmann::json::array();
    for (int32_t id = 0; id < t.vocabSize(); ++id) {
        std::string p = t.piece(id);
        int type = 1;
        if (id == 0) { p = "<unk>"; type = 2; }
        else if (id == 1) { p = "<s>"; type = 3; }
        else if (id == 2) { p = "</s>"; type = 3; }
        else if (parseByteToken(p) >= 0) type = 6;
        else {
            std::string s;
            for (char c : p)
                s += c == ' ' ? kMetaspace : std::string(1, c);
            p = s;
        }
        tokens.push_back(p);
        scores.push_back(t.score(id));
        types.push_back(type);
    }
    return {{"tokenizer.ggml.model", "llama"},          {"tokenizer.ggml.tokens", tokens},
            {"tokenizer.ggml.scores", scores},          {"tokenizer.ggml.token_type", types},
            {"tokenizer.ggml.bos_token_id", 1},         {"tokenizer.ggml.eos_token_id", 2},
            {"tokenizer.ggml.unknown_token_id", 0},     {"tokenizer.ggml.add_bos_token", true}};
}

std::string idsText(const std::vector<int32_t>& ids, size_t from, size_t n = 12)
{
    std::string s;
    for (size_t i = from; i < std::min(ids.size(), from + n); ++i)
        s += std::to_string(ids[i]) + " ";
    return s;
}

// Exact equality, reporting the first difference.
bool sameIds(const std::vector<int32_t>& a, const std::vector<int32_t>& b, const char* what)
{
    if (a == b)
        return true;
    size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i])
        ++i;
    qWarning("%s: %zu vs %zu ids, first difference at %zu: [%s] vs [%s]", what, a.size(), b.size(), i,
             idsText(a, i ? i - 1 : 0).c_str(), idsText(b, i ? i - 1 : 0).c_str());
    return false;
}

void checkReference(const Tokenizer& tok, const char* name)
{
    const Reference& ref = reference();
    QVERIFY2(sameIds(tok.encode(ref.text, true), ref.ids, name), name);
    QVERIFY2(sameIds(tok.encode(ref.prompt, true), ref.promptIds, name), name);
    QCOMPARE(tok.bosId(), 1);
    QCOMPARE(tok.eosId(), 2);
    QCOMPARE(tok.vocabSize(), 512);
    // Without BOS: the same ids minus the first.
    const auto noBos = tok.encode(ref.prompt, false);
    QVERIFY(std::equal(noBos.begin(), noBos.end(), ref.promptIds.begin() + 1, ref.promptIds.end()));
    QCOMPARE(tok.decode(ref.ids), ref.text);
    QCOMPARE(tok.decode(tok.encode("", true)), std::string());
    QCOMPARE(tok.encode("", true), std::vector<int32_t>{1});
}

// ---- a tiny GPT-2 style vocabulary, checked by hand ----
// Ids 0..255 are the single bytes (id = byte value); merges add 256.. in rank order.
const std::vector<std::pair<std::string, std::string>> kTinyMerges{
    {"h", "e"},        // 256 he
    {"Ġ", "t"},        // 257 Ġt
    {"Ġt", "he"},      // 258 Ġthe
    {"t", "he"},       // 259 the
    {"Ġ", "c"},        // 260 Ġc
    {"a", "t"},        // 261 at
    {"Ġc", "at"},      // 262 Ġcat
    {"'", "s"},        // 263 's
    {"Ċ", "Ċ"},        // 264 ĊĊ
};
constexpr int32_t kTinyEndOfText = 265;

StringIdMap tinyVocab()
{
    StringIdMap v;
    for (int b = 0; b < 256; ++b)
        v.emplace(bytelevel::fromBytes(std::string(1, static_cast<char>(b))), b);
    for (size_t i = 0; i < kTinyMerges.size(); ++i)
        v.emplace(kTinyMerges[i].first + kTinyMerges[i].second, static_cast<int32_t>(256 + i));
    return v;
}

nlohmann::json tinyGpt2TokenizerJson()
{
    nlohmann::json vocab = nlohmann::json::object();
    for (const auto& [piece, id] : tinyVocab())
        vocab[piece] = id;
    nlohmann::json merges = nlohmann::json::array();
    for (const auto& [a, b] : kTinyMerges)
        merges.push_back(a + " " + b); // the older "a b" spelling
    return {
        {"version", "1.0"},
        {"added_tokens", {{{"id", kTinyEndOfText}, {"content", "<|endoftext|>"}, {"special", true}}}},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
        {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", false}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"unk_token", nullptr}}},
    };
}

// The hand-derived encodings of the tiny vocabulary.
void checkTinyGpt2(const Tokenizer& tok)
{
    using V = std::vector<int32_t>;
    QCOMPARE(tok.encode("the cat", false), (V{259, 262}));                   // "the" "Ġcat"
    QCOMPARE(tok.encode("the cat's", false), (V{259, 262, 263}));            // contraction split off
    QCOMPARE(tok.encode("hello", false), (V{256, 'l', 'l', 'o'}));           // only "he" merges
    QCOMPARE(tok.encode(" the  cat", false), (V{258, ' ', 262}));            // \s+(?!\S) leaves one space
    QCOMPARE(tok.encode("\n\nthe", false), (V{'\n', '\n', 259}));            // "\n" "\n" are two words: no ĊĊ
    QCOMPARE(tok.encode("x\n\n", false), (V{'x', 264}));                     // trailing whitespace stays one word
    QCOMPARE(tok.encode("\xC3\xA9t\xC3\xA9", false), (V{0xC3, 0xA9, 't', 0xC3, 0xA9})); // "été": letters, bytes
    QCOMPARE(tok.encode("cat42!?", false), (V{'c', 261, '4', '2', '!', '?'}));
    QCOMPARE(tok.encode("the<|endoftext|>the", false), (V{259, kTinyEndOfText, 259}));
    QCOMPARE(tok.decode(tok.encode("the cat's \xC3\xA9t\xC3\xA9\n\n", false)), std::string("the cat's \xC3\xA9t\xC3\xA9\n\n"));
    QCOMPARE(tok.tokenText(258), std::string(" the"));
    QCOMPARE(tok.piece(258), std::string("Ġthe"));
    QCOMPARE(tok.tokenText(10), std::string("\n"));
}

// run.c's encode() as written there: rescan every adjacent pair, merge the first
// best-scoring one, repeat. Quadratic; an independent check of the fast path.
std::vector<int32_t> naiveRunc(const Llama2cTokenizer& tok, const std::string& text)
{
    std::map<std::string, int32_t> ids;
    for (int32_t i = tok.vocabSize() - 1; i >= 0; --i)
        ids[tok.piece(i)] = i;
    auto lookup = [&](const std::string& s) { auto it = ids.find(s); return it == ids.end() ? -1 : it->second; };
    std::vector<int32_t> t{lookup(" ")};
    for (size_t i = 0; i < text.size();) {
        size_t n = 1;
        while (n < 4 && i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80)
            ++n;
        const int32_t id = lookup(text.substr(i, n));
        if (id >= 0)
            t.push_back(id);
        else
            for (size_t k = 0; k < n; ++k)
                t.push_back(static_cast<unsigned char>(text[i + k]) + 3);
        i += n;
    }
    for (;;) {
        float best = -1e10f;
        int32_t bestId = -1;
        size_t bestAt = 0;
        for (size_t i = 0; i + 1 < t.size(); ++i) {
            const int32_t id = lookup(tok.piece(t[i]) + tok.piece(t[i + 1]));
            if (id >= 0 && tok.score(id) > best) {
                best = tok.score(id);
                bestId = id;
                bestAt = i;
            }
        }
        if (bestId < 0)
            break;
        t[bestAt] = bestId;
        t.erase(t.begin() + static_cast<std::ptrdiff_t>(bestAt) + 1);
    }
    return t;
}

// The whole text as ONE merge sequence (no cut before spaces), with the fast merge loop.
std::vector<int32_t> wholeTextRunc(const Llama2cTokenizer& tok, const std::string& text)
{
    StringIdMap ids;
    for (int32_t i = 0; i < tok.vocabSize(); ++i)
        ids.emplace(tok.piece(i), i);
    const std::string s = " " + text;
    std::vector<bpe::Symbol> symbols;
    for (size_t i = 0; i < s.size();) {
        size_t n = 1;
        while (n < 4 && i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80)
            ++n;
        const int32_t id = lookupId(ids, std::string_view(s).substr(i, n));
        if (id >= 0)
            symbols.push_back({id, i, n, false});
        else
            for (size_t k = 0; k < n; ++k)
                symbols.push_back({static_cast<unsigned char>(s[i + k]) + 3, i + k, 1, true});
        i += n;
    }
    const auto merged = bpe::mergeAll(std::move(symbols), [&](const bpe::Symbol& a, const bpe::Symbol& b) -> std::optional<bpe::Merge> {
        const int32_t id = lookupId(ids, std::string_view(s).substr(a.start, a.len + b.len));
        if (id < 0)
            return std::nullopt;
        return bpe::Merge{-static_cast<double>(tok.score(id)), id};
    });
    std::vector<int32_t> out{1};
    for (const auto& m : merged)
        out.push_back(m.id);
    return out;
}

std::string expectError(const std::function<void()>& f, ErrorCode code)
{
    try {
        f();
    } catch (const Error& e) {
        if (e.code() != code)
            qWarning("got %s (%s), expected %s", errorCodeName(e.code()), e.what(), errorCodeName(code));
        return e.code() == code ? std::string(e.what()) : std::string("WRONG CODE");
    }
    return "NO ERROR";
}

std::string i32(int32_t v)
{
    std::string s(4, '\0');
    std::memcpy(s.data(), &v, 4);
    return s;
}

} // namespace

class TestTokenizer : public QObject {
    Q_OBJECT
private slots:
    void llama2cMatchesTransformers();
    void tokenizerJsonMatchesTransformers();
    void ggufVocabularyMatchesTransformers();
    void ggufTokenizerOnLlama2cVocabulary();
    void wholeEvalTextAgreesAndCounts();
    void fastPathEqualsRuncAlgorithm();
    void metaspacePreTokenizerVariant();
    void byteLevelTemplateAndSplitVariant();
    void byteFallbackAgrees();
    void randomTextRoundTrips();
    void tokenTexts();
    void gpt2ByteLevelByHand();
    void gpt2ByteLevelFromGgufMetadata();
    void pretokenizerRegexes();
    void malformedTokenizers();
    void cliTokenizeMatchesReference();
    void vocabularyMismatchIsAWarning();
};

void TestTokenizer::llama2cMatchesTransformers()
{
    LL_REQUIRE_SHARED();
    const auto tok = llama2cTokenizer();
    QVERIFY(dynamic_cast<const Llama2cTokenizer*>(tok.get()));
    checkReference(*tok, "tok512.bin");
}

void TestTokenizer::tokenizerJsonMatchesTransformers()
{
    LL_REQUIRE_SHARED();
    const auto tok = hfTokenizer();
    const auto* hf = dynamic_cast<const HfTokenizer*>(tok.get());
    QVERIFY(hf && !hf->isByteLevel());
    checkReference(*tok, "tokenizer.json");
}

void TestTokenizer::ggufVocabularyMatchesTransformers()
{
    LL_REQUIRE_SHARED();
    std::string why;
    const auto tok = ggufTokenizer(&why);
    if (!tok)
        QSKIP(("the GGUF reader cannot open stories260K-f32.gguf yet: " + why).c_str());
    QVERIFY(dynamic_cast<const GgufTokenizer*>(tok.get()));
    checkReference(*tok, "stories260K-f32.gguf");
}

void TestTokenizer::ggufTokenizerOnLlama2cVocabulary()
{
    LL_REQUIRE_SHARED();
    const Llama2cTokenizer bin(test::sharedPath("models/stories260K/tok512.bin"), 512);
    const GgufTokenizer tok(ggufMetadataFromLlama2c(bin), "synthetic GGUF metadata");
    checkReference(tok, "GGUF metadata from tok512.bin");
}

void TestTokenizer::wholeEvalTextAgreesAndCounts()
{
    LL_REQUIRE_SHARED();
    const std::string text = test::readFile(test::sharedPath("data/tinystories/eval.txt"));
    QVERIFY(text.size() > 600000);
    std::vector<std::pair<std::string, std::unique_ptr<Tokenizer>>> toks;
    toks.emplace_back("tok512.bin", llama2cTokenizer());
    toks.emplace_back("tokenizer.json", hfTokenizer());
    std::string why;
    if (auto g = ggufTokenizer(&why))
        toks.emplace_back("GGUF", std::move(g));
    else
        qInfo("GGUF vocabulary left out: %s", why.c_str());
    if (toks.size() == 3) // the quantized file carries the same vocabulary
        toks.emplace_back("GGUF Q4_K_M",
                          loadTokenizer(*openModel(test::sharedPath("models/stories260K-gguf/stories260K-Q4_K_M.gguf"))));

    std::vector<int32_t> first;
    for (const auto& [name, tok] : toks) {
        QElapsedTimer timer;
        timer.start();
        const std::vector<int32_t> ids = tok->encode(text, true);
        const qint64 ms = timer.elapsed();
        qInfo("%s: %zu tokens in %lld ms", name.c_str(), ids.size(), static_cast<long long>(ms));
        const int64_t n = static_cast<int64_t>(ids.size());
        QCOMPARE((n / kWindow) * kScoredPerWindow, kScoredTokens);
        QCOMPARE(ids.front(), 1);
        QCOMPARE(std::count(ids.begin(), ids.end(), 1), std::ptrdiff_t{1});
        if (first.empty())
            first = ids;
        else
            QVERIFY2(sameIds(ids, first, name.c_str()), name.c_str());
        QVERIFY2(tok->decode(ids) == text, name.c_str());
    }
    // The reference's 2000-character prefix is a prefix of the whole-text encoding
    // except where its last word was cut.
    const auto& ref = reference().ids;
    QVERIFY(std::equal(ref.begin(), ref.end() - 1, first.begin()));
}

void TestTokenizer::fastPathEqualsRuncAlgorithm()
{
    LL_REQUIRE_SHARED();
    const Llama2cTokenizer tok(test::sharedPath("models/stories260K/tok512.bin"), 512);
    const std::string text = test::readFile(test::sharedPath("data/tinystories/eval.txt"));
    // run.c's quadratic loop on a stretch from the middle of the file and on text full of byte fallbacks.
    for (const std::string& piece : {text.substr(300000, 2500), std::string("Zo\xC3\xAB \xF0\x9F\x98\x80  \xE2\x80\x9Cx\xE2\x80\x9D\n\n a")}) {
        std::vector<int32_t> expected = naiveRunc(tok, piece);
        expected.insert(expected.begin(), 1);
        QVERIFY(sameIds(tok.encode(piece, true), expected, "naive run.c"));
    }
    // The whole file merged as one sequence, as run.c and transformers do, equals the cut-at-spaces fast path.
    QVERIFY(sameIds(tok.encode(text, true), wholeTextRunc(tok, text), "whole-text merge"));
}

void TestTokenizer::metaspacePreTokenizerVariant()
{
    LL_REQUIRE_SHARED();
    // Older Llama tokenizer.json files spell the same thing as a Metaspace pre-tokenizer.
    nlohmann::json j = readJsonFile(test::sharedPath("models/stories260K-hf/tokenizer.json"));
    j["normalizer"] = nullptr;
    const std::string text = test::readFile(test::sharedPath("data/tinystories/eval.txt")).substr(0, 50000);
    const auto expected = llama2cTokenizer()->encode(text, true);
    for (const bool split : {false, true}) {
        j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kMetaspace}, {"prepend_scheme", "first"}, {"split", split}};
        const HfTokenizer tok(j, "metaspace tokenizer.json");
        QVERIFY(sameIds(tok.encode(text, true), expected, split ? "Metaspace split" : "Metaspace"));
        QCOMPARE(tok.decode(expected), text);
    }
}

void TestTokenizer::byteLevelTemplateAndSplitVariant()
{
    // Llama 3's shape: Split(regex) + ByteLevel(use_regex false), ignore_merges, a BOS template.
    nlohmann::json j = tinyGpt2TokenizerJson();
    j["added_tokens"].push_back({{"id", 266}, {"content", "<|begin_of_text|>"}, {"special", true}});
    const std::string llama3Regex =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    nlohmann::json split{{"type", "Split"}, {"behavior", "Isolated"}, {"invert", false}};
    split["pattern"]["Regex"] = llama3Regex;
    const nlohmann::json byteLevel{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", nlohmann::json::array({split, byteLevel})}};

    nlohmann::json bosItem, sequenceItem, tmpl{{"type", "TemplateProcessing"}};
    bosItem["SpecialToken"] = {{"id", "<|begin_of_text|>"}, {"type_id", 0}};
    sequenceItem["Sequence"] = {{"id", "A"}, {"type_id", 0}};
    tmpl["single"] = nlohmann::json::array({bosItem, sequenceItem});
    tmpl["special_tokens"]["<|begin_of_text|>"] = {{"id", "<|begin_of_text|>"}, {"ids", {266}}, {"tokens", {"<|begin_of_text|>"}}};
    j["post_processor"] = {{"type", "Sequence"}, {"processors", nlohmann::json::array({{{"type", "ByteLevel"}}, tmpl})}};
    j["model"]["ignore_merges"] = true;
    const HfTokenizer tok(j, "llama3-style tokenizer.json");
    QVERIFY(tok.isByteLevel());
    QCOMPARE(tok.bosId(), 266);
    using V = std::vector<int32_t>;
    QCOMPARE(tok.encode("the CAT'S", true), (V{266, 259, ' ', 'C', 'A', 'T', '\'', 'S'}));
    QCOMPARE(tok.encode("x\n\n the", false), (V{'x', 264, 258}));
}

void TestTokenizer::byteFallbackAgrees()
{
    LL_REQUIRE_SHARED();
    // Characters outside the 512-token vocabulary go through <0xXX> tokens in every implementation.
    const std::string text = "Zo\xC3\xAB saw a \xF0\x9F\x98\x80 and said \xE2\x80\x9Cna\xC3\xAFve!\xE2\x80\x9D\n\n  Tab\there.";
    const auto a = llama2cTokenizer(), b = hfTokenizer();
    const Llama2cTokenizer bin(test::sharedPath("models/stories260K/tok512.bin"), 512);
    const GgufTokenizer g(ggufMetadataFromLlama2c(bin), "synthetic GGUF metadata");
    const auto ids = a->encode(text, true);
    QVERIFY(sameIds(b->encode(text, true), ids, "tokenizer.json"));
    QVERIFY(sameIds(g.encode(text, true), ids, "GGUF"));
    QVERIFY(std::count_if(ids.begin(), ids.end(), [](int32_t id) { return id >= 3 && id < 259; }) >= 4); // the emoji's 4 bytes at least
    QCOMPARE(a->decode(ids), text);
    QCOMPARE(b->decode(ids), text);
    QCOMPARE(g.decode(ids), text);
}

void TestTokenizer::randomTextRoundTrips()
{
    LL_REQUIRE_SHARED();
    const auto a = llama2cTokenizer(), b = hfTokenizer();
    const Llama2cTokenizer bin(test::sharedPath("models/stories260K/tok512.bin"), 512);
    const GgufTokenizer g(ggufMetadataFromLlama2c(bin), "synthetic GGUF metadata");
    const std::vector<std::string> pool{"a", "b", "the", " ", "  ", "\n", "\t", ".", "\xC3\xA9", "\xE2\x80\x9C", "\xF0\x9F\x98\x80",
                                        "\xE4\xB8\xAD", "0", "\r\n"};
    std::mt19937 rng(12345);
    for (int round = 0; round < 300; ++round) {
        std::string text;
        const int n = static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i)
            text += pool[rng() % pool.size()];
        // Valid UTF-8: the three implementations agree and decode gives the text back.
        const auto ids = a->encode(text, true);
        QVERIFY2(sameIds(b->encode(text, true), ids, "tokenizer.json"), text.c_str());
        QVERIFY2(sameIds(g.encode(text, true), ids, "GGUF"), text.c_str());
        QVERIFY2(a->decode(ids) == text, text.c_str());
        // Arbitrary bytes (invalid UTF-8 included): never a crash, and decode still inverts encode.
        std::string bytes(rng() % 24, '\0');
        for (char& c : bytes)
            c = static_cast<char>(rng() % 256);
        for (const Tokenizer* t : {static_cast<const Tokenizer*>(a.get()), static_cast<const Tokenizer*>(b.get()),
                                   static_cast<const Tokenizer*>(&g)})
            QVERIFY(t->decode(t->encode(bytes, true)) == bytes);
    }
    // "<s>" in the text: transformers splits added tokens out first and normalizes each
    // remaining stretch on its own (so both get a "▁"); run.c and llama.cpp (parse_special
    // off) read it as plain text.
    std::vector<int32_t> split = b->encode("a", false);
    split.push_back(1);
    for (int32_t id : b->encode("b", false))
        split.push_back(id);
    QCOMPARE(b->encode("a<s>b", false), split);
    const auto plain = a->encode("a<s>b", false);
    QVERIFY(std::find(plain.begin(), plain.end(), 1) == plain.end());
    QCOMPARE(g.encode("a<s>b", false), plain);
    // A literal "▁" in the text: SentencePiece (and so transformers and llama.cpp) reads it as a
    // space; run.c does not know the marker (tok512.bin spells it " ") and falls back to bytes.
    const std::string marker = "a" + kMetaspace + "b";
    QCOMPARE(b->encode(marker, false), b->encode("a b", false));
    QCOMPARE(g.encode(marker, false), b->encode("a b", false));
    const auto runc = a->encode(marker, false);
    QVERIFY(std::find(runc.begin(), runc.end(), 0xE2 + 3) != runc.end());
}

void TestTokenizer::tokenTexts()
{
    LL_REQUIRE_SHARED();
    const auto a = llama2cTokenizer(), b = hfTokenizer();
    // "Once upon a time" -> 1, 403, 407, 261, 378: "▁Once" "▁upon" "▁a" "▁time".
    for (const auto* tok : {a.get(), b.get()}) {
        QCOMPARE(tok->tokenText(378), std::string(" time"));
        QCOMPARE(tok->tokenText(13), std::string("\n")); // <0x0A>
        QCOMPARE(tok->tokenText(1), std::string("<s>"));
        QVERIFY(tok->isControl(1) && tok->isControl(2) && !tok->isControl(378));
        QCOMPARE(tok->tokenText(-1), std::string());
        QCOMPARE(tok->tokenText(512), std::string());
        QCOMPARE(tok->decode(std::vector<int32_t>{1, 403, 407, 261, 378, 2}), std::string("Once upon a time"));
    }
    QCOMPARE(a->piece(378), std::string(" time"));
    QCOMPARE(b->piece(378), kMetaspace + "time");
    QCOMPARE(b->piece(13), std::string("<0x0A>"));
}

void TestTokenizer::gpt2ByteLevelByHand()
{
    const std::string path = test::scratchDir() + "/tiny-gpt2-tokenizer.json";
    test::writeFile(path, tinyGpt2TokenizerJson().dump());
    const auto tok = loadTokenizerFile(path);
    QVERIFY(dynamic_cast<const HfTokenizer*>(tok.get())->isByteLevel());
    QCOMPARE(tok->vocabSize(), 266);
    checkTinyGpt2(*tok);
    QVERIFY(tok->isControl(kTinyEndOfText));
    // No post-processor template: addBos adds nothing for GPT-2.
    QCOMPARE(tok->encode("the", true), std::vector<int32_t>{259});
    if (test::haveShared()) {
        const std::string text = test::readFile(test::sharedPath("data/tinystories/eval.txt"));
        QElapsedTimer timer;
        timer.start();
        const auto ids = tok->encode(text, false);
        const qint64 ms = timer.elapsed();
        qInfo("tiny byte-level BPE: %zu tokens for eval.txt in %lld ms", ids.size(), static_cast<long long>(ms));
        QVERIFY(tok->decode(ids) == text);
    }

    // Merges as pairs (the newer spelling) and add_prefix_space.
    nlohmann::json j = tinyGpt2TokenizerJson();
    nlohmann::json pairs = nlohmann::json::array();
    for (const auto& [a, b] : kTinyMerges)
        pairs.push_back({a, b});
    j["model"]["merges"] = pairs;
    j["pre_tokenizer"]["add_prefix_space"] = true;
    const HfTokenizer prefixed(j, "in-memory tokenizer.json");
    QCOMPARE(prefixed.encode("the cat", false), (std::vector<int32_t>{258, 262}));
}

void TestTokenizer::gpt2ByteLevelFromGgufMetadata()
{
    nlohmann::json tokens = nlohmann::json::array(), types = nlohmann::json::array(), merges = nlohmann::json::array();
    std::vector<std::string> byId(256 + kTinyMerges.size());
    for (const auto& [piece, id] : tinyVocab())
        byId[id] = piece;
    for (const auto& p : byId) {
        tokens.push_back(p);
        types.push_back(1);
    }
    tokens.push_back("<|endoftext|>");
    types.push_back(3);
    for (const auto& [a, b] : kTinyMerges)
        merges.push_back(a + " " + b);
    const nlohmann::json md{{"tokenizer.ggml.model", "gpt2"},     {"tokenizer.ggml.pre", "gpt2"},
                            {"tokenizer.ggml.tokens", tokens},   {"tokenizer.ggml.token_type", types},
                            {"tokenizer.ggml.merges", merges},   {"tokenizer.ggml.bos_token_id", kTinyEndOfText},
                            {"tokenizer.ggml.eos_token_id", kTinyEndOfText}};
    const GgufTokenizer tok(md, "synthetic GGUF metadata");
    QVERIFY(tok.isByteLevel());
    // Control tokens are not parsed from text (llama.cpp's parse_special = false): test the rest.
    using V = std::vector<int32_t>;
    QCOMPARE(tok.encode("the cat's", false), (V{259, 262, 263}));
    QCOMPARE(tok.encode(" the  cat", false), (V{258, ' ', 262}));
    QCOMPARE(tok.encode("\n\nthe", false), (V{'\n', '\n', 259}));
    QCOMPARE(tok.encode("the", true), (V{259})); // gpt2 vocabularies add no BOS unless the file says so
    QCOMPARE(tok.decode(tok.encode("the cat's \xC3\xA9t\xC3\xA9", false)), std::string("the cat's \xC3\xA9t\xC3\xA9"));
}

void TestTokenizer::pretokenizerRegexes()
{
    using bytelevel::SplitStyle;
    using W = std::vector<std::string_view>;
    // GPT-2: contractions are case-sensitive, digits run together, one space leads a word.
    QCOMPARE(bytelevel::split("I'm here 12345 times!!  ok\n", SplitStyle::Gpt2),
             (W{"I", "'m", " here", " 12345", " times", "!!", " ", " ok", "\n"}));
    QCOMPARE(bytelevel::split("DON'T", SplitStyle::Gpt2), (W{"DON", "'", "T"}));
    QCOMPARE(bytelevel::split("caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87", SplitStyle::Gpt2), (W{"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}));
    // Llama 3: case-insensitive contractions, digits by three, newlines kept with what precedes.
    QCOMPARE(bytelevel::split("DON'T 12345 (x)\n\n  y", SplitStyle::Llama3),
             (W{"DON", "'T", " ", "123", "45", " (", "x", ")\n\n", " ", " y"}));
    QCOMPARE(bytelevel::split("a \n\n b", SplitStyle::Llama3), (W{"a", " \n\n", " b"}));
    QCOMPARE(bytelevel::split("12345", SplitStyle::Qwen2), (W{"1", "2", "3", "4", "5"}));
    QCOMPARE(bytelevel::split("", SplitStyle::Gpt2), W{});
    // Invalid UTF-8 is kept byte by byte, never dropped.
    const std::string bad = "a\xFF\xFE b";
    const auto words = bytelevel::split(bad, SplitStyle::Gpt2);
    std::string joined;
    for (auto w : words)
        joined += w;
    QCOMPARE(joined, bad);
    QVERIFY(bytelevel::splitStyleFromPattern(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)")
            == SplitStyle::Gpt2);
    QVERIFY(!bytelevel::splitStyleFromPattern(R"(\w+)"));
}

void TestTokenizer::malformedTokenizers()
{
    const std::string dir = test::scratchDir();
    auto bin = [&](const std::string& name, const std::string& bytes) {
        test::writeFile(dir + "/" + name, bytes);
        return dir + "/" + name;
    };
    // A valid 259-token file: <unk>, <s>, </s>, then the 256 byte tokens.
    std::string good = i32(8);
    auto addToken = [](std::string& s, const std::string& piece, float score = 0.0f) {
        s.append(reinterpret_cast<const char*>(&score), 4);
        s += i32(static_cast<int32_t>(piece.size())) + piece;
    };
    for (const char* p : {"<unk>", "\n<s>\n", "\n</s>\n"})
        addToken(good, p);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        addToken(good, name);
    }
    const Llama2cTokenizer ok(bin("ok.bin", good));
    QCOMPARE(ok.vocabSize(), 259);
    QCOMPARE(ok.encode("hi", false), (std::vector<int32_t>{' ' + 3, 'h' + 3, 'i' + 3})); // all byte fallback
    QCOMPARE(ok.decode(ok.encode("hi", true)), std::string("hi"));

    auto load = [&](const std::string& path, int64_t vocab = 0) { return [=] { loadTokenizerFile(path, vocab); }; };
    QVERIFY(expectError(load(bin("empty.bin", "")), ErrorCode::Truncated) != "NO ERROR");
    QVERIFY(expectError(load(bin("maxlen0.bin", i32(0) + good.substr(4))), ErrorCode::Malformed).find("max_token_length") != std::string::npos);
    QVERIFY(expectError(load(bin("cut.bin", good.substr(0, good.size() - 3))), ErrorCode::Truncated) != "NO ERROR");
    std::string negative = good;
    std::memcpy(negative.data() + 8, i32(-5).data(), 4); // first token's length
    QVERIFY(expectError(load(bin("negative.bin", negative)), ErrorCode::Malformed).find("length -5") != std::string::npos);
    std::string huge = good;
    std::memcpy(huge.data() + 8, i32(INT32_MAX).data(), 4);
    QVERIFY(expectError(load(bin("huge.bin", huge)), ErrorCode::Malformed) != "NO ERROR");
    QVERIFY(expectError(load(bin("few.bin", i32(8))), ErrorCode::Malformed).find("only 0 tokens") != std::string::npos);
    QVERIFY(expectError(load(bin("ok2.bin", good), 512), ErrorCode::Truncated).find("259 tokens") != std::string::npos);

    auto json = [&](const std::string& name, const std::string& text) {
        test::writeFile(dir + "/" + name, text);
        return dir + "/" + name;
    };
    QVERIFY(expectError(load(json("notjson.json", "{\"model\": ")), ErrorCode::Malformed) != "NO ERROR");
    QVERIFY(expectError(load(json("nomodel.json", "{}")), ErrorCode::Malformed) != "NO ERROR");
    nlohmann::json j = tinyGpt2TokenizerJson();
    j["model"]["type"] = "WordPiece";
    QVERIFY(expectError(load(json("wordpiece.json", j.dump())), ErrorCode::UnsupportedArch).find("WordPiece") != std::string::npos);
    j = tinyGpt2TokenizerJson();
    j["model"]["merges"].push_back("q zz");
    QVERIFY(expectError(load(json("badmerge.json", j.dump())), ErrorCode::Malformed).find("merge 9") != std::string::npos);
    j = tinyGpt2TokenizerJson();
    j["model"]["vocab"]["far"] = 2000000000;
    QVERIFY(expectError(load(json("farid.json", j.dump())), ErrorCode::Malformed) != "NO ERROR");
    j = tinyGpt2TokenizerJson();
    j["model"]["vocab"]["neg"] = -1;
    QVERIFY(expectError(load(json("negid.json", j.dump())), ErrorCode::Malformed) != "NO ERROR");
    j = tinyGpt2TokenizerJson();
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}, {"behavior", "Isolated"}, {"invert", false}};
    QVERIFY(expectError(load(json("regex.json", j.dump())), ErrorCode::UnsupportedArch) != "NO ERROR");

    // Issue 16, finding 4: a Sequence of 24 Replace a -> aa took 11 s and 1.3 GB
    // to tokenize "a" (2^24 bytes); now the growth is bounded and named.
    j = tinyGpt2TokenizerJson();
    nlohmann::json doubling = nlohmann::json::array();
    for (int i = 0; i < 24; ++i)
        doubling.push_back({{"type", "Replace"}, {"pattern", {{"String", "a"}}}, {"content", "aa"}});
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", doubling}};
    const std::string doublingPath = json("doubling.json", j.dump());
    const auto doublingTok = loadTokenizerFile(doublingPath, 0);
    QVERIFY(expectError([&] { doublingTok->encode("a", false); }, ErrorCode::Malformed).find(doublingPath) != std::string::npos);
    // Two doublings (x4) are still a tokenizer's business.
    j["normalizer"]["normalizers"] = nlohmann::json::array({doubling[0], doubling[1]});
    QCOMPARE(loadTokenizerFile(json("twice.json", j.dump()), 0)->encode("a", false).size() > 0, true);
    // Sequences nested past 16 levels are refused when the file is read.
    nlohmann::json nested = {{"type", "Replace"}, {"pattern", {{"String", "a"}}}, {"content", "b"}};
    for (int i = 0; i < 40; ++i)
        nested = {{"type", "Sequence"}, {"normalizers", nlohmann::json::array({nested})}};
    j["normalizer"] = nested;
    QVERIFY(expectError(load(json("nested.json", j.dump())), ErrorCode::Malformed).find("nested deeper") != std::string::npos);

    // GGUF metadata.
    auto gguf = [](nlohmann::json md) { return [=] { GgufTokenizer t(md, "metadata"); }; };
    QVERIFY(expectError(gguf({{"tokenizer.ggml.model", "bert"}, {"tokenizer.ggml.tokens", {"a"}}}), ErrorCode::UnsupportedArch) != "NO ERROR");
    QVERIFY(expectError(gguf({{"tokenizer.ggml.model", "llama"}, {"tokenizer.ggml.tokens", {"a", "b"}}, {"tokenizer.ggml.scores", {0.0}}}),
                        ErrorCode::Malformed)
            != "NO ERROR");
    QVERIFY(expectError(gguf({{"tokenizer.ggml.model", "llama"}, {"tokenizer.ggml.tokens", {"a", 5}}, {"tokenizer.ggml.scores", {0.0, 0.0}}}),
                        ErrorCode::Malformed)
            != "NO ERROR");
    QVERIFY(expectError(gguf({{"tokenizer.ggml.model", "llama"},
                              {"tokenizer.ggml.tokens", {"a"}},
                              {"tokenizer.ggml.scores", {0.0}},
                              {"tokenizer.ggml.bos_token_id", 7}}),
                        ErrorCode::Malformed)
            .find("outside the vocabulary") != std::string::npos);

    // A model without any tokenizer.
    Model bare;
    bare.path = "bare";
    QVERIFY(expectError([&] { loadTokenizer(bare); }, ErrorCode::NotFound) != "NO ERROR");
}

// `layerlab-cli tokenize` in all three formats gives transformers' ids for the reference prompt.
void TestTokenizer::cliTokenizeMatchesReference()
{
    LL_REQUIRE_SHARED();
    const nlohmann::json ref = ll::readJsonFile(ll::test::sharedPath("reference/stories260K_tokenizer.json"));
    std::string prompt;
    nlohmann::json ids;
    for (const auto& [key, value] : ref.items()) {
        if (value.is_string() && value.get<std::string>() == "Once upon a time")
            prompt = value.get<std::string>();
        if (key.find("prompt") != std::string::npos && key.find("ids") != std::string::npos)
            ids = value;
    }
    QCOMPARE(prompt, std::string("Once upon a time"));
    QVERIFY2(ids.is_array() && !ids.empty(), "reference prompt ids not found");
    for (const char* model : {"models/stories260K-hf", "models/stories260K/stories260K.bin",
                              "models/stories260K-gguf/stories260K-f32.gguf"}) {
        const auto r = ll::test::runCli({"tokenize", ll::test::sharedPath(model), "--prompt", prompt, "--json"});
        QCOMPARE(r.exitCode, 0);
        const auto j = nlohmann::json::parse(r.out);
        QCOMPARE(j["ids"], ids);
    }
    const auto bad = ll::test::runCli({"tokenize", ll::test::sharedPath("models/stories260K-hf"), "--text", "/nonexistent"});
    QCOMPARE(bad.exitCode, 2);
}

// A tokenizer whose ids run past the embedding cannot be used (running is
// refused, naming tokenizer.json); `inspect` still lists the model, with a
// warning that says why (issue 16, item 3).
void TestTokenizer::vocabularyMismatchIsAWarning()
{
    LL_REQUIRE_SHARED();
    const std::filesystem::path source = test::sharedPath("models/stories260K-hf");
    const std::filesystem::path dir = std::filesystem::path(test::scratchDir()) / "extra-token";
    std::filesystem::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors", "tokenizer_config.json"})
        std::filesystem::copy_file(source / f, dir / f);
    nlohmann::json tok = nlohmann::json::parse(test::readFile((source / "tokenizer.json").string()));
    tok["added_tokens"].push_back({{"id", 600}, {"content", "<extra>"}, {"special", true}});
    test::writeFile((dir / "tokenizer.json").string(), tok.dump());

    const test::CliResult inspect = test::runCli({"inspect", dir.string()});
    QVERIFY2(inspect.exitCode == 0, inspect.err.c_str());
    QVERIFY2(inspect.out.find("WARNING: the tokenizer cannot be used: ") != std::string::npos
                 && inspect.out.find("tokenizer has 601 tokens but the model's vocabulary has only 512") != std::string::npos,
             inspect.out.c_str());
    const test::CliResult tokenize = test::runCli({"tokenize", dir.string(), "--prompt", "Once upon a time"});
    QCOMPARE(tokenize.exitCode, 2);
    QVERIFY2(tokenize.err.find((dir / "tokenizer.json").string() + ": ") != std::string::npos, tokenize.err.c_str());
    // The model as shipped: no warning at all.
    const test::CliResult clean = test::runCli({"inspect", source.string()});
    QVERIFY2(clean.exitCode == 0 && clean.out.find("WARNING") == std::string::npos, clean.out.c_str());
}

QTEST_APPLESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
