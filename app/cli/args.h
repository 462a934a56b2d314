#pragma once
// A small command-line parser: positionals, --flag, --key value and --key=value.
#include "recipe/step_options.h" // ParamSource, and the option parsers every command uses
#include "util/error.h"

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace ll::cli {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// JSON for --json output: names that are not valid UTF-8 (a hostile GGUF's
// tensor names) are written with U+FFFD instead of throwing.
std::string jsonText(const nlohmann::json& j, int indent = 1);

// A message on one line: control characters escaped (\n, \x01), invalid UTF-8
// bytes written as \xNN, so an error naming a hostile file stays one line.
std::string oneLine(const std::string& message);

class Args {
public:
    // `valued` names the options that take a value; every other --x is a flag.
    Args(const std::vector<std::string>& argv, const std::set<std::string>& valued, const std::set<std::string>& flags);

    const std::vector<std::string>& positional() const { return positional_; }
    std::string positionalAt(size_t i, const char* what) const;
    bool flag(const std::string& name) const { return flags_.count(name) != 0; }
    std::optional<std::string> value(const std::string& name) const;
    std::string valueOr(const std::string& name, const std::string& fallback) const;
    long long intOr(const std::string& name, long long fallback, long long lo, long long hi) const;
    double doubleOr(const std::string& name, double fallback) const;
    // Every option given, flags and valued alike.
    std::vector<std::string> names() const;

private:
    std::vector<std::string> positional_;
    std::set<std::string> flags_;
    std::map<std::string, std::string> values_;
};

// Command-line options as a step's parameters (core/recipe/step_options.h):
// the CLI and recipes read options with the same code.
class ArgsParams : public ParamSource {
public:
    explicit ArgsParams(const Args& a) : a_(a) {}
    std::optional<std::string> value(const std::string& key) const override { return a_.value(key); }
    bool flag(const std::string& key) const override { return a_.flag(key); }
    std::vector<std::string> keys() const override { return a_.names(); }

private:
    const Args& a_;
};

// Runs a core option parser; its InvalidArgument becomes a usage error (exit 64).
template <class F>
auto parseOptions(F f, const char* usage)
{
    try {
        return f();
    } catch (const ll::Error& e) {
        if (e.code() != ll::ErrorCode::InvalidArgument)
            throw;
        throw UsageError(*usage ? e.problem() + "\n" + usage : e.problem());
    }
}

} // namespace ll::cli
