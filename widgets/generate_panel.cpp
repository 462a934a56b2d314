#include "generate_panel.h"

#include "analysis/engine_cache.h"
#include "format.h"
#include "job_failure.h"
#include "job_runner.h"
#include "model_document.h"
#include "panel_util.h"

#include "engine/generate.h"
#include "engine/transformer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QTextCharFormat>
#include <QTextCursor>
#include <QVBoxLayout>

#include <limits>
#include <new>

namespace ll::gui {

namespace {
const char* kPromptKey = "generate/prompt";
const char* kTokensKey = "generate/tokens";
const char* kTemperatureKey = "generate/temperature";
const char* kSeedKey = "generate/seed";
const char* kBesideKey = "generate/besideOriginal";

QPlainTextEdit* makeOutput(QWidget* parent, const QString& name)
{
    auto* view = new QPlainTextEdit(parent);
    view->setObjectName(name);
    view->setReadOnly(true);
    view->setPlaceholderText(QObject::tr("The continuation appears here as it is generated."));
    view->setMinimumHeight(view->fontMetrics().height() * 3);
    return view;
}
} // namespace

GeneratePanel::GeneratePanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent)
    : QWidget(parent), document_(document), engines_(std::move(engines)), runner_(new JobRunner(this))
{
    setObjectName(QStringLiteral("generatePanel"));
    QSettings settings;
    prompt_ = new QLineEdit(settings.value(QLatin1String(kPromptKey), QStringLiteral("Once upon a time")).toString(), this);
    prompt_->setObjectName(QStringLiteral("genPrompt"));
    prompt_->setPlaceholderText(tr("Prompt (empty: start from BOS)"));
    prompt_->setClearButtonEnabled(true);
    tokens_ = new QSpinBox(this);
    tokens_->setObjectName(QStringLiteral("genTokens"));
    tokens_->setRange(1, 1 << 16);
    tokens_->setValue(settings.value(QLatin1String(kTokensKey), 64).toInt());
    tokens_->setToolTip(tr("New tokens at most (generation also stops at the end-of-text token)"));
    temperature_ = new QDoubleSpinBox(this);
    temperature_->setObjectName(QStringLiteral("genTemperature"));
    temperature_->setRange(0.0, 5.0);
    temperature_->setSingleStep(0.1);
    temperature_->setDecimals(2);
    temperature_->setSpecialValueText(tr("0 (greedy)"));
    temperature_->setValue(settings.value(QLatin1String(kTemperatureKey), 0.0).toDouble());
    temperature_->setToolTip(tr("Sampling temperature: 0 always takes the most likely token"));
    seed_ = new QSpinBox(this);
    seed_->setObjectName(QStringLiteral("genSeed"));
    seed_->setRange(0, std::numeric_limits<int>::max());
    seed_->setValue(settings.value(QLatin1String(kSeedKey), 0).toInt());
    seed_->setToolTip(tr("Random seed for sampling: the same seed gives the same text"));
    generateButton_ = new QPushButton(tr("Generate"), this);
    generateButton_->setObjectName(QStringLiteral("genButton"));
    stopButton_ = new QPushButton(tr("Stop"), this);
    stopButton_->setObjectName(QStringLiteral("genStopButton"));
    output_ = makeOutput(this, QStringLiteral("genOutput"));
    originalOutput_ = makeOutput(this, QStringLiteral("genOriginalOutput"));
    beside_ = new QCheckBox(tr("Beside the original"), this);
    beside_->setObjectName(QStringLiteral("genBesideOriginal"));
    beside_->setToolTip(tr("Also write the original model's continuation of the same prompt with the same seed"));
    beside_->setChecked(settings.value(QLatin1String(kBesideKey), true).toBool());
    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("genStatus"));
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* grid = new QGridLayout;
    grid->setHorizontalSpacing(8);
    grid->addWidget(new QLabel(tr("Prompt"), this), 0, 0);
    grid->addWidget(prompt_, 0, 1, 1, 6);
    grid->addWidget(new QLabel(tr("Tokens"), this), 1, 0);
    grid->addWidget(tokens_, 1, 1);
    grid->addWidget(new QLabel(tr("Temperature"), this), 1, 2);
    grid->addWidget(temperature_, 1, 3);
    grid->addWidget(new QLabel(tr("Seed"), this), 1, 4);
    grid->addWidget(seed_, 1, 5);
    grid->setColumnStretch(6, 1);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(generateButton_);
    buttons->addWidget(stopButton_);
    buttons->addWidget(beside_);
    buttons->addWidget(status_, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(grid);
    layout->addLayout(buttons);
    originalColumn_ = new QWidget(this);
    auto* left = new QVBoxLayout(originalColumn_);
    left->setContentsMargins(0, 0, 0, 0);
    left->addWidget(new QLabel(tr("<b>Original</b>"), originalColumn_));
    left->addWidget(originalOutput_, 1);
    auto* right = new QVBoxLayout;
    currentTitle_ = new QLabel(this);
    right->addWidget(currentTitle_);
    right->addWidget(output_, 1);
    auto* outputs = new QHBoxLayout;
    outputs->addWidget(originalColumn_, 1);
    outputs->addLayout(right, 1);
    layout->addLayout(outputs, 1);
    connect(beside_, &QCheckBox::toggled, this, [this] { updateBeside(); });
    connect(document_, &ModelDocument::modelEdited, this, [this] { updateBeside(); });

    connect(generateButton_, &QPushButton::clicked, this, &GeneratePanel::generate);
    connect(prompt_, &QLineEdit::returnPressed, this, [this] {
        if (!runner_->isRunning())
            generate();
    });
    connect(stopButton_, &QPushButton::clicked, this, &GeneratePanel::stop);
    connect(runner_, &JobRunner::runningChanged, this, [this](bool running) {
        updateEnabled();
        emit runningChanged(running);
    });
    // After the job's last words (its state) have been shown, and isRunning() is false.
    connect(runner_, &JobRunner::finished, this, [this] {
        updateEnabled();
        emit finished();
    });
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] {
        stoppedByClose_ = runner_->isRunning();
        runner_->abandon();
    });
    connect(document_, &ModelDocument::modelChanged, this, [this] {
        const auto model = document_->model();
        setState(State::Idle, stoppedByClose_         ? tr("The generation was stopped: its model was closed.")
                              : !model                ? tr("Open a model to generate text.")
                              : model->config.synthetic ? tr("The demo model has no tokenizer: open a checkpoint to "
                                                             "generate text.")
                                                        : QString());
        stoppedByClose_ = false;
    });
    connect(document_, &ModelDocument::modelChanged, this, [this] { updateBeside(); });
    setState(State::Idle, document_->hasModel() ? QString() : tr("Open a model to generate text."));
    updateBeside();
}

