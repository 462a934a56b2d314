#pragma once
// The weights a Transformer computes with. Every linear keeps its matrix in
// the logical (out, in) orientation, so a compression method can replace one
// matrix without knowing how the checkpoint stored it. Matrices stay in their
// stored type (kernels/stored_matrix.h: a view of the mapped file, or an owned
// buffer for edited weights); norms and biases are small F32 copies.
#include "kernels/stored_matrix.h"
#include "model/tensor_data.h"

#include <Eigen/Core>

#include <vector>

namespace ll {

// y = x @ W^T + b.  W (out, in); b (out,) or empty when the layer has no bias.
// A low-rank layer holds its factors instead of W (W empty):
//   y = (x @ B^T) @ A^T + b,  A (out, k), B (k, in),
// k (out + in) multiply-adds per row instead of out * in.
// A corrected layer (LoRC, EoRA) holds both, its quantized W and the factors
// of a correction: y = x @ W^T + (x @ B^T) @ A^T + b.
struct LinearWeights {
    StoredMatrix W;
    StoredMatrix A, B;   // the factors; both empty for a dense layer
    Eigen::VectorXf b;

    bool hasFactors() const { return A.rows != 0; }
    bool factored() const { return hasFactors() && W.empty(); }   // W = A B
    bool corrected() const { return hasFactors() && !W.empty(); } // W + A B
    bool empty() const { return W.empty() && !hasFactors(); }
    bool hasBias() const { return b.size() != 0; }
    int64_t outFeatures() const { return W.empty() ? A.rows : W.rows; }
    int64_t inFeatures() const { return W.empty() ? B.cols : W.cols; }
    int64_t rank() const { return hasFactors() ? A.cols : 0; }
    // Values held (W's, A's and B's): the multiply-adds per input row.
    int64_t parameterCount() const { return W.elements() + A.elements() + B.elements(); }
    // Bytes of the matrices as held (stored type).
    uint64_t bytes() const { return W.bytes() + A.bytes() + B.bytes(); }
    // The matrix the layer applies, (out, in), as F32: W decoded, plus the product A B.
    MatrixRM dense() const;
};

// Scale w (and shift b for LayerNorm; empty for RMSNorm).
struct NormWeights {
    Eigen::VectorXf w;
    Eigen::VectorXf b;

    bool empty() const { return w.size() == 0; }
};

struct BlockWeights {
    NormWeights attnNorm, mlpNorm;
    LinearWeights q, k, v, o;
    LinearWeights gate, up, down; // gate empty for ungated MLPs (gpt2, opt, gpt_neox)
};

struct TransformerWeights {
    StoredMatrix embed;         // (vocab, embedDim); empty when the head is tied to it
    MatrixRM positions;         // (positions, hidden) learned positions (gpt2, opt), else empty
    LinearWeights projectIn;    // opt word_embed_proj_dim != hidden: (hidden, embedDim)
    LinearWeights projectOut;   // (embedDim, hidden)
    std::vector<BlockWeights> blocks;
    NormWeights finalNorm;      // empty for post-norm OPT (opt-350m has none)
    LinearWeights head;         // (vocab, embedDim)
    bool headTied = false;      // the embedding table is head.W

    const StoredMatrix& embeddingTable() const { return headTied ? head.W : embed; }
};

} // namespace ll

namespace ll {

// The matrix of a logical tensor as the engine computes with it, without its
// bias: a view of the stored bytes when the rows lie in place (any type with
// row kernels, whole or a contiguous part of a fused tensor), the factors of a
// factored tensor, an edited tensor's buffer; otherwise (transposed Conv1D,
// strided NeoX parts, undecodable-in-place layouts) an F32 copy.
LinearWeights loadLinearWeights(const Model& model, const LogicalTensor& t);

} // namespace ll
