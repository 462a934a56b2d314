// A GUI session file (.layerlab), as `session check` and the GUI read it.
#include "fuzz_support.h"

#include "recipe/session_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string text(reinterpret_cast<const char*>(data), size);
    fuzz::expectOnlyErrors([&] {
        const SessionFile s = parseSession(text, "fuzz.layerlab");
        (void)s.recipe.toJson().dump();
        for (const auto& [key, value] : s.sections.items())
            (void)value.dump(); // the GUI hands each section on as text
    });
    (void)sessionModelPathHint(text);
    return 0;
}
