#include "activation_plot.h"

#include "format.h"
#include "plot_export.h"

#include <algorithm>
#include <cmath>

namespace ll::gui {

namespace {
const QColor kMaxColor(76, 120, 168);       // calm blue: max |x| per channel
const QColor kRmsColor(242, 142, 43);       // orange: RMS
const QColor kContribColor(89, 161, 79);    // green: ||W[:,j]|| * RMS
const QColor kOutlierColor(228, 87, 86);    // red: outlier channels, threshold
constexpr int kMaxLabels = 8;

QCPItemStraightLine* horizontalLine(QCustomPlot* plot, const QPen& pen)
{
    auto* line = new QCPItemStraightLine(plot);
    line->setPen(pen);
    line->point1->setTypeX(QCPItemPosition::ptAxisRectRatio);
    line->point2->setTypeX(QCPItemPosition::ptAxisRectRatio);
    line->setClipToAxisRect(true);
    return line;
}
} // namespace

ActivationPlot::ActivationPlot(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("activationPlot"));
    installExportMenu(this); // right-click: Export plot… (PNG, SVG, PDF)
    setMinimumSize(320, 110);
    // Row 0: the legend, centred at its natural width (never over the channels).
    plotLayout()->insertRow(0);
    auto* top = new QCPLayoutGrid;
    plotLayout()->addElement(0, 0, top);
    plotLayout()->setRowStretchFactor(0, 0.001);
    top->addElement(0, 0, new QCPLayoutElement(this));

    maxGraph_ = new QCPGraph(xAxis, yAxis);
    maxGraph_->setName(tr("max |x|"));
    maxGraph_->setLineStyle(QCPGraph::lsImpulse);
    maxGraph_->setPen(QPen(kMaxColor, 1.2));
    rmsGraph_ = new QCPGraph(xAxis, yAxis);
    rmsGraph_->setName(tr("RMS"));
    rmsGraph_->setLineStyle(QCPGraph::lsLine);
    rmsGraph_->setPen(QPen(kRmsColor, 1.6));
    contribGraph_ = new QCPGraph(xAxis, yAxis2);
    contribGraph_->setName(tr("‖W[:,j]‖·RMS"));
    contribGraph_->setLineStyle(QCPGraph::lsLine);
    contribGraph_->setPen(QPen(kContribColor, 1.4));
    for (QCPGraph** g : {&markers_, &markers2_}) {
        *g = new QCPGraph(xAxis, g == &markers_ ? yAxis : yAxis2);
        (*g)->setName(tr("outliers"));
        (*g)->setLineStyle(QCPGraph::lsNone);
        (*g)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(kOutlierColor, 2.0),
                                              QColor(kOutlierColor.red(), kOutlierColor.green(), kOutlierColor.blue(), 90), 9));
    }
    medianLine_ = horizontalLine(this, QPen(QColor(90, 90, 90), 1.0, Qt::DotLine));
    thresholdLine_ = horizontalLine(this, QPen(kOutlierColor, 1.4, Qt::DashLine));
    thresholdLabel_ = new QCPItemText(this);
    thresholdLabel_->position->setTypeX(QCPItemPosition::ptAxisRectRatio);
    thresholdLabel_->setPositionAlignment(Qt::AlignRight | Qt::AlignTop);
    thresholdLabel_->setColor(kOutlierColor);
    thresholdLabel_->setPadding(QMargins(4, 1, 4, 1));
    thresholdLabel_->setBrush(QColor(255, 255, 255, 215));
    thresholdLabel_->setClipToAxisRect(true);
    message_ = new QCPItemText(this);
    message_->position->setType(QCPItemPosition::ptAxisRectRatio);
    message_->position->setCoords(0.5, 0.5);
    message_->setPositionAlignment(Qt::AlignCenter);
    message_->setTextAlignment(Qt::AlignCenter);
    message_->setColor(QColor(110, 110, 110));
    message_->setClipToAxisRect(false);

    xAxis->setLabel(tr("input channel"));
    yAxis->setLabel(tr("|x|"));
    xAxis->grid()->setVisible(false);
    yAxis->grid()->setSubGridVisible(false);
    yAxis2->setLabel(tr("‖W[:,j]‖·RMS"));

    legend->setVisible(true);
    legend->setFont(QFont(font().family(), std::max(7, font().pointSize() - 1)));
    legend->setBrush(Qt::NoBrush);
    legend->setBorderPen(Qt::NoPen);
    legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    legend->setColumnSpacing(12);
    axisRect()->insetLayout()->take(legend);
    top->addElement(0, 1, legend);
    top->addElement(0, 2, new QCPLayoutElement(this));
    top->setColumnStretchFactors({1.0, 1000.0, 1.0}); // the legend takes its natural width (its maximum), the spacers the rest
    legend->setMargins(QMargins(0, 2, 0, 0));
    // An explicit minimum width: a plot narrower than the legend (while the
    // window lays itself out) squeezes it instead of aborting the layout.
    legend->setMinimumSize(QSize(1, 0));

    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    axisRect()->setRangeDrag(Qt::Horizontal);
    axisRect()->setRangeZoom(Qt::Horizontal);
    showMessage(QString());
}

