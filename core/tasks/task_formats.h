#pragma once
// Task files in the formats people have on disk (the Hugging Face datasets'
// fields, one JSON object per line; MMLU also as the original CSV), turned into
// Tasks with lm-evaluation-harness's prompts. docs/evaluation.md lists each
// format's fields, prompt and metrics, with the harness's task it follows.
#include "tasks/task.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ll {

enum class TaskFormat {
    HellaSwag,
    Arc,
    Mmlu,
    Piqa,
    WinoGrande,
    BoolQ,
    TruthfulQaMc1,
    TruthfulQaMc2,
    Lambada,
    MultipleChoice,   // generic: context, choices, label
    Gsm8k,            // generation: question, answer ("... #### 72")
    Generate,         // generation: prompt, answer (exact match of the stripped output)
    Refusal,          // generation: prompt, expected (refuse / comply)
};

struct TaskFormatInfo {
    TaskFormat format;
    const char* name;      // as `--tasks NAME=FILE` spells it
    const char* fields;    // what each line must hold, for usage text and errors
    const char* metrics;   // what is reported, as the harness names it
};
std::span<const TaskFormatInfo> taskFormats();
// "hellaswag", "arc_easy", "ARC-Challenge", "truthfulqa_mc2", ... (case and - or _ do not matter).
std::optional<TaskFormat> taskFormatNamed(std::string_view name);
const TaskFormatInfo& taskFormatInfo(TaskFormat format);

// Reads `path` as `format`. Throws Malformed naming the file and line for a
// line that is not JSON or lacks a field, and Io/OutOfRange for a path that is
// not a regular file or is larger than a text may be.
Task loadTaskFile(TaskFormat format, const std::string& path);

// Refusal phrases for refusal tasks, one per line (empty lines skipped); the defaults when `path` is empty.
std::vector<std::string> loadRefusalPhrases(const std::string& path);

// A task definition (YAML, `layerlab_task: 1`): data file, prompt template,
// choices, target, metric. docs/evaluation.md shows one.
Task loadTaskDefinition(const std::string& path);

// Calls fn(object, line number) for every line of a JSONL text that is not blank;
// a line that is not a JSON object is Malformed naming `path` and the line
// (`hint`, when not empty, follows in brackets: what a line should hold).
void forEachJsonLine(const std::string& text, const std::string& path, const std::string& hint,
                     const std::function<void(const nlohmann::json&, int64_t)>& fn);

// The format a file looks like: its first item's fields (ctx_a/endings:
// HellaSwag, answerKey: ARC, sol1: PIQA, ...), a .csv is MMLU. nullopt when
// nothing fits (and for a task definition, which loadTask reads by its .yaml).
std::optional<TaskFormat> guessTaskFormat(const std::string& path);

// `name` is a format's name (then `path` is the data) or "": a .yaml/.yml path
// is a task definition, any other file's format is guessed.
Task loadTask(const std::string& name, const std::string& path);

// The harness's HellaSwag cleaning (WikiHow's "[title]" and other bracketed
// artefacts) and Python's str.capitalize, for ASCII. Exposed for tests.
std::string hellaswagPreprocess(std::string_view text);
std::string pythonCapitalize(std::string_view text);

} // namespace ll
