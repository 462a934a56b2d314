#pragma once
// The opened model and the tensor the user is looking at, shared by every
// view of the main window. Views hold no model of their own: they listen.
//
// Compression edits the model through the undo stack only: an applied step
// (ApplyStepCommand) swaps one immutable CompressionState for the next, so
// undo and redo are exact and cheap (the states share the source mapping).
#include "model/model.h"
#include "recipe/apply.h"

#include <QObject>
#include <QString>
#include <QStringList>

#include <memory>

class QUndoStack;

namespace ll::gui {

class ModelDocument : public QObject {
    Q_OBJECT
public:
    explicit ModelDocument(QObject* parent = nullptr);
    ~ModelDocument() override;

    // Opens a checkpoint; on failure returns a message for the user and keeps
    // the previous model. Returns an empty string on success.
    QString open(const QString& path);
    // After open() failed: the core's precise message behind the plain one it returned.
    QString lastErrorDetails() const { return lastErrorDetails_; }
    // The generated demo model (makeDemoModel).
    void openDemo();
    void setModel(std::shared_ptr<const Model> model);
    void close();

    // Jobs copy this pointer: it keeps the tensor bytes alive while they run.
    // With compression steps applied, the edited model.
    std::shared_ptr<const Model> model() const { return model_; }
    bool hasModel() const { return model_ != nullptr; }

    // The compression state (source, edited model, per-layer records, steps).
    const CompressionState& state() const { return state_; }
    // What was done to a tensor, nullptr when nothing.
    const LayerRecord* record(const std::string& logicalName) const;
    QUndoStack* undoStack() const { return undo_; }
    // Pushes an undoable command that moves to `next` (the result of applying
    // steps to state()); `text` names it in the history ("GPTQ 4b g128 on attn").
    void pushState(CompressionState next, const QString& text, const QStringList& touched);
    // Used by the undo commands: replaces the state, emits modelEdited.
    void setState(const CompressionState& state, const QStringList& touched);

    // The undo history's memory: the bytes of edited tensors that only earlier
    // or undone states keep alive (the current state's are not counted). Past
    // the budget (default 4 GiB, LAYERLAB_UNDO_MEMORY_MB), pushState drops the
    // oldest steps from the history, keeping at least the newest one, and
    // says so (historyTrimmed). The bytes may be in memory or spilled to
    // temporary files (util/spill_buffer.h); both count.
    uint64_t historyBytes() const;
    uint64_t historyBudget() const { return historyBudget_; }
    void setHistoryBudget(uint64_t bytes) { historyBudget_ = bytes; }
    // Steps dropped from the history since the model was opened.
    int droppedSteps() const { return droppedSteps_; }

    // Index into model()->tensors, -1 when none.
    int currentTensor() const { return current_; }
    const LogicalTensor* currentLogical() const;
    void setCurrentTensor(int index);
    // By logical name ("blocks.0.mlp.down.weight") or stored name
    // ("model.layers.0.mlp.down_proj.weight"); -1 when there is none.
    int findTensor(const QString& name) const;
    // The tensor shown after opening: the first linear layer.
    int defaultTensor() const;
    // Makes defaultTensor() current without it counting as the user's choice:
    // views show it, but nothing heavy starts for it (the compression preview).
    void selectDefaultTensor();
    // The current tensor was chosen by selectDefaultTensor(), not by the user.
    bool currentIsDefault() const { return currentIsDefault_; }

signals:
    void modelAboutToChange();
    void modelChanged();
    // Same tensors, new values (a compression step applied, undone or redone):
    // views refresh what they show without resetting the tree.
    void modelEdited(const QStringList& touched);
    void currentTensorChanged(int index);
    // The oldest `dropped` steps left the undo history (its budget was exceeded);
    // `message` says which and why, for the status bar.
    void historyTrimmed(int dropped, const QString& message);

private:
    void trimHistory();
    // historyBytes() counting only the commands from index `first` on.
    uint64_t historyBytesFrom(int first) const;

    std::shared_ptr<const Model> model_;
    QString lastErrorDetails_;
    CompressionState state_;
    QUndoStack* undo_;
    int current_ = -1;
    bool currentIsDefault_ = false;
    uint64_t historyBudget_;
    int droppedSteps_ = 0;
};

} // namespace ll::gui
