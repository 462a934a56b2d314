#include "compare_panel.h"

#include "eval_text.h"
#include "export_dialog.h"
#include "format.h"
#include "job_failure.h"
#include "job_runner.h"
#include "model_document.h"
#include "perplexity_panel.h"
#include "recipe_panel.h"

#include "stats/rank_correlation.h"

#include "analysis/model_cost.h"
#include "analysis/model_size.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <qcustomplot.h>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTextDocument>
#include <QTabWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace ll::gui {

namespace {
constexpr double kClickReachPx = 12;

QString recipeLabel(const Recipe& r)
{
    if (r.steps.empty())
        return QObject::tr("original");
    QStringList parts;
    for (const RecipeStep& s : r.steps) {
        QString on;
        if (s.layers.size() > 32) // a plan's list of exact names (exactNamesPattern): its count, not the regex
            on = QObject::tr(" on %1 layers").arg(std::count(s.layers.begin(), s.layers.end(), '|') + 1);
        else if (!s.layers.empty())
            on = QStringLiteral(" on ") + QString::fromStdString(s.layers);
        parts << QString::fromStdString(s.badge()) + on;
    }
    return parts.join(QStringLiteral(" + "));
}
} // namespace

ComparePanel::ComparePanel(ModelDocument* document, PerplexityPanel* perplexity, RecipePanel* recipes, QWidget* parent)
    : QWidget(parent), document_(document), perplexity_(perplexity), recipes_(recipes)
{
    table_ = new QTableWidget(0, 7, this);
    table_->setHorizontalHeaderLabels(
        {tr("Configuration"), tr("Perplexity"), tr("Bits/w"), tr("Size"), tr("Parameters"), tr("Text"), tr("Tasks")});
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    table_->verticalHeader()->hide();
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setToolTip(tr("Double-click a row to restore its recipe"));
    connect(table_, &QTableWidget::cellDoubleClicked, this, [this](int row, int) { restore(row); });

    plot_ = new QCustomPlot(this);
    plot_->xAxis->setLabel(tr("size (MiB)"));
    plot_->yAxis->setLabel(tr("perplexity"));
    plot_->setToolTip(tr("Click a point to restore its recipe"));
    plot_->setMinimumHeight(160);
    plot_->setMinimumWidth(340); // readable ticks beside a wide table
    plot_->xAxis->ticker()->setTickCount(4);
    connect(plot_, &QCustomPlot::mousePress, this, &ComparePanel::onPlotClick);

    // Does perplexity rank the configurations as the tasks do? (issue 17: perplexity as a proxy)
    proxyPlot_ = new QCustomPlot(this);
    proxyPlot_->setObjectName(QStringLiteral("compareProxyPlot"));
    proxyPlot_->xAxis->setLabel(tr("perplexity (log)"));
    proxyPlot_->yAxis->setLabel(tr("task metric"));
    proxyPlot_->xAxis->setScaleType(QCPAxis::stLogarithmic);
    proxyPlot_->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
    proxyPlot_->setMinimumHeight(160);
    proxyPlot_->setMinimumWidth(300);
    proxyPlot_->legend->setVisible(true);
    proxyPlot_->setToolTip(tr("Each configuration that has a perplexity here and task results from Evaluate › Tasks"));
    proxyLabel_ = new QLabel(this);
    proxyLabel_->setObjectName(QStringLiteral("compareProxySummary"));
    proxyLabel_->setWordWrap(true);
    proxyLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    runner_ = new JobRunner(this);
    compareButton_ = new QPushButton(tr("Compare with the original"), this);
    compareButton_->setToolTip(tr("Perplexity of both, KL divergence and top-1 agreement on the Evaluate text, "
                                  "size, compression ratio and FLOPs per token"));
    connect(compareButton_, &QPushButton::clicked, this, &ComparePanel::compareWithOriginal);
    comparison_ = new QLabel(this);
    comparison_->setWordWrap(true);
    comparison_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* clearButton = new QPushButton(tr("Clear"), this);
    connect(clearButton, &QPushButton::clicked, this, &ComparePanel::clear);
    auto* hint = new QLabel(tr("Every evaluation lands here. Click a point to go back to that configuration."), this);
    hint->setWordWrap(true);
    auto* top = new QHBoxLayout;
    top->addWidget(hint, 1);
    top->addWidget(compareButton_);
    top->addWidget(clearButton);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(table_);
    // The two scatters as tabs: the table keeps its width.
    auto* plots = new QTabWidget(this);
    plots->setObjectName(QStringLiteral("comparePlots"));
    plots->setDocumentMode(true);
    plots->addTab(plot_, tr("Size and perplexity"));
    plots->addTab(proxyPlot_, tr("Tasks against perplexity"));
    split->addWidget(plots);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 6);
    layout->addLayout(top);
    layout->addWidget(comparison_);
    layout->addWidget(split, 1);
    layout->addWidget(proxyLabel_);

    // Only finished runs: a cancelled or failed one leaves an older result on screen.
    connect(perplexity_, &PerplexityPanel::finished, this, [this] {
        if (perplexity_->state() == PerplexityPanel::State::Done)
            addCurrent();
    });
    connect(document_, &ModelDocument::modelChanged, this, &ComparePanel::clear);
    connect(document_, &ModelDocument::modelAboutToChange, runner_, &JobRunner::abandon);
    connect(document_, &ModelDocument::modelChanged, comparison_, &QLabel::clear);
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        if (!comparison_->text().isEmpty())
            comparison_->setText(tr("<i>The model changed: compare again.</i>"));
    });
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
    // One size model (analysis/model_size.h): what the tree, the status bar and "Compare with the original" show.
    const ModelSize size = modelSize(st);
    e.parameters = size.parameters;
    e.sizeMiB = static_cast<double>(size.bytes) / (1024.0 * 1024.0);
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

