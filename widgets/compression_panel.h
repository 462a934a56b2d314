#pragma once
// The compression panel: choose an action (quantize, prune, low rank), a
// method and its parameters for the selected layers, see a live preview of
// the current tensor (before/after histogram, sparsity mask, spectrum, error
// curve with the choice marked, the numbers), and apply. Apply runs in the
// background and lands as one undoable command on the document (the same
// applyStep() that `layerlab-cli apply` replays). Calibration text is one per
// recipe: it is chosen before the first step and fixed afterwards.
#include "target_selector.h"

#include "analysis/model_cost.h"
#include "recipe/recipe.h"

#include <QWidget>

#include <memory>
#include <optional>
#include <string>
#include <vector>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFrame;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTextBrowser;
class QTimer;

namespace ll {
struct PreviewResult;
} // namespace ll

namespace ll::gui {

class MethodForm;

class ErrorCurvePlot;
class HistogramPlot;
class JobRunner;
class ModelDocument;
class SparsityMaskView;
class SpectrumPlot;
class BlockInfluencePlot;
enum class PreviewChoice;

class CompressionPanel : public QWidget {
    Q_OBJECT
public:
    using Target = TargetSelector::Target;
    static constexpr int kPreviewBins = 96; // the before/after histogram

    explicit CompressionPanel(ModelDocument* document, QWidget* parent = nullptr);
    ~CompressionPanel() override;

    // The tree's selected tensors (logical names); linears inside blocks count.
    void setSelection(const std::vector<std::string>& logicalNames);
    // Form access (tests, recipes): the step the form describes now.
    RecipeStep currentStep() const;
    void setAction(StepAction action);
    void setMethod(const QString& id);
    void setTarget(Target target, const QString& pattern = {});
    // Parameters by recipe key ("bits", "group", "sparsity", "nm", "rank-ratio", ...).
    void setParam(const QString& key, const QVariant& value);
    void setCalibrationFile(const QString& path); // empty: the built-in sample
    void setCalibrationWindows(int windows);
    RecipeCalibration calibration() const;
    void setLivePreview(bool on);
    // Data-free methods: measure each layer's output error (the step's output_error).
    void setMeasureOutputError(bool on);

    // Previews the current tensor; a costly calibration pass asks first (isAsking()).
    void preview();
    // Answers the question: the full calibration pass, the small sample.
    void previewFull();
    void previewSample();
    void apply();
    void cancel();
    bool isBusy() const;
    bool isPreviewRunning() const;
    // The preview asks whether to run a costly calibration pass.
    bool isAsking() const;
    QString askText() const;
    // A live preview is scheduled (the form or the tensor just changed).
    bool isPreviewPending() const;
    // Shown to the user: the last error or outcome.
    QString statusText() const;
    const PreviewResult* lastPreview() const { return preview_.get(); }

    HistogramPlot* histogram() const { return histogram_; }
    SparsityMaskView* maskView() const { return mask_; }
    SpectrumPlot* spectrum() const { return spectrum_; }
    ErrorCurvePlot* curve() const { return curve_; }
    QTabWidget* previewTabs() const { return tabs_; }
    // The block linears the step would compress (core's selectTargets for a pattern).
    std::vector<std::string> targetNames() const;

signals:
    void previewReady();
    void applied(bool ok);  // after an Apply finished (ok: the command is on the undo stack)

protected:
    void showEvent(QShowEvent* event) override;

private:
    void runPreview(PreviewChoice choice);
    void formEdited();
    void rebuildMethods();
    void updateForm();
    void updateStructure(); // target controls and the output-error box for what the form says
    void updateTargetLabel();
    void updateCalibrationControls();
    void schedulePreview();
    void showPreview(const PreviewResult& r);
    void clearPreview(const QString& why);
    void setBusy(bool busy, const QString& what);
    void setStatus(const QString& text, bool error = false);
    // Steps that apply to every block at once (structured pruning, rotations): no target pattern.
    static bool wholeModel(const RecipeStep& step);

    ModelDocument* document_;
    JobRunner* runner_;
    QTimer* debounce_;
    std::vector<std::string> selection_; // the model tree's (setSelection)
    std::unique_ptr<PreviewResult> preview_;
    bool applying_ = false;
    bool armed_ = false;                 // the user asked for a preview since the model opened
    std::optional<JobCost> previewCost_; // of the preview running

    QComboBox* actionBox_;
    QComboBox* methodBox_;
    MethodForm* methodForm_; // the method's parameters, from its schema
    // Target and calibration
    TargetSelector* targets_;
    QComboBox* calibBox_;
    QSpinBox* calibWindowsBox_;
    QCheckBox* outputErrorBox_;
    QCheckBox* liveBox_;
    QTextBrowser* teaching_;
    // Actions
    QPushButton* previewButton_;
    QPushButton* applyButton_;
    QPushButton* cancelButton_;
    QProgressBar* progress_;
    QLabel* progressText_;
    QLabel* status_;
    QFrame* askBar_;
    QLabel* askLabel_;
    QPushButton* askRun_;
    QPushButton* askSample_;
    QPushButton* askSkip_;
    // Preview
    QLabel* numbers_;
    QTabWidget* tabs_;
    HistogramPlot* histogram_;
    SparsityMaskView* mask_;
    SpectrumPlot* spectrum_;
    BlockInfluencePlot* influence_;
    ErrorCurvePlot* curve_;
    QString statusText_;
};

} // namespace ll::gui
