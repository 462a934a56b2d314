#pragma once
// Before a job starts: its cost (core/analysis/model_cost.h) against the
// machine. A job that cannot fit in the available memory is refused with a
// message that says what to change, instead of failing minutes later; one
// that fits gets a one-line estimate of its time and memory for the status.
#include "analysis/model_cost.h"

#include <QString>

namespace ll::gui {

struct JobCheck {
    bool ok = true;
    QString refusal;     // when !ok: the message for the user
    QString summary;     // "about 1:23, 1.2 GB"
    double seconds = 0.0;
};

// `reusableBytes`: memory the job gets back when it starts (a preview it replaces).
// Without a reading of MemAvailable the job is allowed.
JobCheck checkJob(const JobCost& cost, double reusableBytes = 0.0);
// "about 1:23, 1.2 GB" (time at machineGflops(); memory: working set, mapped weights not yet resident).
QString estimateSummary(const JobCost& cost);

// Windows the calibration text will give, without tokenizing it: at most the
// recipe's, and at most its bytes / 2 / context (no tokenizer gives fewer than
// 2 bytes a token on text, so this errs on the large side).
int64_t estimatedCalibrationWindows(const RecipeCalibration& calibration);

// Threads the core computes with.
int computeThreadCount();

} // namespace ll::gui
