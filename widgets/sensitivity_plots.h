#pragma once
// The two plots of the Sensitivity dock: the metric per layer as bars (most
// sensitive first) and as a block × projection heatmap, where a pattern
// across depth (early v, late down, ...) shows at a glance.
#include <qcustomplot.h>

#include <QString>
#include <QStringList>

#include <vector>

namespace ll::gui {

class SensitivityBarPlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit SensitivityBarPlot(QWidget* parent = nullptr);
    // Bars in the given order (the caller sorts); NaN values are left out.
    void setValues(const QStringList& labels, const std::vector<double>& values, const QString& metric);
    void clearPlot();
    // What is shown, in order (tests).
    QStringList labels() const { return labels_; }
    std::vector<double> values() const { return values_; }

private:
    QCPBars* bars_;
    QCPTextElement* title_;
    QStringList labels_;
    std::vector<double> values_;
};

class SensitivityHeatmap : public QCustomPlot {
    Q_OBJECT
public:
    // The heatmap's columns: q k v o gate up down.
    static const QStringList& projections();
    // -1 when the logical name is not one of the block projections.
    static int projectionIndex(const QString& logicalName);

    explicit SensitivityHeatmap(QWidget* parent = nullptr);
    // values[block][projection], NaN where not measured.
    void setValues(const std::vector<std::vector<double>>& values, const QString& metric);
    void clearPlot();
    // The cell's value (NaN when empty or out of range).
    double value(int block, int projection) const;
    int blocks() const { return static_cast<int>(values_.size()); }

private:
    QCPColorMap* map_;
    QCPColorScale* scale_;
    QCPTextElement* title_;
    std::vector<std::vector<double>> values_;
};

} // namespace ll::gui
