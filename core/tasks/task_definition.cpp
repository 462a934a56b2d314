#include "tasks/task_definition.h"

#include "recipe/yaml_json.h"
#include "tasks/task_formats.h"
#include "util/error.h"
#include "util/input_file.h"

#include <filesystem>
#include <set>

namespace ll {

namespace {

std::string trimmed(const std::string& s)
{
    const size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The value at a dotted path ("choices.text"); nullptr when absent.
const nlohmann::json* lookup(const nlohmann::json& doc, const std::string& path)
{
    const nlohmann::json* v = &doc;
    size_t pos = 0;
    while (true) {
        const size_t dot = path.find('.', pos);
        const std::string key = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
        if (!v->is_object() || !v->contains(key))
            return nullptr;
        v = &(*v)[key];
        if (dot == std::string::npos)
            return v;
        pos = dot + 1;
    }
}

// A template that is exactly one "{{field}}" -> that field's name, else "".
std::string soleField(const std::string& templ)
{
    if (templ.size() < 4 || !templ.starts_with("{{") || !templ.ends_with("}}") || templ.find("{{", 2) != std::string::npos)
        return {};
    return trimmed(templ.substr(2, templ.size() - 4));
}

} // namespace

std::string fillTemplate(const std::string& templ, const nlohmann::json& doc, const std::string& origin)
{
    std::string out;
    size_t pos = 0;
    while (true) {
        const size_t open = templ.find("{{", pos);
        if (open == std::string::npos)
            return out + templ.substr(pos);
        const size_t close = templ.find("}}", open + 2);
        if (close == std::string::npos)
            fail(ErrorCode::Malformed, origin, "\"{{\" without \"}}\" in the template \"" + templ + "\"");
        out += templ.substr(pos, open - pos);
        const std::string field = trimmed(templ.substr(open + 2, close - open - 2));
        const nlohmann::json* v = lookup(doc, field);
        if (!v)
            fail(ErrorCode::Malformed, origin, "no field \"" + field + "\"");
        if (v->is_string())
            out += v->get<std::string>();
        else if (v->is_number_integer())
            out += std::to_string(v->get<int64_t>());
        else if (v->is_boolean())
            out += v->get<bool>() ? "true" : "false";
        else
            fail(ErrorCode::Malformed, origin, "field \"" + field + "\" is not text");
        pos = close + 2;
    }
}

Task loadTaskDefinition(const std::string& path)
{
    const nlohmann::json def = parseYamlBounded(readInputFile(path, kMaxRecipeFileBytes, "the task definition"), path);
    if (!def.is_object() || def.value("layerlab_task", nlohmann::json()) != 1)
        fail(ErrorCode::Malformed, path, "a task definition starts with \"layerlab_task: 1\"");
    static const std::set<std::string> keys{"layerlab_task", "name", "data", "prompt", "choices", "target",
                                            "target_delimiter", "fewshot_delimiter", "description", "metric"};
    for (const auto& [key, value] : def.items())
        if (!keys.count(key))
            fail(ErrorCode::Malformed, path, "unknown key \"" + key + "\" (known: name, data, prompt, choices, target, "
                                             "target_delimiter, fewshot_delimiter, description, metric)");
    const auto text = [&](const char* key, const std::string& fallback, bool required) {
        if (!def.contains(key)) {
            if (required)
                fail(ErrorCode::Malformed, path, std::string("no \"") + key + "\"");
            return fallback;
        }
        if (!def[key].is_string())
            fail(ErrorCode::Malformed, path, std::string("\"") + key + "\" must be text");
        return def[key].get<std::string>();
    };
    Task task;
    task.name = text("name", std::filesystem::path(path).stem().string(), false);
    const std::string metric = text("metric", "acc", false);
    if (metric != "acc" && metric != "acc_norm" && metric != "last_word")
        fail(ErrorCode::Malformed, path, "\"metric\" must be acc, acc_norm or last_word");
    task.metric = metric == "last_word" ? TaskMetric::LastWord : TaskMetric::Choice;
    task.reportsAccNorm = metric == "acc_norm";
    task.fewshotDelimiter = text("fewshot_delimiter", "\n\n", false);
    const std::string prompt = text("prompt", "", true);
    const std::string delimiter = text("target_delimiter", " ", false);
    const std::string description = text("description", "", false);
    if (!def.contains("choices") || !(def["choices"].is_string() || def["choices"].is_array()))
        fail(ErrorCode::Malformed, path, "\"choices\" must be a field (\"{{endings}}\") or a list of texts");
    if (!def.contains("target") || !(def["target"].is_string() || def["target"].is_number_integer()))
        fail(ErrorCode::Malformed, path, "\"target\" must be a field (\"{{label}}\") or an index");

    std::filesystem::path data = text("data", "", true);
    if (data.is_relative())
        data = std::filesystem::path(path).parent_path() / data;
    task.source = data.string();
    const std::string lines = readInputFile(task.source, kMaxTextFileBytes, "the task's data");
    forEachJsonLine(lines, task.source, "", [&](const nlohmann::json& doc, int64_t number) {
        const std::string where = task.source + ": line " + std::to_string(number);
        try {
            std::vector<std::string> choices;
            if (def["choices"].is_array()) {
                for (const auto& c : def["choices"])
                    choices.push_back(c.is_string() ? fillTemplate(c.get<std::string>(), doc, where) : c.dump());
            } else if (const std::string field = soleField(def["choices"].get<std::string>()); !field.empty()) {
                const nlohmann::json* v = lookup(doc, field);
                if (!v || !v->is_array() || v->empty())
                    fail(ErrorCode::Malformed, where, "\"" + field + "\" must be a list of choices");
                for (const auto& c : *v)
                    choices.push_back(c.is_string() ? c.get<std::string>() : c.dump());
            } else {
                choices.push_back(fillTemplate(def["choices"].get<std::string>(), doc, where)); // one choice (last_word)
            }
            int gold = -1;
            const std::string target = def["target"].is_number_integer() ? std::to_string(def["target"].get<int64_t>())
                                                                         : fillTemplate(def["target"].get<std::string>(), doc, where);
            if (!target.empty() && target.size() < 10 && target.find_first_not_of("0123456789") == std::string::npos)
                gold = std::stoi(target);
            else if (const auto it = std::find(choices.begin(), choices.end(), target); it != choices.end())
                gold = static_cast<int>(it - choices.begin());
            if (gold < 0 || gold >= static_cast<int>(choices.size()))
                fail(ErrorCode::Malformed, where, "the target \"" + target + "\" is neither a choice's index nor its text");
            TaskItem item;
            item.contexts = {fillTemplate(prompt, doc, where)};
            for (const std::string& c : choices)
                item.continuations.push_back(delimiter + c);
            item.choices = std::move(choices);
            item.gold = gold;
            item.description = description;
            task.items.push_back(std::move(item));
        } catch (const Error& e) {
            // Errors from fillTemplate name "<data>: line N" as their file; keep one message that names both files.
            fail(ErrorCode::Malformed, path, e.file() + ": " + e.problem());
        }
    });
    if (task.items.empty())
        fail(ErrorCode::Malformed, task.source, "no items in the task's data");
    if (task.metric == TaskMetric::Choice)
        for (const TaskItem& item : task.items)
            if (item.choiceCount() < 2)
                fail(ErrorCode::Malformed, path, "metric " + metric + " needs at least two choices per item");
    return task;
}

} // namespace ll
