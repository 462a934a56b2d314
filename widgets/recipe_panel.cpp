#include "recipe_panel.h"

#include "job_progress.h"
#include "job_runner.h"
#include "model_document.h"
#include "panel_util.h"
#include "recipe_replay.h"

#include "methods/method_registry.h"

#include "pipeline/model_compression.h"
#include "recipe/apply.h"
#include "util/error.h"
#include "util/input_file.h"
#include "util/json_util.h"

#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QProgressBar>
#include <QPushButton>
#include <QToolButton>
#include <QVBoxLayout>

#include <new>

namespace ll::gui {

RecipePanel::RecipePanel(ModelDocument* document, QWidget* parent)
    : QWidget(parent), document_(document), runner_(new JobRunner(this))
{
    setObjectName(QStringLiteral("recipePanel"));
    list_ = new QListWidget(this);
    list_->setAlternatingRowColors(true);
    list_->setWordWrap(true);
    calibration_ = new QLabel(this);
    calibration_->setWordWrap(true);
    setSecondaryText(calibration_);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    progress_ = makeSlimProgressBar(this);
    progress_->hide();

    saveButton_ = new QPushButton(tr("Save…"), this);
    saveButton_->setToolTip(tr("Save the recipe as YAML or JSON (replay it with layerlab-cli apply)"));
    loadButton_ = new QPushButton(tr("Load…"), this);
    loadButton_->setToolTip(tr("Replay a recipe on the model as opened (one undoable step)"));
    examplesButton_ = new QToolButton(this);
    examplesButton_->setText(tr("Examples"));
    examplesButton_->setPopupMode(QToolButton::InstantPopup);
    auto* examples = new QMenu(examplesButton_);
    for (const QFileInfo& f : QDir(QStringLiteral(":/recipes")).entryInfoList(QDir::Files, QDir::Name)) {
        const QString path = f.filePath();
        examples->addAction(f.fileName(), this, [this, path] { loadFrom(path); });
    }
    examplesButton_->setMenu(examples);
    // Short labels: this row sets the dock's minimum width (at 150 % zoom the window must fit 1280 pixels).
    removeButton_ = new QPushButton(tr("Remove"), this);
    removeButton_->setToolTip(tr("Remove the selected step: the recipe is replayed without it"));
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    cancelButton_->hide();

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(saveButton_);
    buttons->addWidget(loadButton_);
    buttons->addWidget(examplesButton_);
    buttons->addStretch(1);
    buttons->addWidget(removeButton_);
    buttons->addWidget(cancelButton_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addWidget(list_, 1);
    layout->addWidget(calibration_);
    layout->addLayout(buttons);
    layout->addWidget(progress_);
    layout->addWidget(status_);

    connect(saveButton_, &QPushButton::clicked, this, &RecipePanel::chooseSave);
    connect(loadButton_, &QPushButton::clicked, this, &RecipePanel::chooseLoad);
    connect(removeButton_, &QPushButton::clicked, this, [this] { removeStep(list_->currentRow()); });
    connect(cancelButton_, &QPushButton::clicked, runner_, &JobRunner::cancel);
    connect(list_, &QListWidget::currentRowChanged, this, [this] { removeButton_->setEnabled(list_->currentRow() >= 0 && !isBusy()); });
    showJobProgress(runner_, progress_);
    connect(runner_, &JobRunner::runningChanged, this, [this](bool running) {
        progress_->setVisible(running);
        // Cancel takes Remove step's place: both in the row widen the dock past a 1280-pixel window.
        cancelButton_->setVisible(running);
        removeButton_->setVisible(!running);
        refresh();
    });
    connect(document_, &ModelDocument::modelAboutToChange, runner_, &JobRunner::abandon);
    connect(document_, &ModelDocument::modelChanged, this, &RecipePanel::refresh);
    connect(document_, &ModelDocument::modelEdited, this, &RecipePanel::refresh);
    refresh();
}

RecipePanel::~RecipePanel()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's signals must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

void RecipePanel::cancel()
{
    runner_->cancel();
}

bool RecipePanel::isBusy() const
{
    return runner_->isRunning();
}

void RecipePanel::setStatus(const QString& text, bool error)
{
    statusText_ = text;
    status_->setText(error ? QStringLiteral("<span style='color:#b3261e'>%1</span>").arg(text.toHtmlEscaped())
                           : text.toHtmlEscaped());
}

QString RecipePanel::targetSummary(const CompressionState& st, const RecipeStep& s, QStringList& layers) const
{
    if (s.params.contains("structured"))
        return tr("every block");
    if (const MethodSpec* m = findMethodSpec(s.action, s.method()); m && !m->wholeModelScope.empty())
        return QString::fromStdString(m->wholeModelScope);
    if (s.action == StepAction::Rotate)
        return tr("the whole model");
    if (s.action == StepAction::KvCache)
        return tr("every block's KV cache");
    if (st.source) {
        try {
            for (const LogicalTensor* t : selectTargets(*st.source, s.layers))
                layers << QString::fromStdString(t->logicalName);
        } catch (const Error&) {
            // matches nothing in this model: show the pattern as it is
        }
    }
    if (s.layers.empty())
        return layers.isEmpty() ? tr("every block linear") : tr("every block linear (%1)").arg(layers.size());
    // A short pattern reads as it is; a long one (a plan's list of names) as its count and ends.
    const QString pattern = QString::fromStdString(s.layers);
    if (layers.isEmpty())
        return pattern;
    if (pattern.size() <= 32)
        return layers.size() == 1 ? tr("%1 (1 layer)").arg(pattern) : tr("%1 (%2 layers)").arg(pattern).arg(layers.size());
    if (layers.size() == 1)
        return tr("1 layer: %1").arg(layers.front());
    return tr("%1 layers: %2 … %3").arg(layers.size()).arg(layers.front(), layers.back());
}

void RecipePanel::refresh()
{
    const CompressionState& st = document_->state();
    list_->clear();
    for (size_t i = 0; i < st.steps.size(); ++i) {
        const RecipeStep& s = st.steps[i];
        QStringList layers;
        const QString target = targetSummary(st, s, layers);
        auto* item = new QListWidgetItem(QStringLiteral("%1. %2 — %3")
                                             .arg(i + 1)
                                             .arg(QString::fromStdString(s.badge()), target),
                                         list_);
        // The full layer list on demand: a mixed-precision plan's pattern is a long list of exact names.
        QString tip = QString::fromStdString(dumpJson(s.toJson(), 1));
        if (layers.size() > 1)
            tip = tr("%1 layers:").arg(layers.size()) + QStringLiteral("\n  ") + layers.join(QStringLiteral("\n  "))
                  + QStringLiteral("\n\n") + tip;
        item->setToolTip(tip);
    }
    if (st.steps.empty())
        list_->addItem(new QListWidgetItem(tr("No steps yet: apply one from the Compress panel, or load a recipe.")));
    const bool have = document_->hasModel();
    calibration_->setText(st.steps.empty() ? QString()
                                           : tr("Calibration: %1, up to %2 windows of %3 tokens")
                                                 .arg(st.calibration.isBuiltin() ? tr("built-in sample")
                                                                                 : QFileInfo(QString::fromStdString(st.calibration.text)).fileName())
                                                 .arg(st.calibration.windows)
                                                 .arg(st.calibration.context));
    saveButton_->setEnabled(have && !st.steps.empty() && !isBusy());
    loadButton_->setEnabled(have && !isBusy());
    examplesButton_->setEnabled(have && !isBusy());
    removeButton_->setEnabled(have && !st.steps.empty() && list_->currentRow() >= 0 && !isBusy());
}

QString RecipePanel::saveTo(const QString& path)
{
    try {
        saveRecipe(document_->state().recipe(), path.toStdString());
    } catch (const std::exception& e) {
        setStatus(QString::fromStdString(e.what()), true);
        return statusText_;
    }
    setStatus(tr("Saved %1. Replay it with: layerlab-cli apply %2 MODEL").arg(QFileInfo(path).fileName(), path));
    return {};
}

void RecipePanel::chooseSave()
{
    const QString path = QFileDialog::getSaveFileName(this, tr("Save recipe"), QStringLiteral("recipe.yaml"),
                                                      tr("YAML (*.yaml *.yml);;JSON (*.json)"));
    if (!path.isEmpty())
        saveTo(path);
}

void RecipePanel::chooseLoad()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Load recipe"), QString(),
                                                      tr("Recipes (*.yaml *.yml *.json);;All files (*)"));
    if (!path.isEmpty())
        loadFrom(path);
}

