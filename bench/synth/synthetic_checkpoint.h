#pragma once
// Synthetic checkpoints with real models' shapes, for benchmarks and tests: a
// Hugging Face llama folder laid out as transformers' save_pretrained writes it
// (config.json, generation_config.json, safetensors shards with
// model.safetensors.index.json, tokenizer.json), filled with deterministic
// pseudo-random weights of realistic scale. The model is never held in memory:
// each tensor is generated and written a few MB at a time, so a 7B model costs
// a few MB of RAM and takes about as long as the disk needs to write it.
//
// Values depend only on (seed, tensor name, element index): the same seed gives
// the same bytes whatever the shard size, thread count or chunk size.
#include "export/hf_tokenizer_json.h"
#include "model/dtype.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ll {
class Progress;
}

namespace ll::synth {

// The numbers of a llama config.json.
struct SynthShape {
    std::string name;
    int64_t hidden = 0;
    int64_t intermediate = 0;
    int64_t layers = 0;
    int64_t heads = 0;
    int64_t kvHeads = 0;
    int64_t headDim = 0;
    int64_t vocab = 0;
    int64_t maxPositions = 0;
    double ropeTheta = 10000.0;
    double normEps = 1e-5;
    bool tied = false;            // tie_word_embeddings: no lm_head.weight
    nlohmann::json ropeScaling;   // transformers' rope_scaling block (rope_type "llama3" ...); null: none

    // Parameters of the stored tensors (a tied head counted once).
    int64_t parameterCount() const;
};

// llama2-7b, llama3-8b, llama3.2-1b, smollm-135m, tiny. Throws InvalidArgument naming the known shapes.
const SynthShape& synthShape(std::string_view name);
std::vector<std::string> synthShapeNames();

// Smaller (or larger) variants of a shape. Changing `hidden` keeps head_dim and
// the query/key-value group size, so heads = hidden / head_dim.
struct ShapeOverrides {
    std::optional<int64_t> layers, hidden, intermediate, vocab;
    // Plain rotary frequencies instead of the shape's rope_scaling (Llama 3.2's "llama3"
    // scaling), for tools that cannot carry the scaling yet; speed is the same.
    bool dropRopeScaling = false;
};
SynthShape overrideShape(const SynthShape& base, const ShapeOverrides& o);

// Throws InvalidArgument when the numbers cannot describe a llama model.
void validateShape(const SynthShape& s);

// One stored tensor, in the order of the model's state_dict.
struct SynthTensor {
    std::string name;             // model.layers.0.self_attn.q_proj.weight ...
    std::vector<int64_t> shape;   // (out, in) for linears
    float mean = 0.0f, std = 0.0f;
    int64_t elements() const;
};
std::vector<SynthTensor> synthTensors(const SynthShape& s);

struct SynthOptions {
    uint64_t seed = 1;
    // transformers' default max_shard_size ("5GB"); a tensor above it gets a shard of its own.
    uint64_t maxShardBytes = 5'000'000'000ull;
    // The real pieces of the vocabulary: a llama2.c tokenizer.bin / tok*.bin or a
    // SentencePiece-style tokenizer.json; empty: the built-in vocabulary (no file needed).
    std::string tokenizer;
    bool overwrite = false;       // replace an existing folder (only one that looks like a model export)
    int threads = 2;              // value generation
    uint64_t chunkBytes = 4ull << 20;
    Progress* progress = nullptr; // report + cancel
};

struct SynthResult {
    std::string path;
    std::vector<std::pair<std::string, uint64_t>> files; // name, bytes
    uint64_t totalBytes = 0;      // every file
    uint64_t weightBytes = 0;     // tensor data (the index's total_size)
    int shards = 0;
    int64_t tensors = 0;
    double seconds = 0.0;         // wall time, fsyncs included
};

// Writes the folder atomically (built as "<outDir>.partial-XXXXXX", renamed when
// complete). dtype: F32, F16 or BF16. Errors are ll::Error naming the file.
SynthResult writeSyntheticHf(const SynthShape& shape, DType dtype, const std::string& outDir, const SynthOptions& options = {});

// The vocabulary written as tokenizer.json: the real pieces of `tokenizerPath`
// (or the built-in ones), cut or padded to exactly `vocab` tokens. Padding pieces
// are unique, unreachable by any merge, and score below every real piece.
SentencePieceVocab synthVocab(int64_t vocab, const std::string& tokenizerPath);

} // namespace ll::synth
