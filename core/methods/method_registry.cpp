#include "methods/method_registry.h"

#include "util/text.h"

#include "util/error.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace ll {

// Each method's entry lives with its unit.
std::vector<const MethodSpec*> builtinQuantMethods();     // quant/builtin_methods.cpp
std::vector<const MethodSpec*> builtinPruneMethods();     // builtin_sparse_methods.cpp
std::vector<const MethodSpec*> builtinFactorizeMethods(); // builtin_sparse_methods.cpp
const MethodSpec& hqqMethod();                            // quant/hqq.cpp
const MethodSpec& zeroQuantMethod();                      // quant/zeroquant.cpp
const MethodSpec& oliveMethod();                          // quant/olive.cpp
const MethodSpec& osPlusMethod();                         // quant/os_plus.cpp
const MethodSpec& rptqMethod();                           // quant/rptq.cpp
const MethodSpec& quarotMethod();                         // methods/rotation_methods.cpp
const MethodSpec& kiviMethod();                           // methods/kv_cache_methods.cpp
const MethodSpec& llmQatKvMethod();                       // methods/kv_cache_methods.cpp

namespace {

std::vector<const MethodSpec*> buildRegistry()
{
    std::vector<const MethodSpec*> all = builtinQuantMethods();
    all.push_back(&hqqMethod());
    all.push_back(&zeroQuantMethod());
    all.push_back(&oliveMethod());
    all.push_back(&osPlusMethod());
    all.push_back(&rptqMethod());
    for (const auto& more : {builtinPruneMethods(), builtinFactorizeMethods()})
        all.insert(all.end(), more.begin(), more.end());
    all.push_back(&quarotMethod());
    all.push_back(&kiviMethod());
    all.push_back(&llmQatKvMethod());
    return all;
}

[[noreturn]] void bad(const std::string& message)
{
    fail(ErrorCode::InvalidArgument, "", message);
}

std::string number(double x)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
}

std::string percent(double fraction)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g %%", std::round(fraction * 1000.0) / 10.0);
    return buf;
}

std::string joined(const std::vector<std::string>& items, const std::string& separator)
{
    std::string out;
    for (const std::string& s : items)
        out += (out.empty() ? "" : separator) + s;
    return out;
}

std::string paramNames(const MethodSpec& spec)
{
    std::vector<std::string> keys;
    for (const ParamSpec& p : spec.params)
        keys.push_back(p.key);
    return keys.empty() ? std::string("it takes none") : "its parameters: " + joined(keys, ", ");
}

std::string rangeText(const ParamSpec& p)
{
    switch (p.type) {
    case ParamType::Int: return "an integer in [" + number(p.min) + ", " + number(p.max) + "]";
    case ParamType::Real: return "a number in [" + number(p.min) + ", " + number(p.max) + "]";
    case ParamType::Flag: return "true or false";
    case ParamType::Choice: return "one of " + joined(p.choices, ", ");
    case ParamType::Text: return "text";
    }
    return {};
}

// The given value of `p`, checked against its type and range, as stored text.
std::string checkedValue(const ParamSpec& p, const ParamSource& given)
{
    // A number given as true/false (a recipe's `sparsity: true`) has no value to read.
    if ((p.type == ParamType::Int || p.type == ParamType::Real) && !given.value(p.key))
        bad(p.key + " must be " + rangeText(p) + ", not true or false");
    switch (p.type) {
    case ParamType::Flag: return given.flag(p.key) ? "true" : "false";
    case ParamType::Int:
        return std::to_string(given.intOr(p.key, 0, static_cast<long long>(p.min), static_cast<long long>(p.max)));
    case ParamType::Real: {
        const double x = given.doubleOr(p.key, 0.0);
        if (!(x >= p.min && x <= p.max))
            bad(p.key + " must be " + rangeText(p));
        return *given.value(p.key);
    }
    case ParamType::Choice: {
        const std::string v = given.valueOr(p.key, "");
        for (const std::string& c : p.choices)
            if (asciiLower(c) == asciiLower(v))
                return c;
        bad(p.key + " must be " + rangeText(p) + " (not '" + v + "')");
    }
    case ParamType::Text: return given.valueOr(p.key, "");
    }
    return {};
}

} // namespace

MethodWork svdWork(double out, double in)
{
    const double full = std::min(out, in);
    return {4.0 * out * in * full + 8.0 * full * full * full, sizeof(float) * (out * full + full * in + in * in)};
}

