// User-sized models in the memory of the model as stored: a generated BF16
// checkpoint of about 190 MB is evaluated, GPTQ-quantized, and edited with
// apply / undo / redo, each in a process whose address space is limited to
// what the same run needs on a tiny model, plus the checkpoint's bytes, plus
// three quarters of the checkpoint's F32 size (room for GPTQ's Hessians,
// in x in doubles per block input). An engine that converts the weights to F32
// needs all of the F32 size on top of the checkpoint and cannot fit (the
// control: a process that makes that F32 copy under the same limit fails).
//
// The limited processes are this program itself (--exec-limited, which
// setrlimit()s and execs the CLI, and --apply-undo-redo), so the limit covers
// exactly the work under test.
#include "test_support.h"

#include "synthetic_checkpoint.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "eval/sample_text.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "recipe/apply.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <QProcess>
#include <QtTest>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

using namespace ll;

namespace {

// hidden 1024, 8 blocks, FFN 2048, vocab 4096: 92 M parameters, 185 MB in BF16, 370 MB in F32.
synth::SynthShape userShape(int64_t layers, int64_t hidden)
{
    synth::ShapeOverrides o;
    o.layers = layers;
    o.hidden = hidden;
    o.intermediate = 2 * hidden;
    o.vocab = 4096;
    return synth::overrideShape(synth::synthShape("llama2-7b"), o);
}

struct Models {
    std::string dir, big, tiny, text, shortText;
    uint64_t bigBytes = 0, f32Bytes = 0; // the big model's weights as stored, and in F32
};

const Models& models()
{
    static const Models m = [] {
        Models r;
        r.dir = test::scratchDir();
        synth::SynthOptions o;
        o.tokenizer = test::haveShared() ? test::sharedPath("models/stories260K/tok512.bin") : std::string();
        const synth::SynthResult big = synth::writeSyntheticHf(userShape(8, 1024), DType::BF16, r.dir + "/big", o);
        synth::writeSyntheticHf(userShape(1, 256), DType::BF16, r.dir + "/tiny", o);
        r.big = big.path;
        r.tiny = r.dir + "/tiny";
        r.bigBytes = big.weightBytes;
        r.f32Bytes = 2 * big.weightBytes;
        r.text = r.dir + "/sample.txt";
        std::ofstream(r.text) << builtinSampleText();
        r.shortText = r.dir + "/short.txt"; // a few windows of 128 tokens, for evaluations
        std::ofstream(r.shortText) << builtinSampleText().substr(0, 2500);
        return r;
    }();
    return m;
}

struct Run {
    int exitCode = -1;
    std::string out, err;
    uint64_t vmPeak = 0; // bytes, polled from /proc while it ran
};

uint64_t vmPeakOf(qint64 pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmPeak:", 0) == 0)
            return std::stoull(line.substr(7)) * 1024;
    return 0;
}

// This program with `args`, its environment made repeatable (two malloc
// arenas, one compute thread: no spinning against the other tests CTest runs
// beside it), VmPeak polled until it ends.
Run runSelf(const QStringList& args)
{
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("MALLOC_ARENA_MAX", "2");
    env.insert("OMP_NUM_THREADS", "1");
    p.setProcessEnvironment(env);
    p.start(QCoreApplication::applicationFilePath(), args);
    Run r;
    if (!p.waitForStarted())
        return r;
    while (!p.waitForFinished(2)) {
        r.vmPeak = std::max(r.vmPeak, vmPeakOf(p.processId()));
        if (p.state() == QProcess::NotRunning)
            break;
    }
    r.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = p.readAllStandardOutput().toStdString();
    r.err = p.readAllStandardError().toStdString();
    return r;
}

// The CLI under an address-space limit (0: none).
Run runCli(uint64_t limit, const std::vector<std::string>& args)
{
    QStringList a{"--exec-limited", QString::number(limit), LAYERLAB_CLI_PATH};
    for (const std::string& s : args)
        a << QString::fromStdString(s);
    return runSelf(a);
}

// The limit for a run on the big model: the same run's address space on the
// tiny model, plus the big checkpoint, plus 3/4 of its F32 size (an F32 copy
// needs all of it on top of the checkpoint).
uint64_t limitFrom(const Run& tinyRun)
{
    const Models& m = models();
    return tinyRun.vmPeak + m.bigBytes + m.f32Bytes * 3 / 4;
}

void report(const char* what, uint64_t limit, const Run& tiny, const Run& big)
{
    qInfo("%s: limit %llu MiB (the tiny run %llu MiB + the checkpoint %llu MiB + %llu MiB); the run peaked at %llu MiB", what,
          static_cast<unsigned long long>(limit >> 20), static_cast<unsigned long long>(tiny.vmPeak >> 20),
          static_cast<unsigned long long>(models().bigBytes >> 20), static_cast<unsigned long long>((models().f32Bytes * 3 / 4) >> 20),
          static_cast<unsigned long long>(big.vmPeak >> 20));
}

std::string describe(const Run& r)
{
    return "exit " + std::to_string(r.exitCode) + ", VmPeak " + std::to_string(r.vmPeak >> 20) + " MiB: " + r.err.substr(0, 400);
}

// Child, the control: an F32 copy of every weight of the model, as an engine
// that converts them would hold.
int copyToF32(const std::string& model)
{
    std::shared_ptr<const Model> source = openModel(model);
    std::vector<std::vector<float>> copies;
    for (const LogicalTensor& t : source->tensors)
        if (!t.tied)
            copies.push_back(readLogical(*source, t));
    std::printf("%zu tensors copied\n", copies.size());
    return 0;
}

// Child: apply a GPTQ step, then evaluate the states an undo stack moves
// between (apply, undo, redo), printing their perplexities as JSON.
int applyUndoRedo(const std::string& model, const std::string& text)
{
    std::shared_ptr<const Model> source = openModel(model);
    const CompressionState before = CompressionState::initial(source);
    RecipeCalibration calib;
    calib.text = text;
    calib.context = 128;
    calib.windows = 4;
    const CalibrationText c = loadCalibration(*source, calib);
    RecipeStep step;
    step.action = StepAction::Quantize;
    step.params = {{"method", "gptq"}, {"bits", 4}, {"group", 128}};
    const StepOutcome applied = applyStep(before, step, c);
    const std::vector<int32_t> tokens = loadTokenizer(*source)->encode(std::string(builtinSampleText().substr(0, 2500)), true);
    ScoringOptions o;
    o.context = 128;
    o.maxWindows = 2;
    const auto ppl = [&](const CompressionState& s) { return evaluatePerplexity(*s.makeEngine(), tokens, o).ppl; };
    const double apply = ppl(applied.state), undo = ppl(before), redo = ppl(applied.state);
    std::printf("%s\n", nlohmann::json{{"apply", apply}, {"undo", undo}, {"redo", redo}}.dump().c_str());
    return 0;
}

} // namespace

