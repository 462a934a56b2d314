#include "tokenizer/hf_tokenizer.h"

#include "tokenizer/bpe_merge.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/json_util.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>

namespace ll {

namespace {

uint64_t pairKey(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

// In-memory JSON keeps signed integers signed; parsed files make them unsigned.
bool isIndex(const nlohmann::json& v)
{
    return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX;
}

std::string typeOf(const nlohmann::json& j, const std::string& file, const char* what)
{
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
        fail(ErrorCode::Malformed, file, std::string(what) + " has no \"type\"");
    return j["type"].get<std::string>();
}

[[noreturn]] void unsupported(const std::string& file, const std::string& what)
{
    fail(ErrorCode::UnsupportedArch, file, what + " is not supported by LayerLab's tokenizer");
}

// Normalizers may grow a text (" " -> "▁" is 1 -> 3 bytes), but a file that
// chains Replace a -> aa 24 times grows it 2^24 times (issue 16): a step may
// at most quadruple the text, all steps together multiply it by 8 (+ slack).
constexpr size_t kMaxNormalizerStepGrowth = 4, kMaxNormalizerGrowth = 8, kNormalizerSlack = 64;
constexpr size_t kMaxNormalizerSteps = 256;
constexpr int kMaxNormalizerDepth = 16;

std::string replaceAll(std::string_view s, std::string_view from, std::string_view to)
{
    if (from.empty())
        return std::string(s);
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    for (size_t hit = s.find(from); hit != std::string_view::npos; hit = s.find(from, pos)) {
        out.append(s.substr(pos, hit - pos));
        out.append(to);
        pos = hit + from.size();
    }
    out.append(s.substr(pos));
    return out;
}

// "bos_token": "<s>" or {"content": "<s>", ...} in tokenizer_config.json.
std::string tokenName(const nlohmann::json& cfg, const char* key)
{
    if (!cfg.contains(key))
        return {};
    const auto& v = cfg[key];
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
        return v["content"].get<std::string>();
    return {};
}

} // namespace

HfTokenizer::HfTokenizer(const std::string& path) : file_(path)
{
    parse(readJsonFile(path));
    readConfigBeside();
}

HfTokenizer::HfTokenizer(const nlohmann::json& j, const std::string& file) : file_(file)
{
    parse(j);
}

void HfTokenizer::parse(const nlohmann::json& j)
{
    if (!j.is_object())
        fail(ErrorCode::Malformed, file_, "tokenizer.json is not a JSON object");
    if (!j.contains("model") || !j["model"].is_object())
        fail(ErrorCode::Malformed, file_, "tokenizer.json has no \"model\" object");

    std::vector<AddedToken> added;
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
        if (!j["added_tokens"].is_array())
            fail(ErrorCode::Malformed, file_, "\"added_tokens\" is not an array");
        for (const auto& t : j["added_tokens"]) {
            if (!t.is_object() || !t.contains("id") || !isIndex(t["id"]) || !t.contains("content") || !t["content"].is_string())
                fail(ErrorCode::Malformed, file_, "an entry of \"added_tokens\" lacks an integer \"id\" or a string \"content\"");
            const int64_t id = t["id"].get<int64_t>();
            const std::string content = t["content"].get<std::string>();
            const bool special = jsonBool(t, "special", false, file_);
            added.push_back({content, static_cast<int32_t>(id), special});
            added_.add(content, static_cast<int32_t>(id), jsonBool(t, "lstrip", false, file_), jsonBool(t, "rstrip", false, file_));
        }
    }

    parseNormalizer(j.value("normalizer", nlohmann::json()));
    parsePreTokenizer(j.value("pre_tokenizer", nlohmann::json()));
    parseModel(j["model"], added);
    for (const auto& a : added)
        if (a.id != unkId_)
            kinds_[a.id] = a.special ? Kind::Control : Kind::UserDefined;
    parsePostProcessor(j.value("post_processor", nlohmann::json()));

