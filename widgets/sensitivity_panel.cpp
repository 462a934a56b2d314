#include "sensitivity_panel.h"

#include "eval_text.h"
#include "job_estimate.h"
#include "job_failure.h"
#include "job_progress.h"
#include "job_runner.h"
#include "method_form.h"
#include "model_document.h"
#include "panel_util.h"
#include "recipe_replay.h"
#include "sensitivity_plots.h"

#include "methods/method_registry.h"
#include "pipeline/model_compression.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QScrollArea>
#include <QScrollBar>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>
#include <new>

namespace ll::gui {

namespace {

const char* kChooseFile = "\x01choose";
const char* kDefaultCandidates = "rtn:3:32,rtn:4:64,rtn:4:32,rtn:8:32";

constexpr int kNameRole = Qt::UserRole + 1; // the full logical name behind a short label

// "blocks.3.mlp.down.weight" → "3.mlp.down": the table fits a narrow dock; the tooltip has the full name.
QTableWidgetItem* layerItem(const std::string& logical)
{
    const QString full = QString::fromStdString(logical);
    static const QRegularExpression re(QStringLiteral("^blocks\\.(\\d+\\.\\w+\\.\\w+)\\.weight$"));
    const auto m = re.match(full);
    auto* item = new QTableWidgetItem(m.hasMatch() ? m.captured(1) : full);
    item->setData(kNameRole, full);
    item->setToolTip(full);
    return item;
}

enum Column { ColLayer, ColStep, ColBits, ColError, ColPpl, ColDeltaPpl, ColKl, ColTop1, ColSeconds, ColCount };

// Sorts by the number behind the text; missing values sort below every number.
class NumberItem : public QTableWidgetItem {
public:
    NumberItem(std::optional<double> v, int decimals, const QString& suffix = QString())
        : QTableWidgetItem(v && std::isfinite(*v) ? QString::number(*v, 'f', decimals) + suffix : QStringLiteral("–"))
    {
        setData(Qt::UserRole, v && std::isfinite(*v) ? *v : -INFINITY);
        setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    }
    bool operator<(const QTableWidgetItem& other) const override
    {
        return data(Qt::UserRole).toDouble() < other.data(Qt::UserRole).toDouble();
    }
};

QString metricLabel(SensitivityMetric m)
{
    switch (m) {
    case SensitivityMetric::DeltaPpl: return QStringLiteral("ΔPPL");
    case SensitivityMetric::DeltaNll: return QStringLiteral("ΔNLL");
    case SensitivityMetric::Kl: return QStringLiteral("KL");
    case SensitivityMetric::Top1: return QStringLiteral("1 − top-1");
    case SensitivityMetric::OutputError: return QStringLiteral("output error");
    }
    return {};
}

int metricColumn(SensitivityMetric m)
{
    return m == SensitivityMetric::Kl ? ColKl : m == SensitivityMetric::Top1 ? ColTop1 : ColDeltaPpl;
}

QTableWidget* makeTable(QWidget* parent, const QStringList& headers)
{
    auto* t = new QTableWidget(0, static_cast<int>(headers.size()), parent);
    t->setHorizontalHeaderLabels(headers);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->setSelectionBehavior(QAbstractItemView::SelectRows);
    t->setSelectionMode(QAbstractItemView::SingleSelection);
    t->setAlternatingRowColors(true);
    t->verticalHeader()->hide();
    t->verticalHeader()->setDefaultSectionSize(t->fontMetrics().height() + 6);
    t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    t->horizontalHeader()->setStretchLastSection(true);
    t->setWordWrap(false);
    t->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder); // model order until a header is clicked
    return t;
}

} // namespace

