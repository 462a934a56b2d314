#include "job_estimate.h"

#include "system_memory.h"

#include "eval/sample_text.h"
#include "util/eta.h"
#include "util/threads.h"

#include <QFileInfo>
#include <QObject>

#include <algorithm>

namespace ll::gui {

namespace {

double notYetResident(const JobCost& cost)
{
    const ProcessMemory now = readProcessMemory();
    return std::max(0.0, cost.modelBytes - now.rssFile);
}

} // namespace

JobCheck checkJob(const JobCost& cost, double reusableBytes)
{
    JobCheck c;
    c.seconds = cost.seconds(machineGflops());
    c.summary = estimateSummary(cost);
    const std::optional<double> available = availableMemory();
    if (!available)
        return c;
    const ProcessMemory now = readProcessMemory();
    const FitCheck fit = checkFits(cost, *available + std::max(0.0, reusableBytes), now.rssFile);
    c.ok = fit.fits;
    c.refusal = QString::fromStdString(fit.message);
    return c;
}

QString estimateSummary(const JobCost& cost)
{
    const double seconds = cost.seconds(machineGflops());
    const double bytes = cost.workingBytes() + notYetResident(cost);
    QString s = QObject::tr("about %1, %2")
                    .arg(QString::fromStdString(formatClock(std::max(1.0, seconds))),
                         QString::fromStdString(formatGigabytes(bytes)));
    if (cost.spillBytes > 0.0)
        s += QObject::tr(" (+ %1 in a temporary file)").arg(QString::fromStdString(formatGigabytes(cost.spillBytes)));
    return s;
}

int64_t estimatedCalibrationWindows(const RecipeCalibration& calibration)
{
    const double bytes = calibration.isBuiltin() ? static_cast<double>(builtinSampleText().size())
                                                 : static_cast<double>(QFileInfo(QString::fromStdString(calibration.text)).size());
    const int64_t fit = static_cast<int64_t>(bytes / 2.0) / std::max<int64_t>(1, calibration.context);
    return std::clamp<int64_t>(fit, 1, std::max<int64_t>(1, calibration.windows));
}

int computeThreadCount()
{
    return computeThreads();
}

} // namespace ll::gui
