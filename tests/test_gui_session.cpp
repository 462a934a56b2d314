// Sessions and the guided tour (issue 7, items 4 and 5) on stories260K-hf:
// a session saved and reopened gives the same steps and bit-identical weights;
// autosave writes the recovery file and a clean exit removes it; the real GUI,
// SIGKILLed after applying a recipe, is recovered completely by the next run
// (--recover yes), and a normal exit leaves nothing to recover; the tour
// visits every step with its dock shown.
#include "test_support.h"

#include "compare_panel.h"
#include "compression_panel.h"
#include "generate_panel.h"
#include "sensitivity_panel.h"
#include "guided_tour.h"
#include "main_window.h"
#include "model_document.h"
#include "perplexity_panel.h"
#include "recipe_panel.h"
#include "session.h"

#include "analysis/model_size.h"
#include "formats/open_model.h"
#include "model/tensor_data.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"

#include <QAction>
#include <QDir>
#include <QFile>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QUndoStack>
#include <QSpinBox>
#include <QMessageBox>
#include <QFileInfo>
#include <QtTest>

#include <qcustomplot.h>

#include <nlohmann/json.hpp>

using namespace ll;
using namespace ll::gui;

namespace {

QString storiesPath()
{
    return QString::fromStdString(test::sharedPath("models/stories260K-hf"));
}

// Two quick steps (no calibration statistics needed) that touch different layers.
const char* kRecipeYaml = "layerlab_recipe: 1\n"
                          "calibration: {text: builtin, context: 64, windows: 4}\n"
                          "steps:\n"
                          "  - {action: quantize, layers: \"attn\", method: rtn, bits: 4, group: 32}\n"
                          "  - {action: prune, layers: \"mlp\", method: magnitude, sparsity: 0.5}\n";

nlohmann::json readJson(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return nullptr;
    const auto j = nlohmann::json::parse(f.readAll().toStdString(), nullptr, false);
    return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

size_t stepsIn(const nlohmann::json& session)
{
    if (!session.is_object() || !session.contains("recipe") || !session["recipe"].is_object())
        return 0;
    return session["recipe"].value("steps", nlohmann::json::array()).size();
}

bool replayAndWait(MainWindow& w, const Recipe& recipe)
{
    QSignalSpy done(w.recipePanel(), &RecipePanel::replayFinished);
    w.recipePanel()->replay(recipe, QStringLiteral("test recipe"));
    return done.wait(120000) && done.first().first().toBool();
}

// The GUI in a scratch HOME / XDG tree, offscreen; returns its stdout.
struct GuiRun {
    int exitCode = -1;
    QByteArray out, err;
};

QProcessEnvironment isolatedEnvironment(const QString& root)
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    for (const char* sub : {"home", "data", "config", "cache", "runtime"})
        QDir().mkpath(root + QLatin1Char('/') + QLatin1String(sub));
    env.insert(QStringLiteral("HOME"), root + QStringLiteral("/home"));
    env.insert(QStringLiteral("XDG_DATA_HOME"), root + QStringLiteral("/data"));
    env.insert(QStringLiteral("XDG_CONFIG_HOME"), root + QStringLiteral("/config"));
    env.insert(QStringLiteral("XDG_CACHE_HOME"), root + QStringLiteral("/cache"));
    env.insert(QStringLiteral("XDG_RUNTIME_DIR"), root + QStringLiteral("/runtime"));
    QFile::setPermissions(root + QStringLiteral("/runtime"), QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    return env;
}

GuiRun runGui(const QProcessEnvironment& env, const QStringList& args)
{
    QProcess p;
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(LAYERLAB_GUI_PATH), args);
    GuiRun r;
    if (!p.waitForStarted(30000) || !p.waitForFinished(300000)) {
        p.kill();
        p.waitForFinished();
        return r;
    }
    r.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = p.readAllStandardOutput();
    r.err = p.readAllStandardError();
    return r;
}

nlohmann::json lastJsonLine(const QByteArray& out)
{
    const QList<QByteArray> lines = out.trimmed().split('\n');
    if (lines.isEmpty())
        return nullptr;
    const auto j = nlohmann::json::parse(lines.last().toStdString(), nullptr, false);
    return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

} // namespace

class TestGuiSession : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void saveAndOpenRoundTrip();
    void damagedSessionOffersTheModelAlone();
    void unsavedStepsAreNotThrownAway();
    void autosaveAndCleanExit();
    void killedGuiIsRecovered();
    void guidedTourVisitsEveryStep();
    void compareRestoresAConfiguration();
};

