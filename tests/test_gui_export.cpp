// Export with a recipe applied, from the CLI (`export --recipe`) and from the
// Export dialog (offscreen): every output reopened and compared with the
// compressed model (Hugging Face F32 bit for bit, GGUF Q8_0 within its
// rounding), the recipe reloaded, and the failure paths: cancel midway and
// closing while exporting leave nothing under the final names, an existing
// output is kept when the user says no, bad folders and a full disk give a
// message in the dialog.
#include "test_support.h"

#include "export_dialog.h"
#include "model_document.h"

#include "pipeline/imatrix.h"
#include "util/atomic_file.h"
#include "export/gguf_export.h"
#include "export/export_common.h"
#include "formats/open_model.h"
#include "model/tensor_data.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "tokenizer/tokenizer.h"

#include <QDir>
#include <QFile>
#include <QPushButton>
#include <QTreeWidget>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QLabel>
#include <QFileInfo>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <thread>

using namespace ll;
using namespace ll::gui;
using Out = ExportDialog::Output;

namespace {

std::string storiesPath()
{
    return test::sharedPath("models/stories260K-hf");
}

// RTN 4-bit, groups of 32, on every block linear: needs no calibration statistics.
Recipe rtnRecipe()
{
    Recipe r;
    RecipeStep s;
    s.action = StepAction::Quantize;
    s.params = {{"method", "rtn"}, {"bits", 4}, {"group", 32}};
    r.steps = {s};
    return r;
}

bool isHdf5(const std::string& path)
{
    return test::readFile(path).rfind(std::string("\x89HDF\r\n\x1a\n", 8), 0) == 0;
}

// Every logical tensor of `back` equals `want`'s bit for bit.
void verifySameWeights(const Model& want, const Model& back)
{
    QCOMPARE(back.tensors.size(), want.tensors.size());
    for (const LogicalTensor& t : want.tensors) {
        const LogicalTensor* b = back.findLogical(t.logicalName);
        QVERIFY2(b && b->shape == t.shape, t.logicalName.c_str());
        QVERIFY2(readLogical(back, *b) == readLogical(want, t), t.logicalName.c_str());
    }
}

// Q8_0 stores round(x / d) with d = max|x| / 127 as F16 per block of 32: the
// error is at most d / 2 plus d's own F16 rounding times 127 (< 0.07 d).
// Rows that do not hold whole blocks fall back to F16, well inside the same bound.
void verifyQ8(const Model& want, const Model& gguf)
{
    for (const LogicalTensor& t : want.tensors) {
        const LogicalTensor* b = gguf.findLogical(t.logicalName);
        QVERIFY2(b && b->shape == t.shape, t.logicalName.c_str());
        const std::vector<float> w = readLogical(want, t);
        std::vector<float> g = readLogical(gguf, *b);
        if (t.role == Role::AttnQ || t.role == Role::AttnK) // llama.cpp's interleaved rotary layout
            g = interleavedToHalves(g, t.shape[0], t.shape[1], want.config.headDim);
        float amax = 0.0f;
        for (float x : w)
            amax = std::max(amax, std::fabs(x));
        const double bound = t.shape.size() == 2 ? 0.6 * amax / 127.0 + 1e-7 : 0.0; // 1-D tensors stay F32
        QVERIFY2(test::maxAbsDiff(w, g) <= bound, t.logicalName.c_str());
    }
}

bool waitFinished(QSignalSpy& spy, int seconds = 120)
{
    return !spy.isEmpty() || spy.wait(seconds * 1000);
}

QStringList entries(const QString& dir)
{
    return QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot);
}

} // namespace

class TestGuiExport : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void cliExportWithRecipe();
    void dialogWritesEveryOutput();
    void dialogRemembersChoices();
    void dialogWritesPreset();
    void dialogSuggestsTheModelsSize();
    void dialogUsesImatrix();
    void cancelMidwayLeavesNothing();
    void closingWhileExportingCancels();
    void existingOutputKeptWhenRefused();
    void badFolderAndFullDisk();

