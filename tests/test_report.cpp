// The HDF5 report (core/report, `layerlab-cli export --report`): written for
// stories260K and a 50 % magnitude-pruned copy through the API and the CLI,
// then read back by an independent reader (h5py, tests/report_dump.py) and
// checked against LayerLab's own numbers: statistics, histograms, the bit-packed
// masks against the pruned zero pattern, the recipe, evaluation, curves and the
// sensitivity table. Also: a cancelled write leaves nothing behind, failures
// are typed errors. Skips the h5py parts when python3-h5py is missing.
#include "test_support.h"

#include "util/atomic_file.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "pipeline/model_compression.h"
#include "report/report_writer.h"
#include "stats/tensor_stats.h"
#include "util/error.h"
#include "util/progress.h"

#include <QProcess>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

using namespace ll;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kStories = "models/stories260K/stories260K.bin";

// A python3 that can import h5py (Debian's python3-h5py lives beside /usr/bin/python3,
// which a pyenv or venv python3 earlier in PATH does not see). Empty: none.
QString h5pyPython()
{
    static const QString found = [] {
        for (const QString& py : {QStringLiteral("/usr/bin/python3"), QStringLiteral("python3")}) {
            QProcess p;
            p.start(py, {"-c", "import h5py, numpy"});
            if (p.waitForFinished(60000) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0)
                return py;
        }
        return QString();
    }();
    return found;
}

#define REQUIRE_H5PY()                                                                        \
    do {                                                                                      \
        if (h5pyPython().isEmpty())                                                           \
            QSKIP("python3 with h5py is missing (apt-get install python3-h5py)");             \
    } while (0)

// The report as tests/report_dump.py sees it: {"/path": {kind, attrs, keys|value|bits}}.
json dumpReport(const std::string& path)
{
    QProcess p;
    p.start(h5pyPython(), {QString(LAYERLAB_SOURCE_DIR "/tests/report_dump.py"), QString::fromStdString(path)});
    if (!p.waitForFinished(120000) || p.exitCode() != 0)
        throw std::runtime_error("report_dump.py failed: " + p.readAllStandardError().toStdString());
    return json::parse(p.readAllStandardOutput().toStdString());
}

bool near(double a, double b, double rel = 1e-12)
{
    return std::abs(a - b) <= rel * std::max({1.0, std::abs(a), std::abs(b)});
}

// Every decodable tensor's group against computeStats of the same values.
void checkLayers(const Model& m, const json& d, int bins)
{
    QCOMPARE(d.at("/layers").at("keys").size(), m.tensors.size());
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        const LogicalTensor& t = m.tensors[i];
        // Creation order is tracked, so h5py lists the layers in the model's order.
        QCOMPARE(d["/layers"]["keys"][i].get<std::string>(), t.logicalName);
        const json& a = d.at("/layers/" + t.logicalName).at("attrs");
        QCOMPARE(a.at("index").get<int64_t>(), static_cast<int64_t>(i));
        QCOMPARE(a.at("role").get<std::string>(), std::string(roleName(t.role)));
        QCOMPARE(a.at("shape").get<std::vector<int64_t>>(), t.shape);
        QCOMPARE(a.at("edited").get<int64_t>(), static_cast<int64_t>(t.edited()));
        StatsOptions so;
        so.bins = bins;
        const TensorStats s = computeStats(readLogical(m, t), so);
        QCOMPARE(a.at("count").get<int64_t>(), s.count);
        QCOMPARE(a.at("zeros").get<int64_t>(), s.zeros);
        QCOMPARE(a.at("outliers").get<int64_t>(), s.outliers);
        for (const auto& [key, v] : {std::pair{"min", s.min}, {"max", s.max}, {"mean", s.mean}, {"std", s.std},
                                     {"kurtosis", s.kurtosis}, {"abs_max", s.absMax}, {"sparsity", s.zeroShare()}})
            QVERIFY2(near(a.at(key).get<double>(), v), (t.logicalName + " " + key).c_str());
        const auto counts = d.at("/layers/" + t.logicalName + "/histogram_counts").at("value").get<std::vector<int64_t>>();
        const auto edges = d.at("/layers/" + t.logicalName + "/histogram_edges").at("value").get<std::vector<double>>();
        QCOMPARE(counts, s.histogram.counts);
        QCOMPARE(static_cast<int>(counts.size()), bins);
        QCOMPARE(std::accumulate(counts.begin(), counts.end(), int64_t{0}), s.count);
        QCOMPARE(edges.size(), counts.size() + 1);
        QVERIFY(near(edges.front(), s.min) && near(edges.back(), s.max));
    }
}