    const bool byteLevel = byteLevelPre_;
    spelling_ = byteLevel ? Spelling::ByteLevel : Spelling::Metaspace;
    // SentencePiece style: the "▁" put in front of the text is not part of it.
    bool prepends = metaspace_ && metaspacePrepend_ != Prepend::Never;
    for (const auto& s : normalizers_)
        prepends = prepends || (s.op == NormalizeStep::Prepend && s.a == kMetaspace);
    stripLeadingSpace_ = !byteLevel && prepends;
    if (!byteLevel) {
        for (const auto& step : normalizers_)
            if (step.op == NormalizeStep::Replace && step.a == " ")
                spaceMarker_ = step.b;
        if (metaspace_)
            spaceMarker_ = metaspaceReplacement_;
        // ignore_merges looks the whole word up, so the word must stay whole.
        cutAtMarkers_ = !ignoreMerges_ && !spaceMarker_.empty() && bpe::markerOnlyLeads(pieces_, spaceMarker_);
    }
    if (byteLevel)
        byteLevel_ = std::make_unique<ByteLevelBpe>(vocab_, mergeStrings_, splitStyle_, addPrefixSpace_, ignoreMerges_, unkId_, file_);
    mergeStrings_.clear();
    mergeStrings_.shrink_to_fit();
}

void HfTokenizer::parseModel(const nlohmann::json& m, const std::vector<AddedToken>& added)
{
    const std::string type = typeOf(m, file_, "the model");
    if (type != "BPE")
        unsupported(file_, "tokenizer model \"" + type + "\" (only BPE)");
    if (!jsonString(m, "continuing_subword_prefix", "", file_).empty() || !jsonString(m, "end_of_word_suffix", "", file_).empty())
        unsupported(file_, "BPE with a continuing_subword_prefix or end_of_word_suffix");
    byteFallback_ = jsonBool(m, "byte_fallback", false, file_);
    fuseUnk_ = jsonBool(m, "fuse_unk", false, file_);
    ignoreMerges_ = jsonBool(m, "ignore_merges", false, file_);
    // "dropout" only matters in training; inference never drops merges.

    if (!m.contains("vocab") || !m["vocab"].is_object())
        fail(ErrorCode::Malformed, file_, "the BPE model has no \"vocab\" object");
    const auto& vocab = m["vocab"];
    int64_t maxId = -1;
    for (const auto& [piece, id] : vocab.items()) {
        if (!isIndex(id))
            fail(ErrorCode::Malformed, file_, "vocabulary entry \"" + piece + "\" has no valid id");
        maxId = std::max<int64_t>(maxId, id.get<int64_t>());
    }
    for (const auto& a : added)
        maxId = std::max<int64_t>(maxId, a.id);
    // Ids are dense in real vocabularies; a far larger id would make us allocate for nothing.
    const int64_t entries = static_cast<int64_t>(vocab.size() + added.size());
    if (maxId >= 2 * entries + 1024)
        fail(ErrorCode::Malformed, file_,
             "token id " + std::to_string(maxId) + " is far beyond the " + std::to_string(entries) + " vocabulary entries");
    pieces_.assign(static_cast<size_t>(maxId + 1), std::string());
    std::vector<bool> present(pieces_.size(), false);
    for (const auto& [piece, id] : vocab.items()) {
        const auto i = id.get<int32_t>();
        pieces_[i] = piece;
        present[i] = true;
        vocab_.emplace(piece, i);
    }
    for (const auto& a : added) {
        if (!present[a.id])
            pieces_[a.id] = a.content;
        present[a.id] = true;
    }
    kinds_.assign(pieces_.size(), Kind::Normal);
    for (size_t i = 0; i < pieces_.size(); ++i)
        if (!present[i])
            kinds_[i] = Kind::Unused;
    if (byteFallback_)
        markByteTokens();
    else
        byteValue_.assign(pieces_.size(), 0);

    const std::string unk = jsonString(m, "unk_token", "", file_);
    if (!unk.empty()) {
        unkId_ = lookupId(vocab_, unk);
        if (unkId_ < 0)
            for (const auto& a : added)
                if (a.content == unk)
                    unkId_ = a.id;
        if (unkId_ < 0)
            fail(ErrorCode::Malformed, file_, "unk_token \"" + unk + "\" is not in the vocabulary");
        kinds_[unkId_] = Kind::Unknown;
    }

    if (!m.contains("merges") || !m["merges"].is_array())
        fail(ErrorCode::Malformed, file_, "the BPE model has no \"merges\" array");
    const auto& merges = m["merges"];
    mergeStrings_.reserve(merges.size());
    for (const auto& e : merges) {
        std::string a, b;
        if (e.is_string()) { // older files: "left right"
            const std::string s = e.get<std::string>();
            const size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                fail(ErrorCode::Malformed, file_, "merge \"" + s + "\" is not two tokens separated by one space");
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
            a = e[0].get<std::string>();
            b = e[1].get<std::string>();
        } else {
            fail(ErrorCode::Malformed, file_, "a merge is neither \"a b\" nor [\"a\", \"b\"]");
        }
        mergeStrings_.emplace_back(std::move(a), std::move(b));
    }
    for (size_t rank = 0; rank < mergeStrings_.size(); ++rank) {
        const auto& [a, b] = mergeStrings_[rank];
        const int32_t ia = lookupId(vocab_, a), ib = lookupId(vocab_, b), im = lookupId(vocab_, a + b);
        if (ia < 0 || ib < 0 || im < 0)
            fail(ErrorCode::Malformed, file_,
                 "merge " + std::to_string(rank) + " (\"" + a + "\" + \"" + b + "\") names a token that is not in the vocabulary");
        merges_.emplace(pairKey(ia, ib), std::make_pair(static_cast<int32_t>(rank), im));
    }
}

void HfTokenizer::parseNormalizer(const nlohmann::json& n, int depth)
{
    if (n.is_null())
        return;
    if (depth > kMaxNormalizerDepth || normalizers_.size() >= kMaxNormalizerSteps)
        fail(ErrorCode::Malformed, file_, "the normalizer has more than " + std::to_string(kMaxNormalizerSteps)
                                              + " steps or Sequences nested deeper than " + std::to_string(kMaxNormalizerDepth));
    const std::string type = typeOf(n, file_, "the normalizer");
    if (type == "Sequence") {
        if (!n.contains("normalizers") || !n["normalizers"].is_array())
            fail(ErrorCode::Malformed, file_, "Sequence normalizer has no \"normalizers\" array");
        for (const auto& s : n["normalizers"])
            parseNormalizer(s, depth + 1);
    } else if (type == "Prepend") {
        normalizers_.push_back({NormalizeStep::Prepend, jsonString(n, "prepend", "", file_), {}});
    } else if (type == "Replace") {
        if (!n.contains("pattern") || !n["pattern"].is_object() || !n["pattern"].contains("String") || !n["pattern"]["String"].is_string())
            unsupported(file_, "a Replace normalizer with a regex pattern");
        normalizers_.push_back({NormalizeStep::Replace, n["pattern"]["String"].get<std::string>(), jsonString(n, "content", "", file_)});
    } else if (type == "NFC") {
        // Text files are NFC already in practice; composing would need Unicode's full tables.
    } else {
        unsupported(file_, "normalizer \"" + type + "\"");
    }
}

void HfTokenizer::parsePreTokenizer(const nlohmann::json& p)
{
    if (p.is_null())
        return;
    const std::string type = typeOf(p, file_, "the pre-tokenizer");
    if (type == "Sequence") {
        if (!p.contains("pretokenizers") || !p["pretokenizers"].is_array())
            fail(ErrorCode::Malformed, file_, "Sequence pre-tokenizer has no \"pretokenizers\" array");
        for (const auto& s : p["pretokenizers"])
            parsePreTokenizer(s);
    } else if (type == "Metaspace") {
        metaspace_ = true;
        metaspaceReplacement_ = jsonString(p, "replacement", kMetaspace, file_);
        const std::string scheme = jsonString(p, "prepend_scheme", jsonBool(p, "add_prefix_space", true, file_) ? "always" : "never", file_);
        if (scheme == "always") metaspacePrepend_ = Prepend::Always;
        else if (scheme == "first") metaspacePrepend_ = Prepend::First;
        else if (scheme == "never") metaspacePrepend_ = Prepend::Never;
        else fail(ErrorCode::Malformed, file_, "Metaspace prepend_scheme \"" + scheme + "\" is unknown");
        metaspaceSplit_ = jsonBool(p, "split", true, file_);
    } else if (type == "ByteLevel") {
        byteLevelPre_ = true;
        addPrefixSpace_ = jsonBool(p, "add_prefix_space", false, file_);
        if (jsonBool(p, "use_regex", true, file_)) {
            if (splitStyle_ != bytelevel::SplitStyle::None)
                unsupported(file_, "a ByteLevel regex after a Split pre-tokenizer");
            splitStyle_ = bytelevel::SplitStyle::Gpt2;
        }
    } else if (type == "Split") {
        const auto& pat = p.value("pattern", nlohmann::json());
        const std::string behavior = jsonString(p, "behavior", "", file_);
        if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string() || behavior != "Isolated"
            || jsonBool(p, "invert", false, file_))
            unsupported(file_, "this Split pre-tokenizer (only the GPT-2 / Llama 3 / Qwen2 regexes, Isolated)");
        const auto style = bytelevel::splitStyleFromPattern(pat["Regex"].get<std::string>());
        if (!style)
            unsupported(file_, "the Split regex \"" + pat["Regex"].get<std::string>() + "\"");
        splitStyle_ = *style;
    } else {
        unsupported(file_, "pre-tokenizer \"" + type + "\"");
    }
    if (metaspace_ && byteLevelPre_)
        unsupported(file_, "Metaspace together with ByteLevel");
}

