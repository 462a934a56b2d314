#include "engine/session.h"

#include "util/error.h"

#include <algorithm>

namespace ll {

Session::Session(const Transformer& model) : model_(model)
{
    cache_.k.resize(static_cast<size_t>(model.layers()));
    cache_.v.resize(static_cast<size_t>(model.layers()));
}

void Session::reserve(int64_t positions)
{
    const int64_t capacity = cache_.k.empty() ? 0 : cache_.k.front().rows();
    if (positions <= capacity)
        return;
    // Doubling keeps the copies amortised O(1) per token.
    const int64_t grown = std::max({positions, 2 * capacity, int64_t{64}});
    const int64_t width = model_.config().kvHeads * model_.config().headDim;
    for (size_t l = 0; l < cache_.k.size(); ++l) {
        cache_.k[l].conservativeResize(grown, width);
        cache_.v[l].conservativeResize(grown, width);
    }
}

MatrixRM Session::hiddenOf(std::span<const int32_t> ids)
{
    const int64_t n = static_cast<int64_t>(ids.size());
    if (n == 0)
        fail(ErrorCode::InvalidArgument, model_.source(), "nothing to append to the session");
    reserve(cache_.length + n);
    const Transformer::Segment segment{0, n, cache_.length};
    return model_.runHidden(ids, std::span<const Transformer::Segment>(&segment, 1), &cache_);
}

Eigen::VectorXf Session::append(std::span<const int32_t> ids)
{
    const MatrixRM hidden = hiddenOf(ids);
    MatrixRM logits(1, model_.vocab());
    model_.applyHead(hidden.bottomRows(1), logits);
    return logits.row(0).transpose();
}

MatrixRM Session::appendAll(std::span<const int32_t> ids)
{
    const MatrixRM hidden = hiddenOf(ids);
    MatrixRM logits(hidden.rows(), model_.vocab());
    model_.applyHead(hidden, logits);
    return logits;
}

void Session::truncate(int64_t positions)
{
    if (positions < 0 || positions > cache_.length)
        fail(ErrorCode::OutOfRange, model_.source(),
             "cannot keep " + std::to_string(positions) + " of the session's " + std::to_string(cache_.length) + " positions");
    cache_.length = positions;
}

} // namespace ll
