#include "quick_compress.h"

#include "compare_panel.h"
#include "export_dialog.h"
#include "format.h"
#include "job_failure.h"
#include "job_progress.h"
#include "job_runner.h"
#include "model_document.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QDesktopServices>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QRegularExpression>
#include <QPushButton>
#include <QSpinBox>
#include <QStackedWidget>
#include <QTextDocument>
#include <QTreeWidget>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

namespace ll::gui {

namespace {


// The rows offered: llama-quantize's presets (Q4_K_M first, as it recommends
// it), then the single types at 8 and 16 bits.
std::vector<QuickCompressDialog::Choice> offeredChoices()
{
    std::vector<QuickCompressDialog::Choice> out;
    for (const GgufPresetInfo& p : ggufPresets())
        if (p.preset != GgufPreset::IQ4_NL)
            out.push_back({QString::fromLatin1(p.name), p.preset, p.base, QString::fromUtf8(p.summary)});
    out.push_back({QStringLiteral("F16"), std::nullopt, DType::F16, QObject::tr("16-bit floats: no quality loss, half of F32")});
    return out;
}

// The fallbacks of an export in plain words: one line per (requested, used, reason).
QStringList fallbackLines(const ExportResult& r)
{
    std::map<std::tuple<std::string, std::string, std::string>, int> kinds;
    for (const TypeFallback& f : r.fallbacks)
        ++kinds[{f.requested, f.used, f.reason}];
    QStringList lines;
    for (const auto& [k, n] : kinds)
        lines << (n == 1 ? QObject::tr("%1 tensor written as %2 instead of %3: %4") : QObject::tr("%1 tensors written as %2 instead of %3: %4"))
                     .arg(n)
                     .arg(QString::fromStdString(std::get<1>(k)), QString::fromStdString(std::get<0>(k)),
                          QString::fromStdString(std::get<2>(k)));
    return lines;
}

quint64 filesOnDisk(const Model& m)
{
    quint64 bytes = 0;
    for (const auto& f : m.files)
        bytes += f ? f->size() : 0;
    return bytes;
}

QString html(const QString& text)
{
    QTextDocument d;
    d.setHtml(text);
    return d.toPlainText();
}

} // namespace

QuickCompressDialog::QuickCompressDialog(ModelDocument* document, const TextSource& text, QWidget* parent)
    : QDialog(parent), document_(document), text_(text), runner_(new JobRunner(this)), choices_(offeredChoices())
{
    setWindowTitle(tr("Make a Smaller Model"));
    setObjectName(QStringLiteral("quickCompressDialog"));
    auto* layout = new QVBoxLayout(this);
    pages_ = new QStackedWidget(this);
    pages_->addWidget(buildChoosePage());
    pages_->addWidget(buildWorkPage());
    pages_->addWidget(buildCardPage());
    layout->addWidget(pages_);
    showJobProgress(runner_, progress_, progressText_);
    resize(720, 520);
    estimate();
}

QuickCompressDialog::~QuickCompressDialog()
{
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

QWidget* QuickCompressDialog::buildChoosePage()
{
    auto* page = new QWidget(this);
    auto* v = new QVBoxLayout(page);
    auto* intro = new QLabel(tr("<b>Pick a size.</b> LayerLab writes a GGUF file for llama.cpp (and apps built on it, such as "
                                "Ollama and LM Studio) from the model as it is now%1, then checks its quality against the "
                                "original.")
                                 .arg(document_->state().steps.empty() ? QString() : tr(", with your compression steps")),
                             page);
    intro->setWordWrap(true);
    v->addWidget(intro);

    table_ = new QTreeWidget(page);
    table_->setObjectName(QStringLiteral("quickCompressChoices"));
    table_->setRootIsDecorated(false);
    table_->setHeaderLabels({tr("Type"), tr("File size"), tr("Bits/weight"), tr("What it is")});
    table_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->header()->setStretchLastSection(true);
    v->addWidget(table_, 1);
    proposal_ = new QLabel(page);
    proposal_->setObjectName(QStringLiteral("quickCompressProposal"));
    proposal_->setWordWrap(true);
    v->addWidget(proposal_);
    connect(table_, &QTreeWidget::currentItemChanged, this, [this] { updatePath(); });

    auto* form = new QFormLayout;
    auto* fitRow = new QHBoxLayout;
    limit_ = new QSpinBox(page);
    limit_->setRange(0, 1 << 30);
    limit_->setSuffix(tr(" MiB"));
    limit_->setSpecialValueText(tr("no limit"));
    limit_->setToolTip(tr("Selects the best type whose file fits"));
    fitRow->addWidget(limit_);
    fitRow->addStretch();
    form->addRow(tr("Fit in at most:"), fitRow);
    connect(limit_, &QSpinBox::valueChanged, this, [this](int mib) {
        if (mib > 0 && estimated_ && !fitInto(static_cast<quint64>(mib) << 20))
            status_->setText(tr("No type fits in %1 MiB; the smallest is selected.").arg(mib));
        else
            status_->clear();
    });

    auto* folderRow = new QHBoxLayout;
    folder_ = new QLineEdit(ExportDialog::defaultFolder(), page);
    auto* browse = new QPushButton(tr("Browse…"), page);
    folderRow->addWidget(folder_, 1);
    folderRow->addWidget(browse);
    form->addRow(tr("Save in:"), folderRow);
    connect(folder_, &QLineEdit::textChanged, this, [this] { updatePath(); });
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Save in"), folder_->text());
        if (!dir.isEmpty())
            folder_->setText(dir);
    });
    pathLabel_ = new QLabel(page);
    pathLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    form->addRow(tr("File:"), pathLabel_);
    check_ = new QCheckBox(tr("Check quality on %1 (perplexity and KL against the original, %2 windows)")
                               .arg(text_.displayName())
                               .arg(ComparePanel::kCompareWindows),
                           page);
    check_->setChecked(true);
    form->addRow(QString(), check_);
    v->addLayout(form);

