// Evaluate › Speed driven as a user would (offscreen): stories260K measured
// alone, then beside its RTN 2-bit state; the figures that do not depend on
// timing (weights, bits, KV cache, FLOPs) are checked against
// `layerlab-cli bench-model --recipe` on the same recipe (and its --report's
// /efficiency read back by h5py), the timings by their number of runs, the flag
// by its definition; then a session round trip and Cancel.
#include "test_support.h"

#include "export_dialog.h"
#include "main_window.h"
#include "model_document.h"
#include "session.h"
#include "speed_panel.h"

#include "recipe/apply.h"

#include <QDir>
#include <QElapsedTimer>
#include <QLabel>
#include <QProcess>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableWidget>
#include <QUndoStack>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <fstream>

using namespace ll;
using namespace ll::gui;

namespace {

std::string stories() { return test::sharedPath("models/stories260K/stories260K.bin"); }
const char* kRtn2 = "layerlab_recipe: 1\nsteps:\n  - action: quantize\n    method: rtn\n    bits: 2\n    group: 32\n";

bool waitIdle(SpeedPanel* p, int seconds)
{
    QElapsedTimer clock;
    clock.start();
    while (p->isRunning() && clock.elapsed() < seconds * 1000)
        QTest::qWait(20);
    return !p->isRunning();
}

} // namespace

