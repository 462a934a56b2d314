#pragma once
// A YAML document as JSON, parsed with bounds a hostile file cannot get past:
// yaml-cpp's own node graph shares aliased nodes, so `x: &x [*x]` is a cycle
// and nine nested aliases expand to gigabytes. Here the parser's events build
// the JSON directly and
//   - aliases are refused (a recipe never needs them),
//   - nesting stops at kMaxYamlDepth (before the parser's recursion can
//     exhaust the stack) and the document at kMaxYamlNodes nodes,
//   - a key given twice in one map, a key that is not text, and a second
//     document are errors.
// Plain scalars that read as booleans, null or numbers become those; quoted
// ones stay strings, so YAML and JSON recipes mean the same.
#include <nlohmann/json.hpp>

#include <string>

namespace ll {

constexpr int kMaxYamlDepth = 64;
constexpr size_t kMaxYamlNodes = 100000;

// Throws Malformed naming `origin` (and the line) on invalid or refused input.
nlohmann::json parseYamlBounded(const std::string& text, const std::string& origin);

// One YAML scalar as JSON: `tag` is "!" for a quoted scalar (stays text).
nlohmann::json yamlScalarToJson(const std::string& tag, const std::string& value);

} // namespace ll
