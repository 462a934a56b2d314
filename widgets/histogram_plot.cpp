#include "histogram_plot.h"

#include "format.h"
#include "plot_export.h"

#include <algorithm>
#include <cmath>

namespace ll::gui {

namespace {
const QColor kBarColor(76, 120, 168);     // calm blue: the bulk of the values
const QColor kOutlierColor(228, 87, 86);  // red: bins beyond k·σ
const QColor kLineColor(200, 60, 40);
const QColor kAfterColor(242, 142, 43);   // orange outline: the distribution after compression

QCPItemStraightLine* verticalLine(QCustomPlot* plot, const QPen& pen)
{
    auto* line = new QCPItemStraightLine(plot);
    line->setPen(pen);
    line->point1->setTypeY(QCPItemPosition::ptAxisRectRatio);
    line->point2->setTypeY(QCPItemPosition::ptAxisRectRatio);
    line->setClipToAxisRect(true);
    return line;
}

QCPItemText* lineLabel(QCustomPlot* plot, Qt::Alignment align)
{
    auto* label = new QCPItemText(plot);
    label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    label->setPositionAlignment(align | Qt::AlignTop);
    label->setColor(kLineColor);
    label->setPadding(QMargins(4, 2, 4, 2));
    label->setClipToAxisRect(true);
    return label;
}
} // namespace

HistogramPlot::HistogramPlot(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("histogramPlot"));
    setMinimumSize(320, 110);
    plotLayout()->insertRow(0);
    title_ = new QCPTextElement(this, tr("Histogram"), QFont(font().family(), font().pointSize(), QFont::Bold));
    plotLayout()->addElement(0, 0, title_);

    // Light bands beyond mean ± k·σ: the outlier region, visible even where
    // the tail bars are too short to see. On the grid layer, under the bars.
    for (QCPItemRect** band : {&lowBand_, &highBand_}) {
        *band = new QCPItemRect(this);
        (*band)->setLayer(QStringLiteral("grid"));
        (*band)->setPen(Qt::NoPen);
        (*band)->setBrush(QColor(kOutlierColor.red(), kOutlierColor.green(), kOutlierColor.blue(), 18));
        (*band)->topLeft->setTypeY(QCPItemPosition::ptAxisRectRatio);
        (*band)->bottomRight->setTypeY(QCPItemPosition::ptAxisRectRatio);
    }

    bars_ = new QCPBars(xAxis, yAxis);
    bars_->setName(tr("values"));
    bars_->setPen(QPen(kBarColor.darker(115), 0.5));
    bars_->setBrush(kBarColor);
    bars_->setWidthType(QCPBars::wtPlotCoords);
    outlierBars_ = new QCPBars(xAxis, yAxis);
    outlierBars_->setPen(QPen(kOutlierColor.darker(115), 0.5));
    outlierBars_->setBrush(kOutlierColor);
    outlierBars_->setWidthType(QCPBars::wtPlotCoords);

    // The "after" distribution: a stepped outline over the filled bars, so
    // that both stay readable where they overlap.
    overlay_ = new QCPGraph(xAxis, yAxis);
    overlay_->setLineStyle(QCPGraph::lsLine);
    overlay_->setPen(QPen(kAfterColor, 1.8));
    overlay_->removeFromLegend();

    // A rug of marks under the outlier bins: their bars are often a few
    // pixels high on a linear axis, the marks show where they are anyway.
    yAxis2->setRange(0.0, 1.0);
    rug_ = new QCPGraph(xAxis, yAxis2);
    rug_->setLineStyle(QCPGraph::lsNone);
    QPainterPath tick;
    tick.moveTo(0, -1);
    tick.lineTo(0, 1);
    rug_->setScatterStyle(QCPScatterStyle(tick, QPen(kOutlierColor, 2.0), Qt::NoBrush, 10));
    rug_->removeFromLegend();

    QPen dashed(kLineColor, 1.5, Qt::DashLine);
    lowLine_ = verticalLine(this, dashed);
    highLine_ = verticalLine(this, dashed);
    meanLine_ = verticalLine(this, QPen(QColor(90, 90, 90), 1.0, Qt::DotLine));
    lowLabel_ = lineLabel(this, Qt::AlignRight);
    highLabel_ = lineLabel(this, Qt::AlignLeft);