// The original's column shows once a step is applied and the box is ticked.
void GeneratePanel::updateBeside()
{
    const bool edited = document_->hasModel() && !document_->state().steps.empty();
    beside_->setVisible(edited);
    originalColumn_->setVisible(edited && beside_->isChecked());
    currentTitle_->setVisible(edited && beside_->isChecked());
    const size_t steps = edited ? document_->state().steps.size() : 0;
    currentTitle_->setText(steps == 1 ? tr("<b>Compressed</b> (1 step)") : tr("<b>Compressed</b> (%1 steps)").arg(steps));
}

void GeneratePanel::setBesideOriginal(bool on)
{
    beside_->setChecked(on);
}

bool GeneratePanel::besideOriginal() const
{
    return beside_->isChecked() && document_->hasModel() && !document_->state().steps.empty();
}

QString GeneratePanel::originalOutputText() const
{
    return originalOutput_->toPlainText();
}

GeneratePanel::~GeneratePanel()
{
    // Half destroyed, and the document may be gone already (MainWindow deletes it first):
    // the runner's runningChanged/finished must not reach our slots any more.
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

void GeneratePanel::appendText(QPlainTextEdit* view, const QString& text, bool prompt)
{
    QTextCursor cursor(view->document());
    cursor.movePosition(QTextCursor::End);
    QTextCharFormat format;
    if (prompt) {
        format.setFontWeight(QFont::Bold);
    } else {
        format.setForeground(palette().color(QPalette::Text));
    }
    cursor.insertText(text, format);
    view->ensureCursorVisible();
}

void GeneratePanel::generate()
{
    const auto model = document_->model();
    if (!model) {
        setState(State::Failed, tr("No model is open."));
        return;
    }
    QSettings settings;
    settings.setValue(QLatin1String(kPromptKey), prompt_->text());
    settings.setValue(QLatin1String(kTokensKey), tokens_->value());
    settings.setValue(QLatin1String(kTemperatureKey), temperature_->value());
    settings.setValue(QLatin1String(kSeedKey), seed_->value());
    settings.setValue(QLatin1String(kBesideKey), beside_->isChecked());
    const std::shared_ptr<const Model> original = besideOriginal() ? document_->state().source : nullptr;

    const std::string prompt = prompt_->text().toStdString();
    GenerateOptions options;
    options.maxNewTokens = tokens_->value();
    options.temperature = static_cast<float>(temperature_->value());
    options.seed = static_cast<uint64_t>(seed_->value());
    options.stopAtEos = true;
    requested_ = options.maxNewTokens;
    promptIds_.clear();
    generated_.clear();
    originalGenerated_.clear();
    updates_ = 0;
    output_->clear();
    originalOutput_->clear();
    appendText(output_, prompt_->text(), true);
    if (original)
        appendText(originalOutput_, prompt_->text(), true);
    setState(State::Running, tr("Preparing…"));
    const std::shared_ptr<EngineCache> engines = engines_;

    runner_->start([this, model, original, prompt, options, engines](JobContext& job) mutable {
        QString error, note;
        bool stopped = false, hitEos = false;
        int64_t count = 0;
        double seconds = 0;
        try {
            std::unique_ptr<Tokenizer> tokenizer;
            try {
                tokenizer = loadTokenizer(*model);
            } catch (const Error& e) {
                if (e.code() != ErrorCode::NotFound)
                    throw;
                error = model->config.synthetic
                            ? tr("The demo model has no tokenizer, so it cannot read a prompt or write text.")
                            : tr("This model has no tokenizer: put its tokenizer.json or tokenizer.bin beside it.");
            }
            if (tokenizer) {
                const std::vector<int32_t> promptIds = tokenizer->encode(prompt, true);
                if (promptIds.empty())
                    fail(ErrorCode::InvalidArgument, "", "the prompt gives no tokens and the model has no BOS token");
                job.post([this, promptIds] { promptIds_ = promptIds; });
                // Positions the model knows: stop there rather than run past its table.
                const int64_t maxPos = model->config.maxPositions;
                if (maxPos > 0) {
                    const int64_t room = maxPos - static_cast<int64_t>(promptIds.size());
                    if (room <= 0)
                        fail(ErrorCode::InvalidArgument, "",
                             "the prompt fills the model's context of " + std::to_string(maxPos) + " positions");
                    if (options.maxNewTokens > room) {
                        options.maxNewTokens = room;
                        note = tr("Stopped at the model's context of %1 positions.").arg(maxPos);
                    }
                }
                const std::string promptText = tokenizer->decode(promptIds);
                // One model's continuation streamed into its view. The text: decode prompt + new
                // tokens and drop the prompt's text, so the first new token keeps its leading
                // space; a character split over byte tokens appears once its last byte has come.
                const auto stream = [&](const Transformer& engine, bool isOriginal) {
                    std::vector<int32_t> all = promptIds;
                    std::string shown;
                    const int32_t eos = static_cast<int32_t>(engine.config().eosId);
                    int64_t n = 0;
                    const auto onToken = [&](int32_t id) {
                        all.push_back(id);
                        ++n;
                        if (!isOriginal) {
                            ++count;
                            if (id == eos)
                                hitEos = true;
                        }
                        std::string text = tokenizer->decode(all);
                        text = text.compare(0, promptText.size(), promptText) == 0
                                   ? text.substr(promptText.size())
                                   : tokenizer->decode(std::span<const int32_t>(all).subspan(promptIds.size()));
                        QString delta;
                        if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
                            delta = QString::fromStdString(text.substr(shown.size()));
                            shown = text;
                        }
                        const int64_t total = options.maxNewTokens;
                        job.post([this, id, delta, n, total, isOriginal] {
                            if (isOriginal) {
                                originalGenerated_.push_back(id);
                                if (!delta.isEmpty())
                                    appendText(originalOutput_, delta, false);
                                status_->setText(tr("The original: %1 / %2").arg(n).arg(total));
                                return;
                            }
                            generated_.push_back(id);
                            ++updates_;
                            if (!delta.isEmpty())
                                appendText(output_, delta, false);
                            status_->setText(tr("Generating… %1 / %2").arg(n).arg(total));
                            emit tokenReceived(id);
                        });
                    };
                    ll::generate(engine, promptIds, options, &job, onToken);
                };
                if (original) {
                    const Transformer originalEngine(*original, &job);
                    stream(originalEngine, true);
                }
                const auto engine = engines->get(model, &job);
                QElapsedTimer clock;
                clock.start();
                stream(*engine, false);
                seconds = static_cast<double>(clock.nsecsElapsed()) * 1e-9;
            }
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory to generate."));
            stopped = f.cancelled;
            error = f.message;
        }
        job.post([this, error, note, stopped, hitEos, count, seconds] {
            if (!error.isEmpty()) {
                setState(State::Failed, error);
            } else if (stopped) {
                setState(State::Stopped, count == 1 ? tr("Stopped after 1 token.") : tr("Stopped after %1 tokens.").arg(count));
            } else {
                QString text = (count == 1 ? tr("1 token in %1") : tr("%1 tokens in %2").arg(count))
                                   .arg(formatSeconds(seconds));
                if (seconds > 0 && count > 0)
                    text += tr(" · %1 tokens/s").arg(static_cast<double>(count) / seconds, 0, 'f', 1);
                if (hitEos)
                    text += tr(" · ended at the end-of-text token");
                if (!note.isEmpty())
                    text += QStringLiteral(" · ") + note;
                setState(State::Done, text);
            }
        });
    });
    updateEnabled();
}

void GeneratePanel::stop()
{
    if (!runner_->isRunning())
        return;
    runner_->cancel();
    setState(State::Stopping, tr("Stopping…"));
}

bool GeneratePanel::isRunning() const
{
    return runner_->isRunning();
}

void GeneratePanel::setState(State state, const QString& message)
{
    state_ = state;
    status_->setText(message);
    status_->setStyleSheet(state == State::Failed ? QStringLiteral("color: #b3261e;") : QString());
    updateEnabled();
}

void GeneratePanel::updateEnabled()
{
    const bool running = runner_->isRunning();
    generateButton_->setEnabled(!running && document_->hasModel());
    stopButton_->setEnabled(running && state_ != State::Stopping);
}

QString GeneratePanel::outputText() const
{
    return output_->toPlainText();
}

QString GeneratePanel::statusText() const
{
    return status_->text();
}

} // namespace ll::gui