class TestUserSized : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
#if defined(__SANITIZE_ADDRESS__)
        // Every test here caps the child's address space (RLIMIT_AS); AddressSanitizer reserves terabytes of
        // shadow address space up front, so under it any cap is exceeded before the model is read.
        QSKIP("address-space limits cannot be measured under AddressSanitizer");
#endif
        const Models& m = models();
        QVERIFY(m.bigBytes > 150'000'000 && m.f32Bytes == 2 * m.bigBytes);
    }

    void perplexityFitsWhereAnF32CopyCannot()
    {
        const Models& m = models();
        const std::vector<std::string> ppl = {"ppl", "", "--text", m.shortText, "--ctx", "128", "--max-windows", "2", "--json"};
        auto on = [&](const std::string& model) {
            std::vector<std::string> a = ppl;
            a[1] = model;
            return a;
        };
        const Run tiny = runCli(0, on(m.tiny));
        QVERIFY2(tiny.exitCode == 0 && tiny.vmPeak > 0, describe(tiny).c_str());
        const uint64_t limit = limitFrom(tiny);
        const Run big = runCli(limit, on(m.big));
        QVERIFY2(big.exitCode == 0, describe(big).c_str());
        QVERIFY(std::isfinite(nlohmann::json::parse(big.out).at("ppl").get<double>()));
        report("ppl", limit, tiny, big);
        // The control: an F32 copy of the same weights does not fit under such a
        // limit (its own tiny run as the base: this program, not the CLI).
        const Run controlTiny = runSelf({"--copy-to-f32", "0", QString::fromStdString(m.tiny)});
        QVERIFY2(controlTiny.exitCode == 0, describe(controlTiny).c_str());
        const Run control = runSelf({"--copy-to-f32", QString::number(limitFrom(controlTiny)), QString::fromStdString(m.big)});
        QVERIFY2(control.exitCode != 0, describe(control).c_str());
        QVERIFY2(control.err.find("memory") != std::string::npos || control.err.find("alloc") != std::string::npos,
                 describe(control).c_str());
    }

    void gptqFits()
    {
        const Models& m = models();
        const auto gptq = [&](const std::string& model) {
            return std::vector<std::string>{"quantize", model, "--method", "gptq", "--bits", "4", "--group", "128",
                                            "--calib", m.text, "--calib-ctx", "128", "--calib-windows", "4",
                                            "--eval", m.shortText, "--ctx", "128", "--json"};
        };
        const Run tiny = runCli(0, gptq(m.tiny));
        QVERIFY2(tiny.exitCode == 0, describe(tiny).c_str());
        const Run big = runCli(limitFrom(tiny), gptq(m.big));
        QVERIFY2(big.exitCode == 0, describe(big).c_str());
        report("gptq", limitFrom(tiny), tiny, big);
        const nlohmann::json j = nlohmann::json::parse(big.out);
        QCOMPARE(j.at("layers").size(), size_t{8 * 7});
        QVERIFY(std::isfinite(j.at("ppl").get<double>()));
    }

    void applyUndoRedoFit()
    {
        const Models& m = models();
        const Run tiny = runSelf({"--apply-undo-redo", "0", QString::fromStdString(m.tiny), QString::fromStdString(m.text)});
        QVERIFY2(tiny.exitCode == 0, describe(tiny).c_str());
        const Run big = runSelf({"--apply-undo-redo", QString::number(limitFrom(tiny)), QString::fromStdString(m.big),
                                 QString::fromStdString(m.text)});
        QVERIFY2(big.exitCode == 0, describe(big).c_str());
        report("apply, undo, redo", limitFrom(tiny), tiny, big);
        const nlohmann::json j = nlohmann::json::parse(big.out);
        // Redo gives what apply gave; undo gives the source model back.
        QCOMPARE(j.at("redo").get<double>(), j.at("apply").get<double>());
        QVERIFY(j.at("undo").get<double>() != j.at("apply").get<double>());
    }
};

