#include "sensitivity_plots.h"

#include "plot_export.h"

#include <QRegularExpression>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ll::gui {

namespace {
const QColor kBarColor(76, 120, 168);
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QCPTextElement* addTitle(QCustomPlot* plot)
{
    plot->plotLayout()->insertRow(0);
    auto* title = new QCPTextElement(plot, QString(), QFont(plot->font().family(), plot->font().pointSize(), QFont::Bold));
    plot->plotLayout()->addElement(0, 0, title);
    return title;
}

// Light yellow for insensitive cells to dark red for the most sensitive: "hot" reads as "careful here".
QCPColorGradient heat()
{
    QCPColorGradient g;
    g.clearColorStops();
    g.setColorStopAt(0.00, QColor(255, 250, 220));
    g.setColorStopAt(0.35, QColor(253, 190, 100));
    g.setColorStopAt(0.70, QColor(230, 90, 50));
    g.setColorStopAt(1.00, QColor(130, 10, 30));
    g.setColorInterpolation(QCPColorGradient::ciRGB);
    g.setNanHandling(QCPColorGradient::nhTransparent);
    return g;
}
} // namespace

SensitivityBarPlot::SensitivityBarPlot(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("sensitivityBarPlot"));
    setMinimumSize(320, 180);
    title_ = addTitle(this);
    bars_ = new QCPBars(xAxis, yAxis);
    bars_->setPen(QPen(kBarColor.darker(115), 0.5));
    bars_->setBrush(kBarColor);
    bars_->setWidth(0.7);
    xAxis->grid()->setVisible(false);
    xAxis->setTickLabelRotation(-60); // short "3.down" labels, one per bar
    yAxis->grid()->setSubGridVisible(false);
    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    axisRect()->setRangeDrag(Qt::Horizontal);
    axisRect()->setRangeZoom(Qt::Horizontal);
    installExportMenu(this);
    clearPlot();
}

void SensitivityBarPlot::clearPlot()
{
    labels_.clear();
    values_.clear();
    bars_->data()->clear();
    xAxis->setTicker(QSharedPointer<QCPAxisTickerText>::create());
    title_->setText(tr("Sensitivity per layer"));
    xAxis->setRange(0, 1);
    yAxis->setRange(0, 1);
    yAxis->setLabel(QString());
    replot(QCustomPlot::rpQueuedReplot);
}

