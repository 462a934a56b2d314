#include "zoom.h"

#include <QApplication>
#include <QSettings>
#include <QWidget>

#include <qcustomplot.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace ll::gui {

namespace {

constexpr std::array<double, 9> kSteps{0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5};
const char* kSettingsKey = "view/zoom";

QFont sized(QFont f, double pointSize, bool bold = false)
{
    f.setPointSizeF(pointSize);
    f.setBold(bold);
    return f;
}

} // namespace

ZoomController::ZoomController(QObject* parent) : QObject(parent)
{
    // The font at 100 %, taken once per process (a second window must not take a zoomed font as its base).
    static const QFont base = QApplication::font();
    base_ = base;
    const double saved = QSettings().value(QLatin1String(kSettingsKey), 1.0).toDouble();
    if (saved != 1.0 && std::isfinite(saved))
        setFactor(saved);
}

void ZoomController::setFactor(double factor, bool remember)
{
    factor = std::clamp(std::isfinite(factor) ? factor : 1.0, kMin, kMax);
    if (factor == factor_)
        return;
    factor_ = factor;
    apply();
    if (remember)
        QSettings().setValue(QLatin1String(kSettingsKey), factor_);
    emit changed(factor_);
}

void ZoomController::zoomIn()
{
    const auto next = std::upper_bound(kSteps.begin(), kSteps.end(), factor_ + 1e-9);
    setFactor(next == kSteps.end() ? kMax : *next);
}

void ZoomController::zoomOut()
{
    const auto below = std::lower_bound(kSteps.begin(), kSteps.end(), factor_ - 1e-9);
    setFactor(below == kSteps.begin() ? kMin : *(below - 1));
}

void ZoomController::reset() { setFactor(1.0); }

void ZoomController::apply()
{
    const double points = base_.pointSizeF() * factor_;
    QApplication::setFont(sized(base_, points));
    // QCustomPlot takes its fonts once, when it is made: set them again.
    for (QWidget* w : QApplication::allWidgets())
        if (auto* plot = qobject_cast<QCustomPlot*>(w))
            scalePlotFonts(plot, points);
}

void ZoomController::setLineScale(double scale)
{
    lineScale_ = scale;
    for (QWidget* w : QApplication::allWidgets())
        if (auto* plot = qobject_cast<QCustomPlot*>(w)) {
            // Once per plot: graphs made later (a new preview, a new curve) are scaled before they are drawn.
            if (!plot->property("llLineScaleHooked").toBool()) {
                plot->setProperty("llLineScaleHooked", true);
                connect(plot, &QCustomPlot::beforeReplot, plot, [this, plot] { scalePlotLines(plot, lineScale_); });
            }
            scalePlotLines(plot, scale);
            plot->replot(QCustomPlot::rpQueuedReplot);
        }
}

namespace {

// The pen at `scale` times the width it was made with, kept in the object's "llBasePenWidth".
QPen scaledPen(QObject* owner, QPen pen, double scale)
{
    QVariant base = owner->property("llBasePenWidth");
    if (!base.isValid()) {
        base = pen.widthF();
        owner->setProperty("llBasePenWidth", base);
    }
    pen.setWidthF(base.toDouble() * scale);
    return pen;
}

} // namespace

void scalePlotLines(QCustomPlot* plot, double scale)
{
    for (int i = 0; i < plot->plottableCount(); ++i) {
        QCPAbstractPlottable* p = plot->plottable(i);
        if (p->pen().style() != Qt::NoPen)
            p->setPen(scaledPen(p, p->pen(), scale));
    }
    for (int i = 0; i < plot->itemCount(); ++i) {
        QCPAbstractItem* item = plot->item(i);
        if (auto* line = qobject_cast<QCPItemStraightLine*>(item))
            line->setPen(scaledPen(line, line->pen(), scale));
        else if (auto* segment = qobject_cast<QCPItemLine*>(item))
            segment->setPen(scaledPen(segment, segment->pen(), scale));
    }
}

void scalePlotFonts(QCustomPlot* plot, double pointSize)
{
    const QFont normal = sized(plot->font(), pointSize);
    for (QCPAxisRect* rect : plot->axisRects())
        for (QCPAxis* axis : rect->axes()) {
            axis->setTickLabelFont(normal);
            axis->setLabelFont(normal);
        }
    for (int i = 0; i < plot->plotLayout()->elementCount(); ++i)
        if (auto* title = qobject_cast<QCPTextElement*>(plot->plotLayout()->elementAt(i)))
            title->setFont(sized(title->font(), pointSize, true));
    if (plot->legend)
        plot->legend->setFont(sized(plot->legend->font(), std::max(7.0, pointSize - 1.0)));
    plot->replot(QCustomPlot::rpQueuedReplot);
}

} // namespace ll::gui
