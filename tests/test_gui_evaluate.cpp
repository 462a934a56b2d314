// The Evaluate dock (perplexity, generation) and the activation view, driven
// as a user would (offscreen): results on screen compared with the core's own
// perplexity on the same windows, the reference perplexity of stories260K,
// transformers' greedy continuation, and the demo model's known outlier
// channels. Cancellation keeps the previous result and the model.
#include "test_support.h"
#include "formats/open_model.h"
#include "recipe/apply.h"

#include "activation_plot.h"
#include "activation_view.h"
#include "generate_panel.h"
#include "main_window.h"
#include "model_document.h"
#include "perplexity_panel.h"

#include "engine/generate.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "model/demo_model.h"
#include "tokenizer/tokenizer.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableWidget>
#include <QUndoStack>
#include <QLabel>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

using namespace ll;
using namespace ll::gui;

namespace {

constexpr double kReferencePpl = 5.374330864181695; // shared/reference/stories260K_compression.json
constexpr int64_t kReferenceScored = 311610;

// llama2.c's greedy generation of stories260K (../shared/reference): the
// prompt, its ids, the first `count` new ids and the whole text.
struct GreedyReference {
    std::string prompt, text;
    std::vector<int32_t> promptIds, next;
};

GreedyReference greedyReference(size_t count)
{
    const nlohmann::json j = nlohmann::json::parse(test::readFile(test::sharedPath("reference/stories260K_tokenizer.json")));
    GreedyReference r;
    r.prompt = j["prompt"].get<std::string>();
    r.text = j["greedy_48_text"].get<std::string>();
    r.promptIds = j["prompt_ids"].get<std::vector<int32_t>>();
    const auto all = j["greedy_48_ids"].get<std::vector<int32_t>>();
    r.next.assign(all.begin() + static_cast<std::ptrdiff_t>(r.promptIds.size()),
                  all.begin() + static_cast<std::ptrdiff_t>(r.promptIds.size() + count));
    return r;
}

std::string storiesPath()
{
    return test::sharedPath("models/stories260K-hf");
}
QString evalText()
{
    return QString::fromStdString(test::sharedPath("data/tinystories/eval.txt"));
}

// FNV-1a over every stored tensor's bytes: "the model is unchanged".
uint64_t modelChecksum(const Model& m)
{
    uint64_t h = 1469598103934665603ull;
    for (const TensorRef& t : m.stored)
        for (uint64_t i = 0; i < t.nbytes; ++i)
            h = (h ^ t.data[i]) * 1099511628211ull;
    return h;
}

using PState = PerplexityPanel::State;

// Runs the panel to the end (fails the test after `seconds`).
bool runToEnd(PerplexityPanel* p, int seconds)
{
    p->run();
    QElapsedTimer clock;
    clock.start();
    while (p->isRunning() && clock.elapsed() < seconds * 1000)
        QTest::qWait(20);
    return !p->isRunning();
}

std::set<int64_t> asSet(const std::vector<int64_t>& v)
{
    return std::set<int64_t>(v.begin(), v.end());
}

std::set<int64_t> columnsOf(const std::vector<OutlierChannel>& v)
{
    std::set<int64_t> s;
    for (const auto& o : v)
        s.insert(o.column);
    return s;
}

} // namespace

class TestGuiEvaluate : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void outlierChannelsByMedian();
    void demoModelHasNoTokenizer();
    void tooShortTextIsReported();
    void unsupportedFamilyIsReported();
    void cancelKeepsPreviousResultThenRunMatchesCore();
    void fullRunMatchesReference();
    void greedyGenerationMatchesReference();
    void sampledGenerationFollowsTheSeedAndStops();
    void generationBesideTheOriginal();
    void activationViewMarksDemoOutliers();
    void closingModelOrWindowWhileRunning();

private:
    std::unique_ptr<MainWindow> window_;
    double tokensPerSecond_ = 0;
};

