#pragma once
// The Sensitivity dock: compress one layer at a time with a step template
// (RTN 3-bit, Wanda 50 %, SVD 25 % rank, ...) and measure what it costs on a
// few evaluation windows (core/analysis/sensitivity.h), as a sortable table,
// a bar chart and a block × projection heatmap; then plan mixed precision
// under a bits-per-weight budget (core/analysis/mixed_precision.h) and apply
// the plan as one undoable command.
//
// Results belong to the state they were measured on: opening another model
// clears them, an edit (a step applied, undone) marks them as measured on an
// earlier state and "Apply plan" refuses until the plan is measured again.
#include "target_selector.h"

#include "analysis/mixed_precision.h"
#include "analysis/sensitivity.h"

#include <QString>
#include <QWidget>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTableWidget;

namespace ll::gui {

class MethodForm;

class JobRunner;
class ModelDocument;
class SensitivityBarPlot;
class SensitivityHeatmap;

class SensitivityPanel : public QWidget {
    Q_OBJECT
public:
    using Target = TargetSelector::Target;

    explicit SensitivityPanel(ModelDocument* document, QWidget* parent = nullptr);
    ~SensitivityPanel() override;

    // The tree's selection (logical names), asked for when the target is "Selected layers".
    void setSelectionProvider(std::function<std::vector<std::string>()> provider);

    // The form, for scripts and tests (the widgets show the same).
    // method: "rtn", "gptq", "awq", "magnitude", "wanda", "svd".
    void setMethod(const QString& method, int bits = 3, int group = 32, double sparsityOrRank = 0.5);
    void setTarget(Target target, const QString& pattern = QString());
    void setEvalFile(const QString& path); // empty: the built-in sample
    QString evalFile() const { return evalFile_; }
    void setWindows(int windows, int context);
    void setMetric(SensitivityMetric metric);
    void setCandidates(const QString& text);
    void setBudget(double bitsPerWeight);
    // What is measured: the original model (the default: a layer's sensitivity
    // is a property of the model, not of the steps applied so far) or the
    // current state, stacked on those steps.
    enum class Base { Original, Current };
    void setBase(Base base);
    Base base() const;

    RecipeStep currentStep() const;
    const MethodSpec* currentSpec() const; // the method chosen, from the registry
    SensitivityMetric metric() const;

    void run();        // the sensitivity sweep
    void plan();       // mixed precision
    void applyPlan();  // replays the plan's recipe as one undoable command
    void cancel();
    bool isBusy() const;

    // Results (kept until the model changes).
    const std::optional<SensitivityResult>& result() const { return result_; }
    const std::vector<LayerSensitivity>& rows() const { return rows_; } // as they arrived
    const std::optional<MixedPrecisionResult>& mixed() const { return mixed_; }
    bool isStale() const { return stale_; }
    QString statusText() const { return statusText_; }

    QTableWidget* table() const { return table_; }
    QTableWidget* planTable() const { return planTable_; }
    SensitivityBarPlot* barPlot() const { return bars_; }
    SensitivityHeatmap* heatmap() const { return heatmap_; }
    QTabWidget* tabs() const { return tabs_; }
    // The block linears the step would compress (core's selectTargets for a pattern).
    std::vector<std::string> targetNames() const;

signals:
    void runFinished(bool ok);
    void evalTextChanged(const QString& path); // the user chose another text (empty: the built-in sample)
    void planFinished(bool ok);
    void planApplied(bool ok);

private:
    enum class Job { None, Sweep, Plan, Apply };
    // The state measured: the source alone, or the document's state.
    CompressionState baseState() const;
    std::shared_ptr<const Model> baseModel() const;
    QString baseText() const; // "the original model", "the current state (2 steps)"
    void updateForm();
    void updateButtons();
    void setBusy(Job job, const QString& what);
    void setStatus(const QString& text, bool error = false);
    void clearResults();
    void markStale();
    void addRow(const LayerSensitivity& row);
    void refreshViews();
    void showPlan();

    ModelDocument* document_;
    JobRunner* runner_;
    Job job_ = Job::None;

    QComboBox* methodBox_;
    MethodForm* methodForm_; // the chosen method's parameters, from its schema
    TargetSelector* targets_;
    QComboBox* textBox_;
    QString evalFile_;
    QSpinBox* windowsBox_;
    QSpinBox* contextBox_;
    QComboBox* metricBox_;
    QComboBox* baseBox_;
    QString measuredText_; // baseText() when the results were measured
    QPushButton* runButton_;
    QPushButton* cancelButton_;
    QProgressBar* progress_;
    QLabel* progressText_;
    QLabel* status_;
    QString statusText_;
    QLabel* summary_;

    QTabWidget* tabs_;
    QTableWidget* table_;
    SensitivityBarPlot* bars_;
    SensitivityHeatmap* heatmap_;

    QLineEdit* candidatesEdit_;
    QDoubleSpinBox* budgetBox_;
    QPushButton* planButton_;
    QPushButton* applyButton_;
    QLabel* planSummary_;
    QTableWidget* planTable_;

    std::optional<SensitivityResult> result_;
    std::vector<LayerSensitivity> rows_;
    std::optional<MixedPrecisionResult> mixed_;
    std::shared_ptr<const Model> measuredOn_; // the model the results were measured on
    QString measuredEval_, plannedEval_;       // and the evaluation text (evalFile_ then)
    std::shared_ptr<const Model> plannedOn_;
    bool stale_ = false;
};

} // namespace ll::gui
