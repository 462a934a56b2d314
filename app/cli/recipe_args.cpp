#include "recipe_args.h"

#include "pipeline/quantize_model.h"
#include "util/error.h"

namespace ll::cli {

Recipe loadRecipeArg(const Args& a, const std::string& file)
{
    Recipe recipe = loadRecipe(file);
    if (const auto calib = a.value("calib"))
        recipe.calibration.text = *calib; // the recipe's own text may live elsewhere on this machine
    return recipe;
}

StepOutcome applyRecipeNamingFile(std::shared_ptr<const Model> source, const Recipe& recipe, const std::string& file,
                                  Progress* progress)
{
    try {
        return applyRecipe(std::move(source), recipe, progress);
    } catch (const Error& e) {
        if (!e.file().empty())
            throw;
        fail(e.code(), file, e.problem()); // "R.yaml: step 2 (GPTQ 4b g32): ..."
    }
}

std::unique_ptr<Transformer> stateEngine(const CompressionState& state, Progress* progress)
{
    auto engine = std::make_unique<Transformer>(*state.model, progress);
    if (!state.activations.empty())
        applyActivationQuantization(*engine, state.activations);
    return engine;
}

} // namespace ll::cli