SensitivityPanel::SensitivityPanel(ModelDocument* document, QWidget* parent)
    : QWidget(parent), document_(document), runner_(new JobRunner(this))
{
    setObjectName(QStringLiteral("sensitivityPanel"));

    // The step template: every method of the registry, its parameters from its schema.
    methodBox_ = new QComboBox(this);
    for (const StepAction action : {StepAction::Quantize, StepAction::Prune, StepAction::Factorize}) {
        if (methodBox_->count() > 0)
            methodBox_->insertSeparator(methodBox_->count());
        // Pruning and low-rank names say which they are ("Magnitude" alone could be anything).
        const QString prefix = action == StepAction::Prune       ? tr("Prune: ")
                               : action == StepAction::Factorize ? tr("Low rank: ")
                                                                 : QString();
        for (const MethodSpec* m : methodSpecsFor(action))
            methodBox_->addItem(prefix + QString::fromStdString(m->name),
                                QString::fromStdString(std::string(actionName(action)) + ':' + m->id));
    }
    methodForm_ = new MethodForm(this);
    methodForm_->setObjectName(QStringLiteral("sensitivityMethodForm"));
    methodForm_->setMethod(currentSpec());
    methodForm_->setValue("bits", 3); // a width where layers differ
    methodForm_->setValue("group", 32);

    targets_ = new TargetSelector(this, {Target::AllLinears, Target::Selection, Target::Pattern},
                                  [this] { return document_->model(); });

    textBox_ = new QComboBox(this);
    textBox_->setObjectName(QStringLiteral("sensitivityTextBox"));
    textBox_->addItem(tr("Built-in sample"), QString());
    textBox_->addItem(tr("Choose a text file…"), QString::fromLatin1(kChooseFile));
    textBox_->setToolTip(tr("The text the layers are scored on, tokenized whole with one BOS"));
    windowsBox_ = new QSpinBox(this);
    windowsBox_->setRange(1, 4096);
    windowsBox_->setValue(8);
    windowsBox_->setSuffix(tr(" windows"));
    contextBox_ = new QSpinBox(this);
    contextBox_->setRange(8, 1 << 16);
    contextBox_->setValue(128);
    contextBox_->setPrefix(tr("× "));
    contextBox_->setSuffix(tr(" tokens"));
    metricBox_ = new QComboBox(this);
    metricBox_->addItem(tr("ΔPPL (perplexity increase)"), static_cast<int>(SensitivityMetric::DeltaPpl));
    metricBox_->addItem(tr("KL divergence from the base"), static_cast<int>(SensitivityMetric::Kl));
    metricBox_->addItem(tr("Top-1 disagreement"), static_cast<int>(SensitivityMetric::Top1));

    baseBox_ = new QComboBox(this);
    baseBox_->setObjectName(QStringLiteral("sensitivityBase"));
    baseBox_->addItem(tr("Original model"), static_cast<int>(Base::Original));
    baseBox_->addItem(tr("Current state"), static_cast<int>(Base::Current));
    baseBox_->setToolTip(tr("Original: each layer compressed alone in the model as opened, whatever steps are applied. "
                            "Current state: on top of the steps applied so far (what the next step would cost)."));

    // Long item texts must not widen the control column: the dock shares its width with the results.
    for (QComboBox* c : {methodBox_, targets_->choiceBox(), textBox_, metricBox_, baseBox_}) {
        c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        c->setMinimumContentsLength(10);
    }
    auto* form = new QFormLayout;
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    form->addRow(tr("Method"), methodBox_);
    form->addRow(methodForm_);
    targets_->addTo(form, tr("Layers"));
    form->addRow(tr("Text"), textBox_);
    auto* windowsRow = new QHBoxLayout;
    windowsRow->addWidget(windowsBox_, 1);
    windowsRow->addWidget(contextBox_, 1);
    form->addRow(tr("Windows"), windowsRow);
    form->addRow(tr("Rank by"), metricBox_);
    form->addRow(tr("Measure on"), baseBox_);

    runButton_ = new QPushButton(tr("Run"), this);
    runButton_->setToolTip(tr("Compress each target layer alone and measure what it costs"));
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    progress_ = makeSlimProgressBar(this);
    progressText_ = new QLabel(this);
    progressText_->setObjectName(QStringLiteral("sensitivityProgressText"));
    setSecondaryText(progressText_);
    progressText_->setWordWrap(true);
    progressText_->hide();
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(runButton_);
    buttons->addWidget(cancelButton_);
    buttons->addStretch(1);

    auto* left = new QWidget(this);
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addLayout(form);
    leftLayout->addLayout(buttons);
    leftLayout->addWidget(progress_);
    leftLayout->addWidget(progressText_);
    leftLayout->addWidget(status_);
    leftLayout->addStretch(1);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(left);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    // As wide as the form needs (never clipped), the vertical scroll bar included.
    const int controlsWidth = left->minimumSizeHint().width() + scroll->verticalScrollBar()->sizeHint().width() + 4;
    scroll->setMinimumWidth(controlsWidth);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);

    // The results.
    summary_ = new QLabel(this);
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    table_ = makeTable(this, {tr("Layer"), tr("Step"), tr("Bits/w"), tr("W. error"), tr("PPL"), tr("ΔPPL"), tr("KL"),
                              tr("Top-1"), tr("s")});
    table_->setSortingEnabled(true);
    table_->setToolTip(tr("Click a row to show that tensor; click a header to sort"));
    bars_ = new SensitivityBarPlot(this);
    heatmap_ = new SensitivityHeatmap(this);

    candidatesEdit_ = new QLineEdit(QString::fromLatin1(kDefaultCandidates), this);
    candidatesEdit_->setToolTip(tr("METHOD:BITS:GROUP configs, comma separated (rtn, gptq, awq, ggml:type=Q4_K, …)"));
    budgetBox_ = new QDoubleSpinBox(this);
    budgetBox_->setRange(1.0, 32.0);
    budgetBox_->setDecimals(2);
    budgetBox_->setSingleStep(0.25);
    budgetBox_->setValue(4.5);
    budgetBox_->setSuffix(tr(" bits/weight"));
    planButton_ = new QPushButton(tr("Plan"), this);
    planButton_->setToolTip(tr("Measure every candidate on every target layer (KL on the windows above), pick one per "
                               "layer within the budget, and measure the result"));
    applyButton_ = new QPushButton(tr("Apply plan"), this);
    applyButton_->setToolTip(tr("Replay the plan's recipe on the model as opened (one undoable step)"));
    planSummary_ = new QLabel(this);
    planSummary_->setWordWrap(true);
    planSummary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    planTable_ = makeTable(this, {tr("Layer"), tr("Config"), tr("Bits/w"), tr("KL"), tr("ΔPPL alone")});
    planTable_->setSortingEnabled(true);
    auto* mixedPage = new QWidget(this);
    auto* mixedForm = new QFormLayout;
    mixedForm->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    mixedForm->addRow(tr("Candidates"), candidatesEdit_);
    auto* budgetRow = new QHBoxLayout;
    budgetRow->addWidget(budgetBox_);
    budgetRow->addWidget(planButton_);
    budgetRow->addWidget(applyButton_);
    budgetRow->addStretch(1);
    mixedForm->addRow(tr("Budget"), budgetRow);
    auto* mixedLayout = new QVBoxLayout(mixedPage);
    mixedLayout->setContentsMargins(4, 4, 4, 4);
    mixedLayout->addLayout(mixedForm);
    mixedLayout->addWidget(planSummary_);
    mixedLayout->addWidget(planTable_, 1);

    tabs_ = new QTabWidget(this);
    tabs_->addTab(table_, tr("Table"));
    tabs_->addTab(bars_, tr("Bar chart"));
    tabs_->addTab(heatmap_, tr("Heatmap"));
    tabs_->addTab(mixedPage, tr("Mixed precision"));
    layOutControlsBesideResults(this, scroll, summary_, tabs_, controlsWidth, 900);

    connect(methodBox_, &QComboBox::currentIndexChanged, this, [this] {
        methodForm_->setMethod(currentSpec());
        updateForm();
    });
    connect(methodForm_, &MethodForm::edited, this, &SensitivityPanel::updateForm);
    connect(targets_, &TargetSelector::changed, this, &SensitivityPanel::updateForm);
    connect(textBox_, &QComboBox::activated, this, [this](int index) {
        if (textBox_->itemData(index).toString() != QLatin1String(kChooseFile)) {
            evalFile_ = textBox_->itemData(index).toString(); // the sample (empty) or a file chosen before
        } else {
            const QString path = QFileDialog::getOpenFileName(this, tr("Evaluation text"), QString(),
                                                              tr("Text files (*.txt *.raw);;All files (*)"));
            if (path.isEmpty()) { // cancelled: back to the text in use
                setEvalFile(evalFile_);
                return;
            }
            setEvalFile(path);
        }
        markStale(); // the sample chosen from the box (setEvalFile was not called)
        emit evalTextChanged(evalFile_);
    });
    connect(metricBox_, &QComboBox::currentIndexChanged, this, &SensitivityPanel::refreshViews);
    connect(baseBox_, &QComboBox::currentIndexChanged, this, &SensitivityPanel::markStale);
    connect(runButton_, &QPushButton::clicked, this, &SensitivityPanel::run);
    connect(cancelButton_, &QPushButton::clicked, this, &SensitivityPanel::cancel);
    connect(planButton_, &QPushButton::clicked, this, &SensitivityPanel::plan);
    connect(applyButton_, &QPushButton::clicked, this, &SensitivityPanel::applyPlan);
    for (QTableWidget* t : {table_, planTable_})
        connect(t, &QTableWidget::cellClicked, this, [this, t](int row, int) {
            if (const QTableWidgetItem* item = t->item(row, ColLayer)) {
                const int index = document_->findTensor(item->data(kNameRole).toString());
                if (index >= 0)
                    document_->setCurrentTensor(index);
            }
        });
    showJobProgress(runner_, progress_, progressText_);
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] {
        runner_->abandon();
        setBusy(Job::None, QString());
    });
    connect(document_, &ModelDocument::modelChanged, this, [this] {
        clearResults();
        setStatus(QString());
        updateForm();
    });
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        markStale();
        updateForm();
    });

    updateForm();
    setBusy(Job::None, QString());
}