namespace {
bool setAddressLimit(const char* bytes)
{
    const rlim_t limit = std::strtoull(bytes, nullptr, 10);
    if (limit == 0)
        return true;
    const rlimit r{limit, limit};
    return setrlimit(RLIMIT_AS, &r) == 0;
}
} // namespace

int main(int argc, char** argv)
{
    // Child modes (see the top of the file).
    if (argc >= 4 && std::string(argv[1]) == "--exec-limited") {
        if (!setAddressLimit(argv[2]))
            return 90;
        execv(argv[3], argv + 3);
        return 91;
    }
    if (argc == 4 && std::string(argv[1]) == "--copy-to-f32") {
        if (!setAddressLimit(argv[2]))
            return 90;
        try {
            return copyToF32(argv[3]);
        } catch (const std::bad_alloc&) {
            std::fprintf(stderr, "error: out of memory\n");
            return 3;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            return 2;
        }
    }
    if (argc == 5 && std::string(argv[1]) == "--apply-undo-redo") {
        if (!setAddressLimit(argv[2]))
            return 90;
        try {
            return applyUndoRedo(argv[3], argv[4]);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            return 2;
        }
    }
    QCoreApplication app(argc, argv);
    TestUserSized t;
    return QTest::qExec(&t, argc, argv);
}

#include "test_user_sized.moc"
