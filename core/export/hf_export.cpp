#include "export/hf_export.h"

#include "util/atomic_file.h"
#include "export/export_common.h"
#include "export/hf_tokenizer_json.h"
#include "export/safetensors_writer.h"
#include "export/tensor_stream.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/json_util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

namespace ll {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Side files of a Hugging Face folder that travel with the weights.
const char* const kCopiedFiles[] = {
    "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "added_tokens.json",      "vocab.json",     "merges.txt",            "chat_template.jinja",     "chat_template.json",
};

struct Plan {
    std::vector<PlannedTensor> tensors;
    bool tied = false;
};

std::string torchDtypeName(DType t)
{
    switch (t) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    default: return "float32";
    }
}

std::string lmHeadName(Family f)
{
    return f == Family::GptNeoX ? "embed_out.weight" : "lm_head.weight";
}

// A tied head stays tied only while neither it nor the embedding was edited; else
// it is written on its own (returned) and the config says the weights are not tied.
const LogicalTensor* headToWriteSeparately(const Model& m, bool* tied, std::vector<std::string>& notes)
{
    const LogicalTensor* head = m.find(-1, Role::LmHead);
    const LogicalTensor* embed = m.find(-1, Role::Embedding);
    *tied = false;
    if (!head || !head->tied)
        return nullptr;
    if (!head->edited() && (!embed || !embed->edited())) {
        *tied = true;
        return nullptr;
    }
    notes.push_back("the embedding or the LM head was edited, so they are no longer shared: the head is written as its own "
                    "tensor and tie_word_embeddings is false");
    return head;
}

// ---- source layout (Hugging Face sources) ----

Plan planSourceLayout(const Model& m, std::vector<std::string>& notes)
{
    Plan p;
    std::vector<std::vector<const LogicalTensor*>> partsOf(m.stored.size());
    std::vector<size_t> order; // stored tensors in the order their first logical tensor appears
    for (const LogicalTensor& t : m.tensors) {
        if (t.tied)
            continue;
        if (partsOf.at(t.stored).empty())
            order.push_back(t.stored);
        partsOf[t.stored].push_back(&t);
    }
    for (size_t s : order)
        p.tensors.push_back(rebuildStored(m, m.stored[s].name, partsOf[s]));
    if (const LogicalTensor* head = headToWriteSeparately(m, &p.tied, notes))
        p.tensors.push_back(logicalAsIs(m, *head, lmHeadName(m.config.family)));
    return p;
}

// ---- Hugging Face llama names (GGUF, llama2.c and generated sources) ----

std::string hfLlamaName(const LogicalTensor& t)
{
    const std::string block = "model.layers." + std::to_string(t.block) + ".";
    const std::string suffix = t.isBias ? ".bias" : ".weight";
    switch (t.role) {
    case Role::Embedding: return t.isBias ? "" : "model.embed_tokens.weight";
    case Role::FinalNorm: return t.isBias ? "" : "model.norm.weight";
    case Role::LmHead: return t.isBias ? "" : "lm_head.weight";
    case Role::AttnNorm: return t.isBias ? "" : block + "input_layernorm.weight";
    case Role::MlpNorm: return t.isBias ? "" : block + "post_attention_layernorm.weight";
    case Role::AttnQ: return block + "self_attn.q_proj" + suffix;
    case Role::AttnK: return block + "self_attn.k_proj" + suffix;
    case Role::AttnV: return block + "self_attn.v_proj" + suffix;
    case Role::AttnO: return block + "self_attn.o_proj" + suffix;
    case Role::MlpGate: return block + "mlp.gate_proj" + suffix; // biases: mlp_bias
    case Role::MlpUp: return block + "mlp.up_proj" + suffix;
    case Role::MlpDown: return block + "mlp.down_proj" + suffix;
    default: return "";
    }
}

