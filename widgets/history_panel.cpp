#include "history_panel.h"

#include "format.h"
#include "model_document.h"

#include <QLabel>
#include <QUndoStack>
#include <QUndoView>
#include <QVBoxLayout>

namespace ll::gui {

HistoryPanel::HistoryPanel(ModelDocument* document, QWidget* parent)
    : QWidget(parent), document_(document), view_(new QUndoView(document->undoStack(), this)), memory_(new QLabel(this))
{
    view_->setEmptyLabel(tr("<model as opened>"));
    memory_->setWordWrap(true);
    memory_->setToolTip(tr("Edited tensors that only earlier (or undone) steps keep alive, in memory or in temporary "
                           "files. Past the budget the oldest steps are dropped from the history, with a message. "
                           "Set the budget with LAYERLAB_UNDO_MEMORY_MB."));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(view_, 1);
    layout->addWidget(memory_);
    connect(document->undoStack(), &QUndoStack::indexChanged, this, &HistoryPanel::refresh);
    connect(document, &ModelDocument::modelChanged, this, &HistoryPanel::refresh);
    connect(document, &ModelDocument::historyTrimmed, this, &HistoryPanel::refresh);
    refresh();
}

QString HistoryPanel::memoryText() const
{
    QString text = tr("Kept for undo: %1 of %2")
                       .arg(formatBytes(document_->historyBytes()), formatBytes(document_->historyBudget()));
    if (const int dropped = document_->droppedSteps(); dropped > 0)
        text += tr("; %1 oldest step%2 dropped to stay within it").arg(dropped).arg(dropped == 1 ? "" : "s");
    return text;
}

void HistoryPanel::refresh()
{
    // Once steps were dropped, the first entry is no longer the model as opened.
    view_->setEmptyLabel(document_->droppedSteps() > 0 ? tr("<earlier steps dropped>") : tr("<model as opened>"));
    memory_->setText(memoryText());
}

} // namespace ll::gui