void HfTokenizer::parsePostProcessor(const nlohmann::json& p)
{
    if (p.is_null())
        return;
    const std::string type = typeOf(p, file_, "the post-processor");
    auto idOf = [&](const std::string& name) {
        int32_t id = lookupId(vocab_, name);
        for (size_t i = 0; id < 0 && i < pieces_.size(); ++i) // added tokens live outside vocab_
            if (pieces_[i] == name && kinds_[i] != Kind::Unused)
                id = static_cast<int32_t>(i);
        if (id < 0)
            fail(ErrorCode::Malformed, file_, "post-processor token \"" + name + "\" is not in the vocabulary");
        return id;
    };
    if (type == "Sequence") {
        if (!p.contains("processors") || !p["processors"].is_array())
            fail(ErrorCode::Malformed, file_, "Sequence post-processor has no \"processors\" array");
        for (const auto& s : p["processors"])
            parsePostProcessor(s);
    } else if (type == "ByteLevel") {
        // Only adjusts offsets.
    } else if (type == "TemplateProcessing") {
        if (!p.contains("single") || !p["single"].is_array())
            fail(ErrorCode::Malformed, file_, "TemplateProcessing has no \"single\" template");
        const auto& specials = p.value("special_tokens", nlohmann::json::object());
        bool afterSequence = false;
        for (const auto& item : p["single"]) {
            if (item.is_object() && item.contains("Sequence")) {
                afterSequence = true;
            } else if (item.is_object() && item.contains("SpecialToken") && item["SpecialToken"].is_object()
                       && item["SpecialToken"].contains("id") && item["SpecialToken"]["id"].is_string()) {
                const std::string name = item["SpecialToken"]["id"].get<std::string>();
                std::vector<int32_t> ids;
                if (specials.is_object() && specials.contains(name) && specials[name].contains("ids") && specials[name]["ids"].is_array()) {
                    for (const auto& id : specials[name]["ids"]) {
                        if (!isIndex(id) || id.get<uint64_t>() >= pieces_.size())
                            fail(ErrorCode::Malformed, file_, "TemplateProcessing token \"" + name + "\" has an id outside the vocabulary");
                        ids.push_back(id.get<int32_t>());
                    }
                } else {
                    ids.push_back(idOf(name));
                }
                (afterSequence ? suffix_ : prefix_).insert((afterSequence ? suffix_ : prefix_).end(), ids.begin(), ids.end());
            } else {
                fail(ErrorCode::Malformed, file_, "TemplateProcessing item is neither a Sequence nor a SpecialToken");
            }
        }
        if (!prefix_.empty())
            bos_ = prefix_.front();
        if (!suffix_.empty())
            eos_ = suffix_.back();
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
        for (const char* key : {"cls", "sep"}) {
            const auto& v = p.value(key, nlohmann::json());
            if (!v.is_array() || v.size() != 2 || !isIndex(v[1]) || v[1].get<uint64_t>() >= pieces_.size())
                fail(ErrorCode::Malformed, file_, type + " has no valid \"" + key + "\" pair");
            (std::string(key) == "cls" ? prefix_ : suffix_).push_back(v[1].get<int32_t>());
        }
        bos_ = prefix_.front();
        eos_ = suffix_.back();
    } else {
        unsupported(file_, "post-processor \"" + type + "\"");
    }
}

