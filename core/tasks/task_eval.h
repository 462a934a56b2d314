#pragma once
// Running a Task on a model: every item's requests built (few-shot prompt,
// tokens as the harness splits them), scored with a shared prefix per item,
// and the harness's metrics with their standard errors.
#include "tasks/loglikelihood.h"
#include "tasks/task.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ll {

class Progress;
class Tokenizer;

struct TaskOptions {
    int shots = 0;
    uint64_t seed = 1234;         // the few-shot draw (the harness's default seed)
    int64_t limit = 0;            // the first N items (0: all)
    bool addBos = true;           // tokens start as the model's tokenizer starts a text (BOS where it adds one)
    int64_t maxLength = 0;        // positions per pass; 0: the model's (2048 when it does not say)
    bool sharedPrefix = true;     // false: every choice as a whole pass of its own (slower, the reference)
};

struct MetricValue {
    std::string name;             // "acc", "acc_norm", "mc2", "perplexity"
    double value = 0;
    double standardError = 0;            // of the mean over items (sample std / sqrt(n)); perplexity: by the delta method
};

struct ItemResult {
    std::vector<double> logLikelihoods;  // per choice (nats)
    std::vector<uint8_t> greedy;         // per choice: every token the argmax
    int predicted = 0;                   // argmax of logLikelihoods
    int predictedNorm = 0;               // argmax of logLikelihoods / choice length
    double score = 0;                    // acc (0/1) or mc2 (the true answers' share)
};

struct TaskResult {
    std::string task;
    std::string source;
    int shots = 0;
    int64_t items = 0;
    std::vector<MetricValue> metrics;    // the first is the task's main metric
    std::vector<ItemResult> perItem;     // log-likelihood tasks
    std::vector<std::string> generations; // generation tasks: each item's output
    double chance = 0;                   // acc of guessing uniformly (mean of 1 / choices); 0 for LastWord
    int64_t positionsRun = 0;            // positions that went through the model
    int64_t positionsAlone = 0;          // ... had every choice been run alone (the shared prefix's saving)
    double seconds = 0;

    const MetricValue* metric(const std::string& name) const;
};

// The items a run scores: the first options.limit of the task's (all when 0).
int64_t itemsToRun(const Task& task, const TaskOptions& options);
// Runs work(i) for items [0, count), one item per thread, cancellable between
// items (throws Cancelled), reporting "task: item k of n" as they finish.
void forEachItem(const Task& task, int64_t count, Progress* progress, const std::function<void(int64_t)>& work);

// The requests of item `index`: one per choice, tokenized as the harness does
// (trailing spaces of the context move to the continuation; the continuation's
// tokens are those of context + continuation after the context's own tokens).
std::vector<LoglikelihoodRequest> itemRequests(const Task& task, int index, const Tokenizer& tokenizer, const TaskOptions& options);

// Throws Cancelled between items when progress asks.
TaskResult evaluateTask(const Transformer& model, const Tokenizer& tokenizer, const Task& task, const TaskOptions& options,
                        Progress* progress = nullptr);

// A result as JSON ({"task", "source", "shots", "items", "chance", "metrics": {name: {value, stderr}},
// "positions_run", "positions_alone", "seconds"}, with "per_item" when asked) and back (sessions, --json).
// taskResultFromJson throws Malformed naming `origin` for a document that is not one.
nlohmann::json taskResultToJson(const TaskResult& r, bool perItem = false);
TaskResult taskResultFromJson(const nlohmann::json& j, const std::string& origin);

// Metrics of a task from its items' results (exposed for tests with hand-made log-likelihoods).
ItemResult itemScore(const Task& task, int index, const std::vector<LoglikelihoodResult>& choices);
std::vector<MetricValue> taskMetrics(const Task& task, const std::vector<ItemResult>& items);
// The mean of per-item scores with the harness's standard error (sample std / sqrt(n)).
MetricValue meanWithStderr(const std::string& name, const std::vector<double>& scores);
// Length of a choice for acc_norm: Unicode code points, as Python's len() counts (bytes for ASCII).
int64_t choiceLength(const std::string& choice);

} // namespace ll
