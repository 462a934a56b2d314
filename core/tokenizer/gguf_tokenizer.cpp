#include "tokenizer/gguf_tokenizer.h"

#include "tokenizer/bpe_merge.h"
#include "util/error.h"

#include <cfloat>
#include <cmath>
#include <cstdio>

namespace ll {

namespace {

constexpr size_t kMaxVocab = size_t{1} << 24;
// llama.cpp's token types (llama_token_type).
enum TokenType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

const nlohmann::json* find(const nlohmann::json& md, const char* key)
{
    const auto it = md.find(key);
    return it == md.end() || it->is_null() ? nullptr : &*it;
}

const nlohmann::json& requireArray(const nlohmann::json& md, const char* key, const std::string& file)
{
    const nlohmann::json* v = find(md, key);
    if (!v || !v->is_array())
        fail(ErrorCode::Malformed, file, std::string("GGUF metadata has no array \"") + key + "\"");
    return *v;
}

int32_t idField(const nlohmann::json& md, const char* key, size_t vocab, const std::string& file)
{
    const nlohmann::json* v = find(md, key);
    if (!v)
        return -1;
    if (!v->is_number_integer())
        fail(ErrorCode::Malformed, file, std::string("GGUF metadata \"") + key + "\" is not an integer");
    const int64_t id = v->get<int64_t>();
    if (id < 0 || static_cast<uint64_t>(id) >= vocab)
        fail(ErrorCode::Malformed, file,
             std::string("GGUF metadata \"") + key + "\" = " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab));
    return static_cast<int32_t>(id);
}

bool boolField(const nlohmann::json& md, const char* key, bool fallback, const std::string& file)
{
    const nlohmann::json* v = find(md, key);
    if (!v)
        return fallback;
    if (!v->is_boolean())
        fail(ErrorCode::Malformed, file, std::string("GGUF metadata \"") + key + "\" is not a boolean");
    return v->get<bool>();
}

// llama.cpp's unicode_len_utf8: the length a lead byte announces, without checking the rest.
size_t spmCharLength(unsigned char c)
{
    static constexpr size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[c >> 4];
}

} // namespace

GgufTokenizer::GgufTokenizer(const nlohmann::json& md, const std::string& file) : file_(file)
{
    if (!md.is_object())
        fail(ErrorCode::Malformed, file, "GGUF metadata is not a key/value object");
    const nlohmann::json* model = find(md, "tokenizer.ggml.model");
    if (!model || !model->is_string())
        fail(ErrorCode::Malformed, file, "GGUF metadata has no \"tokenizer.ggml.model\"");
    model_ = model->get<std::string>();
    if (model_ != "llama" && model_ != "gpt2")
        fail(ErrorCode::UnsupportedArch, file,
             "GGUF tokenizer model \"" + model_ + "\" is not supported (supported: llama, gpt2)");

    const auto& tokens = requireArray(md, "tokenizer.ggml.tokens", file);
    if (tokens.empty() || tokens.size() > kMaxVocab)
        fail(ErrorCode::Malformed, file, "GGUF vocabulary has " + std::to_string(tokens.size()) + " tokens");
    const size_t n = tokens.size();
    pieces_.reserve(n);
    for (const auto& t : tokens) {
        if (!t.is_string())
            fail(ErrorCode::Malformed, file, "token " + std::to_string(pieces_.size()) + " of the GGUF vocabulary is not a string");
        pieces_.push_back(t.get<std::string>());
    }
    scores_.assign(n, 0.0f);
    if (const nlohmann::json* s = find(md, "tokenizer.ggml.scores")) {
        if (!s->is_array() || s->size() != n)
            fail(ErrorCode::Malformed, file, "tokenizer.ggml.scores does not hold one number per token");
        for (size_t i = 0; i < n; ++i) {
            if (!(*s)[i].is_number() || !(std::fabs((*s)[i].get<double>()) <= FLT_MAX))
                fail(ErrorCode::Malformed, file, "score of token " + std::to_string(i) + " is not a finite float");
            scores_[i] = (*s)[i].get<float>();
        }
    } else if (model_ == "llama") {
        fail(ErrorCode::Malformed, file, "a \"llama\" GGUF vocabulary needs tokenizer.ggml.scores");
    }
    kinds_.assign(n, Kind::Normal);
    byteValue_.assign(n, 0);
    if (const nlohmann::json* types = find(md, "tokenizer.ggml.token_type")) {
        if (!types->is_array() || types->size() != n)
            fail(ErrorCode::Malformed, file, "tokenizer.ggml.token_type does not hold one type per token");
        for (size_t i = 0; i < n; ++i) {
            const auto& t = (*types)[i];
            if (!t.is_number_integer())
                fail(ErrorCode::Malformed, file, "type of token " + std::to_string(i) + " is not an integer");
            switch (t.get<int64_t>()) {
            case Unknown: kinds_[i] = Kind::Unknown; break;
            case Control: kinds_[i] = Kind::Control; break;
            case UserDefined: kinds_[i] = Kind::UserDefined; break;
            case Unused: kinds_[i] = Kind::Unused; break;
            case Byte: {
                const int b = parseByteToken(pieces_[i]);
                if (b >= 0) {
                    kinds_[i] = Kind::Byte;
                    byteValue_[i] = static_cast<uint8_t>(b);
                }
                break;
            }
            default: break;
            }
        }
    } else if (model_ == "llama") {
        markByteTokens();
    }

    for (size_t i = 0; i < n; ++i) {
        ids_.emplace(pieces_[i], static_cast<int32_t>(i)); // the first of duplicates wins
        if (kinds_[i] == Kind::UserDefined)
            userDefined_.add(pieces_[i], static_cast<int32_t>(i));
    }
    bos_ = idField(md, "tokenizer.ggml.bos_token_id", n, file);
    eos_ = idField(md, "tokenizer.ggml.eos_token_id", n, file);
    unkId_ = idField(md, "tokenizer.ggml.unknown_token_id", n, file);
    addBos_ = boolField(md, "tokenizer.ggml.add_bos_token", model_ == "llama", file) && bos_ >= 0;
    addEos_ = boolField(md, "tokenizer.ggml.add_eos_token", false, file) && eos_ >= 0;

    if (model_ == "llama") {
        addSpacePrefix_ = boolField(md, "tokenizer.ggml.add_space_prefix", true, file);
        spelling_ = Spelling::Metaspace;
        stripLeadingSpace_ = addSpacePrefix_;
        cutAtMarkers_ = bpe::markerOnlyLeads(pieces_, kMetaspace);
        return;
    }

    // gpt2: byte-level BPE.
    std::string pre;
    if (const nlohmann::json* p = find(md, "tokenizer.ggml.pre")) {
        if (!p->is_string())
            fail(ErrorCode::Malformed, file, "tokenizer.ggml.pre is not a string");
        pre = p->get<std::string>();
    }
    const auto style = bytelevel::splitStyleFromGgufPre(pre);
    if (!style)
        fail(ErrorCode::UnsupportedArch, file,
             "GGUF pre-tokenizer \"" + pre + "\" is not supported (supported: default/gpt2, llama-bpe, qwen2)");
    const auto& merges = requireArray(md, "tokenizer.ggml.merges", file);
    std::vector<std::pair<std::string, std::string>> pairs;
    pairs.reserve(merges.size());
    for (const auto& m : merges) {
        if (!m.is_string())
            fail(ErrorCode::Malformed, file, "a tokenizer.ggml.merges entry is not a string");
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ', 1); // llama.cpp splits at the first space after the first character
        if (sp == std::string::npos)
            fail(ErrorCode::Malformed, file, "merge \"" + s + "\" is not two tokens separated by a space");
        pairs.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    }
    // llama.cpp ignores merges for words that are whole tokens with the Llama 3 regex.
    bpe_ = std::make_unique<ByteLevelBpe>(ids_, pairs, *style, false, *style == bytelevel::SplitStyle::Llama3, unkId_, file);
    spelling_ = Spelling::ByteLevel;
    stripLeadingSpace_ = false;
}

