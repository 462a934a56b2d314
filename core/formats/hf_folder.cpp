#include "formats/hf_folder.h"

#include "formats/safetensors.h"
#include "model/naming.h"
#include "util/error.h"
#include "util/json_util.h"

#include <algorithm>
#include <filesystem>
#include <set>

namespace ll {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 24;

Activation activationFrom(const std::string& name, const std::string& file)
{
    if (name == "silu" || name == "swish") return Activation::Silu;
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast" || name == "gelu_tanh") return Activation::GeluTanh;
    if (name == "gelu") return Activation::Gelu;
    if (name == "relu") return Activation::Relu;
    fail(ErrorCode::UnsupportedArch, file, "activation \"" + name + "\" is not supported");
}

double ropeThetaOf(const nlohmann::json& c, double fallback, const std::string& file)
{
    // transformers 5 moved rope_theta into rope_parameters.
    if (c.contains("rope_parameters") && c["rope_parameters"].is_object())
        return jsonNumber(c["rope_parameters"], "rope_theta", fallback, file);
    return jsonNumber(c, "rope_theta", fallback, file);
}

std::vector<std::string> shardFiles(const fs::path& dir)
{
    const fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(index)) {
        const nlohmann::json j = readJsonFile(index.string());
        if (!j.contains("weight_map") || !j["weight_map"].is_object())
            fail(ErrorCode::Malformed, index.string(), "missing \"weight_map\" object");
        std::set<std::string> shards;
        for (const auto& [tensor, file] : j["weight_map"].items()) {
            if (!file.is_string())
                fail(ErrorCode::Malformed, index.string(), "weight_map entry for '" + tensor + "' is not a file name");
            const std::string f = file.get<std::string>();
            // A NUL would cut the name short at open(); '/' or ".." would leave the folder.
            const bool control = std::any_of(f.begin(), f.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
            if (f.empty() || control || f.find('/') != std::string::npos || f.find("..") != std::string::npos)
                fail(ErrorCode::Malformed, index.string(),
                     "shard name '" + f + "' of '" + tensor + "' must be a plain file name (no '/', '..' or control characters)");
            shards.insert(f);
        }
        std::vector<std::string> out;
        for (const auto& s : shards)
            out.push_back((dir / s).string());
        return out;
    }
    if (fs::exists(dir / "model.safetensors"))
        return {(dir / "model.safetensors").string()};
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".safetensors" && e.path().filename().string().find("reference") == std::string::npos)
            out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    if (out.empty()) {
        if (fs::exists(dir / "pytorch_model.bin"))
            fail(ErrorCode::UnsupportedDType, dir.string(),
                 "holds only PyTorch pickle weights (pytorch_model.bin); re-save the model with safetensors");
        fail(ErrorCode::NotFound, dir.string(), "no .safetensors weights in this folder");
    }
    return out;
}

} // namespace