    status_ = new QLabel(page);
    status_->setObjectName(QStringLiteral("quickCompressStatus"));
    status_->setWordWrap(true);
    v->addWidget(status_);
    auto* buttons = new QDialogButtonBox(page);
    startButton_ = buttons->addButton(tr("Make It"), QDialogButtonBox::AcceptRole);
    startButton_->setEnabled(false);
    buttons->addButton(QDialogButtonBox::Cancel);
    connect(buttons, &QDialogButtonBox::accepted, this, [this] { start(); });
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    v->addWidget(buttons);
    return page;
}

QWidget* QuickCompressDialog::buildWorkPage()
{
    auto* page = new QWidget(this);
    auto* v = new QVBoxLayout(page);
    v->addStretch();
    auto* what = new QLabel(tr("<b>Writing the file and checking it…</b>"), page);
    v->addWidget(what);
    progress_ = new QProgressBar(page);
    progress_->setRange(0, 1000);
    v->addWidget(progress_);
    progressText_ = new QLabel(page);
    progressText_->setWordWrap(true);
    v->addWidget(progressText_);
    v->addStretch();
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Cancel, page);
    connect(buttons, &QDialogButtonBox::rejected, this, &QuickCompressDialog::cancel);
    v->addWidget(buttons);
    return page;
}

QWidget* QuickCompressDialog::buildCardPage()
{
    auto* page = new QWidget(this);
    auto* v = new QVBoxLayout(page);
    card_ = new QLabel(page);
    card_->setObjectName(QStringLiteral("quickCompressCard"));
    card_->setWordWrap(true);
    card_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    card_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    v->addWidget(card_, 1);
    auto* buttons = new QDialogButtonBox(page);
    openFolder_ = buttons->addButton(tr("Open Folder"), QDialogButtonBox::ActionRole);
    copyPath_ = buttons->addButton(tr("Copy Path"), QDialogButtonBox::ActionRole);
    buttons->addButton(QDialogButtonBox::Close);
    connect(openFolder_, &QPushButton::clicked, this, [this] {
        if (result_)
            QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(result_->path).absolutePath()));
    });
    connect(copyPath_, &QPushButton::clicked, this, [this] {
        if (result_)
            QApplication::clipboard()->setText(result_->path);
    });
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::accept);
    v->addWidget(buttons);
    return page;
}

// The exact file size of every choice, in the background: planning a GGUF
// reads no tensor data, but a large vocabulary takes a moment per choice.
void QuickCompressDialog::estimate()
{
    status_->setText(tr("Working out the sizes…"));
    const std::shared_ptr<const Model> model = document_->state().model;
    if (!model) {
        status_->setText(tr("Open a model first."));
        return;
    }
    std::vector<Choice> choices = choices_;
    runner_->start([this, model, choices](JobContext& job) mutable {
        QString error;
        const int64_t params = std::max<int64_t>(model->parameterCount(), 1);
        try {
            for (size_t i = 0; i < choices.size(); ++i) {
                GgufExportOptions opt;
                opt.preset = choices[i].preset;
                opt.type = choices[i].type;
                const ExportResult r = estimateGgufExport(*model, opt);
                choices[i].bytes = r.totalBytes;
                choices[i].bitsPerWeight = static_cast<double>(r.totalBytes) * 8.0 / static_cast<double>(params);
                choices[i].fallbacks = static_cast<int>(r.fallbacks.size());
                job.report(static_cast<double>(i + 1) / static_cast<double>(choices.size()), "sizes");
            }
        } catch (...) {
            error = currentJobFailure(tr("Not enough memory to plan the export.")).message;
        }
        job.post([this, choices, error] {
            if (!error.isEmpty()) {
                status_->setText(tr("This model cannot be written as GGUF: %1").arg(error));
                return;
            }
            choices_ = choices;
            estimated_ = true;
            status_->clear();
            fillTable();
            startButton_->setEnabled(true);
            emit estimatesChanged();
        });
    });
}

