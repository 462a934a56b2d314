#pragma once
// Rank correlations with confidence intervals, for "does perplexity predict
// the task results?" across compressed configurations:
//   Spearman's rho: Pearson's correlation of the ranks (ties get their mean rank);
//   Kendall's tau-b: (concordant - discordant) / sqrt((n0 - n1)(n0 - n2)), ties in
//     either variable counted as neither (n1, n2: tied pairs in x, in y).
// Confidence intervals by Fisher's z-transform with Fieller, Hartley and Pearson's
// (1957) standard errors: 1.06 / sqrt(n - 3) for rho, 0.437 / sqrt(n - 4) for tau;
// tanh(atanh(r) ± z * se). With a handful of configurations they are wide, honestly.
#include <span>

namespace ll {

struct RankCorrelation {
    double value = 0;
    double low = -1, high = 1;   // the confidence interval (the whole [-1, 1] when n is too small)
    int n = 0;
};

// x and y of equal length (at least 2); a constant variable gives 0 with the whole interval.
RankCorrelation spearman(std::span<const double> x, std::span<const double> y, double confidence = 0.95);
RankCorrelation kendallTau(std::span<const double> x, std::span<const double> y, double confidence = 0.95);

} // namespace ll
