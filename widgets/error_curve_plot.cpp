#include "error_curve_plot.h"

#include "plot_export.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ll::gui {

namespace {
// The plots' palette: blue, orange, green, red, purple, brown.
const QColor kCurveColors[] = {QColor(76, 120, 168), QColor(242, 142, 43), QColor(89, 161, 79),
                               QColor(228, 87, 86),  QColor(176, 122, 161), QColor(156, 117, 95)};
const QColor kCurrentColor(60, 60, 60);

// Where a series' line runs between two points: straight on screen, so
// interpolated in log space along a log axis.
double axisSpace(double v, bool log) { return log ? std::log(v) : v; }
double fromAxisSpace(double v, bool log) { return log ? std::exp(v) : v; }
} // namespace

ErrorCurvePlot::ErrorCurvePlot(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("errorCurvePlot"));
    setMinimumSize(320, 150);
    plotLayout()->insertRow(0);
    title_ = new QCPTextElement(this, tr("Error"), QFont(font().family(), font().pointSize(), QFont::Bold));
    plotLayout()->addElement(0, 0, title_);
    placeLegendInRow(this, 1);

    currentLine_ = new QCPItemStraightLine(this);
    currentLine_->setPen(QPen(kCurrentColor, 1.2, Qt::DashLine));
    currentLine_->point1->setTypeY(QCPItemPosition::ptAxisRectRatio);
    currentLine_->point2->setTypeY(QCPItemPosition::ptAxisRectRatio);
    currentLine_->setClipToAxisRect(true);
    currentLabel_ = new QCPItemText(this);
    currentLabel_->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    currentLabel_->setColor(kCurrentColor);
    currentLabel_->setBrush(QColor(255, 255, 255, 215));
    currentLabel_->setPadding(QMargins(4, 2, 4, 2));
    currentLabel_->setTextAlignment(Qt::AlignLeft);
    currentLabel_->setClipToAxisRect(true);
    message_ = new QCPItemText(this);
    message_->position->setType(QCPItemPosition::ptAxisRectRatio);
    message_->position->setCoords(0.5, 0.5);
    message_->setColor(QColor(110, 110, 110));
    message_->setText(tr("No error curve"));

    yAxis->setLabel(tr("relative error"));
    yAxis->grid()->setSubGridVisible(false);
    setScale(yAxis, logY_);
    setXLabel(tr("x"));

    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    connect(this, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) { pressPos_ = e->pos(); });
    connect(this, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton || curves_.empty() || (e->pos() - pressPos_).manhattanLength() > 3
            || !axisRect()->rect().contains(e->pos()))
            return;
        // The nearest point on screen along x: the knob only takes the values that were measured.
        double best = std::numeric_limits<double>::infinity(), bestX = 0.0;
        for (const Curve& c : curves_)
            for (const ErrorCurvePoint& p : c.points) {
                const double d = std::fabs(xAxis->coordToPixel(p.x) - e->pos().x());
                if (d < best)
                    best = d, bestX = p.x;
            }
        if (!std::isfinite(best))
            return;
        setCurrent(bestX);
        emit xPicked(bestX);
    });
    installExportMenu(this);
    clearCurves();
}

void ErrorCurvePlot::setScale(QCPAxis* axis, bool log)
{
    if (log) {
        axis->setScaleType(QCPAxis::stLogarithmic);
        axis->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
        axis->setNumberFormat(QStringLiteral("gb"));
    } else {
        axis->setScaleType(QCPAxis::stLinear);
        axis->setTicker(QSharedPointer<QCPAxisTicker>::create());
        axis->setNumberFormat(QStringLiteral("gb"));
    }
    axis->setNumberPrecision(3);
}

void ErrorCurvePlot::setTitle(const QString& title)
{
    title_->setText(title);
    replot();
}

void ErrorCurvePlot::setYLabel(const QString& label)
{
    yAxis->setLabel(label);
    replot();
}

void ErrorCurvePlot::setXLabel(const QString& label)
{
    xLabel_ = label;
    xAxis->setLabel(label);
    title_->setText(tr("Error vs %1").arg(label));
    rebuildCurrent();
    replot();
}

void ErrorCurvePlot::setLogX(bool on)
{
    logX_ = on;
    setScale(xAxis, on);
    rescale();
}

void ErrorCurvePlot::setLogY(bool on)
{
    logY_ = on;
    setScale(yAxis, on);
    rescale();
}

