#pragma once
// View › Zoom: one factor for the whole window (a teacher on a projector):
// the application font and every plot's fonts (axes, titles, legends) follow
// it, and it is remembered between sessions.
#include <QFont>
#include <QObject>

class QCustomPlot;

namespace ll::gui {

class ZoomController : public QObject {
    Q_OBJECT
public:
    explicit ZoomController(QObject* parent = nullptr);

    double factor() const { return factor_; }
    // Clamped to [kMin, kMax]; applies, remembers (unless `remember` is false:
    // presentation mode's zoom is not the user's), emits changed().
    void setFactor(double factor, bool remember = true);
    void zoomIn();  // the next step of 100, 110, 125, 150, 175, 200, 250 %
    void zoomOut();
    void reset();   // 100 %
    // Presentation mode's thicker lines: every plot's graphs, bars and marker
    // lines drawn at `scale` times their own width (1: as designed). Plots
    // that rebuild their graphs get the scale again before each replot.
    void setLineScale(double scale);
    double lineScale() const { return lineScale_; }

    static constexpr double kMin = 0.8, kMax = 2.5;

signals:
    void changed(double factor);

private:
    void apply();

    QFont base_;   // the application font at 100 %
    double factor_ = 1.0;
    double lineScale_ = 1.0;
};

// A plot's fonts at `pointSize` (tick labels and axis labels; titles bold; the legend a point smaller).
void scalePlotFonts(QCustomPlot* plot, double pointSize);
// A plot's lines at `scale` times the width each was made with (remembered on first use).
void scalePlotLines(QCustomPlot* plot, double scale);

} // namespace ll::gui
