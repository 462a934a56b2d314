#include "recipe/session_file.h"

#include "formats/open_model.h"
#include "model/demo_model.h"
#include "model/model.h"
#include "util/error.h"
#include "util/input_file.h"
#include "util/json_util.h"

#include <cmath>
#include <filesystem>

namespace ll {

namespace {

bool positiveNumber(const nlohmann::json& j, const char* key)
{
    const auto it = j.find(key);
    return it != j.end() && it->is_number() && std::isfinite(it->get<double>()) && it->get<double>() > 0.0;
}

// The saved evaluation is shown, not re-run: it needs a perplexity and a token count.
bool evaluationUsable(const nlohmann::json& e)
{
    if (!e.is_object() || !positiveNumber(e, "ppl"))
        return false;
    const auto tokens = e.find("tokens_scored");
    return tokens != e.end() && tokens->is_number_integer() && tokens->get<int64_t>() > 0;
}

bool compareEntryUsable(const nlohmann::json& e, const std::string& origin)
{
    if (!e.is_object() || !positiveNumber(e, "ppl") || !e.contains("recipe"))
        return false;
    if (const auto label = e.find("label"); label != e.end() && !label->is_string())
        return false;
    try {
        Recipe::fromJson(e.at("recipe"), origin);
    } catch (const Error&) {
        return false;
    }
    return true;
}

} // namespace

SessionFile parseSession(const std::string& text, const std::string& origin)
{
    auto bad = [&](const std::string& what) { fail(ErrorCode::Malformed, origin, what); };
    const nlohmann::json j = parseJsonText(text, origin, "the session");
    if (!j.is_object() || !j.contains("layerlab_session"))
        bad("not a LayerLab session (no \"layerlab_session\" key)");
    SessionFile s;
    s.path = origin;
    const nlohmann::json& format = j["layerlab_session"];
    if (!format.is_number_integer() || format.get<int64_t>() < 1)
        bad("\"layerlab_session\" must be a format number (1), not " + format.dump());
    s.formatVersion = format.get<int64_t>();
    if (const auto v = j.find("version"); v != j.end() && v->is_string())
        s.writtenBy = v->get<std::string>();
    if (s.formatVersion > kSessionFormatVersion)
        bad("was written by a newer LayerLab (" + (s.writtenBy.empty() ? std::string("?") : s.writtenBy)
            + ", session format " + format.dump() + "; this one reads format "
            + std::to_string(kSessionFormatVersion) + ")");

    const auto model = j.find("model");
    if (model == j.end() || !model->is_object())
        bad("has no \"model\" object {path, format, demo}");
    if (const auto demo = model->find("demo"); demo != model->end()) {
        if (!demo->is_boolean())
            bad("\"model.demo\" must be true or false");
        s.demo = demo->get<bool>();
    }
    if (const auto path = model->find("path"); path != model->end() && !path->is_null()) {
        if (!path->is_string())
            bad("\"model.path\" must be text");
        s.modelPath = path->get<std::string>();
    }
    if (!s.demo && s.modelPath.empty())
        bad("names no model (\"model.path\" is empty and \"model.demo\" is not true)");
    if (!s.demo && s.modelPath.find('\0') != std::string::npos)
        bad("\"model.path\" contains a NUL character");
    if (const auto f = model->find("format"); f != model->end() && f->is_string())
        s.modelFormat = f->get<std::string>();

    if (const auto recipe = j.find("recipe"); recipe != j.end() && !recipe->is_null()) {
        if (!recipe->is_object())
            bad("\"recipe\" must be a recipe object or null");
        try {
            s.recipe = Recipe::fromJson(*recipe, origin);
        } catch (const Error& e) {
            bad("recipe: " + e.problem());
        }
    }

    if (const auto e = j.find("evaluation"); e != j.end() && !e->is_null()) {
        if (evaluationUsable(*e))
            s.evaluation = *e;
        else
            s.warnings.push_back("the saved evaluation is malformed and is not shown");
    }
    if (const auto c = j.find("compare"); c != j.end() && !c->is_null()) {
        if (!c->is_array()) {
            s.warnings.push_back("\"compare\" is not a list; its entries are not shown");
        } else {
            size_t skipped = 0;
            for (const nlohmann::json& entry : *c) {
                if (compareEntryUsable(entry, origin))
                    s.compare.push_back(entry);
                else
                    ++skipped;
            }
            if (skipped > 0)
                s.warnings.push_back(std::to_string(skipped) + " malformed Compare entr"
                                     + (skipped == 1 ? "y is" : "ies are") + " not shown");
        }
    }
    static const char* const kKnown[] = {"layerlab_session", "version", "saved", "model", "recipe", "evaluation", "compare"};
    for (auto it = j.begin(); it != j.end(); ++it) {
        bool known = false;
        for (const char* k : kKnown)
            known = known || it.key() == k;
        if (!known)
            s.sections[it.key()] = it.value();
    }
    return s;
}

SessionFile loadSession(const std::string& path)
{
    return parseSession(readInputFile(path, kMaxRecipeFileBytes, "the session file"), path);
}

std::shared_ptr<const Model> openSessionModel(const SessionFile& session)
{
    if (session.demo)
        return makeDemoModel();
    std::error_code ec;
    if (!std::filesystem::exists(session.modelPath, ec))
        fail(ErrorCode::NotFound, session.path, "the session's model " + session.modelPath + " is missing");
    return openModel(session.modelPath);
}

std::optional<std::string> sessionModelPathHint(const std::string& text)
{
    try {
        const nlohmann::json j = parseJsonText(text, "session");
        if (!j.is_object())
            return std::nullopt;
        const auto model = j.find("model");
        if (model == j.end() || !model->is_object())
            return std::nullopt;
        const auto path = model->find("path");
        if (path == model->end() || !path->is_string() || path->get<std::string>().empty()
            || path->get<std::string>().find('\0') != std::string::npos)
            return std::nullopt;
        return path->get<std::string>();
    } catch (const Error&) {
        return std::nullopt;
    }
}

} // namespace ll
