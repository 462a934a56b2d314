#include "compression_panel.h"

#include "analysis/compression_preview.h"
#include "block_influence_plot.h"
#include "error_curve_plot.h"
#include "format.h"
#include "histogram_plot.h"
#include "job_estimate.h"
#include "job_failure.h"
#include "job_progress.h"
#include "job_runner.h"
#include "method_form.h"
#include "model_document.h"
#include "panel_util.h"
#include "preview_plan.h"
#include "sparsity_mask_view.h"
#include "spectrum_plot.h"
#include "system_memory.h"

#include "methods/method_registry.h"
#include "pipeline/model_compression.h"
#include "recipe/step_options.h"
#include "stats/tensor_stats.h"
#include "util/error.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTextBrowser>
#include <QTimer>
#include <QVBoxLayout>

#include <chrono>
#include <new>

namespace ll::gui {

namespace {

const char* kChooseFile = "\x01choose";

} // namespace

CompressionPanel::CompressionPanel(ModelDocument* document, QWidget* parent)
    : QWidget(parent), document_(document), runner_(new JobRunner(this)), debounce_(new QTimer(this))
{
    setObjectName(QStringLiteral("compressionPanel"));
    debounce_->setSingleShot(true);
    debounce_->setInterval(350);

    actionBox_ = new QComboBox(this);
    actionBox_->addItem(tr("Quantize"), static_cast<int>(StepAction::Quantize));
    actionBox_->addItem(tr("Prune"), static_cast<int>(StepAction::Prune));
    actionBox_->addItem(tr("Low rank"), static_cast<int>(StepAction::Factorize));
    actionBox_->addItem(tr("Rotate"), static_cast<int>(StepAction::Rotate));
    actionBox_->addItem(tr("KV cache"), static_cast<int>(StepAction::KvCache));
    methodBox_ = new QComboBox(this);

    methodForm_ = new MethodForm(this);
    methodForm_->setObjectName(QStringLiteral("methodForm"));

    auto* form = new QFormLayout;
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    form->addRow(tr("Action"), actionBox_);
    form->addRow(tr("Method"), methodBox_);
    form->addRow(methodForm_);

    targets_ = new TargetSelector(this, {Target::Selection, Target::Pattern, Target::AllLinears},
                                  [this] { return document_->model(); });
    targets_->setSelectionProvider([this] { return selection_; });
    targets_->addTo(form, tr("Apply to"));

    calibBox_ = new QComboBox(this);
    calibBox_->addItem(tr("Built-in sample"), QString());
    calibBox_->addItem(tr("Choose a text file…"), QString::fromLatin1(kChooseFile));
    calibBox_->setToolTip(tr("Calibration text for the methods that need activations (GPTQ, AWQ, Wanda, "
                             "SparseGPT, ASVD, SVD-LLM) and for the output errors. One per recipe."));
    calibWindowsBox_ = new QSpinBox(this);
    calibWindowsBox_->setRange(1, 4096);
    calibWindowsBox_->setValue(64);
    calibWindowsBox_->setSuffix(tr(" windows"));
    calibWindowsBox_->setToolTip(tr("At most this many windows of 256 tokens (a shorter text gives all its windows)"));
    auto* calibRow = new QHBoxLayout;
    calibRow->addWidget(calibBox_, 1);
    calibRow->addWidget(calibWindowsBox_);
    form->addRow(tr("Calibration"), calibRow);

    outputErrorBox_ = new QCheckBox(tr("Measure the output error"), this);
    outputErrorBox_->setObjectName(QStringLiteral("outputErrorBox"));
    outputErrorBox_->setToolTip(tr("This method needs no data: it runs from the weights alone. Checked, each layer's "
                                   "output error is measured on the first %1 calibration windows (a forward pass "
                                   "through the model up to the layer).").arg(kOutputErrorWindows));
    form->addRow(QString(), outputErrorBox_);

    liveBox_ = new QCheckBox(tr("Live preview of the current tensor"), this);
    liveBox_->setChecked(true);
    previewButton_ = new QPushButton(tr("Preview"), this);
    applyButton_ = new QPushButton(tr("Apply"), this);
    applyButton_->setDefault(true);
    applyButton_->setToolTip(tr("Apply the step to the target layers (undo with Ctrl+Z)"));
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    progress_ = makeSlimProgressBar(this);
    progressText_ = new QLabel(this);
    progressText_->setObjectName(QStringLiteral("compressProgressText"));
    setSecondaryText(progressText_);
    progressText_->hide();
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(previewButton_);
    buttons->addWidget(applyButton_);
    buttons->addWidget(cancelButton_);
    buttons->addStretch(1);

    teaching_ = new QTextBrowser(this);
    teaching_->setOpenExternalLinks(false);
    teaching_->setFrameShape(QFrame::NoFrame);
    teaching_->setMinimumHeight(90);

    // The form and the explanation scroll; the buttons and the status stay in view.
    auto* formPage = new QWidget(this);
    auto* formLayout = new QVBoxLayout(formPage);
    formLayout->setContentsMargins(0, 0, 0, 0);
    formLayout->addLayout(form);
    formLayout->addWidget(liveBox_);
    formLayout->addWidget(teaching_, 1);
    auto* formScroll = new QScrollArea(this);
    formScroll->setWidget(formPage);
    formScroll->setWidgetResizable(true);
    formScroll->setFrameShape(QFrame::NoFrame);
    formScroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    auto* scroll = new QWidget(this);
    auto* leftLayout = new QVBoxLayout(scroll);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addWidget(formScroll, 1);
    leftLayout->addLayout(buttons);
    leftLayout->addWidget(progress_);
    leftLayout->addWidget(progressText_);
    leftLayout->addWidget(status_);
    scroll->setMinimumWidth(360);

    numbers_ = new QLabel(this);
    numbers_->setWordWrap(true);
    numbers_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    // A preview that needs a costly calibration pass asks first (preview_plan.h).
    askBar_ = new QFrame(this);
    askBar_->setObjectName(QStringLiteral("previewAskBar"));
    askBar_->setFrameShape(QFrame::StyledPanel);
    askLabel_ = new QLabel(askBar_);
    askLabel_->setWordWrap(true);
    askRun_ = new QPushButton(tr("Run"), askBar_);
    askSample_ = new QPushButton(askBar_);
    askSkip_ = new QPushButton(tr("Skip"), askBar_);
    auto* askButtons = new QHBoxLayout;
    askButtons->addWidget(askRun_);
    askButtons->addWidget(askSample_);
    askButtons->addWidget(askSkip_);
    askButtons->addStretch(1);
    auto* askLayout = new QVBoxLayout(askBar_);
    askLayout->setContentsMargins(8, 6, 8, 6);
    askLayout->addWidget(askLabel_);
    askLayout->addLayout(askButtons);
    askBar_->hide();
    auto* header = new QWidget(this);
    auto* headerLayout = new QVBoxLayout(header);
    headerLayout->setContentsMargins(0, 0, 0, 0);
    headerLayout->addWidget(askBar_);
    headerLayout->addWidget(numbers_);
    tabs_ = new QTabWidget(this);
    histogram_ = new HistogramPlot(tabs_);
    mask_ = new SparsityMaskView(tabs_);
    spectrum_ = new SpectrumPlot(tabs_);
    curve_ = new ErrorCurvePlot(tabs_);
    influence_ = new BlockInfluencePlot(tabs_);
    tabs_->addTab(histogram_, tr("Histogram"));
    tabs_->addTab(mask_, tr("Mask"));
    tabs_->addTab(spectrum_, tr("Spectrum"));
    tabs_->addTab(curve_, tr("Error curve"));
    tabs_->addTab(influence_, tr("Block influence"));
    layOutControlsBesideResults(this, scroll, header, tabs_, 420, 600);

    // The user choosing a method or a parameter asks for a preview (opening a model does not).
    connect(actionBox_, &QComboBox::currentIndexChanged, this, [this] {
        rebuildMethods();
        updateForm();
    });
    connect(methodBox_, &QComboBox::currentIndexChanged, this, &CompressionPanel::updateForm);
    // A choice that changes what applies (structured, an N:M pattern) changes the target controls too.
    connect(methodForm_, &MethodForm::edited, this, [this] {
        updateStructure();
        formEdited();
    });
    connect(outputErrorBox_, &QCheckBox::toggled, this, &CompressionPanel::formEdited);
    connect(targets_, &TargetSelector::changed, this, &CompressionPanel::updateTargetLabel);
    connect(calibBox_, &QComboBox::activated, this, [this](int index) {
        if (calibBox_->itemData(index).toString() != QLatin1String(kChooseFile)) {
            formEdited();
            return;
        }
        const QString path = QFileDialog::getOpenFileName(this, tr("Calibration text"), QString(),
                                                          tr("Text files (*.txt *.raw);;All files (*)"));
        if (path.isEmpty())
            calibBox_->setCurrentIndex(0);
        else
            setCalibrationFile(path);
    });
    connect(calibWindowsBox_, &QSpinBox::valueChanged, this, &CompressionPanel::formEdited);
    connect(liveBox_, &QCheckBox::toggled, this, [this](bool on) {
        if (on)
            formEdited();
    });
    connect(debounce_, &QTimer::timeout, this, [this] { runPreview(PreviewChoice::Auto); });
    connect(previewButton_, &QPushButton::clicked, this, &CompressionPanel::preview);
    connect(askRun_, &QPushButton::clicked, this, [this] { runPreview(PreviewChoice::Full); });
    connect(askSample_, &QPushButton::clicked, this, [this] { runPreview(PreviewChoice::Sample); });
    connect(askSkip_, &QPushButton::clicked, this, [this] {
        askBar_->hide();
        clearPreview(tr("Preview skipped. Apply runs the step on the target layers; Preview asks again."));
    });
    connect(applyButton_, &QPushButton::clicked, this, &CompressionPanel::apply);
    connect(cancelButton_, &QPushButton::clicked, this, &CompressionPanel::cancel);
    showJobProgress(runner_, progress_, progressText_);
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] {
        runner_->abandon();
        debounce_->stop();
        applying_ = false;
        setBusy(false, QString());
    });
    connect(document_, &ModelDocument::modelChanged, this, [this] {
        // Opening a model runs nothing: the preview waits for the user to pick a tensor or a method.
        armed_ = false;
        selection_.clear();
        askBar_->hide();
        clearPreview(document_->hasModel() ? tr("Select a layer in the tree or choose a method to preview it.") : QString());
        setStatus(QString());
        updateTargetLabel();
        updateCalibrationControls();
    });
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        // After an undo or a redo, "Applied … (Ctrl+Z undoes it)" no longer describes the model.
        if (!applying_ && statusText_.startsWith(tr("Applied")))
            setStatus(QString());
        updateCalibrationControls();
        schedulePreview(); // the current tensor may have new values
    });
    connect(document_, &ModelDocument::currentTensorChanged, this, [this] {
        if (document_->currentIsDefault())
            return; // the tensor shown after opening: not a request
        askBar_->hide();
        armed_ = true;
        schedulePreview();
    });

    rebuildMethods();
    updateForm();
    updateCalibrationControls();
    setBusy(false, QString());
}