void SensitivityBarPlot::setValues(const QStringList& labels, const std::vector<double>& values, const QString& metric)
{
    clearPlot();
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    QVector<double> keys, vals;
    double lo = 0, hi = 0;
    for (qsizetype i = 0; i < labels.size() && i < static_cast<qsizetype>(values.size()); ++i) {
        const double v = values[static_cast<size_t>(i)];
        if (!std::isfinite(v))
            continue;
        const double key = static_cast<double>(labels_.size());
        labels_ << labels[i];
        values_.push_back(v);
        keys << key;
        vals << v;
        // "blocks.3.mlp.down.weight" → "3.down": the full name is in the table.
        static const QRegularExpression re(QStringLiteral("^blocks\\.(\\d+)\\.(?:attn|mlp)\\.(\\w+)\\.weight$"));
        const auto m = re.match(labels[i]);
        ticker->addTick(key, m.hasMatch() ? m.captured(1) + QLatin1Char('.') + m.captured(2) : labels[i]);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    bars_->setData(keys, vals, true);
    xAxis->setTicker(ticker);
    xAxis->setRange(-0.7, std::max(1.0, static_cast<double>(keys.size()) - 0.3));
    const double pad = 0.05 * std::max(hi - lo, 1e-12);
    yAxis->setRange(lo < 0 ? lo - pad : 0.0, hi + pad);
    yAxis->setLabel(metric);
    title_->setText(tr("%1 per layer, most sensitive first").arg(metric));
    replot(QCustomPlot::rpQueuedReplot);
}

const QStringList& SensitivityHeatmap::projections()
{
    static const QStringList p{QStringLiteral("q"),    QStringLiteral("k"),  QStringLiteral("v"),   QStringLiteral("o"),
                               QStringLiteral("gate"), QStringLiteral("up"), QStringLiteral("down")};
    return p;
}

int SensitivityHeatmap::projectionIndex(const QString& logicalName)
{
    static const QRegularExpression re(QStringLiteral("^blocks\\.\\d+\\.(?:attn|mlp)\\.(\\w+)\\.weight$"));
    const auto m = re.match(logicalName);
    return m.hasMatch() ? static_cast<int>(projections().indexOf(m.captured(1))) : -1;
}

SensitivityHeatmap::SensitivityHeatmap(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("sensitivityHeatmap"));
    setMinimumSize(320, 180);
    title_ = addTitle(this);
    map_ = new QCPColorMap(xAxis, yAxis);
    map_->setInterpolate(false);
    map_->setTightBoundary(false); // whole cells centred on each block and projection
    scale_ = new QCPColorScale(this);
    scale_->setType(QCPAxis::atRight);
    scale_->setBarWidth(12);
    plotLayout()->addElement(1, 1, scale_);
    map_->setColorScale(scale_);
    scale_->setGradient(heat());
    auto* margins = new QCPMarginGroup(this);
    axisRect()->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
    scale_->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    for (int i = 0; i < projections().size(); ++i)
        ticker->addTick(i, projections()[i]);
    xAxis->setTicker(ticker);
    xAxis->setLabel(tr("projection"));
    yAxis->setLabel(tr("block"));
    yAxis->setRangeReversed(true); // block 0 at the top, as in the tree
    xAxis->grid()->setVisible(false);
    yAxis->grid()->setVisible(false);
    installExportMenu(this);
    clearPlot();
}

void SensitivityHeatmap::clearPlot()
{
    values_.clear();
    map_->data()->setSize(1, 1);
    map_->data()->setRange(QCPRange(0, 0), QCPRange(0, 0));
    map_->data()->setCell(0, 0, kNaN);
    map_->setVisible(false);
    title_->setText(tr("Sensitivity by block and projection"));
    scale_->axis()->setLabel(QString());
    xAxis->setRange(-0.5, projections().size() - 0.5);
    yAxis->setRange(-0.5, 0.5);
    replot(QCustomPlot::rpQueuedReplot);
}

void SensitivityHeatmap::setValues(const std::vector<std::vector<double>>& values, const QString& metric)
{
    values_ = values;
    const int nx = static_cast<int>(projections().size());
    const int ny = std::max(1, blocks());
    map_->data()->setSize(nx, ny);
    map_->data()->setRange(QCPRange(0, nx - 1), QCPRange(0, ny - 1));
    double lo = INFINITY, hi = -INFINITY;
    for (int b = 0; b < ny; ++b)
        for (int p = 0; p < nx; ++p) {
            const double v = value(b, p);
            map_->data()->setCell(p, b, v);
            if (std::isfinite(v)) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
        }
    map_->setVisible(true);
    if (std::isfinite(lo))
        map_->setDataRange(QCPRange(lo, hi > lo ? hi : lo + 1e-12));
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    const int step = std::max(1, ny / 16); // at most ~16 block labels
    for (int b = 0; b < ny; b += step)
        ticker->addTick(b, QString::number(b));
    yAxis->setTicker(ticker);
    xAxis->setRange(-0.5, nx - 0.5);
    yAxis->setRange(-0.5, ny - 0.5);
    scale_->axis()->setLabel(metric);
    title_->setText(tr("%1 by block and projection").arg(metric));
    replot(QCustomPlot::rpQueuedReplot);
}

double SensitivityHeatmap::value(int block, int projection) const
{
    if (block < 0 || block >= blocks() || projection < 0 || projection >= static_cast<int>(values_[block].size()))
        return kNaN;
    return values_[static_cast<size_t>(block)][static_cast<size_t>(projection)];
}

} // namespace ll::gui
