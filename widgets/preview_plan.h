#pragma once
// What the compression panel's preview of a tensor will run, decided before
// anything runs. A data-free step (RTN, NF4, FP8, FP4, magnitude, SVD)
// previews from the weights alone; its output error only when asked
// (output_error), on a small sample. A step that needs a calibration pass
// through blocks 0..k runs it when that is cheap; on a large model (more than
// kLargeModelParameters) or when the estimate exceeds kAskAboveSeconds the
// panel asks first: run it, run it on a small sample, or skip. A preview that
// cannot fit in memory is refused with what to change.
#include "analysis/model_cost.h"
#include "recipe/apply.h"

#include <QString>

namespace ll::gui {

enum class PreviewChoice {
    Auto,     // live preview or the Preview button: ask when costly
    Full,     // the user chose to run the full calibration pass
    Sample,   // the user chose the small sample
};

struct PreviewPlan {
    enum class Kind { Run, Ask, Refuse } kind = Kind::Run;
    bool calibrationPass = false;        // the preview runs the model on calibration text
    int64_t windows = 0;                 // calibration windows it uses (0: none)
    int64_t fullWindows = 0;             // what Apply would use
    JobCost cost;                        // of what runs (Run) or of the full pass (Ask)
    JobCost sampleCost;                  // the small sample's (Ask)
    QString question;                    // Ask: "Preview needs a calibration pass through blocks 0..5 (about 0:40, 1.2 GB)."
    QString refusal;                     // Refuse
    QString note;                        // shown with the result ("calibrated on a sample of 4 windows")
};

constexpr double kLargeModelParameters = 1e9;
constexpr double kAskAboveSeconds = 5.0;
constexpr int64_t kPreviewSampleWindows = 4;

// `step` is what the form describes (output_error included); `tensor` a block linear.
PreviewPlan planPreview(const CompressionState& state, const RecipeStep& step, const std::string& tensor,
                        const RecipeCalibration& calibration, PreviewChoice choice, double reusableBytes);

} // namespace ll::gui
