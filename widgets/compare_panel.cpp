#include "compare_panel.h"

#include "model_document.h"
#include "perplexity_panel.h"
#include "recipe_panel.h"

#include <qcustomplot.h>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>

namespace ll::gui {

namespace {
constexpr double kClickReachPx = 12;

QString recipeLabel(const Recipe& r)
{
    if (r.steps.empty())
        return QObject::tr("original");
    QStringList parts;
    for (const RecipeStep& s : r.steps)
        parts << QString::fromStdString(s.badge()) + (s.layers.empty() ? QString() : QStringLiteral(" on ") + QString::fromStdString(s.layers));
    return parts.join(QStringLiteral(" + "));
}
} // namespace

ComparePanel::ComparePanel(ModelDocument* document, PerplexityPanel* perplexity, RecipePanel* recipes, QWidget* parent)
    : QWidget(parent), document_(document), perplexity_(perplexity), recipes_(recipes)
{
    table_ = new QTableWidget(0, 6, this);
    table_->setHorizontalHeaderLabels(
        {tr("Configuration"), tr("Perplexity"), tr("Bits/w"), tr("≈ Size"), tr("Parameters"), tr("Text")});
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    table_->verticalHeader()->hide();
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setToolTip(tr("Double-click a row to restore its recipe"));
    connect(table_, &QTableWidget::cellDoubleClicked, this, [this](int row, int) { restore(row); });

    plot_ = new QCustomPlot(this);
    plot_->xAxis->setLabel(tr("estimated size (MiB)"));
    plot_->yAxis->setLabel(tr("perplexity"));
    plot_->setToolTip(tr("Click a point to restore its recipe"));
    plot_->setMinimumHeight(160);
    plot_->setMinimumWidth(340); // readable ticks beside a wide table
    plot_->xAxis->ticker()->setTickCount(4);
    connect(plot_, &QCustomPlot::mousePress, this, &ComparePanel::onPlotClick);

    auto* clearButton = new QPushButton(tr("Clear"), this);
    connect(clearButton, &QPushButton::clicked, this, &ComparePanel::clear);
    auto* hint = new QLabel(tr("Every evaluation lands here. Click a point to go back to that configuration."), this);
    hint->setWordWrap(true);
    auto* top = new QHBoxLayout;
    top->addWidget(hint, 1);
    top->addWidget(clearButton);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(table_);
    split->addWidget(plot_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 6);
    layout->addLayout(top);
    layout->addWidget(split, 1);

    // Only finished runs: a cancelled or failed one leaves an older result on screen.
    connect(perplexity_, &PerplexityPanel::finished, this, [this] {
        if (perplexity_->state() == PerplexityPanel::State::Done)
            addCurrent();
    });
    connect(document_, &ModelDocument::modelChanged, this, &ComparePanel::clear);
    refresh();
}

void ComparePanel::addCurrent()
{
    const auto& shown = perplexity_->shownResult();
    if (!shown || !document_->hasModel())
        return;
    const CompressionState& st = document_->state();
    Entry e;
    e.recipe = st.recipe();
    e.label = recipeLabel(e.recipe);
    e.ppl = shown->result.ppl;
    e.pplStderr = shown->result.pplStderr;
    e.bitsPerWeight = st.linearBitsPerWeight();
    e.parameters = st.model->parameterCount();
    e.sizeMiB = double(e.parameters) * e.bitsPerWeight / 8.0 / (1024.0 * 1024.0);
    e.context = shown->options.context;
    e.text = shown->text.displayName();
    // The same configuration on the same text: the newest run counts.
    std::erase_if(entries_, [&e](const Entry& o) {
        return o.recipe.steps == e.recipe.steps && o.recipe.calibration == e.recipe.calibration && o.text == e.text
               && o.context == e.context;
    });
    entries_.push_back(std::move(e));
    refresh();
}

void ComparePanel::restore(int index)
{
    if (index < 0 || index >= static_cast<int>(entries_.size()) || recipes_->isBusy())
        return;
    recipes_->replay(entries_[static_cast<size_t>(index)].recipe,
                     tr("Restore configuration %1").arg(entries_[static_cast<size_t>(index)].label));
}

void ComparePanel::clear()
{
    entries_.clear();
    refresh();
}

void ComparePanel::refresh()
{
    table_->setRowCount(static_cast<int>(entries_.size()));
    QVector<double> xs, ys;
    for (size_t i = 0; i < entries_.size(); ++i) {
        const Entry& e = entries_[i];
        const int row = static_cast<int>(i);
        const QStringList cells{e.label,
                                QStringLiteral("%1 ± %2").arg(e.ppl, 0, 'f', 3).arg(e.pplStderr, 0, 'f', 3),
                                QString::number(e.bitsPerWeight, 'f', 2),
                                QStringLiteral("%1 MiB").arg(e.sizeMiB, 0, 'f', 2),
                                QString::number(e.parameters),
                                tr("ctx %1").arg(e.context)};
        for (int c = 0; c < cells.size(); ++c)
            table_->setItem(row, c, new QTableWidgetItem(cells[c]));
        table_->item(row, 0)->setToolTip(e.label);
        table_->item(row, 5)->setToolTip(e.text);
        xs << e.sizeMiB;
        ys << e.ppl;
    }
    plot_->clearGraphs();
    QCPGraph* g = plot_->addGraph();
    g->setLineStyle(QCPGraph::lsNone);
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(0x1f, 0x77, 0xb4), 9));
    g->setData(xs, ys);
    if (!entries_.empty()) {
        g->rescaleAxes();
        const auto pad = [](QCPAxis* a) {
            const double span = std::max(a->range().size(), std::abs(a->range().center()) * 0.1 + 1e-9);
            a->setRange(a->range().lower - span * 0.15, a->range().upper + span * 0.15);
        };
        pad(plot_->xAxis);
        pad(plot_->yAxis);
    }
    plot_->replot();
    emit entriesChanged();
}

int ComparePanel::pointAt(const QPoint& pos) const
{
    int best = -1;
    double bestDist = kClickReachPx;
    for (size_t i = 0; i < entries_.size(); ++i) {
        const double dx = plot_->xAxis->coordToPixel(entries_[i].sizeMiB) - pos.x();
        const double dy = plot_->yAxis->coordToPixel(entries_[i].ppl) - pos.y();
        const double d = std::hypot(dx, dy);
        if (d <= bestDist) {
            bestDist = d;
            best = static_cast<int>(i);
        }
    }
    return best;
}

void ComparePanel::onPlotClick(QMouseEvent* event)
{
    const int index = pointAt(event->pos());
    if (index >= 0) {
        table_->selectRow(index);
        restore(index);
    }
}

} // namespace ll::gui