MethodWork obsSweepWork(double out, double in)
{
    return {2.0 * out * in * in + in * in * in, 2.0 * sizeof(float) * in * in};
}

std::string_view actionName(StepAction a)
{
    switch (a) {
    case StepAction::Quantize: return "quantize";
    case StepAction::Prune: return "prune";
    case StepAction::Factorize: return "factorize";
    case StepAction::Rotate: return "rotate";
    case StepAction::KvCache: return "kv-cache";
    }
    return "?";
}

const ParamSpec* MethodSpec::param(const std::string& key) const
{
    for (const ParamSpec& p : params)
        if (p.key == key)
            return &p;
    return nullptr;
}

unsigned MethodSpec::needsFor(const ParamValues& v) const
{
    unsigned n = needs;
    for (const ParamSpec& p : params)
        if (p.needsWhenSet != kNeedsNothing && v.contains(p.key)) {
            const std::string& t = v.text(p.key);
            if (!t.empty() && t != "0" && t != "false")
                n |= p.needsWhenSet;
        }
    return n;
}

const std::vector<const MethodSpec*>& methodRegistry()
{
    static const std::vector<const MethodSpec*> registry = buildRegistry();
    return registry;
}

std::vector<const MethodSpec*> methodSpecsFor(StepAction action)
{
    std::vector<const MethodSpec*> out;
    for (const MethodSpec* m : methodRegistry())
        if (m->action == action)
            out.push_back(m);
    return out;
}

const MethodSpec* findMethodSpec(StepAction action, const std::string& id)
{
    for (const MethodSpec* m : methodRegistry())
        if (m->action == action && m->id == id)
            return m;
    return nullptr;
}

std::string methodIdList(StepAction action, const char* separator)
{
    std::vector<std::string> ids;
    for (const MethodSpec* m : methodSpecsFor(action))
        ids.push_back(m->id);
    return joined(ids, separator);
}

const MethodSpec& requireMethodSpec(StepAction action, const std::string& id)
{
    if (const MethodSpec* m = findMethodSpec(action, id))
        return *m;
    static const char* kWhat[] = {"quantization", "pruning", "factorization", "rotation", "KV-cache quantization"};
    std::vector<std::string> ids;
    for (const MethodSpec* m : methodSpecsFor(action))
        ids.push_back(m->id);
    const std::string last = ids.back();
    ids.pop_back();
    bad(std::string(kWhat[static_cast<int>(action)]) + " method must be "
        + (ids.empty() ? last : joined(ids, ", ") + " or " + last)
        + (id.empty() ? std::string() : " (not '" + id + "')"));
}

const std::set<std::string>& commonStepKeys()
{
    static const std::set<std::string> keys{"stats", "output-error"};
    return keys;
}

std::set<std::string> actionParamKeys(StepAction action)
{
    std::set<std::string> keys = commonStepKeys();
    for (const MethodSpec* m : methodSpecsFor(action)) {
        for (const ParamSpec& p : m->params)
            keys.insert(p.key);
        keys.insert(m->ignoredKeys.begin(), m->ignoredKeys.end());
    }
    return keys;
}

ParamValues readMethodParams(const MethodSpec& spec, const ParamSource& given)
{
    const std::set<std::string> actionKeys = actionParamKeys(spec.action);
    for (const std::string& key : given.keys()) {
        if (commonStepKeys().count(key) || !actionKeys.count(key) || spec.takes(key)
            || std::find(spec.ignoredKeys.begin(), spec.ignoredKeys.end(), key) != spec.ignoredKeys.end())
            continue;
        if (!given.has(key))
            continue; // `sym: false` sets nothing
        bad(spec.id + " has no parameter " + key + " (" + paramNames(spec) + ")");
    }
    ParamValues values;
    for (const ParamSpec& p : spec.params) {
        if (given.has(p.key)) {
            if (!p.onlyWith.empty() && !given.has(p.onlyWith))
                bad(p.key + " applies only with " + p.onlyWith);
            for (const std::string& other : p.notWith)
                if (given.has(other))
                    bad(p.key + " does not apply with " + other);
            values.set(p.key, checkedValue(p, given));
        } else if (p.required) {
            bad(p.key + " is required for " + spec.id);
        } else if (p.type == ParamType::Flag) {
            values.set(p.key, "false");
        } else if (!p.defaultValue.empty() && (p.onlyWith.empty() || given.has(p.onlyWith))
                   && std::none_of(p.notWith.begin(), p.notWith.end(), [&](const std::string& k) { return given.has(k); })) {
            values.set(p.key, p.defaultValue);
        }
    }
    return values;
}

