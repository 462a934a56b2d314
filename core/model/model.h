#pragma once
// The in-memory description of an opened checkpoint: its configuration, the
// tensors as stored in the file(s), and the logical view that the rest of
// LayerLab works with (the same names for every family, fused tensors split).
#include "model/dtype.h"
#include "model/packed_grid.h"
#include "model/sparse_rows.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ll {

class MappedFile;

enum class Family { Llama, Mistral, Qwen2, Gemma, Phi3, Gpt2, Opt, GptNeoX, Unknown };
std::string_view familyName(Family f);
std::optional<Family> familyFromModelType(std::string_view modelType);

enum class Activation { Silu, GeluTanh, Gelu, Relu };

struct ModelConfig {
    Family family = Family::Unknown;
    std::string modelType;      // as the file names it ("llama", "gpt2", ...)
    int64_t hidden = 0;         // d_model
    int64_t intermediate = 0;   // FFN width
    int64_t layers = 0;
    int64_t heads = 0;
    int64_t kvHeads = 0;
    int64_t headDim = 0;
    int64_t vocab = 0;
    int64_t maxPositions = 0;
    double normEps = 1e-5;
    double ropeTheta = 10000.0;
    double partialRotary = 1.0;       // fraction of head_dim that is rotated (gpt_neox, phi)
    bool ropeInterleaved = false;     // true: pairs (2i, 2i+1) as in GGUF/llama2.c; false: HF rotate_half
    bool tiedEmbeddings = false;
    Activation activation = Activation::Silu;
    // Family specifics.
    bool parallelResidual = false;    // gpt_neox
    bool normBefore = true;           // opt do_layer_norm_before
    int64_t wordEmbedProjDim = 0;     // opt
    int64_t positionOffset = 0;       // opt learned positions start at 2
    bool attentionBias = false;       // qwen2 q/k/v, gpt2, opt
    int64_t bosId = -1, eosId = -1;
    bool synthetic = false;           // generated demo model, not a real checkpoint
    // QuaRot's online rotation of down_proj's input (a rotate step with online:
    // true): the engine multiplies that input by RandomHadamard(intermediate,
    // seed) (kernels/hadamard.h) before down_proj. No file format can say
    // this, so exports refuse such a model.
    std::optional<uint64_t> onlineDownRotation;
};

// Where a tensor's bytes live: a mapped file (lazy) or an owned buffer (generated / edited data).
struct TensorRef {
    std::string name;            // as stored in the file
    std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order; GGUF dims reversed)
    DType dtype = DType::Unknown;
    std::string dtypeLabel;      // the file's own type name, kept for unknown types
    std::string sourceFile;      // file the tensor lives in (shards differ)
    uint64_t nbytes = 0;
    const uint8_t* data = nullptr;        // nullptr when the type cannot be located
    std::shared_ptr<const void> keepAlive; // the mapping or buffer that owns `data`
    bool edited = false;         // values produced by LayerLab (replaceTensor), not from the source
    std::shared_ptr<const GridLayout> grid; // DType::Grid: the layout of every row (shape {rows, cols})
    std::shared_ptr<const SparseLayout> sparse; // DType::Sparse: the layout of every row (shape {rows, cols})

    int64_t elements() const;
};

// Logical role of a tensor, whatever the file calls it.
enum class Role {
    Embedding, PositionEmbedding, EmbedProjIn, EmbedProjOut,
    AttnNorm, AttnQ, AttnK, AttnV, AttnO,
    MlpNorm, MlpGate, MlpUp, MlpDown,
    PostAttnNorm, PostMlpNorm,  // gemma2-style extra norms, opt post-norm
    FinalNorm, LmHead, Other,
};
std::string_view roleName(Role r);
bool isLinear(Role r);

// A part of a stored tensor seen as one logical tensor (fused qkv / gate_up split, Conv1D transposed).
struct LogicalTensor {
    std::string logicalName;     // "blocks.0.attn.q.weight", "embed.weight", "lm_head.weight"
    Role role = Role::Other;
    int block = -1;              // -1 outside the blocks
    bool isBias = false;
    size_t stored = 0;           // index into Model::stored
    std::vector<int64_t> shape;  // logical shape (out, in) for matrices
    // Part of the stored tensor: rows [partOffset, partOffset+partLength) of the
    // logical (transposed if needed) matrix. partLength == 0: the whole tensor.
    int64_t partOffset = 0;
    int64_t partLength = 0;
    // Strided parts (GPT-NeoX's per-head interleaved qkv): logical row r is
    // stored row (r / partGroupRows) * partGroupStride + partOffset + r % partGroupRows.
    int64_t partGroupRows = 0;   // 0 = contiguous rows
    int64_t partGroupStride = 0;
    bool transposed = false;     // stored (in, out) as GPT-2's Conv1D
    bool tied = false;           // shares the stored tensor of another logical tensor
    // Edited values: index into Model::stored of a tensor in the logical shape
    // (F32, F16, BF16, a ggml type, a packed Grid or Sparse rows) that replaces
    // the file's values (-1: the file's values). The fields
    // above keep describing where the tensor lives in the source file, so that
    // exporters can rebuild fused or transposed layouts.
    int64_t replacedBy = -1;
    // Low-rank factors: indices into Model::stored of tensors A (out, k) and
    // B (k, in) (-1: none). Alone (replaceTensorFactored, replacedBy -1) their
    // product A B is the value; beside replacedBy (replaceTensorCorrected: LoRC,
    // EoRA) it corrects the replaced values, W^ + A B. readLogical returns the value.
    int64_t factorA = -1;
    int64_t factorB = -1;

