#pragma once
// Which weights of a linear layer's W (out, in) survive pruning: one bit per
// weight, 1 = kept, 0 = pruned. Each row is padded to whole 64-bit words so
// that a row's bits start on a word (row scans and popcounts stay simple).
//
// N:M sparsity follows NVIDIA's convention: "2:4" means that of every 4
// consecutive input weights of a row at most 2 are KEPT (50 % sparse).
#include "model/tensor_data.h"

#include <cstdint>
#include <vector>

namespace ll {

// n kept out of every m consecutive inputs of a row (2:4, 4:8).
struct NMPattern {
    int n = 2;
    int m = 4;
    double sparsity() const { return 1.0 - static_cast<double>(n) / static_cast<double>(m); }
};

// Throws InvalidArgument unless 0 < n < m (m <= 64).
void validateNM(const NMPattern& nm);

class SparsityMask {
public:
    SparsityMask() = default;
    // (rows, cols) with every weight kept (or every weight pruned).
    SparsityMask(int64_t rows, int64_t cols, bool kept = true);
    // Kept where W != 0.
    static SparsityMask fromNonZeros(const Eigen::Ref<const MatrixRM>& W);

    int64_t rows() const { return rows_; }
    int64_t cols() const { return cols_; }
    int64_t size() const { return rows_ * cols_; }

    bool kept(int64_t r, int64_t c) const
    {
        return (words_[wordIndex(r, c)] >> (c & 63)) & 1u;
    }
    void set(int64_t r, int64_t c, bool kept);
    void prune(int64_t r, int64_t c) { set(r, c, false); }

    int64_t keptCount() const;
    int64_t prunedCount() const { return size() - keptCount(); }
    int64_t keptInRow(int64_t r) const;
    // Fractions of pruned weights: overall, per output row, per input column.
    double sparsity() const;
    std::vector<double> rowSparsity() const;    // (rows,)
    std::vector<double> columnSparsity() const; // (cols,)

    // Every group of m consecutive inputs of every row (groups start at column
    // 0; a shorter last group counts too) keeps at most n weights.
    bool isValidNM(int n, int m) const;
    bool isValidNM(const NMPattern& nm) const { return isValidNM(nm.n, nm.m); }

    // W := W where kept, 0 where pruned. W must be (rows, cols).
    void applyTo(Eigen::Ref<MatrixRM> W) const;

    // The compact storage: rows * wordsPerRow() words, bit c & 63 of word
    // r * wordsPerRow() + c / 64 is weight (r, c).
    const std::vector<uint64_t>& words() const { return words_; }
    int64_t wordsPerRow() const { return wordsPerRow_; }

    bool operator==(const SparsityMask& o) const = default;

private:
    size_t wordIndex(int64_t r, int64_t c) const { return static_cast<size_t>(r * wordsPerRow_ + (c >> 6)); }

    int64_t rows_ = 0, cols_ = 0, wordsPerRow_ = 0;
    std::vector<uint64_t> words_;
};

} // namespace ll
