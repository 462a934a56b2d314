#pragma once
// Maps the tensor names of each file convention to LayerLab's logical names:
//   embed.weight, pos_embed.weight, blocks.{i}.attn_norm.weight,
//   blocks.{i}.attn.{q,k,v,o}.{weight,bias}, blocks.{i}.mlp_norm.weight,
//   blocks.{i}.mlp.{gate,up,down}.{weight,bias}, final_norm.weight, lm_head.weight
#include "model/model.h"

#include <string>

namespace ll {

std::string logicalNameOf(Role role, int block, bool bias);

// llama.cpp's name of a logical tensor (LLM_TENSOR_NAMES for LLM_ARCH_LLAMA:
// "blk.3.attn_q.weight", "token_embd.weight"); empty for roles it has no name for.
std::string ggufNameOf(const LogicalTensor& t);

// Builds Model::tensors from Model::stored for Hugging Face names of every
// supported family (fused GPT-2 c_attn, GPT-NeoX query_key_value, Phi-3
// qkv_proj / gate_up_proj split into parts). Needs Model::config filled.
void mapHfNames(Model& m);

// Same for llama.cpp's GGUF names (token_embd, blk.N.attn_q, ffn_gate, output...).
void mapGgufNames(Model& m);

// Orders Model::tensors as the tree shows them: embeddings, blocks, final norm, head.
void sortLogical(Model& m);

// Adds a tied LM head when the model has none (tied embeddings).
void addTiedHeadIfMissing(Model& m);

} // namespace ll
