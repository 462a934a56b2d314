#include "perplexity_panel.h"

#include "analysis/engine_cache.h"
#include "format.h"
#include "job_estimate.h"
#include "job_failure.h"
#include "job_progress.h"
#include "job_runner.h"
#include "model_document.h"
#include "panel_util.h"
#include "system_memory.h"

#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QComboBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QHeaderView>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>
#include <new>

namespace ll::gui {

namespace {
const char* kTextKey = "evaluate/text";          // "" = built-in sample
const char* kRecentKey = "evaluate/recentTexts";
const char* kContextKey = "evaluate/context";
const char* kProtocolKey = "evaluate/protocol";
const char* kWindowsKey = "evaluate/maxWindows";
const char* kUnitKey = "evaluate/countUnit";     // 0 windows, 1 tokens
constexpr int kMaxRecentTexts = 6;
const char* kChooseMarker = "\x01choose";

QString protocolName(ScoringProtocol p)
{
    return p == ScoringProtocol::Full ? QObject::tr("full") : QObject::tr("llama.cpp");
}
} // namespace

PerplexityPanel::PerplexityPanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent)
    : QWidget(parent), document_(document), engines_(std::move(engines)), runner_(new JobRunner(this))
{
    setObjectName(QStringLiteral("perplexityPanel"));
    textBox_ = new QComboBox(this);
    textBox_->setObjectName(QStringLiteral("evalTextBox"));
    textBox_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    textBox_->setMinimumContentsLength(12);
    textBox_->setToolTip(tr("The text to score: a UTF-8 file, tokenized whole with one BOS at the start"));

    contextBox_ = new QSpinBox(this);
    contextBox_->setObjectName(QStringLiteral("evalContextBox"));
    contextBox_->setRange(8, 1 << 20);
    contextBox_->setSingleStep(64);
    contextBox_->setValue(256);
    contextBox_->setSuffix(tr(" tokens"));
    contextBox_->setToolTip(tr("Tokens per window: the text is cut into non-overlapping windows of this length"));

    protocolBox_ = new QComboBox(this);
    protocolBox_->setObjectName(QStringLiteral("evalProtocolBox"));
    protocolBox_->addItem(tr("Full windows"), static_cast<int>(ScoringProtocol::Full));
    protocolBox_->setItemData(0, tr("Every window scores all its positions after the first "
                                    "(non-overlapping windows; LayerLab's reference protocol)"),
                              Qt::ToolTipRole);
    protocolBox_->addItem(tr("llama.cpp (second half)"), static_cast<int>(ScoringProtocol::LlamaCpp));
    protocolBox_->setItemData(1, tr("As llama.cpp's perplexity tool: each window starts with BOS and only "
                                    "its second half is scored"),
                              Qt::ToolTipRole);

    maxWindowsBox_ = new QSpinBox(this);
    maxWindowsBox_->setObjectName(QStringLiteral("evalWindowsBox"));
    maxWindowsBox_->setRange(0, 1 << 24);
    maxWindowsBox_->setSpecialValueText(tr("all"));
    maxWindowsBox_->setValue(0);
    maxWindowsBox_->setToolTip(tr("Score only the first N windows (or tokens): a quick look instead of the whole text"));
    unitBox_ = new QComboBox(this);
    unitBox_->setObjectName(QStringLiteral("evalUnitBox"));
    unitBox_->addItem(tr("windows"), static_cast<int>(CountUnit::Windows));
    unitBox_->addItem(tr("tokens"), static_cast<int>(CountUnit::Tokens));
    unitBox_->setToolTip(tr("Count the windows, or the tokens (rounded up to whole windows)"));

    runButton_ = new QPushButton(tr("Run"), this);
    runButton_->setObjectName(QStringLiteral("evalRunButton"));
    runButton_->setDefault(true);
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    cancelButton_->setObjectName(QStringLiteral("evalCancelButton"));
    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    progress_->setTextVisible(true);
    progress_->setFormat(QString());
    // The running job's line ("scoring: window 12 of 40 · 1:23 left"): under the bar, not in it.
    progressText_ = new QLabel(this);
    progressText_->setObjectName(QStringLiteral("evalProgressText"));
    setSecondaryText(progressText_);
    progressText_->setWordWrap(true);
    statusLabel_ = new QLabel(this);
    statusLabel_->setObjectName(QStringLiteral("evalStatus"));
    statusLabel_->setWordWrap(true);
    statusLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    statusLabel_->setAlignment(Qt::AlignLeft | Qt::AlignTop);

    auto* form = new QFormLayout;
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    form->setLabelAlignment(Qt::AlignLeft | Qt::AlignVCenter);
    form->addRow(tr("Text"), textBox_);
    auto* ctxRow = new QHBoxLayout;
    ctxRow->addWidget(contextBox_, 1);
    ctxRow->addSpacing(8);
    ctxRow->addWidget(new QLabel(tr("Score"), this));
    ctxRow->addWidget(maxWindowsBox_, 1);
    ctxRow->addWidget(unitBox_);
    form->addRow(tr("Context"), ctxRow);
    form->addRow(tr("Protocol"), protocolBox_);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(runButton_);
    buttons->addWidget(cancelButton_);
    buttons->addWidget(progress_, 1);
    auto* controls = new QVBoxLayout;
    controls->addLayout(form);
    controls->addLayout(buttons);
    controls->addWidget(progressText_);
    controls->addWidget(statusLabel_);
    controls->addStretch(1);

    // The result: perplexity large, the rest as captioned rows.
    pplLabel_ = new QLabel(QStringLiteral("—"), this);
    pplLabel_->setObjectName(QStringLiteral("evalPpl"));
    QFont big = pplLabel_->font();
    big.setPointSizeF(big.pointSizeF() * 1.6);
    big.setBold(true);
    pplLabel_->setFont(big);
    pplLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    pplLabel_->setToolTip(tr("Perplexity exp(mean NLL) ± its standard error (delta method)"));
    nllLabel_ = new QLabel(this);
    nllLabel_->setWordWrap(true);
    tokensLabel_ = new QLabel(this);
    tokensLabel_->setWordWrap(true);
    timeLabel_ = new QLabel(this);
    speedLabel_ = new QLabel(this);
    // Results wrap: an unwrapped line would widen the dock, and the window past 1280 pixels.
    for (QLabel* l : {pplLabel_, timeLabel_, speedLabel_})
        l->setWordWrap(true);
    runLabel_ = new QLabel(this);
    runLabel_->setObjectName(QStringLiteral("evaluateRunLabel"));
    runLabel_->setWordWrap(true);
    auto* results = new QGridLayout;
    results->setHorizontalSpacing(10);
    results->setVerticalSpacing(4);
    int row = 0;
    auto addRow = [&](const QString& caption, QWidget* value) {
        auto* c = new QLabel(caption, this);
        setSecondaryText(c);
        results->addWidget(c, row, 0, Qt::AlignLeft | Qt::AlignTop);
        results->addWidget(value, row, 1);
        if (auto* l = qobject_cast<QLabel*>(value))
            l->setTextInteractionFlags(Qt::TextSelectableByMouse);
        ++row;
    };
    addRow(tr("Perplexity"), pplLabel_);
    addRow(tr("Mean NLL"), nllLabel_);
    addRow(tr("Scored"), tokensLabel_);
    addRow(tr("Time"), timeLabel_);
    addRow(tr("Speed"), speedLabel_);
    addRow(tr("Run on"), runLabel_);
    results->setColumnStretch(1, 1);
    results->setRowStretch(row, 1);

    // Every finished run of this model, newest first: compare settings at a glance.
    history_ = new QTableWidget(0, 3, this);
    history_->setObjectName(QStringLiteral("evalHistory"));
    history_->setHorizontalHeaderLabels({tr("Perplexity"), tr("Run"), tr("Time")});
    history_->verticalHeader()->setVisible(false);
    history_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 6);
    history_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    history_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
    history_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    history_->setWordWrap(false);
    history_->setTextElideMode(Qt::ElideMiddle);
    history_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    history_->setSelectionBehavior(QAbstractItemView::SelectRows);
    history_->setAlternatingRowColors(true);
    history_->setToolTip(tr("The runs of this model so far, newest first"));
    history_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("Perplexity  0.0000 ± 0.0000  eval.txt ·  Time 000 ms")));

    auto* controlsBox = new QWidget(this);
    controlsBox->setLayout(controls);
    controls->setContentsMargins(0, 0, 0, 0);
    controlsBox->setMaximumWidth(fontMetrics().horizontalAdvance(QLatin1Char('m')) * 42);
    auto* resultsBox = new QWidget(this);
    resultsBox->setLayout(results);
    results->setContentsMargins(0, 0, 0, 0);
    resultsBox->setMaximumWidth(fontMetrics().horizontalAdvance(QLatin1Char('m')) * 36);
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(16);
    layout->addWidget(controlsBox, 3);
    layout->addWidget(resultsBox, 3);
    layout->addWidget(history_, 4);

    // Remembered settings.
    QSettings settings;
    contextBox_->setValue(settings.value(QLatin1String(kContextKey), 256).toInt());
    protocolBox_->setCurrentIndex(std::clamp(settings.value(QLatin1String(kProtocolKey), 0).toInt(), 0, 1));
    maxWindowsBox_->setValue(settings.value(QLatin1String(kWindowsKey), 0).toInt());
    unitBox_->setCurrentIndex(std::clamp(settings.value(QLatin1String(kUnitKey), 0).toInt(), 0, 1));
    TextSource last{settings.value(QLatin1String(kTextKey)).toString()};
    if (!last.isBuiltin() && !QFileInfo(last.path).isFile())
        last = {};
    text_ = last;
    rebuildTextBox(text_);

    connect(textBox_, &QComboBox::activated, this, &PerplexityPanel::onTextActivated);
    connect(runButton_, &QPushButton::clicked, this, &PerplexityPanel::run);
    connect(cancelButton_, &QPushButton::clicked, this, &PerplexityPanel::cancel);
    showJobProgress(runner_, progress_, progressText_);
    connect(runner_, &JobRunner::runningChanged, this, [this](bool running) {
        updateEnabled();
        emit runningChanged(running);
    });
    // After the job's last words (its state) have been shown, and isRunning() is false.
    connect(runner_, &JobRunner::finished, this, [this] {
        updateEnabled();
        emit finished();
    });
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] {
        if (runner_->isRunning()) {
            runner_->abandon(); // its result would be for the old model
            stoppedByClose_ = true;
        }
    });
    connect(document_, &ModelDocument::modelChanged, this, &PerplexityPanel::onModelChanged);
    // A result of another state is marked, not shown as the current model's.
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        if (shown_)
            showOutcome(*shown_);
    });
    onModelChanged();
}

