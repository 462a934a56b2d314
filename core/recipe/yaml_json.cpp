#include "recipe/yaml_json.h"

#include "util/error.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <vector>

namespace ll {

nlohmann::json yamlScalarToJson(const std::string& tag, const std::string& s)
{
    if (tag == "!")
        return s;
    if (s == "true" || s == "True" || s == "yes")
        return true;
    if (s == "false" || s == "False" || s == "no")
        return false;
    if (s == "null" || s == "~" || s.empty())
        return nullptr;
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(s.c_str(), &end, 10);
    if (end != s.c_str() && *end == '\0' && errno == 0)
        return i;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() && *end == '\0' && std::isfinite(d))
        return d;
    return s;
}

namespace {

class JsonBuilder final : public YAML::EventHandler {
public:
    explicit JsonBuilder(const std::string& origin) : origin_(origin) {}

    nlohmann::json result;
    std::optional<std::string> deferred_; // an error to report once the document parsed

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& m, YAML::anchor_t) override
    {
        if (expectingKey()) {
            badKey(m);
            count(m);
            return;
        }
        place(m, nullptr);
    }
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override
    {
        refuse(m, "YAML aliases (*name) are not allowed in a recipe; write the value out");
    }
    void OnScalar(const YAML::Mark& m, const std::string& tag, YAML::anchor_t, const std::string& value) override
    {
        if (expectingKey()) {
            count(m);
            if (!deferred_ && stack_.back().value.contains(value))
                refuse(m, "the key \"" + value + "\" appears twice in one map");
            stack_.back().key = value;
            return;
        }
        place(m, yamlScalarToJson(tag, value));
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        open(m, nlohmann::json::array());
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        open(m, nlohmann::json::object());
    }
    void OnMapEnd() override { close(); }

private:
    struct Frame {
        nlohmann::json value;
        std::optional<std::string> key; // set: the value for this key comes next
        YAML::Mark mark;
    };

    bool expectingKey() const { return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().key; }

    [[noreturn]] void refuse(const YAML::Mark& m, const std::string& what) const
    {
        fail(ErrorCode::Malformed, origin_, "line " + std::to_string(m.line + 1) + ": " + what);
    }

    void count(const YAML::Mark& m)
    {
        if (++nodes_ > kMaxYamlNodes)
            refuse(m, "more than " + std::to_string(kMaxYamlNodes) + " YAML nodes; a recipe is far smaller");
    }

    // A key that is not text. yaml-cpp also gives such keys for a truncated
    // flow collection: the parser's own error, if one follows, is reported
    // instead (parseYamlBounded), so this one waits. The key becomes "".
    void badKey(const YAML::Mark& m)
    {
        if (!deferred_)
            deferred_ = "line " + std::to_string(m.line + 1) + ": a map key must be text";
        stack_.back().key = std::string();
    }

    void open(const YAML::Mark& m, nlohmann::json empty)
    {
        if (expectingKey())
            badKey(m);
        count(m);
        if (static_cast<int>(stack_.size()) >= kMaxYamlDepth)
            refuse(m, "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels");
        stack_.push_back({std::move(empty), std::nullopt, m});
    }

    void close()
    {
        Frame f = std::move(stack_.back());
        stack_.pop_back();
        attach(std::move(f.value));
    }

    void place(const YAML::Mark& m, nlohmann::json v)
    {
        count(m);
        attach(std::move(v));
    }

    void attach(nlohmann::json v)
    {
        if (stack_.empty()) {
            result = std::move(v);
            return;
        }
        Frame& top = stack_.back();
        if (top.value.is_array()) {
            top.value.push_back(std::move(v));
        } else {
            top.value[*top.key] = std::move(v);
            top.key.reset();
        }
    }

    const std::string& origin_;
    std::vector<Frame> stack_;
    size_t nodes_ = 0;
};

} // namespace

nlohmann::json parseYamlBounded(const std::string& text, const std::string& origin)
{
    std::istringstream in(text);
    try {
        YAML::Parser parser(in);
        JsonBuilder builder(origin);
        if (!parser.HandleNextDocument(builder))
            return nullptr;
        JsonBuilder second(origin);
        const bool more = parser.HandleNextDocument(second); // also where a truncated document's error shows
        if (builder.deferred_)
            fail(ErrorCode::Malformed, origin, *builder.deferred_);
        if (more)
            fail(ErrorCode::Malformed, origin, "more than one YAML document (---); a recipe is one document");
        return std::move(builder.result);
    } catch (const YAML::Exception& e) {
        fail(ErrorCode::Malformed, origin, std::string("not valid YAML: ") + e.what());
    }
}

} // namespace ll
