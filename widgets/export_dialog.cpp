#include "export_dialog.h"

#include "format.h"
#include "job_failure.h"
#include "job_estimate.h"
#include "job_progress.h"
#include "job_runner.h"
#include "model_document.h"
#include "panel_util.h"

#include "pipeline/imatrix.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"
#include "report/report_writer.h"
#include "util/error.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDesktopServices>
#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryFile>
#include <QTreeWidget>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <map>
#include <new>

namespace ll::gui {

using Output = ExportDialog::Output;

namespace {

constexpr const char* kKeys[ExportDialog::kOutputs] = {"export/gguf", "export/hf", "export/report", "export/recipe"};
constexpr const char* kFolderKey = "export/folder";
constexpr const char* kGgufTypeKey = "export/ggufType";
// The GGUF type box's item data: a DType, or kPresetData + a GgufPreset.
constexpr int kPresetData = 1000;
constexpr const char* kHfDtypeKey = "export/hfDtype";
// Rough share of the time each output takes, for one progress bar over all of them.
constexpr double kWeight[ExportDialog::kOutputs] = {3.0, 2.0, 2.0, 0.1};

QString outputLabel(Output o)
{
    switch (o) {
    case Output::Gguf: return ExportDialog::tr("GGUF file");
    case Output::HuggingFace: return ExportDialog::tr("Hugging Face folder");
    case Output::Report: return ExportDialog::tr("HDF5 report");
    case Output::Recipe: return ExportDialog::tr("Recipe");
    }
    return {};
}

std::string nativePath(const QString& path)
{
    return QFile::encodeName(path).toStdString();
}

quint64 diskBytes(const QString& path)
{
    const QFileInfo info(path);
    if (!info.isDir())
        return static_cast<quint64>(info.size());
    quint64 sum = 0;
    QDirIterator it(path, QDir::Files | QDir::Hidden, QDirIterator::Subdirectories);
    while (it.hasNext())
        sum += static_cast<quint64>(it.nextFileInfo().size());
    return sum;
}

// Fallbacks grouped by cause (a model has dozens of identical ones), then the writer's notes.
void addNotes(const QString& prefix, const ExportResult& r, QStringList& notes)
{
    if (!r.preset.empty()) {
        // A preset: which tensors got which type and why, as llama-quantize would choose.
        for (const std::string& line : r.typeLines())
            notes << QStringLiteral("%1 %2: %3").arg(prefix, QString::fromStdString(r.preset), QString::fromStdString(line));
        for (const std::string& n : r.notes)
            notes << QStringLiteral("%1: %2").arg(prefix, QString::fromStdString(n));
        return;
    }
    std::map<std::string, std::vector<std::string>> groups;
    for (const TypeFallback& f : r.fallbacks)
        groups["wrote " + f.used + " instead of " + f.requested + " (" + f.reason + ")"].push_back(f.tensor);
    for (const auto& [cause, names] : groups) {
        QStringList shown;
        for (size_t i = 0; i < names.size() && i < 3; ++i)
            shown << QString::fromStdString(names[i]);
        if (names.size() > 3)
            shown << ExportDialog::tr("… (%1 tensors)").arg(names.size());
        notes << QStringLiteral("%1: %2: %3").arg(prefix, shown.join(QStringLiteral(", ")), QString::fromStdString(cause));
    }
    for (const std::string& n : r.notes)
        notes << QStringLiteral("%1: %2").arg(prefix, QString::fromStdString(n));
}

} // namespace

// What one export job writes, copied out of the dialog so the worker never touches it.
struct ExportDialog::Plan {
    std::shared_ptr<const Model> model;
    std::array<bool, kOutputs> on{};
    std::array<QString, kOutputs> path;
    std::array<bool, kOutputs> existed{};
    DType ggufType = DType::Q8_0;
    std::optional<GgufPreset> ggufPreset; // llama-quantize's per-tensor choice instead of ggufType
    DType hfDtype = DType::F32;
    std::optional<Recipe> recipe;
    nlohmann::json efficiency; // the report's /efficiency (null: none)
    std::function<void(Output, const Progress&)> hook;
    QString imatrix;         // the importance matrix file for the GGUF (empty: none)
    bool w8a8 = false;       // activations quantized at run time: not part of any file
    QString kvCache;         // the KV cache's run-time quantization (empty: none), likewise
};

// Filled by the worker; read on the GUI thread once the job's thread is done.
struct ExportOutcome {
    QList<ExportDialog::Written> written;
    QStringList notes;
    QStringList replaced;   // completed outputs that replaced a file (a cancel cannot bring it back)
    QString error;
    bool cancelled = false;
};

ExportDialog::ExportDialog(ModelDocument* document, QWidget* parent)
    : QDialog(parent), document_(document), runner_(new JobRunner(this))
{
    setWindowTitle(tr("Export"));
    buildUi();
    loadSettings();
    refreshFromDocument();
    connect(document_, &ModelDocument::modelChanged, this, &ExportDialog::refreshFromDocument);
    connect(document_, &ModelDocument::modelEdited, this, [this] { updateEnabled(); });
    showJobProgress(runner_, progress_);
    connect(runner_, &JobRunner::runningChanged, this, [this] { updateEnabled(); });
    connect(runner_, &JobRunner::finished, this, [this] {
        const auto out = outcome_;
        written_ = out->written;
        notes_ = out->notes;
        showWritten();
        if (out->cancelled) {
            finish(false, out->replaced.isEmpty() ? tr("Cancelled; nothing was written.")
                                                  : tr("Cancelled; nothing was written, but %1 had already been replaced.")
                                                        .arg(out->replaced.join(QStringLiteral(", "))),
                   false);
        } else if (!out->error.isEmpty()) {
            finish(false,
                   written_.isEmpty() ? out->error
                                      : tr("%1\nThe outputs listed were written before the error.").arg(out->error),
                   true);
        } else {
            QString message = written_.size() == 1 ? tr("Exported 1 output.") : tr("Exported %1 outputs.").arg(written_.size());
            // Before -> after: what one click bought, in bytes.
            const auto source = document_->state().source;
            for (const Written& w : written_)
                if (w.output == Output::Gguf && source && w.bytes > 0)
                    message += QLatin1Char(' ')
                               + tr("GGUF %1: %2 → %3 (×%4 smaller than the source).")
                                     .arg(w.type, formatBytes(source->storedBytes()), formatBytes(w.bytes))
                                     .arg(static_cast<double>(source->storedBytes()) / static_cast<double>(w.bytes), 0, 'f', 2);
            openFolderButton_->setEnabled(true);
            finish(true, message, false);
        }
    });
    updateEnabled();
}

ExportDialog::~ExportDialog()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's runningChanged/finished must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait(); // the worker removes what it wrote before the runner goes
}

