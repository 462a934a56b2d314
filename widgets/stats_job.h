#pragma once
// Tensor statistics off the GUI thread, as a job of the process's one job
// manager (JobRunner: one CPU budget, counted by runningCount(), stopped by
// cancelAll()). Each start() abandons the job before it; only the newest
// job's result is delivered, on the GUI thread. The job holds its own copy of
// the model pointer, so the bytes it reads stay alive even when the document
// opens another model meanwhile.
#include "model/model.h"
#include "stats/tensor_stats.h"

#include <QObject>
#include <QString>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace ll::gui {

struct TensorStatsRequest {
    std::shared_ptr<const Model> model;
    int tensor = -1;              // index into model->tensors
    StatsOptions options;
    int heatmapMaxCells = 256;    // per side
    int64_t maxProfileValues = 1 << 16; // 1-D tensors up to this size come back whole
};

struct TensorStatsResult {
    uint64_t job = 0;
    int tensor = -1;
    TensorStats stats;
    bool hasHeatmap = false;      // 2-D tensors
    Heatmap heatmap;
    int64_t rows = 0, cols = 0;   // logical shape of a 2-D tensor
    std::vector<float> profile;   // values of a small 1-D tensor (norm weights)
    QString error;                // empty on success
    bool cancelled = false;
    double seconds = 0.0;
};

class JobRunner;

class StatsJob : public QObject {
    Q_OBJECT
public:
    explicit StatsJob(QObject* parent = nullptr);
    ~StatsJob() override; // cancels and waits, so no job outlives its receiver

    // Starts a job and returns its id; the previous job is abandoned.
    uint64_t start(TensorStatsRequest request);
    // Cancels the current job; nothing of it arrives any more.
    void cancel();
    bool isRunning() const;

signals:
    void progress(int permille, const QString& what);
    void finished(const ll::gui::TensorStatsResult& result); // newest job only
    void runningChanged(bool running);

private:
    JobRunner* runner_;
};

} // namespace ll::gui