CompressionPanel::~CompressionPanel()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's signals must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

void CompressionPanel::rebuildMethods()
{
    const auto action = static_cast<StepAction>(actionBox_->currentData().toInt());
    const QSignalBlocker block(methodBox_);
    methodBox_->clear();
    for (const MethodSpec* m : methodSpecsFor(action))
        methodBox_->addItem(QString::fromStdString(m->name), QString::fromStdString(m->id));
    methodBox_->setCurrentIndex(0);
}

void CompressionPanel::updateForm()
{
    const auto action = static_cast<StepAction>(actionBox_->currentData().toInt());
    const MethodSpec* m = findMethodSpec(action, methodBox_->currentData().toString().toStdString());
    methodForm_->setMethod(m);
    // Only the views that say something about this action: the mask for pruning, the spectrum for low rank.
    const bool blocks = action == StepAction::Prune && m && m->id == "shortgpt"; // whole blocks: no mask, no curve
    const bool slicing = action == StepAction::Prune && m && m->id == "slicegpt"; // the PCA spectrum instead
    tabs_->setTabVisible(tabs_->indexOf(mask_), action == StepAction::Prune && !blocks && !slicing);
    tabs_->setTabVisible(tabs_->indexOf(influence_), blocks);
    tabs_->setTabVisible(tabs_->indexOf(spectrum_), action == StepAction::Factorize || slicing);
    // Whole-model pruning has no per-layer curve.
    const bool wholeModel = m && !m->wholeModelScope.empty();
    tabs_->setTabVisible(tabs_->indexOf(curve_), !wholeModel);
    tabs_->setTabText(tabs_->indexOf(curve_), action == StepAction::Rotate ? tr("Kurtosis by block") : tr("Error curve"));
    if (m) {
        const MethodTeaching& t = m->teaching;
        QString html = QStringLiteral("<h3>%1</h3><p>%2</p><p><b>%3</b> %4</p><p><b>%5</b> %6</p>")
                           .arg(QString::fromStdString(m->name).toHtmlEscaped(), QString::fromStdString(t.what),
                                tr("In plain words:"), QString::fromStdString(t.formula), tr("Use it when:"),
                                QString::fromStdString(t.when));
        if (!t.citation.empty())
            html += QStringLiteral("<p><small>%1</small></p>").arg(QString::fromStdString(t.citation).toHtmlEscaped());
        if (m->needsCalibration())
            html += tr("<p><i>Needs calibration text.</i></p>");
        teaching_->setHtml(html);
    }
    updateStructure();
    formEdited();
}

