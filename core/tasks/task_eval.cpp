#include "tasks/task_eval.h"

#include "tasks/generation_eval.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/threads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>

namespace ll {

// The harness's standard error of a mean: sample standard deviation (n - 1) / sqrt(n).
MetricValue meanWithStderr(const std::string& name, const std::vector<double>& x)
{
    MetricValue m{name, 0, 0};
    const double n = static_cast<double>(x.size());
    if (x.empty())
        return m;
    for (const double v : x)
        m.value += v;
    m.value /= n;
    if (x.size() > 1) {
        double ss = 0;
        for (const double v : x)
            ss += (v - m.value) * (v - m.value);
        m.standardError = std::sqrt(ss / (n - 1) / n);
    }
    return m;
}

namespace {

int argmaxFirst(const std::vector<double>& v)
{
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin()); // first of equal maxima, as np.argmax
}

std::string itemWhere(const Task& task, int index) { return task.name + " item " + std::to_string(index + 1); }

} // namespace

const MetricValue* TaskResult::metric(const std::string& name) const
{
    for (const MetricValue& m : metrics)
        if (m.name == name)
            return &m;
    return nullptr;
}

int64_t choiceLength(const std::string& choice)
{
    int64_t n = 0;
    for (const char c : choice)
        n += (static_cast<unsigned char>(c) & 0xC0) != 0x80; // count lead bytes, not continuation bytes
    return n;
}

std::vector<LoglikelihoodRequest> itemRequests(const Task& task, int index, const Tokenizer& tokenizer, const TaskOptions& options)
{
    const TaskItem& item = task.items.at(static_cast<size_t>(index));
    const std::string prefix = promptPrefix(task, index, options.shots, options.seed);
    std::vector<LoglikelihoodRequest> requests;
    for (int c = 0; c < item.choiceCount(); ++c) {
        std::string context = prefix + item.contextOf(c);
        std::string continuation = item.continuationOf(c);
        // The harness's _encode_pair: spaces ending the context begin the continuation.
        const size_t kept = context.find_last_not_of(' ') == std::string::npos ? 0 : context.find_last_not_of(' ') + 1;
        continuation.insert(0, context, kept, std::string::npos);
        context.resize(kept);
        LoglikelihoodRequest r;
        r.context = tokenizer.encode(context, options.addBos);
        const std::vector<int32_t> whole = tokenizer.encode(context + continuation, options.addBos);
        if (whole.size() <= r.context.size())
            fail(ErrorCode::Malformed, task.source, itemWhere(task, index) + ": choice " + std::to_string(c + 1) + " is empty once tokenized");
        r.continuation.assign(whole.begin() + static_cast<std::ptrdiff_t>(r.context.size()), whole.end());
        if (r.context.empty()) { // the harness's prefix token for an empty context: BOS, else EOS (GPT-2's end of text)
            const int32_t start = tokenizer.bosId() >= 0 ? tokenizer.bosId() : tokenizer.eosId();
            if (start < 0)
                fail(ErrorCode::Malformed, task.source, itemWhere(task, index) + ": the context is empty and the tokenizer has no BOS or EOS to start with");
            r.context = {start};
        }
        requests.push_back(std::move(r));
    }
    return requests;
}