void refuseRopeScaling(const Model& m)
{
    const std::string key = m.config.modelType + ".rope.scaling.type";
    if (m.metadata.is_object() && m.metadata.contains(key) && m.metadata[key].is_string()
        && m.metadata[key].get<std::string>() != "none")
        fail(ErrorCode::UnsupportedArch, m.path,
             "uses rope scaling '" + m.metadata[key].get<std::string>()
                 + "', which LayerLab does not carry into a Hugging Face config yet");
    if (m.findLogical("rope_freqs.weight"))
        fail(ErrorCode::UnsupportedArch, m.path,
             "holds rope_freqs.weight (Llama 3 rope scaling), which LayerLab does not turn back into a Hugging Face config yet");
}

bool hasBias(const Model& m, std::initializer_list<Role> roles)
{
    for (const LogicalTensor& t : m.tensors)
        if (t.isBias && std::find(roles.begin(), roles.end(), t.role) != roles.end())
            return true;
    return false;
}

// transformers' LlamaConfig has one switch for the q, k, v and o biases
// (attention_bias) and one for gate, up and down (mlp_bias): where a model
// has some of them (FLAP's o and down biases, read back from a GGUF that left
// out the zero ones), the others are written as zeros.
void addMissingZeroBiases(const Model& m, Plan& p, std::vector<std::string>& notes)
{
    int64_t added = 0;
    for (const auto& group : {std::vector<Role>{Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO},
                              std::vector<Role>{Role::MlpGate, Role::MlpUp, Role::MlpDown}}) {
        for (int b = 0; b < m.config.layers; ++b) {
            bool any = false;
            for (Role r : group)
                any = any || m.find(b, r, true);
            if (!any)
                continue;
            for (Role r : group) {
                const LogicalTensor* w = m.find(b, r);
                if (m.find(b, r, true) || !w || w->shape.empty())
                    continue;
                LogicalTensor bias = *w;
                bias.isBias = true;
                p.tensors.push_back(computedTensor(hfLlamaName(bias), std::vector<float>(static_cast<size_t>(w->shape[0]), 0.0f)));
                ++added;
            }
        }
    }
    if (added > 0)
        notes.push_back(std::to_string(added) + " zero bias tensors written: transformers' attention_bias / mlp_bias give "
                                                "every projection of the attention / MLP a bias");
}

Plan planLlamaNames(const Model& m, std::vector<std::string>& notes)
{
    const ModelConfig& c = m.config;
    if (c.family != Family::Llama && c.family != Family::Mistral && c.family != Family::Qwen2)
        fail(ErrorCode::UnsupportedArch, m.path,
             "Hugging Face export from " + m.format + " files supports llama, mistral and qwen2 models, not "
                 + std::string(familyName(c.family)));
    refuseRopeScaling(m);
    const RotaryPermute permute = c.ropeInterleaved ? RotaryPermute::InterleavedToHalves : RotaryPermute::None;
    if (c.ropeInterleaved)
        notes.push_back("q and k rows permuted from the interleaved rotary layout of " + m.format
                        + " to Hugging Face's rotate_half layout");
    Plan p;
    std::vector<std::string> skipped;
    for (const LogicalTensor& t : m.tensors) {
        if (t.tied)
            continue;
        const std::string name = hfLlamaName(t);
        if (name.empty()) {
            skipped.push_back(t.logicalName);
            continue;
        }
        const bool rotary = t.role == Role::AttnQ || t.role == Role::AttnK;
        p.tensors.push_back(logicalAsIs(m, t, name, rotary ? permute : RotaryPermute::None, c.headDim));
    }
    if (const LogicalTensor* head = headToWriteSeparately(m, &p.tied, notes))
        p.tensors.push_back(logicalAsIs(m, *head, "lm_head.weight"));
    if (c.family == Family::Llama)
        addMissingZeroBiases(m, p, notes);
    if (!skipped.empty()) {
        std::string list;
        for (const auto& s : skipped)
            list += (list.empty() ? "" : ", ") + s;
        notes.push_back("not part of a Hugging Face llama checkpoint, left out: " + list);
    }
    return p;
}

// ---- config.json ----

