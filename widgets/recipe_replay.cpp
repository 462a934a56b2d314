#include "recipe_replay.h"

#include "job_failure.h"
#include "job_runner.h"
#include "model_document.h"

#include "recipe/apply.h"
#include "util/error.h"

#include <QCoreApplication>
#include <QStringList>

#include <new>

namespace ll::gui {

namespace {
QString tr(const char* text)
{
    return QCoreApplication::translate("ll::gui::RecipeReplay", text);
}
} // namespace

void replayRecipe(JobRunner* runner, ModelDocument* document, const Recipe& recipe, const QString& label,
                  std::function<void(ReplayOutcome, const QString&)> done)
{
    const std::shared_ptr<const Model> source = document->state().source;
    const std::shared_ptr<const Model> base = document->model();
    runner->start([document, source, base, recipe, label, done](JobContext& job) {
        auto failed = [&job, done](ReplayOutcome outcome, const QString& msg) { job.post([done, outcome, msg] { done(outcome, msg); }); };
        try {
            auto out = std::make_shared<StepOutcome>(applyRecipe(source, recipe, &job));
            job.post([document, out, base, label, done] {
                if (document->model() != base) {
                    done(ReplayOutcome::Stale, tr("The model changed meanwhile; nothing was replaced."));
                    return;
                }
                // Every layer of the old and the new state changes its record.
                QStringList touched;
                for (const auto& [name, rec] : document->state().layers)
                    touched << QString::fromStdString(name);
                for (const std::string& n : out->touched)
                    touched << QString::fromStdString(n);
                touched.removeDuplicates();
                document->pushState(std::move(out->state), label, touched);
                done(ReplayOutcome::Applied, QString());
            });
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory to replay the recipe; the model is unchanged."));
            if (f.cancelled)
                failed(ReplayOutcome::Cancelled, tr("Cancelled: the model is unchanged."));
            else
                failed(ReplayOutcome::Failed, f.message);
        }
    });
}

} // namespace ll::gui
