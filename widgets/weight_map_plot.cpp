#include "weight_map_plot.h"

#include "plot_export.h"

#include <QFontMetrics>

#include <algorithm>
#include <cmath>

namespace ll::gui {

namespace {
// Perceptually uniform, dark for small |w| and bright yellow for the largest.
QCPColorGradient viridis()
{
    QCPColorGradient g;
    g.clearColorStops();
    g.setColorStopAt(0.00, QColor(68, 1, 84));
    g.setColorStopAt(0.25, QColor(59, 82, 139));
    g.setColorStopAt(0.50, QColor(33, 145, 140));
    g.setColorStopAt(0.75, QColor(94, 201, 98));
    g.setColorStopAt(1.00, QColor(253, 231, 37));
    g.setColorInterpolation(QCPColorGradient::ciRGB);
    return g;
}
} // namespace

WeightMapPlot::WeightMapPlot(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("weightMapPlot"));
    installExportMenu(this); // right-click: Export plot… (PNG, SVG, PDF)
    setMinimumSize(320, 110);
    plotLayout()->insertRow(0);
    title_ = new QCPTextElement(this, QString(), QFont(font().family(), font().pointSize(), QFont::Bold));
    plotLayout()->addElement(0, 0, title_);

    colorMap_ = new QCPColorMap(xAxis, yAxis);
    colorMap_->setInterpolate(false);
    colorMap_->setTightBoundary(true);
    colorScale_ = new QCPColorScale(this);
    colorScale_->setType(QCPAxis::atRight);
    colorScale_->setBarWidth(12);
    colorScale_->axis()->setLabel(tr("max |w| in cell"));
    plotLayout()->addElement(1, 1, colorScale_);
    colorMap_->setColorScale(colorScale_); // the map takes the scale's gradient from now on
    colorScale_->setGradient(viridis());
    // Keep the colour bar as tall as the map.
    margins_ = new QCPMarginGroup(this);
    axisRect()->setMarginGroup(QCP::msTop | QCP::msBottom, margins_);
    colorScale_->setMarginGroup(QCP::msTop | QCP::msBottom, margins_);

    profile_ = addGraph();
    profile_->setPen(QPen(QColor(76, 120, 168), 1.5));
    profile_->setLineStyle(QCPGraph::lsStepCenter);

    message_ = new QCPItemText(this);
    message_->position->setType(QCPItemPosition::ptAxisRectRatio);
    message_->position->setCoords(0.5, 0.5);
    message_->setColor(QColor(110, 110, 110));
    message_->setClipToAxisRect(false);

    yAxis->setRangeReversed(true); // row 0 at the top, as the matrix is written
    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    showMessage(QString());
}

void WeightMapPlot::resizeEvent(QResizeEvent* event)
{
    QCustomPlot::resizeEvent(event);
    fitTickCounts();
    if (showsSquareMatrix()) {
        fitSquareCells();
        replot(QCustomPlot::rpQueuedReplot);
    }
}

void WeightMapPlot::fitSquareCells()
{
    if (!showsSquareMatrix())
        return;
    plotLayout()->update(QCPLayoutElement::upLayout); // the axis rect's size for the current widget size
    const QRect r = axisRect()->rect();
    if (r.width() <= 0 || r.height() <= 0)
        return;
    xAxis->setRange(fullX_);
    yAxis->setRange(fullY_);
    // Pad the longer side around the matrix's centre.
    if (r.width() >= r.height())
        xAxis->setScaleRatio(yAxis, 1.0);
    else
        yAxis->setScaleRatio(xAxis, 1.0);
}

// A wide matrix's map is a short strip: five labels on its row axis and its
// colour bar would print over each other. About one label per two lines of text.
void WeightMapPlot::fitTickCounts()
{
    plotLayout()->update(QCPLayoutElement::upLayout);
    const int lines = axisRect()->rect().height() / std::max(1, 2 * QFontMetrics(yAxis->tickLabelFont()).height());
    const int count = std::clamp(lines, 1, 5);
    if (yAxis->ticker()->tickCount() == count && colorScale_->axis()->ticker()->tickCount() == count)
        return;
    yAxis->ticker()->setTickCount(count);
    colorScale_->axis()->ticker()->setTickCount(count);
    // Other labels have other widths ("0.25" where "0" was), which move the axis
    // rect: lay them out now, before square cells are fitted to it.
    replot(QCustomPlot::rpImmediateRefresh);
}

