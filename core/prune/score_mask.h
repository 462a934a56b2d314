#pragma once
// Turning importance scores into a mask: prune the lowest scores over the
// whole matrix, within each row, or within each group of M inputs (N:M).
// Shared by magnitude pruning (score |W|), Wanda (|W| * ||X_j||) and SparseGPT.
//
// Exact counts: a sparsity s prunes floor(s * n) of n weights, ties broken by
// position (the first in row-major order is pruned first). The reference code
// (locuslab/wanda prune_magnitude, sparsegpt fasterprune) prunes every score
// <= the sorted value at index floor(s * n), i.e. one weight more (plus any
// ties); Wanda's per-row branch matches ours exactly.
#include "layer/sparsity_mask.h"

#include <cstdint>
#include <vector>

namespace ll {

// How many of n scores a sparsity s prunes.
enum class CountRule {
    Exact,     // floor(s * n), ties broken by position (the default)
    Inclusive, // every score <= the (floor(s * n) + 1)-th smallest: the reference code's
               // `scores <= sort(scores)[int(s * n)]` (magnitude over the matrix, SparseGPT's
               // blocks): one weight more than Exact, plus any ties. s = 0 prunes nothing
               // (the reference would prune the smallest score).
};

enum class PruneScope {
    Matrix, // the lowest fraction over the whole matrix (the protocol's "magnitude")
    Row,    // the lowest fraction within each output row (Wanda)
};

// Throws InvalidArgument unless 0 <= sparsity <= 1.
void validateSparsity(double sparsity);
// floor(sparsity * n), guarded so that 0.3 * 10 prunes 3, not 2.
int64_t prunedCountFor(double sparsity, int64_t n);

// The cut that prunes exactly `count` of n scores: every score below
// `threshold`, then the first `ties` scores equal to it (in index order).
struct ScoreCut {
    float threshold = 0.0f;
    int64_t ties = 0;
    bool none = true; // count == 0: nothing is pruned
};
// scratch is resized and overwritten (reused between calls to avoid allocations).
ScoreCut scoreCut(const float* scores, int64_t n, int64_t count, std::vector<float>& scratch);
// The cut a sparsity prunes under `rule`.
ScoreCut sparsityCut(const float* scores, int64_t n, double sparsity, CountRule rule, std::vector<float>& scratch);

// Applies a cut to n scores: calls prune(i) for each pruned index i, in index order.
template <class PruneFn>
void applyCut(const float* scores, int64_t n, ScoreCut cut, PruneFn&& prune)
{
    if (cut.none)
        return;
    for (int64_t i = 0; i < n; ++i) {
        if (scores[i] < cut.threshold) {
            prune(i);
        } else if (scores[i] == cut.threshold && cut.ties > 0) {
            prune(i);
            --cut.ties;
        }
    }
}

// scores: (out, in), larger = more important. Scores must not be NaN.
SparsityMask maskFromScores(const MatrixRM& scores, double sparsity, PruneScope scope, CountRule rule = CountRule::Exact);
// In each row, each group of m inputs keeps its n highest scores (ties: the
// lower column is pruned); a shorter last group keeps at most n.
SparsityMask maskFromScoresNM(const MatrixRM& scores, const NMPattern& nm);

} // namespace ll
