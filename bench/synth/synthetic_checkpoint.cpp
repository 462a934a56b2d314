#include "synthetic_checkpoint.h"

#include "synthetic_values.h"

#include "util/atomic_file.h"
#include "export/safetensors_writer.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace ll::synth {

using nlohmann::json;

namespace {

// Weights at the scale of a freshly initialised llama (initializer_range 0.02),
// which is also the order of magnitude of trained ones; norms near 1.
constexpr float kWeightStd = 0.02f;
constexpr float kNormStd = 0.02f;

SynthShape makeShape(std::string name, int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads, int64_t kvHeads,
                     int64_t headDim, int64_t vocab, int64_t maxPositions, double ropeTheta, bool tied)
{
    SynthShape s;
    s.name = std::move(name);
    s.hidden = hidden;
    s.intermediate = intermediate;
    s.layers = layers;
    s.heads = heads;
    s.kvHeads = kvHeads;
    s.headDim = headDim;
    s.vocab = vocab;
    s.maxPositions = maxPositions;
    s.ropeTheta = ropeTheta;
    s.tied = tied;
    return s;
}

// The published config.json of each model (meta-llama/Llama-2-7b-hf, Meta-Llama-3-8B,
// Llama-3.2-1B, HuggingFaceTB/SmolLM-135M); "tiny" is for tests.
const std::vector<SynthShape>& shapes()
{
    static const std::vector<SynthShape> all = [] {
        std::vector<SynthShape> v;
        v.push_back(makeShape("llama2-7b", 4096, 11008, 32, 32, 32, 128, 32000, 4096, 10000.0, false));
        v.push_back(makeShape("llama3-8b", 4096, 14336, 32, 32, 8, 128, 128256, 8192, 500000.0, false));
        SynthShape l32 = makeShape("llama3.2-1b", 2048, 8192, 16, 32, 8, 64, 128256, 131072, 500000.0, true);
        l32.ropeScaling = {{"factor", 32.0},
                           {"high_freq_factor", 4.0},
                           {"low_freq_factor", 1.0},
                           {"original_max_position_embeddings", 8192},
                           {"rope_type", "llama3"}};
        v.push_back(l32);
        v.push_back(makeShape("smollm-135m", 576, 1536, 30, 9, 3, 64, 49152, 2048, 10000.0, true));
        v.push_back(makeShape("tiny", 256, 688, 4, 4, 2, 64, 1024, 2048, 10000.0, false));
        return v;
    }();
    return all;
}

std::string torchDtypeName(DType t)
{
    switch (t) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    default: return "float32";
    }
}

json configJson(const SynthShape& s, DType dtype, const SentencePieceVocab& vocab)
{
    // transformers 5 keeps rope_theta and the scaling in rope_parameters; 4.x in
    // rope_theta and rope_scaling. Both are written, saying the same.
    json ropeParameters = s.ropeScaling.is_object() ? s.ropeScaling : json{{"rope_type", "default"}};
    ropeParameters["rope_theta"] = s.ropeTheta;
    return json{
        {"architectures", json::array({"LlamaForCausalLM"})},
        {"attention_bias", false},
        {"attention_dropout", 0.0},
        {"bos_token_id", vocab.bos >= 0 ? json(vocab.bos) : json()},
        {"eos_token_id", vocab.eos >= 0 ? json(vocab.eos) : json()},
        {"head_dim", s.headDim},
        {"hidden_act", "silu"},
        {"hidden_size", s.hidden},
        {"initializer_range", 0.02},
        {"intermediate_size", s.intermediate},
        {"max_position_embeddings", s.maxPositions},
        {"mlp_bias", false},
        {"model_type", "llama"},
        {"num_attention_heads", s.heads},
        {"num_hidden_layers", s.layers},
        {"num_key_value_heads", s.kvHeads},
        {"pretraining_tp", 1},
        {"rms_norm_eps", s.normEps},
        {"rope_scaling", s.ropeScaling.is_object() ? s.ropeScaling : json()},
        {"rope_theta", s.ropeTheta},
        {"rope_parameters", ropeParameters},
        {"tie_word_embeddings", s.tied},
        {"torch_dtype", torchDtypeName(dtype)}, // transformers 4
        {"dtype", torchDtypeName(dtype)},       // transformers 5
        {"use_cache", true},
        {"vocab_size", s.vocab},
    };
}

json generationConfigJson(const SentencePieceVocab& vocab)
{
    json g{{"_from_model_config", true}};
    if (vocab.bos >= 0)
        g["bos_token_id"] = vocab.bos;
    if (vocab.eos >= 0)
        g["eos_token_id"] = vocab.eos;
    return g;
}