void ErrorCurvePlot::setSeriesNames(const QString& first, const QString& second)
{
    firstSeries_ = first == QLatin1String("weight error") ? QString() : first;
    secondSeries_ = second == QLatin1String("output error") ? QString() : second;
}

int ErrorCurvePlot::addCurve(const QString& name, const std::vector<ErrorCurvePoint>& points)
{
    Curve c;
    c.name = name;
    c.points = points;
    std::stable_sort(c.points.begin(), c.points.end(), [](const auto& a, const auto& b) { return a.x < b.x; });
    const QColor color = kCurveColors[curves_.size() % std::size(kCurveColors)];
    const QString prefix = name.isEmpty() ? QString() : name + QStringLiteral(" ");

    c.weight = new QCPGraph(xAxis, yAxis);
    c.weight->setName(prefix + (firstSeries_.isEmpty() ? tr("weight error") : firstSeries_));
    c.weight->setPen(QPen(color, 1.8));
    c.weight->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, color, 6));
    const bool hasOutput = std::any_of(c.points.begin(), c.points.end(), [](const auto& p) { return p.outputError.has_value(); });
    if (hasOutput) {
        c.output = new QCPGraph(xAxis, yAxis);
        c.output->setName(prefix + (secondSeries_.isEmpty() ? tr("output error") : secondSeries_));
        c.output->setPen(QPen(color, 1.8, Qt::DashLine));
        c.output->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(color, 1.5), Qt::white, 6));
    }
    for (QCPGraph** mark : {&c.weightMark, &c.outputMark}) {
        if (mark == &c.outputMark && !hasOutput)
            continue;
        // The highlighted point: larger, with a dark ring, over the series' own markers.
        *mark = new QCPGraph(xAxis, yAxis);
        (*mark)->setLineStyle(QCPGraph::lsNone);
        (*mark)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(kCurrentColor, 2.0), color, 12));
        (*mark)->removeFromLegend();
    }
    curves_.push_back(std::move(c));
    rescale();
    return curveCount() - 1;
}

void ErrorCurvePlot::clearCurves()
{
    for (Curve& c : curves_)
        for (QCPGraph* g : {c.weight, c.output, c.weightMark, c.outputMark})
            if (g)
                removePlottable(g);
    curves_.clear();
    current_.reset();
    rescale();
}

// Points that cannot sit on a log axis (x or error <= 0) are left out.
void ErrorCurvePlot::rescale()
{
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    auto usable = [](double v, bool log) { return std::isfinite(v) && (!log || v > 0.0); };
    for (Curve& c : curves_) {
        QVector<double> wk, wv, ok, ov;
        for (const ErrorCurvePoint& p : c.points) {
            if (!usable(p.x, logX_))
                continue;
            if (usable(p.weightError, logY_)) {
                wk << p.x, wv << p.weightError;
                y0 = std::min(y0, p.weightError), y1 = std::max(y1, p.weightError);
                x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
            }
            if (p.outputError && usable(*p.outputError, logY_)) {
                ok << p.x, ov << *p.outputError;
                y0 = std::min(y0, *p.outputError), y1 = std::max(y1, *p.outputError);
                x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
            }
        }
        c.weight->setData(wk, wv, true);
        if (c.output)
            c.output->setData(ok, ov, true);
    }
    const bool any = std::isfinite(x0);
    message_->setVisible(!any);
    legend->setVisible(any);
    fitLegendInRow(this);
    if (!any) {
        xAxis->setRange(logX_ ? 1.0 : 0.0, 10.0);
        yAxis->setRange(logY_ ? 1e-3 : 0.0, 1.0);
    } else {
        // A margin so that end points and their markers are not cut by the frame.
        if (logX_) {
            const double f = std::pow(x1 / x0 > 1.0 ? x1 / x0 : 4.0, 0.05);
            xAxis->setRange(x0 / f, x1 * f);
        } else {
            const double pad = x1 > x0 ? 0.05 * (x1 - x0) : std::max(0.5, 0.1 * std::fabs(x0));
            xAxis->setRange(x0 - pad, x1 + pad);
        }
        if (logY_)
            yAxis->setRange(y0 / 1.6, y1 * 1.6);
        else
            yAxis->setRange(std::min(0.0, y0), y1 > 0 ? y1 * 1.1 : 1.0);
    }
    rebuildCurrent();
    replot();
}

