#include "quant/canonical_rows.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace ll {

MatrixRM canonicalRows(const MatrixRM& X, Eigen::Index n)
{
    std::vector<Eigen::Index> order(static_cast<size_t>(X.rows()));
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    const Eigen::Index take = std::min(X.rows(), std::max<Eigen::Index>(n, 0));
    std::partial_sort(order.begin(), order.begin() + take, order.end(), [&](Eigen::Index a, Eigen::Index b) {
        return std::lexicographical_compare(X.row(a).data(), X.row(a).data() + X.cols(), X.row(b).data(),
                                            X.row(b).data() + X.cols());
    });
    MatrixRM out(take, X.cols());
    for (Eigen::Index i = 0; i < take; ++i)
        out.row(i) = X.row(order[static_cast<size_t>(i)]);
    return out;
}

} // namespace ll