std::string methodBadge(const MethodSpec& spec, const ParamValues& v)
{
    if (spec.badge)
        return spec.badge(v);
    switch (spec.action) {
    case StepAction::Quantize: {
        std::string b = asciiUpper(spec.id);
        if (v.contains("bits"))
            b += " " + v.text("bits") + "b";
        if (v.contains("group"))
            b += v.text("group") == "0" ? std::string(" row") : " g" + v.text("group");
        if (v.contains("sym") && v.flag("sym"))
            b += " sym";
        if (v.contains("act-order") && v.flag("act-order"))
            b += " act-order";
        if (v.contains("lorc-rank") && v.integer("lorc-rank") > 0)
            b += " +LoRC " + v.text("lorc-rank");
        if (v.contains("eora-rank") && v.integer("eora-rank") > 0)
            b += " +EoRA " + v.text("eora-rank");
        return b;
    }
    case StepAction::Prune:
        if (v.contains("structured"))
            return v.text("structured") + " -" + percent(v.contains("ratio") ? v.real("ratio") : 0.25);
        if (v.contains("nm"))
            return spec.id + " " + v.text("nm") + " sparse";
        return spec.id + " " + percent(v.contains("sparsity") ? v.real("sparsity") : 0.5) + " sparse";
    case StepAction::Factorize: {
        const std::string name = spec.id == "svd-llm" ? "SVD-LLM" : asciiUpper(spec.id);
        if (v.contains("energy"))
            return name + " energy " + percent(v.real("energy"));
        return name + " rank " + percent(v.contains("rank-ratio") ? v.real("rank-ratio") : 0.5);
    }
    case StepAction::Rotate: return spec.name;
    case StepAction::KvCache: {
        const std::string k = v.text("bits"), val = v.contains("value-bits") ? v.text("value-bits") : k;
        if (spec.id == "kivi")
            return "KIVI K" + k + "V" + val + " g" + v.text("group") + " r" + v.text("residual");
        return "KV" + (k == val ? k : k + "/" + val) + " per token";
    }
    }
    return spec.id;
}

std::string methodHelp(StepAction action)
{
    std::ostringstream s;
    s << "methods (docs/methods.md):\n";
    for (const MethodSpec* m : methodSpecsFor(action)) {
        s << "  " << m->id << ": " << m->name;
        if (m->needsCalibration())
            s << " (needs --calib)";
        s << "\n";
        for (const ParamSpec& p : m->params) {
            if (p.type == ParamType::Int && p.min == p.max) {
                s << "      --" << p.key << " " << number(p.min) << " (fixed)\n";
                continue;
            }
            // Streamed piece by piece: GCC 12 warns falsely (-Wrestrict) on " " + std::string.
            s << "      --" << p.key;
            if (p.type == ParamType::Choice)
                s << ' ' << joined(p.choices, "|");
            else if (p.type != ParamType::Flag)
                s << ' ' << asciiUpper(p.key);
            s << "  " << p.help;
            std::string detail = rangeText(p);
            if (p.required)
                detail += ", required";
            else if (!p.defaultValue.empty())
                detail += ", default " + p.defaultValue;
            if (!p.onlyWith.empty())
                detail += ", only with --" + p.onlyWith;
            if (p.type != ParamType::Flag)
                s << " (" << detail << ")";
            s << "\n";
        }
    }
    return s.str();
}

std::string methodMarkdownTable()
{
    std::ostringstream s;
    s << "| Action | Method | Name | Parameters | Calibration |\n|---|---|---|---|---|\n";
    for (const MethodSpec* m : methodRegistry()) {
        std::vector<std::string> keys;
        for (const ParamSpec& p : m->params)
            keys.push_back("`" + p.key + "`");
        s << "| " << actionName(m->action) << " | `" << m->id << "` | " << m->name << " | "
          << (keys.empty() ? std::string("—") : joined(keys, ", ")) << " | "
          << (m->needsCalibration() ? "needed" : m->needs != kNeedsNothing ? "used when given" : "—") << " |\n";
    }
    return s.str();
}

} // namespace ll