void ComparePanel::setEntries(std::vector<Entry> entries)
{
    entries_ = std::move(entries);
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
    taskResults_.clear();
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
        table_->setItem(row, 6, new QTableWidgetItem());
        table_->item(row, 0)->setToolTip(e.label);
        table_->item(row, 5)->setToolTip(e.text);
        xs << e.sizeMiB;
        ys << e.ppl;
    }
    plot_->clearGraphs();
    QCPGraph* g = plot_->addGraph();
    g->setLineStyle(QCPGraph::lsNone);
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(0x1f, 0x77, 0xb4), 9));
    // The original model, the baseline every configuration is read against: its own marker.
    QVector<double> originalX, originalY, otherX, otherY;
    for (size_t i = 0; i < entries_.size(); ++i) {
        const bool original = entries_[i].recipe.steps.empty();
        (original ? originalX : otherX) << xs[static_cast<int>(i)];
        (original ? originalY : otherY) << ys[static_cast<int>(i)];
    }
    g->setData(otherX, otherY);
    g->setName(tr("compressed"));
    QCPGraph* base = plot_->addGraph();
    base->setLineStyle(QCPGraph::lsNone);
    base->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, QPen(QColor(0x33, 0x33, 0x33), 2), QColor(0xdd, 0xdd, 0xdd), 12));
    base->setData(originalX, originalY);
    base->setName(tr("original"));
    plot_->legend->setVisible(!originalX.isEmpty() && !otherX.isEmpty());
    if (!entries_.empty()) {
        bool found = false;
        plot_->xAxis->setRange(g->getKeyRange(found).expanded(base->getKeyRange(found)));
        plot_->yAxis->setRange(g->getValueRange(found).expanded(base->getValueRange(found)));
        if (otherX.isEmpty() || originalX.isEmpty()) { // one graph empty: its empty range must not count
            const QCPGraph* only = otherX.isEmpty() ? base : g;
            plot_->xAxis->setRange(only->getKeyRange(found));
            plot_->yAxis->setRange(only->getValueRange(found));
        }
        const auto pad = [](QCPAxis* a) {
            const double span = std::max(a->range().size(), std::abs(a->range().center()) * 0.1 + 1e-9);
            a->setRange(a->range().lower - span * 0.15, a->range().upper + span * 0.15);
        };
        pad(plot_->xAxis);
        pad(plot_->yAxis);
        // Sizes and perplexities are positive: the axes do not run below zero.
        plot_->xAxis->setRangeLower(std::max(0.0, plot_->xAxis->range().lower));
        plot_->yAxis->setRangeLower(std::max(0.0, plot_->yAxis->range().lower));
    }
    plot_->replot();
    refreshProxy();
    emit entriesChanged();
}

namespace {

std::string recipeKey(const std::vector<RecipeStep>& steps)
{
    Recipe r;
    r.steps = steps;
    return r.toJson().value("steps", nlohmann::json::array()).dump();
}

QString rankText(const RankCorrelation& r)
{
    return QStringLiteral("%1 [%2, %3]").arg(r.value, 0, 'f', 2).arg(r.low, 0, 'f', 2).arg(r.high, 0, 'f', 2);
}

} // namespace