void CompressionPanel::updateStructure()
{
    const bool structured = wholeModel(currentStep());
    targets_->setEnabled(!structured);
    // A rotation changes no layer's function: it has no output error to measure.
    outputErrorBox_->setVisible(methodForm_->method() && !currentStep().usesCalibration()
                                && currentStep().action != StepAction::Rotate && currentStep().action != StepAction::KvCache);
    updateTargetLabel();
}

void CompressionPanel::formEdited()
{
    askBar_->hide();
    armed_ = true;
    schedulePreview();
}

void CompressionPanel::updateTargetLabel()
{
    if (methodForm_->method() && methodForm_->method()->id == "slicegpt") {
        targets_->showNote(tr("SliceGPT rotates the whole residual stream onto its principal directions and "
                              "deletes the least used ones: every matrix and the embedding get narrower."));
        applyButton_->setEnabled(document_->model() && !applying_);
        return;
    }
    if (methodForm_->method() && methodForm_->method()->id == "shortgpt") {
        targets_->showNote(tr("ShortGPT removes the whole blocks that change their input least on the calibration "
                              "text; later blocks move up."));
        applyButton_->setEnabled(document_->model() && !applying_);
        return;
    }
    if (methodForm_->params().contains("structured")) {
        targets_->showNote(tr("Structured pruning removes the same share of units from every block."));
        return;
    }
    if (static_cast<StepAction>(actionBox_->currentData().toInt()) == StepAction::Rotate) {
        targets_->showNote(tr("A rotation changes every weight of the model: the norms fold into the linears, "
                              "the residual stream and the value heads are rotated. Apply it first."));
        applyButton_->setEnabled(document_->model() && !applying_);
        return;
    }
    if (static_cast<StepAction>(actionBox_->currentData().toInt()) == StepAction::KvCache) {
        targets_->showNote(tr("Every block's key/value cache, at run time: evaluation and generation read it "
                              "quantized; the weights do not change. The preview shows the selected layer's block."));
        applyButton_->setEnabled(document_->model() && !applying_);
        return;
    }
    const std::vector<std::string> names = targets_->refreshLabel();
    applyButton_->setEnabled(!names.empty() && !applying_);
}