void TestGuiEvaluate::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(QStringLiteral("LayerLabTest"));
    QCoreApplication::setApplicationName(QStringLiteral("test_gui_evaluate"));
    QSettings().clear();
    window_ = std::make_unique<MainWindow>();
    window_->setErrorDialogsEnabled(false);
    window_->resize(1280, 800);
    window_->show();
    QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
}

void TestGuiEvaluate::outlierChannelsByMedian()
{
    // Median of 1..9 is 5; k = 3 -> above 15.
    std::vector<float> v{1, 2, 3, 4, 5, 6, 7, 8, 9, 40, 16, 15};
    // 12 values: sorted 1..9, 15, 16, 40 -> median (6 + 7) / 2 = 6.5, threshold 19.5.
    OutlierChannels o = findOutlierChannels(v, 3.0);
    QCOMPARE(o.median, 6.5);
    QCOMPARE(o.channels, std::vector<int64_t>{9});
    QCOMPARE(o.ratios.front(), 40.0 / 6.5);
    o = findOutlierChannels(v, 2.0); // threshold 13: 40, 16, 15, largest first
    QCOMPARE(o.channels, (std::vector<int64_t>{9, 10, 11}));
    QCOMPARE(o.largestChannel, int64_t{9});
    const std::vector<float> zeros(8, 0.0f);
    QVERIFY(findOutlierChannels(zeros, 2.0).channels.empty());
}

void TestGuiEvaluate::demoModelHasNoTokenizer()
{
    window_->openDemo();
    PerplexityPanel* p = window_->perplexityPanel();
    p->useBuiltinText();
    QVERIFY(runToEnd(p, 60));
    QCOMPARE(p->state(), PState::Failed);
    QVERIFY2(p->statusText().contains(QStringLiteral("no tokenizer")), qPrintable(p->statusText()));
    QVERIFY(!p->shownResult());
    // Generation says the same, without a crash.
    GeneratePanel* g = window_->generatePanel();
    g->generate();
    QTRY_VERIFY_WITH_TIMEOUT(!g->isRunning(), 30000);
    QCOMPARE(g->state(), GeneratePanel::State::Failed);
    QVERIFY(g->statusText().contains(QStringLiteral("no tokenizer")));
}

void TestGuiEvaluate::tooShortTextIsReported()
{
    LL_REQUIRE_SHARED();
    QVERIFY(window_->openPath(QString::fromStdString(storiesPath())));
    const std::string file = test::scratchDir() + "/short.txt";
    test::writeFile(file, "Once upon a time there was a cat.");
    PerplexityPanel* p = window_->perplexityPanel();
    p->setTextFile(QString::fromStdString(file));
    p->contextBox()->setValue(256);
    p->maxWindowsBox()->setValue(0);
    QVERIFY(runToEnd(p, 60));
    QCOMPARE(p->state(), PState::Failed);
    QVERIFY2(p->statusText().contains(QStringLiteral("too short")), qPrintable(p->statusText()));
    // The built-in sample is long enough for a few windows of 256.
    p->useBuiltinText();
    QVERIFY(runToEnd(p, 120));
    QCOMPARE(p->state(), PState::Done);
    qInfo("built-in sample: ppl %s over %lld tokens", qPrintable(p->resultText()),
          static_cast<long long>(p->shownResult()->result.tokensScored));
    QVERIFY(p->shownResult()->result.windows >= 8);
    QVERIFY(p->shownResult()->result.ppl > 1.0 && p->shownResult()->result.ppl < 20.0); // a story model reads stories
}

