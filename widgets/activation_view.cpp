#include "activation_view.h"

#include "activation_plot.h"
#include "analysis/engine_cache.h"
#include "format.h"
#include "job_failure.h"
#include "job_progress.h"
#include "job_runner.h"
#include "model_document.h"
#include "panel_util.h"

#include "calib/calibration.h"
#include "util/error.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <new>

namespace ll::gui {

namespace {
const char* kBasisKey = "activations/basis";
const char* kKKey = "activations/k";
const char* kWindowsKey = "activations/windows";
const char* kLogKey = "activations/logY";
constexpr int kMaxListed = 8;

QString basisName(OutlierBasis b)
{
    switch (b) {
    case OutlierBasis::MaxAbs: return QObject::tr("max |x|");
    case OutlierBasis::Rms: return QObject::tr("RMS");
    case OutlierBasis::Contribution: return QObject::tr("‖W[:,j]‖·RMS");
    }
    return {};
}

QString ratioText(double r)
{
    return QString::number(r, 'f', r < 10 ? 1 : 0);
}

// Which linears read an input.
QString readers(Role input, bool gated)
{
    switch (input) {
    case Role::AttnQ: return QObject::tr("q, k and v");
    case Role::AttnO: return QObject::tr("o");
    case Role::MlpUp: return gated ? QObject::tr("gate and up") : QObject::tr("up");
    case Role::MlpDown: return QObject::tr("down");
    default: return {};
    }
}
} // namespace

ActivationView::ActivationView(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent)
    : QWidget(parent), document_(document), engines_(std::move(engines)), runner_(new JobRunner(this))
{
    setObjectName(QStringLiteral("activationView"));
    QSettings settings;
    textBox_ = new QComboBox(this);
    textBox_->setObjectName(QStringLiteral("activationTextBox"));
    textBox_->addItem(QString(), QStringLiteral("eval"));
    textBox_->addItem(tr(kBuiltinSampleName), QStringLiteral("builtin"));
    textBox_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    textBox_->setMinimumContentsLength(14);
    textBox_->setToolTip(tr("The text whose first windows are run through the model"));
    windowsBox_ = new QSpinBox(this);
    windowsBox_->setObjectName(QStringLiteral("activationWindowsBox"));
    windowsBox_->setRange(1, 4096);
    windowsBox_->setValue(settings.value(QLatin1String(kWindowsKey), 8).toInt());
    windowsBox_->setToolTip(tr("Windows of the text to run (fewer if the text is shorter)"));
    contextBox_ = new QSpinBox(this);
    contextBox_->setObjectName(QStringLiteral("activationContextBox"));
    contextBox_->setRange(2, 1 << 20);
    contextBox_->setSingleStep(64);
    contextBox_->setValue(256);
    contextBox_->setSuffix(tr(" tokens"));
    contextBox_->setToolTip(tr("Tokens per window"));
    captureButton_ = new QPushButton(tr("Capture"), this);
    captureButton_->setObjectName(QStringLiteral("activationCaptureButton"));
    captureButton_->setToolTip(tr("Run the windows through the model and record the input statistics of every linear layer"));
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    cancelButton_->setObjectName(QStringLiteral("activationCancelButton"));
    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    progress_->setTextVisible(true);
    progress_->setFormat(QString());
    progress_->setMaximumWidth(fontMetrics().horizontalAdvance(QStringLiteral("preparing the engine 100 %")) + 40);
    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("activationStatus"));
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    status_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);

    basisBox_ = new QComboBox(this);
    basisBox_->setObjectName(QStringLiteral("activationBasisBox"));
    basisBox_->addItem(tr("max |x|"), static_cast<int>(OutlierBasis::MaxAbs));
    basisBox_->setItemData(0, tr("Largest |activation| per channel over the tokens (SmoothQuant)"), Qt::ToolTipRole);
    basisBox_->addItem(tr("RMS of x"), static_cast<int>(OutlierBasis::Rms));
    basisBox_->setItemData(1, tr("Root mean square of each channel's activations"), Qt::ToolTipRole);
    basisBox_->addItem(tr("‖W[:,j]‖·RMS"), static_cast<int>(OutlierBasis::Contribution));
    basisBox_->setItemData(2, tr("The channel's contribution to the layer's output: norm of the weight column "
                                 "times the RMS of the activation (weight and activation side together)"),
                           Qt::ToolTipRole);
    basisBox_->setCurrentIndex(std::clamp(settings.value(QLatin1String(kBasisKey), 0).toInt(), 0, 2));
    kBox_ = new QDoubleSpinBox(this);
    kBox_->setObjectName(QStringLiteral("activationKBox"));
    kBox_->setRange(1.0, 1000.0);
    kBox_->setDecimals(1);
    kBox_->setSingleStep(0.5);
    kBox_->setValue(settings.value(QLatin1String(kKKey), 5.0).toDouble());
    kBox_->setSuffix(tr(" × median"));
    kBox_->setToolTip(tr("k: a channel is an outlier when its value exceeds k times the median over the channels"));
    logYBox_ = new QCheckBox(tr("Log y"), this);
    logYBox_->setObjectName(QStringLiteral("activationLogY"));
    logYBox_->setChecked(settings.value(QLatin1String(kLogKey), false).toBool());

    summary_ = new QLabel(this);
    summary_->setObjectName(QStringLiteral("activationSummary"));
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    plot_ = new ActivationPlot(this);
    plot_->setLogY(logYBox_->isChecked());
    table_ = new QTableWidget(0, 4, this);
    table_->setObjectName(QStringLiteral("activationOutliers"));
    table_->setHorizontalHeaderLabels({tr("Channel"), tr("max |x|"), tr("RMS"), tr("× median")});
    table_->verticalHeader()->setVisible(false);
    table_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 6);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setAlternatingRowColors(true);
    table_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);

    auto* captureRow = new QHBoxLayout;
    captureRow->addWidget(new QLabel(tr("Text"), this));
    captureRow->addWidget(textBox_, 2);
    captureRow->addSpacing(6);
    captureRow->addWidget(new QLabel(tr("Windows"), this));
    captureRow->addWidget(windowsBox_);
    captureRow->addWidget(new QLabel(tr("of"), this));
    captureRow->addWidget(contextBox_);
    captureRow->addSpacing(6);
    captureRow->addWidget(captureButton_);
    captureRow->addWidget(cancelButton_);
    captureRow->addWidget(progress_, 1);
    captureRow->addWidget(status_, 2);

    layerLabel_ = new QLabel(this);
    layerLabel_->setObjectName(QStringLiteral("activationLayer"));
    layerLabel_->setTextFormat(Qt::RichText);
    layerLabel_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    auto* outlierRow = new QHBoxLayout;
    outlierRow->addWidget(layerLabel_, 1);
    outlierRow->addSpacing(10);
    outlierRow->addWidget(new QLabel(tr("Outliers by"), this));
    outlierRow->addWidget(basisBox_);
    outlierRow->addWidget(new QLabel(tr("above"), this));
    outlierRow->addWidget(kBox_);
    outlierRow->addSpacing(10);
    outlierRow->addWidget(logYBox_);

    // Right of the plot: the sentence, then the channels it names.
    auto* side = new QWidget(this);
    auto* sideLayout = new QVBoxLayout(side);
    sideLayout->setContentsMargins(0, 0, 0, 0);
    sideLayout->setSpacing(4);
    sideLayout->addWidget(summary_);
    sideLayout->addWidget(table_, 1);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(plot_);
    split->addWidget(side);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 0);
    split->setChildrenCollapsible(false);
    const int tableWidth = fontMetrics().horizontalAdvance(QStringLiteral("Channel  max |x|  0.00000  × median ")) + 30;
    table_->setMinimumWidth(tableWidth * 3 / 4);
    split->setSizes({4 * tableWidth, tableWidth});

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->setSpacing(4);
    layout->addLayout(captureRow);
    layout->addLayout(outlierRow);
    layout->addWidget(split, 1);

    connect(captureButton_, &QPushButton::clicked, this, &ActivationView::capture);
    connect(cancelButton_, &QPushButton::clicked, this, &ActivationView::cancel);
    connect(basisBox_, &QComboBox::currentIndexChanged, this, [this] {
        QSettings().setValue(QLatin1String(kBasisKey), basisBox_->currentIndex());
        refresh();
    });
    connect(kBox_, &QDoubleSpinBox::valueChanged, this, [this] {
        QSettings().setValue(QLatin1String(kKKey), kBox_->value());
        refresh();
    });
    connect(logYBox_, &QCheckBox::toggled, this, [this](bool on) {
        QSettings().setValue(QLatin1String(kLogKey), on);
        plot_->setLogY(on);
    });
    connect(windowsBox_, &QSpinBox::valueChanged, this,
            [](int v) { QSettings().setValue(QLatin1String(kWindowsKey), v); });
    showJobProgress(runner_, progress_);
    connect(runner_, &JobRunner::runningChanged, this, [this](bool running) {
        updateEnabled();
        emit busyChanged(running);
    });
    connect(runner_, &JobRunner::finished, this, [this] {
        updateEnabled();
        emit captureFinished();
    });
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] {
        runner_->abandon();
        capture_.reset(); // statistics belong to the model they came from
        setStatus(QString());
    });
    connect(document_, &ModelDocument::modelChanged, this, [this] {
        const auto model = document_->model();
        const int maxCtx = model && model->config.maxPositions > 1
                               ? static_cast<int>(std::min<int64_t>(model->config.maxPositions, 1 << 20))
                               : (1 << 20);
        contextBox_->setMaximum(maxCtx);
        updateEnabled();
        refresh();
    });
    connect(document_, &ModelDocument::currentTensorChanged, this, &ActivationView::refresh);
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        // Inputs of later layers change with every edit: capture again.
        runner_->abandon();
        capture_.reset();
        setStatus(tr("The model was edited: capture again to see its activations."));
        updateEnabled();
        refresh();
    });
    evaluationTextChanged();
    updateEnabled();
    refresh();
}

