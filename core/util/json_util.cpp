#include "util/json_util.h"

#include "util/error.h"
#include "util/input_file.h"

#include <fstream>
#include <sstream>

namespace ll {

nlohmann::json readJsonFile(const std::string& path)
{
    const std::string text = readInputFile(path, kMaxConfigFileBytes, "the JSON file");
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(ErrorCode::Malformed, path, std::string("not valid JSON (") + e.what() + ")");
    }
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
