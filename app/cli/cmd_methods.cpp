// layerlab-cli methods: every compression method of the registry with its
// parameters (text), or the table docs/recipes.md points to (--markdown).
#include "args.h"
#include "commands.h"

#include "methods/method_registry.h"

#include <cstdio>

namespace ll::cli {

int cmdMethods(const std::vector<std::string>& argv)
{
    const Args a(argv, {}, {"markdown"});
    if (!a.positional().empty())
        throw UsageError("usage: layerlab-cli methods [--markdown]");
    if (a.flag("markdown")) {
        std::fputs(methodMarkdownTable().c_str(), stdout);
        return 0;
    }
    for (const StepAction action : {StepAction::Quantize, StepAction::Prune, StepAction::Factorize, StepAction::Rotate, StepAction::KvCache})
        std::printf("%s %s", std::string(actionName(action)).c_str(), methodHelp(action).c_str());
    return 0;
}

} // namespace ll::cli