class TestGuiSpeed : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("LayerLabTest"));
        QCoreApplication::setApplicationName(QStringLiteral("test_gui_speed"));
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
        QVERIFY(window_->raiseDock(QStringLiteral("speed")));
        SpeedPanel* p = window_->speedPanel();
        p->promptBox()->setValue(64);
        p->decodeBox()->setValue(32);
        p->decodeAfterBox()->setValue(0);
        p->repeatsBox()->setValue(2);

        // The original alone: one column of figures.
        QVERIFY(p->runButton()->isEnabled());
        QTest::mouseClick(p->runButton(), Qt::LeftButton);
        QVERIFY(waitIdle(p, 120));
        QVERIFY2(p->shownResult(), qPrintable(p->statusText()));
        QVERIFY(!p->shownResult()->measured.edited);
        QVERIFY(p->resultTable()->isColumnHidden(2));
        QCOMPARE(p->shownResult()->measured.original.decode.runs.size(), size_t{2});

        // RTN 2-bit applied as the Compress panel applies it, then both, alternating.
        const Recipe rtn2 = parseRecipe(kRtn2, true);
        window_->document()->pushState(applyStep(window_->document()->state(), rtn2.steps[0], CalibrationText{}).state,
                                       QStringLiteral("RTN 2b g32"), {});
        QTest::mouseClick(p->runButton(), Qt::LeftButton);
        QVERIFY(waitIdle(p, 120));
        const SpeedOutcome& shown = *p->shownResult();
        QVERIFY2(shown.measured.edited, qPrintable(p->statusText()));
        QVERIFY(!p->resultTable()->isColumnHidden(2));
        const EfficiencyResult& o = shown.measured.original;
        const EfficiencyResult& c = *shown.measured.edited;
        for (const EfficiencyResult* r : {&o, &c}) {
            QCOMPARE(r->prefill.runs.size(), size_t{2});
            QCOMPARE(r->decode.runs.size(), size_t{2});
            QVERIFY(r->prefill.mean > 0 && r->decode.mean > 0);
        }

        const std::string recipe = test::scratchDir() + "/speed_rtn2.yaml";
        std::ofstream(recipe) << kRtn2;
        const std::string report = test::scratchDir() + "/speed.h5";
        const test::CliResult cli = test::runCli({"bench-model", stories(), "--recipe", recipe, "--prompt", "64", "--decode", "32",
                                                  "--decode-after", "0", "--repeats", "2", "--report", report, "--force", "--json"});
        QVERIFY2(cli.exitCode == 0, cli.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(cli.out);
        // --report: the same document under the HDF5 report's /efficiency, read back by h5py.
        QProcess py;
        py.start(QStringLiteral("/usr/bin/python3"),
                 {QStringLiteral("-c"),
                  QStringLiteral("import h5py, sys, json; g = h5py.File(sys.argv[1], 'r')['efficiency']; "
                                 "print(json.dumps({'json': json.loads(g.attrs['json']), "
                                 "'runs': g['compressed/decode_tokens_per_second/runs'][:].tolist(), "
                                 "'ratio': float(g.attrs['compression_ratio'])}))"),
                  QString::fromStdString(report)});
        QVERIFY(py.waitForFinished(60000));
        const bool h5py = QProcess::execute(QStringLiteral("/usr/bin/python3"), {QStringLiteral("-c"), QStringLiteral("import h5py")}) == 0;
        if (h5py) {
            QVERIFY2(py.exitCode() == 0, py.readAllStandardError().constData());
            const nlohmann::json back = nlohmann::json::parse(py.readAllStandardOutput().toStdString());
            QCOMPARE(back["json"], j);
            QCOMPARE(back["runs"].get<std::vector<double>>(), j["compressed"]["decode_tokens_per_second"]["runs"].get<std::vector<double>>());
            QCOMPARE(back["ratio"].get<double>(), j["compression_ratio"].get<double>());
        } else {
            qWarning("python3-h5py missing: /efficiency not read back");
        }
        for (const auto& [key, r] : {std::pair<const char*, const EfficiencyResult*>{"original", &o}, {"compressed", &c}}) {
            QCOMPARE(j[key]["weight_bytes"].get<uint64_t>(), r->weightBytes);
            QCOMPARE(j[key]["parameters"].get<int64_t>(), r->parameters);
            QCOMPARE(j[key]["kv_bytes_per_1k_tokens"].get<uint64_t>(), r->kvBytesPer1kTokens);
            QCOMPARE(j[key]["flops_per_token"].get<double>(), r->flopsPerToken);
            QCOMPARE(j[key]["bits_per_weight"].get<double>(), r->bitsPerWeight);
        }
        QCOMPARE(j["compression_ratio"].get<double>(), shown.measured.compressionRatio());
        QVERIFY(c.weightBytes < o.weightBytes);

        // The table shows those numbers.
        const QTableWidget* t = p->resultTable();
        QCOMPARE(t->item(SpeedPanel::BitsPerWeight, 1)->text(), QString::number(o.bitsPerWeight, 'f', 2));
        QCOMPARE(t->item(SpeedPanel::BitsPerWeight, 2)->text(), QString::number(c.bitsPerWeight, 'f', 2));
        QCOMPARE(t->item(SpeedPanel::Decode, 1)->text(), QStringLiteral("%1 ± %2").arg(o.decode.mean, 0, 'f', 2).arg(o.decode.sd, 0, 'f', 2));
        QCOMPARE(t->item(SpeedPanel::Decode, 3)->text(), QStringLiteral("%1×").arg(c.decode.mean / o.decode.mean, 0, 'f', 2));
        QVERIFY(t->item(SpeedPanel::Decode, 0)->text().contains(QStringLiteral("tg32")));
        // The flag, by its definition: smaller, and slower by more than one sd of each.
        const bool slower = c.decode.mean + c.decode.sd < o.decode.mean - o.decode.sd;
        QCOMPARE(shown.measured.smallerButSlower(), slower);
        QCOMPARE(p->flagLabel()->isVisibleTo(p), slower);

        // File › Export's report carries these figures under /efficiency, in bench-model's form.
        const nlohmann::json forReport = p->reportJson();
        QCOMPARE(forReport["compressed"]["weight_bytes"].get<uint64_t>(), c.weightBytes);
        QCOMPARE(forReport["original"]["decode_tokens_per_second"]["runs"].get<std::vector<double>>(), o.decode.runs);
        ExportDialog* d = window_->makeExportDialog();
        for (int i = 0; i < ExportDialog::kOutputs; ++i)
            d->setOutputEnabled(static_cast<ExportDialog::Output>(i), i == static_cast<int>(ExportDialog::Output::Report));
        const QString guiReport = QString::fromStdString(test::scratchDir() + "/speed-gui.h5");
        d->setOutputPath(ExportDialog::Output::Report, guiReport);
        d->setConfirmOverwrite([](const QStringList&) { return true; });
        QSignalSpy exported(d, &ExportDialog::exportFinished);
        QVERIFY(d->startExport());
        QVERIFY(exported.wait(60000));
        QVERIFY2(exported.at(0).at(0).toBool(), qPrintable(exported.at(0).at(1).toString()));
        d->close();
        QProcess back;
        back.start(QStringLiteral("/usr/bin/python3"), {QStringLiteral("-c"),
                                                        QStringLiteral("import h5py, sys; print(h5py.File(sys.argv[1], 'r')['efficiency'].attrs['json'])"),
                                                        guiReport});
        QVERIFY(back.waitForFinished(60000));
        if (QProcess::execute(QStringLiteral("/usr/bin/python3"), {QStringLiteral("-c"), QStringLiteral("import h5py")}) == 0) {
            QVERIFY2(back.exitCode() == 0, back.readAllStandardError().constData());
            QCOMPARE(nlohmann::json::parse(back.readAllStandardOutput().toStdString()), forReport);
        }

        QDir().mkpath(QStringLiteral("/tmp/plots"));
        window_->grab().save(QStringLiteral("/tmp/plots/speed_panel.png")); // for a look

        // Undo: the current column is marked as measured on another state.
        window_->document()->undoStack()->undo();
        QVERIFY2(p->statusText().contains(QStringLiteral("earlier state")), qPrintable(p->statusText()));
        QVERIFY(p->reportJson().is_null()); // not this state's figures: no /efficiency in its report
        window_->document()->undoStack()->redo();
    }

    void resultsComeBackWithTheSession()
    {
        LL_REQUIRE_SHARED();
        SpeedPanel* p = window_->speedPanel();
        QVERIFY(p->shownResult());
        const SpeedOutcome saved = *p->shownResult();
        const QString file = QString::fromStdString(test::scratchDir() + "/speed.layerlab");
        QVERIFY(window_->session()->save(file).isEmpty());
        QVERIFY(window_->openPath(QString::fromStdString(stories()))); // another model load clears the panel
        QVERIFY(!p->shownResult());
        QVERIFY(window_->session()->open(file).isEmpty());
        QElapsedTimer clock;
        clock.start();
        while (window_->session()->isRestoring() && clock.elapsed() < 30000)
            QTest::qWait(20);
        QVERIFY(p->shownResult());
        const SpeedOutcome& back = *p->shownResult();
        QCOMPARE(back.measured.original.decode.runs, saved.measured.original.decode.runs);
        QCOMPARE(back.measured.edited->prefill.runs, saved.measured.edited->prefill.runs);
        QCOMPARE(back.measured.edited->weightBytes, saved.measured.edited->weightBytes);
        QCOMPARE(back.measured.edited->hugePageBytes, saved.measured.edited->hugePageBytes);
        QCOMPARE(back.steps, saved.steps);
        QCOMPARE(p->promptBox()->value(), 64);
        QVERIFY(!p->restoreSession(nlohmann::json{{"options", 3}})); // malformed: refused, nothing changes
        QCOMPARE(p->shownResult()->measured.original.decode.runs, saved.measured.original.decode.runs);
    }

    void cancelStopsTheRun()
    {
        LL_REQUIRE_SHARED();
        SpeedPanel* p = window_->speedPanel();
        p->repeatsBox()->setValue(50);
        p->decodeBox()->setValue(400);
        QTest::mouseClick(p->runButton(), Qt::LeftButton);
        QVERIFY(p->isRunning());
        QVERIFY(p->cancelButton()->isEnabled());
        QTest::qWait(100);
        QTest::mouseClick(p->cancelButton(), Qt::LeftButton);
        QVERIFY(waitIdle(p, 60));
        QVERIFY2(p->statusText().startsWith(QStringLiteral("Cancelled")), qPrintable(p->statusText()));
        QVERIFY(p->runButton()->isEnabled());
    }

    void cleanupTestCase() { window_.reset(); }

private:
    std::unique_ptr<MainWindow> window_;
};

QTEST_MAIN(TestGuiSpeed)
#include "test_gui_speed.moc"