void ExportDialog::buildUi()
{
    auto* destination = new QGroupBox(tr("Destination"), this);
    auto* form = new QFormLayout(destination);
    folderEdit_ = new QLineEdit(destination);
    folderEdit_->setObjectName(QStringLiteral("exportFolder"));
    auto* folderBrowse = new QPushButton(tr("Browse…"), destination);
    auto* folderRow = new QHBoxLayout;
    folderRow->addWidget(folderEdit_, 1);
    folderRow->addWidget(folderBrowse);
    form->addRow(tr("Folder:"), folderRow);
    baseEdit_ = new QLineEdit(destination);
    baseEdit_->setObjectName(QStringLiteral("exportBaseName"));
    form->addRow(tr("Base name:"), baseEdit_);
    connect(folderBrowse, &QPushButton::clicked, this, &ExportDialog::browseFolder);
    connect(folderEdit_, &QLineEdit::textChanged, this, &ExportDialog::refillPaths);
    connect(baseEdit_, &QLineEdit::textChanged, this, &ExportDialog::refillPaths);

    auto* outputs = new QGroupBox(tr("Outputs"), this);
    auto* grid = new QGridLayout(outputs);
    grid->setColumnStretch(1, 1);
    static const char* names[kOutputs] = {"gguf", "hf", "report", "recipe"};
    for (int i = 0; i < kOutputs; ++i) {
        const Output o = static_cast<Output>(i);
        Row& r = row(o);
        r.check = new QCheckBox(outputLabel(o), outputs);
        r.check->setObjectName(QStringLiteral("%1Check").arg(QLatin1String(names[i])));
        r.path = new QLineEdit(outputs);
        r.path->setObjectName(QStringLiteral("%1Path").arg(QLatin1String(names[i])));
        r.path->setMinimumWidth(340);
        r.browse = new QPushButton(tr("…"), outputs);
        r.browse->setToolTip(tr("Choose where to write the %1").arg(outputLabel(o).toLower()));
        r.browse->setMaximumWidth(32);
        grid->addWidget(r.check, i, 0);
        grid->addWidget(r.path, i, 1);
        grid->addWidget(r.browse, i, 2);
        connect(r.check, &QCheckBox::toggled, this, &ExportDialog::updateEnabled);
        connect(r.path, &QLineEdit::textEdited, this, [this, o] { row(o).custom = true; });
        connect(r.browse, &QPushButton::clicked, this, [this, o] { browse(o); });
    }
    ggufTypeBox_ = new QComboBox(outputs);
    ggufTypeBox_->setObjectName(QStringLiteral("ggufType"));
    ggufTypeBox_->setToolTip(tr("A llama-quantize preset (Q4_K_M: each tensor's type chosen as llama-quantize "
                                "chooses it, byte-identical to its output) or one type for every 2-D weight; norms "
                                "stay F32. A weight whose rows do not hold whole blocks falls back to another type "
                                "(listed after the export)."));
    for (const GgufPresetInfo& p : ggufPresets()) {
        ggufTypeBox_->addItem(QString::fromLatin1(p.name), kPresetData + static_cast<int>(p.preset));
        ggufTypeBox_->setItemData(ggufTypeBox_->count() - 1, QString::fromLatin1(p.summary), Qt::ToolTipRole);
    }
    ggufTypeBox_->insertSeparator(ggufTypeBox_->count());
    for (DType t : ggufTypes())
        if (!ggufPresetNamed(dtypeName(t))) // Q8_0, Q6_K, Q2_K: the presets of the same name write them
            ggufTypeBox_->addItem(QString::fromLatin1(dtypeName(t)), static_cast<int>(t));
    hfDtypeBox_ = new QComboBox(outputs);
    hfDtypeBox_->setObjectName(QStringLiteral("hfDtype"));
    hfDtypeBox_->setToolTip(tr("Type of the safetensors weights"));
    for (DType t : {DType::F32, DType::F16, DType::BF16})
        hfDtypeBox_->addItem(QString::fromLatin1(dtypeName(t)).toLower(), static_cast<int>(t));
    grid->addWidget(ggufTypeBox_, 0, 3);
    grid->addWidget(hfDtypeBox_, 1, 3);
    connect(ggufTypeBox_, &QComboBox::currentIndexChanged, this, &ExportDialog::refillPaths);
    connect(ggufTypeBox_, &QComboBox::activated, this, [this] { // the user's pick, not a suggestion
        ggufChosen_ = true;
        ggufHint_->hide();
    });
    ggufHint_ = new QLabel(outputs);
    ggufHint_->setObjectName(QStringLiteral("ggufHint"));
    ggufHint_->setWordWrap(true);
    ggufHint_->hide();
    grid->addWidget(ggufHint_, kOutputs, 1, 1, 3);
    // llama-quantize --imatrix: the k-quants weigh each column's rounding by it.
    imatrixEdit_ = new QLineEdit(outputs);
    imatrixEdit_->setObjectName(QStringLiteral("imatrixFile"));
    imatrixEdit_->setPlaceholderText(tr("none (a .dat from llama-imatrix or layerlab-cli imatrix)"));
    imatrixEdit_->setToolTip(tr("llama.cpp's importance matrix: the GGUF's quantized tensors are rounded with it, "
                                "byte for byte as llama-quantize --imatrix does."));
    imatrixBrowse_ = new QPushButton(tr("…"), outputs);
    imatrixBrowse_->setMaximumWidth(32);
    imatrixBrowse_->setToolTip(tr("Choose an importance matrix file"));
    connect(imatrixBrowse_, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Importance matrix"), imatrixEdit_->text(),
                                                       tr("Importance matrices (*.dat);;All files (*)"));
        if (!f.isEmpty())
            imatrixEdit_->setText(f);
    });
    grid->addWidget(new QLabel(tr("Importance matrix"), outputs), kOutputs + 1, 0);
    grid->addWidget(imatrixEdit_, kOutputs + 1, 1);
    grid->addWidget(imatrixBrowse_, kOutputs + 1, 2);

    progress_ = new QProgressBar(this);
    progress_->setObjectName(QStringLiteral("exportProgress"));
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    progress_->setFormat(QString());
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    cancelButton_->setObjectName(QStringLiteral("exportCancelButton"));
    connect(cancelButton_, &QPushButton::clicked, this, &ExportDialog::cancelExport);
    auto* progressRow = new QHBoxLayout;
    progressRow->addWidget(progress_, 1);
    progressRow->addWidget(cancelButton_);

    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("exportStatus"));
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    results_ = new QTreeWidget(this);
    results_->setObjectName(QStringLiteral("exportResults"));
    results_->setHeaderLabels({tr("Written"), tr("Path"), tr("Size")});
    results_->setRootIsDecorated(false);
    results_->setSelectionMode(QAbstractItemView::NoSelection);
    results_->header()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
    results_->header()->setSectionResizeMode(1, QHeaderView::Stretch);
    results_->header()->setSectionResizeMode(2, QHeaderView::ResizeToContents);
    results_->header()->setStretchLastSection(false);
    results_->setMinimumHeight(100);
    notesView_ = new QPlainTextEdit(this);
    notesView_->setObjectName(QStringLiteral("exportNotes"));
    notesView_->setReadOnly(true);
    notesView_->setPlaceholderText(tr("Notes from the writers (type fallbacks, layout changes) appear here."));
    notesView_->setMinimumHeight(80);

    exportButton_ = new QPushButton(tr("Export"), this);
    exportButton_->setObjectName(QStringLiteral("exportButton"));
    exportButton_->setDefault(true);
    closeButton_ = new QPushButton(tr("Close"), this);
    openFolderButton_ = new QPushButton(tr("Open Folder"), this);
    openFolderButton_->setObjectName(QStringLiteral("exportOpenFolder"));
    openFolderButton_->setToolTip(tr("Show the exported files in the file manager"));
    openFolderButton_->setEnabled(false);
    connect(openFolderButton_, &QPushButton::clicked, this,
            [this] { QDesktopServices::openUrl(QUrl::fromLocalFile(folder())); });
    connect(exportButton_, &QPushButton::clicked, this, [this] { startExport(); });
    connect(closeButton_, &QPushButton::clicked, this, &ExportDialog::reject);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(openFolderButton_);
    buttons->addStretch(1);
    buttons->addWidget(exportButton_);
    buttons->addWidget(closeButton_);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(destination);
    layout->addWidget(outputs);
    layout->addLayout(progressRow);
    layout->addWidget(status_);
    layout->addWidget(results_, 2);
    layout->addWidget(notesView_, 1);
    layout->addLayout(buttons);
    resize(760, 560);
}

