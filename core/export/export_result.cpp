#include "export/export_result.h"

#include <cstdio>
#include <map>
#include <set>

namespace ll {

namespace {

// "0-2,5,7-8"
std::string ranges(const std::set<int>& numbers)
{
    std::string out;
    for (auto it = numbers.begin(); it != numbers.end();) {
        const int first = *it;
        int last = first;
        for (++it; it != numbers.end() && *it == last + 1; ++it)
            last = *it;
        out += (out.empty() ? "" : ",") + std::to_string(first) + (last > first ? "-" + std::to_string(last) : "");
    }
    return out;
}

} // namespace

std::string foldTensorNames(const std::vector<std::string>& names)
{
    // "blk.N.rest" grouped by rest, in the order each rest first appears; other names as they are.
    std::vector<std::string> order;
    std::map<std::string, std::set<int>> blocks;
    for (const std::string& n : names) {
        int block = -1, used = 0;
        if (std::sscanf(n.c_str(), "blk.%d.%n", &block, &used) == 1 && used > 0 && block >= 0) {
            const std::string rest = n.substr(static_cast<size_t>(used));
            if (!blocks.count("blk." + rest))
                order.push_back("blk." + rest);
            blocks["blk." + rest].insert(block);
        } else {
            order.push_back(n);
        }
    }
    std::string out;
    for (const std::string& key : order) {
        std::string shown = key;
        if (const auto b = blocks.find(key); b != blocks.end()) {
            const std::string r = ranges(b->second);
            shown = "blk." + (b->second.size() == 1 ? r : "{" + r + "}") + key.substr(3);
        }
        out += (out.empty() ? "" : ", ") + shown;
    }
    return out;
}

std::vector<std::string> ExportResult::typeLines() const
{
    std::map<std::string, const TypeFallback*> fellBack;
    for (const auto& f : fallbacks)
        fellBack[f.tensor] = &f;
    // Keyed by type, then the reason, in the order first seen within a type.
    struct Group {
        std::string why;
        bool listNames = true;
        std::vector<std::string> names;
    };
    std::map<std::string, std::vector<Group>> byType;
    for (const auto& t : tensors) {
        Group g;
        if (const auto f = fellBack.find(t.name); f != fellBack.end())
            g.why = "instead of " + f->second->requested + " (" + f->second->reason + ")";
        else if (!t.rule.empty())
            g.why = t.rule;
        else
            g.listNames = false; // the requested type, the preset's base type, or F32 for 1-D tensors
        auto& groups = byType[t.type];
        Group* into = nullptr;
        for (auto& existing : groups)
            if (existing.why == g.why)
                into = &existing;
        if (!into) {
            groups.push_back(g);
            into = &groups.back();
        }
        into->names.push_back(t.name);
    }
    std::vector<std::string> lines;
    for (const auto& [type, groups] : byType)
        for (const auto& g : groups) {
            std::string line = type + " x" + std::to_string(g.names.size());
            if (g.listNames)
                line += ": " + g.why + ": " + foldTensorNames(g.names);
            lines.push_back(line);
        }
    return lines;
}

nlohmann::json ExportResult::toJson() const
{
    nlohmann::json files_ = nlohmann::json::array();
    for (const auto& f : files)
        files_.push_back({{"path", f.path}, {"bytes", f.bytes}});
    nlohmann::json tensors_ = nlohmann::json::array();
    nlohmann::json typeCounts = nlohmann::json::object();
    for (const auto& t : tensors) {
        nlohmann::json e{{"name", t.name}, {"shape", t.shape}, {"type", t.type}, {"file", t.file}, {"bytes", t.bytes}};
        if (!t.rule.empty())
            e["rule"] = t.rule;
        tensors_.push_back(std::move(e));
        typeCounts[t.type] = typeCounts.value(t.type, 0) + 1;
    }
    nlohmann::json fallbacks_ = nlohmann::json::array();
    for (const auto& f : fallbacks)
        fallbacks_.push_back({{"tensor", f.tensor}, {"requested", f.requested}, {"used", f.used}, {"reason", f.reason}});
    nlohmann::json j{{"format", format},   {"path", path},          {"files", files_},         {"bytes", totalBytes},
                     {"types", typeCounts}, {"tensors", tensors_},  {"fallbacks", fallbacks_}, {"notes", notes}};
    if (!preset.empty())
        j["preset"] = preset;
    return j;
}

} // namespace ll
