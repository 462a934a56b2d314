#pragma once
// `export --report OUT.h5 [--eval FILE [--ctx N]]`: the HDF5 report part of
// `layerlab-cli export`, kept apart from the GGUF / Hugging Face paths.
#include "args.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>

namespace ll {
class Model;
class Progress;
} // namespace ll

namespace ll::cli {

// The valued options this part reads (export adds them to its own).
const std::set<std::string>& reportValuedOptions();

// Usage checks that need no model (--eval without --report...).
void checkReportArgs(const Args& a);

// With --report: evaluates (--eval), writes the report, prints a line unless
// `json` (then returns the result as JSON for the caller's output). Without
// --report: nullopt. `recipe`: the recipe applied to `model`, for /recipe.
std::optional<nlohmann::json> reportIfAsked(const Args& a, const Model& model, const std::optional<nlohmann::json>& recipe,
                                            Progress& progress, bool json);

} // namespace ll::cli
