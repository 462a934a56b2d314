#pragma once
// The recipe dock: the steps applied so far, in order (target, method,
// parameters), with save / load (YAML or JSON, docs/recipes.md), the example
// recipes, and removal of a step. Loading or removing replays the recipe from
// the source model in the background and lands as one undoable command.
#include "recipe/recipe.h"

#include <QStringList>
#include <QWidget>

class QLabel;
class QListWidget;
class QProgressBar;
class QPushButton;
class QToolButton;

namespace ll {
struct CompressionState;
}

namespace ll::gui {

class JobRunner;
class ModelDocument;

class RecipePanel : public QWidget {
    Q_OBJECT
public:
    explicit RecipePanel(ModelDocument* document, QWidget* parent = nullptr);
    ~RecipePanel() override;

    // Writes the document's recipe; returns an error message or an empty string.
    QString saveTo(const QString& path);
    // Replays a recipe file (or a Qt resource ":/recipes/...") on the source model, in the background.
    void loadFrom(const QString& path);
    // Replays `recipe` from the source model; `label` names the undo command.
    void replay(const Recipe& recipe, const QString& label);
    void removeStep(int index);
    bool isBusy() const;
    // Asks a running replay to stop (its Cancel button; the window's stopJobs on close).
    void cancel();
    QString statusText() const { return statusText_; }
    QListWidget* list() const { return list_; }

signals:
    void replayFinished(bool ok);

private:
    void refresh();
    // What a step targets in words ("24 layers: blocks.0.attn.q … blocks.5.mlp.down"); `layers` gets every name.
    QString targetSummary(const CompressionState& st, const RecipeStep& s, QStringList& layers) const;
    void setStatus(const QString& text, bool error = false);
    void chooseSave();
    void chooseLoad();

    ModelDocument* document_;
    JobRunner* runner_;
    QListWidget* list_;
    QLabel* calibration_;
    QLabel* status_;
    QProgressBar* progress_;
    QPushButton* saveButton_;
    QPushButton* loadButton_;
    QToolButton* examplesButton_;
    QPushButton* removeButton_;
    QPushButton* cancelButton_;
    QString statusText_;
};

} // namespace ll::gui
