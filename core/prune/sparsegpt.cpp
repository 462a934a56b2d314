#include "prune/sparsegpt.h"

#include "layer/checks.h"
#include "layer/obs_hessian.h"
#include "prune/score_mask.h"
#include "quant/gptq_factor.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <string>
#include <vector>

namespace ll {

namespace {

using BlockMask = Eigen::Matrix<char, Eigen::Dynamic, Eigen::Dynamic>; // (rows, count), 1 = pruned

void checkOptions(const MatrixRM& W, const SparseGptOptions& o)
{
    if (o.blockSize < 1)
        fail(ErrorCode::InvalidArgument, "", "the SparseGPT block size must be >= 1");
    if (o.nm)
        validateNM(*o.nm);
    else
        validateSparsity(o.sparsity);
    if (o.fixedMask && (o.fixedMask->rows() != W.rows() || o.fixedMask->cols() != W.cols()))
        fail(ErrorCode::InvalidArgument, "", "the given mask does not have the weight matrix's shape");
}

// Unstructured: the lowest fraction of W1^2 / d^2 over the whole block.
// W1: (rows, count), d: (count,) the diagonal of the block's U.
void selectBlock(const Eigen::MatrixXf& W1, const Eigen::VectorXf& d, double sparsity, CountRule rule, BlockMask& pruned)
{
    // tmp (rows, count) = W1^2 / d^2 column-wise, column-major like W1
    const Eigen::RowVectorXf invD2 = d.array().square().inverse().matrix().transpose();
    const Eigen::MatrixXf tmp = (W1.array().square().rowwise() * invD2.array()).matrix();
    std::vector<float> scratch;
    const ScoreCut cut = sparsityCut(tmp.data(), tmp.size(), sparsity, rule, scratch);
    applyCut(tmp.data(), tmp.size(), cut, [&](int64_t i) { pruned.data()[i] = 1; });
}

// N:M: per row, the m - n lowest of the group's w^2 / d^2 (columns i.. of the block).
void selectGroup(const Eigen::MatrixXf& W1, const Eigen::VectorXf& d, Eigen::Index i, const NMPattern& nm,
                 BlockMask& pruned)
{
    const Eigen::Index width = std::min<Eigen::Index>(nm.m, W1.cols() - i);
    std::vector<float> scores(static_cast<size_t>(width)), scratch;
    for (Eigen::Index r = 0; r < W1.rows(); ++r) {
        for (Eigen::Index c = 0; c < width; ++c)
            scores[static_cast<size_t>(c)] = W1(r, i + c) * W1(r, i + c) / (d[i + c] * d[i + c]);
        const ScoreCut cut = scoreCut(scores.data(), width, width - nm.n, scratch);
        applyCut(scores.data(), width, cut, [&](int64_t c) { pruned(r, i + c) = 1; });
    }
}

void takeFixedMask(const SparsityMask& mask, Eigen::Index i1, BlockMask& pruned)
{
    for (Eigen::Index c = 0; c < pruned.cols(); ++c)
        for (Eigen::Index r = 0; r < pruned.rows(); ++r)
            pruned(r, c) = mask.kept(r, i1 + c) ? 0 : 1;
}

} // namespace

SparseGptResult sparseGpt(const MatrixRM& W, const Eigen::MatrixXf& H, const SparseGptOptions& options,
                          Progress* progress)
{
    requireUsableWeights(W, "the weight matrix");
    requireGram(H, W.cols(), "the Hessian");
    checkOptions(W, options);
    const Eigen::Index rows = W.rows(), cols = W.cols();
    int blockSize = options.blockSize;
    if (options.nm) // N:M groups must not straddle blocks
        blockSize = std::max(options.nm->m, blockSize / options.nm->m * options.nm->m);

    Eigen::MatrixXf Hl = H;
    Eigen::MatrixXf Wc = W; // (rows, cols) column-major: the sweep reads columns
    neutralizeDeadInputs(Hl, Wc);
    // U with U^T U = (H + damp I)^-1 from one Cholesky and a triangular inverse
    // (quant/gptq_factor.h; 2/3 n^3 flops, threaded) rather than the inverse
    // route of layer/obs_hessian.h (8/3 n^3, 4.6 s against 0.37 s at n = 4096).
    const Eigen::MatrixXf U = gptqInverseFactor(Hl, options.percDamp); // (cols, cols)

    SparseGptResult res;
    res.mask = SparsityMask(rows, cols);
    for (Eigen::Index i1 = 0; i1 < cols; i1 += blockSize) {
        throwIfCancelled(progress);
        const Eigen::Index i2 = std::min<Eigen::Index>(i1 + blockSize, cols), count = i2 - i1;
        Eigen::MatrixXf W1 = Wc.middleCols(i1, count);          // (rows, count)
        Eigen::MatrixXf Q1(rows, count), Err1(rows, count);
        const auto Hinv1 = U.block(i1, i1, count, count);       // (count, count)
        const Eigen::VectorXf d = Hinv1.diagonal();
        BlockMask pruned = BlockMask::Zero(rows, count);
        if (options.fixedMask)
            takeFixedMask(*options.fixedMask, i1, pruned);
        else if (!options.nm)
            selectBlock(W1, d, options.sparsity, options.countRule, pruned);

        for (Eigen::Index i = 0; i < count; ++i) {
            if (options.nm && !options.fixedMask && i % options.nm->m == 0)
                selectGroup(W1, d, i, *options.nm, pruned);
            Eigen::VectorXf q = W1.col(i); // (rows,)
            for (Eigen::Index r = 0; r < rows; ++r) {
                if (options.quantizer)
                    q[r] = options.quantizer(q[r], r, i1 + i);
                if (pruned(r, i))
                    q[r] = 0.0f; // after the quantizer: a pruned weight is exactly 0
            }
            Q1.col(i) = q;
            const Eigen::VectorXf err = (W1.col(i) - q) / d[i]; // (rows,)
            res.loss += 0.5 * static_cast<double>(err.squaredNorm());
            // OBS update of the block's remaining columns: (rows,) x (count - i,)
            W1.rightCols(count - i).noalias() -= err * Hinv1.row(i).tail(count - i);
            Err1.col(i) = err;
        }
        Wc.middleCols(i1, count) = Q1;
        // Lazy batch update of every later column: (rows, count) @ (count, cols - i2)
        if (i2 < cols)
            Wc.rightCols(cols - i2).noalias() -= Err1 * U.block(i1, i2, count, cols - i2);
        for (Eigen::Index c = 0; c < count; ++c)
            for (Eigen::Index r = 0; r < rows; ++r)
                if (pruned(r, c))
                    res.mask.prune(r, i1 + c);
        if (progress)
            progress->report(static_cast<double>(i2) / static_cast<double>(cols), "SparseGPT");
    }
    res.weights = Wc; // back to row-major
    return res;
}

} // namespace ll
