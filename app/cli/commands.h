#pragma once
// Each subcommand of layerlab-cli: takes its arguments (after the command
// name), prints its result, returns the exit code. Errors are thrown: ll::Error
// (bad input, exit 2) or UsageError (exit 64).
#include <string>
#include <vector>

namespace ll::cli {

int cmdInspect(const std::vector<std::string>& args);
int cmdBench(const std::vector<std::string>& args);
int cmdBenchModel(const std::vector<std::string>& args);
int cmdTokenize(const std::vector<std::string>& args);
int cmdLogits(const std::vector<std::string>& args);
int cmdPpl(const std::vector<std::string>& args);
int cmdEval(const std::vector<std::string>& args);
int cmdImatrix(const std::vector<std::string>& args);
int cmdGenerate(const std::vector<std::string>& args);
int cmdExport(const std::vector<std::string>& args);
int cmdPrune(const std::vector<std::string>& args);
int cmdFactorize(const std::vector<std::string>& args);
int cmdQuantize(const std::vector<std::string>& args);
int cmdApply(const std::vector<std::string>& args);
int cmdSensitivity(const std::vector<std::string>& args);
int cmdMixed(const std::vector<std::string>& args);
int cmdClean(const std::vector<std::string>& args);
int cmdSession(const std::vector<std::string>& args);
int cmdMethods(const std::vector<std::string>& args);

} // namespace ll::cli
