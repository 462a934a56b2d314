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
    // Clamped to [kMin, kMax]; applies, remembers, emits changed().
    void setFactor(double factor);
    void zoomIn();  // the next step of 100, 110, 125, 150, 175, 200, 250 %
    void zoomOut();
    void reset();   // 100 %

    static constexpr double kMin = 0.8, kMax = 2.5;

signals:
    void changed(double factor);

private:
    void apply();

    QFont base_;   // the application font at 100 %
    double factor_ = 1.0;
};

// A plot's fonts at `pointSize` (tick labels and axis labels; titles bold; the legend a point smaller).
void scalePlotFonts(QCustomPlot* plot, double pointSize);

} // namespace ll::gui
