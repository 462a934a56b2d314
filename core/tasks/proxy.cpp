#include "tasks/proxy.h"

#include "util/error.h"

namespace ll {

std::vector<ProxyCorrelation> perplexityAsProxy(const std::vector<ProxyConfig>& configs)
{
    if (configs.size() < 2)
        fail(ErrorCode::InvalidArgument, "", "a correlation needs at least two configurations");
    std::vector<double> ppl;
    for (const ProxyConfig& c : configs) {
        if (c.tasks.size() != configs[0].tasks.size())
            fail(ErrorCode::InvalidArgument, "", "configuration " + c.name + " was scored on other tasks");
        ppl.push_back(c.ppl);
    }
    std::vector<ProxyCorrelation> out;
    for (size_t t = 0; t < configs[0].tasks.size(); ++t) {
        std::vector<double> metric;
        for (const ProxyConfig& c : configs)
            metric.push_back(c.tasks[t].metrics.at(0).value);
        ProxyCorrelation p;
        p.task = configs[0].tasks[t].task;
        p.metric = configs[0].tasks[t].metrics.at(0).name;
        p.spearman = spearman(ppl, metric);
        p.kendall = kendallTau(ppl, metric);
        out.push_back(p);
    }
    return out;
}

nlohmann::json proxyJson(const std::vector<ProxyConfig>& configs, const std::vector<ProxyCorrelation>& correlations)
{
    nlohmann::json names = nlohmann::json::array(), ppl = nlohmann::json::array(), metrics = nlohmann::json::object();
    for (const ProxyConfig& c : configs) {
        names.push_back(c.name);
        ppl.push_back(c.ppl);
        for (const TaskResult& t : c.tasks) {
            metrics[t.task]["value"].push_back(t.metrics.at(0).value);
            metrics[t.task]["stderr"].push_back(t.metrics.at(0).standardError);
            metrics[t.task]["metric"] = t.metrics.at(0).name;
        }
    }
    nlohmann::json corr = nlohmann::json::object();
    const auto rc = [](const RankCorrelation& r) { return nlohmann::json{{"value", r.value}, {"low", r.low}, {"high", r.high}, {"n", r.n}}; };
    for (const ProxyCorrelation& p : correlations)
        corr[p.task] = {{"metric", p.metric}, {"spearman", rc(p.spearman)}, {"kendall", rc(p.kendall)}};
    return {{"configs", names}, {"ppl", ppl}, {"metrics", metrics}, {"correlation_with_ppl", corr}, {"confidence", 0.95}};
}

} // namespace ll