void ComparePanel::addTaskResults(const std::vector<RecipeStep>& steps, const std::vector<TaskResult>& results)
{
    auto& metrics = taskResults_[recipeKey(steps)];
    for (const TaskResult& r : results)
        if (!r.metrics.empty())
            metrics[r.task + " (" + r.metrics[0].name + ")"] = r.metrics[0].value;
    refresh();
}

void ComparePanel::refreshProxy()
{
    for (Entry& e : entries_)
        if (const auto it = taskResults_.find(recipeKey(e.recipe.steps)); it != taskResults_.end())
            for (const auto& [task, value] : it->second)
                e.tasks[task] = value;
    for (size_t i = 0; i < entries_.size() && static_cast<int>(i) < table_->rowCount(); ++i) {
        QStringList cells;
        for (const auto& [task, value] : entries_[i].tasks)
            cells << QStringLiteral("%1 %2").arg(QString::fromStdString(task)).arg(value, 0, 'f', 3);
        if (QTableWidgetItem* item = table_->item(static_cast<int>(i), 6))
            item->setText(cells.join(QStringLiteral("; ")));
    }
    std::map<std::string, std::pair<QVector<double>, QVector<double>>> series;
    for (const Entry& e : entries_)
        for (const auto& [task, value] : e.tasks)
            if (e.ppl > 0) {
                series[task].first << e.ppl;
                series[task].second << value;
            }
    proxyPlot_->clearGraphs();
    static const QColor colours[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xd6, 0x27, 0x28), QColor(0x2c, 0xa0, 0x2c),
                                     QColor(0x94, 0x67, 0xbd), QColor(0xff, 0x7f, 0x0e), QColor(0x8c, 0x56, 0x4b)};
    QStringList lines;
    int k = 0;
    for (const auto& [task, xy] : series) {
        QCPGraph* g = proxyPlot_->addGraph();
        g->setLineStyle(QCPGraph::lsNone);
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, colours[k++ % 6], 8));
        g->setData(xy.first, xy.second);
        g->setName(QString::fromStdString(task));
        if (xy.first.size() >= 3) {
            const std::vector<double> x(xy.first.begin(), xy.first.end()), y(xy.second.begin(), xy.second.end());
            lines << tr("%1 against perplexity: Spearman %2, Kendall %3 over %n configurations (95 % intervals)", nullptr,
                        static_cast<int>(x.size()))
                         .arg(QString::fromStdString(task), rankText(spearman(x, y)), rankText(kendallTau(x, y)));
        }
    }
    if (!series.empty()) {
        double xl = 1e300, xh = 0, yh = 0;
        for (const auto& [task, xy] : series) {
            for (const double v : xy.first)
                xl = std::min(xl, v), xh = std::max(xh, v);
            for (const double v : xy.second)
                yh = std::max(yh, v);
        }
        proxyPlot_->xAxis->setRange(xl / 1.5, xh * 1.5);
        // Accuracies and rates live in [0, 1]; other metrics (LAMBADA's perplexity) get their own span.
        proxyPlot_->yAxis->setRange(0, yh <= 1.0 ? 1.05 : yh * 1.1);
    }
    proxyPlot_->replot();
    proxyLabel_->setText(series.empty() ? tr("Run Evaluate › Tasks on several configurations to see whether perplexity ranks them as "
                                             "the tasks do.")
                                        : lines.isEmpty() ? tr("Rank correlations from 3 configurations with both a perplexity and task results.")
                                                          : lines.join(QLatin1Char('\n')));
}