SensitivityPanel::~SensitivityPanel()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's signals must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

// ---- the form ------------------------------------------------------------------------------------

void SensitivityPanel::setMethod(const QString& method, int bits, int group, double sparsityOrRank)
{
    for (int i = 0; i < methodBox_->count(); ++i)
        if (methodBox_->itemData(i).toString().section(QLatin1Char(':'), 1) == method) {
            methodBox_->setCurrentIndex(i);
            break;
        }
    methodForm_->setValue("bits", bits);
    methodForm_->setValue("group", group);
    methodForm_->setValue("sparsity", sparsityOrRank);
    methodForm_->setValue("rank-ratio", sparsityOrRank);
}

const MethodSpec* SensitivityPanel::currentSpec() const
{
    const QString data = methodBox_->currentData().toString();
    for (const StepAction action : {StepAction::Quantize, StepAction::Prune, StepAction::Factorize})
        if (data.section(QLatin1Char(':'), 0, 0).toStdString() == actionName(action))
            return findMethodSpec(action, data.section(QLatin1Char(':'), 1).toStdString());
    return nullptr;
}

void SensitivityPanel::setTarget(Target target, const QString& pattern)
{
    targets_->setTarget(target, pattern);
    updateForm();
}

void SensitivityPanel::setSelectionProvider(std::function<std::vector<std::string>()> provider)
{
    targets_->setSelectionProvider(std::move(provider));
}

