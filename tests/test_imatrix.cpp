// llama.cpp's importance matrix (pipeline/imatrix): the file format both ways,
// the values against llama-imatrix's on the same model and text, and GGUF
// exports with an imatrix byte-identical to llama-quantize --imatrix. The
// references in tests/data/imatrix were made by llama.cpp (commit c392e50;
// tests/data/imatrix/README.md has the commands).
#include "test_support.h"

#include "pipeline/imatrix.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "export/gguf_presets.h"
#include "formats/open_model.h"
#include "model/naming.h"
#include "pipeline/model_compression.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "util/error.h"

#include <QCryptographicHash>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>

using namespace ll;

namespace {

// LayerLab's forward pass against llama.cpp's on the same weights: float
// sums of squares over the same tokens (llama.cpp accumulates in float).
constexpr double kImatrixRelTol = 2e-3;

std::string dataPath(const std::string& name)
{
    return std::string(LAYERLAB_SOURCE_DIR) + "/tests/data/imatrix/" + name;
}

DType typeNamed(const std::string& name)
{
    for (DType t : ggufExportTypes())
        if (name == dtypeName(t))
            return t;
    throw std::runtime_error("no GGUF type " + name);
}

std::string storiesGguf() { return test::sharedPath("models/stories260K-gguf/stories260K-f32.gguf"); }

ImatrixOptions optionsOf(const nlohmann::json& j)
{
    ImatrixOptions o;
    o.context = j.at("ctx").get<int64_t>();
    o.chunks = j.at("chunks").get<int64_t>();
    return o;
}

nlohmann::json references()
{
    return nlohmann::json::parse(test::readFile(dataPath("references.json")));
}

// SHA-256 of each tensor's bytes in a GGUF file.
std::map<std::string, std::string> tensorHashes(const std::string& file)
{
    const auto m = openModel(file);
    std::map<std::string, std::string> out;
    for (const TensorRef& t : m->stored)
        out[t.name] = QCryptographicHash::hash(QByteArrayView(t.data, static_cast<qsizetype>(t.nbytes)),
                                               QCryptographicHash::Sha256).toHex().toStdString();
    return out;
}

} // namespace

class TestImatrix : public QObject {
    Q_OBJECT
private slots:
    void roundTrip();
    void readsLlamaImatrixFiles();
    void matchesLlamaImatrix();
    void exportsByteIdenticalToLlamaQuantize();
    void recipeStepMatchesLlamaQuantize();
    void imatrixLowersTheDamage();
    void refusesBadFiles();
};

// Written and read back: the same entries, chunks and dataset; llama.cpp's
// layout (values stored as mean · ncall) checked on the raw bytes.
void TestImatrix::roundTrip()
{
    Imatrix m;
    m.chunks = 3;
    m.dataset = "calib.txt";
    m.entries["blk.0.attn_q.weight"] = {{0.5f, 2.0f, 0.0f, 8.25f}, 3};
    m.entries["blk.0.ffn_down.weight"] = {{1.0f, 4.0f}, 3};
    const std::string file = test::scratchDir() + "/m.dat";
    saveImatrix(m, file);
    const std::string bytes = test::readFile(file);
    // 4 (count) + attn_q: 4 + 19 + 4 + 4 + 4·4, ffn_down: 4 + 21 + 4 + 4 + 2·4, trailer 4 + 4 + 9
    QCOMPARE(bytes.size(), size_t(4 + (4 + 19 + 4 + 4 + 16) + (4 + 21 + 4 + 4 + 8) + (4 + 4 + 9)));
    float first = 0;
    std::memcpy(&first, bytes.data() + 4 + 4 + 19 + 4 + 4, 4); // blk.0.attn_q.weight sorts first
    QCOMPARE(first, 1.5f); // 0.5 · ncall 3
    const Imatrix back = loadImatrix(file);
    QCOMPARE(back.chunks, 3);
    QCOMPARE(back.dataset, std::string("calib.txt"));
    QCOMPARE(back.entries.size(), size_t(2));
    QCOMPARE(*back.find("blk.0.attn_q.weight"), (std::vector<float>{0.5f, 2.0f, 0.0f, 8.25f}));
    QCOMPARE(back.entries.at("blk.0.attn_q.weight").calls, 3);
    QVERIFY(!back.find("blk.1.attn_q.weight"));
}