QList<DType> ExportDialog::ggufTypes()
{
    QList<DType> out;
    for (DType t : ggufExportTypes())
        out << t;
    return out;
}

void ExportDialog::loadSettings()
{
    QSettings s;
    static const bool defaults[kOutputs] = {true, false, false, true};
    for (int i = 0; i < kOutputs; ++i)
        rows_[i].check->setChecked(s.value(QLatin1String(kKeys[i]), defaults[i]).toBool());
    // Types by name: enum values may change between versions.
    const auto select = [&s](QComboBox* box, const char* key, const QString& fallback) {
        box->setCurrentIndex(std::max(0, box->findText(s.value(QLatin1String(key), fallback).toString())));
    };
    if (s.contains(QLatin1String(kGgufTypeKey))) { // chosen in an earlier export
        select(ggufTypeBox_, kGgufTypeKey, QStringLiteral("Q8_0"));
        ggufChosen_ = true;
    }
    select(hfDtypeBox_, kHfDtypeKey, QStringLiteral("f16"));
}

void ExportDialog::saveSettings() const
{
    QSettings s;
    for (int i = 0; i < kOutputs; ++i)
        s.setValue(QLatin1String(kKeys[i]), rows_[i].check->isChecked());
    s.setValue(QLatin1String(kFolderKey), folder());
    if (ggufChosen_)
        s.setValue(QLatin1String(kGgufTypeKey), ggufTypeBox_->currentText());
    s.setValue(QLatin1String(kHfDtypeKey), hfDtypeBox_->currentText());
}