void ActivationPlot::showMessage(const QString& message)
{
    has_ = false;
    stats_ = {};
    contribution_.clear();
    outliers_ = {};
    marked_.clear();
    message_->setText(message);
    rebuild();
}

void ActivationPlot::showChannels(const ChannelStats& stats, const std::vector<float>* contribution,
                                  OutlierBasis basis, double k, const OutlierChannels& outliers)
{
    has_ = true;
    stats_ = stats;
    contribution_ = contribution ? *contribution : std::vector<float>{};
    basis_ = basis;
    k_ = k;
    outliers_ = outliers;
    message_->setText(QString());
    rebuild();
}

void ActivationPlot::setLogY(bool on)
{
    if (on == logY_)
        return;
    logY_ = on;
    rebuild();
}

std::vector<double> ActivationPlot::basisSeries() const
{
    const std::vector<float>& v = basis_ == OutlierBasis::MaxAbs ? stats_.maxAbs
                                  : basis_ == OutlierBasis::Rms  ? stats_.rms
                                                                 : contribution_;
    return std::vector<double>(v.begin(), v.end());
}

// The legend at its natural width, centred by the spacers beside it, in as
// many columns as fit the plot's width (one row when there is room).
void ActivationPlot::fitLegend()
{
    const int available = std::max(60, width() - 40);
    // Cells left empty by an earlier wrap hold no item.
    std::vector<int> widths;
    for (int i = 0; i < legend->elementCount(); ++i)
        if (QCPLayoutElement* e = legend->elementAt(i))
            widths.push_back(e->minimumOuterSizeHint().width());
    // The most columns whose widest row (each column as wide as its widest item) fits.
    auto fits = [&](int columns) {
        int total = 0;
        for (int c = 0; c < columns; ++c) {
            int w = 0;
            for (size_t i = static_cast<size_t>(c); i < widths.size(); i += static_cast<size_t>(columns))
                w = std::max(w, widths[i]);
            total += w + legend->columnSpacing();
        }
        return total <= available;
    };
    int columns = std::max(1, static_cast<int>(widths.size()));
    while (columns > 1 && !fits(columns))
        --columns;
    legend->setWrap(std::max(1, columns));
    legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);
    legend->setSizeConstraintRect(QCPLayoutElement::scrOuterRect);
    legend->setMaximumSize(legend->visible() ? legend->minimumOuterSizeHint() : QSize(0, 0));
}

void ActivationPlot::resizeEvent(QResizeEvent* event)
{
    fitLegend();
    QCustomPlot::resizeEvent(event);
    if (has_ && event->oldSize().height() != event->size().height())
        rebuild(); // the labels' headroom is in pixels
}

void ActivationPlot::clearLabels()
{
    for (QCPItemText* t : labels_)
        removeItem(t);
    labels_.clear();
}