// Files llama-imatrix wrote load, with its entries and trailer.
void TestImatrix::readsLlamaImatrixFiles()
{
    const nlohmann::json refs = references();
    for (const auto& [name, r] : refs.at("imatrix").items()) {
        const Imatrix m = loadImatrix(dataPath(name));
        QCOMPARE(static_cast<int64_t>(m.entries.size()), r.at("entries").get<int64_t>());
        QCOMPARE(static_cast<int64_t>(m.chunks), r.at("chunks").get<int64_t>());
        QVERIFY(!m.dataset.empty());
        for (const auto& [tensor, e] : m.entries) {
            QVERIFY2(tensor.rfind("blk.", 0) == 0, tensor.c_str());
            QCOMPARE(static_cast<int64_t>(e.calls), r.at("chunks").get<int64_t>());
            for (float v : e.meanSquare)
                QVERIFY(std::isfinite(v) && v >= 0.0f);
        }
    }
}

// LayerLab's imatrix of the same model on the same text and chunks equals
// llama-imatrix's, entry by entry and value by value.
void TestImatrix::matchesLlamaImatrix()
{
    LL_REQUIRE_SHARED();
    const nlohmann::json refs = references();
    for (const auto& [name, r] : refs.at("imatrix").items()) {
        const auto model = openModel(test::sharedPath(r.at("model").get<std::string>()));
        const std::vector<int32_t> tokens = tokenizeTextFile(*model, test::sharedPath(r.at("text").get<std::string>()));
        const Imatrix ours = computeImatrix(*model, tokens, optionsOf(r), "text");
        const Imatrix theirs = loadImatrix(dataPath(name));
        QCOMPARE(ours.entries.size(), theirs.entries.size());
        QCOMPARE(ours.chunks, theirs.chunks);
        double worst = 0.0;
        for (const auto& [tensor, e] : theirs.entries) {
            const std::vector<float>* v = ours.find(tensor);
            QVERIFY2(v, tensor.c_str());
            QCOMPARE(v->size(), e.meanSquare.size());
            double num = 0.0, den = 0.0;
            for (size_t j = 0; j < v->size(); ++j) {
                num += std::fabs((*v)[j] - e.meanSquare[j]);
                den += std::fabs(e.meanSquare[j]);
            }
            worst = std::max(worst, num / std::max(den, 1e-30));
        }
        qInfo("%s: %zu entries, worst relative L1 difference from llama-imatrix %.2e", name.c_str(), theirs.entries.size(), worst);
        QVERIFY(worst < kImatrixRelTol);
        QVERIFY(imatrixGaps(theirs, *model).empty());
    }
}

// With the same imatrix, every tensor of LayerLab's GGUF export has the bytes
// llama-quantize --imatrix wrote (their SHA-256 in references.json).
void TestImatrix::exportsByteIdenticalToLlamaQuantize()
{
    LL_REQUIRE_SHARED();
    const nlohmann::json refs = references();
    const std::string dir = test::scratchDir();
    for (const nlohmann::json& q : refs.at("quantized")) {
        const auto model = openModel(test::sharedPath(q.at("model").get<std::string>()));
        const Imatrix imatrix = loadImatrix(dataPath(q.at("imatrix").get<std::string>()));
        GgufExportOptions o;
        const std::string type = q.at("type").get<std::string>();
        const bool pure = q.value("pure", false);
        if (const auto preset = ggufPresetNamed(type))
            pure ? (void)(o.type = ggufPresetInfo(*preset).base) : (void)(o.preset = preset);
        else
            o.type = typeNamed(type);
        o.imatrix = &imatrix;
        o.imatrixFile = q.at("imatrix").get<std::string>();
        const std::string out = dir + "/" + type + (pure ? "-pure" : "") + "-" + std::to_string(model->config.hidden) + ".gguf";
        const ExportResult r = exportGguf(*model, out, o);
        const std::map<std::string, std::string> ours = tensorHashes(out);
        int same = 0, quantized = 0;
        for (const auto& [tensor, sha] : q.at("tensors").items()) {
            QVERIFY2(ours.count(tensor), tensor.c_str());
            same += ours.at(tensor) == sha.get<std::string>();
            QVERIFY2(ours.at(tensor) == sha.get<std::string>(), (type + " " + tensor).c_str());
        }
        const auto written = openModel(out); // held: a range over a temporary's member would dangle
        for (const TensorRef& t : written->stored)
            quantized += isQuantized(t.dtype);
        qInfo("%s %s with %s: %d of %zu tensors byte-identical to llama-quantize (%d quantized)", q.at("model").get<std::string>().c_str(),
              type.c_str(), o.imatrixFile.c_str(), same, q.at("tensors").size(), quantized);
        QVERIFY(quantized > 0);
        const auto back = openModel(out);
        QCOMPARE(back->metadata.value("quantize.imatrix.file", std::string()), o.imatrixFile);
        QCOMPARE(back->metadata.value("quantize.imatrix.entries_count", 0), static_cast<int>(imatrix.entries.size()));
    }
}