void TestGuiSession::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true); // autosave goes to ~/.qttest, not the user's data
    QDir(SessionManager::recoveryDirectory()).removeRecursively();
}

void TestGuiSession::saveAndOpenRoundTrip()
{
    LL_REQUIRE_SHARED();
    const Recipe recipe = parseRecipe(kRecipeYaml, true);
    MainWindow a;
    a.setErrorDialogsEnabled(false);
    QVERIFY(a.openPath(storiesPath()));
    QVERIFY(replayAndWait(a, recipe));
    QCOMPARE(a.document()->state().steps.size(), size_t(2));
    // An evaluation on screen (it also lands in the Compare panel).
    PerplexityPanel* pa = a.perplexityPanel();
    pa->useBuiltinText();
    pa->contextBox()->setValue(64);
    pa->maxWindowsBox()->setValue(3);
    {
        QSignalSpy done(pa, &PerplexityPanel::finished);
        pa->run();
        QVERIFY(done.wait(120000) && pa->state() == PerplexityPanel::State::Done);
    }
    QCOMPARE(a.comparePanel()->entries().size(), size_t(1));

    const QString file = QString::fromStdString(test::scratchDir()) + QStringLiteral("/round.layerlab");
    QVERIFY2(a.session()->save(file).isEmpty(), "save failed");
    const nlohmann::json j = readJson(file);
    QCOMPARE(j.value("layerlab_session", 0), SessionManager::kFormatVersion);
    QCOMPARE(QString::fromStdString(j.value("version", std::string())), QStringLiteral(LAYERLAB_VERSION));
    QVERIFY(j.contains("sensitivity")); // the slot other panels fill
    QVERIFY(j.contains("evaluation"));
    QCOMPARE(stepsIn(j), size_t(2));

    MainWindow b;
    b.setErrorDialogsEnabled(false);
    b.openDemo(); // something else open before: the session replaces it
    QSignalSpy restored(b.session(), &SessionManager::restored);
    QVERIFY2(b.session()->open(file).isEmpty(), "open failed");
    QVERIFY(restored.wait(120000));
    QVERIFY(restored.first().first().toBool());
    const CompressionState& sa = a.document()->state();
    const CompressionState& sb = b.document()->state();
    QVERIFY(sb.steps == sa.steps);
    QVERIFY(sb.calibration == sa.calibration);
    QCOMPARE(QString::fromStdString(sb.source->path), QString::fromStdString(sa.source->path));
    QCOMPARE(modelChecksum(*sb.model), modelChecksum(*sa.model));
    QVERIFY(modelChecksum(*sb.model) != modelChecksum(*sb.source)); // the steps did change the weights
    QCOMPARE(b.document()->undoStack()->count(), 1); // one undoable command
    QVERIFY(sb.layers.size() == sa.layers.size());
    // The Evaluate and Compare panels show what was saved (not re-run).
    const auto& shownA = pa->shownResult();
    const auto& shownB = b.perplexityPanel()->shownResult();
    QVERIFY(shownA && shownB);
    QCOMPARE(shownB->result.ppl, shownA->result.ppl);
    QCOMPARE(shownB->result.tokensScored, shownA->result.tokensScored);
    QCOMPARE(shownB->options.context, int64_t(64));
    QVERIFY(shownB->text.isBuiltin());
    QCOMPARE(b.perplexityPanel()->resultText(), pa->resultText());
    QCOMPARE(b.perplexityPanel()->historyTable()->rowCount(), 1);
    QCOMPARE(b.comparePanel()->entries().size(), size_t(1));
    QCOMPARE(b.comparePanel()->entries()[0].ppl, a.comparePanel()->entries()[0].ppl);
    QVERIFY(b.comparePanel()->entries()[0].recipe.steps == a.comparePanel()->entries()[0].recipe.steps);
    QCOMPARE(b.comparePanel()->table()->rowCount(), 1);

    // A damaged session changes nothing.
    test::writeFile(file.toStdString(), "{\"layerlab_session\": 1, \"model\": {\"path\": \"/nonexistent\"}}");
    QVERIFY(!b.session()->open(file).isEmpty());
    QCOMPARE(b.document()->state().steps.size(), size_t(2));
}

