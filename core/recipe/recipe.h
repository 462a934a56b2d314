#pragma once
// A recipe: the ordered compression steps a user applied (in the GUI or by
// hand), replayable headless with `layerlab-cli apply`. Saved as YAML or JSON
// with one schema (docs/recipes.md):
//
//   layerlab_recipe: 1
//   calibration: {text: builtin, context: 256, windows: 64}
//   steps:
//     - {action: quantize, layers: "attn", method: gptq, bits: 4, group: 128}
//     - {action: prune, layers: "mlp", method: wanda, sparsity: 0.5}
//     - {action: factorize, method: svd, rank_ratio: 0.5}
//
// A step's keys besides `action` and `layers` are the CLI's options of that
// command (core/recipe/step_options.h), with underscores or hyphens.
#include "methods/method_spec.h" // StepAction

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ll {


struct RecipeStep {
    StepAction action = StepAction::Quantize;
    std::string layers;           // target pattern (ECMAScript, searched); empty: every block linear
    nlohmann::json params = nlohmann::json::object(); // method and its options, canonical keys ("act-order")

    std::string method() const;
    // What the tree shows on a layer: "GPTQ 4b g128", "wanda 50 % sparse", "2:4 sparse", "SVD rank 50 %".
    std::string badge() const;
    // Whether the step's weights depend on calibration statistics (GPTQ, Wanda,
    // ggml's importance, LoRC, ...); RTN, NF4, FP8, FP4, magnitude, SVD do not.
    bool usesCalibration() const;
    // Checks the action's parameters (throws Error(InvalidArgument) naming the step).
    void validate() const;
    nlohmann::json toJson() const; // flat: {action, layers?, method, ...} with snake_case keys
    bool operator==(const RecipeStep&) const = default;
};

struct RecipeCalibration {
    std::string text = "builtin"; // a text file, or "builtin" (the built-in sample)
    int64_t context = 256;
    int64_t windows = 64;         // at most; a shorter text gives fewer (all its full windows)
    bool isBuiltin() const { return text.empty() || text == "builtin"; }
    bool operator==(const RecipeCalibration&) const = default;
};

struct Recipe {
    RecipeCalibration calibration;
    std::vector<RecipeStep> steps;
    std::string model;            // informational: the model it was made on
    std::string description;

    nlohmann::json toJson() const;
    // `origin` names the file in error messages.
    static Recipe fromJson(const nlohmann::json& j, const std::string& origin = "recipe");
    bool operator==(const Recipe&) const = default;
};

// A `layers` pattern matching exactly these logical names:
// "^blocks\.0\.attn\.q\.weight$"; several names: "^(?:a|b)$".
std::string exactNamePattern(const std::string& name);
std::string exactNamesPattern(const std::vector<std::string>& names);

// By suffix: .yaml / .yml or .json (anything else: JSON). Errors name the file.
Recipe loadRecipe(const std::string& path);
Recipe parseRecipe(const std::string& text, bool yaml, const std::string& origin = "recipe");
// Atomic (temporary name, then rename).
void saveRecipe(const Recipe& recipe, const std::string& path);
std::string recipeToYaml(const Recipe& recipe);

} // namespace ll
