// A recipe: the first byte picks YAML (even) or JSON (odd), the rest is the text.
#include "fuzz_support.h"

#include "recipe/recipe.h"
#include "util/json_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    if (size == 0)
        return 0;
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    fuzz::expectOnlyErrors([&] {
        const Recipe r = parseRecipe(text, (data[0] & 1) == 0, "fuzz.yaml");
        // What the GUI does with a loaded recipe: badges, the saved forms.
        for (const RecipeStep& s : r.steps)
            (void)s.badge();
        (void)recipeToYaml(r);
        (void)dumpJson(r.toJson()); // as sessions and saved recipes do
    });
    return 0;
}