void CompressionPanel::updateCalibrationControls()
{
    const CompressionState& st = document_->state();
    const bool fixed = !st.steps.empty();
    if (fixed) {
        // One calibration text per recipe: show the one the steps used.
        const QSignalBlocker b1(calibBox_), b2(calibWindowsBox_);
        if (st.calibration.isBuiltin())
            calibBox_->setCurrentIndex(0);
        else
            setCalibrationFile(QString::fromStdString(st.calibration.text));
        calibWindowsBox_->setValue(static_cast<int>(st.calibration.windows));
    }
    calibBox_->setEnabled(!fixed);
    calibWindowsBox_->setEnabled(!fixed);
    const QString tip = fixed ? tr("The recipe's steps calibrated on this text; undo them all to choose another.")
                              : tr("Calibration text for the methods that need activations and for the output errors.");
    calibBox_->setToolTip(tip);
}

void CompressionPanel::setSelection(const std::vector<std::string>& logicalNames)
{
    selection_ = logicalNames;
    updateTargetLabel();
}

std::vector<std::string> CompressionPanel::targetNames() const { return targets_->names(); }

bool CompressionPanel::wholeModel(const RecipeStep& step)
{
    const MethodSpec* m = findMethodSpec(step.action, step.method());
    return step.action == StepAction::Rotate || step.action == StepAction::KvCache || step.params.contains("structured")
           || (m && !m->wholeModelScope.empty());
}