class TestReport : public QObject {
    Q_OBJECT

private slots:
    // The original model through the API, with every optional section filled.
    void apiOriginal()
    {
        LL_REQUIRE_SHARED();
        REQUIRE_H5PY();
        const auto m = openModel(ll::test::sharedPath(kStories));
        const std::string out = ll::test::scratchDir() + "/stories.h5";
        ReportInputs in;
        in.model = m.get();
        in.recipe = json{{"name", "test recipe"}, {"steps", {{{"op", "prune"}, {"sparsity", 0.5}, {"layers", "mlp"}}}},
                         {"unicode", "μ ≈ 0"}};
        in.evaluation = json{{"ppl", 5.3743}, {"tokens_scored", 311610}, {"text", "eval.txt"}, {"windows", {1, 2}}};
        in.errorCurves.push_back({"blocks.0.mlp.down.weight", "rtn", "bits", {2, 3, 4}, {0.5, 0.25, 0.125}, {0.6, 0.3, 0.15}});
        in.errorCurves.push_back({"blocks.0.mlp.down.weight", "magnitude", "sparsity", {0.5}, {0.4}, {}});
        in.sensitivity.push_back({"blocks.0.attn.q.weight", "rtn 3-bit", 0.25, 0.01});
        in.sensitivity.push_back({"blocks.1.attn.q.weight", "rtn 3-bit", std::nullopt, 0.02});
        in.options.bins = 64;
        const ReportResult r = writeReport(out, in);
        QCOMPARE(r.tensors, static_cast<int64_t>(m->tensors.size()));
        QCOMPARE(r.masks, int64_t{0}); // trained weights have no exact zeros worth a mask
        QVERIFY(fs::file_size(out) == r.bytes && r.bytes > 0);

        const json d = dumpReport(out);
        QCOMPARE(d["/"]["attrs"]["schema"].get<std::string>(), std::string("layerlab-report"));
        QCOMPARE(d["/"]["attrs"]["schema_version"].get<int>(), kReportSchemaVersion);
        QCOMPARE(d["/"]["attrs"]["layerlab_version"].get<std::string>(), std::string(LAYERLAB_VERSION));
        const json& ma = d["/model"]["attrs"];
        QCOMPARE(ma["format"].get<std::string>(), std::string("llama2c"));
        QCOMPARE(ma["family"].get<std::string>(), std::string(familyName(m->config.family)));
        QCOMPARE(ma["parameter_count"].get<int64_t>(), m->parameterCount());
        QCOMPARE(ma["file_sizes"][0].get<uint64_t>(), fs::file_size(ll::test::sharedPath(kStories)));
        QCOMPARE(ma["header_hash"].get<std::string>(), modelHeaderHash(*m));
        QCOMPARE(ma["header_hash"].get<std::string>(), r.headerHash);
        checkLayers(*m, d, 64);

        // The recipe round-trips exactly (unicode included).
        QCOMPARE(json::parse(d["/recipe"]["value"].get<std::string>()), *in.recipe);
        const json& ev = d["/evaluation"];
        QCOMPARE(ev["attrs"]["ppl"].get<double>(), 5.3743);
        QCOMPARE(ev["attrs"]["tokens_scored"].get<int64_t>(), int64_t{311610});
        QCOMPARE(json::parse(ev["attrs"]["json"].get<std::string>()), *in.evaluation);
        QCOMPARE(d["/evaluation/windows"]["value"].get<std::vector<double>>(), (std::vector<double>{1, 2}));
        const std::string rtn = "/layers/blocks.0.mlp.down.weight/error_curves/rtn";
        QCOMPARE(d[rtn]["attrs"]["x_label"].get<std::string>(), std::string("bits"));
        QCOMPARE(d[rtn + "/weight_error"]["value"].get<std::vector<double>>(), in.errorCurves[0].weightError);
        QCOMPARE(d[rtn + "/output_error"]["value"].get<std::vector<double>>(), in.errorCurves[0].outputError);
        QVERIFY(!d.contains("/layers/blocks.0.mlp.down.weight/error_curves/magnitude/output_error"));
        QCOMPARE(d["/sensitivity/layer"]["value"][1].get<std::string>(), std::string("blocks.1.attn.q.weight"));
        QCOMPARE(d["/sensitivity/delta_ppl"]["value"][0].get<double>(), 0.25);
        QVERIFY(d["/sensitivity/delta_ppl"]["value"][1].is_null()); // NaN: not given
        QCOMPARE(d["/sensitivity/kl"]["value"][1].get<double>(), 0.02);
    }