// A session whose recipe is damaged still names its model: the window keeps
// what it shows and asks whether to open that model alone (issue 16, item 7).
void TestGuiSession::damagedSessionOffersTheModelAlone()
{
    LL_REQUIRE_SHARED();
    MainWindow w; // message boxes on: the offer is one
    w.openDemo();
    const QString file = QString::fromStdString(test::scratchDir()) + QStringLiteral("/damaged.layerlab");
    const nlohmann::json damaged = {{"layerlab_session", 1},
                                    {"model", {{"path", storiesPath().toStdString()}, {"demo", false}}},
                                    {"recipe", {{"layerlab_recipe", 1}, {"steps", {{{"action", "explode"}}}}}}};
    test::writeFile(file.toStdString(), damaged.dump());
    const QString error = w.openSession(file);
    QVERIFY2(error.contains(file) && error.contains(QLatin1String("explode")), qPrintable(error));
    QVERIFY(w.document()->model()->config.synthetic); // nothing changed yet
    auto* box = w.findChild<QMessageBox*>(QStringLiteral("damagedSessionBox"));
    QVERIFY(box);
    QVERIFY2(box->text().contains(storiesPath()), qPrintable(box->text()));
    QAbstractButton* open = nullptr;
    for (QAbstractButton* b : box->buttons())
        if (box->buttonRole(b) == QMessageBox::AcceptRole)
            open = b;
    QVERIFY(open);
    open->click();
    QTRY_VERIFY(!w.findChild<QMessageBox*>(QStringLiteral("damagedSessionBox"))); // closed and deleted
    QVERIFY(!w.document()->model()->config.synthetic);
    QCOMPARE(QString::fromStdString(w.document()->model()->path), storiesPath());
    QCOMPARE(w.document()->state().steps.size(), size_t(0));

    // Unreadable through and through (not JSON): an error, no offer.
    test::writeFile(file.toStdString(), "{\"layerlab_session\": 1, \"model\": ");
    QVERIFY(!w.openSession(file).isEmpty());
    QVERIFY(!w.findChild<QMessageBox*>(QStringLiteral("damagedSessionBox")));
    for (QMessageBox* m : w.findChildren<QMessageBox*>())
        m->close();
}

// Applied steps that no session holds are not lost without a question:
// quitting, the demo model, another model (issue 15, item 2). Saving the
// session, or restoring one, makes the work "saved".
void TestGuiSession::unsavedStepsAreNotThrownAway()
{
    LL_REQUIRE_SHARED();
    MainWindow w;
    w.setErrorDialogsEnabled(false);
    QStringList questions;
    MainWindow::UnsavedChoice answer = MainWindow::UnsavedChoice::Cancel;
    w.setUnsavedPrompt([&](const QString& q) {
        questions << q;
        return answer;
    });
    QVERIFY(w.openPath(storiesPath()));
    QVERIFY(w.maySetWorkAside(QStringLiteral("quitting"))); // nothing applied: no question
    QVERIFY(questions.isEmpty());
    QVERIFY(replayAndWait(w, parseRecipe(kRecipeYaml, true)));

    w.show();
    QVERIFY(!w.close()); // Cancel: the window stays, the steps too
    QCOMPARE(questions.size(), 1);
    QVERIFY2(questions[0].contains(QStringLiteral("2 compression step")) && questions[0].contains(QStringLiteral("quitting")),
             qPrintable(questions[0]));
    QAction* demo = nullptr;
    for (QAction* a : w.findChildren<QAction*>())
        if (a->text() == QStringLiteral("Open &Demo Model"))
            demo = a;
    QVERIFY(demo);
    demo->trigger();
    QCOMPARE(questions.size(), 2);
    QCOMPARE(w.document()->state().steps.size(), size_t(2)); // still the stories model with its steps

    // Saved: no question any more, until the next step.
    const QString file = QString::fromStdString(test::scratchDir()) + QStringLiteral("/kept.layerlab");
    QVERIFY(w.session()->save(file).isEmpty());
    QVERIFY(w.maySetWorkAside(QStringLiteral("quitting")));
    QCOMPARE(questions.size(), 2);
    w.document()->undoStack()->undo(); // back at the original: nothing applied to lose
    QVERIFY(w.maySetWorkAside(QStringLiteral("quitting")));
    w.document()->undoStack()->redo(); // as saved
    QVERIFY(w.maySetWorkAside(QStringLiteral("quitting")));
    QCOMPARE(questions.size(), 2);
    QVERIFY(replayAndWait(w, parseRecipe(kRecipeYaml, true))); // more on top: unsaved again
    QVERIFY(!w.maySetWorkAside(QStringLiteral("quitting")));
    QCOMPARE(questions.size(), 3);

    // A restored session is as its file has it.
    MainWindow b;
    b.setErrorDialogsEnabled(false);
    b.setUnsavedPrompt([&](const QString& q) {
        questions << q;
        return MainWindow::UnsavedChoice::Cancel;
    });
    QSignalSpy restored(b.session(), &SessionManager::restored);
    QVERIFY(b.session()->open(file).isEmpty());
    QVERIFY(restored.wait(120000) && restored.first().first().toBool());
    QVERIFY(b.maySetWorkAside(QStringLiteral("quitting")));
    QCOMPARE(questions.size(), 3);

    answer = MainWindow::UnsavedChoice::Discard;
    demo->trigger();
    QCOMPARE(questions.size(), 4);
    QVERIFY(w.document()->model()->config.synthetic); // discarded: the demo is open
}