bool PerplexityPanel::isStale() const
{
    return shown_ && document_->hasModel() && shown_->steps != document_->state().steps;
}

PerplexityPanel::~PerplexityPanel()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's runningChanged/finished must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

TextSource PerplexityPanel::textSource() const
{
    return text_;
}

void PerplexityPanel::rebuildTextBox(const TextSource& select)
{
    QSignalBlocker block(textBox_);
    textBox_->clear();
    textBox_->addItem(tr(kBuiltinSampleName), QString());
    textBox_->setItemData(0, tr("About 8 KB of simple stories that come with LayerLab"), Qt::ToolTipRole);
    const QStringList recent = QSettings().value(QLatin1String(kRecentKey)).toStringList();
    for (const QString& path : recent) {
        if (!QFileInfo(path).isFile())
            continue;
        textBox_->addItem(QFileInfo(path).fileName(), path);
        textBox_->setItemData(textBox_->count() - 1, QDir::toNativeSeparators(path), Qt::ToolTipRole);
    }
    textBox_->insertSeparator(textBox_->count());
    textBox_->addItem(tr("Choose a file…"), QString::fromLatin1(kChooseMarker));
    // The first match: the separator's empty data would otherwise "match" the built-in sample.
    int index = 0;
    for (int i = textBox_->count() - 1; i >= 0; --i)
        if (textBox_->itemData(i).toString() == select.path && !textBox_->itemText(i).isEmpty())
            index = i;
    textBox_->setCurrentIndex(index);
    lastTextIndex_ = index;
}

