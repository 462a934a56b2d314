#include "block_influence_plot.h"

#include "plot_export.h"

#include <algorithm>

namespace ll::gui {

namespace {
const QColor kKept(76, 120, 168);
const QColor kRemoved(200, 60, 50);

QCPBars* makeBars(QCustomPlot* plot, const QColor& color, const QString& name)
{
    auto* b = new QCPBars(plot->xAxis, plot->yAxis);
    b->setPen(QPen(color.darker(115), 0.5));
    b->setBrush(color);
    b->setWidth(0.7);
    b->setName(name);
    return b;
}
} // namespace

BlockInfluencePlot::BlockInfluencePlot(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("blockInfluencePlot"));
    setMinimumSize(320, 180);
    plotLayout()->insertRow(0);
    title_ = new QCPTextElement(this, tr("Block influence (1 − mean cos of a block's input and output)"),
                                QFont(font().family(), font().pointSize(), QFont::Bold));
    plotLayout()->addElement(0, 0, title_);
    kept_ = makeBars(this, kKept, tr("kept"));
    removedBars_ = makeBars(this, kRemoved, tr("removed (lowest influence)"));
    xAxis->setLabel(tr("block"));
    yAxis->setLabel(tr("block influence"));
    xAxis->grid()->setVisible(false);
    legend->setVisible(true);
    axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    installExportMenu(this);
    clearPlot();
}

void BlockInfluencePlot::clearPlot()
{
    influence_.clear();
    removed_.clear();
    kept_->data()->clear();
    removedBars_->data()->clear();
    xAxis->setRange(-0.5, 4.5);
    yAxis->setRange(0.0, 1.0);
    replot();
}

void BlockInfluencePlot::showInfluence(const std::vector<double>& influence, const std::vector<int>& removed)
{
    influence_ = influence;
    removed_ = removed;
    QVector<double> kx, ky, rx, ry;
    double top = 0.0;
    for (size_t i = 0; i < influence.size(); ++i) {
        const bool gone = std::binary_search(removed.begin(), removed.end(), static_cast<int>(i));
        (gone ? rx : kx) << static_cast<double>(i);
        (gone ? ry : ky) << influence[i];
        top = std::max(top, influence[i]);
    }
    kept_->setData(kx, ky, true);
    removedBars_->setData(rx, ry, true);
    QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
    ticker->setTickStep(influence.size() > 32 ? 4.0 : 1.0);
    xAxis->setTicker(ticker);
    xAxis->setRange(-0.7, static_cast<double>(influence.size()) - 0.3);
    yAxis->setRange(0.0, top > 0.0 ? top * 1.15 : 1.0);
    replot();
}

} // namespace ll::gui
