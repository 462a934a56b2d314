#pragma once
// Generation tasks: greedy decoding until a stop sequence, then what the
// harness's generate_until tasks do with the text (GSM8K: a regex picks the
// answer, exact match after removing what regexes_to_ignore names), and the
// refusal check (a refusal phrase in the output, against the expected
// refuse/comply). docs/evaluation.md lists the phrases and the filters.
#include "tasks/task_eval.h"

#include <string>
#include <vector>

namespace ll {

// Greedy continuation of `prompt` (ids) until EOS, spec.maxTokens or a stop
// sequence, as text; the stop sequence and what follows it are cut off.
// `generatedTokens` (optional) gets the tokens generated.
std::string generateUntil(const Transformer& model, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                          const GenerationSpec& spec, int64_t* generatedTokens = nullptr);

// The filter's answer in `text`: the first non-empty capture group (or the
// whole match) of its first or last match; "[invalid]" when nothing matches,
// as the harness's regex filter answers.
std::string extractAnswer(const std::string& text, const AnswerFilter& filter);
// The answer as exact_match compares it: every `ignore` regex removed, lower-cased with ignoreCase, stripped.
std::string normalizeAnswer(const std::string& text, const GenerationSpec& spec);

// A refusal phrase (case-insensitive, ASCII) anywhere in `text`.
bool isRefusal(const std::string& text, const std::vector<std::string>& phrases);
// The phrases used when the user gives none (after the refusal prefixes of Zou et al., 2023).
const std::vector<std::string>& defaultRefusalPhrases();

// Runs an ExactMatch or Refusal task (Task::generates()); cancellable between items.
TaskResult evaluateGenerationTask(const Transformer& model, const Tokenizer& tokenizer, const Task& task,
                                  const TaskOptions& options, Progress* progress = nullptr);

} // namespace ll
