#include "args.h"

#include <cstdio>
#include <cstdlib>

namespace ll::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& valued, const std::set<std::string>& flags)
{
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.size() < 2 || a[0] != '-' || a == "-") {
            positional_.push_back(a);
            continue;
        }
        std::string key = a.substr(a[1] == '-' ? 2 : 1);
        std::optional<std::string> inlineValue;
        if (auto eq = key.find('='); eq != std::string::npos) {
            inlineValue = key.substr(eq + 1);
            key = key.substr(0, eq);
        }
        if (valued.count(key)) {
            if (inlineValue) {
                values_[key] = *inlineValue;
            } else {
                if (i + 1 >= argv.size())
                    throw UsageError("option --" + key + " needs a value");
                values_[key] = argv[++i];
            }
        } else if (flags.count(key) && !inlineValue) {
            flags_.insert(key);
        } else {
            throw UsageError("unknown option --" + key);
        }
    }
}

std::string Args::positionalAt(size_t i, const char* what) const
{
    if (i >= positional_.size())
        throw UsageError(std::string("missing ") + what);
    return positional_[i];
}

std::optional<std::string> Args::value(const std::string& name) const
{
    auto it = values_.find(name);
    if (it == values_.end())
        return std::nullopt;
    return it->second;
}

std::string Args::valueOr(const std::string& name, const std::string& fallback) const
{
    return value(name).value_or(fallback);
}

long long Args::intOr(const std::string& name, long long fallback, long long lo, long long hi) const
{
    auto v = value(name);
    if (!v)
        return fallback;
    char* end = nullptr;
    const long long x = std::strtoll(v->c_str(), &end, 10);
    if (end == v->c_str() || *end != '\0' || x < lo || x > hi)
        throw UsageError("--" + name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

double Args::doubleOr(const std::string& name, double fallback) const
{
    auto v = value(name);
    if (!v)
        return fallback;
    char* end = nullptr;
    const double x = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0')
        throw UsageError("--" + name + " must be a number");
    return x;
}

} // namespace ll::cli

namespace ll::cli {

std::string jsonText(const nlohmann::json& j, int indent)
{
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string oneLine(const std::string& message)
{
    std::string out;
    out.reserve(message.size());
    const auto hex = [&](unsigned char c) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02X", c);
        out += buf;
    };
    for (size_t i = 0; i < message.size();) {
        const auto c = static_cast<unsigned char>(message[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            hex(c);
        } else if (c >= 0x80) {
            // A whole, shortest-form UTF-8 sequence passes; any other byte is escaped.
            const size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
            bool ok = len > 0 && i + len <= message.size();
            for (size_t k = 1; ok && k < len; ++k)
                ok = (static_cast<unsigned char>(message[i + k]) & 0xC0) == 0x80;
            if (ok && len == 3) { // no overlong forms, no surrogates
                const auto c1 = static_cast<unsigned char>(message[i + 1]);
                ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
            }
            if (ok && len == 4) {
                const auto c1 = static_cast<unsigned char>(message[i + 1]);
                ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
            }
            if (ok) {
                out.append(message, i, len);
                i += len;
                continue;
            }
            hex(c);
        } else {
            out += static_cast<char>(c);
        }
        ++i;
    }
    return out;
}

std::vector<std::string> Args::names() const
{
    std::vector<std::string> out(flags_.begin(), flags_.end());
    for (const auto& [name, value] : values_)
        out.push_back(name);
    return out;
}

} // namespace ll::cli