QString ComparePanel::proxySummary() const
{
    const QString t = proxyLabel_->text();
    return t.contains(QStringLiteral("Spearman")) ? t : QString();
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

ComparePanel::~ComparePanel()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's signals must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

void ComparePanel::cancel()
{
    runner_->cancel();
}

bool ComparePanel::isBusy() const
{
    return runner_->isRunning();
}

QString ComparePanel::comparison() const
{
    QTextDocument doc;
    doc.setHtml(comparison_->text());
    return doc.toPlainText();
}

ScoringOptions ComparePanel::comparisonWindows(const Model& source, int64_t tokens, const QString& textName)
{
    ScoringOptions opt;
    const int64_t maxCtx = source.config.maxPositions > 1 ? source.config.maxPositions : 256;
    opt.context = std::min<int64_t>(256, maxCtx);
    opt.maxWindows = kCompareWindows;
    if (tokens < opt.context)
        fail(ErrorCode::InvalidArgument, textName.toStdString(), "the text is shorter than one window");
    return opt;
}

void ComparePanel::compareWithOriginal()
{
    if (!document_->hasModel() || runner_->isRunning())
        return;
    const CompressionState state = document_->state();
    const TextSource text = perplexity_->textSource();
    compareButton_->setEnabled(false);
    comparison_->setText(tr("Comparing with the original on %1…").arg(text.displayName().toHtmlEscaped()));
    runner_->start([this, state, text](JobContext& job) {
        try {
            const std::vector<int32_t> tokens = loadTokenizer(*state.source)->encode(loadText(text), true);
            const ScoringOptions opt = comparisonWindows(*state.source, static_cast<int64_t>(tokens.size()), text.displayName());
            job.stage(0.0, 0.1, tr("building the engines"));
            const Transformer base(*state.source, &job);
            const auto current = state.makeEngine(&job);
            job.stage(0.1, 0.9, tr("scoring both models"));
            const ComparisonResult r = compareModels(base, *current, tokens, opt, &job);
            const ModelCost cost = estimateCost(state, opt.context);
            // The file File › Export would write by default, to the byte (export/gguf_export.h).
            std::optional<std::pair<GgufPreset, uint64_t>> gguf;
            try {
                GgufExportOptions g;
                g.preset = suggestedGgufPreset(state);
                gguf = {{*g.preset, estimateGgufExport(*state.model, g).totalBytes}};
            } catch (const Error&) {
                // a family GGUF cannot hold: no such row
            }
            const QString name = text.displayName().toHtmlEscaped();
            job.post([this, r, cost, gguf, name, ctx = opt.context] {
                compareButton_->setEnabled(true);
                const auto row = [](const QString& what, const QString& value) {
                    return QStringLiteral("<tr><td>%1</td><td align='right'>&nbsp;&nbsp;%2</td></tr>").arg(what, value);
                };
                QString html = QStringLiteral("<table>");
                html += row(tr("Perplexity"), tr("%1 → <b>%2</b>").arg(std::exp(r.nllReference), 0, 'f', 4).arg(std::exp(r.nllCandidate), 0, 'f', 4));
                html += row(tr("KL(original ‖ current)"), tr("%1 nats per token (max %2)").arg(r.klMean, 0, 'g', 4).arg(r.klMax, 0, 'g', 4));
                html += row(tr("Top-1 agreement"), QStringLiteral("%1 %").arg(100.0 * r.top1Agreement, 0, 'f', 2));
                html += row(tr("Size"), tr("%1 → <b>%2</b> (×%3 smaller)")
                                                      .arg(formatBytes(static_cast<uint64_t>(cost.sourceBytes)),
                                                           formatBytes(static_cast<uint64_t>(cost.bytes)))
                                                      .arg(cost.compressionRatio, 0, 'f', 2));
                if (gguf)
                    html += row(tr("As a GGUF file"), tr("%1 (%2, as File › Export writes it)")
                                                          .arg(formatBytes(gguf->second), QString::fromLatin1(ggufPresetInfo(gguf->first).name)));
                html += row(tr("Bits per weight (block linears)"), QString::number(cost.bitsPerWeight, 'f', 3));
                html += row(tr("Parameters"), formatExact(cost.parameters));
                html += row(tr("FLOPs per token"), tr("%1 → %2 (context %3)")
                                                     .arg(formatCount(static_cast<int64_t>(cost.denseFlopsPerToken)),
                                                          formatCount(static_cast<int64_t>(cost.flopsPerToken)))
                                                     .arg(ctx));
                html += QStringLiteral("</table><small>%1 tokens of %2</small>").arg(r.tokensScored).arg(name);
                comparison_->setText(html);
                emit comparisonReady(true);
            });
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory for the comparison."));
            const bool cancelled = f.cancelled || job.cancelled();
            const QString msg = cancelled ? tr("Comparison cancelled.") : f.message.toHtmlEscaped();
            job.post([this, msg] {
                compareButton_->setEnabled(true);
                comparison_->setText(msg);
                emit comparisonReady(false);
            });
        }
    });
}

} // namespace ll::gui
