// The workbench (issue 6), driven as a user would on stories260K-hf
// (offscreen): filter and select layers, preview GPTQ 4-bit, apply, undo,
// redo; a pruning and a low-rank step; the recipe saved and replayed by
// `layerlab-cli apply` with identical weights and perplexity; cancelling each
// kind of job leaves the model unchanged; closing during a job is clean; the
// event loop keeps running while a step is applied.
#include "test_support.h"

#include "compare_panel.h"
#include "compression_panel.h"
#include "analysis/compression_preview.h"
#include "export_dialog.h"
#include "histogram_plot.h"
#include "job_runner.h"
#include "main_window.h"
#include "perplexity_panel.h"
#include "model_browser.h"
#include "model_document.h"
#include "model_tree_model.h"
#include "recipe_panel.h"
#include "format.h"
#include "sparsity_mask_view.h"
#include "tensor_filter.h"

#include "analysis/model_size.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "formats/open_model.h"
#include "model/tensor_data.h"
#include "recipe/recipe.h"
#include "stats/tensor_stats.h"
#include "util/threads.h"

#include <QElapsedTimer>
#include <QItemSelectionModel>
#include <QLabel>
#include <QStatusBar>
#include <QListWidget>
#include <QTabWidget>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTimer>
#include <QTreeView>
#include <QUndoStack>
#include <QtTest>

#include <barrier>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include <cstring>

using namespace ll;
using namespace ll::gui;

namespace {

std::string storiesPath()
{
    return test::sharedPath("models/stories260K-hf");
}
QString calibText()
{
    return QString::fromStdString(test::sharedPath("data/tinystories/calib.txt"));
}

bool sameValues(const Model& a, const LogicalTensor& ta, const Model& b, const LogicalTensor& tb)
{
    const std::vector<float> va = readLogical(a, ta), vb = readLogical(b, tb);
    return va.size() == vb.size() && std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0;
}

// Every tensor of `a` equals the tensor of the same name in `b`, bit for bit.
bool sameModel(const Model& a, const Model& b)
{
    if (a.tensors.size() != b.tensors.size())
        return false;
    for (const LogicalTensor& t : a.tensors) {
        const LogicalTensor* u = b.findLogical(t.logicalName);
        if (!u || u->shape != t.shape || !sameValues(a, t, b, *u))
            return false;
    }
    return true;
}

// Selects tensors in the tree view, as a user's ctrl-clicks would.
void selectInTree(MainWindow& w, const std::vector<std::string>& names)
{
    QTreeView* view = w.browser()->view();
    view->selectionModel()->clearSelection();
    for (const std::string& n : names) {
        const int index = w.document()->findTensor(QString::fromStdString(n));
        QVERIFY2(index >= 0, n.c_str());
        const QModelIndex src = w.browser()->treeModel()->indexOfTensor(index);
        const QModelIndex proxy = w.browser()->proxy()->mapFromSource(src);
        QVERIFY2(proxy.isValid(), ("filtered out: " + n).c_str());
        view->selectionModel()->select(proxy, QItemSelectionModel::Select | QItemSelectionModel::Rows);
    }
}

// The step's outcome arrived and its job thread is done.
bool waitApplied(CompressionPanel* p, QSignalSpy& spy, int ms = 120000)
{
    if (spy.isEmpty() && !spy.wait(ms))
        return false;
    return QTest::qWaitFor([p] { return !p->isBusy(); }, ms);
}

} // namespace

class TestGuiWorkbench : public QObject {
    Q_OBJECT
private slots:

    // One task manager (issue 14, item 4): every runner is known (busy and
    // cancel-all in one place), and jobs running at once share the cores.
    void jobsShareOneCpuBudget()
    {
        setComputeThreads(4);
        const int before = JobRunner::runningCount();
        JobRunner a, b;
        std::barrier started(2), measured(2);
        std::atomic<int> threadsA{0}, threadsB{0};
        a.start([&](JobContext&) {
            started.arrive_and_wait();
            threadsA = computeThreads();
            measured.arrive_and_wait();
        });
        b.start([&](JobContext&) {
            started.arrive_and_wait();
            threadsB = computeThreads();
            measured.arrive_and_wait();
        });
        QCOMPARE(JobRunner::runningCount(), before + 2);
        QTRY_VERIFY_WITH_TIMEOUT(!a.isRunning() && !b.isRunning(), 10000);
        QCOMPARE(threadsA.load(), 2);
        QCOMPARE(threadsB.load(), 2);
        QCOMPARE(JobRunner::runningCount(), before);
        // cancelAll reaches a job of any runner.
        std::atomic<bool> sawCancel{false};
        a.start([&](JobContext& job) {
            while (!job.cancelled())
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            sawCancel = true;
        });
        JobRunner::cancelAll();
        QTRY_VERIFY_WITH_TIMEOUT(!a.isRunning(), 10000);
        QVERIFY(sawCancel.load());
        setComputeThreads(0);
    }
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QSettings().clear();
    }

    void previewApplyUndoRedo()
    {
        LL_REQUIRE_SHARED();
        MainWindow w;
        w.setErrorDialogsEnabled(false);
        w.resize(1280, 800);
        w.show();
        QVERIFY(w.openPath(QString::fromStdString(storiesPath())));
        const auto source = w.document()->model();
        CompressionPanel* panel = w.compressionPanel();
        panel->setLivePreview(false);
        panel->setCalibrationFile(calibText());
        panel->setCalibrationWindows(8);

        // Filter the tree to the attention, select the q and k of block 0 and 1.
        w.browser()->setFilterText(QStringLiteral("attn"));
        const std::vector<std::string> chosen{"blocks.0.attn.q.weight", "blocks.0.attn.k.weight", "blocks.1.attn.q.weight"};
        selectInTree(w, chosen);
        panel->setAction(StepAction::Quantize);
        panel->setMethod(QStringLiteral("gptq"));
        panel->setParam(QStringLiteral("bits"), 4);
        panel->setParam(QStringLiteral("group"), 32);
        QCOMPARE(panel->currentStep().layers, exactNamesPattern(chosen));

        // Preview on the current tensor: the numbers are the step's on that tensor alone.
        w.document()->setCurrentTensor(w.document()->findTensor(QStringLiteral("blocks.0.attn.q.weight")));
        QSignalSpy previewed(panel, &CompressionPanel::previewReady);
        panel->preview();
        QVERIFY2(previewed.wait(60000), qPrintable(panel->statusText()));
        const PreviewResult* pr = panel->lastPreview();
        QVERIFY(pr);
        QVERIFY(pr->record.bitsPerWeight && *pr->record.bitsPerWeight > 4.0 && *pr->record.bitsPerWeight < 6.0);
        QVERIFY(pr->record.outputError && *pr->record.outputError > 0.0 && *pr->record.outputError < 0.5);
        QCOMPARE(pr->curve.size(), size_t(7)); // bits 2..8
        QVERIFY(pr->curve.front().weightError > pr->curve.back().weightError);
        // The overlay: the quantized values counted in the original's bins (GPTQ's updates may push a
        // few values past the original's range; those are left out and counted).
        StatsOptions so;
        so.bins = CompressionPanel::kPreviewBins;
        int64_t outside = 0;
        const std::vector<int64_t> expected = HistogramPlot::binInto(computeStats(pr->before, so).histogram, pr->after, &outside);
        QCOMPARE(panel->histogram()->overlayCounts(), expected);
        int64_t overlay = 0;
        for (int64_t c : expected)
            overlay += c;
        QCOMPARE(overlay + outside, int64_t{64 * 64});
        QVERIFY(w.document()->model() == source); // a preview changes nothing

        // Apply: one command, badges in the tree, the source untouched.
        QSignalSpy applied(panel, &CompressionPanel::applied);
        panel->apply();
        QVERIFY2(waitApplied(panel, applied), qPrintable(panel->statusText()));
        QCOMPARE(applied.takeFirst().at(0).toBool(), true);
        QCOMPARE(w.document()->undoStack()->count(), 1);
        const auto afterGptq = w.document()->model();
        for (const std::string& n : chosen) {
            const LayerRecord* r = w.document()->record(n);
            QVERIFY2(r, n.c_str());
            QCOMPARE(r->badges, std::vector<std::string>{"GPTQ 4b g32"});
            QVERIFY(!sameValues(*afterGptq, *afterGptq->findLogical(n), *source, *source->findLogical(n)));
        }
        QVERIFY(!w.document()->record("blocks.1.attn.k.weight")); // not selected
        const QModelIndex q0 = w.browser()->treeModel()->indexOfTensor(w.document()->findTensor(QStringLiteral("blocks.0.attn.q.weight")));
        QCOMPARE(q0.siblingAtColumn(ModelTreeModel::CompressionColumn).data().toString(), QStringLiteral("GPTQ 4b g32"));
        QVERIFY(q0.siblingAtColumn(ModelTreeModel::BitsColumn).data().toDouble() > 4.0);
        // The preview of q0 is what Apply wrote for q0: the same code on the same statistics
        // (block 0's inputs do not depend on any compressed layer).
        {
            const std::vector<float> now = readLogical(*afterGptq, *afterGptq->findLogical("blocks.0.attn.q.weight"));
            QVERIFY(std::memcmp(now.data(), pr->after.data(), now.size() * sizeof(float)) == 0);
        }

        // A preview of the applied layer compares with the original weights, not with the GPTQ ones it stacks on
        // (issue 15, item 4).
        QVERIFY(!pr->beforeIsSource);
        {
            QSignalSpy again(panel, &CompressionPanel::previewReady);
            panel->preview();
            QVERIFY2(again.wait(60000), qPrintable(panel->statusText()));
            const PreviewResult* stacked = panel->lastPreview();
            QVERIFY(stacked->beforeIsSource);
            const std::vector<float> original = readLogical(*source, *source->findLogical("blocks.0.attn.q.weight"));
            QVERIFY(stacked->before == original);
        }

        // Undo restores the source values exactly; redo the GPTQ values.
        w.document()->undoStack()->undo();
        QVERIFY(w.document()->model() == source);
        QVERIFY(w.document()->state().steps.empty());
        QVERIFY(q0.siblingAtColumn(ModelTreeModel::CompressionColumn).data().toString().isEmpty());
        w.document()->undoStack()->redo();
        QVERIFY(w.document()->model() == afterGptq);
        QCOMPARE(w.document()->state().steps.size(), size_t(1));

        // A pruning step and a low-rank step on patterns.
        panel->setTarget(CompressionPanel::Target::Pattern, QStringLiteral("mlp\\.(gate|up)"));
        panel->setAction(StepAction::Prune);
        panel->setMethod(QStringLiteral("wanda"));
        panel->setParam(QStringLiteral("sparsity"), 0.5);
        panel->apply();
        QVERIFY2(waitApplied(panel, applied), qPrintable(panel->statusText()));
        QCOMPARE(applied.takeFirst().at(0).toBool(), true);
        const LayerRecord* up = w.document()->record("blocks.2.mlp.up.weight");
        QVERIFY(up && std::abs(up->sparsity - 0.5) < 0.01);
        panel->setTarget(CompressionPanel::Target::Pattern, QStringLiteral("mlp\\.down"));
        panel->setAction(StepAction::Factorize);
        panel->setMethod(QStringLiteral("svd"));
        panel->setParam(QStringLiteral("rank-ratio"), 0.5);
        panel->apply();
        QVERIFY2(waitApplied(panel, applied), qPrintable(panel->statusText()));
        QCOMPARE(applied.takeFirst().at(0).toBool(), true);
        QVERIFY(w.document()->record("blocks.4.mlp.down.weight")->rank > 0);
        QCOMPARE(w.document()->undoStack()->count(), 3);
        QCOMPARE(w.recipePanel()->list()->count(), 3);
        QVERIFY(w.document()->model()->parameterCount() < source->parameterCount()); // factors stored

        // For looking at the workbench mid-workflow: LAYERLAB_SCREENSHOTS=dir saves the window and docks.
        if (const QByteArray dir = qgetenv("LAYERLAB_SCREENSHOTS"); !dir.isEmpty()) {
            w.document()->setCurrentTensor(w.document()->findTensor(QStringLiteral("blocks.2.mlp.up.weight")));
            panel->setAction(StepAction::Prune);
            panel->setMethod(QStringLiteral("magnitude"));
            panel->setParam(QStringLiteral("nm"), QStringLiteral("2:4"));
            QSignalSpy shown(panel, &CompressionPanel::previewReady);
            panel->preview();
            QVERIFY(shown.wait(60000));
            for (const QSize size : {QSize(1280, 800), QSize(1920, 1080)}) {
                w.resize(size);
                QTest::qWait(300);
                w.grab().save(QString::fromUtf8(dir) + QStringLiteral("/workbench_%1.png").arg(size.width()));
            }
            w.recipeDock()->raise();
            w.historyDock()->raise();
            QTest::qWait(100);
            w.historyDock()->grab().save(QString::fromUtf8(dir) + QStringLiteral("/history_dock.png"));
            for (int tab = 0; tab < panel->previewTabs()->count(); ++tab) {
                panel->previewTabs()->setCurrentIndex(tab);
                QTest::qWait(100);
                w.compressDock()->grab().save(QString::fromUtf8(dir) + QStringLiteral("/compress_tab%1.png").arg(tab));
            }
        }

        // The recipe replayed headless: the same weights and perplexity.
        const std::string dir = test::scratchDir();
        QVERIFY(w.recipePanel()->saveTo(QString::fromStdString(dir + "/session.yaml")).isEmpty());
        const Recipe saved = loadRecipe(dir + "/session.yaml");
        QCOMPARE(saved.steps.size(), size_t(3));
        QCOMPARE(saved.calibration.windows, int64_t{8});
        const std::string evalText = test::sharedPath("data/tinystories/eval.txt");
        const test::CliResult cli = test::runCli({"apply", dir + "/session.yaml", storiesPath(), "--eval", evalText, "--ctx",
                                                  "64", "--out", dir + "/replayed", "--json"});
        QVERIFY2(cli.exitCode == 0, cli.err.c_str());
        QVERIFY(sameModel(*openModel(dir + "/replayed"), *w.document()->model()));
        const std::vector<int32_t> tokens = tokenizeTextFile(*source, evalText);
        ScoringOptions opt;
        opt.context = 64;
        const double guiPpl = evaluatePerplexity(*w.document()->state().makeEngine(), tokens, opt).ppl;
        QCOMPARE(nlohmann::json::parse(cli.out).at("ppl").get<double>(), guiPpl);
        qInfo("three-step recipe: ppl %.4f (source 5.3743 on full windows of 256; here windows of 64)", guiPpl);

        // Removing a step from the recipe replays the rest as one undoable command.
        QSignalSpy replayed(w.recipePanel(), &RecipePanel::replayFinished);
        w.recipePanel()->removeStep(1);
        QVERIFY(replayed.wait(120000));
        QCOMPARE(replayed.takeFirst().at(0).toBool(), true);
        QCOMPARE(w.document()->state().steps.size(), size_t(2));
        QVERIFY(!w.document()->record("blocks.2.mlp.up.weight"));
        w.document()->undoStack()->undo();
        QCOMPARE(w.document()->state().steps.size(), size_t(3));
    }

    void cancellingLeavesTheModelUnchanged()
    {
        LL_REQUIRE_SHARED();
        MainWindow w;
        w.setErrorDialogsEnabled(false);
        w.show();
        QVERIFY(w.openPath(QString::fromStdString(storiesPath())));
        const auto source = w.document()->model();
        CompressionPanel* panel = w.compressionPanel();
        panel->setLivePreview(false);
        panel->setCalibrationFile(calibText());
        panel->setTarget(CompressionPanel::Target::AllLinears);
        // Each kind of job: quantize (GPTQ), prune (SparseGPT), low rank (SVD-LLM), a preview, a recipe replay.
        const std::vector<std::pair<StepAction, QString>> kinds{
            {StepAction::Quantize, QStringLiteral("gptq")},
            {StepAction::Prune, QStringLiteral("sparsegpt")},
            {StepAction::Factorize, QStringLiteral("svd-llm")},
        };
        QSignalSpy applied(panel, &CompressionPanel::applied);
        for (const auto& [action, method] : kinds) {
            panel->setAction(action);
            panel->setMethod(method);
            panel->setParam(QStringLiteral("bits"), 3);
            panel->apply();
            QVERIFY(panel->isBusy());
            panel->cancel();
            QVERIFY(waitApplied(panel, applied));
            QCOMPARE(applied.takeFirst().at(0).toBool(), false);
            QVERIFY2(panel->statusText().contains(QStringLiteral("Cancelled")), qPrintable(panel->statusText()));
            QVERIFY(w.document()->model() == source);
            QCOMPARE(w.document()->undoStack()->count(), 0);
        }
        w.document()->setCurrentTensor(w.document()->findTensor(QStringLiteral("blocks.3.mlp.down.weight")));
        panel->preview();
        panel->cancel();
        QTRY_VERIFY_WITH_TIMEOUT(!panel->isBusy(), 60000);
        QVERIFY(w.document()->model() == source);
        QSignalSpy replayed(w.recipePanel(), &RecipePanel::replayFinished);
        w.recipePanel()->loadFrom(QStringLiteral(":/recipes/gptq-4bit.yaml"));
        QVERIFY(w.recipePanel()->isBusy());
        for (QPushButton* b : w.recipePanel()->findChildren<QPushButton*>())
            if (b->text() == QLatin1String("Cancel"))
                b->click(); // as the user would

        QVERIFY(replayed.wait(120000));
        QCOMPARE(replayed.takeFirst().at(0).toBool(), false);
        QVERIFY(w.document()->model() == source);
        QCOMPARE(w.document()->undoStack()->count(), 0);
    }

    // The demo model has no tokenizer: calibration-free steps apply (and preview), calibrated ones say why not.
    void demoModelTakesCalibrationFreeSteps()
    {
        MainWindow w;
        w.setErrorDialogsEnabled(false);
        w.show();
        w.openDemo();
        CompressionPanel* panel = w.compressionPanel();
        panel->setLivePreview(false);
        panel->setTarget(CompressionPanel::Target::Pattern, QStringLiteral("^blocks\\.0\\."));
        panel->setAction(StepAction::Quantize);
        panel->setMethod(QStringLiteral("rtn"));
        panel->setParam(QStringLiteral("bits"), 4);
        QSignalSpy applied(panel, &CompressionPanel::applied);
        panel->apply();
        QVERIFY2(waitApplied(panel, applied), qPrintable(panel->statusText()));
        QCOMPARE(applied.takeFirst().at(0).toBool(), true);
        QVERIFY(w.document()->record("blocks.0.mlp.down.weight"));
        QVERIFY(!w.document()->record("blocks.0.mlp.down.weight")->outputError); // no text, no output error
        QSignalSpy previewed(panel, &CompressionPanel::previewReady);
        w.document()->setCurrentTensor(w.document()->findTensor(QStringLiteral("blocks.1.attn.q.weight")));
        panel->preview();
        QVERIFY2(previewed.wait(60000), qPrintable(panel->statusText()));
        panel->setMethod(QStringLiteral("gptq"));
        panel->apply();
        QVERIFY(waitApplied(panel, applied));
        QCOMPARE(applied.takeFirst().at(0).toBool(), false);
        QVERIFY2(panel->statusText().contains(QStringLiteral("tokenizer"), Qt::CaseInsensitive), qPrintable(panel->statusText()));
        QCOMPARE(w.document()->undoStack()->count(), 1);
    }

    // Compare: the original against the current state, numbers as the core computes them.
    void compareWithOriginal()
    {
        LL_REQUIRE_SHARED();
        MainWindow w;
        w.setErrorDialogsEnabled(false);
        w.show();
        QVERIFY(w.openPath(QString::fromStdString(storiesPath())));
        CompressionPanel* panel = w.compressionPanel();
        panel->setLivePreview(false);
        panel->setTarget(CompressionPanel::Target::AllLinears);
        panel->setAction(StepAction::Quantize);
        panel->setMethod(QStringLiteral("rtn"));
        panel->setParam(QStringLiteral("bits"), 3);
        panel->setParam(QStringLiteral("group"), 32);
        QSignalSpy applied(panel, &CompressionPanel::applied);
        panel->apply();
        QVERIFY2(waitApplied(panel, applied), qPrintable(panel->statusText()));
        const std::string evalText = test::sharedPath("data/tinystories/eval.txt");
        w.perplexityPanel()->setTextFile(QString::fromStdString(evalText));
        QSignalSpy ready(w.comparePanel(), &ComparePanel::comparisonReady);
        w.comparePanel()->compareWithOriginal();
        QVERIFY(w.isBusy()); // the window knows (it guards closing and opening on it)
        QVERIFY(ready.wait(120000));
        QCOMPARE(ready.takeFirst().at(0).toBool(), true);
        QTRY_VERIFY(!w.isBusy());

        ScoringOptions opt;
        opt.context = 256;
        opt.maxWindows = ComparePanel::kCompareWindows;
        const std::vector<int32_t> tokens = tokenizeTextFile(*w.document()->state().source, evalText);
        const Transformer base(*w.document()->state().source);
        const ComparisonResult r = compareModels(base, *w.document()->state().makeEngine(), tokens, opt);
        const QString shown = w.comparePanel()->comparison();
        qInfo("%s", qPrintable(shown));
        QVERIFY2(shown.contains(QString::number(std::exp(r.nllReference), 'f', 4)), qPrintable(shown));
        QVERIFY2(shown.contains(QString::number(std::exp(r.nllCandidate), 'f', 4)), qPrintable(shown));
        QVERIFY2(shown.contains(QStringLiteral("%1 %").arg(100.0 * r.top1Agreement, 0, 'f', 2)), qPrintable(shown));
        QVERIFY(std::exp(r.nllCandidate) > std::exp(r.nllReference)); // 3-bit RTN costs perplexity

        // One size model: the tree's root, the status bar and Compare show analysis/model_size's figures.
        const ModelSize size = modelSize(w.document()->state());
        const QModelIndex root = w.browser()->treeModel()->index(0, 0);
        QCOMPARE(root.data(ModelTreeModel::BytesRole).value<quint64>(), quint64{size.bytes});
        QCOMPARE(root.data(ModelTreeModel::ParamsRole).value<qint64>(), qint64{size.parameters});
        QVERIFY2(shown.contains(formatBytes(size.bytes)), qPrintable(shown));
        QStringList status;
        for (const QLabel* l : w.statusBar()->findChildren<QLabel*>())
            status << l->text();
        QVERIFY2(status.contains(QStringLiteral("%1 compressed").arg(formatBytes(size.bytes))), qPrintable(status.join(" | ")));
        // 3-bit RTN grids with a scale and zero per 32 weights: their packed bytes, far below F32's.
        const LogicalTensor* q = w.document()->model()->findLogical("blocks.0.attn.q.weight");
        const TensorSize qs = tensorSize(w.document()->state(), *q);
        QCOMPARE(qs.type, std::string("3-bit grid"));
        QCOMPARE(qs.bytes, quint64(64 * (2 * 5 + 64 * 3 / 8))); // 64 rows: 2 groups (float scale, byte zero), 24 bytes of codes
        QVERIFY(!qs.nominal);
        // And the file File › Export writes by default: Compare names its exact size, which the written file has.
        GgufExportOptions gguf;
        gguf.preset = suggestedGgufPreset(w.document()->state());
        const std::string out = test::scratchDir() + "/compare.gguf";
        const ExportResult written = exportGguf(*w.document()->model(), out, gguf);
        QCOMPARE(static_cast<uint64_t>(std::filesystem::file_size(out)), written.totalBytes);
        QVERIFY2(shown.contains(formatBytes(written.totalBytes) + QStringLiteral(" (")
                                + QString::fromLatin1(ggufPresetInfo(*gguf.preset).name)),
                 qPrintable(shown));
    }

    // The event loop keeps turning while a step runs; closing mid-job is clean.
    void responsiveAndSafeToClose()
    {
        LL_REQUIRE_SHARED();
        auto* w = new MainWindow;
        w->setErrorDialogsEnabled(false);
        w->show();
        QVERIFY(w->openPath(QString::fromStdString(storiesPath())));
        CompressionPanel* panel = w->compressionPanel();
        panel->setLivePreview(false);
        panel->setCalibrationFile(calibText());
        panel->setTarget(CompressionPanel::Target::AllLinears);
        panel->setAction(StepAction::Quantize);
        panel->setMethod(QStringLiteral("gptq"));
        panel->setParam(QStringLiteral("bits"), 3);

        QElapsedTimer clock;
        qint64 last = 0, worst = 0;
        QTimer tick;
        tick.setInterval(5);
        connect(&tick, &QTimer::timeout, [&] {
            const qint64 now = clock.elapsed();
            worst = std::max(worst, now - last);
            last = now;
        });
        QSignalSpy applied(panel, &CompressionPanel::applied);
        clock.start();
        tick.start();
        panel->apply();
        QVERIFY(waitApplied(panel, applied));
        tick.stop();
        QCOMPARE(applied.takeFirst().at(0).toBool(), true);
        qInfo("GPTQ 3-bit on every linear, %lld ms; longest event-loop gap %lld ms", static_cast<long long>(clock.elapsed()),
              static_cast<long long>(worst));
        // Applying pushes one command and refreshes the tree: that is the longest GUI-thread work.
        QVERIFY2(worst < 250, qPrintable(QStringLiteral("event loop blocked for %1 ms").arg(worst)));

        // Start another step and close the window while it runs.
        panel->setMethod(QStringLiteral("rtn"));
        panel->apply();
        QVERIFY(panel->isBusy());
        w->close();
        delete w; // cancels the job and waits for its thread
    }
};

QTEST_MAIN(TestGuiWorkbench)
#include "test_gui_workbench.moc"