void PerplexityPanel::onTextActivated(int index)
{
    const QString data = textBox_->itemData(index).toString();
    if (data == QLatin1String(kChooseMarker)) {
        const QString start = text_.isBuiltin() ? QString() : QFileInfo(text_.path).absolutePath();
        const QString path = QFileDialog::getOpenFileName(this, tr("Text to Evaluate On"), start,
                                                          tr("Text files (*.txt *.raw *.md);;All files (*)"));
        if (path.isEmpty()) {
            textBox_->setCurrentIndex(lastTextIndex_);
            return;
        }
        setTextFile(path);
        return;
    }
    text_ = TextSource{data};
    lastTextIndex_ = index;
    saveSettings();
    emit textSourceChanged();
}

void PerplexityPanel::setTextSource(const TextSource& source)
{
    if (source == text_)
        return;
    if (!source.isBuiltin()) {
        setTextFile(source.path);
        return;
    }
    text_ = source;
    rebuildTextBox(text_);
    saveSettings();
    emit textSourceChanged();
}

void PerplexityPanel::setTextFile(const QString& path)
{
    const QString absolute = QFileInfo(path).absoluteFilePath();
    QStringList recent = QSettings().value(QLatin1String(kRecentKey)).toStringList();
    recent.removeAll(absolute);
    recent.prepend(absolute);
    while (recent.size() > kMaxRecentTexts)
        recent.removeLast();
    QSettings().setValue(QLatin1String(kRecentKey), recent);
    text_ = TextSource{absolute};
    rebuildTextBox(text_);
    // A file that vanished is not listed: show it anyway, so that Run says what is wrong.
    if (textBox_->itemData(textBox_->currentIndex()).toString() != absolute) {
        textBox_->insertItem(1, QFileInfo(absolute).fileName(), absolute);
        textBox_->setCurrentIndex(1);
        lastTextIndex_ = 1;
    }
    saveSettings();
    emit textSourceChanged();
}