    xAxis->setLabel(tr("value"));
    yAxis->setLabel(tr("count"));
    xAxis->grid()->setVisible(false);
    yAxis->grid()->setSubGridVisible(false);

    // The legend sits in a row of its own under the title, never over the data.
    legend->setVisible(true);
    legend->setFont(QFont(font().family(), std::max(7, font().pointSize() - 1)));
    legend->setBorderPen(Qt::NoPen);
    legend->setBrush(Qt::NoBrush);
    legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    legend->setColumnSpacing(16);
    axisRect()->insetLayout()->take(legend);
    plotLayout()->insertRow(1);
    auto* legendRow = new QCPLayoutGrid; // [spacer | legend | spacer]: the legend centred at its natural width
    plotLayout()->addElement(1, 0, legendRow);
    plotLayout()->setRowStretchFactor(1, 0.001);
    legendRow->addElement(0, 0, new QCPLayoutElement(this));
    legendRow->addElement(0, 1, legend);
    legendRow->addElement(0, 2, new QCPLayoutElement(this));
    legendRow->setColumnStretchFactors({1.0, 0.001, 1.0});
    legend->setMargins(QMargins(0, 0, 0, 0));
    // Only the bars have legend entries; the dashed lines are labelled in place.
    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    axisRect()->setRangeDrag(Qt::Horizontal);
    axisRect()->setRangeZoom(Qt::Horizontal);
    installExportMenu(this);
    clearPlot();
}

void HistogramPlot::clearPlot()
{
    hasStats_ = false;
    stats_ = {};
    hasOverlay_ = false; // an overlay belongs to the bins it was counted in
    overlayCounts_.clear();
    rebuild();
}

void HistogramPlot::showStats(const TensorStats& stats)
{
    stats_ = stats;
    hasStats_ = true;
    hasOverlay_ = false;
    overlayCounts_.clear();
    rebuild();
}

void HistogramPlot::showOverlay(const std::vector<int64_t>& counts, const QString& afterName,
                                const QString& beforeName)
{
    setOverlay(counts, afterName, beforeName, 0);
    rebuild();
}

void HistogramPlot::setOverlay(const std::vector<int64_t>& counts, const QString& afterName,
                               const QString& beforeName, int64_t outside)
{
    hasOverlay_ = hasStats_ && !counts.empty() && counts.size() == stats_.histogram.counts.size();
    overlayCounts_ = hasOverlay_ ? counts : std::vector<int64_t>{};
    afterName_ = afterName;
    beforeName_ = beforeName;
    overlayOutside_ = hasOverlay_ ? outside : 0;
}

int64_t HistogramPlot::showOverlayValues(std::span<const float> values, const QString& afterName,
                                         const QString& beforeName)
{
    int64_t outside = 0;
    const std::vector<int64_t> counts = binInto(stats_.histogram, values, &outside);
    setOverlay(counts, afterName, beforeName, outside);
    rebuild();
    return outside;
}

void HistogramPlot::clearOverlay()
{
    hasOverlay_ = false;
    overlayCounts_.clear();
    rebuild();
}

std::vector<int64_t> HistogramPlot::binInto(const Histogram& bins, std::span<const float> values, int64_t* outside)
{
    std::vector<int64_t> counts(bins.counts.size(), 0);
    int64_t out = 0;
    const double width = bins.binWidth();
    const auto last = static_cast<int64_t>(counts.size()) - 1;
    for (const float v : values) {
        const double x = v;
        // The negated test also rejects NaN.
        if (counts.empty() || !(x >= bins.lo && x <= bins.hi) || !(width > 0)) {
            ++out;
            continue;
        }
        const auto bin = std::min(last, static_cast<int64_t>(std::floor((x - bins.lo) / width)));
        ++counts[static_cast<size_t>(bin)];
    }
    if (outside)
        *outside = out;
    return counts;
}