void SensitivityPanel::setEvalFile(const QString& path)
{
    if (path.isEmpty()) {
        evalFile_.clear();
        textBox_->setCurrentIndex(0);
        markStale(); // results on another text are not the current text's
        return;
    }
    evalFile_ = path;
    int index = textBox_->findData(path);
    if (index < 0) {
        textBox_->insertItem(1, QFileInfo(path).fileName(), path);
        textBox_->setItemData(1, path, Qt::ToolTipRole);
        index = 1;
    }
    textBox_->setCurrentIndex(index);
    markStale();
}

void SensitivityPanel::setWindows(int windows, int context)
{
    windowsBox_->setValue(windows);
    contextBox_->setValue(context);
}

void SensitivityPanel::setMetric(SensitivityMetric metric)
{
    metricBox_->setCurrentIndex(std::max(0, metricBox_->findData(static_cast<int>(metric))));
}

void SensitivityPanel::setCandidates(const QString& text) { candidatesEdit_->setText(text); }
void SensitivityPanel::setBudget(double bitsPerWeight) { budgetBox_->setValue(bitsPerWeight); }

SensitivityMetric SensitivityPanel::metric() const
{
    return static_cast<SensitivityMetric>(metricBox_->currentData().toInt());
}

RecipeStep SensitivityPanel::currentStep() const
{
    RecipeStep s;
    const MethodSpec* spec = currentSpec();
    if (!spec)
        return s;
    s.action = spec->action;
    s.params = methodForm_->params();
    s.params["method"] = spec->id;
    return s;
}

