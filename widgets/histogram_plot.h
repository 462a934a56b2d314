#pragma once
// The histogram of a tensor's values: bins holding outliers in a contrasting
// colour, dashed lines at mean ± k·σ, optional logarithmic counts. A second
// distribution (the weights after compression) can be overlaid on the same
// bins as an outline over the filled "before" bars.
#include "stats/tensor_stats.h"

#include <qcustomplot.h>

#include <span>
#include <vector>

namespace ll::gui {

class HistogramPlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit HistogramPlot(QWidget* parent = nullptr);

    void showStats(const TensorStats& stats);
    void setLogY(bool on);
    void clearPlot();

    // What the plot shows, per bin (regular and outlier bars merged).
    std::vector<int64_t> shownCounts() const;
    // Bins drawn in the outlier colour.
    std::vector<int> outlierBins() const;
    bool logY() const { return logY_; }

    // The "after" distribution over the bins of the shown stats (counts.size()
    // must equal their bin count, else the overlay is cleared). While it shows,
    // the bars are named `beforeName` in the legend.
    void showOverlay(const std::vector<int64_t>& counts, const QString& afterName = tr("after"),
                     const QString& beforeName = tr("before"));
    // Bins `values` with binInto() and shows them; returns how many fell outside
    // the bins' range (the legend says so when any did).
    int64_t showOverlayValues(std::span<const float> values, const QString& afterName = tr("after"),
                              const QString& beforeName = tr("before"));
    void clearOverlay();
    bool hasOverlay() const { return hasOverlay_; }
    // The overlay as plotted, per bin (empty without one).
    std::vector<int64_t> overlayCounts() const;

    // Counts of `values` in the bins of `bins` (the core's rule: bin =
    // floor((x - lo) / width), x == hi in the last bin). Values outside
    // [lo, hi] and non-finite ones are not counted; *outside says how many.
    static std::vector<int64_t> binInto(const Histogram& bins, std::span<const float> values,
                                        int64_t* outside = nullptr);

private:
    void rebuild();
    void setOverlay(const std::vector<int64_t>& counts, const QString& afterName, const QString& beforeName,
                    int64_t outside);
    void rebuildOverlay(double base);
    void fitLegend();

    QCPBars* bars_;
    QCPBars* outlierBars_;
    QCPGraph* rug_;
    QCPItemStraightLine* meanLine_;
    QCPItemStraightLine* lowLine_;
    QCPItemStraightLine* highLine_;
    QCPItemRect* lowBand_;
    QCPItemRect* highBand_;
    QCPItemText* lowLabel_;
    QCPItemText* highLabel_;
    QCPTextElement* title_;
    QCPGraph* overlay_;
    TensorStats stats_;
    bool hasStats_ = false;
    bool logY_ = false;
    std::vector<int64_t> overlayCounts_;
    QString afterName_, beforeName_;
    int64_t overlayOutside_ = 0;
    bool hasOverlay_ = false;
};

} // namespace ll::gui