private:
    // A dialog on the document with every output in a fresh folder.
    std::unique_ptr<ExportDialog> makeDialog(const QString& dir);

    std::shared_ptr<const Model> source_;
    CompressionState state_; // RTN 4-bit g32 applied
    std::unique_ptr<ModelDocument> document_;
};

void TestGuiExport::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(QStringLiteral("LayerLabTest"));
    QCoreApplication::setApplicationName(QStringLiteral("test_gui_export"));
    QSettings().clear();
    LL_REQUIRE_SHARED();
    source_ = openModel(storiesPath());
    // The document holds the state the GUI's Apply button makes: the same applyStep.
    const StepOutcome step = applyStep(CompressionState::initial(source_), rtnRecipe().steps[0], CalibrationText{});
    state_ = step.state;
    document_ = std::make_unique<ModelDocument>();
    document_->setModel(source_);
    QStringList touched;
    for (const std::string& n : step.touched)
        touched << QString::fromStdString(n);
    document_->pushState(state_, QStringLiteral("RTN 4b g32"), touched);
    QVERIFY(document_->model() == state_.model);
}

void TestGuiExport::cliExportWithRecipe()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    const std::string recipe = dir + "/rtn.yaml";
    saveRecipe(rtnRecipe(), recipe);
    const StepOutcome want = applyRecipe(source_, rtnRecipe());

    // HF F32 + report: the weights are applyRecipe's, bit for bit; the report is HDF5.
    auto r = test::runCli({"export", storiesPath(), "--recipe", recipe, "--hf", dir + "/hf", "--report", dir + "/r.h5", "--json"});
    QVERIFY2(r.exitCode == 0, r.err.c_str());
    const nlohmann::json j = nlohmann::json::parse(r.out);
    QCOMPARE(j["recipe"]["steps"].size(), size_t(1));
    QVERIFY(j["state"]["layers"].contains("blocks.0.attn.q.weight"));
    QVERIFY(j.contains("report"));
    verifySameWeights(*want.state.model, *openModel(dir + "/hf"));
    QVERIFY(isHdf5(dir + "/r.h5"));
    // Changed from the source, so the recipe really was applied.
    QVERIFY(readLogical(*openModel(dir + "/hf"), *source_->findLogical("blocks.0.attn.q.weight"))
            != readLogical(*source_, *source_->findLogical("blocks.0.attn.q.weight")));

    // GGUF Q8_0 of the recipe's model.
    r = test::runCli({"export", storiesPath(), "--recipe", recipe, "--gguf", dir + "/m.gguf", "--gguf-type", "Q8_0"});
    QVERIFY2(r.exitCode == 0, r.err.c_str());
    QVERIFY(r.out.find("applied 1 step") != std::string::npos);
    verifyQ8(*want.state.model, *openModel(dir + "/m.gguf"));

    // Usage and input errors.
    QCOMPARE(test::runCli({"export", storiesPath(), "--calib", "x.txt", "--hf", dir + "/x"}).exitCode, 64);
    test::writeFile(dir + "/bad.yaml", "layerlab_recipe: 1\nsteps:\n  - {action: quantize, method: rtn, bitz: 4}\n");
    r = test::runCli({"export", storiesPath(), "--recipe", dir + "/bad.yaml", "--hf", dir + "/bad"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.err.find("bad.yaml") != std::string::npos);
    QVERIFY(!QFileInfo::exists(QString::fromStdString(dir + "/bad")));
}

std::unique_ptr<ExportDialog> TestGuiExport::makeDialog(const QString& dir)
{
    auto d = std::make_unique<ExportDialog>(document_.get());
    d->setDestination(dir, QStringLiteral("stories-rtn4"));
    for (int i = 0; i < ExportDialog::kOutputs; ++i)
        d->setOutputEnabled(static_cast<Out>(i), true);
    d->setGgufType(DType::Q8_0);
    d->setHfDtype(DType::F32);
    d->setConfirmOverwrite([](const QStringList&) {
        qWarning("unexpected overwrite question");
        return false;
    });
    return d;
}