void SensitivityPanel::setBase(Base base)
{
    baseBox_->setCurrentIndex(baseBox_->findData(static_cast<int>(base)));
}

SensitivityPanel::Base SensitivityPanel::base() const
{
    return static_cast<Base>(baseBox_->currentData().toInt());
}

CompressionState SensitivityPanel::baseState() const
{
    const CompressionState& st = document_->state();
    return base() == Base::Original && st.source ? CompressionState::initial(st.source) : st;
}

std::shared_ptr<const Model> SensitivityPanel::baseModel() const
{
    return base() == Base::Original ? document_->state().source : document_->model();
}

QString SensitivityPanel::baseText() const
{
    const int steps = static_cast<int>(document_->state().steps.size());
    if (base() == Base::Original || steps == 0)
        return tr("the original model");
    return tr("the current state (%n step(s) applied)", nullptr, steps);
}

std::vector<std::string> SensitivityPanel::targetNames() const { return targets_->names(); }

void SensitivityPanel::updateForm()
{

    targets_->refreshLabel(tr("Open a model first."));
    updateButtons();
}

void SensitivityPanel::updateButtons()
{
    const bool busy = job_ != Job::None;
    const bool ready = document_->hasModel() && !busy;
    runButton_->setEnabled(ready && !targetNames().empty());
    planButton_->setEnabled(ready && !targetNames().empty());
    applyButton_->setEnabled(ready && mixed_ && plannedOn_ == baseModel());
    cancelButton_->setEnabled(busy);
    progress_->setVisible(busy);
    progressText_->setVisible(busy);
    if (!busy)
        progressText_->clear();
}

bool SensitivityPanel::isBusy() const { return job_ != Job::None; }

void SensitivityPanel::setBusy(Job job, const QString& what)
{
    job_ = job;
    if (job != Job::None) {
        progress_->setValue(0);
        setStatus(what);
    }
    updateButtons();
}

void SensitivityPanel::setStatus(const QString& text, bool error)
{
    statusText_ = text;
    status_->setText(error ? QStringLiteral("<span style='color:#b3261e'>%1</span>").arg(text.toHtmlEscaped())
                           : text.toHtmlEscaped());
}

void SensitivityPanel::cancel()
{
    if (job_ != Job::None)
        runner_->cancel();
}

// ---- jobs ----------------------------------------------------------------------------------------

namespace {

// What a job needs from the form, copied so the worker never touches a widget.
struct Inputs {
    CompressionState state;
    TextSource text;
    ScoringOptions scoring;
    RecipeCalibration calibration;
};

// The evaluation tokens (reading the text on the worker thread).
std::vector<int32_t> evalTokensFor(const Inputs& in)
{
    const std::string bytes = loadText(in.text);
    std::vector<int32_t> tokens = loadTokenizer(*in.state.model)->encode(bytes, true);
    if (static_cast<int64_t>(tokens.size()) < in.scoring.context)
        fail(ErrorCode::InvalidArgument, in.text.displayName().toStdString(),
             "the text is " + std::to_string(tokens.size()) + " tokens long, shorter than one window of "
                 + std::to_string(in.scoring.context));
    return tokens;
}

QString failureText(const std::exception_ptr& e, const QString& cancelled)
{
    const JobFailure f = jobFailure(e, QObject::tr("Not enough memory; the model is unchanged."));
    return f.cancelled ? cancelled : f.message;
}

} // namespace