struct ConfigKeys {
    const char* intermediate;
    const char* heads;
    const char* kvHeads;       // nullptr: the family has no grouped key/value heads
    const char* hidden;
    bool headSizeFromHidden;   // head size = hidden / heads (no head_dim key)
};

ConfigKeys configKeys(Family f)
{
    switch (f) {
    case Family::Gpt2: return {"n_inner", "n_head", nullptr, "n_embd", true};
    case Family::Opt: return {"ffn_dim", "num_attention_heads", nullptr, "hidden_size", true};
    case Family::GptNeoX: return {"intermediate_size", "num_attention_heads", nullptr, "hidden_size", true};
    default: return {"intermediate_size", "num_attention_heads", "num_key_value_heads", "hidden_size", false};
    }
}

void requireUniform(bool uniform, const std::vector<int64_t>& perBlock, const char* what, const std::string& path)
{
    if (uniform)
        return;
    std::string list;
    for (int64_t v : perBlock)
        list += (list.empty() ? "" : ", ") + std::to_string(v);
    fail(ErrorCode::InvalidArgument, path,
         std::string("blocks now have different ") + what + " (" + list
             + "); a Hugging Face config describes one value for all blocks (GGUF allows per-block values)");
}

// Sets `key` to the current value when it differs from what the source config said, and says so.
void updateDim(json& cfg, const char* key, int64_t now, int64_t before, std::vector<std::string>& notes)
{
    if (key && cfg.contains(key) && cfg[key].is_number_integer())
        before = cfg[key].get<int64_t>(); // what the carried config says (the model's own config may have moved on)
    if (!key || now == before)
        return;
    cfg[key] = now;
    notes.push_back(std::string("config.json: ") + key + " " + std::to_string(before) + " -> " + std::to_string(now)
                    + " (derived from the current tensor shapes)");
}

void applyDims(json& cfg, const Model& m, const CurrentDims& d, std::vector<std::string>& notes)
{
    const ModelConfig& c = m.config;
    const ConfigKeys k = configKeys(c.family);
    requireUniform(d.uniformFfn(), d.ffn, "FFN widths", m.path);
    requireUniform(d.uniformHeads(), d.heads, "attention head counts", m.path);
    requireUniform(d.uniformKvHeads(), d.kvHeads, "key/value head counts", m.path);
    const int64_t ffn = d.ffn.empty() ? c.intermediate : d.ffn[0];
    const int64_t heads = d.heads.empty() ? c.heads : d.heads[0];
    const int64_t kv = d.kvHeads.empty() ? c.kvHeads : d.kvHeads[0];
    if (k.headSizeFromHidden && heads != c.heads && heads * c.headDim != d.hidden)
        fail(ErrorCode::InvalidArgument, m.path,
             std::string(familyName(c.family)) + " configs derive the head size from the hidden size; " + std::to_string(heads)
                 + " heads of " + std::to_string(c.headDim) + " cannot be described");
    if (!k.kvHeads && kv != heads)
        fail(ErrorCode::InvalidArgument, m.path, "key/value heads differ from query heads, which this family cannot describe");
    updateDim(cfg, k.intermediate, ffn, c.intermediate, notes);
    updateDim(cfg, k.heads, heads, c.heads, notes);
    updateDim(cfg, k.kvHeads, kv, c.kvHeads, notes);
    updateDim(cfg, k.hidden, d.hidden, c.hidden, notes);
    updateDim(cfg, "vocab_size", d.vocab, c.vocab, notes);
    // Blocks removed (ShortGPT): the source's config still counts them.
    const char* layersKey = c.family == Family::Gpt2 ? "n_layer" : "num_hidden_layers";
    if (cfg.contains(layersKey) && cfg[layersKey].is_number_integer())
        updateDim(cfg, layersKey, c.layers, cfg[layersKey].get<int64_t>(), notes);
    if (!k.headSizeFromHidden && heads * c.headDim != d.hidden && (!cfg.contains("head_dim") || cfg["head_dim"].is_null())) {
        cfg["head_dim"] = c.headDim; // no longer hidden / heads
        notes.push_back("config.json: head_dim " + std::to_string(c.headDim) + " written explicitly");
    }
}