ItemResult itemScore(const Task& task, int index, const std::vector<LoglikelihoodResult>& choices)
{
    const TaskItem& item = task.items.at(static_cast<size_t>(index));
    ItemResult r;
    for (const LoglikelihoodResult& c : choices) {
        r.logLikelihoods.push_back(c.logLikelihood);
        r.greedy.push_back(c.greedy ? 1 : 0);
    }
    r.predicted = argmaxFirst(r.logLikelihoods);
    std::vector<double> normed(r.logLikelihoods.size());
    for (size_t i = 0; i < normed.size(); ++i)
        normed[i] = r.logLikelihoods[i] / static_cast<double>(std::max<int64_t>(1, choiceLength(item.choices[i])));
    r.predictedNorm = argmaxFirst(normed);
    switch (task.metric) {
    case TaskMetric::Choice:
        r.score = r.predicted == item.gold ? 1 : 0;
        break;
    case TaskMetric::LastWord:
        r.score = !r.greedy.empty() && r.greedy[0] ? 1 : 0;
        break;
    case TaskMetric::Mc2: {
        // TruthfulQA MC2: p_i = exp(ll_i) over every choice, the true ones' share of it.
        const double top = *std::max_element(r.logLikelihoods.begin(), r.logLikelihoods.end());
        double all = 0, truth = 0;
        for (size_t i = 0; i < r.logLikelihoods.size(); ++i) {
            const double p = std::exp(r.logLikelihoods[i] - top);
            all += p;
            if (std::find(item.trueChoices.begin(), item.trueChoices.end(), static_cast<int>(i)) != item.trueChoices.end())
                truth += p;
        }
        r.score = truth / all;
        break;
    }
    case TaskMetric::ExactMatch:
    case TaskMetric::Refusal:
        break; // generation tasks are scored by evaluateGenerationTask, not by log-likelihoods
    }
    return r;
}

std::vector<MetricValue> taskMetrics(const Task& task, const std::vector<ItemResult>& items)
{
    std::vector<double> score, norm, ll;
    for (size_t i = 0; i < items.size(); ++i) {
        score.push_back(items[i].score);
        norm.push_back(items[i].predictedNorm == task.items[i].gold ? 1 : 0);
        ll.push_back(items[i].logLikelihoods.empty() ? 0 : items[i].logLikelihoods[0]);
    }
    switch (task.metric) {
    case TaskMetric::Choice: {
        std::vector<MetricValue> m{meanWithStderr("acc", score)};
        if (task.reportsAccNorm)
            m.push_back(meanWithStderr("acc_norm", norm));
        return m;
    }
    case TaskMetric::Mc2:
        return {meanWithStderr("mc2", score)};
    case TaskMetric::LastWord: {
        // The harness's perplexity: exp(-mean log-likelihood of the last word).
        MetricValue meanLl = meanWithStderr("ll", ll);
        const double ppl = std::exp(-meanLl.value);
        return {meanWithStderr("acc", score), MetricValue{"perplexity", ppl, ppl * meanLl.standardError}};
    }
    case TaskMetric::ExactMatch:
    case TaskMetric::Refusal:
        break; // evaluateGenerationTask's metrics
    }
    return {};
}

nlohmann::json taskResultToJson(const TaskResult& r, bool perItem)
{
    nlohmann::json metrics = nlohmann::json::object();
    for (const MetricValue& m : r.metrics)
        metrics[m.name] = {{"value", m.value}, {"stderr", m.standardError}};
    nlohmann::json j{{"task", r.task},        {"source", r.source},       {"shots", r.shots},
                     {"items", r.items},      {"chance", r.chance},       {"metrics", metrics},
                     {"positions_run", r.positionsRun}, {"positions_alone", r.positionsAlone}, {"seconds", r.seconds}};
    if (perItem) {
        nlohmann::json items = nlohmann::json::array();
        for (const ItemResult& it : r.perItem)
            items.push_back({{"loglikelihoods", it.logLikelihoods}, {"greedy", it.greedy}, {"predicted", it.predicted},
                             {"predicted_norm", it.predictedNorm}, {"score", it.score}});
        j["per_item"] = items;
        if (!r.generations.empty())
            j["generations"] = r.generations;
    }
    return j;
}

TaskResult taskResultFromJson(const nlohmann::json& j, const std::string& origin)
{
    try {
        TaskResult r;
        r.task = j.at("task").get<std::string>();
        r.source = j.value("source", std::string());
        r.shots = j.value("shots", 0);
        r.items = j.at("items").get<int64_t>();
        r.chance = j.value("chance", 0.0);
        r.positionsRun = j.value("positions_run", int64_t{0});
        r.positionsAlone = j.value("positions_alone", int64_t{0});
        r.seconds = j.value("seconds", 0.0);
        // The main metric first, as evaluateTask orders them.
        static const char* const order[] = {"acc", "mc2", "acc_norm", "perplexity", "refusal_rate", "compliance_rate"};
        for (const char* name : order)
            if (const auto m = j.at("metrics").find(name); m != j.at("metrics").end())
                r.metrics.push_back({name, m->at("value").get<double>(), m->value("stderr", 0.0)});
        for (const auto& [name, m] : j.at("metrics").items()) // exact_match and its filters, in the file's order
            if (name.starts_with("exact_match"))
                r.metrics.push_back({name, m.at("value").get<double>(), m.value("stderr", 0.0)});
        if (r.metrics.empty() || r.items <= 0)
            fail(ErrorCode::Malformed, origin, "a task result without metrics or items");
        return r;
    } catch (const nlohmann::json::exception& e) {
        fail(ErrorCode::Malformed, origin, std::string("a task result is malformed: ") + e.what());
    }
}

