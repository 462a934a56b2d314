#pragma once
// Session files (.layerlab, written by the GUI) read without Qt, so that the
// CLI can open one headless (`layerlab-cli session check`, `apply --session`),
// the fuzzers can reach the parser, and the GUI and CLI agree on what a
// damaged session is:
//
//   {"layerlab_session": 1, "version": "0.1.0", "saved": "2026-…",
//    "model": {"path": "/m/stories260K-hf", "format": "safetensors", "demo": false},
//    "recipe": {…docs/recipes.md…} | null, "evaluation": {…} | null,
//    "compare": […], "sensitivity": …}
//
// What restoring needs (the model and the recipe) is checked strictly: an
// error names the session file. What is only shown (the evaluation, the
// Compare entries) is skipped when malformed, with a warning.
#include "recipe/recipe.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ll {

class Model;

constexpr int kSessionFormatVersion = 1;

struct SessionFile {
    std::string path;          // the session file (or the origin named in errors)
    int64_t formatVersion = 0; // "layerlab_session"
    std::string writtenBy;     // "version": the LayerLab that saved it
    std::string modelPath;     // empty for the built-in demo model
    std::string modelFormat;   // informational ("safetensors", "gguf", "llama2c")
    bool demo = false;
    Recipe recipe;             // empty when the session has none
    nlohmann::json evaluation; // null, or an object with ppl > 0 and tokens_scored > 0
    nlohmann::json compare = nlohmann::json::array(); // the well-formed Compare entries
    nlohmann::json sections = nlohmann::json::object(); // other top-level keys ("sensitivity", …)
    std::vector<std::string> warnings; // parts skipped as malformed
};

// Parses the text of a session; Malformed errors name `origin` (the file).
SessionFile parseSession(const std::string& text, const std::string& origin);
// Reads and parses a session file (a regular file of at most kMaxRecipeFileBytes).
SessionFile loadSession(const std::string& path);

// The session's model opened headless: the file it names (NotFound naming
// the session when it is gone), or the built-in demo model.
std::shared_ptr<const Model> openSessionModel(const SessionFile& session);

// The model a damaged session names, when that much can still be read, so the
// GUI can offer to open the model alone; nothing when even that is unreadable.
std::optional<std::string> sessionModelPathHint(const std::string& text);

} // namespace ll
