#pragma once
// The registry of compression methods: every MethodSpec, in the order the CLI
// and the GUI list them. Adding a method: its unit (with its MethodSpec and
// run function), one line in method_registry.cpp, its test.
#include "methods/method_spec.h"

#include <set>
#include <string>
#include <vector>

namespace ll {

const std::vector<const MethodSpec*>& methodRegistry();
std::vector<const MethodSpec*> methodSpecsFor(StepAction action);
const MethodSpec* findMethodSpec(StepAction action, const std::string& id);
// Throws InvalidArgument listing the action's methods ("quantization method must be rtn, gptq, ...").
const MethodSpec& requireMethodSpec(StepAction action, const std::string& id);

// Keys every step of any method takes: "stats", "output-error".
const std::set<std::string>& commonStepKeys();
// Every key some method of the action takes, the common keys included.
std::set<std::string> actionParamKeys(StepAction action);

// Checks the parameters given for `spec` against its schema and returns them
// with their defaults: a key of another method of the action ("gptq has no
// parameter act-order; its parameters: ..."), a value out of range, a
// required key missing, or a key given where it does not apply is an
// InvalidArgument naming the key. Keys that belong to no method of the action
// are left to the caller (the CLI's own options, or RecipeStep::validate).
ParamValues readMethodParams(const MethodSpec& spec, const ParamSource& given);

// "GPTQ 4b g32": the spec's badge, or the action's default.
std::string methodBadge(const MethodSpec& spec, const ParamValues& values);

// For --help: each method of the action with its parameters, types, ranges and defaults.
std::string methodHelp(StepAction action);
// "rtn|gptq|awq|..."
std::string methodIdList(StepAction action, const char* separator = "|");
// docs/recipes.md's method table (Markdown), generated so that it cannot drift.
std::string methodMarkdownTable();

} // namespace ll