void ExportDialog::refreshFromDocument()
{
    const auto model = document_->model();
    QString base = QStringLiteral("model");
    QString folder = QSettings().value(QLatin1String(kFolderKey)).toString();
    if (model && !model->config.synthetic && !model->path.empty()) {
        const QFileInfo info(QDir::cleanPath(QString::fromStdString(model->path)));
        // A folder's name may hold dots ("Llama-3.1-8B"); a file loses its suffix.
        base = info.isDir() ? info.fileName() : info.completeBaseName();
    } else if (model) {
        base = QStringLiteral("demo-model");
    }
    if (!document_->state().steps.empty())
        base += QStringLiteral("-compressed");
    setDestination(folder.isEmpty() ? defaultFolder() : folder, base);
    suggestGgufType();
    updateEnabled();
}

QString ExportDialog::defaultFolder()
{
    return QDir(QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation)).filePath(QStringLiteral("LayerLab"));
}

GgufPreset suggestedGgufPreset(const CompressionState& state)
{
    const bool quantized = std::any_of(state.steps.begin(), state.steps.end(),
                                       [](const RecipeStep& s) { return s.action == StepAction::Quantize; });
    const double bits = quantized ? state.linearBitsPerWeight() : 16.0;
    // The llama-quantize preset nearest in size (its usual bits per weight on
    // Llama-sized models): re-quantizing a 4-bit model to Q8_0 keeps its
    // accuracy but not its size.
    static const std::pair<GgufPreset, double> kPresetBits[] = {{GgufPreset::Q2_K, 3.0},   {GgufPreset::Q3_K_M, 3.9},
                                                                {GgufPreset::Q4_K_M, 4.9}, {GgufPreset::Q5_K_M, 5.7},
                                                                {GgufPreset::Q6_K, 6.6},   {GgufPreset::Q8_0, 8.5}};
    GgufPreset preset = GgufPreset::Q8_0;
    double nearest = 1e9;
    for (const auto& [p, b] : kPresetBits)
        if (std::abs(b - std::min(bits, 8.5)) < nearest) {
            nearest = std::abs(b - std::min(bits, 8.5));
            preset = p;
        }
    return preset;
}