RecipeStep CompressionPanel::currentStep() const
{
    RecipeStep s;
    s.action = static_cast<StepAction>(actionBox_->currentData().toInt());
    s.params = methodForm_->params();
    s.params["method"] = methodBox_->currentData().toString().toStdString();
    if (wholeModel(s))
        return s; // every block: no pattern
    // Data-free methods measure their output error only when asked.
    if (outputErrorBox_->isChecked() && !s.usesCalibration())
        s.params["output-error"] = true;
    s.layers = targets_->layersPattern();
    return s;
}

void CompressionPanel::setAction(StepAction action)
{
    actionBox_->setCurrentIndex(actionBox_->findData(static_cast<int>(action)));
}

void CompressionPanel::setMethod(const QString& id)
{
    methodBox_->setCurrentIndex(methodBox_->findData(id));
}

void CompressionPanel::setTarget(Target target, const QString& pattern) { targets_->setTarget(target, pattern); }

void CompressionPanel::setParam(const QString& key, const QVariant& value)
{
    nlohmann::json v;
    switch (value.typeId()) {
    case QMetaType::Bool: v = value.toBool(); break;
    case QMetaType::Int: case QMetaType::LongLong: v = value.toLongLong(); break;
    case QMetaType::Double: v = value.toDouble(); break;
    default: v = value.toString().toStdString(); break;
    }
    methodForm_->setValue(canonicalKey(key.toStdString()), v);
}

void CompressionPanel::setCalibrationFile(const QString& path)
{
    if (path.isEmpty()) {
        calibBox_->setCurrentIndex(0);
        return;
    }
    int index = calibBox_->findData(path);
    if (index < 0) {
        calibBox_->insertItem(calibBox_->count() - 1, QFileInfo(path).fileName(), path);
        index = calibBox_->findData(path);
        calibBox_->setItemData(index, path, Qt::ToolTipRole);
    }
    calibBox_->setCurrentIndex(index);
    schedulePreview();
}

void CompressionPanel::setCalibrationWindows(int windows)
{
    calibWindowsBox_->setValue(windows);
}

RecipeCalibration CompressionPanel::calibration() const
{
    if (!document_->state().steps.empty())
        return document_->state().calibration;
    RecipeCalibration c;
    const QString path = calibBox_->currentData().toString();
    c.text = path.isEmpty() || path == QLatin1String(kChooseFile) ? std::string("builtin") : path.toStdString();
    c.windows = calibWindowsBox_->value();
    return c;
}

void CompressionPanel::setLivePreview(bool on)
{
    liveBox_->setChecked(on);
}

void CompressionPanel::setMeasureOutputError(bool on)
{
    outputErrorBox_->setChecked(on);
}

void CompressionPanel::schedulePreview()
{
    if (armed_ && liveBox_->isChecked() && !applying_ && document_->hasModel() && isVisible())
        debounce_->start();
}

bool CompressionPanel::isBusy() const
{
    return runner_->isRunning();
}

bool CompressionPanel::isPreviewRunning() const
{
    return runner_->isRunning() && !applying_;
}

bool CompressionPanel::isAsking() const
{
    return !askBar_->isHidden();
}

bool CompressionPanel::isPreviewPending() const
{
    return debounce_->isActive();
}

void CompressionPanel::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    // Changes made while hidden scheduled nothing: preview what is selected now.
    if (!preview_)
        schedulePreview();
}

void CompressionPanel::previewFull()
{
    runPreview(PreviewChoice::Full);
}

void CompressionPanel::previewSample()
{
    runPreview(PreviewChoice::Sample);
}