    // A 50 % magnitude-pruned model: every mask unpacks to exactly the zero pattern.
    void apiPrunedMasks()
    {
        LL_REQUIRE_SHARED();
        REQUIRE_H5PY();
        const auto src = openModel(ll::test::sharedPath(kStories));
        ModelPruneOptions po;
        po.layer.method = PruneMethod::Magnitude;
        po.layer.sparsity = 0.5;
        const ModelCompressionResult pr = pruneModel(*src, po);
        const Model& m = *pr.model;
        const std::string out = ll::test::scratchDir() + "/pruned.h5";
        ReportInputs in;
        in.model = &m;
        const ReportResult r = writeReport(out, in);
        QCOMPARE(r.masks, static_cast<int64_t>(pr.layers.size())); // the 35 pruned linears, nothing else
        // No recipe, evaluation or sensitivity given: those sections are absent.
        const json d = dumpReport(out);
        QVERIFY(!d.contains("/recipe") && !d.contains("/evaluation") && !d.contains("/sensitivity"));
        checkLayers(m, d, 128);
        int64_t masks = 0;
        for (const LogicalTensor& t : m.tensors) {
            const std::string key = "/layers/" + t.logicalName + "/sparsity_mask";
            if (!t.edited()) {
                QVERIFY2(!d.contains(key), t.logicalName.c_str());
                continue;
            }
            ++masks;
            const json& mask = d.at(key);
            QCOMPARE(mask["attrs"]["rows"].get<int64_t>(), t.shape[0]);
            QCOMPARE(mask["attrs"]["cols"].get<int64_t>(), t.shape[1]);
            QCOMPARE(mask["attrs"]["bit_order"].get<std::string>(), std::string("little"));
            const std::vector<float> w = readLogical(m, t);
            const std::string bits = mask["bits"].get<std::string>();
            QCOMPARE(bits.size(), w.size());
            std::string expected(w.size(), '0');
            for (size_t k = 0; k < w.size(); ++k)
                expected[k] = w[k] != 0.0f ? '1' : '0';
            QVERIFY2(bits == expected, t.logicalName.c_str());
            const double sparsity = d["/layers/" + t.logicalName]["attrs"]["sparsity"].get<double>();
            QVERIFY2(sparsity >= 0.5 && sparsity < 0.52, t.logicalName.c_str());
        }
        QCOMPARE(masks, r.masks);
    }