void ExportDialog::suggestGgufType()
{
    if (ggufChosen_)
        return;
    const CompressionState& state = document_->state();
    const bool quantized = std::any_of(state.steps.begin(), state.steps.end(),
                                       [](const RecipeStep& s) { return s.action == StepAction::Quantize; });
    const double bits = quantized ? state.linearBitsPerWeight() : 16.0;
    const GgufPreset preset = suggestedGgufPreset(state);
    ggufTypeBox_->setCurrentIndex(ggufTypeBox_->findData(kPresetData + static_cast<int>(preset)));
    ggufHint_->setVisible(quantized);
    if (quantized)
        ggufHint_->setText(tr("%1 suggested: the block linears hold %2 bits per weight after the quantization steps. "
                              "A type of more bits keeps their values more exactly, not the size.")
                               .arg(QString::fromLatin1(ggufPresetInfo(preset).name))
                               .arg(bits, 0, 'f', 2));
}

void ExportDialog::setDestination(const QString& folder, const QString& baseName)
{
    folderEdit_->setText(folder);
    baseEdit_->setText(baseName);
    refillPaths();
}

QString ExportDialog::folder() const { return folderEdit_->text().trimmed(); }
QString ExportDialog::baseName() const { return baseEdit_->text().trimmed(); }

QString ExportDialog::defaultPath(Output o) const
{
    const QString base = baseName().isEmpty() ? QStringLiteral("model") : baseName();
    QString name;
    switch (o) {
    case Output::Gguf: name = QStringLiteral("%1-%2.gguf").arg(base, ggufTypeBox_->currentText()); break;
    case Output::HuggingFace: name = base + QStringLiteral("-hf"); break;
    case Output::Report: name = base + QStringLiteral(".report.h5"); break;
    case Output::Recipe: name = base + QStringLiteral(".recipe.yaml"); break;
    }
    return QDir(folder()).filePath(name);
}

void ExportDialog::refillPaths()
{
    for (int i = 0; i < kOutputs; ++i)
        if (!rows_[i].custom)
            rows_[i].path->setText(defaultPath(static_cast<Output>(i)));
}

QString ExportDialog::resolved(Output o) const
{
    QString p = row(o).path->text().trimmed();
    if (p.startsWith(QStringLiteral("~/")))
        p = QDir::homePath() + p.mid(1);
    return p.isEmpty() ? QString() : QDir::cleanPath(QDir(folder()).absoluteFilePath(p));
}

void ExportDialog::setOutputEnabled(Output o, bool on) { row(o).check->setChecked(on); }
bool ExportDialog::isOutputEnabled(Output o) const { return row(o).check->isChecked() && row(o).check->isEnabled(); }

void ExportDialog::setOutputPath(Output o, const QString& path)
{
    row(o).custom = true;
    row(o).path->setText(path);
}

QString ExportDialog::outputPath(Output o) const { return resolved(o); }

void ExportDialog::setGgufType(DType t)
{
    ggufChosen_ = true;
    // Q8_0, Q6_K and Q2_K are listed once, as presets: llama-quantize's preset of that name.
    int i = ggufTypeBox_->findData(static_cast<int>(t));
    if (i < 0)
        if (const auto p = ggufPresetNamed(dtypeName(t)))
            i = ggufTypeBox_->findData(kPresetData + static_cast<int>(*p));
    ggufTypeBox_->setCurrentIndex(i >= 0 ? i : ggufTypeBox_->findData(kPresetData + static_cast<int>(GgufPreset::Q8_0)));
}
void ExportDialog::setImatrixFile(const QString& path)
{
    imatrixEdit_->setText(path);
}