void HfTokenizer::readConfigBeside()
{
    namespace fs = std::filesystem;
    const fs::path cfgPath = fs::path(file_).parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (!fs::is_regular_file(cfgPath, ec))
        return;
    const nlohmann::json cfg = readJsonFile(cfgPath.string());
    if (!cfg.is_object())
        return;
    auto idOf = [&](const std::string& name) {
        int32_t id = lookupId(vocab_, name);
        for (size_t i = 0; id < 0 && i < pieces_.size(); ++i)
            if (pieces_[i] == name && kinds_[i] != Kind::Unused)
                id = static_cast<int32_t>(i);
        return id;
    };
    if (bos_ < 0)
        bos_ = idOf(tokenName(cfg, "bos_token"));
    if (eos_ < 0)
        eos_ = idOf(tokenName(cfg, "eos_token"));
}

std::string HfTokenizer::normalize(std::string_view text) const
{
    std::string s(text);
    const size_t cap = kMaxNormalizerGrowth * text.size() + kNormalizerSlack;
    for (const auto& step : normalizers_) {
        // The size this step would give, checked before it is built.
        size_t next = s.size();
        if (step.op == NormalizeStep::Prepend) {
            next += s.empty() ? 0 : step.a.size();
        } else if (!step.a.empty()) {
            size_t hits = 0;
            for (size_t pos = s.find(step.a); pos != std::string::npos; pos = s.find(step.a, pos + step.a.size()))
                ++hits;
            next = next - hits * step.a.size() + hits * step.b.size();
        }
        if (next > kMaxNormalizerStepGrowth * s.size() + kNormalizerSlack || next > cap)
            fail(ErrorCode::Malformed, file_, "the normalizer grows a text of " + std::to_string(text.size()) + " bytes past "
                                                  + std::to_string(std::min(next, cap)) + " (a step may at most quadruple it, all steps "
                                                  "together multiply it by " + std::to_string(kMaxNormalizerGrowth) + ")");
        if (step.op == NormalizeStep::Prepend) {
            if (!s.empty())
                s = step.a + s;
        } else {
            s = replaceAll(s, step.a, step.b);
        }
    }
    return s;
}