void TestGuiEvaluate::unsupportedFamilyIsReported()
{
    LL_REQUIRE_SHARED();
    // stories260K as a model type the engine does not know.
    auto odd = std::make_shared<Model>(*openModel(storiesPath()));
    odd->config.family = Family::Unknown;
    odd->config.modelType = "mamba";
    window_->document()->setModel(odd);
    PerplexityPanel* p = window_->perplexityPanel();
    p->useBuiltinText();
    QVERIFY(runToEnd(p, 60));
    QCOMPARE(p->state(), PState::Failed);
    QVERIFY2(p->statusText().contains(QStringLiteral("cannot run model type \"mamba\"")), qPrintable(p->statusText()));
    ActivationView* a = window_->activationView();
    a->capture();
    QTRY_VERIFY_WITH_TIMEOUT(!a->isBusy(), 30000);
    QVERIFY(!a->currentCapture());
    QVERIFY2(a->statusText().contains(QStringLiteral("mamba")), qPrintable(a->statusText()));
}

void TestGuiEvaluate::cancelKeepsPreviousResultThenRunMatchesCore()
{
    LL_REQUIRE_SHARED();
    QVERIFY(window_->openPath(QString::fromStdString(storiesPath())));
    const auto model = window_->document()->model();
    const uint64_t checksum = modelChecksum(*model);
    PerplexityPanel* p = window_->perplexityPanel();
    p->setTextFile(evalText());
    p->contextBox()->setValue(256);
    p->protocolBox()->setCurrentIndex(0);

    // 1. A quick look: the first 8 windows.
    p->maxWindowsBox()->setValue(8);
    QVERIFY(runToEnd(p, 120));
    QCOMPARE(p->state(), PState::Done);
    const PerplexityOutcome first = *p->shownResult();
    QCOMPARE(first.result.windows, int64_t{8});
    QCOMPARE(first.result.tokensScored, int64_t{8 * 255});
    const QString firstText = p->resultText();

    // A step applied after the evaluation: the result is marked as the original's, not the current model's
    // (issue 15, item 1); undoing it makes the result current again.
    QVERIFY(!p->isStale());
    RecipeStep step;
    step.params = {{"method", "rtn"}, {"bits", 4}, {"group", 32}};
    window_->document()->pushState(applyStep(window_->document()->state(), step, CalibrationText{}).state,
                                   QStringLiteral("RTN"), {});
    QVERIFY(p->isStale());
    QVERIFY2(p->findChild<QLabel*>(QStringLiteral("evaluateRunLabel"))->text().contains(QStringLiteral("Measured on the original model")),
             qPrintable(p->findChild<QLabel*>(QStringLiteral("evaluateRunLabel"))->text()));
    window_->document()->undoStack()->undo();
    QVERIFY(!p->isStale());
    QVERIFY(!p->findChild<QLabel*>(QStringLiteral("evaluateRunLabel"))->text().contains(QStringLiteral("Measured on")));

    // 2. The whole text, cancelled once scoring has begun.
    p->maxWindowsBox()->setValue(0);
    p->run();
    QVERIFY(p->isRunning());
    QVERIFY(!p->runButton()->isEnabled());
    QTRY_VERIFY_WITH_TIMEOUT(p->progressBar()->value() >= 400, 60000); // scoring fills 25 % .. 100 %
    const int atCancel = p->progressBar()->value();
    QVERIFY2(atCancel < 1000, "the evaluation ended before it could be cancelled");
    QElapsedTimer clock;
    clock.start();
    QTest::mouseClick(p->cancelButton(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(!p->isRunning(), 30000);
    qInfo("cancelled at %.1f %% of the bar; the job stopped %lld ms later", atCancel / 10.0,
          static_cast<long long>(clock.elapsed()));
    QCOMPARE(p->state(), PState::Cancelled);
    QVERIFY(p->statusText().contains(QStringLiteral("previous")));
    QCOMPARE(p->resultText(), firstText);
    QCOMPARE(p->shownResult()->result.ppl, first.result.ppl);
    QCOMPARE(p->shownResult()->result.tokensScored, first.result.tokensScored);
    QCOMPARE(window_->document()->model().get(), model.get());
    QCOMPARE(modelChecksum(*model), checksum);
    QVERIFY(p->runButton()->isEnabled());

    // 3. Another run to the end, compared with the core on the same windows.
    p->maxWindowsBox()->setValue(24);
    QVERIFY(runToEnd(p, 120));
    QCOMPARE(p->state(), PState::Done);
    const PerplexityOutcome shown = *p->shownResult();
    const Transformer engine(*model);
    const auto tokenizer = loadTokenizer(*model);
    const std::vector<int32_t> tokens = tokenizer->encode(test::readFile(evalText().toStdString()), true);
    ScoringOptions o;
    o.context = 256;
    o.maxWindows = 24;
    const PerplexityResult core = evaluatePerplexity(engine, tokens, o);
    qInfo("dock: %s (nll %.8f, %lld tokens, %.0f tokens/s); core: %.10f +- %.10f", qPrintable(p->resultText()),
          shown.result.nllMean, static_cast<long long>(shown.result.tokensScored), shown.tokensPerSecond(), core.ppl,
          core.pplStderr);
    QCOMPARE(shown.result.ppl, core.ppl); // exact: same engine, same windows
    QCOMPARE(shown.result.nllMean, core.nllMean);
    QCOMPARE(shown.result.pplStderr, core.pplStderr);
    QCOMPARE(shown.result.tokensScored, core.tokensScored);
    QCOMPARE(shown.textTokens, static_cast<int64_t>(tokens.size()));
    QCOMPARE(p->resultText(), QStringLiteral("%1 ± %2").arg(core.ppl, 0, 'f', 4).arg(core.pplStderr, 0, 'f', 4));
    tokensPerSecond_ = shown.tokensPerSecond();

    // The llama.cpp protocol through the dock, against the core as well.
    p->protocolBox()->setCurrentIndex(1);
    p->maxWindowsBox()->setValue(16);
    QVERIFY(runToEnd(p, 120));
    o.protocol = ScoringProtocol::LlamaCpp;
    o.maxWindows = 16;
    const PerplexityResult half = evaluatePerplexity(engine, tokens, o);
    QCOMPARE(p->shownResult()->result.ppl, half.ppl);
    QCOMPARE(p->shownResult()->result.tokensScored, int64_t{16 * 127});
    p->protocolBox()->setCurrentIndex(0);
    QCOMPARE(modelChecksum(*model), checksum);
}

void TestGuiEvaluate::fullRunMatchesReference()
{
    LL_REQUIRE_SHARED();
    PerplexityPanel* p = window_->perplexityPanel();
    // Only when the whole text takes well under a minute on this machine.
    const double expected = tokensPerSecond_ > 0 ? kReferenceScored / tokensPerSecond_ : 1e9;
    if (expected > 30.0)
        QSKIP(qPrintable(QStringLiteral("the whole eval.txt would take about %1 s here").arg(expected, 0, 'f', 0)));
    p->setTextFile(evalText());
    p->contextBox()->setValue(256);
    p->protocolBox()->setCurrentIndex(0);
    p->maxWindowsBox()->setValue(0);
    QElapsedTimer clock;
    clock.start();
    QVERIFY(runToEnd(p, 120));
    QCOMPARE(p->state(), PState::Done);
    const PerplexityResult& r = p->shownResult()->result;
    qInfo("eval.txt ctx 256, full: %s (ppl %.6f, reference %.6f), %lld tokens, %.1f s (%.0f tokens/s)",
          qPrintable(p->resultText()), r.ppl, kReferencePpl, static_cast<long long>(r.tokensScored),
          clock.elapsed() / 1000.0, p->shownResult()->tokensPerSecond());
    QCOMPARE(r.tokensScored, kReferenceScored);
    QVERIFY2(std::fabs(r.ppl / kReferencePpl - 1.0) <= 1e-4, qPrintable(QString::number(r.ppl, 'g', 10)));
    QVERIFY(p->resultText().startsWith(QStringLiteral("5.374")));
}

void TestGuiEvaluate::greedyGenerationMatchesReference()
{
    LL_REQUIRE_SHARED();
    QVERIFY(window_->openPath(QString::fromStdString(storiesPath())));
    const GreedyReference ref = greedyReference(20);
    const std::vector<int32_t>& promptIds = ref.promptIds;
    const std::vector<int32_t>& expected = ref.next;
    GeneratePanel* g = window_->generatePanel();
    g->promptEdit()->setText(QString::fromStdString(ref.prompt));
    g->tokensBox()->setValue(20);
    g->temperatureBox()->setValue(0.0);
    g->seedBox()->setValue(0);
    QSignalSpy streamed(g, &GeneratePanel::tokenReceived);
    QTest::mouseClick(g->generateButton(), Qt::LeftButton);
    QVERIFY(g->isRunning());
    QTRY_VERIFY_WITH_TIMEOUT(!g->isRunning(), 60000);
    QCOMPARE(g->state(), GeneratePanel::State::Done);
    QCOMPARE(g->promptIds(), promptIds);
    QCOMPARE(g->generatedIds(), expected);
    QCOMPARE(streamed.count(), 20); // one queued update per token
    const QString text = g->outputText();
    const QString refText = QString::fromStdString(ref.text);
    qInfo("generated: %s", qPrintable(text));
    QVERIFY(text.startsWith(QStringLiteral("Once upon a time")));
    const QString continuation = text.mid(QStringLiteral("Once upon a time").size());
    QVERIFY(continuation.size() > 20);
    QVERIFY2(refText.startsWith(continuation), qPrintable(continuation));
    QVERIFY(g->output()->isReadOnly());
}

void TestGuiEvaluate::sampledGenerationFollowsTheSeedAndStops()
{
    LL_REQUIRE_SHARED();
    GeneratePanel* g = window_->generatePanel();
    g->promptEdit()->setText(QStringLiteral("The dog"));
    g->tokensBox()->setValue(30);
    g->temperatureBox()->setValue(0.9);
    auto runWithSeed = [&](int seed) {
        g->seedBox()->setValue(seed);
        g->generate();
        QTRY_VERIFY_WITH_TIMEOUT(!g->isRunning(), 60000);
    };
    runWithSeed(7);
    const std::vector<int32_t> a = g->generatedIds();
    runWithSeed(7);
    QCOMPARE(g->generatedIds(), a);
    runWithSeed(8);
    QVERIFY(g->generatedIds() != a);

    // Stop: the generation ends early (unless the tiny model was faster than the click) and keeps its text.
    g->tokensBox()->setValue(480);
    g->generate();
    QTRY_VERIFY_WITH_TIMEOUT(g->tokenUpdates() >= 1 || !g->isRunning(), 30000);
    g->stop();
    QTRY_VERIFY_WITH_TIMEOUT(!g->isRunning(), 30000);
    qInfo("stop: %s", qPrintable(g->statusText()));
    QVERIFY(g->state() == GeneratePanel::State::Stopped || g->state() == GeneratePanel::State::Done);
    if (g->state() == GeneratePanel::State::Stopped)
        QVERIFY(g->generatedIds().size() < 480);
    QVERIFY(g->generateButton()->isEnabled());
}

// Issue 15, item 7: the original's continuation beside the compressed one,
// same prompt and seed. The original's greedy tokens are llama2.c's reference;
// both are what core's generate() gives on each model.
void TestGuiEvaluate::generationBesideTheOriginal()
{
    LL_REQUIRE_SHARED();
    QVERIFY(window_->openPath(QString::fromStdString(storiesPath())));
    ModelDocument* doc = window_->document();
    RecipeStep rtn;
    rtn.action = StepAction::Quantize;
    rtn.params = {{"method", "rtn"}, {"bits", 2}, {"group", 32}};
    const StepOutcome out = applyStep(doc->state(), rtn, {});
    doc->pushState(out.state, QStringLiteral("RTN 2b g32"), {});

    const GreedyReference ref = greedyReference(20);
    const std::vector<int32_t>& promptIds = ref.promptIds;
    const std::vector<int32_t>& expected = ref.next;
    GeneratePanel* g = window_->generatePanel();
    g->setBesideOriginal(true);
    QVERIFY(g->besideOriginal());
    g->promptEdit()->setText(QString::fromStdString(ref.prompt));
    g->tokensBox()->setValue(20);
    for (const double temperature : {0.0, 0.9}) {
        g->temperatureBox()->setValue(temperature);
        g->seedBox()->setValue(7);
        g->generate();
        QTRY_VERIFY_WITH_TIMEOUT(!g->isRunning(), 60000);
        QCOMPARE(g->state(), GeneratePanel::State::Done);
        GenerateOptions opt;
        opt.maxNewTokens = 20;
        opt.temperature = static_cast<float>(temperature);
        opt.seed = 7;
        const Transformer original(*doc->state().source);
        QCOMPARE(g->originalIds(), ll::generate(original, promptIds, opt));
        QCOMPARE(g->generatedIds(), ll::generate(*doc->state().makeEngine(), promptIds, opt));
        if (temperature == 0.0)
            QCOMPARE(g->originalIds(), expected);
        QVERIFY(g->generatedIds() != g->originalIds()); // 2-bit weights change the story
        QVERIFY(g->originalOutputText().startsWith(QStringLiteral("Once upon a time")));
    }
    // Without a step there is nothing to set beside.
    doc->undoStack()->undo();
    QVERIFY(!g->besideOriginal());
}

void TestGuiEvaluate::activationViewMarksDemoOutliers()
{
    window_->openDemo();
    window_->raiseDock(QStringLiteral("activations"));
    ActivationView* a = window_->activationView();
    QVERIFY(!a->currentCapture());
    QVERIFY(window_->selectTensor(QStringLiteral("blocks.0.attn.q.weight")));
    QVERIFY(a->plot()->markedChannels().empty());
    a->windowsBox()->setValue(8);
    a->contextBox()->setValue(256);
    a->basisBox()->setCurrentIndex(0); // max |x|
    a->kBox()->setValue(5.0);
    QSignalSpy done(a, &ActivationView::captureFinished);
    QTest::mouseClick(a->captureButton(), Qt::LeftButton);
    QVERIFY(a->isBusy());
    QTRY_VERIFY_WITH_TIMEOUT(!a->isBusy(), 120000);
    QCOMPARE(done.count(), 1);
    const auto capture = a->currentCapture();
    QVERIFY2(capture, qPrintable(a->statusText()));
    QVERIFY(capture->syntheticTokens); // the demo has no tokenizer
    QCOMPARE(capture->tokens, int64_t{8 * 256});
    QCOMPARE(capture->inputs.size(), size_t{4 * 4});
    qInfo("demo q input, max |x|: %s", qPrintable(a->summaryText()));

    // The demo's outliers are input channels of the weights (scaled 11-18x):
    // the channel's contribution ||W[:,j]|| * RMS(x_j) shows them in every
    // block as the four largest. From block 3 on, the residual stream has a
    // channel (220) of its own at about 5x the median, marked too at k = 5.
    a->basisBox()->setCurrentIndex(2);
    a->kBox()->setValue(5.0);
    const std::set<int64_t> hidden = columnsOf(demoHiddenOutliers());
    for (int block = 0; block < 4; ++block) {
        QVERIFY(window_->selectTensor(QStringLiteral("blocks.%1.attn.q.weight").arg(block)));
        QVERIFY(!a->isBusy()); // cached: no new capture
        QCOMPARE(a->currentCapture(), capture);
        QCOMPARE(a->shownBlock(), block);
        const std::vector<int64_t> marked = a->outlierChannels();
        qInfo("block %d q: %s", block, qPrintable(a->summaryText()));
        QVERIFY(marked.size() >= 4);
        QCOMPARE(asSet({marked.begin(), marked.begin() + 4}), hidden);
        QVERIFY(a->outliers().ratios[3] > 7.0);
        if (block < 3)
            QCOMPARE(asSet(marked), hidden);
        QCOMPARE(a->plot()->markedChannels(), marked);
        QCOMPARE(a->outlierTable()->rowCount(), static_cast<int>(marked.size()));
    }
    QVERIFY(window_->selectTensor(QStringLiteral("blocks.0.attn.q.weight")));
    qInfo("demo q input, contribution: %s", qPrintable(a->summaryText()));
    QVERIFY(a->summaryText().startsWith(QStringLiteral("Channels ")));
    for (int64_t c : hidden)
        QVERIFY(a->summaryText().contains(QString::number(c)));
    // k, v and gate read the same input; their weights carry the same outlier columns.
    for (const char* name : {"blocks.1.attn.k.weight", "blocks.1.mlp.gate.weight"}) {
        QVERIFY(window_->selectTensor(QString::fromLatin1(name)));
        QCOMPARE(asSet(a->outlierChannels()), hidden);
    }
    QVERIFY(window_->selectTensor(QStringLiteral("blocks.0.attn.o.weight")));
    QCOMPARE(asSet(a->outlierChannels()), columnsOf(demoAttnOutOutliers()));
    // down_proj's input (the MLP activation) is heavy-tailed itself: its three weight outliers come first.
    QVERIFY(window_->selectTensor(QStringLiteral("blocks.0.mlp.down.weight")));
    const std::vector<int64_t> down = a->outlierChannels();
    QVERIFY(down.size() >= 3);
    QCOMPARE(asSet({down.begin(), down.begin() + 3}), columnsOf(demoMlpOutliers()));

    // The log axis and the messages for what has no input statistics.
    a->logYBox()->setChecked(true);
    QVERIFY(a->plot()->logY());
    QVERIFY(window_->selectTensor(QStringLiteral("model.layers.0.input_layernorm.weight")));
    QCOMPARE(a->shownBlock(), -1);
    QVERIFY(a->plot()->markedChannels().empty());
    QVERIFY(window_->selectTensor(QStringLiteral("lm_head.weight")));
    QCOMPARE(a->shownBlock(), -1);
    QVERIFY(a->outlierChannels().empty());
    a->logYBox()->setChecked(false);
    a->kBox()->setValue(5.0);

    // Another model drops the cache.
    QVERIFY(window_->openPath(QString::fromStdString(storiesPath())));
    QVERIFY(!a->currentCapture());
}

void TestGuiEvaluate::closingModelOrWindowWhileRunning()
{
    LL_REQUIRE_SHARED();
    QVERIFY(window_->openPath(QString::fromStdString(storiesPath())));
    PerplexityPanel* p = window_->perplexityPanel();
    p->setTextFile(evalText());
    p->maxWindowsBox()->setValue(0);
    p->run();
    QTRY_VERIFY_WITH_TIMEOUT(p->progressBar()->value() > 0, 30000);
    window_->document()->close();
    QVERIFY(!p->isRunning()); // abandoned at once: its result would be for the old model
    QCOMPARE(p->state(), PState::Idle);
    QVERIFY2(p->statusText().contains(QStringLiteral("closed")), qPrintable(p->statusText()));
    QVERIFY(!p->runButton()->isEnabled());
    QTest::qWait(100);
    QVERIFY(!p->shownResult());

    // Closing the window with an evaluation, a generation and a capture running.
    QVERIFY(window_->openPath(QString::fromStdString(storiesPath())));
    p->run();
    window_->generatePanel()->tokensBox()->setValue(400);
    window_->generatePanel()->generate();
    window_->activationView()->capture();
    QVERIFY(window_->isBusy());
    QElapsedTimer clock;
    clock.start();
    window_->close();
    window_.reset(); // cancel + wait for every thread
    qInfo("window closed with three jobs running in %lld ms", static_cast<long long>(clock.elapsed()));
    QVERIFY(clock.elapsed() < 20000);
}

QTEST_MAIN(TestGuiEvaluate)
#include "test_gui_evaluate.moc"
