#include "methods/method_params.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ll {

namespace {

[[noreturn]] void bad(const std::string& message)
{
    fail(ErrorCode::InvalidArgument, "", message);
}

} // namespace

std::string ParamSource::valueOr(const std::string& key, const std::string& fallback) const
{
    const auto v = value(key);
    return v ? *v : fallback;
}

long long ParamSource::intOr(const std::string& key, long long fallback, long long lo, long long hi) const
{
    const auto v = value(key);
    if (!v)
        return fallback;
    char* end = nullptr;
    const long long x = std::strtoll(v->c_str(), &end, 10);
    if (end == v->c_str() || *end != '\0' || x < lo || x > hi)
        bad(key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

double ParamSource::doubleOr(const std::string& key, double fallback) const
{
    const auto v = value(key);
    if (!v)
        return fallback;
    char* end = nullptr;
    const double x = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0' || !std::isfinite(x))
        bad(key + " must be a number");
    return x;
}

std::string canonicalKey(std::string key)
{
    std::replace(key.begin(), key.end(), '_', '-');
    return key;
}

JsonParams::JsonParams(const nlohmann::json& object) : object_(nlohmann::json::object())
{
    if (!object.is_object())
        bad("a step's parameters must be a mapping of names to values");
    for (const auto& [key, v] : object.items()) {
        if (!(v.is_string() || v.is_number() || v.is_boolean()))
            bad("parameter '" + key + "' must be a string, a number or true/false");
        object_[canonicalKey(key)] = v;
    }
}

std::optional<std::string> JsonParams::value(const std::string& key) const
{
    const auto it = object_.find(canonicalKey(key));
    if (it == object_.end() || it->is_boolean())
        return std::nullopt;
    if (it->is_string())
        return it->get<std::string>();
    if (it->is_number_integer())
        return std::to_string(it->get<long long>());
    // Shortest text that reads back as the same double.
    char buf[64];
    for (int precision = 15; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, it->get<double>());
        if (std::strtod(buf, nullptr) == it->get<double>())
            break;
    }
    return std::string(buf);
}

bool JsonParams::flag(const std::string& key) const
{
    const auto it = object_.find(canonicalKey(key));
    if (it == object_.end())
        return false;
    if (it->is_boolean())
        return it->get<bool>();
    bad(key + " must be true or false");
}

std::vector<std::string> JsonParams::keys() const
{
    std::vector<std::string> out;
    for (const auto& [key, v] : object_.items())
        out.push_back(key);
    return out;
}

std::set<std::string> JsonParams::unknownKeys(const std::set<std::string>& known) const
{
    std::set<std::string> unknown;
    for (const auto& [key, v] : object_.items())
        if (!known.count(key))
            unknown.insert(key);
    return unknown;
}

const std::string& ParamValues::text(const std::string& key) const
{
    const auto it = values_.find(key);
    if (it == values_.end())
        bad("the method reads a parameter it does not declare: " + key);
    return it->second;
}

long long ParamValues::integer(const std::string& key) const
{
    return std::strtoll(text(key).c_str(), nullptr, 10);
}

double ParamValues::real(const std::string& key) const
{
    return std::strtod(text(key).c_str(), nullptr);
}

bool ParamValues::flag(const std::string& key) const
{
    return text(key) == "true";
}

} // namespace ll