void RecipePanel::loadFrom(const QString& path)
{
    Recipe recipe;
    try {
        if (!path.startsWith(QLatin1Char(':'))) // Qt resources (the bundled recipes) are not files
            requireRegularFile(path.toStdString(), kMaxRecipeFileBytes, "the recipe");
        QFile f(path);
        if (!f.open(QIODevice::ReadOnly))
            fail(ErrorCode::Io, path.toStdString(), "cannot open the recipe");
        const QByteArray bytes = f.readAll();
        const bool yaml = path.endsWith(QLatin1String(".yaml")) || path.endsWith(QLatin1String(".yml"));
        recipe = parseRecipe(bytes.toStdString(), yaml, path.toStdString());
    } catch (const std::exception& e) {
        setStatus(QString::fromStdString(e.what()), true);
        emit replayFinished(false);
        return;
    }
    replay(recipe, tr("Load recipe %1").arg(QFileInfo(path).fileName()));
}

void RecipePanel::removeStep(int index)
{
    const CompressionState& st = document_->state();
    if (index < 0 || index >= static_cast<int>(st.steps.size()))
        return;
    Recipe r = st.recipe();
    const QString what = QString::fromStdString(r.steps[static_cast<size_t>(index)].badge());
    r.steps.erase(r.steps.begin() + index);
    replay(r, tr("Remove step %1 (%2)").arg(index + 1).arg(what));
}

void RecipePanel::replay(const Recipe& recipe, const QString& label)
{
    if (!document_->hasModel())
        return;
    setStatus(tr("%1…").arg(label));
    replayRecipe(runner_, document_, recipe, label, [this, label](ReplayOutcome outcome, const QString& message) {
        const bool ok = outcome == ReplayOutcome::Applied;
        setStatus(ok ? tr("%1: done.").arg(label) : message, outcome == ReplayOutcome::Failed || outcome == ReplayOutcome::Stale);
        emit replayFinished(ok);
    });
}

} // namespace ll::gui
