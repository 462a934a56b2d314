#pragma once
// File › Make a Smaller Model: the one-click path for people who just want a
// smaller model. Three pages:
//   1. choose — llama-quantize's presets and LayerLab's single GGUF types, each
//      with the exact size of the file it would write (estimateGgufExport, no
//      data read) and its bits per weight; an optional size limit picks the best
//      that fits; where the file goes (never the source model's folder);
//   2. work — the export of the document's current state, then a quality check:
//      the written file reopened and scored against the original model on the
//      evaluation text (perplexity, KL, top-1 agreement, the same windows);
//   3. result card — path, size on disk before → after, perplexity before →
//      after, the tensors that fell back to another type in plain words,
//      "Open folder" and "Copy path".
// The export and the check run as one background job with progress and Cancel;
// a cancelled or failed export leaves no file (the writers are atomic).
#include "eval_text.h"

#include "export/export_result.h"
#include "export/gguf_presets.h"
#include "model/dtype.h"

#include <QDialog>
#include <QString>

#include <optional>
#include <vector>

class QCheckBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QStackedWidget;
class QTreeWidget;

namespace ll::gui {

class JobRunner;
class ModelDocument;

class QuickCompressDialog : public QDialog {
    Q_OBJECT
public:
    // One row of the choice table: a preset, or one type for every 2-D weight.
    struct Choice {
        QString name;                     // "Q4_K_M", "Q8_0"
        std::optional<GgufPreset> preset;
        DType type = DType::F16;
        QString summary;                  // what it is, for the table
        quint64 bytes = 0;                // the file's exact size (0 until estimated)
        double bitsPerWeight = 0.0;       // file bytes * 8 / parameters
        int fallbacks = 0;
    };
    // What the finished job measured, shown on the result card.
    struct Result {
        QString path;
        quint64 bytesBefore = 0;          // the source model's files on disk
        quint64 bytesAfter = 0;           // the file written
        double pplBefore = 0.0, pplAfter = 0.0;
        double klMean = 0.0, top1 = 0.0;
        qint64 tokensScored = 0;          // 0: no quality check
        QStringList fallbacks;            // plain words, one line per kind
    };

    // `text`: the evaluation text the quality check scores (the Evaluate dock's).
    QuickCompressDialog(ModelDocument* document, const TextSource& text, QWidget* parent = nullptr);
    ~QuickCompressDialog() override;

    const std::vector<Choice>& choices() const { return choices_; }
    bool estimatesReady() const { return estimated_; }
    void selectChoice(const QString& name);
    QString selectedChoice() const;
    // The best choice that fits in `bytes` (the largest that does), selected; false when none fits.
    bool fitInto(quint64 bytes);
    void setFolder(const QString& folder);
    void setCheckQuality(bool on);
    QString outputPath() const;

    // Starts the export (and the check); false, with the reason in statusText(), when it cannot.
    bool start();
    void cancel();
    bool isRunning() const;
    std::optional<Result> result() const { return result_; }
    QString statusText() const;
    QString cardText() const;            // the result card as plain text

signals:
    void estimatesChanged();
    void finished(bool ok);

public slots:
    void reject() override;

private:
    QWidget* buildChoosePage();
    QWidget* buildWorkPage();
    QWidget* buildCardPage();
    void estimate();
    void fillTable();
    void showCard(const Result& r);
    void updatePath();

    ModelDocument* document_;
    TextSource text_;
    JobRunner* runner_;
    std::vector<Choice> choices_;
    bool estimated_ = false;
    std::optional<Result> result_;

    QStackedWidget* pages_ = nullptr;
    QTreeWidget* table_ = nullptr;
    QLabel* proposal_ = nullptr;
    QSpinBox* limit_ = nullptr;
    QLineEdit* folder_ = nullptr;
    QLabel* pathLabel_ = nullptr;
    QCheckBox* check_ = nullptr;
    QLabel* status_ = nullptr;
    QPushButton* startButton_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* progressText_ = nullptr;
    QLabel* card_ = nullptr;
    QPushButton* openFolder_ = nullptr;
    QPushButton* copyPath_ = nullptr;
};

} // namespace ll::gui
