#pragma once
// The forward pass of a decoder-only transformer (llama, mistral, qwen2, gemma,
// phi3, gpt2, opt, gpt_neox) in F32, whatever the checkpoint's stored types.
//
// Rows are tokens. A batch is several windows of equal length laid end to end,
// so every linear is one matrix product X (windows * T, in) @ W^T; attention is
// causal within each window. Const methods are safe to call from several
// threads at once; replacing weights is not (do it between evaluations).
#include "engine/architecture.h"
#include "engine/kernels.h"
#include "engine/kv_quant.h"
#include "engine/weights.h"
#include "kernels/hadamard.h"
#include "model/model.h"

#include <Eigen/Core>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace ll {

class Progress;
class Session;

// Keys and values of the positions seen so far, per layer (rows = positions).
struct KvCache {
    std::vector<MatrixRM> k, v;   // per layer (capacity, kvHeads * headDim)
    int64_t length = 0;           // positions filled
};

// Sees the input of the linears as the forward pass computes it (calibration
// statistics for GPTQ, Wanda, SparseGPT). Once per distinct input: AttnQ
// (also the input of AttnK and AttnV), AttnO, MlpUp (also MlpGate), MlpDown.
// When windows run as parallel groups it is called from several threads at
// once, each with its own rows: implementations must synchronise.
class LinearInputObserver {
public:
    virtual ~LinearInputObserver() = default;
    virtual void linearInput(int block, Role role, const ConstMatrixRef& x) = 0;
};

// Rewrites a linear's input rows in place right before its matrix products
// (activation quantization: SmoothQuant W8A8, LLM.int8). Called at the same
// points as LinearInputObserver (after it), once per distinct input: AttnQ
// (q,k,v), AttnO, MlpUp (gate,up), MlpDown. Called from several threads at once
// on disjoint rows; it must be a pure function of the rows it is given.
using LinearInputTransform = std::function<void(int block, Role inputRole, MatrixRef x)>;

class Transformer {
public:
    // Reads every weight of `model` as stored (loadLinearWeights: views of the
    // mapped bytes, nothing converted; progress per tensor, cancellable).
    // Throws UnsupportedArch for families it cannot run, Malformed for missing or mis-shaped tensors.
    explicit Transformer(const Model& model, Progress* progress = nullptr);
    // A model built in memory (benchmarks, tests): `weights` must fit `config`.
    Transformer(const ModelConfig& config, TransformerWeights weights, const nlohmann::json& metadata = {});

    const ModelConfig& config() const { return config_; }
    // The file or folder the model came from ("" when built in memory): errors name it.
    const std::string& source() const { return source_; }
    const Architecture& architecture() const { return arch_; }
    int64_t vocab() const { return w_.head.outFeatures(); }
    int64_t layers() const { return static_cast<int64_t>(w_.blocks.size()); }
    // Width of the hidden states the head reads (word_embed_proj_dim for OPT with projections).
    int64_t headInputDim() const { return w_.head.inFeatures(); }

    // One sequence starting at position 0 -> logits (T, vocab).
    Eigen::MatrixXf logits(std::span<const int32_t> ids) const;
    // Windows of `windowLength` tokens laid end to end -> logits (ids.size(), vocab).
    MatrixRM logitsBatch(std::span<const int32_t> ids, int64_t windowLength) const;
    // Same windows -> final hidden states (ids.size(), headInputDim()), for a head applied in chunks.
    MatrixRM hiddenBatch(std::span<const int32_t> ids, int64_t windowLength,
                         LinearInputObserver* observer = nullptr) const;
    // The same forward pass in pieces, for work that keeps the hidden states
    // between blocks (streaming calibration, sensitivity from cached inputs).
    // Rows are windows of `windowLength` tokens laid end to end, as in hiddenBatch,
    // and the windows are split over threads the same way, so the pieces give
    // hiddenBatch's values bit for bit.
    // ids -> the hidden states at block 0's input (n, hidden).
    MatrixRM embedWindows(std::span<const int32_t> ids, int64_t windowLength) const;
    // x (n, hidden) at block `first`'s input -> block `last`'s output, in place.
    void runBlocks(MatrixRef x, int64_t windowLength, int first, int last, LinearInputObserver* observer = nullptr) const;
    // x after the last block -> the head's input (final norm, OPT's projection).
    MatrixRM finishHidden(MatrixRM x) const;
    // hidden (n, headInputDim()) -> logits (n, vocab).
    void applyHead(const ConstMatrixRef& hidden, MatrixRef logits) const;

    // Matrix multiply-adds of one token's forward pass at `context` positions
    // (linears including the head, plus causal attention), for throughput figures.
    double flopsPerToken(int64_t context) const;
    // Bytes of the weights held (matrices in their stored types, norms and biases in F32).
    uint64_t weightBytes() const;

