#pragma once
// What the commands that take --recipe share: reading the recipe (--calib
// replaces its calibration text), applying it so that an error without a file
// names the recipe ("R.yaml: step 2 (GPTQ 4b g32): ..."), and the engine of
// the state it leaves (W8A8 steps quantize activations at run time).
#include "args.h"

#include "engine/transformer.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"

#include <memory>
#include <string>

namespace ll::cli {

Recipe loadRecipeArg(const Args& a, const std::string& file);
StepOutcome applyRecipeNamingFile(std::shared_ptr<const Model> source, const Recipe& recipe, const std::string& file,
                                  Progress* progress);
std::unique_ptr<Transformer> stateEngine(const CompressionState& state, Progress* progress);

} // namespace ll::cli