// A quantize step `{method: ggml, type: T, imatrix: FILE}` rounds every block
// linear as llama-quantize --imatrix does: after the step, tiny-llama256's
// block linears hold the bytes of llama-quantize --pure T with the same file
// (references.json), with no calibration text. The CLI's quantize takes the
// same parameter; a file of another model is refused, naming the file.
void TestImatrix::recipeStepMatchesLlamaQuantize()
{
    LL_REQUIRE_SHARED();
    int steps = 0;
    const nlohmann::json refs = references();
    for (const nlohmann::json& q : refs.at("quantized")) {
        if (!q.value("pure", false))
            continue;
        const std::shared_ptr<const Model> model = openModel(test::sharedPath(q.at("model").get<std::string>()));
        const std::string file = dataPath(q.at("imatrix").get<std::string>());
        const std::string type = q.at("type").get<std::string>();
        const RecipeStep step =
            test::recipeStep({{"action", "quantize"}, {"method", "ggml"}, {"type", type}, {"imatrix", file}});
        const StepOutcome out = applyStep(CompressionState::initial(model), step, CalibrationText{});
        int compared = 0;
        const Model& edited = *out.state.model;
        for (const LogicalTensor& l : edited.tensors) {
            if (l.block < 0 || l.shape.size() != 2) // the block linears (norms are vectors)
                continue;
            QVERIFY2(l.replacedBy >= 0, l.logicalName.c_str());
            const TensorRef& t = edited.stored[static_cast<size_t>(l.replacedBy)];
            const std::string name = ggufNameOf(l);
            QVERIFY2(std::string(dtypeName(t.dtype)) == type, (name + " is " + std::string(dtypeName(t.dtype))).c_str());
            const std::string sha = QCryptographicHash::hash(QByteArrayView(t.data, static_cast<qsizetype>(t.nbytes)),
                                                             QCryptographicHash::Sha256).toHex().toStdString();
            QVERIFY2(sha == q.at("tensors").at(name).get<std::string>(), (type + " " + name).c_str());
            ++compared;
        }
        qInfo("%s %s with the imatrix step: %d block linears byte-identical to llama-quantize --pure", q.at("model").get<std::string>().c_str(),
              type.c_str(), compared);
        QCOMPARE(compared, 7 * model->config.layers);
        ++steps;
    }
    QVERIFY(steps > 0);

    const std::string tiny = test::sharedPath("models/gguf-quants/tiny-llama256-F16.gguf");
    const test::CliResult cli = test::runCli({"quantize", tiny, "--method", "ggml", "--type", "Q4_1", "--imatrix",
                                             dataPath("tiny-llama256.imatrix.dat"), "--json"});
    QVERIFY2(cli.exitCode == 0, cli.err.c_str());
    QCOMPARE(nlohmann::json::parse(cli.out).at("stats_mode").get<std::string>(), std::string("imatrix"));

    const std::string other = dataPath("stories260K.imatrix.dat");
    try {
        applyStep(CompressionState::initial(openModel(tiny)),
                  test::recipeStep({{"action", "quantize"}, {"method", "ggml"}, {"type", "Q4_1"}, {"imatrix", other}}),
                  CalibrationText{});
        QFAIL("an imatrix of another model was used");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find(other) != std::string::npos, e.what());
    }
}