std::vector<int64_t> HistogramPlot::overlayCounts() const
{
    if (!hasOverlay_)
        return {};
    // rebuildOverlay() writes (lo, base), then (left edge, c), (right edge, c) per bin.
    const Histogram& h = stats_.histogram;
    std::vector<int64_t> counts(h.counts.size(), 0);
    const auto data = overlay_->data();
    for (int i = 1; i + 1 < data->size(); i += 2) {
        const auto it = data->at(i);
        const auto bin = static_cast<size_t>(std::floor((it->key - h.lo) / h.binWidth() + 0.5));
        // On a log axis an empty bin is drawn at the base (0.5): below 1 means none.
        if (bin < counts.size())
            counts[bin] = it->value < 1.0 ? 0 : static_cast<int64_t>(std::llround(it->value));
    }
    return counts;
}

void HistogramPlot::rebuildOverlay(double base)
{
    overlay_->data()->clear();
    if (!hasOverlay_) {
        overlay_->removeFromLegend();
        bars_->setName(tr("values"));
        return;
    }
    const Histogram& h = stats_.histogram;
    const double width = h.binWidth();
    QVector<double> keys, vals;
    keys.reserve(2 * static_cast<int>(overlayCounts_.size()) + 2);
    vals.reserve(keys.capacity());
    keys << h.lo;
    vals << base;
    for (size_t i = 0; i < overlayCounts_.size(); ++i) {
        const double v = std::max(base, static_cast<double>(overlayCounts_[i]));
        const double left = h.lo + static_cast<double>(i) * width;
        keys << left << left + width;
        vals << v << v;
    }
    keys << h.hi;
    vals << base;
    overlay_->setData(keys, vals, true);
    overlay_->setName(overlayOutside_ > 0 ? tr("%1 (%2 outside the range)").arg(afterName_, formatExact(overlayOutside_))
                                          : afterName_);
    bars_->setName(beforeName_);
    overlay_->addToLegend();
}

void HistogramPlot::setLogY(bool on)
{
    if (on == logY_)
        return;
    logY_ = on;
    rebuild();
}

