#pragma once
// One compression step's parameters, read the same way from the command line
// (layerlab-cli quantize / prune / factorize) and from a recipe file, so that a
// recipe replays exactly what the CLI or the GUI did.
//
// Keys are the CLI's option names ("bits", "group", "act-order"); recipe files
// may spell them with underscores ("act_order"). Bad values throw
// Error(InvalidArgument) with a message that names the key.
#include "pipeline/model_compression.h"
#include "quant/quantize_model.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>

namespace ll {

class ParamSource {
public:
    virtual ~ParamSource() = default;
    // The value as text (numbers too); nullopt when absent.
    virtual std::optional<std::string> value(const std::string& key) const = 0;
    // A boolean option (a CLI flag, or `key: true` in a recipe).
    virtual bool flag(const std::string& key) const = 0;

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
    // Keys present that are not in `known` (for "unknown parameter" errors).
    std::set<std::string> unknownKeys(const std::set<std::string>& known) const;

private:
    nlohmann::json object_; // keys normalized to the CLI's spelling
};

// "act_order" -> "act-order".
std::string canonicalKey(std::string key);

// Parameters each action accepts (besides "method" and "layers").
const std::set<std::string>& quantizeKeys();
const std::set<std::string>& pruneKeys();
const std::set<std::string>& factorizeKeys();

// --method rtn|gptq|... and its parameters; "layers" and "stats" included.
QuantizeModelOptions quantizeOptionsFrom(const ParamSource& p);

// Pruning is unstructured / N:M (pruneModel) or structured (pruneMlpNeurons,
// pruneAttentionHeads), chosen by "structured".
struct PruneStepOptions {
    enum class Kind { Unstructured, Neurons, Heads } kind = Kind::Unstructured;
    ModelPruneOptions unstructured;
    StructuredMlpOptions neurons;
    StructuredAttentionOptions heads;
    bool needsCalibration = false;
};
PruneStepOptions pruneOptionsFrom(const ParamSource& p);

ModelFactorizeOptions factorizeOptionsFrom(const ParamSource& p);

// Calibration windows for every action: "calib-ctx" (256), "calib-windows" (64).
CalibrationOptions calibrationOptionsFrom(const ParamSource& p);
StatsMode statsModeFrom(const ParamSource& p);

} // namespace ll