void GgufTokenizer::encodeSpm(std::string_view text, std::vector<int32_t>& out) const
{
    // Spaces are "▁" in the vocabulary (llama_escape_whitespace).
    std::string s;
    s.reserve(text.size() + text.size() / 4);
    for (char c : text) {
        if (c == ' ')
            s += kMetaspace;
        else
            s += c;
    }
    // llama.cpp merges over the whole text; cutting before "▁" gives the same ids, much faster.
    if (cutAtMarkers_)
        bpe::encodeWords(bpe::cutBeforeMarker(s, kMetaspace), out, [this](std::string_view w, std::vector<int32_t>& o) { encodeChunk(w, o); });
    else
        encodeChunk(s, out);
}

void GgufTokenizer::encodeChunk(std::string_view sv, std::vector<int32_t>& out) const
{
    std::vector<bpe::Symbol> symbols;
    symbols.reserve(sv.size());
    for (size_t i = 0; i < sv.size();) {
        const size_t len = std::min(spmCharLength(static_cast<unsigned char>(sv[i])), sv.size() - i);
        symbols.push_back({lookupId(ids_, sv.substr(i, len)), i, len, false});
        i += len;
    }
    const auto merged = bpe::mergeAll(std::move(symbols), [&](const bpe::Symbol& a, const bpe::Symbol& b) -> std::optional<bpe::Merge> {
        const int32_t id = lookupId(ids_, sv.substr(a.start, a.len + b.len));
        if (id < 0)
            return std::nullopt;
        return bpe::Merge{-static_cast<double>(scores_[id]), id};
    });
    for (const auto& sym : merged) {
        if (sym.id >= 0) {
            out.push_back(sym.id);
            continue;
        }
        // A character that is no token: its bytes (merged symbols are always tokens).
        for (size_t k = 0; k < sym.len; ++k) {
            char name[7];
            std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(sv[sym.start + k]));
            int32_t id = lookupId(ids_, name);
            if (id < 0)
                id = lookupId(ids_, sv.substr(sym.start + k, 1));
            if (id < 0)
                id = unkId_;
            if (id >= 0)
                out.push_back(id);
        }
    }
}

std::vector<int32_t> GgufTokenizer::encode(std::string_view text, bool addBos) const
{
    std::vector<int32_t> out;
    if (addBos && addBos_)
        out.push_back(bos_);
    bool prevSpecial = true; // llama.cpp: a space prefix at the start and after special tokens
    for (const auto& seg : userDefined_.split(text)) {
        if (seg.id >= 0) {
            out.push_back(seg.id);
            prevSpecial = true;
        } else if (bpe_) {
            bpe_->encode(seg.text, out);
        } else {
            std::string t;
            if (addSpacePrefix_ && prevSpecial)
                t = " ";
            t += seg.text;
            encodeSpm(t, out);
            prevSpecial = false;
        }
    }
    if (addBos && addEos_)
        out.push_back(eos_);
    return out;
}

std::string GgufTokenizer::description() const
{
    return "GGUF vocabulary, " + std::string(model_ == "llama" ? "SentencePiece BPE" : "byte-level BPE") + " ("
           + std::to_string(vocabSize()) + " tokens)";
}

} // namespace ll