void SensitivityPanel::run()
{
    if (isBusy() || !document_->hasModel())
        return;
    const std::vector<std::string> names = targetNames();
    if (names.empty()) {
        setStatus(tr("No target layers."), true);
        return;
    }
    SensitivityOptions options;
    options.step = currentStep();
    options.names = names;
    options.scoring = SensitivityOptions::defaultScoring();
    options.scoring.maxWindows = windowsBox_->value();
    options.scoring.context = contextBox_->value();
    const CompressionState st = baseState();
    const CompressionState& doc = document_->state();
    const Inputs in{st, TextSource{evalFile_}, options.scoring, doc.steps.empty() ? RecipeCalibration{} : doc.calibration};
    // Before anything runs: will it fit?
    JobCheck check;
    try {
        RecipeCalibration sized = in.calibration;
        sized.windows = estimatedCalibrationWindows(in.calibration);
        check = checkJob(estimateSensitivity(st, options.step, names, options.scoring.maxWindows, options.scoring.context,
                                             options.compareLogits, sized, computeThreadCount()));
    } catch (const Error& e) {
        setStatus(QString::fromStdString(e.problem()), true);
        return;
    }
    if (!check.ok) {
        setStatus(check.refusal, true);
        return;
    }
    clearResults();
    measuredOn_ = st.model;
    measuredEval_ = evalFile_;
    measuredText_ = baseText();
    setBusy(Job::Sweep, tr("Measuring %1 on %2 layers (%3)…").arg(QString::fromStdString(options.step.badge())).arg(names.size()).arg(check.summary));
    runner_->start([this, in, options](JobContext& job) {
        try {
            job.stage(0.0, 0.03, tr("reading the text"));
            const std::vector<int32_t> tokens = evalTokensFor(in);
            const CalibrationText calib = options.step.usesCalibration() ? loadCalibration(*in.state.model, in.calibration)
                                                                           : CalibrationText{};
            job.stage(0.03, 0.97, tr("measuring"));
            auto r = std::make_shared<SensitivityResult>(measureSensitivity(
                in.state, options, tokens, calib,
                [&job, this](const LayerSensitivity& row, size_t, size_t) { job.post([this, row] { addRow(row); }); },
                &job));
            job.post([this, r] {
                result_ = *r;
                setBusy(Job::None, QString());
                refreshViews();
                setStatus(tr("Done: %1 layers in %2 s.").arg(r->rows.size()).arg(r->seconds, 0, 'f', 1));
                emit runFinished(true);
            });
        } catch (...) {
            const QString msg = failureText(std::current_exception(), tr("Cancelled; the rows measured so far are kept."));
            const bool cancelled = job.cancelled();
            job.post([this, msg, cancelled] {
                setBusy(Job::None, QString());
                setStatus(msg, !cancelled);
                emit runFinished(false);
            });
        }
    });
    runner_->setExpectedSeconds(check.seconds);
}

void SensitivityPanel::plan()
{
    if (isBusy() || !document_->hasModel())
        return;
    const std::vector<std::string> names = targetNames();
    MixedPrecisionOptions options;
    try {
        options.candidates = parseCandidates(candidatesEdit_->text().toStdString());
    } catch (const Error& e) {
        setStatus(QString::fromStdString(e.problem()), true);
        return;
    }
    if (names.empty()) {
        setStatus(tr("No target layers."), true);
        return;
    }
    // Every block linear: an empty pattern, so the recipe reads "every block linear" where it can.
    options.layers = targets_->target() == Target::AllLinears ? std::string() : exactNamesPattern(names);
    options.budget.bitsPerWeight = budgetBox_->value();
    options.metric = SensitivityMetric::Kl; // the core's default: Δnll on a few windows is noisy (see mixed_precision.h)
    options.scoring.maxWindows = windowsBox_->value();
    options.scoring.context = contextBox_->value();
    const CompressionState st = baseState();
    const CompressionState& doc = document_->state();
    const Inputs in{st, TextSource{evalFile_}, options.scoring, doc.steps.empty() ? RecipeCalibration{} : doc.calibration};
    mixed_.reset();
    plannedOn_ = st.model;
    plannedEval_ = evalFile_;
    measuredText_ = baseText();
    showPlan();
    tabs_->setCurrentIndex(3);
    setBusy(Job::Plan, tr("Planning mixed precision: %1 candidates on %2 layers…")
                           .arg(options.candidates.size())
                           .arg(names.size()));
    runner_->start([this, in, options](JobContext& job) {
        try {
            job.stage(0.0, 0.03, tr("reading the text"));
            const std::vector<int32_t> tokens = evalTokensFor(in);
            bool calibrate = false;
            for (const RecipeStep& c : options.candidates)
                calibrate = calibrate || c.usesCalibration();
            const CalibrationText calib = calibrate ? loadCalibration(*in.state.model, in.calibration) : CalibrationText{};
            job.stage(0.03, 0.97, tr("measuring the candidates"));
            auto r = std::make_shared<MixedPrecisionResult>(
                planMixedPrecision(in.state, options, tokens, calib, in.calibration, {}, &job));
            job.post([this, r] {
                mixed_ = *r;
                setBusy(Job::None, QString());
                showPlan();
                setStatus(tr("Plan ready in %1 s.").arg(r->seconds, 0, 'f', 1));
                emit planFinished(true);
            });
        } catch (...) {
            const QString msg = failureText(std::current_exception(), tr("Planning cancelled."));
            const bool cancelled = job.cancelled();
            job.post([this, msg, cancelled] {
                setBusy(Job::None, QString());
                setStatus(msg, !cancelled);
                emit planFinished(false);
            });
        }
    });
}

