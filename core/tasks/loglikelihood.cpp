#include "tasks/loglikelihood.h"

#include "engine/session.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace ll {

namespace {

// A request as the model sees it: `input` (the tokens fed, context +
// continuation without its last token, cut from the left to maxLength) and the
// tokens its last `targets.size()` positions must predict.
struct Pass {
    std::vector<int32_t> input;
    std::span<const int32_t> targets;
    int64_t firstScored() const { return static_cast<int64_t>(input.size() - targets.size()); }
};

Pass passOf(const Transformer& model, const LoglikelihoodRequest& r, int64_t maxLength)
{
    if (r.context.empty() || r.continuation.empty())
        fail(ErrorCode::InvalidArgument, model.source(), "a log-likelihood request needs a context and a continuation of at least one token");
    if (static_cast<int64_t>(r.continuation.size()) > maxLength)
        fail(ErrorCode::InvalidArgument, model.source(),
             "a continuation of " + std::to_string(r.continuation.size()) + " tokens does not fit the model's "
                 + std::to_string(maxLength) + " positions");
    std::vector<int32_t> seq;
    seq.reserve(r.context.size() + r.continuation.size());
    seq.insert(seq.end(), r.context.begin(), r.context.end());
    seq.insert(seq.end(), r.continuation.begin(), r.continuation.end());
    // The harness keeps the last maxLength + 1 tokens: the oldest context goes first.
    const size_t keep = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(seq.size()), maxLength + 1));
    Pass p;
    p.input.assign(seq.end() - static_cast<std::ptrdiff_t>(keep), seq.end() - 1);
    p.targets = std::span<const int32_t>(r.continuation);
    return p;
}

// Adds row `row` of logits predicting `target` to `result`.
void addRow(const MatrixRM& logits, int64_t row, int32_t target, LoglikelihoodResult& result)
{
    const TokenScore s = scoreToken(std::span<const float>(logits.row(row).data(), static_cast<size_t>(logits.cols())), target);
    result.logLikelihood += s.logProb;
    result.greedy = result.greedy && s.argmax;
    ++result.tokens;
}

} // namespace

TokenScore scoreToken(std::span<const float> logits, int32_t target)
{
    if (target < 0 || static_cast<size_t>(target) >= logits.size())
        fail(ErrorCode::OutOfRange, "", "token " + std::to_string(target) + " is outside the model's vocabulary of " + std::to_string(logits.size()));
    size_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best])
            best = i;
    const double top = logits[best];
    double sum = 0;
    for (const float x : logits)
        sum += std::exp(static_cast<double>(x) - top);
    return {static_cast<double>(logits[static_cast<size_t>(target)]) - top - std::log(sum), best == static_cast<size_t>(target)};
}

LoglikelihoodResult scoreAlone(const Transformer& model, const LoglikelihoodRequest& request, int64_t maxLength)
{
    const Pass p = passOf(model, request, maxLength);
    const MatrixRM logits = model.logitsBatch(p.input, static_cast<int64_t>(p.input.size()));
    LoglikelihoodResult r;
    r.greedy = true;
    for (size_t k = 0; k < p.targets.size(); ++k)
        addRow(logits, p.firstScored() + static_cast<int64_t>(k), p.targets[k], r);
    return r;
}

std::vector<LoglikelihoodResult> scoreSharedPrefix(const Transformer& model, std::span<const LoglikelihoodRequest> requests,
                                                   int64_t maxLength, int64_t* positionsRun)
{
    std::vector<Pass> passes;
    passes.reserve(requests.size());
    for (const LoglikelihoodRequest& r : requests)
        passes.push_back(passOf(model, r, maxLength));
    std::vector<LoglikelihoodResult> results(requests.size());
    if (passes.empty())
        return results;

    // The shared prefix: common to every input, and ending no later than the
    // position that predicts any request's first continuation token, so the
    // prefix's own logits are needed at its last position only.
    int64_t shared = static_cast<int64_t>(passes[0].input.size());
    for (const Pass& p : passes) {
        shared = std::min(shared, p.firstScored() + 1);
        const auto& a = passes[0].input;
        const auto mismatch = std::mismatch(a.begin(), a.end(), p.input.begin(), p.input.end());
        shared = std::min<int64_t>(shared, mismatch.first - a.begin());
    }

    if (positionsRun) {
        *positionsRun += shared;
        for (const Pass& p : passes)
            *positionsRun += static_cast<int64_t>(p.input.size()) - shared;
    }
    Session session(model);
    MatrixRM prefixLogits; // (1, vocab): the prefix's last position
    if (shared > 0) // the head on the prefix's last position only
        prefixLogits = session.append(std::span<const int32_t>(passes[0].input.data(), static_cast<size_t>(shared))).transpose();
    for (size_t i = 0; i < passes.size(); ++i) {
        const Pass& p = passes[i];
        LoglikelihoodResult& r = results[i];
        r.greedy = true;
        session.truncate(shared);
        const int64_t n = static_cast<int64_t>(p.input.size());
        MatrixRM rest;
        if (n > shared)
            rest = session.appendAll(std::span<const int32_t>(p.input.data() + shared, static_cast<size_t>(n - shared)));
        for (size_t k = 0; k < p.targets.size(); ++k) {
            const int64_t row = p.firstScored() + static_cast<int64_t>(k); // < shared only for the prefix's last position
            if (row < shared)
                addRow(prefixLogits, 0, p.targets[k], r);
            else
                addRow(rest, row - shared, p.targets[k], r);
        }
    }
    return results;
}

} // namespace ll
