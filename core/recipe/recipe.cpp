#include "recipe/recipe.h"

#include "util/atomic_file.h"
#include "methods/method_registry.h"
#include "recipe/step_options.h"
#include "recipe/yaml_json.h"
#include "util/error.h"
#include "util/json_util.h"
#include "util/input_file.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace ll {

namespace {

constexpr int kRecipeVersion = 1;

bool endsWith(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string snakeKey(std::string key)
{
    std::replace(key.begin(), key.end(), '-', '_');
    return key;
}

} // namespace

std::string RecipeStep::method() const
{
    const auto it = params.find("method");
    return it != params.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string RecipeStep::badge() const
{
    const MethodSpec* spec = findMethodSpec(action, method());
    if (!spec)
        return method();
    try {
        return methodBadge(*spec, readMethodParams(*spec, JsonParams(params)));
    } catch (const Error&) {
        return spec->name; // a step that does not validate still gets a name
    }
}

bool RecipeStep::usesCalibration() const
{
    const MethodSpec* spec = findMethodSpec(action, method());
    if (!spec)
        return true;
    if (spec->needs != kNeedsNothing)
        return true;
    // A parameter that reads calibration when it is set (LoRC's rank), from the registry.
    const JsonParams p(params);
    for (const ParamSpec& ps : spec->params)
        if (ps.needsWhenSet != kNeedsNothing)
            if (const auto v = p.value(ps.key); v && !v->empty() && *v != "0" && *v != "false")
                return true;
    return false;
}

void RecipeStep::validate() const
{
    const JsonParams p(params);
    std::set<std::string> known = action == StepAction::Quantize ? quantizeKeys()
                                  : action == StepAction::Prune  ? pruneKeys()
                                  : action == StepAction::Rotate ? rotateKeys()
                                  : action == StepAction::KvCache ? kvCacheKeys()
                                                                 : factorizeKeys();
    known.insert("method");
    const auto unknown = p.unknownKeys(known);
    if (!unknown.empty()) {
        // Name the method's own parameters: the ones a user can set here.
        std::string valid;
        if (const MethodSpec* spec = findMethodSpec(action, method()))
            for (const ParamSpec& param : spec->params)
                valid += (valid.empty() ? "" : ", ") + param.key;
        fail(ErrorCode::InvalidArgument, "",
             std::string(actionName(action)) + " has no parameter '" + *unknown.begin() + "'"
                 + (valid.empty() ? std::string() : " (" + method() + " takes " + valid + ")"));
    }
    // Parsing checks every value; the options themselves are built again when applied.
    nlohmann::json withLayers = params;
    if (!layers.empty())
        withLayers["layers"] = layers;
    const JsonParams full(withLayers);
    switch (action) {
    case StepAction::Quantize: quantizeOptionsFrom(full); break;
    case StepAction::Prune: pruneOptionsFrom(full); break;
    case StepAction::Factorize: factorizeOptionsFrom(full); break;
    case StepAction::Rotate: rotationOptionsFrom(full); break;
    case StepAction::KvCache: kvCacheOptionsFrom(full); break;
    }
}

nlohmann::json RecipeStep::toJson() const
{
    nlohmann::json j = nlohmann::json::object();
    j["action"] = std::string(actionName(action));
    if (!layers.empty())
        j["layers"] = layers;
    for (const auto& [key, v] : params.items())
        j[snakeKey(key)] = v;
    return j;
}

nlohmann::json Recipe::toJson() const
{
    nlohmann::json j = nlohmann::json::object();
    j["layerlab_recipe"] = kRecipeVersion;
    if (!model.empty())
        j["model"] = model;
    if (!description.empty())
        j["description"] = description;
    j["calibration"] = {{"text", calibration.isBuiltin() ? std::string("builtin") : calibration.text},
                        {"context", calibration.context},
                        {"windows", calibration.windows}};
    j["steps"] = nlohmann::json::array();
    for (const RecipeStep& s : steps)
        j["steps"].push_back(s.toJson());
    return j;
}

Recipe Recipe::fromJson(const nlohmann::json& j, const std::string& origin)
{
    auto bad = [&](const std::string& what) { fail(ErrorCode::Malformed, origin, what); };
    if (!j.is_object())
        bad("a recipe is a mapping with 'layerlab_recipe' and 'steps'");
    const auto version = j.find("layerlab_recipe");
    if (version == j.end() || !version->is_number_integer())
        bad("not a LayerLab recipe (no 'layerlab_recipe: 1' line)");
    if (version->get<long long>() != kRecipeVersion)
        bad("recipe version " + version->dump() + " is not supported (this LayerLab reads version 1)");
    Recipe r;
    for (const auto& [key, v] : j.items()) {
        if (key == "model" || key == "description") {
            if (!v.is_string())
                bad("'" + key + "' must be text");
            (key == "model" ? r.model : r.description) = v.get<std::string>();
        } else if (key != "layerlab_recipe" && key != "calibration" && key != "steps") {
            bad("unknown key '" + key + "' (expected layerlab_recipe, model, description, calibration, steps)");
        }
    }
    if (const auto c = j.find("calibration"); c != j.end() && !c->is_null()) {
        if (!c->is_object())
            bad("'calibration' must be a mapping {text, context, windows}");
        for (const auto& [key, v] : c->items()) {
            if (key == "text" && v.is_string())
                r.calibration.text = v.get<std::string>();
            else if ((key == "context" || key == "windows") && v.is_number_integer() && v.get<long long>() >= 1
                     && v.get<long long>() <= (1 << 20))
                (key == "context" ? r.calibration.context : r.calibration.windows) = v.get<int64_t>();
            else
                bad("calibration: '" + key + "' must be text (a file or 'builtin'), context or windows (a positive integer)");
        }
        if (r.calibration.context < 2)
            bad("calibration: context must be at least 2 tokens");
    }
    const auto steps = j.find("steps");
    if (steps == j.end() || !steps->is_array())
        bad("'steps' must be a list of steps");
    for (size_t i = 0; i < steps->size(); ++i) {
        const nlohmann::json& s = (*steps)[i];
        const std::string where = "step " + std::to_string(i + 1);
        if (!s.is_object())
            bad(where + " must be a mapping {action, method, ...}");
        RecipeStep step;
        const auto action = s.find("action");
        if (action == s.end() || !action->is_string())
            bad(where + " has no 'action' (quantize, prune, factorize, rotate or kv-cache)");
        const std::string a = action->get<std::string>();
        if (a == "quantize")
            step.action = StepAction::Quantize;
        else if (a == "prune")
            step.action = StepAction::Prune;
        else if (a == "factorize")
            step.action = StepAction::Factorize;
        else if (a == "rotate")
            step.action = StepAction::Rotate;
        else if (a == "kv-cache")
            step.action = StepAction::KvCache;
        else
            bad(where + ": action must be quantize, prune, factorize, rotate or kv-cache (not '" + a + "')");
        for (const auto& [key, v] : s.items()) {
            if (key == "action")
                continue;
            if (key == "layers") {
                if (!v.is_string())
                    bad(where + ": 'layers' must be a pattern (text)");
                step.layers = v.get<std::string>();
                continue;
            }
            if (!(v.is_string() || v.is_number() || v.is_boolean()))
                bad(where + ": '" + key + "' must be a string, a number or true/false");
            step.params[canonicalKey(key)] = v;
        }
        try {
            step.validate();
        } catch (const Error& e) {
            bad(where + " (" + a + "): " + e.problem());
        }
        r.steps.push_back(std::move(step));
    }
    return r;
}

std::string exactNamePattern(const std::string& name)
{
    return exactNamesPattern({name});
}

std::string exactNamesPattern(const std::vector<std::string>& names)
{
    std::string alternation;
    for (const std::string& n : names) {
        if (!alternation.empty())
            alternation += '|';
        for (char c : n) {
            if (std::string_view("\\^$.|?*+()[]{}/").find(c) != std::string_view::npos)
                alternation += '\\';
            alternation += c;
        }
    }
    return names.size() == 1 ? "^" + alternation + "$" : "^(?:" + alternation + ")$";
}

Recipe parseRecipe(const std::string& text, bool yaml, const std::string& origin)
{
    // A recipe is text: its names and patterns end up in sessions, tooltips and JSON.
    if (const size_t bad = firstInvalidUtf8(text); bad != std::string_view::npos) {
        char byte[8];
        std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
        fail(ErrorCode::Malformed, origin,
             std::string("is not UTF-8 text (byte ") + byte + " at offset " + std::to_string(bad) + ")");
    }
    nlohmann::json j;
    if (yaml) {
        j = parseYamlBounded(text, origin);
    } else {
        j = parseJsonText(text, origin, "the recipe");
    }
    return Recipe::fromJson(j, origin);
}

Recipe loadRecipe(const std::string& path)
{
    return parseRecipe(readInputFile(path, kMaxRecipeFileBytes, "the recipe"), endsWith(path, ".yaml") || endsWith(path, ".yml"), path);
}

std::string recipeToYaml(const Recipe& recipe)
{
    const nlohmann::json j = recipe.toJson();
    YAML::Emitter out;
    auto scalar = [&](const nlohmann::json& v) {
        if (v.is_string()) {
            // Quote text that would not read back as itself (a number, a boolean, YAML syntax).
            const std::string s = v.get<std::string>();
            bool ambiguous = s.empty();
            try {
                ambiguous = ambiguous || parseYamlBounded(s, "") != v;
            } catch (const Error&) {
                ambiguous = true;
            }
            if (ambiguous)
                out << YAML::DoubleQuoted;
            out << s;
        } else if (v.is_boolean()) {
            out << YAML::TrueFalseBool << v.get<bool>();
        } else if (v.is_number_integer()) {
            out << v.get<long long>();
        } else {
            out << YAML::Precision(17) << v.get<double>();
        }
    };
    out << YAML::BeginMap;
    out << YAML::Key << "layerlab_recipe" << YAML::Value << kRecipeVersion;
    for (const char* key : {"model", "description"})
        if (j.contains(key)) {
            out << YAML::Key << key << YAML::Value;
            scalar(j[key]);
        }
    out << YAML::Key << "calibration" << YAML::Value << YAML::Flow << YAML::BeginMap;
    for (const auto& [key, v] : j["calibration"].items()) {
        out << YAML::Key << key << YAML::Value;
        scalar(v);
    }
    out << YAML::EndMap;
    out << YAML::Key << "steps" << YAML::Value << YAML::BeginSeq;
    for (const auto& s : j["steps"]) {
        out << YAML::Flow << YAML::BeginMap;
        // action first, then layers, then the rest in key order.
        out << YAML::Key << "action" << YAML::Value << s["action"].get<std::string>();
        if (s.contains("layers")) {
            out << YAML::Key << "layers" << YAML::Value;
            scalar(s["layers"]);
        }
        for (const auto& [key, v] : s.items()) {
            if (key == "action" || key == "layers")
                continue;
            out << YAML::Key << key << YAML::Value;
            scalar(v);
        }
        out << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

void saveRecipe(const Recipe& recipe, const std::string& path)
{
    const bool yaml = endsWith(path, ".yaml") || endsWith(path, ".yml");
    const std::string text = yaml ? recipeToYaml(recipe) : dumpJson(recipe.toJson(), 2) + "\n";
    AtomicFile file(path, true);
    file.out().write(text.data(), text.size());
    file.commit();
}

} // namespace ll