void HfTokenizer::encodeWord(std::string_view word, std::vector<int32_t>& out) const
{
    if (ignoreMerges_) {
        const int32_t whole = lookupId(vocab_, word);
        if (whole >= 0) {
            out.push_back(whole);
            return;
        }
    }
    // One symbol per character; characters outside the vocabulary become their
    // byte tokens (byte_fallback) or <unk> (fused when fuse_unk).
    std::vector<bpe::Symbol> symbols;
    symbols.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
        const size_t len = unicode::sequenceLength(word, i);
        const int32_t id = lookupId(vocab_, word.substr(i, len));
        if (id >= 0) {
            symbols.push_back({id, i, len, false});
        } else {
            bool fellBack = false;
            if (byteFallback_) {
                std::vector<int32_t> bytes;
                for (size_t k = 0; k < len; ++k) {
                    char name[7];
                    std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(word[i + k]));
                    const int32_t b = lookupId(vocab_, name);
                    if (b < 0)
                        break;
                    bytes.push_back(b);
                }
                if (bytes.size() == len) {
                    for (size_t k = 0; k < len; ++k)
                        symbols.push_back({bytes[k], i + k, 1, false});
                    fellBack = true;
                }
            }
            if (!fellBack && unkId_ >= 0) {
                if (fuseUnk_ && !symbols.empty() && symbols.back().id == unkId_)
                    symbols.back().len += len;
                else
                    symbols.push_back({unkId_, i, len, false});
            }
        }
        i += len;
    }
    const auto merged = bpe::mergeAll(std::move(symbols), [&](const bpe::Symbol& a, const bpe::Symbol& b) -> std::optional<bpe::Merge> {
        const auto it = merges_.find(pairKey(a.id, b.id));
        if (it == merges_.end())
            return std::nullopt;
        return bpe::Merge{static_cast<double>(it->second.first), it->second.second};
    });
    for (const auto& s : merged)
        out.push_back(s.id);
}

