#pragma once
// File › Export: writes the document's model (with its compression steps) as
// any of a GGUF file, a Hugging Face folder, an HDF5 report and the recipe,
// in one background job with progress and Cancel.
//
// Every core writer is atomic, so a failed or cancelled output never leaves a
// file under its final name. Cancelling (or closing the dialog) also removes
// the outputs this run had already completed, unless they replaced a file
// that existed before (that one is gone either way): a cancelled export
// writes nothing. An error keeps the completed outputs and lists them.
#include "export/gguf_presets.h"
#include "model/dtype.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"

#include <nlohmann/json.hpp>
#include "util/progress.h"

#include <QDialog>
#include <QList>
#include <QString>
#include <QStringList>

#include <array>
#include <functional>
#include <memory>
#include <optional>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTreeWidget;

namespace ll::gui {

class JobRunner;
class ModelDocument;
struct ExportOutcome;

// The GGUF preset the Export dialog offers first for a state: the one nearest
// in size to the bits its quantization steps left (Q8_0 without any).
GgufPreset suggestedGgufPreset(const CompressionState& state);

class ExportDialog : public QDialog {
    Q_OBJECT
public:
    enum class Output { Gguf, HuggingFace, Report, Recipe };
    static constexpr int kOutputs = 4;

    struct Written {
        Output output;
        QString path;
        quint64 bytes = 0;       // a folder: the sum of its files
        QString type;            // "Q8_0", "f16"; empty for the report and recipe
    };

    explicit ExportDialog(ModelDocument* document, QWidget* parent = nullptr);
    ~ExportDialog() override;

    // The folder and base name the default paths are made of; paths the user
    // typed or browsed stay as they are.
    void setDestination(const QString& folder, const QString& baseName);
    QString folder() const;
    QString baseName() const;

    void setOutputEnabled(Output o, bool on);
    bool isOutputEnabled(Output o) const;
    // An explicit path (relative paths are taken in folder()).
    void setOutputPath(Output o, const QString& path);
    QString outputPath(Output o) const;
    void setGgufType(DType t);   // one of ggufTypes()
    // With a preset chosen, the preset's base type (each tensor's type is the preset's choice).
    DType ggufType() const;
    // llama-quantize's presets (Q4_K_M, ...) are listed first; nullopt when one type was chosen.
    void setGgufPreset(GgufPreset p);
    // llama.cpp's importance matrix for the GGUF's quantized tensors (llama-imatrix's
    // .dat or `layerlab-cli imatrix`); empty: none.
    void setImatrixFile(const QString& path);
    QString imatrixFile() const;
    std::optional<GgufPreset> ggufPreset() const;
    void setHfDtype(DType t);    // F32, F16 or BF16
    DType hfDtype() const;
    static QList<DType> ggufTypes();
    // Documents/LayerLab: where exports go until the user picks a folder (never
    // beside the source model, whose folder may be a read-only cache).
    static QString defaultFolder();

    // The recipe saved and recorded in the report; by default the document's
    // (state().recipe(): its steps and calibration).
    void setRecipe(const Recipe& recipe);
    Recipe recipe() const;
    // Speed and memory measured on the state exported (the Speed tab's comparisonJson),
    // written under the report's /efficiency; null: none.
    void setEfficiency(nlohmann::json efficiency) { efficiency_ = std::move(efficiency); }

    // Asked with the existing outputs before they are replaced; false keeps
    // them and writes nothing. Default: a QMessageBox question.
    void setConfirmOverwrite(std::function<bool(const QStringList& existing)> confirm);
    // Test hook, called on the worker thread before each output is written
    // (e.g. to hold the job until it is cancelled).
    void setBeforeOutputHook(std::function<void(Output, const Progress&)> hook);

    // Checks the choices, asks before overwriting, then writes in the
    // background. False when nothing was started (the reason is shown and
    // exportFinished(false, reason) emitted).
    bool startExport();
    void cancelExport();
    bool isRunning() const;

    QString statusText() const;
    QList<Written> written() const { return written_; }
    QStringList notes() const { return notes_; }

signals:
    void exportFinished(bool ok, const QString& message);

public slots:
    // Cancels a running export and waits for it (its partial files removed) before closing.
    void reject() override;

private:
    struct Row {
        QCheckBox* check = nullptr;
        QLineEdit* path = nullptr;
        QPushButton* browse = nullptr;
        bool custom = false;     // typed or browsed by the user: not refilled from the destination
    };
    struct Plan;

    void buildUi();
    // The GGUF type that matches the state (Q4_K_M after a 4-bit quantization,
    // Q8_0 otherwise), unless the user chose one; with a hint that says why.
    void suggestGgufType();
    void loadSettings();
    void saveSettings() const;
    void refreshFromDocument();
    void refillPaths();
    QString defaultPath(Output o) const;
    QString resolved(Output o) const;
    void browse(Output o);
    void browseFolder();
    void finish(bool ok, const QString& message, bool error);
    void setStatus(const QString& text, bool error);
    void showWritten();
    void updateEnabled();
    Row& row(Output o) { return rows_[static_cast<size_t>(o)]; }
    const Row& row(Output o) const { return rows_[static_cast<size_t>(o)]; }

    ModelDocument* document_;
    JobRunner* runner_;
    std::array<Row, kOutputs> rows_;
    QLineEdit* folderEdit_ = nullptr;
    QLineEdit* baseEdit_ = nullptr;
    QComboBox* ggufTypeBox_ = nullptr;
    QLineEdit* imatrixEdit_ = nullptr;
    QPushButton* imatrixBrowse_ = nullptr;
    QComboBox* hfDtypeBox_ = nullptr;
    QLabel* ggufHint_ = nullptr;
    QPushButton* openFolderButton_ = nullptr;
    bool ggufChosen_ = false; // by the user (or setGgufType): remembered, never re-suggested
    QProgressBar* progress_ = nullptr;
    QPushButton* exportButton_ = nullptr;
    QPushButton* cancelButton_ = nullptr;
    QPushButton* closeButton_ = nullptr;
    QLabel* status_ = nullptr;
    QTreeWidget* results_ = nullptr;
    QPlainTextEdit* notesView_ = nullptr;

    std::optional<Recipe> recipe_;
    nlohmann::json efficiency_;
    std::function<bool(const QStringList&)> confirmOverwrite_;
    std::function<void(Output, const Progress&)> beforeOutput_;
    std::shared_ptr<ExportOutcome> outcome_; // the current job's
    QList<Written> written_;
    QStringList notes_;
};

} // namespace ll::gui
