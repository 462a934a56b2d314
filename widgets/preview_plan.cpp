#include "preview_plan.h"

#include "job_estimate.h"
#include "system_memory.h"

#include "recipe/step_options.h"

#include <QObject>

#include <algorithm>

namespace ll::gui {

PreviewPlan planPreview(const CompressionState& state, const RecipeStep& step, const std::string& tensor,
                        const RecipeCalibration& calibration, PreviewChoice choice, double reusableBytes)
{
    PreviewPlan plan;
    const Model& model = *state.model;
    const LogicalTensor* t = model.findLogical(tensor);
    const bool calibrated = step.usesCalibration();
    const bool outputError = JsonParams(step.params).flag("output-error");
    // The KV preview runs the calibration text's first positions through the model.
    const bool kvCache = step.action == StepAction::KvCache;
    plan.calibrationPass = t && (calibrated || outputError || kvCache) && !model.config.synthetic;
    plan.fullWindows = estimatedCalibrationWindows(calibration);
    const int threads = computeThreadCount();
    if (!t)
        return plan;
    if (!plan.calibrationPass) {
        plan.cost = estimatePreview(state, step, tensor, 0, calibration.context, threads);
    } else {
        // Data-free steps measure their output error on at most kOutputErrorWindows windows.
        const int64_t full = calibrated ? plan.fullWindows : std::min(plan.fullWindows, kOutputErrorWindows);
        const int64_t sample = std::min(full, kPreviewSampleWindows);
        plan.cost = estimatePreview(state, step, tensor, full, calibration.context, threads);
        plan.sampleCost = estimatePreview(state, step, tensor, sample, calibration.context, threads);
        plan.windows = full;
        const double seconds = plan.cost.seconds(machineGflops());
        const bool large = static_cast<double>(model.parameterCount()) > kLargeModelParameters;
        if (choice == PreviewChoice::Sample) {
            plan.windows = sample;
            plan.cost = plan.sampleCost;
        } else if (choice == PreviewChoice::Auto && (large || seconds > kAskAboveSeconds) && sample < full) {
            plan.kind = PreviewPlan::Kind::Ask;
            plan.question = QObject::tr("Previewing %1 on %2 needs a calibration pass through blocks 0..%3 on %4 windows "
                                        "(%5).")
                                .arg(QString::fromStdString(step.badge()), QString::fromStdString(tensor))
                                .arg(t->block)
                                .arg(full)
                                .arg(estimateSummary(plan.cost));
        } else if (choice == PreviewChoice::Auto && (large || seconds > kAskAboveSeconds)) {
            plan.kind = PreviewPlan::Kind::Ask; // no smaller sample to offer: ask all the same
            plan.question = QObject::tr("Previewing %1 on %2 needs a calibration pass through blocks 0..%3 (%4).")
                                .arg(QString::fromStdString(step.badge()), QString::fromStdString(tensor))
                                .arg(t->block)
                                .arg(estimateSummary(plan.cost));
        }
        if (plan.windows < full)
            plan.note = calibrated ? QObject::tr("Calibrated on a sample of %1 windows for this preview; Apply uses %2.")
                                         .arg(plan.windows)
                                         .arg(full)
                                   : QObject::tr("Output error on a sample of %1 windows for this preview; Apply uses %2.")
                                         .arg(plan.windows)
                                         .arg(full);
    }
    if (plan.kind == PreviewPlan::Kind::Run) {
        const JobCheck check = checkJob(plan.cost, reusableBytes);
        if (!check.ok) {
            plan.kind = PreviewPlan::Kind::Refuse;
            plan.refusal = check.refusal;
        }
    }
    return plan;
}

} // namespace ll::gui
