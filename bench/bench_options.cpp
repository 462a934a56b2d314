// The command-line options every benchmark reads (bench.h).
#include "bench.h"

#include <algorithm>

namespace ll::bench {

std::string option(const std::vector<std::string>& args, const std::string& name, const std::string& fallback)
{
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "--" + name)
            return args[i + 1];
    return fallback;
}

long long intOption(const std::vector<std::string>& args, const std::string& name, long long fallback)
{
    const std::string v = option(args, name, "");
    return v.empty() ? fallback : std::stoll(v);
}

bool flag(const std::vector<std::string>& args, const std::string& name)
{
    return std::find(args.begin(), args.end(), "--" + name) != args.end();
}

} // namespace ll::bench