void TestGuiExport::dialogWritesEveryOutput()
{
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    auto d = makeDialog(dir);
    d->resize(820, 600);
    d->show();
    QVERIFY(QTest::qWaitForWindowExposed(d.get()));
    // The default paths come from the folder and base name.
    QCOMPARE(d->outputPath(Out::Gguf), dir + QStringLiteral("/stories-rtn4-Q8_0.gguf"));
    QCOMPARE(d->outputPath(Out::Recipe), dir + QStringLiteral("/stories-rtn4.recipe.yaml"));
    QSignalSpy spy(d.get(), &ExportDialog::exportFinished);
    auto* button = d->findChild<QPushButton*>(QStringLiteral("exportButton"));
    QVERIFY(button && button->isEnabled());
    QTest::mouseClick(button, Qt::LeftButton); // one click, four outputs
    QVERIFY(d->isRunning());
    QVERIFY(waitFinished(spy));
    QVERIFY2(spy.at(0).at(0).toBool(), qPrintable(spy.at(0).at(1).toString()));
    QVERIFY(!d->isRunning());
    QCOMPARE(d->written().size(), 4);
    for (const auto& w : d->written()) {
        QVERIFY2(QFileInfo::exists(w.path) && w.bytes > 0, qPrintable(w.path));
        QCOMPARE(w.path, d->outputPath(w.output));
    }
    const Model& want = *document_->model();
    verifySameWeights(want, *openModel(d->outputPath(Out::HuggingFace).toStdString()));
    verifyQ8(want, *openModel(d->outputPath(Out::Gguf).toStdString()));
    QVERIFY(isHdf5(d->outputPath(Out::Report).toStdString()));
    QCOMPARE(loadRecipe(d->outputPath(Out::Recipe).toStdString()).steps, document_->state().steps);
    QVERIFY(loadRecipe(d->outputPath(Out::Recipe).toStdString()) == document_->state().recipe());
    // stories260K's MLP rows of 172 hold no whole Q8_0 block: the fallback is listed (llama.cpp's names).
    const QString notes = d->notes().join(QLatin1Char('\n'));
    // Q8_0 is llama-quantize's preset of that name (every 2-D weight Q8_0 where its blocks fit).
    QVERIFY2(notes.contains(QStringLiteral("GGUF Q8_0: F16 x5: instead of Q8_0 (rows of 172 values"))
                 && notes.contains(QStringLiteral("blk.{0-4}.ffn_down.weight")),
             qPrintable(notes));
    QCOMPARE(d->findChild<QTreeWidget*>(QStringLiteral("exportResults"))->topLevelItemCount(), 4);
    QCOMPARE(entries(dir).size(), 4); // nothing else (no partial files) in the folder
    if (const QByteArray shot = qgetenv("LAYERLAB_EXPORT_SCREENSHOT"); !shot.isEmpty())
        QVERIFY(d->grab().save(QString::fromLocal8Bit(shot)));
}

void TestGuiExport::dialogRemembersChoices()
{
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    {
        auto first = makeDialog(dir);
        first->setOutputEnabled(Out::Gguf, false);
        first->setOutputEnabled(Out::HuggingFace, false);
        first->setOutputEnabled(Out::Report, false);
        first->setGgufType(DType::Q5_K);
        first->setHfDtype(DType::BF16);
        QSignalSpy spy(first.get(), &ExportDialog::exportFinished);
        QVERIFY(first->startExport()); // the choices are saved when an export starts
        QVERIFY(waitFinished(spy));
        QVERIFY(spy.at(0).at(0).toBool());
    }
    ExportDialog d(document_.get());
    QVERIFY(!d.isOutputEnabled(Out::Gguf));
    QVERIFY(!d.isOutputEnabled(Out::HuggingFace));
    QVERIFY(!d.isOutputEnabled(Out::Report));
    QVERIFY(d.isOutputEnabled(Out::Recipe));
    QCOMPARE(d.ggufType(), DType::Q5_K);
    QCOMPARE(d.hfDtype(), DType::BF16);
    QCOMPARE(d.folder(), dir);
    // The base name is the model's, marked as compressed.
    QCOMPARE(d.baseName(), QStringLiteral("stories260K-hf-compressed"));
    // Changing the type refills a default path, never one the user chose.
    d.setGgufType(DType::Q4_K);
    QVERIFY(d.outputPath(Out::Gguf).endsWith(QStringLiteral("-Q4_K.gguf")));
    d.setOutputPath(Out::Gguf, QStringLiteral("mine.gguf"));
    d.setDestination(QStringLiteral("/tmp/elsewhere"), QStringLiteral("x"));
    QCOMPARE(d.outputPath(Out::Gguf), QStringLiteral("/tmp/elsewhere/mine.gguf"));
    QCOMPARE(d.outputPath(Out::Report), QStringLiteral("/tmp/elsewhere/x.report.h5"));
    // Without a compression step there is no recipe to save.
    ModelDocument plain;
    plain.setModel(source_);
    ExportDialog none(&plain);
    QVERIFY(!none.isOutputEnabled(Out::Recipe));
}