// huggingface_hub's split_torch_state_dict_into_shards, which save_pretrained uses:
// tensors in state_dict order; a tensor above the limit gets a shard of its own
// (placed before the shard being filled); otherwise a new shard starts when the
// next tensor would pass the limit.
std::vector<std::vector<const SynthTensor*>> planShards(const std::vector<SynthTensor>& tensors, uint64_t eb, uint64_t maxBytes)
{
    std::vector<std::vector<const SynthTensor*>> shards;
    std::vector<const SynthTensor*> current;
    uint64_t currentBytes = 0;
    for (const auto& t : tensors) {
        const uint64_t bytes = static_cast<uint64_t>(t.elements()) * eb;
        if (bytes > maxBytes) {
            shards.push_back({&t});
            continue;
        }
        if (currentBytes + bytes > maxBytes) {
            shards.push_back(std::move(current));
            current.clear();
            currentBytes = 0;
        }
        current.push_back(&t);
        currentBytes += bytes;
    }
    if (!current.empty())
        shards.push_back(std::move(current));
    return shards;
}

std::string shardName(size_t k, size_t n)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
    return buf;
}

// transformers writes its JSON files with json.dumps(indent=2, sort_keys=True) + "\n";
// nlohmann::json keeps object keys sorted too.
uint64_t writeText(AtomicDir& dir, const std::string& name, const std::string& text)
{
    FileWriter w(dir.partialFile(name), dir.finalPath() + "/" + name);
    w.write(text.data(), text.size());
    w.close();
    return text.size();
}

} // namespace

int64_t SynthShape::parameterCount() const
{
    int64_t n = 0;
    for (const auto& t : synthTensors(*this))
        n += t.elements();
    return n;
}

int64_t SynthTensor::elements() const
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