int64_t itemsToRun(const Task& task, const TaskOptions& options)
{
    const auto all = static_cast<int64_t>(task.items.size());
    return options.limit > 0 ? std::min(options.limit, all) : all;
}

void forEachItem(const Task& task, int64_t count, Progress* progress, const std::function<void(int64_t)>& work)
{
    std::atomic<int64_t> done{0};
    std::mutex progressLock;
    runParallel(count, [&](int64_t i) {
        throwIfCancelled(progress);
        work(i);
        const int64_t finished = ++done;
        if (progress) {
            std::lock_guard lock(progressLock);
            progress->report(static_cast<double>(finished) / static_cast<double>(count),
                             task.name + ": item " + std::to_string(finished) + " of " + std::to_string(count));
        }
    });
}

TaskResult evaluateTask(const Transformer& model, const Tokenizer& tokenizer, const Task& task, const TaskOptions& options,
                        Progress* progress)
{
    if (task.generates())
        return evaluateGenerationTask(model, tokenizer, task, options, progress);
    const auto started = std::chrono::steady_clock::now();
    const int64_t count = itemsToRun(task, options);
    const int64_t positions = model.config().maxPositions > 1 ? model.config().maxPositions : 2048;
    const int64_t maxLength = options.maxLength > 0 ? std::min(options.maxLength, positions) : positions;
    // Positions a whole pass of one request holds (it is cut from the left to maxLength).
    const auto passPositions = [maxLength](const LoglikelihoodRequest& r) {
        return std::min<int64_t>(static_cast<int64_t>(r.context.size() + r.continuation.size()) - 1, maxLength);
    };

    // Tokenizing is quick and the tokenizers keep caches: done here, on one thread.
    std::vector<std::vector<LoglikelihoodRequest>> requests(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i)
        requests[static_cast<size_t>(i)] = itemRequests(task, static_cast<int>(i), tokenizer, options);

    TaskResult result;
    result.task = task.name;
    result.source = task.source;
    result.shots = options.shots;
    result.items = count;
    result.perItem.resize(static_cast<size_t>(count));
    std::vector<int64_t> run(static_cast<size_t>(count), 0);
    // Items are independent: one per thread, each with its own KV cache.
    forEachItem(task, count, progress, [&](int64_t i) {
        const auto& reqs = requests[static_cast<size_t>(i)];
        std::vector<LoglikelihoodResult> scored;
        if (options.sharedPrefix) {
            scored = scoreSharedPrefix(model, reqs, maxLength, &run[static_cast<size_t>(i)]);
        } else {
            for (const LoglikelihoodRequest& r : reqs) {
                scored.push_back(scoreAlone(model, r, maxLength));
                run[static_cast<size_t>(i)] += passPositions(r);
            }
        }
        result.perItem[static_cast<size_t>(i)] = itemScore(task, static_cast<int>(i), scored);
    });
    result.metrics = taskMetrics(task, result.perItem); // the first `count` items: those perItem holds
    for (int64_t i = 0; i < count; ++i) {
        result.positionsRun += run[static_cast<size_t>(i)];
        for (const LoglikelihoodRequest& r : requests[static_cast<size_t>(i)])
            result.positionsAlone += passPositions(r);
        if (task.metric != TaskMetric::LastWord)
            result.chance += 1.0 / task.items[static_cast<size_t>(i)].choiceCount() / static_cast<double>(count);
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

} // namespace ll