void HistogramPlot::rebuild()
{
    bars_->data()->clear();
    outlierBars_->data()->clear();
    rug_->data()->clear();
    overlay_->data()->clear();
    const bool show = hasStats_ && stats_.count > 0 && !stats_.histogram.counts.empty();
    for (QCPAbstractItem* item : {static_cast<QCPAbstractItem*>(lowLine_), static_cast<QCPAbstractItem*>(highLine_),
                                  static_cast<QCPAbstractItem*>(meanLine_), static_cast<QCPAbstractItem*>(lowLabel_),
                                  static_cast<QCPAbstractItem*>(highLabel_), static_cast<QCPAbstractItem*>(lowBand_),
                                  static_cast<QCPAbstractItem*>(highBand_)})
        item->setVisible(show);

    if (logY_) {
        yAxis->setScaleType(QCPAxis::stLogarithmic);
        yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
        yAxis->setNumberFormat(QStringLiteral("eb"));
        yAxis->setNumberPrecision(0);
        yAxis->setLabel(tr("count (log)"));
    } else {
        yAxis->setScaleType(QCPAxis::stLinear);
        yAxis->setTicker(QSharedPointer<QCPAxisTicker>::create());
        yAxis->setNumberFormat(QStringLiteral("gb"));
        yAxis->setNumberPrecision(6);
        yAxis->setLabel(tr("count"));
    }

    if (!show) {
        title_->setText(tr("Histogram"));
        outlierBars_->removeFromLegend();
        overlay_->removeFromLegend();
        legend->setVisible(false);
        xAxis->setRange(-1, 1);
        yAxis->setRange(logY_ ? 0.5 : 0.0, logY_ ? 10.0 : 1.0);
        replot();
        return;
    }

    const Histogram& h = stats_.histogram;
    const double width = h.binWidth();
    bars_->setWidth(width);
    outlierBars_->setWidth(width);
    // On a log axis zero counts have no position: leave those bins out.
    const double base = logY_ ? 0.5 : 0.0;
    bars_->setBaseValue(base);
    outlierBars_->setBaseValue(base);
    int64_t peak = 0;
    int nOutlierBins = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
        const int64_t c = h.counts[i];
        peak = std::max(peak, c);
        if (c == 0)
            continue;
        if (stats_.binHasOutliers(i)) {
            outlierBars_->addData(h.binCenter(i), static_cast<double>(c));
            rug_->addData(h.binCenter(i), 0.03);
            ++nOutlierBins;
        } else {
            bars_->addData(h.binCenter(i), static_cast<double>(c));
        }
    }
    rebuildOverlay(base);
    for (const int64_t c : overlayCounts_)
        peak = std::max(peak, c);
    const QString k = QString::number(stats_.outlierSigma, 'g', 3);
    outlierBars_->setName(tr("bins beyond %1σ").arg(k));
    legend->setVisible(true);
    if (nOutlierBins > 0)
        outlierBars_->addToLegend();
    else
        outlierBars_->removeFromLegend();
    fitLegend();

    const double cut = stats_.outlierSigma * stats_.std;
    const double lo = stats_.mean - cut, hi = stats_.mean + cut;
    for (auto* line : {lowLine_, highLine_, meanLine_}) {
        const double x = line == lowLine_ ? lo : (line == highLine_ ? hi : stats_.mean);
        line->point1->setCoords(x, 0.0);
        line->point2->setCoords(x, 1.0);
    }
    lowLabel_->setText(QStringLiteral("μ−%1σ").arg(k));
    lowLabel_->position->setCoords(lo, 0.0);
    highLabel_->setText(QStringLiteral("μ+%1σ").arg(k));
    highLabel_->position->setCoords(hi, 0.0);

    // Far beyond any zoom, so that the bands reach the axis ends.
    const double far = 1e6 * std::max(1.0, std::fabs(stats_.mean) + cut + (h.hi - h.lo));
    lowBand_->topLeft->setCoords(-far, 0.0);
    lowBand_->bottomRight->setCoords(lo, 1.0);
    highBand_->topLeft->setCoords(hi, 0.0);
    highBand_->bottomRight->setCoords(far, 1.0);

    // The data range, widened to show the k·σ lines, with a small margin.
    // The margin also leaves room for the line labels outside the lines (~45 px).
    const double x0 = std::min(h.lo, lo), x1 = std::max(h.hi, hi);
    const double span = x1 - x0 > 0 ? x1 - x0 : 1.0;
    const int plotWidth = axisRect()->width() > 100 ? axisRect()->width() : 500;
    const double margin = std::max(0.03 * span, span * 45.0 / std::max(100, plotWidth - 90));
    xAxis->setRange(x0 - margin, x1 + margin);
    if (logY_)
        yAxis->setRange(0.5, std::max<double>(10.0, static_cast<double>(peak) * 3.0));
    else
        yAxis->setRange(0.0, std::max<double>(1.0, static_cast<double>(peak) * 1.08));
    title_->setText(tr("Histogram: %1 bins of width %2").arg(h.counts.size()).arg(formatValue(width)));
    replot();
}

// The legend at its natural width, so that the spacers beside it centre it.
void HistogramPlot::fitLegend()
{
    legend->setSizeConstraintRect(QCPLayoutElement::scrOuterRect);
    legend->setMaximumSize(legend->minimumOuterSizeHint());
}

std::vector<int64_t> HistogramPlot::shownCounts() const
{
    if (!hasStats_)
        return {};
    const Histogram& h = stats_.histogram;
    std::vector<int64_t> counts(h.counts.size(), 0);
    const double width = h.binWidth();
    for (const QCPBars* b : {bars_, outlierBars_}) {
        for (auto it = b->data()->constBegin(); it != b->data()->constEnd(); ++it) {
            const auto bin = static_cast<size_t>(std::floor((it->key - h.lo) / width));
            if (bin < counts.size())
                counts[bin] += static_cast<int64_t>(std::llround(it->value));
        }
    }
    return counts;
}

std::vector<int> HistogramPlot::outlierBins() const
{
    std::vector<int> out;
    if (!hasStats_)
        return out;
    const Histogram& h = stats_.histogram;
    for (auto it = outlierBars_->data()->constBegin(); it != outlierBars_->data()->constEnd(); ++it)
        out.push_back(static_cast<int>(std::floor((it->key - h.lo) / h.binWidth())));
    return out;
}

} // namespace ll::gui
