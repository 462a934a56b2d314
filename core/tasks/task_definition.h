#pragma once
// A new task without code: a YAML file that names a JSONL data file and says
// how each line becomes a prompt, its choices and its answer, with the
// harness's ideas (doc_to_text, doc_to_choice, doc_to_target) in a small
// template language: "{{field}}" or "{{field.sub}}" is replaced by the line's
// value. docs/evaluation.md has an example.
//
//   layerlab_task: 1
//   name: story_cloze
//   data: story_cloze.jsonl          # relative to this file
//   prompt: "{{story}}"
//   choices: "{{endings}}"           # a field holding a list, or a list of texts
//   target: "{{answer}}"             # an index, or the text of a choice
//   target_delimiter: " "            # between the prompt and a choice (default " ")
//   fewshot_delimiter: "\n\n"        # between few-shot examples (default "\n\n")
//   description: ""                  # before the few-shot examples
//   metric: acc                      # acc | acc_norm (acc and acc_norm) | last_word
#include "tasks/task.h"

#include <nlohmann/json.hpp>

#include <string>

namespace ll {

Task loadTaskDefinition(const std::string& path);

// "{{a.b}}" replaced by the values of `doc` (text and numbers); throws Malformed
// naming `origin` for a missing field or a value that is not text.
std::string fillTemplate(const std::string& templ, const nlohmann::json& doc, const std::string& origin);

} // namespace ll
