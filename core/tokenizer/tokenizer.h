#pragma once
// Tokenizers: text <-> token ids for the models LayerLab opens.
//   llama2.c tokenizer.bin      -> llama2c_tokenizer.h
//   Hugging Face tokenizer.json -> hf_tokenizer.h (SentencePiece-style BPE, GPT-2 byte level)
//   GGUF vocabulary             -> gguf_tokenizer.h (llama.cpp's "llama" and "gpt2" models)
// loadTokenizer() picks the one that belongs to a model.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ll {

class Model;

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Token ids of `text` (UTF-8; invalid bytes go through byte fallback where the
    // vocabulary has it). addBos: add the special tokens the model expects (BOS).
    virtual std::vector<int32_t> encode(std::string_view text, bool addBos = true) const = 0;

    // The text of the ids: control tokens (BOS, EOS, ...) are left out, byte
    // tokens become their bytes, and the space SentencePiece prepends is removed,
    // so decode(encode(text)) == text for ordinary text.
    std::string decode(std::span<const int32_t> ids) const;

    // The bytes one token stands for ("▁the" -> " the", "<0x0A>" -> "\n", GPT-2's
    // "Ġthe" -> " the"); a control token gives its name ("<s>"). Empty for bad ids.
    std::string tokenText(int32_t id) const;
    // The vocabulary entry exactly as the tokenizer file stores it.
    std::string piece(int32_t id) const;
    bool isControl(int32_t id) const;

    int32_t vocabSize() const { return static_cast<int32_t>(pieces_.size()); }
    int32_t bosId() const { return bos_; }
    int32_t eosId() const { return eos_; }
    // One line for the user: "llama2.c tokenizer.bin (512 tokens)".
    virtual std::string description() const = 0;

protected:
    enum class Kind : uint8_t { Normal, Byte, Control, Unknown, UserDefined, Unused };
    // How a piece turns into text.
    enum class Spelling : uint8_t {
        Plain,         // pieces are text as is (llama2.c writes ' ' for '▁')
        Metaspace,     // '▁' stands for a space (SentencePiece)
        ByteLevel,     // each character stands for one byte (GPT-2's bytes_to_unicode)
    };

    // Fills kinds_/byteValue_ for pieces that look like "<0xAB>"; call after pieces_ is set.
    void markByteTokens();

    std::vector<std::string> pieces_;
    std::vector<Kind> kinds_;
    std::vector<uint8_t> byteValue_;   // the byte of a Kind::Byte token
    Spelling spelling_ = Spelling::Plain;
    bool stripLeadingSpace_ = false;   // decode drops the first space (SentencePiece's dummy prefix)
    int32_t bos_ = -1, eos_ = -1;
};

// The tokenizer of a model: its tokenizer.bin (llama2.c), tokenizer.json (Hugging
// Face) or GGUF vocabulary. Throws NotFound when the model comes without one.
std::unique_ptr<Tokenizer> loadTokenizer(const Model& model);

// A tokenizer file on its own: .bin (llama2.c; expectedVocab 0 = as many as the
// file holds) or .json (Hugging Face tokenizer.json).
std::unique_ptr<Tokenizer> loadTokenizerFile(const std::string& path, int64_t expectedVocab = 0);

// "<0x0A>" -> 0x0A; -1 for any other piece.
int parseByteToken(std::string_view piece);

// "▁" (U+2581): SentencePiece's stand-in for a space in pieces.
inline const std::string kMetaspace = "\xE2\x96\x81";

} // namespace ll
