#pragma once
// The tensor inspector: statistics of the document's current tensor, its
// histogram and its |W| map. Numbers are computed by a StatsJob off the GUI
// thread; a new selection cancels the job before it.
#include "stats/tensor_stats.h"
#include "stats_job.h"

#include <QWidget>

#include <optional>
#include <vector>

class QCheckBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QProgressBar;
class QSpinBox;
class QSplitter;
class QStackedWidget;
class QTableWidget;

namespace ll::gui {

class HistogramPlot;
class ModelDocument;
class WeightMapPlot;

class TensorInspector : public QWidget {
    Q_OBJECT
public:
    explicit TensorInspector(ModelDocument* document, QWidget* parent = nullptr);

    // Statistics shown now, for shownTensor(); nullptr while none are.
    const TensorStats* currentStats() const { return stats_ ? &*stats_ : nullptr; }
    int shownTensor() const { return shownTensor_; }
    bool isBusy() const { return job_->isRunning(); }
    // Text of a row of the statistics table by key: count, nonfinite, min,
    // max, mean, std, kurtosis, absmax_over_std, outliers, outlier_share,
    // zeros, zero_share. Empty when there is no such row.
    QString shownStatistic(const QString& key) const;
    std::vector<int64_t> histogramCounts() const;
    std::vector<int> outlierBins() const;
    QCustomPlot* histogramPlot() const;
    QCustomPlot* weightMapPlot() const;
    WeightMapPlot* weightMap() const { return weightMap_; }
    QString errorText() const;

    QDoubleSpinBox* sigmaBox() const { return sigmaBox_; }
    QSpinBox* binsBox() const { return binsBox_; }
    QCheckBox* logYBox() const { return logYBox_; }

signals:
    // The statistics of `tensor` are on screen (or its error is).
    void statsShown(int tensor);
    void busyChanged(bool busy);

protected:
    void showEvent(QShowEvent* event) override;

private:
    void restart();
    void clearResults(const QString& message);
    void showResult(const TensorStatsResult& result);
    void updateHeader();
    void setStatistic(const QString& key, const QString& label, const QString& value, const QString& tip = {});

    ModelDocument* document_;
    StatsJob* job_;
    QLabel* title_;
    QLabel* subtitle_;
    QDoubleSpinBox* sigmaBox_;
    QSpinBox* binsBox_;
    QCheckBox* logYBox_;
    QStackedWidget* stateStack_;
    QProgressBar* progress_;
    QLabel* stateLabel_;
    QTableWidget* table_;
    HistogramPlot* histogram_;
    WeightMapPlot* weightMap_;
    QSplitter* split_;            // the statistics row above the map
    QSplitter* top_;              // the table and the histogram (and a square matrix's map)
    // A square matrix's map goes beside the histogram, where it is as tall as
    // the statistics row (below it, it would be a thin strip); other maps below.
    void placeMap(bool beside);
    bool splitSized_ = false;
    std::optional<TensorStats> stats_;
    int shownTensor_ = -1;
};

} // namespace ll::gui