ActivationView::~ActivationView()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's runningChanged/finished must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

void ActivationView::setEvaluationTextProvider(std::function<TextSource()> provider)
{
    evalText_ = std::move(provider);
    evaluationTextChanged();
}

void ActivationView::evaluationTextChanged()
{
    const TextSource eval = evalText_ ? evalText_() : TextSource{};
    textBox_->setItemText(0, tr("Evaluation text (%1)").arg(eval.isBuiltin() ? tr("built-in sample") : eval.displayName()));
}

TextSource ActivationView::chosenText() const
{
    if (textBox_->currentData().toString() == QLatin1String("eval") && evalText_)
        return evalText_();
    return {};
}

bool ActivationView::isBusy() const
{
    return runner_->isRunning();
}

void ActivationView::capture()
{
    const auto model = document_->model();
    if (!model) {
        setStatus(tr("No model is open."), true);
        return;
    }
    ActivationCaptureRequest request;
    request.model = model;
    request.text = chosenText();
    request.context = contextBox_->value();
    request.windows = windowsBox_->value();
    const std::shared_ptr<EngineCache> engines = engines_;
    progress_->setValue(0);
    progress_->setFormat(tr("starting"));
    setStatus(QString());
    runner_->start([this, request, engines](JobContext& job) {
        QString error;
        bool cancelled = false;
        std::shared_ptr<const ActivationCapture> result;
        try {
            job.stage(0.0, 0.2, tr("preparing the engine"));
            const auto engine = engines->get(request.model, &job);
            job.stage(0.2, 0.8, tr("capturing"));
            result = std::make_shared<const ActivationCapture>(captureActivations(request, *engine, &job));
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory for the capture."));
            cancelled = f.cancelled;
            error = f.message;
        }
        cancelled = cancelled || job.cancelled();
        job.post([this, result, error, cancelled] {
            progress_->setValue(0);
            progress_->setFormat(QString());
            if (cancelled) {
                setStatus(capture_ ? tr("Cancelled; the previous capture is kept.") : tr("Cancelled."));
            } else if (!error.isEmpty()) {
                setStatus(error, true);
            } else {
                capture_ = result;
                const ActivationCaptureRequest& req = result->request;
                const QString source = result->syntheticTokens ? tr("pseudo-random ids (no tokenizer)")
                                       : req.text.isBuiltin()  ? tr("the built-in sample")
                                                               : req.text.displayName();
                setStatus(tr("%1 × %2 tokens of %3 · %4")
                              .arg(result->windows)
                              .arg(req.context)
                              .arg(source, formatSeconds(result->seconds)));
                refresh();
            }
        });
    });
    updateEnabled();
}

