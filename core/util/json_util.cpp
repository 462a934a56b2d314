#include "util/json_util.h"

#include "util/error.h"
#include "util/input_file.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace ll {

namespace {
// The deepest nesting of [ and { outside strings (a linear scan, before parsing).
int nestingDepth(std::string_view text, int limit)
{
    int depth = 0, deepest = 0;
    bool inString = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (inString) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                inString = false;
        } else if (c == '"') {
            inString = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit)
                return deepest;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}
} // namespace

nlohmann::json parseJsonText(std::string_view text, const std::string& file, const std::string& what)
{
    if (nestingDepth(text, kMaxJsonDepth) > kMaxJsonDepth)
        fail(ErrorCode::Malformed, file,
             what + " nests lists and objects more than " + std::to_string(kMaxJsonDepth) + " levels deep");
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        fail(ErrorCode::Malformed, file, what + " is not valid JSON (" + e.what() + ")");
    }
}

std::string dumpJson(const nlohmann::json& j, int indent)
{
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

size_t firstInvalidUtf8(std::string_view s)
{
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        const size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (len == 0 || i + len > s.size())
            return i;
        for (size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
                return i;
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
            return i; // overlong, surrogate, past U+10FFFF
        i += len;
    }
    return std::string_view::npos;
}

nlohmann::json readJsonFile(const std::string& path)
{
    return parseJsonText(readInputFile(path, kMaxConfigFileBytes, "the JSON file"), path, "the file");
}

int64_t jsonInt(const nlohmann::json& j, const char* key, int64_t fallback, int64_t lo, int64_t hi,
                const std::string& file)
{
    if (!j.is_object() || !j.contains(key) || j[key].is_null())
        return fallback;
    const auto& v = j[key];
    if (!v.is_number_integer())
        fail(ErrorCode::Malformed, file, std::string("\"") + key + "\" must be an integer");
    // Printed as given (v.dump()): 2^63 stays 9223372036854775808, not a negative int64.
    const bool tooLarge = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
    const int64_t x = tooLarge ? INT64_MAX : v.get<int64_t>();
    if (tooLarge || x < lo || x > hi)
        fail(ErrorCode::Malformed, file,
             std::string("\"") + key + "\" = " + v.dump() + " is outside [" + std::to_string(lo) + ", "
                 + std::to_string(hi) + "]");
    return x;
}

double jsonNumber(const nlohmann::json& j, const char* key, double fallback, const std::string& file)
{
    if (!j.is_object() || !j.contains(key) || j[key].is_null())
        return fallback;
    if (!j[key].is_number())
        fail(ErrorCode::Malformed, file, std::string("\"") + key + "\" must be a number");
    return j[key].get<double>();
}

bool jsonBool(const nlohmann::json& j, const char* key, bool fallback, const std::string& file)
{
    if (!j.is_object() || !j.contains(key) || j[key].is_null())
        return fallback;
    if (!j[key].is_boolean())
        fail(ErrorCode::Malformed, file, std::string("\"") + key + "\" must be true or false");
    return j[key].get<bool>();
}

std::string jsonString(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& file)
{
    if (!j.is_object() || !j.contains(key) || j[key].is_null())
        return fallback;
    if (!j[key].is_string())
        fail(ErrorCode::Malformed, file, std::string("\"") + key + "\" must be a string");
    return j[key].get<std::string>();
}

} // namespace ll