void QuickCompressDialog::fillTable()
{
    table_->clear();
    for (const Choice& c : choices_) {
        auto* item = new QTreeWidgetItem(table_);
        item->setText(0, c.name);
        item->setText(1, formatBytes(c.bytes));
        item->setText(2, QString::number(c.bitsPerWeight, 'f', 2));
        item->setText(3, c.summary + (c.fallbacks == 0   ? QString()
                                      : c.fallbacks == 1 ? tr(" (1 tensor in another type)")
                                                         : tr(" (%1 tensors in another type)").arg(c.fallbacks)));
        item->setTextAlignment(1, Qt::AlignRight | Qt::AlignVCenter);
        item->setTextAlignment(2, Qt::AlignRight | Qt::AlignVCenter);
    }
    selectChoice(QStringLiteral("Q4_K_M"));
}

void QuickCompressDialog::selectChoice(const QString& name)
{
    for (int i = 0; i < table_->topLevelItemCount(); ++i)
        if (table_->topLevelItem(i)->text(0) == name)
            table_->setCurrentItem(table_->topLevelItem(i));
}

QString QuickCompressDialog::selectedChoice() const
{
    return table_->currentItem() ? table_->currentItem()->text(0) : QString();
}

bool QuickCompressDialog::fitInto(quint64 bytes)
{
    const Choice* best = nullptr;
    const Choice* smallest = nullptr;
    for (const Choice& c : choices_) {
        if (!smallest || c.bytes < smallest->bytes)
            smallest = &c;
        if (c.bytes <= bytes && (!best || c.bytes > best->bytes))
            best = &c;
    }
    if (const Choice* pick = best ? best : smallest)
        selectChoice(pick->name);
    return best != nullptr;
}

void QuickCompressDialog::setFolder(const QString& folder)
{
    folder_->setText(folder);
}

void QuickCompressDialog::setCheckQuality(bool on)
{
    check_->setChecked(on);
}

QString QuickCompressDialog::outputPath() const
{
    const std::shared_ptr<const Model> model = document_->state().model;
    const QString base = model ? modelDisplayName(*model) : QStringLiteral("model");
    QString safe = base;
    safe.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9._-]+")), QStringLiteral("-"));
    return QDir(folder_->text()).filePath(safe + QLatin1Char('-') + selectedChoice() + QStringLiteral(".gguf"));
}

void QuickCompressDialog::updatePath()
{
    pathLabel_->setText(selectedChoice().isEmpty() ? QString() : outputPath());
    const auto it = std::find_if(choices_.begin(), choices_.end(), [&](const Choice& c) { return c.name == selectedChoice(); });
    if (it == choices_.end() || !estimated_) {
        proposal_->clear();
        return;
    }
    proposal_->setText(tr("<b>%1</b>: a file of %2 (%3 bits per weight)%4.")
                           .arg(it->name, formatBytes(it->bytes))
                           .arg(it->bitsPerWeight, 0, 'f', 2)
                           .arg(it->preset ? tr(", each tensor's type chosen by llama-quantize's rules for this preset")
                                           : QString()));
}