void PerplexityPanel::useBuiltinText()
{
    text_ = {};
    rebuildTextBox(text_);
    saveSettings();
    emit textSourceChanged();
}

void PerplexityPanel::saveSettings() const
{
    QSettings settings;
    settings.setValue(QLatin1String(kTextKey), text_.path);
    settings.setValue(QLatin1String(kContextKey), contextBox_->value());
    settings.setValue(QLatin1String(kProtocolKey), protocolBox_->currentIndex());
    settings.setValue(QLatin1String(kWindowsKey), maxWindowsBox_->value());
    settings.setValue(QLatin1String(kUnitKey), unitBox_->currentIndex());
}

void PerplexityPanel::setScoreCount(int64_t count, CountUnit unit)
{
    unitBox_->setCurrentIndex(unitBox_->findData(static_cast<int>(unit)));
    maxWindowsBox_->setValue(static_cast<int>(count));
}

int64_t PerplexityPanel::windowsToScore() const
{
    const int64_t n = maxWindowsBox_->value();
    if (n <= 0)
        return 0; // all
    if (static_cast<CountUnit>(unitBox_->currentData().toInt()) == CountUnit::Windows)
        return n;
    const int64_t ctx = std::max(1, contextBox_->value());
    return (n + ctx - 1) / ctx; // whole windows covering at least n tokens
}

void PerplexityPanel::onModelChanged()
{
    const auto model = document_->model();
    // Positions the model knows: windows longer than that are refused up front.
    const int maxCtx = model && model->config.maxPositions > 1
                           ? static_cast<int>(std::min<int64_t>(model->config.maxPositions, 1 << 20))
                           : (1 << 20);
    contextBox_->setMaximum(maxCtx);
    // Results belong to the model they were computed for.
    history_->setRowCount(0);
    shown_.reset();
    showOutcome({});
    setState(State::Idle, stoppedByClose_             ? tr("The evaluation was stopped: its model was closed.")
                          : !model                    ? tr("Open a model to evaluate it.")
                          : model->config.synthetic   ? tr("The demo model has no tokenizer: open a checkpoint to "
                                                           "evaluate it on text.")
                                                      : QString());
    stoppedByClose_ = false;
}