void TestGuiExport::dialogWritesPreset()
{
    // Q4_K_M from the dialog: each tensor's type as llama-quantize chose it for
    // stories260K (its own Q4_K_M file in ../shared), the choice explained.
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    auto d = makeDialog(dir);
    d->setOutputEnabled(Out::HuggingFace, false);
    d->setOutputEnabled(Out::Report, false);
    d->setOutputEnabled(Out::Recipe, false);
    d->setGgufPreset(GgufPreset::Q4_K_M);
    QCOMPARE(d->ggufPreset(), std::optional<GgufPreset>(GgufPreset::Q4_K_M));
    QCOMPARE(d->ggufType(), DType::Q4_K);
    QVERIFY(d->outputPath(Out::Gguf).endsWith(QStringLiteral("-Q4_K_M.gguf")));
    QSignalSpy spy(d.get(), &ExportDialog::exportFinished);
    QVERIFY(d->startExport());
    QVERIFY(waitFinished(spy));
    QVERIFY2(spy.at(0).at(0).toBool(), qPrintable(spy.at(0).at(1).toString()));
    const auto ours = openModel(d->outputPath(Out::Gguf).toStdString());
    const auto llama = openModel(test::sharedPath("models/stories260K-gguf/stories260K-Q4_K_M.gguf"));
    QCOMPARE(ours->stored.size(), llama->stored.size());
    for (const TensorRef& t : llama->stored) {
        const auto it = std::find_if(ours->stored.begin(), ours->stored.end(), [&](const TensorRef& x) { return x.name == t.name; });
        QVERIFY2(it != ours->stored.end() && it->dtype == t.dtype, t.name.c_str());
    }
    QCOMPARE(ours->metadata["general.file_type"], nlohmann::json(15));
    const QString notes = d->notes().join(QLatin1Char('\n'));
    QVERIFY2(notes.contains(QStringLiteral("GGUF Q4_K_M: Q8_0 x1: the output layer")), qPrintable(notes));
    QCOMPARE(d->written().at(0).type, QStringLiteral("Q4_K_M"));
    // Q8_0 as a type selects the preset of that name (listed once).
    d->setGgufType(DType::Q8_0);
    QCOMPARE(d->ggufPreset(), std::optional<GgufPreset>(GgufPreset::Q8_0));
    d->setGgufType(DType::Q5_1);
    QVERIFY(!d->ggufPreset().has_value());
}

