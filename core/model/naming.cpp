#include "model/naming.h"

#include "util/error.h"

#include <algorithm>
#include <regex>

namespace ll {

namespace {

std::string roleSlot(Role role)
{
    switch (role) {
    case Role::Embedding: return "embed";
    case Role::PositionEmbedding: return "pos_embed";
    case Role::EmbedProjIn: return "embed_proj_in";
    case Role::EmbedProjOut: return "embed_proj_out";
    case Role::AttnNorm: return "attn_norm";
    case Role::AttnQ: return "attn.q";
    case Role::AttnK: return "attn.k";
    case Role::AttnV: return "attn.v";
    case Role::AttnO: return "attn.o";
    case Role::MlpNorm: return "mlp_norm";
    case Role::MlpGate: return "mlp.gate";
    case Role::MlpUp: return "mlp.up";
    case Role::MlpDown: return "mlp.down";
    case Role::PostAttnNorm: return "post_attn_norm";
    case Role::PostMlpNorm: return "post_mlp_norm";
    case Role::FinalNorm: return "final_norm";
    case Role::LmHead: return "lm_head";
    case Role::Other: return "other";
    }
    return "other";
}

// Logical shape of a stored tensor (optionally transposed).
std::vector<int64_t> logicalShape(const TensorRef& ref, bool transposed)
{
    if (transposed && ref.shape.size() == 2)
        return {ref.shape[1], ref.shape[0]};
    return ref.shape;
}

void addWhole(Model& m, size_t idx, Role role, int block, bool bias, bool transposed = false)
{
    LogicalTensor t;
    t.role = role;
    t.block = block;
    t.isBias = bias;
    t.stored = idx;
    t.transposed = transposed;
    t.shape = logicalShape(m.stored[idx], transposed);
    t.logicalName = logicalNameOf(role, block, bias);
    m.tensors.push_back(std::move(t));
}

// Splits a fused tensor along its logical first dimension into consecutive parts.
void addParts(Model& m, size_t idx, int block, bool bias, bool transposed,
              const std::vector<std::pair<Role, int64_t>>& parts)
{
    const TensorRef& ref = m.stored[idx];
    std::vector<int64_t> shape = logicalShape(ref, transposed);
    int64_t total = 0;
    for (const auto& p : parts)
        total += p.second;
    if (shape.empty() || shape[0] != total)
        fail(ErrorCode::Malformed, ref.sourceFile,
             "fused tensor '" + ref.name + "' has " + (shape.empty() ? std::string("no") : std::to_string(shape[0]))
                 + " rows, the config implies " + std::to_string(total));
    int64_t offset = 0;
    for (const auto& [role, len] : parts) {
        LogicalTensor t;
        t.role = role;
        t.block = block;
        t.isBias = bias;
        t.stored = idx;
        t.transposed = transposed;
        t.partOffset = offset;
        t.partLength = len;
        t.shape = shape;
        t.shape[0] = len;
        t.logicalName = logicalNameOf(role, block, bias);
        m.tensors.push_back(std::move(t));
        offset += len;
    }
}

struct NameRule {
    const char* suffix; // stored name after the block prefix (or whole name when global)
    Role role;
    bool bias;
};

// Block-level names per family (after "<prefix>.<i>.").
const std::vector<NameRule>& blockRules(Family f)
{
    static const std::vector<NameRule> llama{
        {"input_layernorm.weight", Role::AttnNorm, false},
        {"self_attn.q_proj.weight", Role::AttnQ, false}, {"self_attn.q_proj.bias", Role::AttnQ, true},
        {"self_attn.k_proj.weight", Role::AttnK, false}, {"self_attn.k_proj.bias", Role::AttnK, true},
        {"self_attn.v_proj.weight", Role::AttnV, false}, {"self_attn.v_proj.bias", Role::AttnV, true},
        {"self_attn.o_proj.weight", Role::AttnO, false}, {"self_attn.o_proj.bias", Role::AttnO, true},
        {"post_attention_layernorm.weight", Role::MlpNorm, false},
        // Biases of the MLP: transformers' mlp_bias (FLAP's compensation writes them).
        {"mlp.gate_proj.weight", Role::MlpGate, false}, {"mlp.gate_proj.bias", Role::MlpGate, true},
        {"mlp.up_proj.weight", Role::MlpUp, false}, {"mlp.up_proj.bias", Role::MlpUp, true},
        {"mlp.down_proj.weight", Role::MlpDown, false}, {"mlp.down_proj.bias", Role::MlpDown, true},
        {"self_attn.o_proj.weight", Role::AttnO, false},
    };
    static const std::vector<NameRule> phi3{
        {"input_layernorm.weight", Role::AttnNorm, false},
        {"self_attn.o_proj.weight", Role::AttnO, false},
        {"post_attention_layernorm.weight", Role::MlpNorm, false},
        {"mlp.down_proj.weight", Role::MlpDown, false},
    };
    static const std::vector<NameRule> gpt2{
        {"ln_1.weight", Role::AttnNorm, false}, {"ln_1.bias", Role::AttnNorm, true},
        {"attn.c_proj.weight", Role::AttnO, false}, {"attn.c_proj.bias", Role::AttnO, true},
        {"ln_2.weight", Role::MlpNorm, false}, {"ln_2.bias", Role::MlpNorm, true},
        {"mlp.c_fc.weight", Role::MlpUp, false}, {"mlp.c_fc.bias", Role::MlpUp, true},
        {"mlp.c_proj.weight", Role::MlpDown, false}, {"mlp.c_proj.bias", Role::MlpDown, true},
    };
    static const std::vector<NameRule> opt{
        {"self_attn_layer_norm.weight", Role::AttnNorm, false}, {"self_attn_layer_norm.bias", Role::AttnNorm, true},
        {"self_attn.q_proj.weight", Role::AttnQ, false}, {"self_attn.q_proj.bias", Role::AttnQ, true},
        {"self_attn.k_proj.weight", Role::AttnK, false}, {"self_attn.k_proj.bias", Role::AttnK, true},
        {"self_attn.v_proj.weight", Role::AttnV, false}, {"self_attn.v_proj.bias", Role::AttnV, true},
        {"self_attn.out_proj.weight", Role::AttnO, false}, {"self_attn.out_proj.bias", Role::AttnO, true},
        {"final_layer_norm.weight", Role::MlpNorm, false}, {"final_layer_norm.bias", Role::MlpNorm, true},
        {"fc1.weight", Role::MlpUp, false}, {"fc1.bias", Role::MlpUp, true},
        {"fc2.weight", Role::MlpDown, false}, {"fc2.bias", Role::MlpDown, true},
    };
    static const std::vector<NameRule> neox{
        {"input_layernorm.weight", Role::AttnNorm, false}, {"input_layernorm.bias", Role::AttnNorm, true},
        {"attention.dense.weight", Role::AttnO, false}, {"attention.dense.bias", Role::AttnO, true},
        {"post_attention_layernorm.weight", Role::MlpNorm, false}, {"post_attention_layernorm.bias", Role::MlpNorm, true},
        {"mlp.dense_h_to_4h.weight", Role::MlpUp, false}, {"mlp.dense_h_to_4h.bias", Role::MlpUp, true},
        {"mlp.dense_4h_to_h.weight", Role::MlpDown, false}, {"mlp.dense_4h_to_h.bias", Role::MlpDown, true},
    };
    static const std::vector<NameRule> gemma{
        {"input_layernorm.weight", Role::AttnNorm, false},
        {"self_attn.q_proj.weight", Role::AttnQ, false},
        {"self_attn.k_proj.weight", Role::AttnK, false},
        {"self_attn.v_proj.weight", Role::AttnV, false},
        {"self_attn.o_proj.weight", Role::AttnO, false},
        {"post_attention_layernorm.weight", Role::MlpNorm, false},
        {"pre_feedforward_layernorm.weight", Role::MlpNorm, false},
        {"post_feedforward_layernorm.weight", Role::PostMlpNorm, false},
        {"mlp.gate_proj.weight", Role::MlpGate, false},
        {"mlp.up_proj.weight", Role::MlpUp, false},
        {"mlp.down_proj.weight", Role::MlpDown, false},
    };
    switch (f) {
    case Family::Phi3: return phi3;
    case Family::Gpt2: return gpt2;
    case Family::Opt: return opt;
    case Family::GptNeoX: return neox;
    case Family::Gemma: return gemma;
    default: return llama;
    }
}

struct GlobalRule {
    const char* name;
    Role role;
    bool bias;
};

const std::vector<GlobalRule>& globalRules()
{
    static const std::vector<GlobalRule> rules{
        // llama / mistral / qwen2 / gemma / phi3
        {"model.embed_tokens.weight", Role::Embedding, false},
        {"model.norm.weight", Role::FinalNorm, false},
        {"lm_head.weight", Role::LmHead, false},
        {"lm_head.bias", Role::LmHead, true},
        // gpt2 (with or without the "transformer." prefix)
        {"wte.weight", Role::Embedding, false},
        {"wpe.weight", Role::PositionEmbedding, false},
        {"ln_f.weight", Role::FinalNorm, false},
        {"ln_f.bias", Role::FinalNorm, true},
        // opt
        {"model.decoder.embed_tokens.weight", Role::Embedding, false},
        {"model.decoder.embed_positions.weight", Role::PositionEmbedding, false},
        {"model.decoder.final_layer_norm.weight", Role::FinalNorm, false},
        {"model.decoder.final_layer_norm.bias", Role::FinalNorm, true},
        {"model.decoder.project_in.weight", Role::EmbedProjIn, false},
        {"model.decoder.project_out.weight", Role::EmbedProjOut, false},
        // gpt_neox
        {"gpt_neox.embed_in.weight", Role::Embedding, false},
        {"gpt_neox.final_layer_norm.weight", Role::FinalNorm, false},
        {"gpt_neox.final_layer_norm.bias", Role::FinalNorm, true},
        {"embed_out.weight", Role::LmHead, false},
    };
    return rules;
}

bool stripPrefix(std::string& s, std::string_view prefix)
{
    if (s.rfind(prefix, 0) != 0)
        return false;
    s.erase(0, prefix.size());
    return true;
}

// Handles the fused tensors of one block. Returns true when `rest` was one.
bool mapFused(Model& m, size_t idx, int block, const std::string& rest)
{
    const ModelConfig& c = m.config;
    const int64_t qRows = c.heads * c.headDim;
    const int64_t kvRows = c.kvHeads * c.headDim;
    const bool bias = rest.size() > 5 && rest.compare(rest.size() - 5, 5, ".bias") == 0;
    if (c.family == Family::Gpt2 && (rest == "attn.c_attn.weight" || rest == "attn.c_attn.bias")) {
        addParts(m, idx, block, bias, !bias,
                 {{Role::AttnQ, c.hidden}, {Role::AttnK, c.hidden}, {Role::AttnV, c.hidden}});
        return true;
    }
    if (c.family == Family::Phi3 && rest == "self_attn.qkv_proj.weight") {
        addParts(m, idx, block, false, false, {{Role::AttnQ, qRows}, {Role::AttnK, kvRows}, {Role::AttnV, kvRows}});
        return true;
    }
    if (c.family == Family::Phi3 && rest == "mlp.gate_up_proj.weight") {
        addParts(m, idx, block, false, false, {{Role::MlpGate, c.intermediate}, {Role::MlpUp, c.intermediate}});
        return true;
    }
    if (c.family == Family::GptNeoX && (rest == "attention.query_key_value.weight" || rest == "attention.query_key_value.bias")) {
        // GPT-NeoX interleaves per head: rows [q_h, k_h, v_h] for each head h.
        const int64_t hd = c.headDim;
        addParts(m, idx, block, bias, false,
                 {{Role::AttnQ, c.heads * hd}, {Role::AttnK, c.heads * hd}, {Role::AttnV, c.heads * hd}});
        for (int k = 0; k < 3; ++k) {
            LogicalTensor& t = m.tensors[m.tensors.size() - 3 + k];
            t.partOffset = k * hd;
            t.partGroupRows = hd;
            t.partGroupStride = 3 * hd;
        }
        return true;
    }
    return false;
}

} // namespace

std::string logicalNameOf(Role role, int block, bool bias)
{
    std::string name = block >= 0 ? "blocks." + std::to_string(block) + "." : std::string();
    name += roleSlot(role);
    name += bias ? ".bias" : ".weight";
    return name;
}

void mapHfNames(Model& m)
{
    static const std::regex blockRe(R"(^(?:model\.layers|model\.decoder\.layers|transformer\.h|h|gpt_neox\.layers|layers)\.(\d+)\.(.+)$)");
    m.tensors.clear();
    const bool conv1d = m.config.family == Family::Gpt2;
    for (size_t i = 0; i < m.stored.size(); ++i) {
        std::string name = m.stored[i].name;
        std::smatch match;
        if (std::regex_match(name, match, blockRe)) {
            const int block = std::stoi(match[1].str());
            const std::string rest = match[2].str();
            if (mapFused(m, i, block, rest))
                continue;
            bool found = false;
            for (const auto& rule : blockRules(m.config.family)) {
                if (rest == rule.suffix) {
                    // GPT-2 Conv1D stores (in, out); show (out, in) like every other linear.
                    addWhole(m, i, rule.role, block, rule.bias, conv1d && !rule.bias && isLinear(rule.role));
                    found = true;
                    break;
                }
            }
            if (!found) {
                addWhole(m, i, Role::Other, block, false);
                m.tensors.back().logicalName = "blocks." + std::to_string(block) + "." + rest;
            }
            continue;
        }
        stripPrefix(name, "transformer.");
        bool found = false;
        for (const auto& rule : globalRules()) {
            if (name == rule.name) {
                addWhole(m, i, rule.role, -1, rule.bias);
                found = true;
                break;
            }
        }
        if (!found) {
            addWhole(m, i, Role::Other, -1, false);
            m.tensors.back().logicalName = m.stored[i].name;
        }
    }
    addTiedHeadIfMissing(m);
    sortLogical(m);
}

std::string ggufNameOf(const LogicalTensor& t)
{
    const std::string suffix = t.isBias ? ".bias" : ".weight";
    const std::string block = "blk." + std::to_string(t.block) + ".";
    switch (t.role) {
    case Role::Embedding: return t.isBias ? "" : "token_embd.weight";
    case Role::FinalNorm: return "output_norm" + suffix;
    case Role::LmHead: return "output" + suffix;
    case Role::AttnNorm: return block + "attn_norm" + suffix;
    case Role::MlpNorm: return block + "ffn_norm" + suffix;
    case Role::AttnQ: return block + "attn_q" + suffix;
    case Role::AttnK: return block + "attn_k" + suffix;
    case Role::AttnV: return block + "attn_v" + suffix;
    case Role::AttnO: return block + "attn_output" + suffix;
    case Role::MlpGate: return block + "ffn_gate" + suffix;
    case Role::MlpUp: return block + "ffn_up" + suffix;
    case Role::MlpDown: return block + "ffn_down" + suffix;
    default: return "";
    }
}

void mapGgufNames(Model& m)
{
    static const std::regex blockRe(R"(^blk\.(\d+)\.(.+)$)");
    static const std::vector<NameRule> blockNames{
        {"attn_norm.weight", Role::AttnNorm, false}, {"attn_norm.bias", Role::AttnNorm, true},
        {"attn_q.weight", Role::AttnQ, false}, {"attn_q.bias", Role::AttnQ, true},
        {"attn_k.weight", Role::AttnK, false}, {"attn_k.bias", Role::AttnK, true},
        {"attn_v.weight", Role::AttnV, false}, {"attn_v.bias", Role::AttnV, true},
        {"attn_output.weight", Role::AttnO, false}, {"attn_output.bias", Role::AttnO, true},
        {"ffn_norm.weight", Role::MlpNorm, false}, {"ffn_norm.bias", Role::MlpNorm, true},
        {"ffn_gate.weight", Role::MlpGate, false}, {"ffn_gate.bias", Role::MlpGate, true},
        {"ffn_up.weight", Role::MlpUp, false}, {"ffn_up.bias", Role::MlpUp, true},
        {"ffn_down.weight", Role::MlpDown, false}, {"ffn_down.bias", Role::MlpDown, true},
        {"post_attention_norm.weight", Role::PostAttnNorm, false},
        {"post_ffw_norm.weight", Role::PostMlpNorm, false},
    };
    static const std::vector<GlobalRule> globalNames{
        {"token_embd.weight", Role::Embedding, false},
        {"position_embd.weight", Role::PositionEmbedding, false},
        {"output_norm.weight", Role::FinalNorm, false},
        {"output_norm.bias", Role::FinalNorm, true},
        {"output.weight", Role::LmHead, false},
    };
    m.tensors.clear();
    const ModelConfig& c = m.config;
    for (size_t i = 0; i < m.stored.size(); ++i) {
        const std::string& name = m.stored[i].name;
        std::smatch match;
        if (std::regex_match(name, match, blockRe)) {
            const int block = std::stoi(match[1].str());
            const std::string rest = match[2].str();
            if (rest == "attn_qkv.weight" || rest == "attn_qkv.bias") {
                const bool bias = rest.back() == 's';
                addParts(m, i, block, bias, false,
                         {{Role::AttnQ, c.heads * c.headDim}, {Role::AttnK, c.kvHeads * c.headDim},
                          {Role::AttnV, c.kvHeads * c.headDim}});
                continue;
            }
            if (c.family == Family::Phi3 && rest == "ffn_up.weight") {
                // llama.cpp keeps Phi-3's fused gate_up in ffn_up: gate rows first, then up.
                addParts(m, i, block, false, false, {{Role::MlpGate, c.intermediate}, {Role::MlpUp, c.intermediate}});
                continue;
            }
            bool found = false;
            for (const auto& rule : blockNames) {
                if (rest == rule.suffix) {
                    addWhole(m, i, rule.role, block, rule.bias);
                    found = true;
                    break;
                }
            }
            if (!found) {
                addWhole(m, i, Role::Other, block, false);
                m.tensors.back().logicalName = "blocks." + std::to_string(block) + "." + rest;
            }
            continue;
        }
        bool found = false;
        for (const auto& rule : globalNames) {
            if (name == rule.name) {
                addWhole(m, i, rule.role, -1, rule.bias);
                found = true;
                break;
            }
        }
        if (!found) {
            addWhole(m, i, Role::Other, -1, false);
            m.tensors.back().logicalName = name;
        }
    }
    addTiedHeadIfMissing(m);
    sortLogical(m);
}

namespace {
// Tree order: embeddings, blocks in order (norm, attention, norm, MLP), final norm, head.
int roleRank(const LogicalTensor& t)
{
    if (t.block < 0) {
        switch (t.role) {
        case Role::Embedding: return 0;
        case Role::PositionEmbedding: return 1;
        case Role::EmbedProjIn: return 2;
        case Role::EmbedProjOut: return 1000;
        case Role::FinalNorm: return 1001;
        case Role::LmHead: return 1002;
        default: return 1003;
        }
    }
    return 10 + static_cast<int>(t.role);
}
} // namespace

void sortLogical(Model& m)
{
    std::stable_sort(m.tensors.begin(), m.tensors.end(), [](const LogicalTensor& a, const LogicalTensor& b) {
        const bool ag = a.block < 0 && roleRank(a) < 10, bg = b.block < 0 && roleRank(b) < 10;
        const int ab = ag ? -1 : (a.block < 0 ? 1 << 30 : a.block);
        const int bb = bg ? -1 : (b.block < 0 ? 1 << 30 : b.block);
        if (ab != bb)
            return ab < bb;
        if (roleRank(a) != roleRank(b))
            return roleRank(a) < roleRank(b);
        return a.isBias < b.isBias;
    });
}

void addTiedHeadIfMissing(Model& m)
{
    if (m.find(-1, Role::LmHead))
        return;
    const LogicalTensor* embed = m.find(-1, Role::Embedding);
    if (!embed)
        return;
    LogicalTensor head = *embed;
    head.role = Role::LmHead;
    head.logicalName = logicalNameOf(Role::LmHead, -1, false);
    head.tied = true;
    m.tensors.push_back(std::move(head));
    m.config.tiedEmbeddings = true;
}

} // namespace ll