void ActivationView::cancel()
{
    if (!runner_->isRunning())
        return;
    runner_->cancel();
    setStatus(tr("Cancelling…"));
    updateEnabled();
}

void ActivationView::setStatus(const QString& text, bool error)
{
    status_->setText(text);
    status_->setToolTip(text);
    status_->setStyleSheet(error ? QStringLiteral("color: #b3261e;") : QString());
}

QString ActivationView::statusText() const
{
    return status_->text();
}

QString ActivationView::summaryText() const
{
    return summary_->text();
}

void ActivationView::updateEnabled()
{
    const bool running = runner_->isRunning();
    captureButton_->setEnabled(!running && document_->hasModel());
    cancelButton_->setEnabled(running && !runner_->isCancelling());
    progress_->setVisible(running);
    for (QWidget* w : std::initializer_list<QWidget*>{textBox_, windowsBox_, contextBox_})
        w->setEnabled(!running);
}

void ActivationView::refresh()
{
    outliers_ = {};
    shownBlock_ = -1;
    table_->setRowCount(0);
    summary_->clear();
    summary_->setStyleSheet(QString());
    const auto model = document_->model();
    const LogicalTensor* t = document_->currentLogical();
    auto message = [this](const QString& title, const QString& text) {
        layerLabel_->setText(QStringLiteral("<b>%1</b>").arg(title.toHtmlEscaped()));
        plot_->showMessage(text);
        emit shown();
    };
    if (!model)
        return message(tr("Activations"), tr("Open a model to see the inputs of its linear layers."));
    if (!t || !isLinear(t->role) || t->isBias)
        return message(tr("Activations"), tr("Select a linear layer (q, k, v, o, gate, up, down) in the model tree."));
    const QString name = QString::fromStdString(t->logicalName);
    if (t->block < 0)
        return message(tr("Input of %1").arg(name),
                       tr("The engine records the inputs of the layers inside the blocks;\n"
                          "the LM head's input (the final norm's output) is not recorded."));
    if (!capture_) {
        const TextSource text = chosenText();
        const QString source = model->config.synthetic ? tr("pseudo-random tokens (the demo has no tokenizer)")
                               : text.isBuiltin()       ? tr("the built-in sample")
                                                        : text.displayName();
        return message(tr("Input of %1").arg(name),
                       tr("Press Capture to run %1 windows of %2 through the model\n"
                          "and record the input of every linear layer (kept for this model).")
                           .arg(windowsBox_->value())
                           .arg(source));
    }
    const ChannelStats* stats = capture_->inputOf(t->block, t->role);
    if (!stats || stats->maxAbs.empty())
        return message(tr("Input of %1").arg(name), tr("No statistics were recorded for this layer's input."));

    const Role input = inputRoleOf(t->role);
    const bool gated = model->find(t->block, Role::MlpGate) != nullptr;
    const int64_t n = static_cast<int64_t>(stats->maxAbs.size());
    const auto basis = static_cast<OutlierBasis>(basisBox_->currentData().toInt());
    const std::vector<float>* norms = capture_->columnNormsOf(t->block, t->role);
    std::vector<float> contribution;
    if (norms && static_cast<int64_t>(norms->size()) == n) {
        contribution.resize(static_cast<size_t>(n));
        for (size_t j = 0; j < contribution.size(); ++j)
            contribution[j] = (*norms)[j] * stats->rms[j];
    }
    const std::vector<float>& series = basis == OutlierBasis::MaxAbs ? stats->maxAbs
                                       : basis == OutlierBasis::Rms  ? stats->rms
                                                                     : contribution;
    if (series.empty())
        return message(tr("Input of %1").arg(name), tr("This layer's weights are not available to the engine."));
    const double k = kBox_->value();
    outliers_ = findOutlierChannels(series, k);
    shownBlock_ = t->block;
    const QString what = basisName(basis);
    layerLabel_->setText(tr("<b>Input of %1</b> &nbsp;<span style=\"color:#777\">read by %2 · %3 channels</span>")
                             .arg(name.toHtmlEscaped(), readers(input, gated), formatExact(n)));
    plot_->showChannels(*stats, contribution.empty() ? nullptr : &contribution, basis, k, outliers_);

    // The sentence: which channels, how far above the median.
    const auto& ch = outliers_.channels;
    const QString kText = QString::number(k, 'g', 4);
    QString text;
    if (!(outliers_.median > 0)) {
        text = tr("The median %1 is 0: no ratio to compare with.").arg(what);
    } else if (ch.empty()) {
        text = tr("No channel has %1 above %2× the median (largest: channel %3 at %4×).")
                   .arg(what, kText)
                   .arg(outliers_.largestChannel)
                   .arg(ratioText(outliers_.largestRatio));
    } else {
        const QString hiText = ratioText(outliers_.ratios.front()), loText = ratioText(outliers_.ratios.back());
        const QString range = hiText == loText ? hiText : loText + QStringLiteral("–") + hiText;
        if (ch.size() == 1) {
            text = tr("Channel %1 has %2 %3× the median.").arg(ch[0]).arg(what, hiText);
        } else if (static_cast<int>(ch.size()) <= kMaxListed) {
            QStringList list;
            for (int64_t c : ch)
                list << QString::number(c);
            text = tr("Channels %1 have %2 %3× the median.").arg(list.join(QStringLiteral(", ")), what, range);
        } else {
            QStringList list;
            for (int i = 0; i < 5; ++i)
                list << QString::number(ch[static_cast<size_t>(i)]);
            text = tr("%1 channels have %2 above %3× the median (up to %4×): %5, …")
                       .arg(ch.size())
                       .arg(what, kText, hiText, list.join(QStringLiteral(", ")));
        }
        summary_->setStyleSheet(QStringLiteral("color: #b3261e; font-weight: bold;"));
    }
    summary_->setText(text);

    table_->setRowCount(static_cast<int>(ch.size()));
    for (int r = 0; r < static_cast<int>(ch.size()); ++r) {
        const size_t c = static_cast<size_t>(ch[static_cast<size_t>(r)]);
        const QString cells[] = {QString::number(c), QString::number(stats->maxAbs[c], 'g', 4),
                                 QString::number(stats->rms[c], 'g', 4),
                                 ratioText(outliers_.ratios[static_cast<size_t>(r)]) + QStringLiteral("×")};
        for (int col = 0; col < 4; ++col) {
            auto* item = new QTableWidgetItem(cells[col]);
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            table_->setItem(r, col, item);
        }
    }
    table_->setHorizontalHeaderItem(3, new QTableWidgetItem(tr("× median")));
    table_->horizontalHeaderItem(3)->setToolTip(tr("%1 over the median %1 of the channels").arg(what));
    emit shown();
}

} // namespace ll::gui
