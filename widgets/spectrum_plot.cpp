#include "spectrum_plot.h"

#include "plot_export.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace ll::gui {

namespace {
const QColor kKeptColor(76, 120, 168);     // calm blue, as the histogram's bars
const QColor kDroppedColor(150, 150, 150); // grey: what the truncation discards
const QColor kEnergyColor(242, 142, 43);   // orange: cumulative energy (right axis)
const QColor kRankColor(200, 60, 40);      // the rank line, as the histogram's k·σ lines
} // namespace

SpectrumPlot::SpectrumPlot(QWidget* parent) : QCustomPlot(parent)
{
    setObjectName(QStringLiteral("spectrumPlot"));
    setMinimumSize(320, 150);
    plotLayout()->insertRow(0);
    title_ = new QCPTextElement(this, tr("Singular values"), QFont(font().family(), font().pointSize(), QFont::Bold));
    plotLayout()->addElement(0, 0, title_);

    kept_ = new QCPGraph(xAxis, yAxis);
    kept_->setName(tr("kept σᵢ"));
    kept_->setPen(QPen(kKeptColor, 1.6));
    // On a log axis QCustomPlot fills down to the axis rect's edge: the shaded area is "what is kept".
    kept_->setBrush(QColor(kKeptColor.red(), kKeptColor.green(), kKeptColor.blue(), 60));
    dropped_ = new QCPGraph(xAxis, yAxis);
    dropped_->setName(tr("dropped σᵢ"));
    dropped_->setPen(QPen(kDroppedColor, 1.4));
    cumulative_ = new QCPGraph(xAxis, yAxis2);
    cumulative_->setName(tr("cumulative energy"));
    cumulative_->setPen(QPen(kEnergyColor, 1.3, Qt::DashLine));

    rankLine_ = new QCPItemStraightLine(this);
    rankLine_->setPen(QPen(kRankColor, 1.5, Qt::DashLine));
    rankLine_->point1->setTypeY(QCPItemPosition::ptAxisRectRatio);
    rankLine_->point2->setTypeY(QCPItemPosition::ptAxisRectRatio);
    rankLine_->setClipToAxisRect(true);
    rankLabel_ = new QCPItemText(this);
    rankLabel_->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    rankLabel_->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    rankLabel_->setColor(kRankColor);
    rankLabel_->setBrush(QColor(255, 255, 255, 215));
    rankLabel_->setPadding(QMargins(4, 2, 4, 2));
    rankLabel_->setClipToAxisRect(true);
    message_ = new QCPItemText(this);
    message_->position->setType(QCPItemPosition::ptAxisRectRatio);
    message_->position->setCoords(0.5, 0.5);
    message_->setColor(QColor(110, 110, 110));
    message_->setText(tr("No spectrum"));

    xAxis->setLabel(tr("index i (1 = largest)"));
    yAxis->setLabel(tr("σᵢ (log)"));
    yAxis->setScaleType(QCPAxis::stLogarithmic);
    yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
    yAxis->setNumberFormat(QStringLiteral("eb"));
    yAxis->setNumberPrecision(0);
    yAxis->grid()->setSubGridVisible(false);
    xAxis->grid()->setVisible(false);
    yAxis2->setVisible(true);
    yAxis2->setLabel(tr("cumulative energy (%)"));
    yAxis2->setRange(0.0, 100.0);
    yAxis2->setLabelColor(kEnergyColor.darker(130));
    yAxis2->setTickLabelColor(kEnergyColor.darker(130));

    placeLegendInRow(this, 1);

    // Zoom and pan along the index only: the interesting part of a spectrum is often its head.
    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    axisRect()->setRangeDrag(Qt::Horizontal);
    axisRect()->setRangeZoom(Qt::Horizontal);
    connect(this, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) { pressPos_ = e->pos(); });
    connect(this, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton || sigma_.empty() || (e->pos() - pressPos_).manhattanLength() > 3
            || !axisRect()->rect().contains(e->pos()))
            return;
        setRank(std::llround(xAxis->pixelToCoord(e->pos().x())));
        emit rankPicked(rank_);
    });
    installExportMenu(this);
    clearPlot();
}

void SpectrumPlot::clearPlot()
{
    sigma_.clear();
    cumEnergy_.assign(1, 0.0);
    rank_ = 0;
    rebuild();
}

void SpectrumPlot::showSpectrum(std::span<const double> singularValues, int64_t rank)
{
    sigma_.assign(singularValues.begin(), singularValues.end());
    std::sort(sigma_.begin(), sigma_.end(), std::greater<>());
    // Summed from the small end up: the tail's share stays exact next to a large σ₁.
    cumEnergy_.assign(sigma_.size() + 1, 0.0);
    double tail = 0.0;
    std::vector<double> tailSums(sigma_.size() + 1, 0.0);
    for (size_t i = sigma_.size(); i-- > 0;) {
        tail += sigma_[i] * sigma_[i];
        tailSums[i] = tail;
    }
    for (size_t i = 0; i <= sigma_.size(); ++i)
        cumEnergy_[i] = tail > 0.0 ? 1.0 - tailSums[i] / tail : 0.0;
    rank_ = std::clamp<int64_t>(rank, 0, size());
    rebuild();
}

