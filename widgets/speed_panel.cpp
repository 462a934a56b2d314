#include "speed_panel.h"

#include "analysis/engine_cache.h"
#include "format.h"
#include "job_failure.h"
#include "job_progress.h"
#include "job_runner.h"
#include "model_document.h"
#include "panel_util.h"

#include "engine/transformer.h"
#include "util/threads.h"

#include <QFontMetrics>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

namespace ll::gui {

namespace {

enum Column { Measure, Original, Current, Change, Columns };

QString rate(const Throughput& t) { return QStringLiteral("%1 ± %2").arg(t.mean, 0, 'f', 2).arg(t.sd, 0, 'f', 2); }

// "1.52×", or "" where either side is missing or zero.
QString ratio(double current, double original)
{
    return original > 0 && current > 0 ? QStringLiteral("%1×").arg(current / original, 0, 'f', 2) : QString();
}

} // namespace

SpeedPanel::SpeedPanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent)
    : QWidget(parent), document_(document), engines_(std::move(engines)), runner_(new JobRunner(this))
{
    setObjectName(QStringLiteral("speedPanel"));
    const auto spin = [this](int lo, int hi, int value, const QString& tip) {
        auto* box = new QSpinBox(this);
        box->setRange(lo, hi);
        box->setValue(value);
        box->setToolTip(tip);
        return box;
    };
    const EfficiencyOptions defaults;
    promptBox_ = spin(0, 65536, static_cast<int>(defaults.prefillTokens), tr("pp: a prompt of this many tokens in one pass (0: skip)"));
    decodeBox_ = spin(0, 65536, static_cast<int>(defaults.decodeTokens), tr("tg: this many tokens, one at a time through the KV cache (0: skip)"));
    decodeAfterBox_ = spin(0, 65536, 0, tr("Tokens of prompt before decoding (0: from an empty context, as llama-bench's tg)"));
    repeatsBox_ = spin(1, 50, defaults.repeats, tr("Runs of each model, alternating original and current; mean ± sd"));
    runButton_ = new QPushButton(tr("Measure"), this);
    runButton_->setToolTip(tr("Measure the original and the current state, one run of each at a time"));
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    progress_ = makeSlimProgressBar(this);
    progressText_ = new QLabel(this);
    setSecondaryText(progressText_);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    flag_ = new QLabel(this);
    flag_->setWordWrap(true);
    flag_->setStyleSheet(QStringLiteral("color: #b03020; font-weight: bold;"));
    flag_->hide();

    table_ = new QTableWidget(Rows, Columns, this);
    table_->setHorizontalHeaderLabels({tr("Measure"), tr("Original"), tr("Current"), tr("Current / original")});
    table_->verticalHeader()->hide();
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setStretchLastSection(true);

    // One line of controls: the table below gets the height.
    auto* controls = new QHBoxLayout;
    for (const auto& [label, box] : {std::pair<QString, QSpinBox*>{tr("Prompt (pp)"), promptBox_}, {tr("Decode (tg)"), decodeBox_},
                                     {tr("after"), decodeAfterBox_}, {tr("Runs"), repeatsBox_}}) {
        controls->addWidget(new QLabel(label, this));
        box->setMinimumWidth(QFontMetrics(box->font()).horizontalAdvance(QStringLiteral("000000")) + 30);
        controls->addWidget(box);
        controls->addSpacing(6);
    }
    controls->addWidget(runButton_);
    controls->addWidget(cancelButton_);
    controls->addStretch(1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 8, 0, 0);
    layout->addLayout(controls);
    layout->addWidget(progress_);
    layout->addWidget(progressText_);
    layout->addWidget(status_);
    layout->addWidget(flag_);
    layout->addWidget(table_, 1);
    layout->addStretch(0); // takes the height while the table is hidden (the hint stays at the top)

    connect(runButton_, &QPushButton::clicked, this, &SpeedPanel::run);
    connect(cancelButton_, &QPushButton::clicked, this, &SpeedPanel::cancel);
    showJobProgress(runner_, progress_, progressText_);
    connect(runner_, &JobRunner::runningChanged, this, [this] { updateEnabled(); });
    connect(runner_, &JobRunner::finished, this, [this] {
        updateEnabled();
        emit finished();
    });
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] { runner_->abandon(); });
    // Before a measurement: what Measure does, no empty grid.
    const auto clear = [this] {
        shown_.reset();
        table_->clearContents();
        table_->hide();
        flag_->hide();
        setStatus(tr("Measure times the original model and, once a step is applied, the current state beside it."));
        updateEnabled();
    };
    connect(document_, &ModelDocument::modelChanged, this, clear);
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        if (shown_)
            showOutcome(*shown_); // marks a current column of another state
        updateEnabled();
    });
    clear();
}