void SensitivityPanel::applyPlan()
{
    if (isBusy() || !mixed_)
        return;
    if (plannedOn_ != baseModel()) {
        setStatus(tr("The plan was measured on an earlier state: plan again."), true);
        emit planApplied(false);
        return;
    }
    const QString label = tr("Mixed precision %1 bits/w").arg(mixed_->plan.bitsPerWeight, 0, 'f', 2);
    setBusy(Job::Apply, tr("%1…").arg(label));
    // From the source: the recipe holds the base state's steps too. A plan made
    // on the original replaces the steps applied since (one command: Ctrl+Z
    // brings them back), it is never stacked on them.
    const int replaced = base() == Base::Original ? static_cast<int>(document_->state().steps.size()) : 0;
    replayRecipe(runner_, document_, mixed_->recipe, label, [this, label, replaced](ReplayOutcome outcome, const QString& message) {
        setBusy(Job::None, QString());
        const bool ok = outcome == ReplayOutcome::Applied;
        const QString done = replaced > 0 ? tr("%1 applied to the original model, in place of the %2 step(s) applied before "
                                               "(Ctrl+Z brings them back).")
                                                .arg(label)
                                                .arg(replaced)
                                          : tr("%1 applied (Ctrl+Z undoes it).").arg(label);
        setStatus(ok ? done : message, outcome == ReplayOutcome::Failed || outcome == ReplayOutcome::Stale);
        emit planApplied(ok);
    });
}

// ---- results -------------------------------------------------------------------------------------

void SensitivityPanel::clearResults()
{
    result_.reset();
    rows_.clear();
    mixed_.reset();
    measuredOn_.reset();
    plannedOn_.reset();
    stale_ = false;
    table_->setRowCount(0);
    bars_->clearPlot();
    heatmap_->clearPlot();
    summary_->clear();
    showPlan();
}

void SensitivityPanel::markStale()
{
    // Undo back to the measured state (or the measured text chosen again) makes the results current again.
    stale_ = (measuredOn_ && (measuredOn_ != baseModel() || measuredEval_ != evalFile_))
             || (plannedOn_ && (plannedOn_ != baseModel() || plannedEval_ != evalFile_));
    refreshViews();
    showPlan();
}

void SensitivityPanel::addRow(const LayerSensitivity& row)
{
    rows_.push_back(row);
    // Sorting moves rows as they are inserted: off while filling the new row.
    table_->setSortingEnabled(false);
    const int r = table_->rowCount();
    table_->insertRow(r);
    table_->setItem(r, ColLayer, layerItem(row.name));
    table_->setItem(r, ColStep, new QTableWidgetItem(QString::fromStdString(row.badge)));
    table_->setItem(r, ColBits, new NumberItem(row.bitsPerWeight, 3));
    table_->setItem(r, ColError, new NumberItem(row.weightError, 4));
    table_->setItem(r, ColPpl, new NumberItem(row.ppl, 4));
    table_->setItem(r, ColDeltaPpl, new NumberItem(row.deltaPpl, 4));
    table_->setItem(r, ColKl, new NumberItem(row.kl, 5));
    table_->setItem(r, ColTop1, new NumberItem(row.top1 ? std::optional<double>(100.0 * *row.top1) : std::nullopt, 1,
                                               QStringLiteral("%")));
    table_->setItem(r, ColSeconds, new NumberItem(row.seconds, 2));
    table_->setSortingEnabled(true);
    refreshViews();
}