bool QuickCompressDialog::start()
{
    const auto it = std::find_if(choices_.begin(), choices_.end(), [&](const Choice& c) { return c.name == selectedChoice(); });
    if (!estimated_ || it == choices_.end() || runner_->isRunning()) {
        status_->setText(tr("Pick a type first."));
        return false;
    }
    const QString path = outputPath();
    if (!QDir().mkpath(folder_->text())) {
        status_->setText(tr("Cannot create the folder %1.").arg(folder_->text()));
        return false;
    }
    const CompressionState state = document_->state();
    GgufExportOptions opt;
    opt.preset = it->preset;
    opt.type = it->type;
    opt.overwrite = true;
    const bool check = check_->isChecked();
    const TextSource text = text_;
    pages_->setCurrentIndex(1);
    progress_->setValue(0);
    runner_->start([this, state, opt, path, check, text](JobContext& job) mutable {
        try {
            Result r;
            r.path = path;
            r.bytesBefore = filesOnDisk(*state.source);
            job.stage(0.0, check ? 0.5 : 1.0, tr("writing %1").arg(QFileInfo(path).fileName()));
            opt.progress = &job;
            const ExportResult written = exportGguf(*state.model, path.toStdString(), opt);
            r.bytesAfter = written.totalBytes;
            r.fallbacks = fallbackLines(written);
            if (check) {
                job.stage(0.5, 0.05, tr("opening the file written"));
                const std::shared_ptr<const Model> exported = openModel(path.toStdString());
                const std::vector<int32_t> tokens = loadTokenizer(*state.source)->encode(loadText(text), true);
                const ScoringOptions so = ComparePanel::comparisonWindows(*state.source, static_cast<int64_t>(tokens.size()),
                                                                          text.displayName());
                const Transformer base(*state.source, &job);
                const Transformer after(*exported, &job);
                job.stage(0.55, 0.45, tr("checking quality against the original"));
                const ComparisonResult c = compareModels(base, after, tokens, so, &job);
                r.pplBefore = std::exp(c.nllReference);
                r.pplAfter = std::exp(c.nllCandidate);
                r.klMean = c.klMean;
                r.top1 = c.top1Agreement;
                r.tokensScored = c.tokensScored;
            }
            job.post([this, r] {
                result_ = r;
                showCard(r);
                emit finished(true);
            });
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory to write the file."));
            const bool cancelled = f.cancelled || job.cancelled();
            job.post([this, cancelled, message = f.message] {
                pages_->setCurrentIndex(0);
                status_->setText(cancelled ? tr("Cancelled; no file was written.") : message);
                emit finished(false);
            });
        }
    });
    return true;
}

void QuickCompressDialog::showCard(const Result& r)
{
    QString card = tr("<h3>Your smaller model is ready</h3>");
    card += QStringLiteral("<p><tt>%1</tt></p><table>").arg(r.path.toHtmlEscaped());
    const auto row = [](const QString& what, const QString& value) {
        return QStringLiteral("<tr><td>%1</td><td>&nbsp;&nbsp;%2</td></tr>").arg(what, value);
    };
    const double ratio = r.bytesAfter ? static_cast<double>(r.bytesBefore) / static_cast<double>(r.bytesAfter) : 0.0;
    card += row(tr("Size on disk"), tr("%1 → <b>%2</b> (%3× smaller)")
                                        .arg(formatBytes(r.bytesBefore), formatBytes(r.bytesAfter))
                                        .arg(ratio, 0, 'f', 2));
    if (r.tokensScored > 0) {
        card += row(tr("Perplexity"), tr("%1 → <b>%2</b> (%3%4 %)")
                                          .arg(r.pplBefore, 0, 'f', 3)
                                          .arg(r.pplAfter, 0, 'f', 3)
                                          .arg(r.pplAfter >= r.pplBefore ? QStringLiteral("+") : QString())
                                          .arg(100.0 * (r.pplAfter / r.pplBefore - 1.0), 0, 'f', 1));
        card += row(tr("KL(original ‖ file)"), tr("%1 nats per token").arg(r.klMean, 0, 'g', 3));
        card += row(tr("Same top token"), QStringLiteral("%1 %").arg(100.0 * r.top1, 0, 'f', 1));
        card += row(tr("Measured on"), tr("%1 tokens of %2").arg(r.tokensScored).arg(text_.displayName().toHtmlEscaped()));
    }
    card += QStringLiteral("</table>");
    if (!r.fallbacks.isEmpty()) {
        card += tr("<p>Some tensors could not take the chosen type:</p><ul>");
        for (const QString& line : r.fallbacks)
            card += QStringLiteral("<li>%1</li>").arg(line.toHtmlEscaped());
        card += QStringLiteral("</ul>");
    }
    card_->setText(card);
    pages_->setCurrentIndex(2);
}

QString QuickCompressDialog::cardText() const
{
    return html(card_->text());
}

QString QuickCompressDialog::statusText() const
{
    return status_->text();
}

void QuickCompressDialog::cancel()
{
    runner_->cancel();
}

bool QuickCompressDialog::isRunning() const
{
    return runner_->isRunning();
}

void QuickCompressDialog::reject()
{
    if (runner_->isRunning()) {
        runner_->cancelAndWait();
        pages_->setCurrentIndex(0);
    }
    QDialog::reject();
}

} // namespace ll::gui