ModelConfig parseHfConfig(const nlohmann::json& c, const std::string& path)
{
    if (!c.is_object())
        fail(ErrorCode::Malformed, path, "config is not a JSON object");
    ModelConfig m;
    m.modelType = jsonString(c, "model_type", "", path);
    if (m.modelType.empty())
        fail(ErrorCode::UnsupportedArch, path, "config.json has no \"model_type\"");
    const auto family = familyFromModelType(m.modelType);
    if (!family)
        fail(ErrorCode::UnsupportedArch, path,
             "model type \"" + m.modelType + "\" is not supported (supported: llama, mistral, qwen2, gemma, phi3, gpt2, opt, gpt_neox)");
    m.family = *family;
    m.bosId = jsonInt(c, "bos_token_id", -1, -1, kMaxDim * 64, path);
    m.eosId = c.contains("eos_token_id") && c["eos_token_id"].is_array() ? -1
                                                                         : jsonInt(c, "eos_token_id", -1, -1, kMaxDim * 64, path);
    m.vocab = jsonInt(c, "vocab_size", 0, 1, kMaxDim * 64, path);

    switch (m.family) {
    case Family::Gpt2:
        m.hidden = jsonInt(c, "n_embd", 0, 1, kMaxDim, path);
        m.intermediate = jsonInt(c, "n_inner", 4 * m.hidden, 1, kMaxDim, path);
        m.layers = jsonInt(c, "n_layer", 0, 1, 100000, path);
        m.heads = jsonInt(c, "n_head", 0, 1, kMaxDim, path);
        m.maxPositions = jsonInt(c, "n_positions", 1024, 1, kMaxDim * 64, path);
        m.normEps = jsonNumber(c, "layer_norm_epsilon", 1e-5, path);
        m.activation = activationFrom(jsonString(c, "activation_function", "gelu_new", path), path);
        m.tiedEmbeddings = jsonBool(c, "tie_word_embeddings", true, path);
        m.attentionBias = true;
        break;
    case Family::Opt:
        m.hidden = jsonInt(c, "hidden_size", 0, 1, kMaxDim, path);
        m.intermediate = jsonInt(c, "ffn_dim", 4 * m.hidden, 1, kMaxDim, path);
        m.layers = jsonInt(c, "num_hidden_layers", 0, 1, 100000, path);
        m.heads = jsonInt(c, "num_attention_heads", 0, 1, kMaxDim, path);
        m.maxPositions = jsonInt(c, "max_position_embeddings", 2048, 1, kMaxDim * 64, path);
        m.activation = activationFrom(jsonString(c, "activation_function", "relu", path), path);
        m.wordEmbedProjDim = jsonInt(c, "word_embed_proj_dim", m.hidden, 1, kMaxDim, path);
        m.normBefore = jsonBool(c, "do_layer_norm_before", true, path);
        m.positionOffset = 2;
        m.normEps = 1e-5;
        m.tiedEmbeddings = jsonBool(c, "tie_word_embeddings", true, path);
        m.attentionBias = jsonBool(c, "enable_bias", true, path);
        break;
    case Family::GptNeoX:
        m.hidden = jsonInt(c, "hidden_size", 0, 1, kMaxDim, path);
        m.intermediate = jsonInt(c, "intermediate_size", 4 * m.hidden, 1, kMaxDim, path);
        m.layers = jsonInt(c, "num_hidden_layers", 0, 1, 100000, path);
        m.heads = jsonInt(c, "num_attention_heads", 0, 1, kMaxDim, path);
        m.maxPositions = jsonInt(c, "max_position_embeddings", 2048, 1, kMaxDim * 64, path);
        m.normEps = jsonNumber(c, "layer_norm_eps", 1e-5, path);
        m.activation = activationFrom(jsonString(c, "hidden_act", "gelu", path), path);
        m.partialRotary = c.contains("rope_parameters") && c["rope_parameters"].is_object()
            ? jsonNumber(c["rope_parameters"], "partial_rotary_factor", jsonNumber(c, "rotary_pct", 0.25, path), path)
            : jsonNumber(c, "partial_rotary_factor", jsonNumber(c, "rotary_pct", 0.25, path), path);
        m.ropeTheta = ropeThetaOf(c, jsonNumber(c, "rotary_emb_base", 10000.0, path), path);
        m.parallelResidual = jsonBool(c, "use_parallel_residual", true, path);
        m.tiedEmbeddings = jsonBool(c, "tie_word_embeddings", false, path);
        m.attentionBias = true;
        break;
    default: // llama, mistral, qwen2, gemma, phi3
        m.hidden = jsonInt(c, "hidden_size", 0, 1, kMaxDim, path);
        m.intermediate = jsonInt(c, "intermediate_size", 0, 1, kMaxDim, path);
        m.layers = jsonInt(c, "num_hidden_layers", 0, 1, 100000, path);
        m.heads = jsonInt(c, "num_attention_heads", 0, 1, kMaxDim, path);
        m.maxPositions = jsonInt(c, "max_position_embeddings", 2048, 1, kMaxDim * 64, path);
        m.normEps = jsonNumber(c, "rms_norm_eps", 1e-6, path);
        m.ropeTheta = ropeThetaOf(c, 10000.0, path);
        m.partialRotary = jsonNumber(c, "partial_rotary_factor", 1.0, path);
        m.activation = activationFrom(
            jsonString(c, "hidden_activation", jsonString(c, "hidden_act", m.family == Family::Gemma ? "gelu_pytorch_tanh" : "silu", path), path),
            path);
        m.tiedEmbeddings = jsonBool(c, "tie_word_embeddings", m.family == Family::Gemma, path);
        m.attentionBias = m.family == Family::Qwen2 || jsonBool(c, "attention_bias", false, path);
        break;
    }
    if (m.hidden <= 0 || m.layers <= 0 || m.heads <= 0)
        fail(ErrorCode::Malformed, path, "config.json lacks the hidden size, the layer count or the head count");
    m.kvHeads = jsonInt(c, "num_key_value_heads", m.heads, 1, m.heads, path);
    if (m.heads % m.kvHeads != 0)
        fail(ErrorCode::Malformed, path,
             std::to_string(m.heads) + " attention heads cannot be grouped over " + std::to_string(m.kvHeads) + " key/value heads");
    m.headDim = jsonInt(c, "head_dim", m.hidden / m.heads, 1, kMaxDim, path);
    if (!c.contains("head_dim") && m.hidden % m.heads != 0)
        fail(ErrorCode::Malformed, path, "hidden size is not a multiple of the head count");
    if (!(m.normEps > 0.0 && m.normEps < 1.0))
        fail(ErrorCode::Malformed, path, "norm epsilon must be in (0, 1)");
    return m;
}

std::unique_ptr<Model> openHfFolder(const std::string& path)
{
    auto model = std::make_unique<Model>();
    model->path = path;
    model->format = "safetensors";
    const bool isDir = fs::is_directory(path);
    const fs::path dir = isDir ? fs::path(path) : fs::path(path).parent_path();
    const fs::path configPath = (dir.empty() ? fs::path(".") : dir) / "config.json";

    if (fs::exists(configPath)) {
        model->metadata = readJsonFile(configPath.string());
        model->config = parseHfConfig(model->metadata, configPath.string());
    } else if (isDir) {
        fail(ErrorCode::NotFound, path, "no config.json in this folder");
    }
    // A lone .safetensors without config.json still opens: tensors are listed by their stored names.

    const std::vector<std::string> files = isDir ? shardFiles(dir) : std::vector<std::string>{path};
    std::set<std::string> names;
    for (const auto& file : files) {
        SafetensorsFile st = readSafetensors(file);
        model->files.push_back(st.file);
        for (auto& t : st.tensors) {
            if (!names.insert(t.name).second)
                fail(ErrorCode::Malformed, file, "tensor '" + t.name + "' appears in more than one shard");
            model->stored.push_back(std::move(t));
        }
    }
    if (fs::exists(dir / "tokenizer.json"))
        model->tokenizerPath = (dir / "tokenizer.json").string();

    if (model->config.family == Family::Unknown) {
        for (size_t i = 0; i < model->stored.size(); ++i) {
            LogicalTensor t;
            t.logicalName = model->stored[i].name;
            t.stored = i;
            t.shape = model->stored[i].shape;
            model->tensors.push_back(std::move(t));
        }
        return model;
    }
    mapHfNames(*model);
    return model;
}

} // namespace ll
