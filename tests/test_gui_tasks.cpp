// Evaluate › Tasks driven as a user would (offscreen): two task files run on
// the original and, after RTN 2-bit, on the compressed state; the side-by-side
// table is checked against `layerlab-cli eval --recipe` on the same files,
// the original's results are reused, and the chart holds the same numbers.
#include "test_support.h"

#include "main_window.h"
#include "compare_panel.h"
#include "model_document.h"
#include "perplexity_panel.h"
#include "session.h"
#include "task_panel.h"

#include "recipe/apply.h"
#include "stats/rank_correlation.h"

#include <qcustomplot.h>

#include <QElapsedTimer>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableWidget>
#include <QUndoStack>
#include <QtTest>

#include <nlohmann/json.hpp>

using namespace ll;
using namespace ll::gui;

namespace {

std::string taskFile(const std::string& name) { return std::string(LAYERLAB_SOURCE_DIR) + "/tests/data/tasks/" + name; }
std::string stories() { return test::sharedPath("models/stories260K/stories260K.bin"); }
const char* kRtn2 = "layerlab_recipe: 1\nsteps:\n  - action: quantize\n    method: rtn\n    bits: 2\n    group: 32\n";

bool runToEnd(TaskPanel* p, int seconds)
{
    p->run();
    QElapsedTimer clock;
    clock.start();
    while (p->isRunning() && clock.elapsed() < seconds * 1000)
        QTest::qWait(20);
    return !p->isRunning();
}

// "0.7708 ± 0.0613" -> 0.7708
double shownValue(const QTableWidget* t, int row, int column)
{
    return t->item(row, column)->text().section(QStringLiteral(" ± "), 0, 0).toDouble();
}

} // namespace