void SpectrumPlot::showSpectrum(std::span<const float> singularValues, int64_t rank)
{
    const std::vector<double> values(singularValues.begin(), singularValues.end());
    showSpectrum(std::span<const double>(values), rank);
}

void SpectrumPlot::setRank(int64_t rank)
{
    rank_ = std::clamp<int64_t>(rank, 0, size());
    rebuildRank();
    replot();
}

double SpectrumPlot::energyShare(const std::vector<double>& descending, int64_t rank)
{
    double kept = 0.0, total = 0.0;
    for (size_t i = 0; i < descending.size(); ++i) {
        const double e = descending[i] * descending[i];
        total += e;
        if (static_cast<int64_t>(i) < rank)
            kept += e;
    }
    return total > 0.0 ? kept / total : 0.0;
}

double SpectrumPlot::keptEnergy() const
{
    return cumEnergy_[static_cast<size_t>(rank_)];
}

QString SpectrumPlot::energyText() const
{
    if (sigma_.empty())
        return tr("No spectrum");
    // One decimal, but never "100.0 %" while something is dropped.
    double pct = 100.0 * keptEnergy();
    if (rank_ < size() && pct > 99.95)
        pct = 99.9;
    return tr("rank %1 keeps %2 % of the energy").arg(rank_).arg(pct, 0, 'f', 1);
}

double SpectrumPlot::rankLineX() const
{
    return static_cast<double>(rank_) + 0.5;
}

void SpectrumPlot::rebuild()
{
    const bool show = !sigma_.empty();
    message_->setVisible(!show);
    cumulative_->data()->clear();
    if (!show) {
        kept_->data()->clear();
        dropped_->data()->clear();
        rankLine_->setVisible(false);
        rankLabel_->setVisible(false);
        legend->setVisible(false);
        title_->setText(tr("Singular values"));
        xAxis->setRange(0.5, 10.5);
        yAxis->setRange(0.1, 10.0);
        replot();
        return;
    }
    QVector<double> keys, energy;
    double lo = 0.0;
    for (size_t i = 0; i < sigma_.size(); ++i) {
        keys << static_cast<double>(i + 1);
        energy << 100.0 * cumEnergy_[i + 1];
        if (sigma_[i] > 0.0)
            lo = sigma_[i];
    }
    cumulative_->setData(keys, energy, true);
    legend->setVisible(true);
    fitLegendInRow(this);
    xAxis->setRange(0.5, static_cast<double>(sigma_.size()) + 0.5);
    // Zero singular values (exactly rank-deficient matrices) have no place on a log axis.
    const double hi = std::max(sigma_.front(), 1e-30);
    lo = lo > 0.0 ? lo : hi;
    yAxis->setRange(lo / 2.0, hi * 2.0);
    rebuildRank();
    replot();
}

void SpectrumPlot::rebuildRank()
{
    kept_->data()->clear();
    dropped_->data()->clear();
    const bool show = !sigma_.empty();
    rankLine_->setVisible(show);
    rankLabel_->setVisible(show);
    title_->setText(show ? tr("Singular values: %1").arg(energyText()) : tr("Singular values"));
    if (!show)
        return;
    QVector<double> keptKeys, keptVals, dropKeys, dropVals;
    for (size_t i = 0; i < sigma_.size(); ++i) {
        if (!(sigma_[i] > 0.0))
            continue;
        const double key = static_cast<double>(i + 1);
        // The dropped line starts at the last kept value so that the two join.
        if (static_cast<int64_t>(i) < rank_) {
            keptKeys << key;
            keptVals << sigma_[i];
        }
        if (static_cast<int64_t>(i) >= rank_ - 1) {
            dropKeys << key;
            dropVals << sigma_[i];
        }
    }
    kept_->setData(keptKeys, keptVals, true);
    dropped_->setData(dropKeys, dropVals, true);
    const double x = rankLineX();
    rankLine_->point1->setCoords(x, 0.0);
    rankLine_->point2->setCoords(x, 1.0);
    rankLabel_->position->setCoords(x, 0.0);
    rankLabel_->setText(tr("r = %1").arg(rank_));
    // Near the right end the label goes on the line's left so that it stays inside.
    const bool right = x < xAxis->range().lower + 0.8 * xAxis->range().size();
    rankLabel_->setPositionAlignment((right ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignTop);
}

} // namespace ll::gui