QString ExportDialog::imatrixFile() const
{
    return imatrixEdit_->text().trimmed();
}

DType ExportDialog::ggufType() const
{
    const int data = ggufTypeBox_->currentData().toInt();
    return data >= kPresetData ? ggufPresetInfo(static_cast<GgufPreset>(data - kPresetData)).base : static_cast<DType>(data);
}

void ExportDialog::setGgufPreset(GgufPreset p)
{
    ggufChosen_ = true;
    ggufTypeBox_->setCurrentIndex(ggufTypeBox_->findData(kPresetData + static_cast<int>(p)));
}
std::optional<GgufPreset> ExportDialog::ggufPreset() const
{
    const int data = ggufTypeBox_->currentData().toInt();
    if (data < kPresetData)
        return std::nullopt;
    return static_cast<GgufPreset>(data - kPresetData);
}

void ExportDialog::setHfDtype(DType t)
{
    const int i = hfDtypeBox_->findData(static_cast<int>(t));
    hfDtypeBox_->setCurrentIndex(i >= 0 ? i : 0);
}
DType ExportDialog::hfDtype() const { return static_cast<DType>(hfDtypeBox_->currentData().toInt()); }

void ExportDialog::setRecipe(const Recipe& recipe)
{
    recipe_ = recipe;
    updateEnabled();
}

Recipe ExportDialog::recipe() const
{
    return recipe_ ? *recipe_ : document_->state().recipe();
}

void ExportDialog::setConfirmOverwrite(std::function<bool(const QStringList&)> confirm)
{
    confirmOverwrite_ = std::move(confirm);
}

void ExportDialog::setBeforeOutputHook(std::function<void(Output, const Progress&)> hook)
{
    beforeOutput_ = std::move(hook);
}

void ExportDialog::browse(Output o)
{
    const QString current = resolved(o);
    QString chosen;
    switch (o) {
    case Output::Gguf: chosen = QFileDialog::getSaveFileName(this, tr("GGUF file"), current, tr("GGUF (*.gguf)")); break;
    case Output::HuggingFace:
        chosen = QFileDialog::getSaveFileName(this, tr("Hugging Face folder to create"), current, QString(), nullptr,
                                              QFileDialog::ShowDirsOnly);
        break;
    case Output::Report:
        chosen = QFileDialog::getSaveFileName(this, tr("HDF5 report"), current, tr("HDF5 (*.h5 *.hdf5)"));
        break;
    case Output::Recipe:
        chosen = QFileDialog::getSaveFileName(this, tr("Recipe"), current, tr("YAML (*.yaml *.yml);;JSON (*.json)"));
        break;
    }
    if (!chosen.isEmpty())
        setOutputPath(o, chosen);
}

void ExportDialog::browseFolder()
{
    const QString chosen = QFileDialog::getExistingDirectory(this, tr("Export folder"), folder());
    if (!chosen.isEmpty())
        folderEdit_->setText(chosen);
}