void setDtype(json& cfg, DType dtype, bool both)
{
    cfg["dtype"] = torchDtypeName(dtype);            // transformers 5
    if (both || cfg.contains("torch_dtype"))
        cfg["torch_dtype"] = torchDtypeName(dtype);  // transformers 4
}

json carriedConfig(const Model& m, const CurrentDims& d, bool tied, DType dtype, std::vector<std::string>& notes)
{
    json cfg = m.metadata.is_object() ? m.metadata : json::object();
    applyDims(cfg, m, d, notes);
    setDtype(cfg, dtype, false);
    const bool wasTied = m.config.tiedEmbeddings;
    cfg["tie_word_embeddings"] = tied;
    if (wasTied != tied && !tied)
        notes.push_back("config.json: tie_word_embeddings true -> false");
    return cfg;
}

json synthesizedConfig(const Model& m, const CurrentDims& d, bool tied, DType dtype)
{
    const ModelConfig& c = m.config;
    requireUniform(d.uniformFfn(), d.ffn, "FFN widths", m.path);
    requireUniform(d.uniformHeads(), d.heads, "attention head counts", m.path);
    requireUniform(d.uniformKvHeads(), d.kvHeads, "key/value head counts", m.path);
    const std::string type = c.family == Family::Mistral ? "mistral" : c.family == Family::Qwen2 ? "qwen2" : "llama";
    const std::string arch = c.family == Family::Mistral ? "MistralForCausalLM"
                             : c.family == Family::Qwen2 ? "Qwen2ForCausalLM"
                                                         : "LlamaForCausalLM";
    const double theta = shortestFloat(c.ropeTheta);
    json cfg{
        {"architectures", json::array({arch})},
        {"model_type", type},
        {"hidden_size", d.hidden},
        {"intermediate_size", d.ffn.empty() ? c.intermediate : d.ffn[0]},
        {"num_hidden_layers", c.layers},
        {"num_attention_heads", d.heads.empty() ? c.heads : d.heads[0]},
        {"num_key_value_heads", d.kvHeads.empty() ? c.kvHeads : d.kvHeads[0]},
        {"head_dim", c.headDim},
        {"vocab_size", d.vocab},
        {"rms_norm_eps", shortestFloat(c.normEps)},
        {"rope_theta", theta},                                                   // transformers 4
        {"rope_parameters", {{"rope_theta", theta}, {"rope_type", "default"}}},  // transformers 5
        {"max_position_embeddings", c.maxPositions},
        {"tie_word_embeddings", tied},
        {"bos_token_id", c.bosId >= 0 ? json(c.bosId) : json()},
        {"eos_token_id", c.eosId >= 0 ? json(c.eosId) : json()},
        {"hidden_act", "silu"},
        {"attention_bias", c.attentionBias || hasBias(m, {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO})},
        {"mlp_bias", hasBias(m, {Role::MlpGate, Role::MlpUp, Role::MlpDown})},
        {"initializer_range", 0.02},
        {"use_cache", true},
    };
    setDtype(cfg, dtype, true);
    return cfg;
}

// ---- writing ----

// Writes one side file of the folder and lists it in `written`.
void writeTextFile(AtomicDir& dir, const std::string& name, const std::string& text,
                   std::vector<std::pair<std::string, uint64_t>>& written)
{
    FileWriter w(dir.partialFile(name), dir.finalPath() + "/" + name);
    w.write(text.data(), text.size());
    w.close();
    written.emplace_back(name, text.size());
}

std::string readWholeFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(ErrorCode::Io, path, "cannot open for reading");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        fail(ErrorCode::Io, path, "read error");
    return s;
}

std::string shardName(size_t k, size_t n)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
    return buf;
}

} // namespace