    int64_t elements() const;
    bool hasFactors() const { return factorA >= 0; }
    bool factored() const { return factorA >= 0 && replacedBy < 0; }  // the value is A B
    bool corrected() const { return factorA >= 0 && replacedBy >= 0; } // the value is replaced + A B
    // The values are LayerLab's, not the file's (replaced or factored).
    bool edited() const { return replacedBy >= 0 || factorA >= 0; }
    // Row of the (transposed if needed) stored matrix that holds logical row r.
    int64_t storedRow(int64_t r) const
    {
        if (partGroupRows > 0)
            return (r / partGroupRows) * partGroupStride + partOffset + r % partGroupRows;
        return partOffset + r;
    }
};

class Model {
public:
    std::string path;            // file or folder the user opened
    std::string format;          // "safetensors", "gguf", "llama2c", "synthetic"
    ModelConfig config;
    std::vector<TensorRef> stored;
    std::vector<LogicalTensor> tensors;
    nlohmann::json metadata;     // GGUF key/values, HF config.json, ... (for display and tokenizers)
    std::string tokenizerPath;   // tokenizer file found beside the model, if any
    std::vector<std::shared_ptr<const MappedFile>> files;

    // Parameters of all logical tensors (a tied head counts, as in the computation;
    // a factored tensor counts k (out + in), the values of its factors).
    int64_t parameterCount() const;
    // The same with a tied head counted once, as transformers' num_parameters()
    // reports a model (Llama-3.2-1B: 1.24 B, not 1.50 B): what the user is shown.
    int64_t uniqueParameterCount() const;
    // Parameters of the stored tensors (each stored tensor once).
    int64_t storedParameterCount() const;
    uint64_t storedBytes() const;
    // "F32 88 %, Q4_K 12 %": share of stored bytes by type.
    std::map<std::string, uint64_t> bytesByDType() const;

    const LogicalTensor* findLogical(std::string_view logicalName) const;
    const LogicalTensor* find(int block, Role role, bool bias = false) const;
    // By stored name; for fused tensors, the first part.
    const LogicalTensor* findByStoredName(std::string_view name) const;
    const TensorRef& storedOf(const LogicalTensor& t) const { return stored.at(t.stored); }
};

// Replaces a logical tensor's values with `values` (row-major, rows x cols =
// its new logical shape; shapes may shrink for structured pruning). The model
// keeps its source mapping; the new values live in an owned buffer. A tied
// head or embedding is untied: only the named tensor changes.
void replaceTensor(Model& m, const std::string& logicalName, std::vector<float> values, std::vector<int64_t> shape);

// Replaces a logical tensor's values with a tensor LayerLab built in memory in
// any type the engine reads (F32, F16, BF16, a ggml block type, a packed Grid):
// `stored` holds the bytes (keepAlive), its shape is the new logical shape.
// Compressed layers stay compressed this way (quant/packed_storage.h).
void replaceTensorStored(Model& m, const std::string& logicalName, TensorRef stored);

// Replaces a 2-D logical tensor by two factors whose product is its new value:
// a = A (out, rank), b = B (rank, in), row-major; the logical shape becomes
// (out, in). Both live in owned F32 buffers (see factorA / factorB); the
// engine computes with them and parameterCount() counts rank (out + in).
// replaceTensor on a factored tensor makes it dense again. (tensor_data.h has
// the same with MatrixRM factors.)
void replaceTensorFactored(Model& m, const std::string& logicalName, std::vector<float> a, std::vector<float> b,
                           int64_t out, int64_t rank, int64_t in);

// Replaces a 2-D logical tensor's values by base + A B: a quantized layer and
// a low-rank correction of its error (LoRC, EoRA), each kept in its own form.
// base (out, in), a (out, k) and b (k, in) are tensors in any type the engine
// reads, as replaceTensorStored takes them; the engine computes W x + A (B x).
// replaceTensor / replaceTensorStored on a corrected tensor drop the factors.
void replaceTensorCorrected(Model& m, const std::string& logicalName, TensorRef base, TensorRef a, TensorRef b);

} // namespace ll
