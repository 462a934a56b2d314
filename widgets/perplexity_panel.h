#pragma once
// Perplexity of the open model on a text, computed in the background:
// text (a file, remembered, or the built-in sample), context length,
// protocol (full / llama.cpp), an optional cap on the windows or tokens
// scored; Run / Cancel, a progress bar with the window and the time left
// ("scoring: window 12 of 40 · 1:23 left"), and the result (ppl ± its standard error, mean NLL, tokens
// scored, elapsed time, tokens/s). Problems (no tokenizer, text too short,
// a family the engine cannot run) are shown in the panel. Cancelling keeps
// the previous result on screen; the model is never touched (the job reads
// a shared_ptr<const Model> and the cached F32 engine).
#include "eval/perplexity.h"
#include "recipe/recipe.h"
#include "eval_text.h"

#include <QWidget>

#include <cstdint>
#include <memory>
#include <optional>

class QComboBox;
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

// One finished evaluation, with what it was run on.
struct PerplexityOutcome {
    PerplexityResult result;
    ScoringOptions options;
    TextSource text;
    int64_t textTokens = 0;      // tokens of the whole text (BOS included)
    double seconds = 0;          // from Run to the result (engine build and tokenizing included)
    double scoringSeconds = 0;   // the forward passes and scoring only
    std::vector<RecipeStep> steps; // the state it measured (empty: the original model)
    double tokensPerSecond() const { return scoringSeconds > 0 ? double(result.tokensScored) / scoringSeconds : 0; }
};

class PerplexityPanel : public QWidget {
    Q_OBJECT
public:
    enum class State { Idle, Running, Cancelling, Done, Cancelled, Failed };
    enum class CountUnit { Windows, Tokens };

    PerplexityPanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent = nullptr);
    ~PerplexityPanel() override;

    // The text to evaluate (also offered to the activation view).
    TextSource textSource() const;
    // Selects a file (added to the remembered ones) or the built-in sample.
    void setTextFile(const QString& path);
    // The sample or a file, as another panel chose it (every panel evaluates on one text).
    void setTextSource(const TextSource& source);
    void useBuiltinText();

    // How much of the text to score: `count` windows or tokens (0: all of it).
    void setScoreCount(int64_t count, CountUnit unit);
    // The windows the next run scores (tokens rounded up to whole windows; 0: all).
    int64_t windowsToScore() const;

    // Refused before it starts when its estimate does not fit in memory (state Failed).
    void run();
    void cancel();
    bool isRunning() const;
    State state() const { return state_; }
    // The result on screen (kept when a later run is cancelled or fails).
    const std::optional<PerplexityOutcome>& shownResult() const { return shown_; }
    // The result shown was measured on another state than the current one (steps applied or undone since).
    bool isStale() const;
    // Shows a result saved with a session (not re-run; `finished` is not emitted).
    void restoreOutcome(const PerplexityOutcome& outcome);
    QString statusText() const;
    QString resultText() const;  // "5.3743 ± 0.0091"

    QComboBox* textBox() const { return textBox_; }
    QSpinBox* contextBox() const { return contextBox_; }
    QComboBox* protocolBox() const { return protocolBox_; }
    QSpinBox* maxWindowsBox() const { return maxWindowsBox_; }
    QComboBox* unitBox() const { return unitBox_; }
    QPushButton* runButton() const { return runButton_; }
    QPushButton* cancelButton() const { return cancelButton_; }
    QProgressBar* progressBar() const { return progress_; }
    QTableWidget* historyTable() const { return history_; }

signals:
    void textSourceChanged();
    // The run ended: done, cancelled or failed (see state()).
    void finished();
    void runningChanged(bool running);

private:
    void onTextActivated(int index);
    void rebuildTextBox(const TextSource& select);
    void setState(State state, const QString& message = {});
    void showOutcome(const PerplexityOutcome& outcome);
    void addToHistory(const PerplexityOutcome& outcome);
    void updateEnabled();
    void onModelChanged();
    void saveSettings() const;

    ModelDocument* document_;
    std::shared_ptr<EngineCache> engines_;
    JobRunner* runner_;
    QComboBox* textBox_;
    QSpinBox* contextBox_;
    QComboBox* protocolBox_;
    QSpinBox* maxWindowsBox_;
    QComboBox* unitBox_;
    QPushButton* runButton_;
    QPushButton* cancelButton_;
    QProgressBar* progress_;
    QLabel* progressText_;
    QLabel* statusLabel_;
    QLabel* pplLabel_;
    QLabel* nllLabel_;
    QLabel* tokensLabel_;
    QLabel* timeLabel_;
    QLabel* speedLabel_;
    QLabel* runLabel_;
    QTableWidget* history_;
    TextSource text_;
    int lastTextIndex_ = 0;
    State state_ = State::Idle;
    bool stoppedByClose_ = false;
    std::optional<PerplexityOutcome> shown_;
};

} // namespace ll::gui
