#pragma once
// Text generation with the open model, in the background: prompt, number of
// tokens, temperature (0 = greedy), seed. Tokens stream into a read-only view
// as they come (queued from the worker); Stop ends the generation after the
// current token and keeps what was written. "Beside the original" (once a
// step is applied) first writes the original model's continuation of the same
// prompt with the same seed in a second view, then the compressed model's.
#include <QWidget>

#include <cstdint>
#include <memory>
#include <vector>

class QCheckBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace ll {
class EngineCache;
} // namespace ll

namespace ll::gui {

class JobRunner;
class ModelDocument;

class GeneratePanel : public QWidget {
    Q_OBJECT
public:
    enum class State { Idle, Running, Stopping, Done, Stopped, Failed };

    GeneratePanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent = nullptr);
    ~GeneratePanel() override;

    void generate();
    void stop();
    bool isRunning() const;
    State state() const { return state_; }

    // The last generation: the prompt's ids (BOS included) and the new ones so far.
    const std::vector<int32_t>& promptIds() const { return promptIds_; }
    const std::vector<int32_t>& generatedIds() const { return generated_; }
    // Streamed updates received (one per token).
    int tokenUpdates() const { return updates_; }
    QString outputText() const;     // prompt + continuation as shown
    // Beside the original: only when a compression step is applied.
    void setBesideOriginal(bool on);
    bool besideOriginal() const;
    const std::vector<int32_t>& originalIds() const { return originalGenerated_; }
    QString originalOutputText() const;
    QString statusText() const;

    QLineEdit* promptEdit() const { return prompt_; }
    QSpinBox* tokensBox() const { return tokens_; }
    QDoubleSpinBox* temperatureBox() const { return temperature_; }
    QSpinBox* seedBox() const { return seed_; }
    QPushButton* generateButton() const { return generateButton_; }
    QPushButton* stopButton() const { return stopButton_; }
    QPlainTextEdit* output() const { return output_; }

signals:
    void tokenReceived(int id);
    void finished();
    void runningChanged(bool running);

private:
    void setState(State state, const QString& message);
    void updateEnabled();
    void appendText(QPlainTextEdit* view, const QString& text, bool prompt);
    void updateBeside();

    ModelDocument* document_;
    std::shared_ptr<EngineCache> engines_;
    JobRunner* runner_;
    QLineEdit* prompt_;
    QSpinBox* tokens_;
    QDoubleSpinBox* temperature_;
    QSpinBox* seed_;
    QPushButton* generateButton_;
    QPushButton* stopButton_;
    QPlainTextEdit* output_;
    QCheckBox* beside_;
    QWidget* originalColumn_;       // the original's title and view
    QLabel* currentTitle_;
    QPlainTextEdit* originalOutput_;
    QLabel* status_;
    State state_ = State::Idle;
    bool stoppedByClose_ = false;
    std::vector<int32_t> promptIds_, generated_, originalGenerated_;
    int updates_ = 0;
    int64_t requested_ = 0;
};

} // namespace ll::gui
