#include "tensor_inspector.h"

#include "format.h"
#include "histogram_plot.h"
#include "job_progress.h"
#include "model_document.h"
#include "weight_map_plot.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableWidget>
#include <QShowEvent>
#include <QVBoxLayout>

#include <algorithm>

namespace ll::gui {

namespace {
// Rows of the statistics table: key (for tests and code), label, explanation.
struct StatRow {
    const char* key;
    const char* label;
    const char* tip;
};
const StatRow kRows[] = {
    {"count", "Values", "Finite values in the tensor"},
    {"nonfinite", "NaN / Inf", "Values that are not finite; every other number leaves them out"},
    {"min", "Min", "Smallest value"},
    {"max", "Max", "Largest value"},
    {"mean", "Mean", "Arithmetic mean μ"},
    {"std", "Std σ", "Standard deviation (population)"},
    {"kurtosis", "Kurtosis", "Pearson kurtosis E[(x−μ)⁴]/σ⁴: 3 for a Gaussian, larger for heavy tails"},
    {"absmax_over_std", "|x|max / σ", "Largest magnitude in units of σ: how far the range a quantizer must cover reaches"},
    {"outliers", "Outliers", "Values with |x − μ| > k·σ"},
    {"outlier_share", "Outlier share", "Outliers as a share of all values"},
    {"zeros", "Zeros", "Values exactly 0"},
    {"zero_share", "Zero share", "Zeros as a share of all values (sparsity)"},
};
constexpr int kRowCount = static_cast<int>(sizeof kRows / sizeof kRows[0]);

int rowOf(const QString& key)
{
    for (int i = 0; i < kRowCount; ++i)
        if (key == QLatin1String(kRows[i].key))
            return i;
    return -1;
}
} // namespace

TensorInspector::TensorInspector(ModelDocument* document, QWidget* parent)
    : QWidget(parent), document_(document), job_(new StatsJob(this))
{
    title_ = new QLabel(this);
    title_->setObjectName(QStringLiteral("inspectorTitle"));
    QFont titleFont = title_->font();
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.25);
    titleFont.setBold(true);
    title_->setFont(titleFont);
    title_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    subtitle_ = new QLabel(this);
    subtitle_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    // Secondary text: between the text and the background colour, in any theme.
    QPalette subtle = subtitle_->palette();
    const QColor text = subtle.color(QPalette::WindowText), back = subtle.color(QPalette::Window);
    subtle.setColor(QPalette::WindowText, QColor((2 * text.red() + back.red()) / 3, (2 * text.green() + back.green()) / 3,
                                                 (2 * text.blue() + back.blue()) / 3));
    subtitle_->setPalette(subtle);
    subtitle_->setWordWrap(true);