ExportResult exportHf(const Model& m, const std::string& folder, const HfExportOptions& opt)
{
    if (opt.dtype != DType::F32 && opt.dtype != DType::F16 && opt.dtype != DType::BF16)
        fail(ErrorCode::InvalidArgument, folder,
             "Hugging Face export writes f32, f16 or bf16, not " + std::string(dtypeName(opt.dtype)));
    if (m.config.family == Family::Unknown)
        fail(ErrorCode::UnsupportedArch, m.path, "the model's family is unknown (no config); it cannot be written as a Hugging Face folder");
    refuseUnexportable(m, folder);
    refuseSourceOverlap(sourceFilesOf(m), sourceFolderOf(m), folder, true);
    throwIfCancelledWriting(opt.progress, folder);

    ExportResult result;
    result.format = "hf";
    const bool hfSource = m.format == "safetensors";
    Plan plan = hfSource ? planSourceLayout(m, result.notes) : planLlamaNames(m, result.notes);
    if (plan.tied)
        result.notes.push_back("the LM head shares the embedding (tie_word_embeddings true); it is stored once");
    const CurrentDims dims = currentDims(m);
    const json config = hfSource ? carriedConfig(m, dims, plan.tied, opt.dtype, result.notes)
                                 : synthesizedConfig(m, dims, plan.tied, opt.dtype);

    // Shards: tensors in model order, a new shard when the next tensor would pass the limit.
    // Each tensor is streamed band by band when its turn comes (export/tensor_stream.h).
    std::vector<SafetensorsTensor> all;
    std::vector<int64_t> overflow(plan.tensors.size(), 0);
    int64_t totalElements = 0;
    for (const PlannedTensor& pt : plan.tensors)
        totalElements += pt.elements();
    std::optional<BandProgress> progress; // made once the folder's final name is known
    StreamBuffers buffers(opt.chunkBytes ? opt.chunkBytes : kDefaultExportChunkBytes);
    buffers.releaseAfterUse(m.files);
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
        const PlannedTensor* pt = &plan.tensors[i];
        int64_t* over = &overflow[i];
        const DType dtype = opt.dtype;
        SafetensorsTensor t;
        t.name = pt->name;
        t.dtype = dtype;
        t.shape = pt->shape;
        t.write = [pt, dtype, over, &buffers, &progress](FileWriter& out) {
            const StreamedTensor s = streamTensor(out, *pt, dtype, buffers, out.displayName(), [&](int64_t done) { progress->band(done); });
            *over = s.overflow;
            progress->finishTensor(pt->elements());
        };
        all.push_back(std::move(t));
    }
    std::vector<std::vector<SafetensorsTensor>> shards(1);
    uint64_t shardSize = 0, totalBytes = 0;
    for (auto& t : all) {
        const uint64_t nb = t.nbytes();
        if (opt.shardBytes > 0 && !shards.back().empty() && shardSize + nb > opt.shardBytes) {
            shards.emplace_back();
            shardSize = 0;
        }
        shardSize += nb;
        totalBytes += nb;
        shards.back().push_back(std::move(t));
    }

    AtomicDir dir(folder, opt.overwrite);
    for (const std::string& stale : dir.swept())
        result.notes.push_back("removed " + stale + ", a partial folder left by an export that was killed");
    const std::string finalDir = dir.finalPath();
    progress.emplace(opt.progress, finalDir, totalElements);
    json weightMap = json::object();
    std::vector<std::pair<std::string, uint64_t>> written;
    for (size_t k = 0; k < shards.size(); ++k) {
        const std::string name = shards.size() == 1 ? "model.safetensors" : shardName(k, shards.size());
        for (const auto& t : shards[k]) {
            weightMap[t.name] = name;
            result.tensors.push_back({t.name, t.shape, std::string(dtypeName(t.dtype)), name, t.nbytes(), {}});
        }
        FileWriter w(dir.partialFile(name), finalDir + "/" + name);
        writeSafetensors(w, std::move(shards[k]), {{"format", "pt"}},
                         [&](const SafetensorsTensor& t) { progress->startTensor("writing " + t.name); });
        w.close();
        written.emplace_back(name, w.written());
    }
    if (shards.size() > 1) {
        const json index{{"metadata", {{"total_size", totalBytes}}}, {"weight_map", weightMap}};
        const std::string text = dumpJson(index, 2) + "\n";
        writeTextFile(dir, "model.safetensors.index.json", text, written);
    }
    {
        const std::string text = dumpJson(config, 2) + "\n";
        writeTextFile(dir, "config.json", text, written);
    }

    // Side files: copied from a Hugging Face source; a generation config made up otherwise.
    const std::string side = sourceSideFolderOf(m);
    bool copiedTokenizer = false, haveGenerationConfig = false;
    if (hfSource) {
        for (const char* name : kCopiedFiles) {
            const fs::path src = fs::path(side) / name;
            std::error_code ec;
            if (!fs::is_regular_file(src, ec))
                continue;
            throwIfCancelledWriting(opt.progress, finalDir);
            const std::string bytes = readWholeFile(src.string());
            writeTextFile(dir, name, bytes, written);
            copiedTokenizer = copiedTokenizer || std::string(name).rfind("tokenizer", 0) == 0;
            haveGenerationConfig = haveGenerationConfig || std::string(name) == "generation_config.json";
        }
    }
    if (!haveGenerationConfig && (m.config.bosId >= 0 || m.config.eosId >= 0)) {
        json gen = json::object();
        if (m.config.bosId >= 0)
            gen["bos_token_id"] = m.config.bosId;
        if (m.config.eosId >= 0)
            gen["eos_token_id"] = m.config.eosId;
        const std::string text = dumpJson(gen, 2) + "\n";
        writeTextFile(dir, "generation_config.json", text, written);
    }
    if (!copiedTokenizer) {
        // A llama2.c tokenizer.bin or a GGUF "llama" vocabulary: written as transformers' LlamaConverter would.
        std::optional<SentencePieceVocab> spm;
        std::string why = "the source has none";
        const bool ggufVocab = m.metadata.is_object() && m.metadata.contains("tokenizer.ggml.tokens");
        if (ggufVocab) {
            spm = sentencePieceVocabFromGguf(m.metadata);
            why = "only SentencePiece-style (\"llama\") GGUF vocabularies are converted to tokenizer.json";
        } else if (!m.tokenizerPath.empty() && fs::path(m.tokenizerPath).extension() == ".bin") {
            spm = sentencePieceVocabFromLlama2c(m.tokenizerPath, m.config.vocab);
        } else if (!m.tokenizerPath.empty()) {
            why = "its tokenizer (" + m.tokenizerPath + ") is not converted to tokenizer.json";
        }
        if (spm) {
            for (const auto& [name, j] : {std::pair{"tokenizer.json", hfTokenizerJson(*spm)},
                                          std::pair{"tokenizer_config.json", hfTokenizerConfig(*spm, m.config.maxPositions)}}) {
                const std::string text = dumpJson(j, 2) + "\n";
                writeTextFile(dir, name, text, written);
            }
            result.notes.push_back(std::string("tokenizer.json written from the source's ")
                                   + (ggufVocab ? "GGUF vocabulary" : "llama2.c tokenizer")
                                   + " (LlamaTokenizerFast, BPE with byte fallback)");
        } else {
            result.notes.push_back("no Hugging Face tokenizer files were written: " + why);
        }
    }
    const std::string requantized = quantizedSourceNote(m);
    if (!requantized.empty())
        result.notes.push_back(requantized);

    throwIfCancelledWriting(opt.progress, finalDir);
    dir.commit();
    if (opt.progress)
        opt.progress->report(1.0, "done");

    for (size_t i = 0; i < plan.tensors.size(); ++i)
        if (overflow[i] > 0)
            result.notes.push_back(plan.tensors[i].name + ": " + std::to_string(overflow[i]) + " values beyond the range of "
                                   + std::string(dtypeName(opt.dtype)) + " became infinite");
    result.path = finalDir;
    for (const auto& [name, bytes] : written) {
        result.files.push_back({finalDir + "/" + name, bytes});
        result.totalBytes += bytes;
    }
    return result;
}

} // namespace ll