class TestGuiTasks : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("LayerLabTest"));
        QCoreApplication::setApplicationName(QStringLiteral("test_gui_tasks"));
        QSettings().clear();
        window_ = std::make_unique<MainWindow>();
        window_->setErrorDialogsEnabled(false);
        window_->resize(1280, 800);
        window_->show();
        QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
    }

    void originalAndCompressedSideBySideMatchTheCli()
    {
        LL_REQUIRE_SHARED();
        QVERIFY(window_->openPath(QString::fromStdString(stories())));
        QVERIFY(window_->raiseDock(QStringLiteral("tasks")));
        TaskPanel* p = window_->taskPanel();
        QVERIFY(!p->runButton()->isEnabled()); // nothing to run yet
        // Formats guessed from the files' first lines.
        QVERIFY(p->addTaskFile(QString::fromStdString(taskFile("story_order.jsonl"))));
        QVERIFY(p->addTaskFile(QString::fromStdString(taskFile("winogrande.jsonl"))));
        QCOMPARE(p->tasks()[0].format, QStringLiteral("mc"));
        QCOMPARE(p->tasks()[1].format, QStringLiteral("winogrande"));
        p->limitBox()->setValue(30);

        // The original alone: one column.
        QVERIFY(runToEnd(p, 120));
        QCOMPARE(p->state(), TaskPanel::State::Done);
        QVERIFY(p->resultTable()->isColumnHidden(3));
        QVERIFY(p->shownResult()->current.empty());
        const double firstOriginalSeconds = p->shownResult()->original[0].seconds;

        // RTN 2-bit applied as the Compress panel applies it, then both side by side.
        const Recipe rtn2 = parseRecipe(kRtn2, true);
        window_->document()->pushState(applyStep(window_->document()->state(), rtn2.steps[0], CalibrationText{}).state,
                                       QStringLiteral("RTN 2b g32"), {});
        QVERIFY(runToEnd(p, 120));
        QCOMPARE(p->state(), TaskPanel::State::Done);
        const TaskOutcome& shown = *p->shownResult();
        QCOMPARE(shown.current.size(), size_t{2});
        QVERIFY(!p->resultTable()->isColumnHidden(3));
        // The original's results were kept, not computed again.
        QCOMPARE(shown.original[0].seconds, firstOriginalSeconds);

        const test::CliResult cli = test::runCli({"eval", stories(), "--tasks",
                                                  "mc=" + taskFile("story_order.jsonl") + ",winogrande=" + taskFile("winogrande.jsonl"),
                                                  "--limit", "30", "--recipe", writeRecipe(), "--json"});
        QVERIFY2(cli.exitCode == 0, cli.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(cli.out);
        // Rows: story_order acc, acc_norm; winogrande acc.
        const QTableWidget* t = p->resultTable();
        QCOMPARE(t->rowCount(), 3);
        const struct {
            int row, task;
            const char* metric;
        } rows[] = {{0, 0, "acc"}, {1, 0, "acc_norm"}, {2, 1, "acc"}};
        for (const auto& r : rows) {
            const double cliOriginal = j["tasks"][r.task]["original"]["metrics"][r.metric]["value"];
            const double cliCompressed = j["tasks"][r.task]["compressed"]["metrics"][r.metric]["value"];
            QCOMPARE(t->item(r.row, 1)->text(), QString::fromLatin1(r.metric));
            QVERIFY(std::abs(shownValue(t, r.row, 2) - cliOriginal) < 5e-5);   // shown to 4 decimals
            QVERIFY(std::abs(shownValue(t, r.row, 3) - cliCompressed) < 5e-5);
            const MetricValue* o = shown.original[static_cast<size_t>(r.task)].metric(r.metric);
            const MetricValue* c = shown.current[static_cast<size_t>(r.task)].metric(r.metric);
            QCOMPARE(o->value, cliOriginal);  // the same numbers, not just the same text
            QCOMPARE(c->value, cliCompressed);
        }
        QVERIFY(shown.current[0].metric("acc")->value < shown.original[0].metric("acc")->value); // RTN 2-bit costs accuracy
        // The chart: two bar series (original, current), one bar per accuracy row.
        QCustomPlot* plot = p->plot();
        QCOMPARE(plot->legend->itemCount(), 2);
        auto* originalBars = qobject_cast<QCPBars*>(plot->plottable(0));
        QVERIFY(originalBars);
        QCOMPARE(originalBars->data()->size(), 3);
        QCOMPARE(originalBars->data()->at(0)->value, shown.original[0].metric("acc")->value);

        // Undo: the current column is marked as measured on another state.
        window_->document()->undoStack()->undo();
        QVERIFY2(p->statusText().contains(QStringLiteral("earlier state")), qPrintable(p->statusText()));
    }

    void resultsComeBackWithTheSession()
    {
        LL_REQUIRE_SHARED();
        TaskPanel* p = window_->taskPanel();
        QVERIFY(p->shownResult());
        const TaskOutcome saved = *p->shownResult();
        const QString file = QString::fromStdString(test::scratchDir() + "/tasks.layerlab");
        QVERIFY(window_->session()->save(file).isEmpty());
        QVERIFY(window_->openPath(QString::fromStdString(stories()))); // another model load clears the panel
        QVERIFY(!p->shownResult());
        QVERIFY(window_->session()->open(file).isEmpty());
        QElapsedTimer clock;
        clock.start();
        while (window_->session()->isRestoring() && clock.elapsed() < 30000)
            QTest::qWait(20);
        QVERIFY(p->shownResult());
        const TaskOutcome& back = *p->shownResult();
        QCOMPARE(back.original.size(), saved.original.size());
        QCOMPARE(back.current.size(), saved.current.size());
        for (size_t t = 0; t < saved.original.size(); ++t)
            for (size_t m = 0; m < saved.original[t].metrics.size(); ++m) {
                QCOMPARE(back.original[t].metrics[m].value, saved.original[t].metrics[m].value);
                QCOMPARE(back.current[t].metrics[m].value, saved.current[t].metrics[m].value);
                QCOMPARE(back.current[t].metrics[m].standardError, saved.current[t].metrics[m].standardError);
            }
        QCOMPARE(back.steps, saved.steps);
        QCOMPARE(p->resultTable()->rowCount(), 3);
    }

    void badFilesAndCancel()
    {
        LL_REQUIRE_SHARED();
        TaskPanel* p = window_->taskPanel();
        const std::string dir = test::scratchDir();
        test::writeFile(dir + "/odd.jsonl", "{\"nothing\": 1}\n");
        QVERIFY(!p->addTaskFile(QString::fromStdString(dir + "/odd.jsonl")));
        QVERIFY2(p->statusText().contains(QStringLiteral("odd.jsonl")), qPrintable(p->statusText()));
        test::writeFile(dir + "/broken.jsonl", "{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"label\": 0}\n{broken\n");
        QVERIFY(p->addTaskFile(QString::fromStdString(dir + "/broken.jsonl")));
        QVERIFY(runToEnd(p, 60));
        QCOMPARE(p->state(), TaskPanel::State::Failed);
        QVERIFY2(p->statusText().contains(QStringLiteral("broken.jsonl")) && p->statusText().contains(QStringLiteral("line 2")),
                 qPrintable(p->statusText()));
        p->setTaskEnabled(static_cast<int>(p->tasks().size()) - 1, false);

        // Cancel: the previous results stay.
        const TaskOutcome before = *p->shownResult();
        p->limitBox()->setValue(0);
        p->run();
        p->cancel();
        QElapsedTimer clock;
        clock.start();
        while (p->isRunning() && clock.elapsed() < 60000)
            QTest::qWait(20);
        QVERIFY(p->state() == TaskPanel::State::Cancelled || p->state() == TaskPanel::State::Done);
        if (p->state() == TaskPanel::State::Cancelled)
            QCOMPARE(p->shownResult()->original[0].items, before.original[0].items);
    }

    void compareShowsTasksAgainstPerplexity()
    {
        // Three configurations (original, RTN 3-bit, RTN 2-bit), each with a perplexity (Evaluate) and task
        // results (Tasks): the Compare dock plots the task metric against perplexity with the rank correlations.
        LL_REQUIRE_SHARED();
        QVERIFY(window_->openPath(QString::fromStdString(stories())));
        PerplexityPanel* ppl = window_->perplexityPanel();
        TaskPanel* tasks = window_->taskPanel();
        ComparePanel* compare = window_->comparePanel();
        ppl->useBuiltinText();
        ppl->contextBox()->setValue(128);
        ppl->setScoreCount(4, PerplexityPanel::CountUnit::Windows);
        for (int row = 0; row < static_cast<int>(tasks->tasks().size()); ++row)
            tasks->setTaskEnabled(row, tasks->tasks()[static_cast<size_t>(row)].path.endsWith(QStringLiteral("story_order.jsonl")));
        tasks->limitBox()->setValue(24);
        const auto measure = [&] {
            ppl->run();
            QElapsedTimer clock;
            clock.start();
            while (ppl->isRunning() && clock.elapsed() < 60000)
                QTest::qWait(20);
            QVERIFY(runToEnd(tasks, 60));
            QCOMPARE(tasks->state(), TaskPanel::State::Done);
        };
        measure();
        for (const int bits : {3, 2}) {
            window_->document()->undoStack()->setIndex(0);
            const Recipe r = parseRecipe("layerlab_recipe: 1\nsteps:\n  - action: quantize\n    method: rtn\n    bits: " + std::to_string(bits)
                                             + "\n    group: 32\n",
                                         true);
            window_->document()->pushState(applyStep(window_->document()->state(), r.steps[0], CalibrationText{}).state,
                                           QStringLiteral("RTN"), {});
            measure();
        }
        QCOMPARE(compare->entries().size(), size_t{3});
        std::vector<double> x, y;
        for (const ComparePanel::Entry& e : compare->entries()) {
            QCOMPARE(e.tasks.size(), size_t{1});
            x.push_back(e.ppl);
            y.push_back(e.tasks.begin()->second);
        }
        QVERIFY(y[2] < y[0]); // RTN 2-bit below the original on word order
        QCustomPlot* plot = compare->proxyPlot();
        QCOMPARE(plot->graphCount(), 1);
        QCOMPARE(plot->graph(0)->data()->size(), 3);
        const QString summary = compare->proxySummary();
        QVERIFY2(summary.contains(QStringLiteral("Spearman %1").arg(spearman(x, y).value, 0, 'f', 2)), qPrintable(summary));
        QVERIFY2(summary.contains(QStringLiteral("over 3 configurations")), qPrintable(summary));
    }

    void cleanupTestCase() { window_.reset(); }

private:
    std::string writeRecipe()
    {
        const std::string path = test::scratchDir() + "/rtn2.yaml";
        test::writeFile(path, kRtn2);
        return path;
    }
    std::unique_ptr<MainWindow> window_;
};

QTEST_MAIN(TestGuiTasks)
#include "test_gui_tasks.moc"
