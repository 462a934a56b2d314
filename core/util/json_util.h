#pragma once
// Typed access to JSON files and fields with errors a user can read.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace ll {

// JSON nested deeper than this is refused before it is parsed: copying,
// comparing and printing a json value recurse once per level, so a file of
// a million '[' would overflow the stack long after parsing succeeded.
constexpr int kMaxJsonDepth = 128;

// Parses JSON text; Malformed errors (invalid JSON, nesting deeper than
// kMaxJsonDepth) name `file` and say what the text is (`what`: "header").
nlohmann::json parseJsonText(std::string_view text, const std::string& file, const std::string& what = "the file");

// Serializes without ever throwing: text that is not UTF-8 (a GGUF tensor
// name, a string from a YAML file) becomes U+FFFD instead of an exception
// from inside a save or an autosave.
std::string dumpJson(const nlohmann::json& j, int indent = -1);

// The offset of the first byte that is not part of well-formed UTF-8
// (overlong forms, surrogates and code points past U+10FFFF are not), or
// std::string_view::npos when the whole text is.
size_t firstInvalidUtf8(std::string_view text);

// Parses a JSON file (at most kMaxConfigFileBytes); Io / Malformed errors name the file.
nlohmann::json readJsonFile(const std::string& path);

// Integer field in [lo, hi]; missing or null -> fallback. Wrong type or range -> Malformed.
int64_t jsonInt(const nlohmann::json& j, const char* key, int64_t fallback, int64_t lo, int64_t hi,
                const std::string& file);
double jsonNumber(const nlohmann::json& j, const char* key, double fallback, const std::string& file);
bool jsonBool(const nlohmann::json& j, const char* key, bool fallback, const std::string& file);
std::string jsonString(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& file);

} // namespace ll
