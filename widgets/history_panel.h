#pragma once
// The History dock: the undo stack (QUndoView) and what it costs. The line
// under the list says how many bytes of edits only the history keeps alive,
// against its budget, and how many of the oldest steps were dropped to stay
// within it (ModelDocument::trimHistory), so that a step never leaves the
// history silently.
#include <QWidget>

class QLabel;
class QUndoView;

namespace ll::gui {

class ModelDocument;

class HistoryPanel : public QWidget {
    Q_OBJECT
public:
    explicit HistoryPanel(ModelDocument* document, QWidget* parent = nullptr);

    QUndoView* view() const { return view_; }
    // The memory line as shown ("Kept for undo: 1.2 GiB of 4 GiB").
    QString memoryText() const;

private:
    void refresh();

    ModelDocument* document_;
    QUndoView* view_;
    QLabel* memory_;
};

} // namespace ll::gui