    // A low-rank tensor: flagged with its rank, statistics of the product A B.
    void factored()
    {
        LL_REQUIRE_SHARED();
        REQUIRE_H5PY();
        auto m = openModel(ll::test::sharedPath(kStories));
        std::vector<float> a(64 * 8), b(8 * 64);
        for (size_t i = 0; i < a.size(); ++i) {
            a[i] = std::sin(0.1f * static_cast<float>(i));
            b[i] = std::cos(0.3f * static_cast<float>(i));
        }
        replaceTensorFactored(*m, "blocks.0.attn.q.weight", a, b, 64, 8, 64);
        const std::string out = ll::test::scratchDir() + "/factored.h5";
        ReportInputs in;
        in.model = m.get();
        writeReport(out, in);
        const json d = dumpReport(out);
        const json& q = d["/layers/blocks.0.attn.q.weight"]["attrs"];
        QCOMPARE(q["factored"].get<int64_t>(), int64_t{1});
        QCOMPARE(q["rank"].get<int64_t>(), int64_t{8});
        QCOMPARE(q["edited"].get<int64_t>(), int64_t{1});
        QCOMPARE(d["/model"]["attrs"]["parameter_count"].get<int64_t>(), m->parameterCount());
        checkLayers(*m, d, 128);
    }