void SensitivityPanel::refreshViews()
{
    const SensitivityMetric m = metric();
    const QString label = metricLabel(m);
    // Most sensitive first, in the table too (a header click re-sorts as the user likes).
    const int column = metricColumn(m);
    table_->sortItems(column, m == SensitivityMetric::Top1 ? Qt::AscendingOrder : Qt::DescendingOrder);
    std::vector<LayerSensitivity> sorted = rows_;
    sortBySensitivity(sorted, m);
    QStringList names;
    std::vector<double> values;
    int blocks = 0;
    for (const LayerSensitivity& r : sorted) {
        names << QString::fromStdString(r.name);
        values.push_back(r.value(m));
        blocks = std::max(blocks, r.block + 1);
    }
    if (rows_.empty()) {
        bars_->clearPlot();
        heatmap_->clearPlot();
    } else {
        bars_->setValues(names, values, label);
        std::vector<std::vector<double>> grid(static_cast<size_t>(blocks),
                                              std::vector<double>(SensitivityHeatmap::projections().size(), NAN));
        for (const LayerSensitivity& r : rows_) {
            const int p = SensitivityHeatmap::projectionIndex(QString::fromStdString(r.name));
            if (r.block >= 0 && p >= 0)
                grid[static_cast<size_t>(r.block)][static_cast<size_t>(p)] = r.value(m);
        }
        heatmap_->setValues(grid, label);
    }
    QString text;
    if (result_)
        text = tr("<b>%1</b> on %2 layers alone · base PPL %3 (%4 windows of %5, %6 tokens scored) · %7 s")
                   .arg(QString::fromStdString(result_->step.badge()).toHtmlEscaped())
                   .arg(result_->rows.size())
                   .arg(result_->base.ppl, 0, 'f', 4)
                   .arg(result_->base.windows)
                   .arg(result_->scoring.context)
                   .arg(result_->base.tokensScored)
                   .arg(result_->seconds, 0, 'f', 1);
    else if (!rows_.empty())
        text = tr("%1 layers measured so far").arg(rows_.size());
    if (!rows_.empty())
        text += tr("<br>Measured on %1.").arg(measuredText_.toHtmlEscaped());
    if (!rows_.empty() && measuredOn_ != baseModel())
        text += tr("<br><span style='color:#8a5a00'>Measured on an earlier state of the model.</span>");
    summary_->setText(text);
}

void SensitivityPanel::showPlan()
{
    planTable_->setSortingEnabled(false);
    planTable_->setRowCount(0);
    if (!mixed_) {
        planSummary_->setText(tr("Pick one quantization per layer within the budget, from the candidates' measured "
                                 "sensitivities."));
        updateButtons();
        return;
    }
    const MixedPrecisionResult& r = *mixed_;
    QString text = tr("<b>%1 bits/weight</b> (budget %2) · predicted PPL %3 · measured PPL %4 (base %5) · %6 s")
                       .arg(r.measuredBitsPerWeight.value_or(r.plan.bitsPerWeight), 0, 'f', 4)
                       .arg(r.plan.budgetBits / std::max<double>(1.0, static_cast<double>(r.plan.weights)), 0, 'f', 2)
                       .arg(r.plan.predictedPpl, 0, 'f', 4)
                       .arg(r.measuredPpl ? QString::number(*r.measuredPpl, 'f', 4) : QStringLiteral("–"))
                       .arg(r.plan.basePpl, 0, 'f', 4)
                       .arg(r.seconds, 0, 'f', 1);
    text += tr("<br>Measured on %1.").arg(measuredText_.toHtmlEscaped());
    if (plannedOn_ != baseModel())
        text += tr("<br><span style='color:#8a5a00'>Measured on an earlier state of the model: plan again to apply.</span>");
    planSummary_->setText(text);
    for (const MixedLayerChoice& l : r.plan.layers) {
        const int row = planTable_->rowCount();
        planTable_->insertRow(row);
        planTable_->setItem(row, 0, layerItem(l.name));
        planTable_->setItem(row, 1, new QTableWidgetItem(QString::fromStdString(l.badge)));
        planTable_->setItem(row, 2, new NumberItem(l.bitsPerWeight, 3));
        planTable_->setItem(row, 3, new NumberItem(l.loss, 5));
        planTable_->setItem(row, 4, new NumberItem(l.deltaPpl, 4));
    }
    planTable_->setSortingEnabled(true);
    updateButtons();
}

} // namespace ll::gui
