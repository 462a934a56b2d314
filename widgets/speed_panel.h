#pragma once
// Speed and memory in the Evaluate dock: prefill and decode tokens/s as
// llama-bench measures them, the weights as held, the KV cache per 1k tokens,
// FLOPs per token and the process's memory, for the original model and the
// current state side by side (analysis/efficiency's compareEfficiency, the
// same measurement as `layerlab-cli bench-model --recipe`). A state that is
// smaller but decodes more slowly is flagged.
#include "analysis/efficiency.h"
#include "recipe/recipe.h"

#include <nlohmann/json.hpp>

#include <QString>
#include <QWidget>

#include <memory>
#include <optional>
#include <string>
#include <vector>

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

// One finished measurement.
struct SpeedOutcome {
    EfficiencyOptions options;
    EfficiencyComparison measured;   // edited: the current state, when steps were applied
    std::vector<RecipeStep> steps;   // the state measured as "current"
    std::string model;               // the original's path
    int threads = 0;                 // the threads the measurement started with
};

class SpeedPanel : public QWidget {
    Q_OBJECT
public:
    // The table's rows, in order.
    enum Row { Prefill, Decode, Weights, BitsPerWeight, Compression, KvCache, Flops, PeakRss, RssAnon, HugePages, Rows };

    SpeedPanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent = nullptr);
    ~SpeedPanel() override;

    void run();
    void cancel();
    bool isRunning() const;
    const std::optional<SpeedOutcome>& shownResult() const { return shown_; }
    QString statusText() const;
    // The figures shown in bench-model's form (core's comparisonJson) with the measured state's "steps";
    // null when nothing was measured.
    nlohmann::json sessionJson() const;
    // The same without the steps, as the HDF5 report's /efficiency, when the figures were measured on the
    // document's current state; null otherwise.
    nlohmann::json reportJson() const;
    // Shows a measurement saved with a session (not re-run); false, nothing shown, for a malformed section.
    bool restoreSession(const nlohmann::json& j);

    QSpinBox* promptBox() const { return promptBox_; }
    QSpinBox* decodeBox() const { return decodeBox_; }
    QSpinBox* decodeAfterBox() const { return decodeAfterBox_; }
    QSpinBox* repeatsBox() const { return repeatsBox_; }
    QPushButton* runButton() const { return runButton_; }
    QPushButton* cancelButton() const { return cancelButton_; }
    QTableWidget* resultTable() const { return table_; }
    QLabel* flagLabel() const { return flag_; }

signals:
    void finished();

private:
    void showOutcome(const SpeedOutcome& outcome);
    void setStatus(const QString& text);
    void updateEnabled();

    ModelDocument* document_;
    std::shared_ptr<EngineCache> engines_;
    JobRunner* runner_;
    QSpinBox* promptBox_;
    QSpinBox* decodeBox_;
    QSpinBox* decodeAfterBox_;
    QSpinBox* repeatsBox_;
    QPushButton* runButton_;
    QPushButton* cancelButton_;
    QProgressBar* progress_;
    QLabel* progressText_;
    QLabel* status_;
    QLabel* flag_;
    QTableWidget* table_;
    std::optional<SpeedOutcome> shown_;
};

} // namespace ll::gui
