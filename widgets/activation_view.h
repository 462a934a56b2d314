#pragma once
// The activation view: for the linear layer selected in the model tree, the
// per-input-channel max |x| and RMS of its input over a short calibration
// run, with the outlier channels (value > k × median) marked and listed:
// SmoothQuant's observation made visible. One capture records the inputs of
// every linear layer of the model and is kept for that model, so selecting
// another layer is instant. The capture runs in the background (progress,
// Cancel) on the evaluation text or the built-in sample.
#include "activation_stats.h"

#include <QWidget>

#include <functional>
#include <memory>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace ll {
class EngineCache;
} // namespace ll

namespace ll::gui {

class ActivationPlot;
class JobRunner;
class ModelDocument;

class ActivationView : public QWidget {
    Q_OBJECT
public:
    ActivationView(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent = nullptr);
    ~ActivationView() override;

    // Where "Evaluation text" comes from (the Evaluate dock's choice).
    void setEvaluationTextProvider(std::function<TextSource()> provider);
    void evaluationTextChanged();

    // Starts a capture with the current settings (replacing the cached one when it ends).
    void capture();
    void cancel();
    bool isBusy() const;

    // The capture in use for this model (null before the first one).
    std::shared_ptr<const ActivationCapture> currentCapture() const { return capture_; }
    // The channels marked as outliers for the selected layer, largest first.
    std::vector<int64_t> outlierChannels() const { return outliers_.channels; }
    const OutlierChannels& outliers() const { return outliers_; }
    QString summaryText() const;
    QString statusText() const;
    // The linear shown: block and role, or block -1 when none.
    int shownBlock() const { return shownBlock_; }

    QComboBox* textBox() const { return textBox_; }
    QSpinBox* windowsBox() const { return windowsBox_; }
    QSpinBox* contextBox() const { return contextBox_; }
    QComboBox* basisBox() const { return basisBox_; }
    QDoubleSpinBox* kBox() const { return kBox_; }
    QCheckBox* logYBox() const { return logYBox_; }
    QPushButton* captureButton() const { return captureButton_; }
    QPushButton* cancelButton() const { return cancelButton_; }
    QTableWidget* outlierTable() const { return table_; }
    ActivationPlot* plot() const { return plot_; }

signals:
    void busyChanged(bool busy);
    // A capture ended (successfully or not) and the view shows its outcome.
    void captureFinished();
    // The selected layer's channels (or a message) are on screen.
    void shown();

private:
    void refresh();
    void setStatus(const QString& text, bool error = false);
    void updateEnabled();
    TextSource chosenText() const;

    ModelDocument* document_;
    std::shared_ptr<EngineCache> engines_;
    JobRunner* runner_;
    std::function<TextSource()> evalText_;
    QComboBox* textBox_;
    QSpinBox* windowsBox_;
    QSpinBox* contextBox_;
    QPushButton* captureButton_;
    QPushButton* cancelButton_;
    QProgressBar* progress_;
    QLabel* status_;
    QComboBox* basisBox_;
    QDoubleSpinBox* kBox_;
    QCheckBox* logYBox_;
    QLabel* summary_;
    QLabel* layerLabel_;
    ActivationPlot* plot_;
    QTableWidget* table_;
    std::shared_ptr<const ActivationCapture> capture_;
    OutlierChannels outliers_;
    int shownBlock_ = -1;
};

} // namespace ll::gui