// An importance matrix chosen in the dialog rounds the GGUF as the API (and
// llama-quantize, tests/test_imatrix.cpp) does with it: the same bytes; a file
// that is not one is refused with its name.
void TestGuiExport::dialogUsesImatrix()
{
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    const std::vector<int32_t> tokens = tokenizeTextFile(*source_, test::sharedPath("data/tinystories/calib.txt"));
    ImatrixOptions io;
    io.context = 128;
    io.chunks = 8;
    const Imatrix im = computeImatrix(*state_.model, tokens, io, "calib.txt");
    const std::string imPath = dir.toStdString() + "/m.dat";
    saveImatrix(im, imPath);
    auto d = makeDialog(dir);
    d->setOutputEnabled(Out::HuggingFace, false);
    d->setOutputEnabled(Out::Report, false);
    d->setOutputEnabled(Out::Recipe, false);
    d->setGgufPreset(GgufPreset::Q4_K_M);
    d->setImatrixFile(QString::fromStdString(imPath));
    QSignalSpy spy(d.get(), &ExportDialog::exportFinished);
    QVERIFY(d->startExport());
    QVERIFY(waitFinished(spy));
    QVERIFY2(spy.at(0).at(0).toBool(), qPrintable(spy.at(0).at(1).toString()));
    GgufExportOptions o;
    o.preset = GgufPreset::Q4_K_M;
    o.type = DType::Q4_K;
    o.imatrix = &im;
    o.imatrixFile = imPath;
    const std::string direct = dir.toStdString() + "/direct.gguf";
    exportGguf(*state_.model, direct, o);
    QVERIFY(test::readFile(d->outputPath(Out::Gguf).toStdString()) == test::readFile(direct));
    o.imatrix = nullptr;
    o.imatrixFile.clear();
    exportGguf(*state_.model, dir.toStdString() + "/plain.gguf", o);
    QVERIFY(test::readFile(dir.toStdString() + "/plain.gguf") != test::readFile(direct)); // the matrix changed the rounding
    // Not an importance matrix: the export fails and says which file.
    const std::string bad = dir.toStdString() + "/bad.dat";
    test::writeFile(bad, "not an imatrix");
    QDir().mkpath(dir + QStringLiteral("/2"));
    auto d2 = makeDialog(dir + QStringLiteral("/2"));
    d2->setOutputEnabled(Out::HuggingFace, false);
    d2->setOutputEnabled(Out::Report, false);
    d2->setOutputEnabled(Out::Recipe, false);
    d2->setImatrixFile(QString::fromStdString(bad));
    QSignalSpy spy2(d2.get(), &ExportDialog::exportFinished);
    QVERIFY(d2->startExport());
    QVERIFY(waitFinished(spy2));
    QVERIFY(!spy2.at(0).at(0).toBool());
    QVERIFY2(spy2.at(0).at(1).toString().contains(QStringLiteral("bad.dat")), qPrintable(spy2.at(0).at(1).toString()));
}

// One click after a 4-bit quantization gives a 4-bit GGUF: without a type
// chosen earlier the dialog suggests the preset nearest the state's bits
// (issue 15, item 9), in Documents/LayerLab rather than beside the source;
// the export reports the size before and after and offers its folder.
void TestGuiExport::dialogSuggestsTheModelsSize()
{
    LL_REQUIRE_SHARED();
    QSettings().clear();
    {
        ExportDialog d(document_.get()); // RTN 4b g32 on every block linear
        const double bits = document_->state().linearBitsPerWeight();
        QVERIFY2(bits > 4.0 && bits < 5.2, qPrintable(QString::number(bits)));
        QCOMPARE(d.ggufPreset(), std::optional<GgufPreset>(GgufPreset::Q4_K_M));
        auto* hint = d.findChild<QLabel*>(QStringLiteral("ggufHint"));
        QVERIFY(hint && !hint->isHidden() && hint->text().startsWith(QStringLiteral("Q4_K_M suggested")));
        QCOMPARE(d.folder(), QDir(QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation)).filePath(QStringLiteral("LayerLab")));
        QVERIFY(QDir(d.folder()).removeRecursively() || !QFileInfo::exists(d.folder()));
        d.setOutputEnabled(Out::HuggingFace, false);
        d.setOutputEnabled(Out::Report, false);
        d.setOutputEnabled(Out::Recipe, false);
        QSignalSpy spy(&d, &ExportDialog::exportFinished);
        QVERIFY(d.startExport()); // the default folder is made on first use
        QVERIFY(waitFinished(spy));
        QVERIFY2(spy.at(0).at(0).toBool(), qPrintable(spy.at(0).at(1).toString()));
        QVERIFY(QFileInfo(d.outputPath(Out::Gguf)).isFile());
        QVERIFY2(d.statusText().contains(QStringLiteral("GGUF Q4_K_M: ")) && d.statusText().contains(QStringLiteral("smaller than the source")),
                 qPrintable(d.statusText()));
        QVERIFY(d.findChild<QPushButton*>(QStringLiteral("exportOpenFolder"))->isEnabled());
        QDir(d.folder()).removeRecursively();
    }
    // A suggestion is not a choice: not remembered. The original model gets Q8_0.
    QVERIFY(!QSettings().contains(QStringLiteral("export/ggufType")));
    ModelDocument plain;
    plain.setModel(source_);
    ExportDialog original(&plain);
    QCOMPARE(original.ggufPreset(), std::optional<GgufPreset>(GgufPreset::Q8_0));
    QVERIFY(original.findChild<QLabel*>(QStringLiteral("ggufHint"))->isHidden());
    // A type the user picked wins over the suggestion, and is remembered.
    original.setGgufType(DType::Q5_K);
    ExportDialog again(document_.get());
    QCOMPARE(again.ggufPreset(), std::optional<GgufPreset>(GgufPreset::Q4_K_M)); // nothing saved yet: no export ran
    QSettings().setValue(QStringLiteral("export/ggufType"), QStringLiteral("Q5_K"));
    ExportDialog chosen(document_.get());
    QCOMPARE(chosen.ggufType(), DType::Q5_K);
    QVERIFY(chosen.findChild<QLabel*>(QStringLiteral("ggufHint"))->isHidden());
}

