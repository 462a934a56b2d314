#pragma once
// Task accuracy in the Evaluate dock: a list of task files (HellaSwag, ARC,
// MMLU, ... or a task definition; core/tasks), shots and an item limit, Run /
// Cancel with progress, and the results of the original model and of the
// current state side by side (value ± standard error, the change, chance),
// as a table and as bars with error bars. The original's results are kept,
// so evaluating after another compression step runs only the current state.
#include "tasks/task_eval.h"
#include "recipe/recipe.h"

#include <nlohmann/json.hpp>

#include <QString>
#include <QWidget>

#include <map>
#include <memory>
#include <optional>
#include <vector>

class QCustomPlot;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace ll {
class EngineCache;
} // namespace ll

namespace ll::gui {

class JobRunner;
class ModelDocument;

// One task file in the list: its path and the format it is read as ("" for a task definition).
struct TaskEntry {
    QString path;
    QString format;
    bool enabled = true;
};

// One finished run: every enabled task on the original and (with steps applied) on the current state.
struct TaskOutcome {
    std::vector<TaskResult> original;
    std::vector<TaskResult> current;     // empty when no step was applied
    std::vector<RecipeStep> steps;       // the state `current` measured
    int shots = 0;
    int64_t limit = 0;
};

class TaskPanel : public QWidget {
    Q_OBJECT
public:
    enum class State { Idle, Running, Cancelling, Done, Cancelled, Failed };

    TaskPanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent = nullptr);
    ~TaskPanel() override;

    // Adds a file; its format is guessed from its first line unless given ("" and a .yaml: a task definition).
    // False (and a message in the panel) when the format cannot be told.
    bool addTaskFile(const QString& path, const QString& format = {});
    const std::vector<TaskEntry>& tasks() const { return tasks_; }
    void setTaskEnabled(int row, bool enabled);

    void run();
    void cancel();
    bool isRunning() const;
    State state() const { return state_; }
    const std::optional<TaskOutcome>& shownResult() const { return shown_; }
    QString statusText() const;
    // The results on screen and the task list, for session files ({"tasks": [{path, format}], "shots",
    // "limit", "original": [...], "current": [...], "steps": recipe}); null when nothing was run.
    nlohmann::json sessionJson() const;
    // Shows results saved with a session (not re-run) and adds their task files to the list.
    // False, nothing shown, for a malformed section.
    bool restoreSession(const nlohmann::json& j);

    QTableWidget* taskTable() const { return taskTable_; }
    QTableWidget* resultTable() const { return results_; }
    QCustomPlot* plot() const { return plot_; }
    QSpinBox* shotsBox() const { return shotsBox_; }
    QSpinBox* limitBox() const { return limitBox_; }
    QPushButton* runButton() const { return runButton_; }
    QPushButton* cancelButton() const { return cancelButton_; }

signals:
    void finished();
    void runningChanged(bool running);

private:
    void chooseFiles();
    void removeSelected();
    void rebuildTaskTable();
    void setState(State state, const QString& message = {});
    void showOutcome(const TaskOutcome& outcome);
    void updateEnabled();
    void saveSettings() const;
    QString cacheKey(const TaskEntry& entry, int shots, int64_t limit) const;

    ModelDocument* document_;
    std::shared_ptr<EngineCache> engines_;
    JobRunner* runner_;
    QTableWidget* taskTable_;
    QPushButton* addButton_;
    QPushButton* removeButton_;
    QSpinBox* shotsBox_;
    QSpinBox* limitBox_;
    QPushButton* runButton_;
    QPushButton* cancelButton_;
    QProgressBar* progress_;
    QLabel* progressText_;
    QLabel* statusLabel_;
    QTableWidget* results_;
    QCustomPlot* plot_;
    std::vector<TaskEntry> tasks_;
    State state_ = State::Idle;
    std::optional<TaskOutcome> shown_;
    // The original model's results by task, shots and limit (cleared when another model opens).
    std::map<QString, TaskResult> originalCache_;
};

} // namespace ll::gui
