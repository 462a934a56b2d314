#pragma once
// A step's parameters as the methods read them, whatever they came from: the
// command line (layerlab-cli quantize --bits 4), a recipe ({bits: 4}) or the
// GUI's form (which writes a recipe step).
//
// Keys are the CLI's option names ("bits", "group", "act-order"); recipe files
// may spell them with underscores ("act_order"). Bad values throw
// Error(InvalidArgument) with a message that names the key.
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ll {

class ParamSource {
public:
    virtual ~ParamSource() = default;
    // The value as text (numbers too); nullopt when absent.
    virtual std::optional<std::string> value(const std::string& key) const = 0;
    // A boolean option (a CLI flag, or `key: true` in a recipe).
    virtual bool flag(const std::string& key) const = 0;
    // Every key given (canonical spelling), values and flags alike.
    virtual std::vector<std::string> keys() const = 0;

    bool has(const std::string& key) const { return value(key).has_value() || flag(key); }
    std::string valueOr(const std::string& key, const std::string& fallback) const;
    long long intOr(const std::string& key, long long fallback, long long lo, long long hi) const;
    double doubleOr(const std::string& key, double fallback) const;
};

// A recipe step's parameters: a JSON object of strings, numbers and booleans.
class JsonParams : public ParamSource {
public:
    explicit JsonParams(const nlohmann::json& object);
    std::optional<std::string> value(const std::string& key) const override;
    bool flag(const std::string& key) const override;
    std::vector<std::string> keys() const override;
    // Keys present that are not in `known` (for "unknown parameter" errors).
    std::set<std::string> unknownKeys(const std::set<std::string>& known) const;

private:
    nlohmann::json object_; // keys normalized to the CLI's spelling
};

// "act_order" -> "act-order".
std::string canonicalKey(std::string key);

// A method's parameters after checking them against its schema
// (method_spec.h): every parameter the method declares, given or defaulted,
// as text; flags as "true" / "false". What a registered method's run function
// reads (QuantConfig::params).
class ParamValues {
public:
    void set(const std::string& key, std::string value) { values_[key] = std::move(value); }
    bool contains(const std::string& key) const { return values_.count(key) != 0; }
    // These throw InvalidArgument when the key is missing (a method reading a
    // parameter its schema does not declare: a programming error).
    const std::string& text(const std::string& key) const;
    long long integer(const std::string& key) const;
    double real(const std::string& key) const;
    bool flag(const std::string& key) const;
    const std::map<std::string, std::string>& all() const { return values_; }
    bool operator==(const ParamValues&) const = default;

private:
    std::map<std::string, std::string> values_;
};

} // namespace ll