SpeedPanel::~SpeedPanel()
{
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

bool SpeedPanel::isRunning() const { return runner_->isRunning(); }

QString SpeedPanel::statusText() const { return status_->text(); }

void SpeedPanel::setStatus(const QString& text) { status_->setText(text); }

void SpeedPanel::updateEnabled()
{
    const bool running = runner_->isRunning();
    runButton_->setEnabled(!running && document_->model() != nullptr);
    cancelButton_->setEnabled(running && !runner_->isCancelling());
    progress_->setVisible(running);
    progressText_->setVisible(running);
}

void SpeedPanel::run()
{
    const auto model = document_->model();
    if (!model) {
        setStatus(tr("No model is open."));
        return;
    }
    EfficiencyOptions options;
    options.prefillTokens = promptBox_->value();
    options.decodeTokens = decodeBox_->value();
    options.decodeAfter = decodeAfterBox_->value();
    options.repeats = repeatsBox_->value();
    const std::shared_ptr<const Model> source = document_->state().source ? document_->state().source : model;
    const std::vector<RecipeStep> steps = document_->state().steps;
    const bool edited = !steps.empty();
    setStatus(edited ? tr("Measuring the original and the current state, alternating…") : tr("Measuring…"));
    flag_->hide();
    progress_->setValue(0);
    const std::shared_ptr<EngineCache> engines = engines_;
    runner_->start([this, model, source, steps, edited, options, engines](JobContext& job) {
        SpeedOutcome out;
        out.options = options;
        out.steps = steps;
        out.model = source->path;
        out.threads = computeThreads(); // this job's share of the cores as it starts
        QString error;
        bool cancelled = false;
        try {
            job.stage(0.0, 0.05, tr("preparing"));
            // The engines of both first, so that the timed runs alternate.
            const std::shared_ptr<const Transformer> current = engines->get(model, &job);
            const std::shared_ptr<const Transformer> original = edited ? std::make_shared<const Transformer>(*source, &job) : current;
            job.stage(0.05, 0.95, QString());
            out.measured = compareEfficiency(*original, edited ? current.get() : nullptr, options, &job);
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory to run both models."));
            cancelled = f.cancelled;
            error = f.message;
        }
        cancelled = cancelled || job.cancelled();
        job.post([this, out, error, cancelled] {
            if (cancelled)
                setStatus(shown_ ? tr("Cancelled; the figures shown are the previous ones.") : tr("Cancelled."));
            else if (!error.isEmpty())
                setStatus(error);
            else
                showOutcome(out);
        });
    });
    updateEnabled();
}

void SpeedPanel::cancel()
{
    if (!runner_->isRunning())
        return;
    runner_->cancel();
    setStatus(tr("Cancelling…"));
    updateEnabled();
}

void SpeedPanel::showOutcome(const SpeedOutcome& outcome)
{
    shown_ = outcome;
    const EfficiencyResult& a = outcome.measured.original;
    const std::optional<EfficiencyResult>& b = outcome.measured.edited;
    const EfficiencyOptions& o = outcome.options;
    const auto set = [this](int row, const QString& label, const QString& original, const QString& current, const QString& change) {
        table_->setItem(row, Measure, new QTableWidgetItem(label));
        const QString texts[] = {original, current, change};
        for (int c = Original; c <= Change; ++c) {
            auto* item = new QTableWidgetItem(texts[c - Original]);
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            table_->setItem(row, c, item);
        }
    };
    const auto both = [&](int row, const QString& label, auto text, auto value) {
        set(row, label, text(a), b ? text(*b) : QString(), b ? ratio(value(*b), value(a)) : QString());
    };
    both(Prefill, tr("Prefill pp%1 (tokens/s)").arg(o.prefillTokens), [](const EfficiencyResult& r) { return rate(r.prefill); },
         [](const EfficiencyResult& r) { return r.prefill.mean; });
    both(Decode,
         o.decodeAfter > 0 ? tr("Decode tg%1 @ %2 (tokens/s)").arg(o.decodeTokens).arg(o.decodeAfter) : tr("Decode tg%1 (tokens/s)").arg(o.decodeTokens),
         [](const EfficiencyResult& r) { return rate(r.decode); }, [](const EfficiencyResult& r) { return r.decode.mean; });
    both(Weights, tr("Weights"), [](const EfficiencyResult& r) { return formatBytes(r.weightBytes); },
         [](const EfficiencyResult& r) { return static_cast<double>(r.weightBytes); });
    both(BitsPerWeight, tr("Bits per weight"), [](const EfficiencyResult& r) { return QString::number(r.bitsPerWeight, 'f', 2); },
         [](const EfficiencyResult& r) { return r.bitsPerWeight; });
    both(Compression, tr("Compression vs F16"),
         [](const EfficiencyResult& r) { return QStringLiteral("%1×").arg(16.0 / std::max(1e-9, r.bitsPerWeight), 0, 'f', 2); },
         [](const EfficiencyResult& r) { return 16.0 / std::max(1e-9, r.bitsPerWeight); });
    both(KvCache, tr("KV cache per 1k tokens"), [](const EfficiencyResult& r) { return formatBytes(r.kvBytesPer1kTokens); },
         [](const EfficiencyResult& r) { return static_cast<double>(r.kvBytesPer1kTokens); });
    both(Flops, tr("GFLOP per token"), [](const EfficiencyResult& r) { return QString::number(r.flopsPerToken * 1e-9, 'f', 3); },
         [](const EfficiencyResult& r) { return r.flopsPerToken; });
    // The process's memory is one figure for the whole run (both models live in it).
    const uint64_t rss = std::max(a.peakRssBytes, b ? b->peakRssBytes : 0), anon = std::max(a.peakAnonBytes, b ? b->peakAnonBytes : 0);
    const uint64_t huge = std::max(a.hugePageBytes, b ? b->hugePageBytes : 0);
    set(PeakRss, tr("Peak RSS (process, mapped model included)"), formatBytes(rss), QString(), QString());
    set(RssAnon, tr("RssAnon (the process's own memory)"), formatBytes(anon), QString(), QString());
    set(HugePages, tr("Mapped in 2 MiB pages"), formatBytes(huge), QString(), QString());
    table_->item(HugePages, Measure)->setToolTip(
        tr("Decoding reads every weight once a token: a model the page cache holds in 4 KiB pages decodes about 1.4× "
           "more slowly than one in 2 MiB pages."));
    table_->setColumnHidden(Current, !b);
    table_->setColumnHidden(Change, !b);
    table_->show();

    const bool current = !b || outcome.steps == document_->state().steps;
    if (outcome.measured.smallerButSlower()) {
        flag_->setText(tr("Smaller (%1× less memory) but decodes more slowly: %2 against the original's %3 tokens/s.")
                           .arg(outcome.measured.compressionRatio(), 0, 'f', 2)
                           .arg(b->decode.mean, 0, 'f', 2)
                           .arg(a.decode.mean, 0, 'f', 2));
        flag_->show();
    } else {
        flag_->hide();
    }
    if (!current)
        setStatus(tr("The current column was measured on an earlier state; Measure again for this one."));
    else if (b)
        setStatus(tr("The current state holds %1× less weight memory than the original; %2 runs of each, alternating.")
                      .arg(outcome.measured.compressionRatio(), 0, 'f', 2)
                      .arg(outcome.options.repeats));
    else
        setStatus(tr("%n run(s). Apply a compression step to measure the current state beside the original.", nullptr,
                     outcome.options.repeats));
}

nlohmann::json SpeedPanel::sessionJson() const
{
    if (!shown_)
        return nullptr;
    nlohmann::json j = comparisonJson(shown_->measured, shown_->options, shown_->model, shown_->threads);
    Recipe measured;
    measured.steps = shown_->steps;
    j["steps"] = measured.toJson();
    return j;
}

nlohmann::json SpeedPanel::reportJson() const
{
    if (!shown_ || shown_->steps != document_->state().steps)
        return nullptr;
    return comparisonJson(shown_->measured, shown_->options, shown_->model, shown_->threads);
}

bool SpeedPanel::restoreSession(const nlohmann::json& j)
{
    SpeedOutcome o;
    try {
        o.options.prefillTokens = j.at("prompt").get<int64_t>();
        o.options.decodeTokens = j.at("decode").get<int64_t>();
        o.options.decodeAfter = j.at("decode_after").get<int64_t>();
        o.options.repeats = j.at("repeats").get<int>();
        o.model = j.at("model").get<std::string>();
        o.threads = j.at("threads").get<int>();
        o.measured.original = efficiencyFromJson(j.at("original"));
        if (j.contains("compressed"))
            o.measured.edited = efficiencyFromJson(j.at("compressed"));
        o.steps = Recipe::fromJson(j.at("steps"), "session").steps;
    } catch (...) {
        return false;
    }
    promptBox_->setValue(static_cast<int>(o.options.prefillTokens));
    decodeBox_->setValue(static_cast<int>(o.options.decodeTokens));
    decodeAfterBox_->setValue(static_cast<int>(o.options.decodeAfter));
    repeatsBox_->setValue(o.options.repeats);
    showOutcome(o);
    return true;
}

} // namespace ll::gui
