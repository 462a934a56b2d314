#include "layer/sparsity_mask.h"

#include "util/error.h"

#include <algorithm>
#include <bit>
#include <string>

namespace ll {

void validateNM(const NMPattern& nm)
{
    if (nm.m < 2 || nm.m > 64 || nm.n < 1 || nm.n >= nm.m)
        fail(ErrorCode::InvalidArgument, "",
             "an N:M pattern keeps 1 <= N < M weights of every M (M <= 64); " + std::to_string(nm.n) + ":"
                 + std::to_string(nm.m) + " is not one");
}

SparsityMask::SparsityMask(int64_t rows, int64_t cols, bool kept)
    : rows_(rows), cols_(cols), wordsPerRow_((cols + 63) / 64)
{
    if (rows < 0 || cols < 0)
        fail(ErrorCode::InvalidArgument, "", "a sparsity mask cannot have a negative shape");
    words_.assign(static_cast<size_t>(rows * wordsPerRow_), 0);
    if (!kept)
        return;
    // Padding bits past the last column stay 0 so that popcounts count weights only.
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t w = 0; w < wordsPerRow_; ++w) {
            const int64_t bits = std::min<int64_t>(64, cols - 64 * w);
            words_[static_cast<size_t>(r * wordsPerRow_ + w)] = bits == 64 ? ~uint64_t(0) : (uint64_t(1) << bits) - 1;
        }
}

SparsityMask SparsityMask::fromNonZeros(const Eigen::Ref<const MatrixRM>& W)
{
    SparsityMask mask(W.rows(), W.cols(), false);
    for (int64_t r = 0; r < W.rows(); ++r)
        for (int64_t c = 0; c < W.cols(); ++c)
            if (W(r, c) != 0.0f)
                mask.set(r, c, true);
    return mask;
}

void SparsityMask::set(int64_t r, int64_t c, bool kept)
{
    const uint64_t bit = uint64_t(1) << (c & 63);
    uint64_t& word = words_[wordIndex(r, c)];
    word = kept ? (word | bit) : (word & ~bit);
}

int64_t SparsityMask::keptCount() const
{
    int64_t n = 0;
    for (uint64_t w : words_)
        n += std::popcount(w);
    return n;
}

int64_t SparsityMask::keptInRow(int64_t r) const
{
    int64_t n = 0;
    for (int64_t w = 0; w < wordsPerRow_; ++w)
        n += std::popcount(words_[static_cast<size_t>(r * wordsPerRow_ + w)]);
    return n;
}

double SparsityMask::sparsity() const
{
    return size() ? static_cast<double>(prunedCount()) / static_cast<double>(size()) : 0.0;
}

std::vector<double> SparsityMask::rowSparsity() const
{
    std::vector<double> out(static_cast<size_t>(rows_), 0.0);
    for (int64_t r = 0; r < rows_ && cols_ > 0; ++r)
        out[static_cast<size_t>(r)] = 1.0 - static_cast<double>(keptInRow(r)) / static_cast<double>(cols_);
    return out;
}

std::vector<double> SparsityMask::columnSparsity() const
{
    std::vector<int64_t> keptPerCol(static_cast<size_t>(cols_), 0);
    for (int64_t r = 0; r < rows_; ++r)
        for (int64_t c = 0; c < cols_; ++c)
            keptPerCol[static_cast<size_t>(c)] += kept(r, c) ? 1 : 0;
    std::vector<double> out(static_cast<size_t>(cols_), 0.0);
    for (int64_t c = 0; c < cols_ && rows_ > 0; ++c)
        out[static_cast<size_t>(c)] = 1.0 - static_cast<double>(keptPerCol[static_cast<size_t>(c)]) / static_cast<double>(rows_);
    return out;
}

bool SparsityMask::isValidNM(int n, int m) const
{
    validateNM({n, m});
    for (int64_t r = 0; r < rows_; ++r)
        for (int64_t c0 = 0; c0 < cols_; c0 += m) {
            int keptHere = 0;
            for (int64_t c = c0; c < std::min<int64_t>(c0 + m, cols_); ++c)
                keptHere += kept(r, c) ? 1 : 0;
            if (keptHere > n)
                return false;
        }
    return true;
}

void SparsityMask::applyTo(Eigen::Ref<MatrixRM> W) const
{
    if (W.rows() != rows_ || W.cols() != cols_)
        fail(ErrorCode::InvalidArgument, "",
             "the mask is " + std::to_string(rows_) + " x " + std::to_string(cols_) + ", the matrix "
                 + std::to_string(W.rows()) + " x " + std::to_string(W.cols()));
    for (int64_t r = 0; r < rows_; ++r)
        for (int64_t c = 0; c < cols_; ++c)
            if (!kept(r, c))
                W(r, c) = 0.0f;
}

} // namespace ll
