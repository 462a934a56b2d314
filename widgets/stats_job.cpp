#include "stats_job.h"

#include "job_failure.h"
#include "model/tensor_data.h"
#include "util/error.h"
#include "util/progress.h"

#include <QElapsedTimer>
#include <QFutureWatcher>
#include <QPromise>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <new>

namespace ll::gui {

namespace {

// ll::Progress over the job's promise: progress goes to the watcher (queued to
// the GUI thread), cancellation comes from QFuture::cancel().
class PromiseProgress : public Progress {
public:
    PromiseProgress(QPromise<TensorStatsResult>& promise, double base, double span, QString what)
        : promise_(promise), base_(base), span_(span), what_(std::move(what)) {}
    void report(double fraction, std::string_view) override
    {
        const double f = base_ + span_ * std::clamp(fraction, 0.0, 1.0);
        promise_.setProgressValueAndText(static_cast<int>(1000.0 * f), what_);
    }
    bool cancelled() const override { return promise_.isCanceled(); }

private:
    QPromise<TensorStatsResult>& promise_;
    double base_, span_;
    QString what_;
};

void runStats(QPromise<TensorStatsResult>& promise, const TensorStatsRequest& request, uint64_t job)
{
    TensorStatsResult r;
    r.job = job;
    r.tensor = request.tensor;
    if (promise.isCanceled())
        return;
    promise.setProgressRange(0, 1000);
    QElapsedTimer timer;
    timer.start();
    try {
        const LogicalTensor& t = request.model->tensors.at(static_cast<size_t>(request.tensor));
        PromiseProgress decoding(promise, 0.0, 0.3, QObject::tr("decoding"));
        decoding.report(0.0, {});
        const std::vector<float> values = readLogical(*request.model, t, &decoding);
        throwIfCancelled(&decoding);
        PromiseProgress stats(promise, 0.3, 0.6, QObject::tr("statistics"));
        r.stats = computeStats(values, request.options, &stats);
        if (t.shape.size() == 2 && t.shape[0] > 0 && t.shape[1] > 0) {
            r.rows = t.shape[0];
            r.cols = t.shape[1];
            r.heatmap = absHeatmap(values, r.rows, r.cols, request.heatmapMaxCells, request.heatmapMaxCells);
            r.hasHeatmap = true;
        } else if (t.shape.size() == 1 && static_cast<int64_t>(values.size()) <= request.maxProfileValues) {
            r.profile = values;
        }
        promise.setProgressValueAndText(1000, QObject::tr("done"));
    } catch (...) {
        const JobFailure f = currentJobFailure(QObject::tr("not enough memory to decode this tensor"));
        r.cancelled = f.cancelled;
        r.error = f.message;
    }
    r.seconds = static_cast<double>(timer.nsecsElapsed()) * 1e-9;
    promise.addResult(std::move(r));
}

} // namespace

StatsJob::StatsJob(QObject* parent) : QObject(parent) {}

StatsJob::~StatsJob()
{
    for (auto& [job, f] : futures_)
        f.cancel();
    for (auto& [job, f] : futures_)
        f.waitForFinished();
}

uint64_t StatsJob::start(TensorStatsRequest request)
{
    cancelAll();
    const uint64_t job = ++latest_;
    QFuture<TensorStatsResult> future = QtConcurrent::run(
        [request = std::move(request), job](QPromise<TensorStatsResult>& promise) { runStats(promise, request, job); });
    futures_.emplace_back(job, future);
    ++running_;
    const bool wasActive = latestActive_;
    latestActive_ = true;

    auto* watcher = new QFutureWatcher<TensorStatsResult>(this);
    connect(watcher, &QFutureWatcherBase::progressValueChanged, this, [this, watcher, job](int value) {
        if (job == latest_)
            emit progress(value, watcher->progressText());
    });
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, job] {
        const QFuture<TensorStatsResult> f = watcher->future();
        watcher->deleteLater();
        futures_.erase(std::remove_if(futures_.begin(), futures_.end(), [job](const auto& p) { return p.first == job; }),
                       futures_.end());
        --running_;
        if (job != latest_)
            return; // stale: a newer selection replaced it
        latestActive_ = false;
        // Results first, then "idle": whoever waits for idle sees the numbers.
        if (!f.isCanceled() && f.resultCount() > 0) {
            const TensorStatsResult r = f.result();
            if (!r.cancelled)
                emit finished(r);
        }
        emit runningChanged(false);
    });
    watcher->setFuture(future);
    if (!wasActive)
        emit runningChanged(true);
    return job;
}

void StatsJob::cancelAll()
{
    for (auto& [job, f] : futures_)
        f.cancel();
    ++latest_; // whatever still arrives is stale
}

void StatsJob::cancel()
{
    cancelAll();
    if (latestActive_) {
        latestActive_ = false;
        emit runningChanged(false);
    }
}

} // namespace ll::gui
