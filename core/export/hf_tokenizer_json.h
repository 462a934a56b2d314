#pragma once
// Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json) for a
// SentencePiece-style BPE vocabulary that came without them: a llama2.c
// tokenizer.bin or a GGUF "llama" vocabulary. The layout is the one
// transformers' LlamaConverter writes (LlamaTokenizerFast): BPE with byte
// fallback, merges generated from the vocabulary as its generate_merges does
// with the piece scores (every split of a piece into two pieces of the
// vocabulary, the best-scored merged piece first, then the longer left part),
// "▁" for spaces.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ll {

// A SentencePiece-style vocabulary as llama.cpp's GGUF keys hold it.
struct SentencePieceVocab {
    std::vector<std::string> tokens; // pieces: "▁" for spaces, "<0xAB>" byte tokens
    std::vector<float> scores;
    std::vector<int32_t> types;      // llama.cpp's token types (TokenType below)
    int64_t bos = -1, eos = -1, unk = -1;
    bool addBos = true, addEos = false;
    bool addSpacePrefix = true;      // SentencePiece's dummy prefix: "▁" before the text

    enum TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
};

// The rules of llama.cpp's convert-llama2c-to-ggml: <unk> <s> </s> at 0, 1, 2,
// spaces as "▁", "<0xAB>" byte tokens. vocab: the model's vocabulary size (0 = the file's).
SentencePieceVocab sentencePieceVocabFromLlama2c(const std::string& path, int64_t vocab);

// A GGUF source's tokenizer.ggml.* keys when its model is "llama"; nothing otherwise.
std::optional<SentencePieceVocab> sentencePieceVocabFromGguf(const nlohmann::json& metadata);

// The BPE merges transformers derives from a SentencePiece vocabulary (generate_merges with vocab_scores).
// Pieces longer than kMaxMergedPieceBytes get none.
inline constexpr size_t kMaxMergedPieceBytes = 1024;
std::vector<std::pair<std::string, std::string>> sentencePieceMerges(const SentencePieceVocab& v);

// In the key order transformers writes (vocab by id).
nlohmann::ordered_json hfTokenizerJson(const SentencePieceVocab& v);
// maxLength: the model's context (model_max_length); 0 leaves it out.
nlohmann::ordered_json hfTokenizerConfig(const SentencePieceVocab& v, int64_t maxLength);

} // namespace ll