void ActivationPlot::rebuild()
{
    clearLabels();
    for (QCPGraph* g : {maxGraph_, rmsGraph_, contribGraph_, markers_, markers2_})
        g->data()->clear();
    marked_.clear();
    const bool contrib = has_ && basis_ == OutlierBasis::Contribution && !contribution_.empty();
    for (QCPAxis* axis : {yAxis, yAxis2}) {
        if (logY_) {
            axis->setScaleType(QCPAxis::stLogarithmic);
            axis->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
            axis->setNumberFormat(QStringLiteral("eb"));
            axis->setNumberPrecision(0);
        } else {
            axis->setScaleType(QCPAxis::stLinear);
            axis->setTicker(QSharedPointer<QCPAxisTicker>::create());
            axis->ticker()->setTickCount(4);
            axis->setNumberFormat(QStringLiteral("gb"));
            axis->setNumberPrecision(6);
        }
    }
    yAxis2->setVisible(contrib);
    const int n = has_ ? static_cast<int>(stats_.maxAbs.size()) : 0;
    const bool show = n > 0;
    for (QCPAbstractItem* item : {static_cast<QCPAbstractItem*>(medianLine_),
                                  static_cast<QCPAbstractItem*>(thresholdLine_),
                                  static_cast<QCPAbstractItem*>(thresholdLabel_)})
        item->setVisible(show && outliers_.median > 0);
    legend->setVisible(show);
    fitLegend();
    if (!show) {
        xAxis->setRange(0, 1);
        yAxis->setRange(logY_ ? 0.1 : 0.0, 1.0);
        replot();
        return;
    }

    // Log axes have no zero: such channels sit at the bottom of the range.
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    double lo2 = std::numeric_limits<double>::infinity(), hi2 = 0;
    for (int j = 0; j < n; ++j) {
        const double m = stats_.maxAbs[static_cast<size_t>(j)], r = stats_.rms[static_cast<size_t>(j)];
        maxGraph_->addData(j, m);
        rmsGraph_->addData(j, r);
        for (double v : {m, r})
            if (v > 0 && std::isfinite(v)) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
        if (contrib && j < static_cast<int>(contribution_.size())) {
            const double c = contribution_[static_cast<size_t>(j)];
            contribGraph_->addData(j, c);
            if (c > 0 && std::isfinite(c)) {
                lo2 = std::min(lo2, c);
                hi2 = std::max(hi2, c);
            }
        }
    }
    contribGraph_->setVisible(contrib);
    if (contrib)
        contribGraph_->addToLegend();
    else
        contribGraph_->removeFromLegend();
    // Impulses are clearer than a line while a channel is a few pixels wide.
    maxGraph_->setLineStyle(n <= 4096 ? QCPGraph::lsImpulse : QCPGraph::lsLine);

    // The basis series' median and threshold, outliers marked and the largest numbered.
    QCPAxis* basisAxis = contrib ? yAxis2 : yAxis;
    QCPGraph* marks = contrib ? markers2_ : markers_;
    const std::vector<double> series = basisSeries();
    for (QCPGraph* g : {markers_, markers2_})
        if (g == marks && !outliers_.channels.empty())
            g->addToLegend();
        else
            g->removeFromLegend();
    for (size_t i = 0; i < outliers_.channels.size(); ++i) {
        const int64_t c = outliers_.channels[i];
        if (c < 0 || c >= static_cast<int64_t>(series.size()))
            continue;
        marks->addData(static_cast<double>(c), series[static_cast<size_t>(c)]);
        marked_.push_back(c);
        if (static_cast<int>(labels_.size()) < kMaxLabels) {
            auto* label = new QCPItemText(this);
            label->position->setAxes(xAxis, basisAxis);
            label->position->setCoords(static_cast<double>(c), series[static_cast<size_t>(c)]);
            label->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
            label->setPadding(QMargins(2, 0, 2, 6));
            label->setColor(kOutlierColor.darker(130));
            label->setText(QString::number(c));
            label->setClipToAxisRect(true);
            labels_.push_back(label);
        }
    }
    for (QCPItemStraightLine* line : {medianLine_, thresholdLine_}) {
        const double y = line == medianLine_ ? outliers_.median : outliers_.threshold;
        line->point1->setAxes(xAxis, basisAxis);
        line->point2->setAxes(xAxis, basisAxis);
        line->point1->setCoords(0.0, y);
        line->point2->setCoords(1.0, y);
    }
    thresholdLabel_->position->setAxes(xAxis, basisAxis);
    thresholdLabel_->position->setCoords(0.995, outliers_.threshold);
    thresholdLabel_->setText(tr("%1 × median").arg(k_, 0, 'g', 3));

    fitLegend();
    const double pad = std::max(0.5, 0.01 * n);
    xAxis->setRange(-pad, n - 1 + pad);
    // Room above the highest marker for its channel number: about 26 px of the plot's height.
    const double plotHeight = std::max(40, axisRect()->height());
    const double headroom = std::clamp(26.0 / plotHeight, 0.08, 0.45);
    auto setRange = [&](QCPAxis* axis, double a, double b, double threshold) {
        if (!std::isfinite(a) || b <= 0) {
            a = 0.1;
            b = 1.0;
        }
        b = std::max(b, threshold);
        if (logY_) {
            const double lower = a / 2.0, decades = std::log10(b / lower);
            axis->setRange(lower, b * std::pow(10.0, decades * headroom / (1.0 - headroom)));
        } else {
            axis->setRange(0.0, b / (1.0 - headroom));
        }
    };
    setRange(yAxis, lo, hi, contrib ? 0.0 : outliers_.threshold);
    if (contrib)
        setRange(yAxis2, lo2, hi2, outliers_.threshold);
    replot();
}

} // namespace ll::gui
