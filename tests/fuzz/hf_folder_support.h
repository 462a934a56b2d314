#pragma once
// The folder the config and index harnesses put their input in: a llama of
// one block, hidden 8, 2 heads of 4, MLP 16, vocabulary 16, in F32 shards.
#include "fuzz_support.h"
#include "formats/open_model.h"


namespace ll::fuzz {

inline const char* kTinyLlamaConfig = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
 "hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 2,
 "num_hidden_layers": 1, "vocab_size": 16, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
 "max_position_embeddings": 32, "tie_word_embeddings": false})";

using TensorList = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// Two shards, as the index seed names them.
inline const TensorList& tinyShard(int which)
{
    static const TensorList first = {{"model.embed_tokens.weight", {16, 8}},
                                     {"model.layers.0.input_layernorm.weight", {8}},
                                     {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
                                     {"model.layers.0.self_attn.k_proj.weight", {8, 8}},
                                     {"model.layers.0.self_attn.v_proj.weight", {8, 8}},
                                     {"model.layers.0.self_attn.o_proj.weight", {8, 8}}};
    static const TensorList second = {{"model.layers.0.post_attention_layernorm.weight", {8}},
                                      {"model.layers.0.mlp.gate_proj.weight", {16, 8}},
                                      {"model.layers.0.mlp.up_proj.weight", {16, 8}},
                                      {"model.layers.0.mlp.down_proj.weight", {8, 16}},
                                      {"model.norm.weight", {8}},
                                      {"lm_head.weight", {16, 8}}};
    return which == 0 ? first : second;
}

// The opened folder run as a user runs it: values, then a forward pass.
inline void exerciseFolder(const std::string& dir)
{
    const std::unique_ptr<Model> model = openModel(dir);
    exerciseModel(*model);
    exerciseForward(*model);
}

} // namespace ll::fuzz