bool ExportDialog::startExport()
{
    if (isRunning())
        return false;
    const auto refuse = [this](const QString& why, bool error = true) {
        finish(false, why, error);
        return false;
    };
    const auto model = document_->model();
    if (!model)
        return refuse(tr("No model is open."));
    Plan plan;
    plan.model = model;
    plan.efficiency = efficiency_;
    QStringList existing;
    std::map<QString, Output> seen;
    for (int i = 0; i < kOutputs; ++i) {
        const Output o = static_cast<Output>(i);
        if (!isOutputEnabled(o))
            continue;
        const QString path = resolved(o);
        if (path.isEmpty())
            return refuse(tr("Give a path for the %1.").arg(outputLabel(o).toLower()));
        if (const auto it = seen.find(path); it != seen.end())
            return refuse(tr("The %1 and the %2 have the same path %3.")
                              .arg(outputLabel(it->second).toLower(), outputLabel(o).toLower(), path));
        seen.emplace(path, o);
        // Checked here, before anything is written, so a bad folder never leaves half an export.
        const QString dir = QFileInfo(path).absolutePath();
        if (QDir::cleanPath(dir) == QDir::cleanPath(defaultFolder()))
            QDir().mkpath(dir); // the default is made on first use; a folder the user typed is not
        if (!QFileInfo(dir).isDir())
            return refuse(tr("The folder %1 does not exist.").arg(dir));
        QTemporaryFile probe(dir + QStringLiteral("/.layerlab-probe-XXXXXX"));
        if (!probe.open())
            return refuse(tr("Cannot write in %1: %2").arg(dir, probe.errorString()));
        plan.on[i] = true;
        plan.path[i] = path;
        plan.existed[i] = QFileInfo::exists(path);
        if (plan.existed[i])
            existing << path;
    }
    if (seen.empty())
        return refuse(tr("Choose at least one output."));
    if (!existing.isEmpty()) {
        const bool replace = confirmOverwrite_
                                 ? confirmOverwrite_(existing)
                                 : QMessageBox::question(this, tr("Replace existing files?"),
                                                         tr("These outputs exist and will be replaced:\n\n%1")
                                                             .arg(existing.join(QLatin1Char('\n'))),
                                                         QMessageBox::Yes | QMessageBox::No, QMessageBox::No)
                                       == QMessageBox::Yes;
        if (!replace)
            return refuse(tr("Nothing written: %1 already exists.").arg(existing.join(QStringLiteral(", "))), false);
    }
    plan.ggufType = ggufType();
    plan.ggufPreset = ggufPreset();
    plan.imatrix = imatrixFile();
    plan.hfDtype = hfDtype();
    const Recipe r = recipe();
    if (!r.steps.empty())
        plan.recipe = r; // also recorded in the report
    plan.hook = beforeOutput_;
    plan.w8a8 = document_->state().activations.quantizesInputs();
    if (document_->state().activations.kv.active())
        plan.kvCache = QString::fromStdString(document_->state().activations.kv.label());
    // Before anything is written: will it fit?
    const JobCheck check = checkJob(estimateExport(*model));
    if (!check.ok)
        return refuse(check.refusal);
    saveSettings();

    written_.clear();
    notes_.clear();
    showWritten();
    progress_->setValue(0);
    progress_->setFormat(tr("starting"));
    setStatus(tr("Exporting (%1)…").arg(check.summary), false);
    auto outcome = std::make_shared<ExportOutcome>();
    outcome_ = outcome;
    runner_->start([plan, outcome](JobContext& job) {
        ExportOutcome& out = *outcome;
        if (plan.w8a8)
            out.notes << ExportDialog::tr("The model quantizes activations at run time (W8A8, SmoothQuant or "
                                          "LLM.int8); the exported files hold the weights only.");
        if (!plan.kvCache.isEmpty())
            out.notes << ExportDialog::tr("The model quantizes its KV cache at run time (%1); the exported files hold "
                                          "the weights only (llama.cpp sets its own with --cache-type-k / "
                                          "--cache-type-v).").arg(plan.kvCache);
        double total = 0.0, base = 0.0;
        for (int i = 0; i < kOutputs; ++i)
            total += plan.on[i] ? kWeight[i] : 0.0;
        try {
            for (int i = 0; i < kOutputs; ++i) {
                if (!plan.on[i])
                    continue;
                const Output o = static_cast<Output>(i);
                const double span = kWeight[i] / total;
                job.stage(base, span, QFileInfo(plan.path[i]).fileName());
                base += span;
                if (plan.hook)
                    plan.hook(o, job);
                throwIfCancelled(&job);
                const std::string path = nativePath(plan.path[i]);
                quint64 bytes = 0;
                if (o == Output::Gguf) {
                    GgufExportOptions opt;
                    opt.type = plan.ggufType;
                    opt.preset = plan.ggufPreset;
                    Imatrix imatrix;
                    if (!plan.imatrix.isEmpty()) {
                        imatrix = loadImatrix(nativePath(plan.imatrix));
                        opt.imatrix = &imatrix;
                        opt.imatrixFile = plan.imatrix.toStdString();
                    }
                    opt.overwrite = plan.existed[i];
                    opt.progress = &job;
                    const ExportResult r = exportGguf(*plan.model, path, opt);
                    bytes = r.totalBytes;
                    addNotes(QStringLiteral("GGUF"), r, out.notes);
                } else if (o == Output::HuggingFace) {
                    HfExportOptions opt;
                    opt.dtype = plan.hfDtype;
                    opt.overwrite = plan.existed[i];
                    opt.progress = &job;
                    const ExportResult r = exportHf(*plan.model, path, opt);
                    bytes = r.totalBytes;
                    addNotes(QStringLiteral("Hugging Face"), r, out.notes);
                } else if (o == Output::Report) {
                    ReportInputs in;
                    in.model = plan.model.get();
                    if (plan.recipe)
                        in.recipe = plan.recipe->toJson();
                    if (!plan.efficiency.is_null())
                        in.efficiency = plan.efficiency;
                    in.options.overwrite = plan.existed[i];
                    bytes = writeReport(path, in, &job).bytes;
                } else {
                    saveRecipe(plan.recipe ? *plan.recipe : Recipe{}, path);
                }
                const QString type = o == Output::Gguf
                                         ? QString::fromLatin1(plan.ggufPreset ? ggufPresetInfo(*plan.ggufPreset).name
                                                                               : dtypeName(plan.ggufType))
                                     : o == Output::HuggingFace ? QString::fromLatin1(dtypeName(plan.hfDtype)).toLower()
                                                                : QString();
                out.written.push_back({o, plan.path[i], bytes ? bytes : diskBytes(plan.path[i]), type});
                if (plan.existed[i])
                    out.replaced << plan.path[i];
            }
        } catch (...) {
            const JobFailure f = currentJobFailure(ExportDialog::tr("Not enough memory for this export."));
            out.cancelled = f.cancelled;
            out.error = f.message;
        }
        // A cancelled export writes nothing: remove what this run created (done
        // here, not on the GUI thread, so that closing the dialog can wait for it).
        out.cancelled = out.cancelled || (out.error.isEmpty() && job.cancelled());
        if (out.cancelled) {
            for (const Written& w : out.written) {
                if (out.replaced.contains(w.path))
                    continue;
                if (QFileInfo(w.path).isDir())
                    QDir(w.path).removeRecursively();
                else
                    QFile::remove(w.path);
            }
            out.written.clear();
            out.notes.clear();
        }
    });
    runner_->setExpectedSeconds(check.seconds);
    updateEnabled();
    return true;
}