void TestGuiExport::cancelMidwayLeavesNothing()
{
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    auto d = makeDialog(dir);
    // Hold the job before the second output: the GGUF is complete by then.
    std::atomic<bool> held{false};
    d->setBeforeOutputHook([&held](Out o, const Progress& job) {
        if (o != Out::HuggingFace)
            return;
        held = true;
        while (!job.cancelled())
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
    });
    QSignalSpy spy(d.get(), &ExportDialog::exportFinished);
    QVERIFY(d->startExport());
    QTRY_VERIFY_WITH_TIMEOUT(held.load(), 60000);
    QVERIFY(QFileInfo::exists(d->outputPath(Out::Gguf)));
    d->findChild<QPushButton*>(QStringLiteral("exportCancelButton"))->click();
    QVERIFY(waitFinished(spy));
    QCOMPARE(spy.at(0).at(0).toBool(), false);
    QVERIFY2(d->statusText().contains(QStringLiteral("Cancelled")), qPrintable(d->statusText()));
    QVERIFY(d->written().isEmpty());
    QVERIFY2(entries(dir).isEmpty(), qPrintable(entries(dir).join(QLatin1Char(' '))));

    // Cancelled inside a core writer (no hook): nothing either.
    d->setBeforeOutputHook({});
    spy.clear();
    QVERIFY(d->startExport());
    d->cancelExport();
    QVERIFY(waitFinished(spy));
    QCOMPARE(spy.at(0).at(0).toBool(), false);
    QVERIFY2(entries(dir).isEmpty(), qPrintable(entries(dir).join(QLatin1Char(' '))));
}

void TestGuiExport::closingWhileExportingCancels()
{
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    auto d = makeDialog(dir);
    std::atomic<bool> held{false};
    d->setBeforeOutputHook([&held](Out o, const Progress& job) {
        if (o != Out::Report)
            return;
        held = true;
        while (!job.cancelled())
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
    });
    d->show();
    QSignalSpy spy(d.get(), &ExportDialog::exportFinished);
    QVERIFY(d->startExport());
    QTRY_VERIFY_WITH_TIMEOUT(held.load(), 60000);
    QVERIFY(d->close()); // waits for the job, which removes the GGUF and HF folder it wrote
    QVERIFY(!d->isRunning());
    QCOMPARE(spy.size(), 1);
    QCOMPARE(spy.at(0).at(0).toBool(), false);
    QVERIFY2(entries(dir).isEmpty(), qPrintable(entries(dir).join(QLatin1Char(' '))));
    d.reset(); // and destroying it afterwards is quiet
}