void TestGuiSession::autosaveAndCleanExit()
{
    LL_REQUIRE_SHARED();
    const QString recovery = SessionManager::recoveryPath();
    {
        MainWindow w;
        w.setErrorDialogsEnabled(false);
        QVERIFY(w.session()->startAutosave());
        QVERIFY(!w.session()->recoveryAvailable());
        QVERIFY(w.openPath(storiesPath()));
        QVERIFY(replayAndWait(w, parseRecipe(kRecipeYaml, true)));
        QTRY_COMPARE_WITH_TIMEOUT(stepsIn(readJson(recovery)), size_t(2), 10000);
        // Undo is a change too.
        w.document()->undoStack()->undo();
        QTRY_COMPARE_WITH_TIMEOUT(stepsIn(readJson(recovery)), size_t(0), 10000);
        QVERIFY(QFile::exists(SessionManager::lockPath()));
    }
    // A normal end: nothing left to recover.
    QVERIFY(!QFile::exists(recovery));
    QVERIFY(!QFile::exists(SessionManager::lockPath()));
    MainWindow again;
    QVERIFY(again.session()->startAutosave());
    QVERIFY(!again.session()->recoveryAvailable());
}

void TestGuiSession::killedGuiIsRecovered()
{
    LL_REQUIRE_SHARED();
    const QString root = QString::fromStdString(test::scratchDir()) + QStringLiteral("/gui");
    const QProcessEnvironment env = isolatedEnvironment(root);
    const QString recovery = root + QStringLiteral("/data/LayerLab/LayerLab/recovery.layerlab");
    const QString recipeFile = root + QStringLiteral("/r.yaml");
    test::writeFile(recipeFile.toStdString(), kRecipeYaml);

    // What the killed session should come back as.
    const Recipe recipe = parseRecipe(kRecipeYaml, true);
    const StepOutcome expected = applyRecipe(openModel(storiesPath().toStdString()), recipe);
    const QString expectedSum = checksumHex(modelChecksum(*expected.state.model));

    QProcess first;
    first.setProcessEnvironment(env);
    first.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    first.start(QStringLiteral(LAYERLAB_GUI_PATH),
                {storiesPath(), QStringLiteral("--apply-recipe"), recipeFile, QStringLiteral("--size"),
                 QStringLiteral("1000x700")});
    QVERIFY(first.waitForStarted(30000));
    QTRY_COMPARE_WITH_TIMEOUT(stepsIn(readJson(recovery)), size_t(2), 120000);
    first.kill(); // SIGKILL: no clean-up at all
    QVERIFY(first.waitForFinished(30000));
    QVERIFY(QFile::exists(recovery));

    const GuiRun second = runGui(env, {QStringLiteral("--recover"), QStringLiteral("yes"), QStringLiteral("--print-state")});
    QVERIFY2(second.exitCode == 0, second.err.constData());
    const nlohmann::json s = lastJsonLine(second.out);
    QVERIFY2(s.is_object(), second.out.constData());
    QVERIFY(s.value("recovery_offered", false));
    QVERIFY(s.value("recovered", false));
    // The question named the model, the steps and when they were saved.
    const std::string summary = s.value("recovery_summary", std::string());
    QVERIFY2(summary.find("Model: " + QFileInfo(storiesPath()).fileName().toStdString()) != std::string::npos, summary.c_str());
    QVERIFY2(summary.find("2 steps: " + recipe.steps[0].badge() + ", " + recipe.steps[1].badge()) != std::string::npos,
             summary.c_str());
    QVERIFY2(summary.find("Last saved") != std::string::npos, summary.c_str());
    QCOMPARE(QString::fromStdString(s.value("model", std::string())), QString::fromStdString(expected.state.source->path));
    const Recipe got = Recipe::fromJson(s["recipe"]);
    QVERIFY(got.steps == recipe.steps);
    QVERIFY(got.calibration == recipe.calibration);
    QCOMPARE(QString::fromStdString(s.value("checksum", std::string())), expectedSum);
    QCOMPARE(s.value("undo_count", 0), 1);
    // It exited normally: the next start offers nothing and opens what it is told.
    QVERIFY(!QFile::exists(recovery));
    const GuiRun third = runGui(env, {storiesPath(), QStringLiteral("--print-state")});
    QVERIFY2(third.exitCode == 0, third.err.constData());
    const nlohmann::json t = lastJsonLine(third.out);
    QVERIFY(t.is_object());
    QVERIFY(!t.value("recovery_offered", true));
    QCOMPARE(stepsIn(t), size_t(0));
    QCOMPARE(QString::fromStdString(t.value("checksum", std::string())),
             checksumHex(modelChecksum(*expected.state.source)));
}

