#include "eval/perplexity.h"

#include "engine/kernels.h"
#include "eval/mean_accumulator.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace ll {

namespace {

int64_t rowGrainFor(int64_t vocab)
{
    return std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(vocab, 1));
}

// A NaN or infinite log-likelihood is a broken model (weights or config), never a result.
void requireFinite(const Transformer& model, const std::vector<double>& nll)
{
    for (size_t i = 0; i < nll.size(); ++i)
        if (!std::isfinite(nll[i]))
            fail(ErrorCode::Malformed, model.source(),
                 "the model's logits are not finite (NaN or infinity) at scored token " + std::to_string(i + 1)
                     + "; its weights or its config (rope, norm epsilon) are broken");
}

} // namespace

PerplexityResult evaluatePerplexity(const Transformer& model, std::span<const int32_t> tokens,
                                    const ScoringOptions& options, Progress* progress)
{
    const WindowPlan plan = planWindows(static_cast<int64_t>(tokens.size()), options);
    std::vector<double> nll(static_cast<size_t>(plan.tokensScored()));
    const Transformer* models[] = {&model};
    scoreWindows(models, tokens, options, progress, [&](const ScoredChunk& c) {
        const MatrixRM& logits = *c.logits[0];
        const int64_t vocab = logits.cols();
        parallelFor(logits.rows(), rowGrainFor(vocab), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const RowLogSoftmax s = rowLogSoftmax(logits.row(r).data(), vocab);
                nll[static_cast<size_t>(c.firstRow + r)] = s.logSumExp - logits(r, c.targets[static_cast<size_t>(r)]);
            }
        });
    });
    requireFinite(model, nll);
    MeanAccumulator acc;
    for (double x : nll)
        acc.add(x);
    PerplexityResult r;
    r.tokensScored = acc.n;
    r.windows = plan.windows;
    r.nllMean = acc.mean();
    r.nllStderr = acc.stderrOfMean();
    r.ppl = std::exp(r.nllMean);
    r.pplStderr = r.ppl * r.nllStderr;
    return r;
}

ComparisonResult compareModels(const Transformer& reference, const Transformer& candidate, std::span<const int32_t> tokens,
                               const ScoringOptions& options, Progress* progress)
{
    struct RowStats {
        double nllRef = 0, nllCand = 0, kl = 0;
        bool agree = false;
    };
    const WindowPlan plan = planWindows(static_cast<int64_t>(tokens.size()), options);
    std::vector<RowStats> rows(static_cast<size_t>(plan.tokensScored()));
    const Transformer* models[] = {&reference, &candidate};
    scoreWindows(models, tokens, options, progress, [&](const ScoredChunk& c) {
        const MatrixRM& p = *c.logits[0];
        const MatrixRM& q = *c.logits[1];
        const int64_t vocab = p.cols();
        parallelFor(p.rows(), rowGrainFor(vocab), [&](int64_t r0, int64_t r1) {
            Eigen::ArrayXf lp, lq;
            for (int64_t r = r0; r < r1; ++r) {
                const RowLogSoftmax sp = rowLogSoftmax(p.row(r).data(), vocab);
                const RowLogSoftmax sq = rowLogSoftmax(q.row(r).data(), vocab);
                // log-probabilities; KL(P || Q) = sum p (log p - log q)
                lp = p.row(r).transpose().array() - static_cast<float>(sp.logSumExp);
                lq = q.row(r).transpose().array() - static_cast<float>(sq.logSumExp);
                const double klRow = (lp.exp().cast<double>() * (lp - lq).cast<double>()).sum();
                const int32_t target = c.targets[static_cast<size_t>(r)];
                Eigen::Index ap = 0, aq = 0;
                p.row(r).maxCoeff(&ap);
                q.row(r).maxCoeff(&aq);
                rows[static_cast<size_t>(c.firstRow + r)] = {sp.logSumExp - p(r, target), sq.logSumExp - q(r, target),
                                                             std::max(0.0, klRow), ap == aq};
            }
        });
    });
    MeanAccumulator nllRef, nllCand, delta, kl;
    int64_t agree = 0;
    double klMax = 0;
    for (const RowStats& s : rows) {
        nllRef.add(s.nllRef);
        nllCand.add(s.nllCand);
        delta.add(s.nllCand - s.nllRef);
        kl.add(s.kl);
        klMax = std::max(klMax, s.kl);
        agree += s.agree ? 1 : 0;
    }
    for (const auto& [m, nll] : {std::pair{&reference, nllRef.mean()}, std::pair{&candidate, nllCand.mean()}})
        if (!std::isfinite(nll))
            fail(ErrorCode::Malformed, m->source(),
                 std::string(m == &reference ? "the reference" : "the compared") + " model's logits are not finite (NaN or infinity)");
    ComparisonResult r;
    r.tokensScored = kl.n;
    r.klMean = kl.mean();
    r.klMax = klMax;
    r.top1Agreement = kl.n ? static_cast<double>(agree) / static_cast<double>(kl.n) : 0.0;
    r.nllReference = nllRef.mean();
    r.nllCandidate = nllCand.mean();
    r.deltaNll = delta.mean();
    r.deltaNllStderr = delta.stderrOfMean();
    return r;
}

} // namespace ll