void PerplexityPanel::run()
{
    const auto model = document_->model();
    if (!model) {
        setState(State::Failed, tr("No model is open."));
        return;
    }
    saveSettings();
    ScoringOptions options;
    options.context = contextBox_->value();
    options.protocol = static_cast<ScoringProtocol>(protocolBox_->currentData().toInt());
    options.maxWindows = windowsToScore();
    const TextSource text = text_;
    const std::shared_ptr<EngineCache> engines = engines_;
    // Before anything runs: will it fit? (The text's windows from its size when "all": at most bytes / 2 tokens.)
    int64_t windows = options.maxWindows;
    if (windows <= 0) {
        const double bytes = text.isBuiltin() ? 8192.0 : static_cast<double>(QFileInfo(text.path).size());
        windows = std::max<int64_t>(1, static_cast<int64_t>(bytes / 2.0) / std::max<int64_t>(1, options.context));
    }
    const int threads = computeThreadCount();
    const JobCost cost = estimateEvaluation(*model, windows, options.context, threads);
    const JobCheck check = checkJob(cost);

    if (!check.ok) {
        setState(State::Failed, check.refusal);
        return;
    }
    progress_->setValue(0);
    progress_->setFormat(tr("starting"));
    setState(State::Running, tr("Evaluating %1 (%2)…").arg(text.displayName(), check.summary));

    runner_->start([this, model, options, text, engines, steps = document_->state().steps](JobContext& job) {
        QElapsedTimer clock;
        clock.start();
        PerplexityOutcome out;
        out.options = options;
        out.text = text;
        out.steps = steps;
        QString error;
        bool cancelled = false;
        try {
            job.stage(0.0, 0.02, tr("reading text"));
            const std::string bytes = loadText(text);
            std::unique_ptr<Tokenizer> tokenizer;
            try {
                tokenizer = loadTokenizer(*model);
            } catch (const Error& e) {
                if (e.code() != ErrorCode::NotFound)
                    throw;
                error = model->config.synthetic
                            ? tr("The demo model has no tokenizer, so it cannot read text. Open a checkpoint "
                                 "with its tokenizer (tokenizer.json, tokenizer.bin or a GGUF vocabulary).")
                            : tr("This model has no tokenizer: put its tokenizer.json (Hugging Face) or "
                                 "tokenizer.bin (llama2.c) beside it and open it again.");
            }
            if (tokenizer) {
                job.stage(0.02, 0.08, tr("tokenizing"));
                const std::vector<int32_t> tokens = tokenizer->encode(bytes, true);
                out.textTokens = static_cast<int64_t>(tokens.size());
                if (static_cast<int64_t>(tokens.size()) < options.context) {
                    error = tr("The text is too short for one window: %1 has %2 tokens, the context is %3. "
                               "Choose a longer text or a shorter context.")
                                .arg(text.displayName(), formatExact(static_cast<int64_t>(tokens.size())))
                                .arg(options.context);
                } else {
                    job.stage(0.10, 0.15, tr("preparing the engine"));
                    const auto engine = engines->get(model, &job);
                    job.stage(0.25, 0.75, tr("scoring"));
                    QElapsedTimer scoring;
                    scoring.start();
                    out.result = evaluatePerplexity(*engine, tokens, options, &job);
                    out.scoringSeconds = static_cast<double>(scoring.nsecsElapsed()) * 1e-9;
                    // The machine's pace, for the next estimates.
                    recordThroughput(estimateEvaluation(*model, out.result.windows, options.context, computeThreadCount()).flops,
                                     out.scoringSeconds);
                }
            }
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory for this evaluation."));
            cancelled = f.cancelled;
            error = f.message;
        }
        out.seconds = static_cast<double>(clock.nsecsElapsed()) * 1e-9;
        // A run that finished just as Cancel was pressed counts as cancelled: the user asked for the old result.
        cancelled = cancelled || job.cancelled();
        job.post([this, out, error, cancelled] {
            if (cancelled) {
                setState(State::Cancelled, shown_ ? tr("Cancelled; the result shown is the previous one.")
                                                  : tr("Cancelled."));
            } else if (!error.isEmpty()) {
                setState(State::Failed, error);
            } else {
                showOutcome(out);
                addToHistory(out);
                setState(State::Done);
            }
        });
    });
    runner_->setExpectedSeconds(check.seconds);
    updateEnabled();
}

void PerplexityPanel::cancel()
{
    if (!runner_->isRunning())
        return;
    runner_->cancel();
    setState(State::Cancelling, tr("Cancelling…"));
}

bool PerplexityPanel::isRunning() const
{
    return runner_->isRunning();
}

void PerplexityPanel::setState(State state, const QString& message)
{
    state_ = state;
    const bool failed = state == State::Failed;
    statusLabel_->setText(message);
    statusLabel_->setStyleSheet(failed ? QStringLiteral("color: #b3261e;") : QString());
    if (state != State::Running && state != State::Cancelling)
        progressText_->clear();
    if (state == State::Done || state == State::Failed || state == State::Cancelled || state == State::Idle) {
        progress_->setValue(state == State::Done ? 1000 : 0);
        progress_->setFormat(state == State::Done ? tr("done") : QString());
    }
    updateEnabled();
}

void PerplexityPanel::updateEnabled()
{
    const bool running = runner_->isRunning();
    runButton_->setEnabled(!running && document_->hasModel());
    cancelButton_->setEnabled(running && state_ != State::Cancelling);
    for (QWidget* w : std::initializer_list<QWidget*>{textBox_, contextBox_, protocolBox_, maxWindowsBox_, unitBox_})
        w->setEnabled(!running);
}