std::optional<double> ErrorCurvePlot::valueAt(const std::vector<ErrorCurvePoint>& sortedPoints, double x, bool output,
                                              bool logX, bool logY)
{
    const ErrorCurvePoint* prev = nullptr;
    for (const ErrorCurvePoint& p : sortedPoints) {
        if (output && !p.outputError)
            continue;
        const double v = output ? *p.outputError : p.weightError;
        if (p.x == x)
            return v;
        if (prev && prev->x < x && x < p.x) {
            const double pv = output ? *prev->outputError : prev->weightError;
            if ((logX && (prev->x <= 0 || x <= 0)) || (logY && (pv <= 0 || v <= 0)))
                return std::nullopt;
            const double t = (axisSpace(x, logX) - axisSpace(prev->x, logX))
                             / (axisSpace(p.x, logX) - axisSpace(prev->x, logX));
            return fromAxisSpace(axisSpace(pv, logY) + t * (axisSpace(v, logY) - axisSpace(pv, logY)), logY);
        }
        prev = &p;
    }
    return std::nullopt;
}

std::optional<double> ErrorCurvePlot::markedWeightError(int curve) const
{
    if (curve < 0 || curve >= curveCount() || curves_[curve].weightMark->data()->isEmpty())
        return std::nullopt;
    return curves_[curve].weightMark->data()->at(0)->value;
}

std::optional<double> ErrorCurvePlot::markedOutputError(int curve) const
{
    if (curve < 0 || curve >= curveCount() || !curves_[curve].outputMark || curves_[curve].outputMark->data()->isEmpty())
        return std::nullopt;
    return curves_[curve].outputMark->data()->at(0)->value;
}

void ErrorCurvePlot::setCurrent(double x)
{
    current_ = x;
    rebuildCurrent();
    replot();
}

void ErrorCurvePlot::clearCurrent()
{
    current_.reset();
    rebuildCurrent();
    replot();
}

void ErrorCurvePlot::rebuildCurrent()
{
    const bool show = current_.has_value() && !curves_.empty() && (!logX_ || *current_ > 0.0);
    currentLine_->setVisible(show);
    currentLabel_->setVisible(show);
    QStringList lines;
    if (show)
        lines << QStringLiteral("%1 = %2").arg(xLabel_, QString::number(*current_, 'g', 4));
    for (Curve& c : curves_) {
        c.weightMark->data()->clear();
        if (c.outputMark)
            c.outputMark->data()->clear();
        if (!show)
            continue;
        // NaN for "none": plain doubles from here on (GCC 12 misreads optionals in the ternaries).
        const double w = valueAt(c.points, *current_, false, logX_, logY_).value_or(std::nan(""));
        const double o = c.output ? valueAt(c.points, *current_, true, logX_, logY_).value_or(std::nan("")) : std::nan("");
        auto text = [](double v) { return std::isnan(v) ? QStringLiteral("–") : QString::number(v, 'g', 3); };
        if (!std::isnan(w) && (!logY_ || w > 0))
            c.weightMark->addData(*current_, w);
        if (!std::isnan(o) && (!logY_ || o > 0))
            c.outputMark->addData(*current_, o);
        QString line = c.name.isEmpty() ? QString() : c.name + QStringLiteral(": ");
        // "weight 0.15, output 0.25", or the series' own names ("key error 0.15, value error 0.25").
        line += (firstSeries_.isEmpty() ? tr("weight %1") : firstSeries_ + QStringLiteral(" %1")).arg(text(w));
        if (c.output)
            line += (secondSeries_.isEmpty() ? tr(", output %1") : QStringLiteral(", ") + secondSeries_ + QStringLiteral(" %1")).arg(text(o));
        lines << line;
    }
    if (!show)
        return;
    currentLine_->point1->setCoords(*current_, 0.0);
    currentLine_->point2->setCoords(*current_, 1.0);
    currentLabel_->setText(lines.join(QLatin1Char('\n')));
    currentLabel_->position->setCoords(*current_, 0.0);
    // The label on the side of the line with more room.
    const double mid = logX_ ? std::sqrt(xAxis->range().lower * xAxis->range().upper) : xAxis->range().center();
    currentLabel_->setPositionAlignment((*current_ <= mid ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignTop);
}

} // namespace ll::gui
