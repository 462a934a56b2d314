#pragma once
// Perplexity as a proxy for task accuracy: over several configurations of one
// model (the original, RTN and GPTQ at several bits, pruning, low rank...), the
// rank correlation between perplexity and each task's main metric, with
// confidence intervals. A strongly negative rho says perplexity ranks the
// configurations as the task does; an interval that spans 0 says it cannot tell.
#include "stats/rank_correlation.h"
#include "tasks/task_eval.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ll {

struct ProxyConfig {
    std::string name;                 // "original", the recipe's file or badge
    double ppl = 0;
    std::vector<TaskResult> tasks;    // the same tasks, in the same order, for every configuration
};

struct ProxyCorrelation {
    std::string task, metric;         // the task's main metric (acc, mc2, ...)
    RankCorrelation spearman, kendall;
};

// One correlation per task; needs at least 2 configurations (InvalidArgument otherwise).
std::vector<ProxyCorrelation> perplexityAsProxy(const std::vector<ProxyConfig>& configs);

// Configurations, their perplexities and metrics, and the correlations, for --json and the HDF5 report.
nlohmann::json proxyJson(const std::vector<ProxyConfig>& configs, const std::vector<ProxyCorrelation>& correlations);

} // namespace ll
