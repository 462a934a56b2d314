#pragma once
// Error against a compression knob (bits, group size, sparsity, rank) for one
// or more methods: the relative weight error as a solid line, the relative
// output error as a dashed line in the same colour, and the current choice
// marked by a vertical line with a highlighted point on every series.
#include "layer/compressed_layer.h"

#include <qcustomplot.h>

#include <optional>
#include <vector>

namespace ll::gui {

class ErrorCurvePlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit ErrorCurvePlot(QWidget* parent = nullptr);

    // "bits", "group size", "sparsity", "rank": the x axis label.
    void setXLabel(const QString& label);
    void setYLabel(const QString& label); // "relative error" unless told
    void setTitle(const QString& title);  // after setXLabel, which writes "Error vs <x>"

    void setLogX(bool on);
    void setLogY(bool on); // on by default: errors span decades
    bool logX() const { return logX_; }
    bool logY() const { return logY_; }

    // Adds a method's curve (points in any x order) and returns its index.
    // An empty name gives the legend entries "weight error" / "output error".
    int addCurve(const QString& name, const std::vector<ErrorCurvePoint>& points);
    // What the two series of the curves added next are called (the KV preview: "key error", "value error").
    void setSeriesNames(const QString& first, const QString& second);
    void clearCurves();
    int curveCount() const { return static_cast<int>(curves_.size()); }

    // The current choice: a vertical line at x, each series' value there
    // highlighted (interpolated between points, none outside a series' range).
    void setCurrent(double x);
    void clearCurrent();
    std::optional<double> current() const { return current_; }
    // The highlighted points (empty when the series has none at the current x).
    std::optional<double> markedWeightError(int curve) const;
    std::optional<double> markedOutputError(int curve) const;

    // A series' value at x (nullopt outside its points' range): linear between
    // points, in log space along a log axis, i.e. on the line as drawn.
    static std::optional<double> valueAt(const std::vector<ErrorCurvePoint>& sortedPoints, double x, bool output,
                                         bool logX = false, bool logY = false);

signals:
    // A click (not a drag): the nearest x of any curve's points, already made current.
    void xPicked(double x);

private:
    struct Curve {
        QString name;
        std::vector<ErrorCurvePoint> points; // sorted by x
        QCPGraph* weight = nullptr;
        QCPGraph* output = nullptr;
        QCPGraph* weightMark = nullptr;
        QCPGraph* outputMark = nullptr;
    };
    QString firstSeries_, secondSeries_; // empty: "weight error", "output error"
    void rescale();
    void rebuildCurrent();
    void setScale(QCPAxis* axis, bool log);

    QCPTextElement* title_;
    QCPItemStraightLine* currentLine_;
    QCPItemText* currentLabel_;
    QCPItemText* message_;
    std::vector<Curve> curves_;
    std::optional<double> current_;
    QString xLabel_;
    bool logX_ = false, logY_ = true;
    QPoint pressPos_;
};

} // namespace ll::gui