QString CompressionPanel::askText() const
{
    return askLabel_->text();
}

QString CompressionPanel::statusText() const
{
    return statusText_;
}

void CompressionPanel::setStatus(const QString& text, bool error)
{
    statusText_ = text;
    status_->setText(error ? QStringLiteral("<span style='color:#b3261e'>%1</span>").arg(text.toHtmlEscaped())
                           : text.toHtmlEscaped());
}

void CompressionPanel::setBusy(bool busy, const QString& what)
{
    progress_->setVisible(busy);
    progress_->setValue(0);
    progressText_->setVisible(busy);
    progressText_->clear();
    cancelButton_->setEnabled(busy);
    // A preview never blocks the buttons: Preview restarts it, Apply replaces it.
    previewButton_->setEnabled(!applying_);
    applyButton_->setEnabled(!applying_ && !targetNames().empty());
    if (!busy)
        previewCost_.reset();
    if (busy)
        setStatus(what);
}

void CompressionPanel::cancel()
{
    debounce_->stop();
    if (runner_->isRunning())
        runner_->cancel();
}

void CompressionPanel::preview()
{
    armed_ = true;
    runPreview(PreviewChoice::Auto);
}

void CompressionPanel::runPreview(PreviewChoice choice)
{
    debounce_->stop();
    askBar_->hide();
    if (applying_)
        return;
    const LogicalTensor* t = document_->currentLogical();
    if (!t || !isLinear(t->role) || t->isBias || t->block < 0) {
        clearPreview(tr("Select a linear weight inside a block (q, k, v, o, gate, up, down) to preview."));
        return;
    }
    RecipeStep step = currentStep();
    try {
        step.validate();
    } catch (const Error& e) {
        clearPreview(QString::fromStdString(e.problem()));
        return;
    }
    const CompressionState state = document_->state();
    const RecipeCalibration calib = calibration();
    const std::string tensor = t->logicalName;
    // A preview being replaced gives its memory back.
    const double reusable = isPreviewRunning() && previewCost_ ? previewCost_->workingBytes() : 0.0;
    PreviewPlan plan;
    try {
        plan = planPreview(state, step, tensor, calib, choice, reusable);
    } catch (const Error& e) {
        clearPreview(QString::fromStdString(e.problem()));
        return;
    }
    if (plan.kind == PreviewPlan::Kind::Ask) {
        askLabel_->setText(plan.question);
        askRun_->setText(tr("Run"));
        askSample_->setText(tr("Run on %1 windows (%2)").arg(std::min(plan.windows, kPreviewSampleWindows)).arg(estimateSummary(plan.sampleCost)));
        askSample_->setVisible(plan.windows > kPreviewSampleWindows);
        askBar_->show();
        clearPreview(QString()); // what was shown is not of this step
        setStatus(tr("The preview waits for your choice: a calibration pass on this model takes a while."));
        return;
    }
    if (plan.kind == PreviewPlan::Kind::Refuse) {
        clearPreview(QString());
        setStatus(plan.refusal, true);
        return;
    }
    previewCost_ = plan.cost;
    const bool calibrationPass = plan.calibrationPass;
    const int64_t windows = plan.windows;
    const QString note = plan.note;
    setBusy(true, tr("Previewing %1 on %2 (%3)…")
                      .arg(QString::fromStdString(step.badge()), QString::fromStdString(tensor), estimateSummary(plan.cost)));
    runner_->start([this, state, step, calib, tensor, calibrationPass, windows, note](JobContext& job) {
        try {
            // Data-free previews need no text: the calibration file is not even read.
            CalibrationText text;
            if (calibrationPass) {
                job.stage(0.0, 0.1, tr("tokenizing"));
                text = loadCalibrationFor(*state.model, calib, std::span<const RecipeStep>(&step, 1));
                text.options.windows = std::min(text.options.windows, windows);
            }
            job.stage(calibrationPass ? 0.1 : 0.0, calibrationPass ? 0.9 : 1.0, tr("previewing"));
            auto r = std::make_shared<PreviewResult>(computePreview(state, step, tensor, text, &job));
            if (!note.isEmpty())
                r->note = r->note.empty() ? note.toStdString() : r->note + ' ' + note.toStdString();
            job.post([this, r] {
                setBusy(false, QString());
                showPreview(*r);
            });
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory for the preview."));
            const QString msg = f.cancelled ? tr("Preview cancelled.") : f.message;
            job.post([this, msg, err = !f.cancelled] {
                setBusy(false, QString());
                setStatus(msg, err);
            });
        }
    });
    runner_->setExpectedSeconds(plan.cost.seconds(machineGflops()));
}

