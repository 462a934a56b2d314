#pragma once
// Replaying a recipe from the document's source model in the background and
// landing the result as ONE undoable command: what loading a recipe, removing
// a step and applying a mixed-precision plan all do.
#include "recipe/recipe.h"

#include <QString>

#include <functional>

namespace ll::gui {

class JobRunner;
class ModelDocument;

enum class ReplayOutcome { Applied, Cancelled, Failed, Stale };

// `done` runs on the GUI thread with the outcome and, unless Applied, a message for the user.
void replayRecipe(JobRunner* runner, ModelDocument* document, const Recipe& recipe, const QString& label,
                  std::function<void(ReplayOutcome, const QString& message)> done);

} // namespace ll::gui