void HfTokenizer::encodeSentencePiece(std::string_view segment, bool firstSegment, std::vector<int32_t>& out) const
{
    std::string s = normalize(segment);
    if (metaspace_) {
        s = replaceAll(s, " ", metaspaceReplacement_);
        const bool prepend = metaspacePrepend_ == Prepend::Always || (metaspacePrepend_ == Prepend::First && firstSegment);
        if (prepend && !s.empty() && s.compare(0, metaspaceReplacement_.size(), metaspaceReplacement_) != 0)
            s = metaspaceReplacement_ + s;
    }
    auto encode = [this](std::string_view w, std::vector<int32_t>& o) { encodeWord(w, o); };
    if (metaspace_ && metaspaceSplit_) {
        // Metaspace split (MergedWithNext): a word starts at each replacement character.
        std::vector<std::string_view> words;
        const std::string& r = metaspaceReplacement_;
        size_t start = 0;
        for (size_t pos = s.find(r, 1); pos != std::string::npos; pos = s.find(r, pos + r.size())) {
            words.push_back(std::string_view(s).substr(start, pos - start));
            start = pos;
        }
        if (start < s.size())
            words.push_back(std::string_view(s).substr(start));
        bpe::encodeWords(words, out, encode);
    } else if (cutAtMarkers_) {
        // The library merges over the whole text as one word; cutting where no merge
        // can cross (bpe::markerOnlyLeads) gives the same ids, much faster.
        bpe::encodeWords(bpe::cutBeforeMarker(s, spaceMarker_), out, encode);
    } else {
        encodeWord(s, out);
    }
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool addBos) const
{
    std::vector<int32_t> out;
    if (addBos)
        out = prefix_;
    bool first = true;
    for (const auto& seg : added_.split(text)) {
        if (seg.id >= 0)
            out.push_back(seg.id);
        else if (byteLevel_)
            byteLevel_->encode(normalize(seg.text), out);
        else
            encodeSentencePiece(seg.text, first, out);
        first = false;
    }
    if (addBos)
        out.insert(out.end(), suffix_.begin(), suffix_.end());
    return out;
}

std::string HfTokenizer::description() const
{
    return std::string("Hugging Face tokenizer.json, ") + (byteLevel_ ? "byte-level BPE" : "SentencePiece-style BPE") + " ("
           + std::to_string(vocabSize()) + " tokens)";
}

} // namespace ll