void CompressionPanel::apply()
{
    debounce_->stop();
    const std::vector<std::string> names = targetNames();
    RecipeStep step = currentStep();
    const bool structured = wholeModel(step);
    if (names.empty() && !structured) {
        setStatus(tr("Nothing to apply to: select layers in the tree or give a pattern."), true);
        return;
    }
    try {
        step.validate();
    } catch (const Error& e) {
        setStatus(QString::fromStdString(e.problem()), true);
        return;
    }
    const CompressionState state = document_->state();
    const RecipeCalibration calib = calibration();
    const QString label = structured ? QString::fromStdString(step.badge())
                          : names.size() == 1
                              ? tr("%1 on %2").arg(QString::fromStdString(step.badge()), QString::fromStdString(names.front()))
                              : tr("%1 on %2 layers").arg(QString::fromStdString(step.badge())).arg(names.size());
    // Before anything runs: will it fit? A preview it replaces gives its memory back.
    QString estimate;
    double expected = 0.0;
    if (!structured) {
        RecipeCalibration sized = calib;
        sized.windows = estimatedCalibrationWindows(calib);
        const double reusable = isPreviewRunning() && previewCost_ ? previewCost_->workingBytes() : 0.0;
        JobCheck check;
        try {
            check = checkJob(estimateStep(state, step, names, sized, computeThreadCount()), reusable);
        } catch (const Error& e) {
            setStatus(QString::fromStdString(e.problem()), true);
            return;
        }
        if (!check.ok) {
            setStatus(check.refusal, true);
            emit applied(false);
            return;
        }
        estimate = tr(" (%1)").arg(check.summary);
        expected = check.seconds;
    }
    askBar_->hide();
    applying_ = true;
    setBusy(true, tr("Applying %1%2…").arg(label, estimate));
    runner_->start([this, state, step, calib, label](JobContext& job) {
        auto finish = [this, &job](const QString& msg, bool ok) {
            job.post([this, msg, ok] {
                applying_ = false;
                setBusy(false, QString());
                setStatus(msg, !ok);
                emit applied(false);
            });
        };
        try {
            const auto started = std::chrono::steady_clock::now();
            // A data-free step reads no text (unless it measures its output error): nothing to tokenize.
            CalibrationText text;
            text.recipe = calib;
            text.name = calib.isBuiltin() ? std::string("builtin") : calib.text;
            if (step.usesCalibration() || JsonParams(step.params).flag("output-error")) {
                job.stage(0.0, 0.05, tr("tokenizing the calibration text"));
                text = loadCalibrationFor(*state.model, calib, std::span<const RecipeStep>(&step, 1));
            }
            job.stage(0.05, 0.95, tr("applying"));
            auto out = std::make_shared<StepOutcome>(applyStep(state, step, text, &job));
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            job.post([this, out, label, seconds, base = state.model] {
                applying_ = false;
                setBusy(false, QString());
                if (document_->model() != base) {
                    setStatus(tr("The model changed while the step ran; nothing was applied."), true);
                    emit applied(false);
                    return;
                }
                QStringList touched;
                for (const std::string& n : out->touched)
                    touched << QString::fromStdString(n);
                document_->pushState(std::move(out->state), label, touched);
                setStatus(tr("Applied %1 in %2 (Ctrl+Z undoes it).").arg(label, formatSeconds(seconds)));
                emit applied(true);
            });
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory to apply the step; the model is unchanged."));
            finish(f.cancelled ? tr("Cancelled: the model is unchanged.") : f.message, f.cancelled);
        }
    });
    runner_->setExpectedSeconds(expected);
}

void CompressionPanel::clearPreview(const QString& why)
{
    preview_.reset();
    histogram_->clearPlot();
    mask_->clear();
    spectrum_->clearPlot();
    curve_->clearCurves();
    influence_->clearPlot();
    numbers_->setText(why);
}