void WeightMapPlot::showOnly(bool heatmap, bool profile)
{
    colorMap_->setVisible(heatmap);
    colorScale_->setVisible(heatmap);
    profile_->setVisible(profile);
    message_->setVisible(!heatmap && !profile);
    // A message stands alone: no empty axes around it.
    xAxis->setVisible(heatmap || profile);
    yAxis->setVisible(heatmap || profile);
    xAxis->grid()->setVisible(profile);
    yAxis->grid()->setVisible(profile);
    // A hidden colour scale still takes its column: drop it when not needed.
    if (heatmap && !plotLayout()->hasElement(1, 1))
        plotLayout()->addElement(1, 1, colorScale_);
    else if (!heatmap && plotLayout()->hasElement(1, 1) && plotLayout()->element(1, 1) == colorScale_) {
        plotLayout()->take(colorScale_);
        plotLayout()->simplify();
    }
}

void WeightMapPlot::showHeatmap(const Heatmap& map, int64_t rows, int64_t cols)
{
    showOnly(true, false);
    QCPColorMapData* data = colorMap_->data();
    data->setSize(map.cols, map.rows);
    // Cell centres span the matrix's index range.
    data->setRange(QCPRange(0, static_cast<double>(cols - 1)), QCPRange(0, static_cast<double>(rows - 1)));
    float peak = 0.0f;
    for (int r = 0; r < map.rows; ++r)
        for (int c = 0; c < map.cols; ++c) {
            const float v = map.cells[static_cast<size_t>(r) * static_cast<size_t>(map.cols) + static_cast<size_t>(c)];
            data->setCell(c, r, v);
            peak = std::max(peak, v);
        }
    colorMap_->setDataRange(QCPRange(0.0, peak > 0 ? peak : 1.0));
    xAxis->setLabel(tr("input channel (column)"));
    yAxis->setLabel(tr("output row"));
    yAxis->setRangeReversed(true);
    const double halfX = cols > 1 ? 0.5 * static_cast<double>(cols) / map.cols : 0.5;
    const double halfY = rows > 1 ? 0.5 * static_cast<double>(rows) / map.rows : 0.5;
    fullX_ = QCPRange(-halfX, static_cast<double>(cols - 1) + halfX);
    fullY_ = QCPRange(-halfY, static_cast<double>(rows - 1) + halfY);
    xAxis->setRange(fullX_);
    yAxis->setRange(fullY_);
    squareCells_ = rows == cols;
    fitTickCounts(); // first: the labels' width moves the axis rect that square cells are fitted to
    fitSquareCells();
    const bool downsampled = map.rows < rows || map.cols < cols;
    title_->setText(downsampled ? tr("|W| map: %1 × %2 cells, each the max of a %3 × %4 block")
                                      .arg(map.rows).arg(map.cols)
                                      .arg(QString::number(static_cast<double>(rows) / map.rows, 'g', 3))
                                      .arg(QString::number(static_cast<double>(cols) / map.cols, 'g', 3))
                                : tr("|W| map, %1 × %2").arg(rows).arg(cols));
    setToolTip(downsampled ? QString() : tr("One cell per weight: |w|, bright for the largest"));
    replot();
}

void WeightMapPlot::showProfile(const std::vector<float>& values)
{
    showOnly(false, true);
    QVector<double> keys(static_cast<int>(values.size())), vals(static_cast<int>(values.size()));
    double lo = 0.0, hi = 0.0;
    for (size_t i = 0; i < values.size(); ++i) {
        keys[static_cast<int>(i)] = static_cast<double>(i);
        vals[static_cast<int>(i)] = values[i];
        lo = i == 0 ? values[i] : std::min<double>(lo, values[i]);
        hi = i == 0 ? values[i] : std::max<double>(hi, values[i]);
    }
    profile_->setData(keys, vals, true);
    xAxis->setLabel(tr("index"));
    yAxis->setLabel(tr("value"));
    yAxis->setRangeReversed(false);
    xAxis->setRange(-0.5, static_cast<double>(values.size()) - 0.5);
    const double pad = 0.08 * (hi > lo ? hi - lo : std::max(1e-3, std::fabs(hi)));
    yAxis->setRange(lo - pad, hi + pad);
    title_->setText(tr("Values by index (%1)").arg(values.size()));
    replot();
}

void WeightMapPlot::showMessage(const QString& message)
{
    showOnly(false, false);
    message_->setText(message);
    xAxis->setLabel(QString());
    yAxis->setLabel(QString());
    xAxis->setRange(0, 1);
    yAxis->setRange(0, 1);
    title_->setText(tr("Weight map"));
    replot();
}

} // namespace ll::gui
