#include "stats_job.h"

#include "job_failure.h"
#include "job_runner.h"
#include "model/tensor_data.h"
#include "util/error.h"

#include <QElapsedTimer>

namespace ll::gui {

namespace {

TensorStatsResult computeTensorStats(const TensorStatsRequest& request, JobContext& ctx)
{
    TensorStatsResult r;
    r.job = ctx.id();
    r.tensor = request.tensor;
    QElapsedTimer timer;
    timer.start();
    try {
        const LogicalTensor& t = request.model->tensors.at(static_cast<size_t>(request.tensor));
        ctx.stage(0.0, 0.3, QObject::tr("decoding"));
        ctx.report(0.0, {});
        const std::vector<float> values = readLogical(*request.model, t, &ctx);
        throwIfCancelled(&ctx);
        ctx.stage(0.3, 0.7, QObject::tr("statistics"));
        r.stats = computeStats(values, request.options, &ctx);
        if (t.shape.size() == 2 && t.shape[0] > 0 && t.shape[1] > 0) {
            r.rows = t.shape[0];
            r.cols = t.shape[1];
            r.heatmap = absHeatmap(values, r.rows, r.cols, request.heatmapMaxCells, request.heatmapMaxCells);
            r.hasHeatmap = true;
        } else if (t.shape.size() == 1 && static_cast<int64_t>(values.size()) <= request.maxProfileValues) {
            r.profile = values;
        }
    } catch (...) {
        const JobFailure f = currentJobFailure(QObject::tr("not enough memory to decode this tensor"));
        r.cancelled = f.cancelled;
        r.error = f.message;
    }
    r.seconds = static_cast<double>(timer.nsecsElapsed()) * 1e-9;
    return r;
}

} // namespace

StatsJob::StatsJob(QObject* parent) : QObject(parent), runner_(new JobRunner(this))
{
    connect(runner_, &JobRunner::progress, this, &StatsJob::progress);
    connect(runner_, &JobRunner::runningChanged, this, &StatsJob::runningChanged);
}

StatsJob::~StatsJob()
{
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

uint64_t StatsJob::start(TensorStatsRequest request)
{
    return runner_->start([this, request = std::move(request)](JobContext& ctx) {
        TensorStatsResult r = computeTensorStats(request, ctx);
        // Results first, then "idle" (the runner's runningChanged): whoever waits for idle sees the numbers.
        ctx.post([this, r = std::move(r)] {
            if (!r.cancelled)
                emit finished(r);
        });
    });
}

void StatsJob::cancel() { runner_->abandon(); }

bool StatsJob::isRunning() const { return runner_->isRunning(); }

} // namespace ll::gui