const SynthShape& synthShape(std::string_view name)
{
    for (const auto& s : shapes())
        if (s.name == name)
            return s;
    std::string known;
    for (const auto& s : shapes())
        known += (known.empty() ? "" : ", ") + s.name;
    fail(ErrorCode::InvalidArgument, "", "unknown shape '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> synthShapeNames()
{
    std::vector<std::string> names;
    for (const auto& s : shapes())
        names.push_back(s.name);
    return names;
}

SynthShape overrideShape(const SynthShape& base, const ShapeOverrides& o)
{
    SynthShape s = base;
    if (o.layers)
        s.layers = *o.layers;
    if (o.intermediate)
        s.intermediate = *o.intermediate;
    if (o.vocab)
        s.vocab = *o.vocab;
    if (o.hidden && *o.hidden != s.hidden) {
        if (*o.hidden <= 0 || *o.hidden % s.headDim != 0)
            fail(ErrorCode::InvalidArgument, "", "hidden " + std::to_string(*o.hidden) + " is not a multiple of head_dim "
                                                     + std::to_string(s.headDim));
        const int64_t group = s.heads / s.kvHeads;
        s.hidden = *o.hidden;
        s.heads = s.hidden / s.headDim;
        s.kvHeads = std::max<int64_t>(s.heads / group, 1);
    }
    const bool dropScaling = o.dropRopeScaling && s.ropeScaling.is_object();
    if (dropScaling)
        s.ropeScaling = nullptr;
    if (o.layers || o.hidden || o.intermediate || o.vocab || dropScaling)
        s.name += "-custom";
    validateShape(s);
    return s;
}

void validateShape(const SynthShape& s)
{
    auto need = [&](bool ok, const std::string& what) {
        if (!ok)
            fail(ErrorCode::InvalidArgument, "", "shape '" + s.name + "': " + what);
    };
    need(s.hidden > 0 && s.intermediate > 0 && s.layers > 0 && s.heads > 0 && s.kvHeads > 0 && s.headDim > 0 && s.vocab > 0
             && s.maxPositions > 0,
         "every dimension must be positive");
    need(s.heads % s.kvHeads == 0, "attention heads must be a multiple of key/value heads");
    need(s.headDim % 2 == 0, "head_dim must be even (rotary pairs)");
    need(s.ropeTheta > 0.0, "rope_theta must be positive");
}

std::vector<SynthTensor> synthTensors(const SynthShape& s)
{
    std::vector<SynthTensor> v;
    v.push_back({"model.embed_tokens.weight", {s.vocab, s.hidden}, 0.0f, kWeightStd});
    const int64_t q = s.heads * s.headDim, kv = s.kvHeads * s.headDim;
    for (int64_t i = 0; i < s.layers; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        v.push_back({p + "self_attn.q_proj.weight", {q, s.hidden}, 0.0f, kWeightStd});
        v.push_back({p + "self_attn.k_proj.weight", {kv, s.hidden}, 0.0f, kWeightStd});
        v.push_back({p + "self_attn.v_proj.weight", {kv, s.hidden}, 0.0f, kWeightStd});
        v.push_back({p + "self_attn.o_proj.weight", {s.hidden, q}, 0.0f, kWeightStd});
        v.push_back({p + "mlp.gate_proj.weight", {s.intermediate, s.hidden}, 0.0f, kWeightStd});
        v.push_back({p + "mlp.up_proj.weight", {s.intermediate, s.hidden}, 0.0f, kWeightStd});
        v.push_back({p + "mlp.down_proj.weight", {s.hidden, s.intermediate}, 0.0f, kWeightStd});
        v.push_back({p + "input_layernorm.weight", {s.hidden}, 1.0f, kNormStd});
        v.push_back({p + "post_attention_layernorm.weight", {s.hidden}, 1.0f, kNormStd});
    }
    v.push_back({"model.norm.weight", {s.hidden}, 1.0f, kNormStd});
    if (!s.tied)
        v.push_back({"lm_head.weight", {s.vocab, s.hidden}, 0.0f, kWeightStd});
    return v;
}

SynthResult writeSyntheticHf(const SynthShape& shape, DType dtype, const std::string& outDir, const SynthOptions& opt)
{
    const auto t0 = std::chrono::steady_clock::now();
    validateShape(shape);
    if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
        fail(ErrorCode::InvalidArgument, outDir, "synthetic checkpoints are F32, F16 or BF16, not " + std::string(dtypeName(dtype)));
    const uint64_t eb = elementBytes(dtype);
    if (opt.maxShardBytes == 0)
        fail(ErrorCode::InvalidArgument, outDir, "the shard size limit must be positive");
    // The vocabulary first: a bad tokenizer file fails before anything is written.
    const SentencePieceVocab vocab = synthVocab(shape.vocab, opt.tokenizer);
    const std::vector<SynthTensor> tensors = synthTensors(shape);
    const auto shards = planShards(tensors, eb, opt.maxShardBytes);

    AtomicDir dir(outDir, opt.overwrite);
    const std::string finalDir = dir.finalPath();
    SynthResult result;
    result.shards = static_cast<int>(shards.size());
    result.tensors = static_cast<int64_t>(tensors.size());
    for (const auto& t : tensors)
        result.weightBytes += static_cast<uint64_t>(t.elements()) * eb;

    uint64_t done = 0;
    json weightMap = json::object();
    for (size_t k = 0; k < shards.size(); ++k) {
        const std::string name = shards.size() == 1 ? "model.safetensors" : shardName(k, shards.size());
        const std::string display = finalDir + "/" + name;
        std::vector<const SynthTensor*> sorted = shards[k]; // safetensors stores tensors sorted by name
        std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
        std::vector<SafetensorsTensor> described;
        for (const SynthTensor* t : sorted) {
            described.push_back({t->name, dtype, t->shape, {}, {}});
            weightMap[t->name] = name;
        }
        const std::string header = safetensorsHeader(described, {{"format", "pt"}});
        FileWriter w(dir.partialFile(name), display);
        uint8_t len[8];
        for (int i = 0; i < 8; ++i)
            len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
        w.write(len, 8);
        w.write(header.data(), header.size());
        for (const SynthTensor* t : sorted) {
            StreamOptions so;
            so.threads = opt.threads;
            so.chunkBytes = opt.chunkBytes;
            so.afterChunk = [&](uint64_t bytes) {
                done += bytes;
                throwIfCancelledWriting(opt.progress, finalDir);
                if (opt.progress)
                    opt.progress->report(static_cast<double>(done) / static_cast<double>(result.weightBytes), "writing " + t->name);
            };
            streamValues(w, tensorKey(opt.seed, t->name), t->mean, t->std, static_cast<uint64_t>(t->elements()), dtype, so);
        }
        w.close();
        result.files.emplace_back(name, w.written());
    }
    if (shards.size() > 1) {
        const json index{{"metadata", {{"total_size", result.weightBytes}}}, {"weight_map", weightMap}};
        result.files.emplace_back("model.safetensors.index.json", writeText(dir, "model.safetensors.index.json", index.dump(2) + "\n"));
    }
    for (const auto& [name, text] : {std::pair<std::string, std::string>{"config.json", configJson(shape, dtype, vocab).dump(2) + "\n"},
                                     {"generation_config.json", generationConfigJson(vocab).dump(2) + "\n"},
                                     {"tokenizer.json", hfTokenizerJson(vocab).dump(2) + "\n"},
                                     {"tokenizer_config.json", hfTokenizerConfig(vocab, shape.maxPositions).dump(2) + "\n"}})
        result.files.emplace_back(name, writeText(dir, name, text));

    throwIfCancelledWriting(opt.progress, finalDir);
    dir.commit();
    if (opt.progress)
        opt.progress->report(1.0, "done");
    result.path = finalDir;
    for (const auto& f : result.files)
        result.totalBytes += f.second;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

} // namespace ll::synth
