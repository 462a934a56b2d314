#pragma once
// Compare: every configuration evaluated in this session (the perplexity of
// the Evaluate panel with the state's bits/weight, estimated size and
// parameter count), as a table and a size-vs-perplexity scatter. Clicking a
// point (or double-clicking a row) replays that configuration's recipe.
#include "recipe/recipe.h"

#include "eval/scoring.h"
#include "model/model.h"
#include "tasks/task_eval.h"

#include <map>

#include <QWidget>

#include <cstdint>
#include <vector>

class QCustomPlot;
class QLabel;
class QMouseEvent;
class QPushButton;
class QTableWidget;

namespace ll::gui {

class JobRunner;
class ModelDocument;
class PerplexityPanel;
class RecipePanel;

class ComparePanel : public QWidget {
    Q_OBJECT
public:
    struct Entry {
        Recipe recipe;
        QString label;            // "original", "GPTQ 4b g128 on attn + …"
        double ppl = 0, pplStderr = 0;
        double bitsPerWeight = 0; // over the block linears
        double sizeMiB = 0;       // modelSize(): the model as held
        int64_t parameters = 0;
        int64_t context = 0;
        QString text;
        // Each task's main metric on this configuration (Evaluate › Tasks), when it was measured.
        std::map<std::string, double> tasks;
    };

    ComparePanel(ModelDocument* document, PerplexityPanel* perplexity, RecipePanel* recipes, QWidget* parent = nullptr);
    ~ComparePanel() override;

    const std::vector<Entry>& entries() const { return entries_; }
    // Records the evaluation on screen for the current state (replaces one of the same recipe and text).
    void addCurrent();
    // Replays entry `index`'s recipe on the source model (one undo command).
    void restore(int index);
    void clear();
    // The entries saved with a session.
    void setEntries(std::vector<Entry> entries);
    QTableWidget* table() const { return table_; }
    QCustomPlot* plot() const { return plot_; }

    // Task results of a configuration (the Tasks tab's runs: the original's and the current state's),
    // kept by recipe and shown against the perplexity of the entry with the same recipe.
    void addTaskResults(const std::vector<RecipeStep>& steps, const std::vector<TaskResult>& results);
    // Task metric against perplexity, one series per task, over the entries that have both.
    QCustomPlot* proxyPlot() const { return proxyPlot_; }
    // "story_order (acc): Spearman -0.88 [-0.99, -0.18], Kendall ... over 6 configurations", one line per task
    // with at least 3 configurations; empty otherwise.
    QString proxySummary() const;
    // The entry whose point is nearest to `pos` (plot pixels), -1 when none within reach.
    int pointAt(const QPoint& pos) const;

    // The original against the current state on the Evaluate text (at most
    // kCompareWindows windows): perplexity of both, KL divergence, top-1
    // agreement, size, bits per weight, compression ratio, parameters and
    // FLOPs per token. In the background; the numbers land in comparison().
    static constexpr int kCompareWindows = 16;
    // That protocol's windows for `source` on a text of `tokens` tokens: up to
    // kCompareWindows windows of min(256, the model's positions) tokens. Throws
    // InvalidArgument naming `textName` when the text is shorter than one window.
    // Shared with the quick-compress dialog's quality check.
    static ScoringOptions comparisonWindows(const Model& source, int64_t tokens, const QString& textName);
    void compareWithOriginal();
    bool isBusy() const;
    // Asks the running comparison to stop (the window's stopJobs on close).
    void cancel();
    QString comparison() const; // the shown summary as plain text

signals:
    void comparisonReady(bool ok);

    void entriesChanged();

private:
    void refresh();
    void refreshProxy();
    void onPlotClick(QMouseEvent* event);

    ModelDocument* document_;
    PerplexityPanel* perplexity_;
    RecipePanel* recipes_;
    QTableWidget* table_;
    QCustomPlot* plot_;
    QCustomPlot* proxyPlot_;
    QLabel* proxyLabel_;
    // Task metrics by recipe (its steps as JSON), also for configurations not yet in the table.
    std::map<std::string, std::map<std::string, double>> taskResults_;
    JobRunner* runner_;
    QPushButton* compareButton_;
    QLabel* comparison_;
    std::vector<Entry> entries_;
};

} // namespace ll::gui
