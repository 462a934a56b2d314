#include "prune/magnitude.h"

#include "layer/checks.h"

namespace ll {

SparsityMask magnitudeMask(const MatrixRM& W, double sparsity, PruneScope scope, CountRule rule)
{
    requireUsableWeights(W, "the weight matrix");
    return maskFromScores(W.cwiseAbs(), sparsity, scope, rule);
}

SparsityMask magnitudeMaskNM(const MatrixRM& W, const NMPattern& nm)
{
    requireUsableWeights(W, "the weight matrix");
    return maskFromScoresNM(W.cwiseAbs(), nm);
}

} // namespace ll
