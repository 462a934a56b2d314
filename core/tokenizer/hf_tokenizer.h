#pragma once
// Hugging Face tokenizer.json with a BPE model, in the two shapes LLMs use:
//  - SentencePiece style (Llama 1/2, Mistral, TinyStories): normalizer Prepend "▁"
//    + Replace " " -> "▁" (or a Metaspace pre-tokenizer), byte_fallback "<0xXX>" tokens;
//  - GPT-2 byte level (GPT-2, Llama 3, Qwen2): ByteLevel / Split pre-tokenizer.
// Merges apply by rank; added tokens are found in the raw text first; the
// post-processor's template (TemplateProcessing, Roberta/Bert) adds BOS and friends.
// Anything else in the file (other models, normalizers, regexes) is a clear error.
// Known simplifications: added tokens are matched in the raw text (also those marked
// "normalized"), single_word is ignored, and an NFC normalizer passes text unchanged.
#include "tokenizer/byte_level.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/string_map.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <memory>

namespace ll {

class HfTokenizer : public Tokenizer {
public:
    // Reads tokenizer.json; a tokenizer_config.json beside it names BOS / EOS when the template does not.
    explicit HfTokenizer(const std::string& path);
    // From an already parsed tokenizer.json (`file` names it in errors).
    HfTokenizer(const nlohmann::json& j, const std::string& file);

    std::vector<int32_t> encode(std::string_view text, bool addBos = true) const override;
    std::string description() const override;

    bool isByteLevel() const { return byteLevel_ != nullptr; }

private:
    struct NormalizeStep {
        enum { Prepend, Replace } op;
        std::string a, b; // Prepend: a; Replace: a -> b
    };

    struct AddedToken {
        std::string content;
        int32_t id;
        bool special;
    };

    void parse(const nlohmann::json& j);
    void parseModel(const nlohmann::json& model, const std::vector<AddedToken>& added);
    void parseNormalizer(const nlohmann::json& n, int depth = 0);
    void parsePreTokenizer(const nlohmann::json& p);
    void parsePostProcessor(const nlohmann::json& p);
    void readConfigBeside();

    std::string normalize(std::string_view text) const;
    void encodeSentencePiece(std::string_view segment, bool firstSegment, std::vector<int32_t>& out) const;
    void encodeWord(std::string_view word, std::vector<int32_t>& out) const;

    std::string file_;
    StringIdMap vocab_;
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_; // (left, right) -> (rank, merged)
    std::vector<std::pair<std::string, std::string>> mergeStrings_;    // for the byte-level model
    bool byteFallback_ = false;
    bool fuseUnk_ = false;
    bool ignoreMerges_ = false;
    int32_t unkId_ = -1;

    std::vector<NormalizeStep> normalizers_;
    std::string spaceMarker_;  // what a space becomes ("▁"), for bpe::cutBeforeMarker
    bool cutAtMarkers_ = false;
    // Metaspace pre-tokenizer.
    bool metaspace_ = false;
    std::string metaspaceReplacement_ = "\xE2\x96\x81";
    enum class Prepend { Always, First, Never } metaspacePrepend_ = Prepend::Always;
    bool metaspaceSplit_ = false;
    // Byte level.
    bool byteLevelPre_ = false;
    bool addPrefixSpace_ = false;
    bytelevel::SplitStyle splitStyle_ = bytelevel::SplitStyle::None;
    std::unique_ptr<ByteLevelBpe> byteLevel_;

    SpecialTokenSplitter added_;
    std::vector<int32_t> prefix_, suffix_; // the post-processor's tokens around a single sequence
};

} // namespace ll