    // The CLI: report alone (with --eval), report beside an HF export, usage errors.
    void cli()
    {
        LL_REQUIRE_SHARED();
        const std::string dir = ll::test::scratchDir();
        const std::string model = ll::test::sharedPath(kStories);
        // A short text keeps the evaluation fast: the first 20,000 characters of eval.txt.
        ll::test::writeFile(dir + "/eval.txt",
                            ll::test::readFile(ll::test::sharedPath("data/tinystories/eval.txt")).substr(0, 20000));
        auto r = ll::test::runCli({"export", model, "--report", dir + "/a.h5", "--eval", dir + "/eval.txt", "--ctx",
                                   "128", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.c_str());
        const json j = json::parse(r.out);
        QCOMPARE(j["report"]["path"].get<std::string>(), dir + "/a.h5");
        const double ppl = j["report"]["evaluation"]["ppl"].get<double>();
        QVERIFY(ppl > 1.0 && ppl < 50.0);

        // An existing report is kept without --force.
        const std::string before = ll::test::readFile(dir + "/a.h5");
        r = ll::test::runCli({"export", model, "--report", dir + "/a.h5"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.find("--force") != std::string::npos, r.err.c_str());
        QVERIFY(ll::test::readFile(dir + "/a.h5") == before);

        // Combined with a Hugging Face export.
        r = ll::test::runCli({"export", model, "--hf", dir + "/hf", "--report", dir + "/b.h5"});
        QVERIFY2(r.exitCode == 0, r.err.c_str());
        QVERIFY(fs::exists(dir + "/hf/model.safetensors") && fs::exists(dir + "/b.h5"));
        QVERIFY2(r.out.find("wrote report") != std::string::npos, r.out.c_str());

        QCOMPARE(ll::test::runCli({"export", model, "--eval", dir + "/eval.txt", "--hf", dir + "/hf2"}).exitCode, 64);
        QCOMPARE(ll::test::runCli({"export", model}).exitCode, 64);
        QVERIFY(!fs::exists(dir + "/hf2"));

        REQUIRE_H5PY();
        const json d = dumpReport(dir + "/a.h5");
        const auto m = openModel(model);
        QCOMPARE(d["/evaluation"]["attrs"]["ppl"].get<double>(), ppl);
        QCOMPARE(d["/evaluation"]["attrs"]["context"].get<int64_t>(), int64_t{128});
        QCOMPARE(d["/model"]["attrs"]["parameter_count"].get<int64_t>(), m->parameterCount());
        QCOMPARE(d["/model"]["attrs"]["source_path"].get<std::string>(), model);
        checkLayers(*m, d, 128);
        // The header hash recomputed in Python from its documented definition.
        QProcess p;
        p.start(h5pyPython(), {"-c", "import sys\nh=0xcbf29ce484222325\n"
                                     "for b in open(sys.argv[1],'rb').read(1<<20):\n"
                                     "    h=((h^b)*0x100000001b3)&0xFFFFFFFFFFFFFFFF\n"
                                     "print('%016x'%h)",
                                QString::fromStdString(model)});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.readAllStandardOutput().trimmed().toStdString(), d["/model"]["attrs"]["header_hash"].get<std::string>());
    }

    // Cancelled part-way: a typed error, nothing under the final name, no partial file.
    void cancelLeavesNothing()
    {
        LL_REQUIRE_SHARED();
        const auto m = openModel(ll::test::sharedPath(kStories));
        const std::string dir = ll::test::scratchDir();
        struct CancelLater : Progress {
            mutable int calls = 0;
            bool cancelled() const override { return ++calls > 40; }
        } cancel;
        ReportInputs in;
        in.model = m.get();
        try {
            writeReport(dir + "/c.h5", in, &cancel);
            QFAIL("not cancelled");
        } catch (const Error& e) {
            QCOMPARE(e.code(), ErrorCode::Cancelled);
            QCOMPARE(e.file(), dir + "/c.h5");
        }
        QVERIFY(cancel.calls > 40);
        QVERIFY(fs::is_empty(dir));
    }

    void typedErrors()
    {
        LL_REQUIRE_SHARED();
        const auto m = openModel(ll::test::sharedPath(kStories));
        ReportInputs in;
        in.model = m.get();
        auto codeOf = [&](const std::string& path, const ReportInputs& inputs) {
            try {
                writeReport(path, inputs);
            } catch (const Error& e) {
                return e.code();
            }
            return ErrorCode::Malformed; // "no error" (never what we expect)
        };
        const std::string dir = ll::test::scratchDir();
        QCOMPARE(codeOf(dir + "/missing/r.h5", in), ErrorCode::NotFound);
        // An unwritable folder. root ignores permissions; /proc refuses new files even to root.
        const std::string locked = dir + "/locked";
        fs::create_directory(locked);
        ::chmod(locked.c_str(), 0555);
        const std::string target = ::access(locked.c_str(), W_OK) == 0 ? std::string("/proc/r.h5") : locked + "/r.h5";
        QCOMPARE(codeOf(target, in), ErrorCode::Io);
        QVERIFY(!fs::exists(target));
        ::chmod(locked.c_str(), 0755);
        // Never over the source model, even with overwrite.
        ReportInputs over = in;
        over.options.overwrite = true;
        QCOMPARE(codeOf(ll::test::sharedPath(kStories), over), ErrorCode::InvalidArgument);
        // A full disk part-way through the file: Io naming the report, nothing kept.
        testing::injectWriteFailure(100000, ENOSPC);
        ErrorCode full = codeOf(dir + "/full.h5", in);
        testing::injectWriteFailure(0, 0);
        QCOMPARE(full, ErrorCode::Io);
        QVERIFY(!fs::exists(dir + "/full.h5"));
        ReportInputs bad = in;
        bad.errorCurves.push_back({"blocks.99.mlp.down.weight", "rtn", "bits", {2}, {0.5}, {}});
        QCOMPARE(codeOf(dir + "/bad.h5", bad), ErrorCode::InvalidArgument);
        bad.errorCurves = {{"blocks.0.mlp.down.weight", "rtn", "bits", {2, 3}, {0.5}, {}}};
        QCOMPARE(codeOf(dir + "/bad.h5", bad), ErrorCode::InvalidArgument);
        QCOMPARE(codeOf(dir + "/none.h5", ReportInputs{}), ErrorCode::InvalidArgument);
        QVERIFY(!fs::exists(dir + "/bad.h5") && !fs::exists(dir + "/none.h5"));
        // Only the locked folder is left: no partial file anywhere.
        QCOMPARE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
    }
};

} // namespace

QTEST_GUILESS_MAIN(TestReport)
#include "test_report.moc"