void CompressionPanel::showPreview(const PreviewResult& r)
{
    preview_ = std::make_unique<PreviewResult>(r);
    StatsOptions so;
    so.bins = kPreviewBins;
    histogram_->showStats(computeStats(r.before, so));
    // After an Apply on this layer, "before" is the original weights: the label says so.
    histogram_->showOverlayValues(r.after, tr("after"), r.beforeIsSource ? tr("original") : tr("before"));
    if (!r.removedAsZeros.empty()) // structured: which rows / columns go
        mask_->setWeights(r.removedAsZeros, r.rows, r.cols);
    else
        mask_->setWeights(r.after, r.rowsAfter, r.colsAfter);
    mask_->setPattern(r.nm);
    if (!r.singularValues.empty())
        spectrum_->showSpectrum(std::span<const double>(r.singularValues), r.rank);
    else
        spectrum_->clearPlot();
    if (!r.blockInfluence.empty())
        influence_->showInfluence(r.blockInfluence, r.removedBlocks);
    else
        influence_->clearPlot();
    curve_->clearCurves();
    if (!r.curve.empty()) {
        curve_->setXLabel(QString::fromStdString(r.curveLabel));
        curve_->setYLabel(QString::fromStdString(r.curveYLabel));
        if (r.action == StepAction::Rotate)
            curve_->setTitle(tr("Kurtosis of this linear in every block, before and after"));
        curve_->setSeriesNames(QString::fromStdString(r.curveSeries.first), QString::fromStdString(r.curveSeries.second));
        curve_->addCurve(QString(), r.curve);
        if (r.curveCurrent)
            curve_->setCurrent(*r.curveCurrent);
    }
    QStringList parts;
    parts << QStringLiteral("<b>%1</b> on <tt>%2</tt>").arg(QString::fromStdString(r.badge).toHtmlEscaped(),
                                                            QString::fromStdString(r.tensor).toHtmlEscaped());
    if (r.record.bitsPerWeight)
        parts << tr("%1 bits/weight").arg(*r.record.bitsPerWeight, 0, 'f', 3);
    if (r.record.weightError && r.action != StepAction::KvCache) // the KV preview's note gives its errors
        parts << tr("weight error %1").arg(*r.record.weightError, 0, 'f', 4);
    if (r.record.outputError)
        parts << tr("output error %1").arg(*r.record.outputError, 0, 'f', 4);
    if (r.record.sparsity > 0.0)
        parts << tr("%1 % zeros").arg(100.0 * r.record.sparsity, 0, 'f', 1);
    if (r.rank > 0 && r.action == StepAction::Factorize) // SliceGPT's rank is the hidden size kept (its note says so)
        parts << tr("rank %1 (%2 → %3 parameters)")
                     .arg(r.rank)
                     .arg(r.rows * r.cols)
                     .arg(r.rank * (r.rows + r.cols));
    if ((r.rowsAfter != r.rows || r.colsAfter != r.cols) && r.blockInfluence.empty())
        parts << tr("shape %1×%2 → %3×%4").arg(r.rows).arg(r.cols).arg(r.rowsAfter).arg(r.colsAfter);
    QString text = parts.join(QStringLiteral(" · "));
    if (!r.note.empty())
        text += QStringLiteral("<br><i>%1</i>").arg(QString::fromStdString(r.note).toHtmlEscaped());
    numbers_->setText(text);
    // Show the view that matters for this kind of step.
    tabs_->setCurrentWidget(!r.blockInfluence.empty()           ? static_cast<QWidget*>(influence_)
                            : r.action == StepAction::Factorize || !r.singularValues.empty() ? static_cast<QWidget*>(spectrum_)
                            : r.action == StepAction::Prune    ? static_cast<QWidget*>(mask_)
                            : r.action == StepAction::KvCache  ? static_cast<QWidget*>(curve_) // KV error against bits
                                                               : static_cast<QWidget*>(histogram_));
    setStatus(tr("Preview ready (%1 s). Apply to change the model.").arg(r.seconds, 0, 'f', 2));
    emit previewReady();
}

} // namespace ll::gui