void ExportDialog::cancelExport()
{
    if (!runner_->isRunning())
        return;
    runner_->cancel();
    setStatus(tr("Cancelling…"), false);
    updateEnabled();
}

bool ExportDialog::isRunning() const { return runner_->isRunning(); }

QString ExportDialog::statusText() const { return status_->text(); }

void ExportDialog::reject()
{
    if (runner_->isRunning()) {
        QApplication::setOverrideCursor(Qt::WaitCursor); // until the writer reaches its next cancellation check
        runner_->cancelAndWait();
        QApplication::restoreOverrideCursor();
        written_.clear();
        notes_.clear();
        showWritten();
        finish(false, tr("Cancelled; nothing was written."), false);
    }
    QDialog::reject();
}

void ExportDialog::finish(bool ok, const QString& message, bool error)
{
    progress_->setValue(ok ? 1000 : 0);
    progress_->setFormat(ok ? tr("done") : QString());
    setStatus(message, error);
    updateEnabled();
    emit exportFinished(ok, message);
}

void ExportDialog::setStatus(const QString& text, bool error)
{
    status_->setText(text);
    status_->setStyleSheet(error ? QStringLiteral("color: #b3261e;") : QString());
}

void ExportDialog::showWritten()
{
    results_->clear();
    for (const Written& w : written_) {
        const QString what =
            w.type.isEmpty() ? outputLabel(w.output) : QStringLiteral("%1 (%2)").arg(outputLabel(w.output), w.type);
        auto* item = new QTreeWidgetItem(results_, {what, w.path, formatBytes(w.bytes)});
        item->setToolTip(1, w.path);
        item->setTextAlignment(2, Qt::AlignRight | Qt::AlignVCenter);
    }
    notesView_->setPlainText(notes_.join(QLatin1Char('\n')));
}

void ExportDialog::updateEnabled()
{
    const bool running = runner_->isRunning();
    const bool steps = recipe_ ? !recipe_->steps.empty() : !document_->state().steps.empty();
    for (int i = 0; i < kOutputs; ++i) {
        Row& r = rows_[i];
        const bool available = static_cast<Output>(i) != Output::Recipe || steps;
        r.check->setEnabled(!running && available);
        r.check->setToolTip(available ? QString() : tr("No compression step has been applied: there is no recipe to save."));
        r.path->setEnabled(!running && available && r.check->isChecked());
        r.browse->setEnabled(r.path->isEnabled());
    }
    ggufTypeBox_->setEnabled(!running && row(Output::Gguf).check->isChecked());
    imatrixEdit_->setEnabled(ggufTypeBox_->isEnabled());
    imatrixBrowse_->setEnabled(ggufTypeBox_->isEnabled());
    hfDtypeBox_->setEnabled(!running && row(Output::HuggingFace).check->isChecked());
    folderEdit_->setEnabled(!running);
    baseEdit_->setEnabled(!running);
    exportButton_->setEnabled(!running && document_->hasModel());
    cancelButton_->setEnabled(running && !runner_->isCancelling());
}

} // namespace ll::gui
