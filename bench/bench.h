#pragma once
// layerlab-bench: each bench/*.cpp registers a named benchmark; `layerlab-bench
// NAME [options]` runs it and prints its figures. Never run as a test.
#include <string>
#include <vector>

namespace ll::bench {

using BenchFn = int (*)(const std::vector<std::string>& args);

// A benchmark's command-line options (bench_options.cpp): the value after
// "--name" (or the fallback), the same as an integer, and whether "--name" is given.
std::string option(const std::vector<std::string>& args, const std::string& name, const std::string& fallback);
long long intOption(const std::vector<std::string>& args, const std::string& name, long long fallback);
bool flag(const std::vector<std::string>& args, const std::string& name);

// Registers a benchmark at static-initialisation time:
//   static const ll::bench::Registration reg("forward", "perplexity throughput vs GEMM", benchForward);
struct Registration {
    Registration(const char* name, const char* summary, BenchFn fn);
};

} // namespace ll::bench