void TestGuiExport::existingOutputKeptWhenRefused()
{
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    auto d = makeDialog(dir);
    const std::string gguf = d->outputPath(Out::Gguf).toStdString();
    test::writeFile(gguf, "keep me");
    QStringList asked;
    bool answer = false;
    d->setConfirmOverwrite([&](const QStringList& existing) {
        asked = existing;
        return answer;
    });
    QSignalSpy spy(d.get(), &ExportDialog::exportFinished);
    QVERIFY(!d->startExport());
    QCOMPARE(asked, QStringList{d->outputPath(Out::Gguf)});
    QCOMPARE(spy.size(), 1);
    QCOMPARE(spy.at(0).at(0).toBool(), false);
    QVERIFY(d->statusText().contains(QStringLiteral("already exists")));
    QCOMPARE(test::readFile(gguf), std::string("keep me"));
    QCOMPARE(entries(dir).size(), 1); // nothing else was written either

    // Saying yes replaces it.
    answer = true;
    spy.clear();
    QVERIFY(d->startExport());
    QVERIFY(waitFinished(spy));
    QVERIFY2(spy.at(0).at(0).toBool(), qPrintable(d->statusText()));
    QVERIFY(test::readFile(gguf).rfind("GGUF", 0) == 0);
    QCOMPARE(entries(dir).size(), 4);
}

void TestGuiExport::badFolderAndFullDisk()
{
    LL_REQUIRE_SHARED();
    const QString dir = QString::fromStdString(test::scratchDir());
    auto d = makeDialog(dir + QStringLiteral("/missing"));
    QSignalSpy spy(d.get(), &ExportDialog::exportFinished);
    QVERIFY(!d->startExport());
    QVERIFY2(d->statusText().contains(QStringLiteral("does not exist")), qPrintable(d->statusText()));

    // A folder nobody may write in (root writes anywhere, except in /proc).
    const QString locked = dir + QStringLiteral("/locked");
    QVERIFY(QDir().mkpath(locked));
    QFile::setPermissions(locked, QFile::ReadOwner | QFile::ExeOwner);
    QFile probe(locked + QStringLiteral("/probe"));
    const bool rootWrites = probe.open(QIODevice::WriteOnly);
    if (rootWrites)
        probe.remove();
    d->setDestination(rootWrites ? QStringLiteral("/proc") : locked, QStringLiteral("x"));
    QVERIFY(!d->startExport());
    QVERIFY2(d->statusText().contains(QStringLiteral("Cannot write")), qPrintable(d->statusText()));
    QFile::setPermissions(locked, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);

    // A full disk while writing the HF folder: the message names the problem, the
    // GGUF written before it stays, nothing of the HF folder is left.
    const QString full = dir + QStringLiteral("/full");
    QVERIFY(QDir().mkpath(full));
    d->setDestination(full, QStringLiteral("x"));
    d->setOutputEnabled(Out::Report, false);
    d->setOutputEnabled(Out::Recipe, false);
    d->setHfDtype(DType::F32);
    std::atomic<bool> armed{false};
    d->setBeforeOutputHook([&armed](Out o, const Progress&) {
        if (o == Out::HuggingFace) {
            ll::testing::injectWriteFailure(4096, ENOSPC);
            armed = true;
        }
    });
    spy.clear();
    QVERIFY(d->startExport());
    QVERIFY(waitFinished(spy));
    ll::testing::injectWriteFailure(0, 0);
    QVERIFY(armed.load());
    QCOMPARE(spy.at(0).at(0).toBool(), false);
    QVERIFY2(d->statusText().contains(QStringLiteral("disk is full")), qPrintable(d->statusText()));
    if (const QByteArray shot = qgetenv("LAYERLAB_EXPORT_SCREENSHOT"); !shot.isEmpty())
        QVERIFY(d->grab().save(QString::fromLocal8Bit(shot).replace(QStringLiteral(".png"), QStringLiteral("-error.png"))));
    QCOMPARE(d->written().size(), 1);
    QCOMPARE(entries(full), QStringList{QStringLiteral("x-Q8_0.gguf")});
}

QTEST_MAIN(TestGuiExport)
#include "test_gui_export.moc"