    // The weights. Linear roles: AttnQ/K/V/O, MlpGate/Up/Down in a block, LmHead with block -1.
    // A factored layer (a model's factored tensor, setLinearFactors) holds A and B,
    // W stays empty: read its matrix with LinearWeights::dense().
    const TransformerWeights& weights() const { return w_; }
    const LinearWeights& linear(int block, Role role) const;
    // Replaces a linear's matrix (same shape), keeping its bias; a factored layer
    // becomes dense. Replacing a head tied to the embedding unties it: the
    // embedding table keeps its values.
    void setLinearWeight(int block, Role role, MatrixRM W);
    void setLinearWeight(int block, Role role, StoredMatrix W);
    // Replaces a linear by factors A (out, k) and B (k, in) of the same (out, in);
    // the forward pass then computes (x B^T) A^T. Unties a tied head like setLinearWeight.
    void setLinearFactors(int block, Role role, MatrixRM A, MatrixRM B);
    void setLinearFactors(int block, Role role, StoredMatrix A, StoredMatrix B);
    // Puts back a linear as linear() returned it (the bias is the layer's own, kept).
    void setLinear(int block, Role role, LinearWeights weights);
    // Installs (or, with an empty function, removes) the input transform of every
    // linear. Like setLinearWeight: between evaluations, not during one.
    void setLinearInputTransform(LinearInputTransform f) { inputTransform_ = std::move(f); }
    const LinearInputTransform& linearInputTransform() const { return inputTransform_; }
    // Simulates a quantized KV cache in every attention (engine/kv_quant.h), with
    // or without a Session's cache; an inactive one turns it off. Between
    // evaluations, like setLinearWeight. Throws InvalidArgument for settings that
    // do not fit the heads.
    void setKvQuantization(const KvCacheQuantization& q);
    const KvCacheQuantization& kvQuantization() const { return kvQuant_; }
    // Divides the output of the norm before the linears reading `inputRole`
    // (AttnQ: attention's norm, MlpUp: the MLP's) by s per channel (folding a
    // smoothing scale into it). False, unchanged, where no norm feeds that input alone
    // (post-norm OPT, whose linears read the residual stream).
    bool scaleNormOutput(int block, Role inputRole, const Eigen::VectorXf& s);

    // Rows [row0, row0 + rows) of a pass are one sequence starting at position pos0.
    struct Segment {
        int64_t row0, rows, pos0;
    };

private:
    friend class Session;
    // Activations of one block, allocated once per forward pass and reused by
    // every layer (fresh multi-MB buffers per layer cost page faults).
    struct Scratch {
        MatrixRM q, k, v, att, up, gate;
        MatrixRM in; // a transformed copy of a linear input (setLinearInputTransform)
        MatrixRM h, branch; // the normed input and a branch's output
        MatrixRM kq, vq;    // quantized copies of the keys and values read (setKvQuantization)
    };
    // Where the rows of a forward pass sit: positions, windows, rotary angles.
    struct Layout {
        std::vector<int64_t> positions;
        std::vector<Segment> segments;
        std::optional<RotaryTable> rotary;
    };
    Layout layoutOf(std::span<const Segment> segments, int64_t rows) const;
    // One block on x (rows laid out by L), in place.
    void runBlock(int layer, MatrixRef x, const Layout& L, KvCache* cache, LinearInputObserver* observer,
                  Scratch& scratch) const;
    MatrixRM finish(MatrixRM x) const;
    // The forward pass up to the head's input. With a cache (one segment only),
    // keys/values are appended to it and attention reads every cached position.
    MatrixRM runHidden(std::span<const int32_t> ids, std::span<const Segment> segments, KvCache* cache,
                       LinearInputObserver* observer = nullptr) const;
    void embed(std::span<const int32_t> ids, std::span<const int64_t> positions, MatrixRM& x) const;
    void attention(int layer, const ConstMatrixRef& h, std::span<const int64_t> positions,
                   std::span<const Segment> segments, KvCache* cache, const RotaryTable* rotary,
                   LinearInputObserver* observer, Scratch& s, MatrixRef out) const;
    void quantizeKeysAndValues(const MatrixRM& keys, const MatrixRM& values, std::span<const Segment> segments,
                               bool cached, Scratch& scratch) const;
    void mlp(int layer, const ConstMatrixRef& h, LinearInputObserver* observer, Scratch& s, MatrixRef out) const;
    LinearWeights& linearSlot(int block, Role role);
    void untieIfHead(const LinearWeights& lw);
    void validate(const std::string& source) const;
    void setUpDownRotation(const std::string& source);

    ModelConfig config_;
    std::string source_;
    Architecture arch_;
    TransformerWeights w_;
    LinearInputTransform inputTransform_;
    KvCacheQuantization kvQuant_;
    std::shared_ptr<const RandomHadamard> downRotation_; // config_.onlineDownRotation
};

} // namespace ll
