#pragma once
// Log-likelihood tasks as EleutherAI's lm-evaluation-harness defines them: an
// item is one or more contexts and the continuations scored after them; the
// model's answer is the choice whose continuation it finds most likely.
//
//   multiple choice (HellaSwag, ARC, PIQA, BoolQ, MMLU, TruthfulQA MC1, generic):
//     one context, choice i scored as  context + delimiter + choices[i]
//   partial scoring (WinoGrande): choice i is a context of its own,
//     contexts[i] + delimiter + the sentence's shared suffix is scored on the suffix
//   TruthfulQA MC2: choices as above, the metric is the probability mass on the true ones
//   last word (LAMBADA): one choice, scored as right when every token is the argmax
//
// Prompt formats per task, with citations: docs/evaluation.md.
#include <cstdint>
#include <string>
#include <vector>

namespace ll {

enum class TaskMetric {
    Choice,     // acc (argmax of the summed log-likelihood) and acc_norm (divided by the choice's length)
    Mc2,        // normalised probability mass on the true choices (TruthfulQA MC2)
    LastWord,   // acc = greedy decoding reproduces the continuation; perplexity = exp(-mean log-likelihood)
    ExactMatch, // generation (greedy, until a stop sequence), an answer extracted by each filter, exact match
    Refusal,    // generation, refused = a refusal phrase in the output; against the expected refuse/comply
};

// A regular expression (ECMAScript) that picks the answer out of a generation:
// its first non-empty capture group (or the whole match) of the first or last match.
struct AnswerFilter {
    std::string name;        // "strict-match", "flexible-extract"
    std::string regex;
    bool lastMatch = false;  // the harness's group_select -1
};

// How a generation task generates and compares (the harness's generation_kwargs,
// filter_list and exact_match options).
struct GenerationSpec {
    std::vector<std::string> stop{"\n\n"};   // generation ends before the first of these
    int64_t maxTokens = 256;
    std::vector<AnswerFilter> filters;        // none: the whole generation, stripped
    std::vector<std::string> ignore;          // regexes removed from the answer and the reference before comparing
    bool ignoreCase = false;
    std::vector<std::string> refusalPhrases;  // Refusal: any of these (case-insensitive) marks a refusal
};

struct TaskItem {
    // One context shared by every choice, or one per choice (partial scoring).
    std::vector<std::string> contexts;
    // What is scored after the context: one per choice, or one shared by every
    // context (partial scoring). Each already begins with the target delimiter.
    std::vector<std::string> continuations;
    // The choices as the harness's doc_to_choice gives them, for acc_norm's
    // length (without the delimiter) and for display.
    std::vector<std::string> choices;
    int gold = 0;                    // index of the right choice (Choice, LastWord)
    std::vector<int> trueChoices;    // Mc2: indices of the true answers
    std::string group;               // few-shot examples come from items of the same group (MMLU's subject)
    std::string description;         // text before the few-shot examples (MMLU's subject line)

    int choiceCount() const { return static_cast<int>(choices.size()); }
    // Context and continuation of choice i.
    const std::string& contextOf(int i) const { return contexts.size() == 1 ? contexts[0] : contexts[static_cast<size_t>(i)]; }
    const std::string& continuationOf(int i) const
    {
        return continuations.size() == 1 ? continuations[0] : continuations[static_cast<size_t>(i)];
    }
    // The item as a solved few-shot example: the gold choice's context and continuation.
    std::string solvedExample() const { return contextOf(gold) + continuationOf(gold); }
};

struct Task {
    std::string name;                // "hellaswag", "arc", ... or a task definition's name
    std::string source;              // the file the items came from (errors and reports name it)
    TaskMetric metric = TaskMetric::Choice;
    bool reportsAccNorm = false;     // the harness reports acc_norm for this task
    std::string fewshotDelimiter = "\n\n";
    std::vector<TaskItem> items;
    // ExactMatch items: contexts = {prompt}, continuations = {delimiter + reference}, choices = {reference};
    // Refusal items: contexts = {prompt}, gold = 1 when a refusal is expected, 0 when compliance is.
    GenerationSpec generation;
    bool generates() const { return metric == TaskMetric::ExactMatch || metric == TaskMetric::Refusal; }
};

// The few-shot examples of item `index`: `shots` other items drawn without
// replacement (from the same group when the item has one and the group is large
// enough), with a generator seeded by `seed` and the item's index, so a prompt
// does not depend on which other items are evaluated or on the thread count.
std::vector<int> fewshotExamples(const Task& task, int index, int shots, uint64_t seed);

// The text before item `index`'s context i, as the harness builds it:
//   description + example_1 + delim + ... + example_k + delim
// (an empty string at 0 shots without a description).
std::string promptPrefix(const Task& task, int index, int shots, uint64_t seed);

} // namespace ll
