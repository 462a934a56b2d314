// A GUI session file (.layerlab), as `session check` and the GUI read it.
#include "fuzz_support.h"

#include "recipe/session_file.h"
#include "util/json_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string text(reinterpret_cast<const char*>(data), size);
    fuzz::expectOnlyErrors([&] {
        const SessionFile s = parseSession(text, "fuzz.layerlab");
        (void)dumpJson(s.recipe.toJson());
        for (const auto& [key, value] : s.sections.items())
            (void)dumpJson(value); // the GUI hands each section on as text
    });
    (void)sessionModelPathHint(text);
    return 0;
}