// What an imatrix is for: at the same type, the quantized model is closer to
// the original (KL divergence and perplexity on text the imatrix did not see).
void TestImatrix::imatrixLowersTheDamage()
{
    LL_REQUIRE_SHARED();
    const auto model = openModel(storiesGguf());
    const std::vector<int32_t> calib = tokenizeTextFile(*model, test::sharedPath("data/tinystories/calib.txt"));
    ImatrixOptions io;
    io.context = 256;
    io.chunks = 32;
    const Imatrix imatrix = computeImatrix(*model, calib, io, "calib.txt");
    const std::vector<int32_t> eval = tokenizeTextFile(*model, test::sharedPath("data/tinystories/eval.txt"));
    ScoringOptions so;
    so.context = 256;
    so.maxWindows = 64;
    const Transformer original(*model);
    const std::string dir = test::scratchDir();
    // Presets: stories260K's rows (64 and 172 values) fall back from the k-quants to Q5_0, IQ4_NL and F16.
    for (const char* type : {"Q4_K_M", "Q3_K_M"}) {
        double kl[2] = {0, 0}, ppl[2] = {0, 0};
        for (int with = 0; with < 2; ++with) {
            GgufExportOptions o;
            o.preset = ggufPresetNamed(type);
            if (with) {
                o.imatrix = &imatrix;
                o.imatrixFile = "calib.imatrix";
            }
            const std::string out = dir + "/" + type + std::to_string(with) + ".gguf";
            exportGguf(*model, out, o);
            const auto q = openModel(out);
            const Transformer t(*q);
            const ComparisonResult c = compareModels(original, t, eval, so);
            kl[with] = c.klMean;
            ppl[with] = std::exp(c.nllCandidate);
        }
        qInfo("stories260K %s: KL %.5f -> %.5f with the imatrix, perplexity %.4f -> %.4f", type, kl[0], kl[1], ppl[0], ppl[1]);
        QVERIFY(kl[1] < kl[0]);
    }
}

void TestImatrix::refusesBadFiles()
{
    const std::string dir = test::scratchDir();
    const auto expectFailure = [&](const std::string& name, const std::string& bytes, const std::string& words) {
        const std::string file = dir + "/" + name;
        test::writeFile(file, bytes);
        try {
            loadImatrix(file);
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find(file) != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find(words) != std::string::npos, e.what());
            return;
        }
        QFAIL(("accepted " + name).c_str());
    };
    const auto i32 = [](int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
    const auto f32 = [](float v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
    expectFailure("empty.dat", "", "the entry count");
    expectFailure("zero.dat", i32(0), "entries");
    expectFailure("huge-count.dat", i32(1 << 30) + std::string(64, '\0'), "entries");
    expectFailure("long-name.dat", i32(1) + i32(1 << 20) + std::string(32, 'a'), "name");
    expectFailure("truncated.dat", i32(1) + i32(3) + "abc" + i32(1) + i32(4) + f32(1.0f), "values");
    expectFailure("negative.dat", i32(1) + i32(3) + "abc" + i32(1) + i32(1) + f32(-1.0f), "negative");
    expectFailure("nan.dat", i32(1) + i32(3) + "abc" + i32(1) + i32(1) + f32(NAN), "NaN");
    expectFailure("repeat.dat", i32(2) + (i32(3) + "abc" + i32(1) + i32(1) + f32(1.0f)) + (i32(3) + "abc" + i32(1) + i32(1) + f32(1.0f)),
                  "repeats");
    try {
        loadImatrix(dir);
        QFAIL("a folder was read");
    } catch (const Error&) {
    }
    // An imatrix of another model: refused before anything is written.
    LL_REQUIRE_SHARED();
    Imatrix other;
    other.entries["blk.0.attn_q.weight"] = {std::vector<float>(7, 1.0f), 1};
    GgufExportOptions o;
    o.preset = GgufPreset::Q4_K_M;
    o.imatrix = &other;
    o.imatrixFile = "other.dat";
    try {
        exportGguf(*openModel(storiesGguf()), dir + "/other.gguf", o);
        QFAIL("an imatrix of another model was used");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("another model") != std::string::npos, e.what());
    }
    QVERIFY(!QFileInfo::exists(QString::fromStdString(dir + "/other.gguf")));
}

QTEST_GUILESS_MAIN(TestImatrix)
#include "test_imatrix.moc"