void PerplexityPanel::restoreOutcome(const PerplexityOutcome& o)
{
    if (!document_->hasModel() || runner_->isRunning() || o.result.tokensScored <= 0)
        return;
    PerplexityOutcome restored = o;
    restored.steps = document_->state().steps; // a session's evaluation is of the state it restores
    showOutcome(restored);
    addToHistory(restored);
    setState(State::Done, tr("From the saved session (press Run to measure again)."));
}

void PerplexityPanel::showOutcome(const PerplexityOutcome& o)
{
    if (o.result.tokensScored == 0) {
        pplLabel_->setText(QStringLiteral("—"));
        for (QLabel* l : {nllLabel_, tokensLabel_, timeLabel_, speedLabel_})
            l->clear();
        const auto model = document_->model();
        runLabel_->setText(model && !model->config.synthetic ? tr("No result yet: choose a text and press Run.")
                                                             : QString());
        return;
    }
    shown_ = o;
    const PerplexityResult& r = o.result;
    pplLabel_->setText(resultText());
    nllLabel_->setText(tr("%1 ± %2 nats").arg(r.nllMean, 0, 'f', 4).arg(r.nllStderr, 0, 'f', 4));
    nllLabel_->setToolTip(tr("Mean negative log-likelihood per scored token, with its standard error"));
    tokensLabel_->setText(tr("%1 tokens in %2 windows").arg(formatExact(r.tokensScored), formatExact(r.windows)));
    timeLabel_->setText(formatSeconds(o.seconds));
    timeLabel_->setToolTip(tr("From Run to the result: reading and tokenizing the text, building the engine, "
                              "scoring (%1)").arg(formatSeconds(o.scoringSeconds)));
    speedLabel_->setText(tr("%1 tokens/s").arg(formatExact(static_cast<int64_t>(std::llround(o.tokensPerSecond())))));
    speedLabel_->setToolTip(tr("Scored tokens per second of the forward passes and scoring"));
    QString windows = o.options.maxWindows > 0 ? tr(", first %1 windows").arg(o.options.maxWindows) : QString();
    runLabel_->setText(tr("%1 (%2 tokens) · ctx %3 · %4%5")
                           .arg(o.text.displayName(), formatExact(o.textTokens))
                           .arg(o.options.context)
                           .arg(protocolName(o.options.protocol), windows));
    runLabel_->setToolTip(o.text.isBuiltin() ? QString() : QDir::toNativeSeparators(o.text.path));
    const bool stale = isStale();
    pplLabel_->setEnabled(!stale); // greyed: not the current model's
    if (stale) {
        const QString on = o.steps.empty() ? tr("the original model")
                           : o.steps.size() == 1 ? tr("1 step (%1)").arg(QString::fromStdString(o.steps.front().badge()))
                                                 : tr("%1 steps").arg(o.steps.size());
        runLabel_->setText(tr("⚠ Measured on %1; the model has changed since: press Run.").arg(on) + QStringLiteral("\n")
                           + runLabel_->text());
    }
}

void PerplexityPanel::addToHistory(const PerplexityOutcome& o)
{
    history_->insertRow(0);
    const QString windows = o.options.maxWindows > 0 ? tr(" · %1 windows").arg(o.result.windows) : QString();
    const QString cells[] = {
        QStringLiteral("%1 ± %2").arg(o.result.ppl, 0, 'f', 4).arg(o.result.pplStderr, 0, 'f', 4),
        tr("%1 · ctx %2 · %3%4").arg(o.text.displayName()).arg(o.options.context).arg(protocolName(o.options.protocol), windows),
        formatSeconds(o.seconds),
    };
    const QString tip = tr("%1\n%2 tokens scored in %3 windows, %4 tokens/s")
                            .arg(o.text.isBuiltin() ? o.text.displayName() : QDir::toNativeSeparators(o.text.path),
                                 formatExact(o.result.tokensScored), formatExact(o.result.windows),
                                 formatExact(static_cast<int64_t>(std::llround(o.tokensPerSecond()))));
    for (int col = 0; col < 3; ++col) {
        auto* item = new QTableWidgetItem(cells[col]);
        item->setTextAlignment((col == 1 ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignVCenter);
        item->setToolTip(tip);
        history_->setItem(0, col, item);
    }
}

QString PerplexityPanel::resultText() const
{
    if (!shown_)
        return {};
    return QStringLiteral("%1 ± %2").arg(shown_->result.ppl, 0, 'f', 4).arg(shown_->result.pplStderr, 0, 'f', 4);
}

QString PerplexityPanel::statusText() const
{
    return statusLabel_->text();
}

} // namespace ll::gui