// Issue 15, item 7: the tour waits for each action it asks for (Next stays
// disabled), then shows what actually came out; steps without an action
// advance at once. Every step outlines a visible target inside the window.
void TestGuiSession::guidedTourVisitsEveryStep()
{
    LL_REQUIRE_SHARED();
    MainWindow w;
    w.setErrorDialogsEnabled(false);
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.openPath(storiesPath()));
    w.perplexityPanel()->setTextFile(QString::fromStdString(test::sharedPath("data/tinystories/eval.txt")));
    w.perplexityPanel()->setScoreCount(4, PerplexityPanel::CountUnit::Windows);
    w.compressionPanel()->setLivePreview(false);
    GuidedTour* tour = GuidedTour::start(&w);
    QCOMPARE(tour->count(), 9);
    QSignalSpy finished(tour, &GuidedTour::finished);
    const QString shots = qEnvironmentVariable("LAYERLAB_TOUR_SHOTS"); // for looking at the bubbles
    // What each step asks for, done the way a user's click would do it; and a word its result must show.
    const std::vector<std::pair<std::function<void()>, QString>> actions = {
        {[&] { w.selectTensor(QStringLiteral("blocks.1.mlp.down.weight")); }, QStringLiteral("blocks.1.mlp.down.weight")},
        {{}, {}},
        {[&] { w.compressionPanel()->preview(); }, QStringLiteral("preview")},
        {[&] {
             w.compressionPanel()->setTarget(CompressionPanel::Target::AllLinears);
             w.compressionPanel()->apply();
         },
         QStringLiteral("Applied")},
        {[&] { w.perplexityPanel()->run(); }, QStringLiteral("Perplexity of the compressed model")},
        {[&] { w.sensitivityPanel()->run(); }, QStringLiteral("most sensitive")},
        {[&] { w.comparePanel()->compareWithOriginal(); }, QStringLiteral("Perplexity")},
        {[&] {
             w.generatePanel()->tokensBox()->setValue(16);
             w.generatePanel()->generate();
         },
         QStringLiteral("they agree on the first")},
        {{}, {}},
    };
    for (int i = 0; i < tour->count(); ++i) {
        QCOMPARE(tour->current(), i);
        QTest::qWait(50); // the dock raised, the bubble placed
        QWidget* target = tour->currentTarget();
        QVERIFY2(target, qPrintable(tour->step(i).title));
        QVERIFY2(target->isVisible() && !target->visibleRegion().isEmpty(), qPrintable(tour->step(i).title));
        const QRect r = tour->highlightRect();
        QVERIFY(!r.isEmpty());
        QVERIFY(w.rect().intersects(r));
        QVERIFY(tour->isVisible());
        QVERIFY(w.rect().contains(tour->geometry()));
        QCOMPARE(tour->backButton()->isEnabled(), i > 0);
        const auto& [act, shown] = actions[static_cast<size_t>(i)];
        QCOMPARE(tour->isWaiting(), static_cast<bool>(act));
        if (act) {
            // Next does nothing until the action has happened.
            QVERIFY(!tour->nextButton()->isEnabled());
            tour->next();
            QCOMPARE(tour->current(), i);
            act();
            QTRY_VERIFY_WITH_TIMEOUT(!tour->isWaiting(), 120000);
            QVERIFY(tour->nextButton()->isEnabled());
            QVERIFY2(tour->bubbleText().contains(shown), qPrintable(tour->bubbleText()));
            QTRY_VERIFY_WITH_TIMEOUT(!w.isBusy(), 60000);
        }
        // Results that arrived did not widen the window (a long unwrapped label would).
        QVERIFY2(w.width() <= 1280, qPrintable(QString::number(w.width())));
        if (!shots.isEmpty())
            w.grab().save(QStringLiteral("%1/tour_%2.png").arg(shots).arg(i + 1));
        QTest::mouseClick(tour->nextButton(), Qt::LeftButton);
    }
    QCOMPARE(finished.count(), 1);
    QVERIFY(!tour->isVisible());
    // The evaluation landed in Compare with the size every other view shows (analysis/model_size.h).
    QVERIFY(!w.comparePanel()->entries().empty());
    QCOMPARE(w.comparePanel()->entries().back().sizeMiB, static_cast<double>(modelSize(w.document()->state()).bytes) / (1024.0 * 1024.0));
    // Back and a second start reuse the same tour; a step done before keeps its result when revisited.
    QCOMPARE(GuidedTour::start(&w, 2), tour);
    QVERIFY(tour->isWaiting()); // a new run asks again
    tour->back();
    QCOMPARE(tour->current(), 1);
    QTest::mouseClick(tour->closeButton(), Qt::LeftButton);
    QVERIFY(!tour->isVisible());
}