    sigmaBox_ = new QDoubleSpinBox(this);
    sigmaBox_->setRange(0.5, 50.0);
    sigmaBox_->setSingleStep(0.5);
    sigmaBox_->setDecimals(1);
    sigmaBox_->setValue(3.0);
    sigmaBox_->setSuffix(QStringLiteral(" σ"));
    sigmaBox_->setToolTip(tr("k: values with |x − μ| > k·σ count as outliers"));
    binsBox_ = new QSpinBox(this);
    binsBox_->setRange(4, 4096);
    binsBox_->setValue(128);
    binsBox_->setToolTip(tr("Number of histogram bins between min and max"));
    logYBox_ = new QCheckBox(tr("Log count"), this);
    logYBox_->setToolTip(tr("Logarithmic count axis: makes the few values in the tails visible"));

    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    progress_->setTextVisible(true);
    stateLabel_ = new QLabel(this);
    stateLabel_->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
    stateStack_ = new QStackedWidget(this);
    stateStack_->addWidget(stateLabel_);
    stateStack_->addWidget(progress_);
    stateStack_->setFixedWidth(fontMetrics().horizontalAdvance(QStringLiteral("statistics 100 %")) + 60);
    stateStack_->setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Preferred);

    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Outliers beyond"), this));
    controls->addWidget(sigmaBox_);
    controls->addSpacing(12);
    controls->addWidget(new QLabel(tr("Bins"), this));
    controls->addWidget(binsBox_);
    controls->addSpacing(12);
    controls->addWidget(logYBox_);
    controls->addStretch(1);
    controls->addWidget(stateStack_);

    table_ = new QTableWidget(kRowCount, 2, this);
    table_->setObjectName(QStringLiteral("statsTable"));
    table_->setHorizontalHeaderLabels({tr("Statistic"), tr("Value")});
    table_->verticalHeader()->setVisible(false);
    table_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    table_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
    table_->horizontalHeader()->setDefaultAlignment(Qt::AlignLeft | Qt::AlignVCenter);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setAlternatingRowColors(true);
    table_->setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    table_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    for (int r = 0; r < kRowCount; ++r) {
        auto* label = new QTableWidgetItem(tr(kRows[r].label));
        label->setToolTip(tr(kRows[r].tip));
        label->setData(Qt::UserRole, QString::fromLatin1(kRows[r].key));
        auto* value = new QTableWidgetItem;
        value->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        value->setToolTip(tr(kRows[r].tip));
        table_->setItem(r, 0, label);
        table_->setItem(r, 1, value);
    }
    const int tableWidth = fontMetrics().horizontalAdvance(QStringLiteral("|x|max / σ  Outlier share  -0.000123456 (99.99 %)"));
    table_->setMinimumWidth(tableWidth * 3 / 4);
    // Four rows at least: with the plots at their minimum, the window still fits 1280×720 at 150 % zoom.
    table_->setMinimumHeight(table_->verticalHeader()->defaultSectionSize() * 4);

    histogram_ = new HistogramPlot(this);
    weightMap_ = new WeightMapPlot(this);

    auto* top = new QSplitter(Qt::Horizontal, this);
    top_ = top;
    top->addWidget(table_);
    top->addWidget(histogram_);
    top->setStretchFactor(0, 0);
    top->setStretchFactor(1, 1);
    top->setSizes({tableWidth, 3 * tableWidth});
    top->setChildrenCollapsible(false);
    split_ = new QSplitter(Qt::Vertical, this);
    auto* split = split_;
    split->addWidget(top);
    split->addWidget(weightMap_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    split->setChildrenCollapsible(false);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addWidget(title_);
    layout->addWidget(subtitle_);
    layout->addLayout(controls);
    layout->addWidget(split, 1);

    connect(document_, &ModelDocument::modelAboutToChange, this, [this] {
        job_->cancel();
        clearResults(QString());
    });
    connect(document_, &ModelDocument::currentTensorChanged, this, &TensorInspector::restart);
    connect(document_, &ModelDocument::modelEdited, this, &TensorInspector::restart); // new values, same tensor
    connect(sigmaBox_, &QDoubleSpinBox::valueChanged, this, &TensorInspector::restart);
    connect(binsBox_, &QSpinBox::valueChanged, this, &TensorInspector::restart);
    connect(logYBox_, &QCheckBox::toggled, histogram_, &HistogramPlot::setLogY);
    showJobProgress(job_, progress_);
    connect(job_, &StatsJob::finished, this, &TensorInspector::showResult);
    connect(job_, &StatsJob::runningChanged, this, [this](bool running) {
        stateStack_->setCurrentWidget(running ? static_cast<QWidget*>(progress_) : stateLabel_);
        emit busyChanged(running);
    });
    restart();
}

void TensorInspector::restart()
{
    updateHeader();
    stats_.reset();
    shownTensor_ = -1;
    const auto model = document_->model();
    const int tensor = document_->currentTensor();
    if (!model || tensor < 0) {
        job_->cancel();
        clearResults(model ? tr("Select a tensor in the model tree.") : tr("Open a model: File › Open, or drop it here."));
        return;
    }
    // Keep the previous numbers on screen, dimmed, until the new ones arrive.
    table_->setEnabled(false);
    progress_->setValue(0);
    progress_->setFormat(tr("starting"));
    TensorStatsRequest request;
    request.model = model;
    request.tensor = tensor;
    request.options.outlierSigma = sigmaBox_->value();
    request.options.bins = binsBox_->value();
    job_->start(std::move(request));
}

void TensorInspector::updateHeader()
{
    const auto model = document_->model();
    const LogicalTensor* t = document_->currentLogical();
    if (!model || !t) {
        title_->setText(model ? tr("No tensor selected") : tr("No model"));
        subtitle_->setText(QStringLiteral(" "));
        return;
    }
    const TensorRef& ref = model->storedOf(*t);
    title_->setText(QString::fromStdString(t->logicalName));
    QStringList parts;
    parts << tr("stored as %1").arg(QString::fromStdString(ref.name));
    parts << formatShape(t->shape);
    parts << QString::fromStdString(ref.dtypeLabel.empty() ? std::string(dtypeName(ref.dtype)) : ref.dtypeLabel);
    parts << tr("%1 parameters").arg(formatExact(t->elements()));
    if (t->tied)
        parts << tr("tied to the embedding");
    subtitle_->setText(parts.join(QStringLiteral("  ·  ")));
}

void TensorInspector::setStatistic(const QString& key, const QString& label, const QString& value, const QString& tip)
{
    const int row = rowOf(key);
    if (row < 0)
        return;
    if (!label.isEmpty())
        table_->item(row, 0)->setText(label);
    table_->item(row, 1)->setText(value);
    if (!tip.isEmpty())
        table_->item(row, 1)->setToolTip(tip);
}

void TensorInspector::clearResults(const QString& message)
{
    stats_.reset();
    shownTensor_ = -1;
    for (int r = 0; r < kRowCount; ++r)
        table_->item(r, 1)->setText(QString());
    table_->setEnabled(true);
    histogram_->clearPlot();
    weightMap_->showMessage(message);
    stateLabel_->setText(QString());
    stateLabel_->setStyleSheet(QString());
    if (!document_->currentLogical())
        updateHeader();
}

void TensorInspector::showResult(const TensorStatsResult& r)
{
    if (!document_->model() || r.tensor != document_->currentTensor())
        return; // stale: the selection moved on
    table_->setEnabled(true);
    if (!r.error.isEmpty()) {
        clearResults(r.error);
        stateLabel_->setText(tr("failed"));
        stateLabel_->setStyleSheet(QStringLiteral("color: #b3261e;"));
        stateLabel_->setToolTip(r.error);
        shownTensor_ = r.tensor;
        emit statsShown(r.tensor);
        return;
    }
    const TensorStats& s = r.stats;
    const QString k = QString::number(s.outlierSigma, 'g', 3);
    setStatistic(QStringLiteral("count"), {}, formatExact(s.count));
    setStatistic(QStringLiteral("nonfinite"), {}, formatExact(s.nans));
    setStatistic(QStringLiteral("min"), {}, formatValue(s.min));
    setStatistic(QStringLiteral("max"), {}, formatValue(s.max));
    setStatistic(QStringLiteral("mean"), {}, formatValue(s.mean));
    setStatistic(QStringLiteral("std"), {}, formatValue(s.std));
    setStatistic(QStringLiteral("kurtosis"), {}, formatValue(s.kurtosis));
    setStatistic(QStringLiteral("absmax_over_std"), {}, formatValue(s.absMaxOverStd));
    setStatistic(QStringLiteral("outliers"), tr("Outliers > %1σ").arg(k), formatExact(s.outliers));
    setStatistic(QStringLiteral("outlier_share"), {}, formatShare(s.outlierShare()));
    setStatistic(QStringLiteral("zeros"), {}, formatExact(s.zeros));
    setStatistic(QStringLiteral("zero_share"), {}, formatShare(s.zeroShare()));
    // Non-finite values are worth a warning colour; so are heavy tails.
    table_->item(rowOf(QStringLiteral("nonfinite")), 1)->setForeground(s.nans > 0 ? QColor(179, 38, 30) : palette().text().color());
    table_->item(rowOf(QStringLiteral("kurtosis")), 1)->setForeground(s.kurtosis > 6 ? QColor(179, 38, 30) : palette().text().color());

    histogram_->showStats(s);
    if (r.hasHeatmap)
        weightMap_->showHeatmap(r.heatmap, r.rows, r.cols);
    else if (!r.profile.empty())
        weightMap_->showProfile(r.profile);
    else
        weightMap_->showMessage(tr("No map for a tensor of this shape."));
    placeMap(weightMap_->showsSquareMatrix());

    stats_ = s;
    shownTensor_ = r.tensor;
    stateLabel_->setStyleSheet(QString());
    stateLabel_->setToolTip(QString());
    const double ms = r.seconds * 1000.0;
    stateLabel_->setText(ms < 0.1     ? tr("computed in < 0.1 ms")
                         : ms < 10.0  ? tr("computed in %1 ms").arg(ms, 0, 'f', 1)
                         : ms < 1000.0 ? tr("computed in %1 ms").arg(ms, 0, 'f', 0)
                                       : tr("computed in %1 s").arg(r.seconds, 0, 'f', 1));
    emit statsShown(r.tensor);
}

void TensorInspector::placeMap(bool beside)
{
    if (beside == (weightMap_->parentWidget() == top_))
        return;
    if (beside) {
        const QList<int> sizes = top_->sizes(); // table, histogram
        top_->addWidget(weightMap_);
        top_->setStretchFactor(2, 1);
        const int side = std::max(top_->height(), 120);
        top_->setSizes({sizes.value(0), std::max(sizes.value(1) - side, 160), side});
    } else {
        split_->addWidget(weightMap_);
        split_->setStretchFactor(1, 1);
        const int total = split_->height();
        split_->setSizes({total / 2, total - total / 2});
    }
}

void TensorInspector::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    // Once: the statistics row as tall as the table needs (at least half), the map below.
    if (!splitSized_ && height() > 0) {
        splitSized_ = true;
        const int tableHeight = table_->horizontalHeader()->sizeHint().height()
            + kRowCount * table_->verticalHeader()->defaultSectionSize() + 2 * table_->frameWidth();
        const int total = split_->height();
        const int top = std::min(std::max(tableHeight, total / 2), total * 2 / 3);
        split_->setSizes({top, total - top});
    }
}

QString TensorInspector::shownStatistic(const QString& key) const
{
    const int row = rowOf(key);
    return row < 0 ? QString() : table_->item(row, 1)->text();
}

std::vector<int64_t> TensorInspector::histogramCounts() const
{
    return histogram_->shownCounts();
}

std::vector<int> TensorInspector::outlierBins() const
{
    return histogram_->outlierBins();
}

QCustomPlot* TensorInspector::histogramPlot() const
{
    return histogram_;
}

QCustomPlot* TensorInspector::weightMapPlot() const
{
    return weightMap_;
}

QString TensorInspector::errorText() const
{
    return stateLabel_->toolTip();
}

} // namespace ll::gui