void TestGuiSession::compareRestoresAConfiguration()
{
    LL_REQUIRE_SHARED();
    MainWindow w;
    w.setErrorDialogsEnabled(false);
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.openPath(storiesPath()));
    PerplexityPanel* p = w.perplexityPanel();
    p->useBuiltinText();
    p->contextBox()->setValue(64);
    p->maxWindowsBox()->setValue(4);
    auto evaluate = [p] {
        QSignalSpy done(p, &PerplexityPanel::finished);
        p->run();
        return done.wait(120000) && p->state() == PerplexityPanel::State::Done;
    };
    ComparePanel* c = w.comparePanel();
    QVERIFY(evaluate());
    QCOMPARE(c->entries().size(), size_t(1));
    QVERIFY(replayAndWait(w, parseRecipe(kRecipeYaml, true)));
    QVERIFY(evaluate());
    QVERIFY(evaluate()); // the same configuration again replaces its entry
    QCOMPARE(c->entries().size(), size_t(2));
    QVERIFY(c->entries()[0].recipe.steps.empty());
    QCOMPARE(c->entries()[1].recipe.steps.size(), size_t(2));
    QVERIFY(c->entries()[1].bitsPerWeight < c->entries()[0].bitsPerWeight);
    QCOMPARE(c->table()->rowCount(), 2);
    QCOMPARE(stepsIn(w.session()->toJson()), size_t(2));
    QCOMPARE(w.session()->toJson()["compare"].size(), size_t(2));

    // The original is its own series (the baseline), and the size axis does not run below zero (issue 15, item 7).
    QVERIFY(w.raiseDock(QStringLiteral("compare")));
    QTest::qWait(50);
    QCustomPlot* plot = c->plot();
    QCOMPARE(plot->graphCount(), 2);
    QCOMPARE(plot->graph(1)->name(), QStringLiteral("original"));
    QCOMPARE(plot->graph(1)->dataCount(), 1);
    QCOMPARE(plot->graph(0)->dataCount(), 1);
    QVERIFY(plot->xAxis->range().lower >= 0.0);
    QVERIFY(plot->xAxis->range().contains(c->entries()[0].sizeMiB) && plot->xAxis->range().contains(c->entries()[1].sizeMiB));
    // Clicking the original's point replays its (empty) recipe.
    const QPoint at(int(plot->xAxis->coordToPixel(c->entries()[0].sizeMiB)),
                    int(plot->yAxis->coordToPixel(c->entries()[0].ppl)));
    QCOMPARE(c->pointAt(at), 0);
    QSignalSpy replayed(w.recipePanel(), &RecipePanel::replayFinished);
    QTest::mouseClick(plot, Qt::LeftButton, {}, at);
    QVERIFY(replayed.wait(60000));
    QVERIFY(w.document()->state().steps.empty());
    QCOMPARE(modelChecksum(*w.document()->model()), modelChecksum(*w.document()->state().source));
    if (const QString shots = qEnvironmentVariable("LAYERLAB_TOUR_SHOTS"); !shots.isEmpty())
        w.grab().save(shots + QStringLiteral("/compare.png"));
}

QTEST_MAIN(TestGuiSession)
#include "test_gui_session.moc"
