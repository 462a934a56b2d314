// GGUF reading and ggml dequantization against llama.cpp's own files and
// gguf-py's dequantized references.
#include "test_support.h"

#include "formats/open_model.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <cmath>
#include <set>

using namespace ll;

namespace {

// gguf-py and LayerLab compute each value with the same float operations in the
// same order, so the dequantized values must be identical, not just close.
constexpr double kExactTol = 0.0;
// Q4_K_M of stories260K against its F32 original: ||q - f|| / ||f|| per tensor.
constexpr double kMaxRelRmsQ4KM = 0.1;

const char* const kQuantTensors[] = {"blk.0.ffn_down.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight"};

std::string quantsDir()
{
    return test::sharedPath("models/gguf-quants");
}

std::string storiesGguf(const char* file)
{
    return test::sharedPath(std::string("models/stories260K-gguf/") + file);
}

const TensorRef& storedNamed(const Model& m, const std::string& name)
{
    for (const auto& t : m.stored)
        if (t.name == name)
            return t;
    throw Error(ErrorCode::NotFound, m.path, "no tensor " + name);
}

double maxAbs(const std::vector<float>& v)
{
    double m = 0;
    for (float x : v)
        m = std::max(m, std::fabs(static_cast<double>(x)));
    return m;
}

double relRms(const std::vector<float>& approx, const std::vector<float>& exact)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < exact.size(); ++i) {
        const double d = static_cast<double>(approx[i]) - exact[i];
        num += d * d;
        den += static_cast<double>(exact[i]) * exact[i];
    }
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// HF permutes q/k rows per head for rotate_half; GGUF keeps llama2.c's
// interleaved pairs. HF row h*hd + i holds GGUF row h*hd + ggufRowOf(i).
int64_t ggufRowOf(int64_t i, int64_t hd)
{
    return i < hd / 2 ? 2 * i : 2 * (i - hd / 2) + 1;
}

} // namespace

class TestGguf : public QObject {
    Q_OBJECT
private slots:
    void quantsMatchGgufPy_data();
    void quantsMatchGgufPy();
    void f32MatchesOriginalValues();
    void partialDecodeMatchesWhole();
    void storiesConfigAndMetadata();
    void storiesMatchesHfWeights();
    void storiesQ4KMDecodesEveryTensor();
    void cliInspectsGguf();
};

void TestGguf::quantsMatchGgufPy_data()
{
    QTest::addColumn<QString>("quant");     // file name part
    QTest::addColumn<QString>("typeLabel"); // type of the three tensors
    for (const char* q : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q6_K", "IQ4_NL", "IQ4_XS", "BF16", "F16"})
        QTest::newRow(q) << QString(q) << QString(q);
    QTest::newRow("Q3_K_S") << QString("Q3_K_S") << QString("Q3_K");
    QTest::newRow("Q4_K_S") << QString("Q4_K_S") << QString("Q4_K");
    QTest::newRow("Q5_K_S") << QString("Q5_K_S") << QString("Q5_K");
}

void TestGguf::quantsMatchGgufPy()
{
    LL_REQUIRE_SHARED();
    QFETCH(QString, quant);
    QFETCH(QString, typeLabel);
    const std::string base = quantsDir() + "/tiny-llama256-" + quant.toStdString();

    // report.json lists the types llama-quantize wrote: the quant type plus F32 norms.
    const nlohmann::json report = nlohmann::json::parse(test::readFile(quantsDir() + "/report.json"));
    const auto& types = report.at(quant.toStdString()).at("tensor_types");
    QVERIFY(std::find(types.begin(), types.end(), typeLabel.toStdString()) != types.end());

    auto m = openModel(base + ".gguf");
    QCOMPARE(m->format, std::string("gguf"));
    QCOMPARE(m->config.family, Family::Llama);
    QCOMPARE(m->config.hidden, int64_t{256});
    QCOMPARE(m->config.intermediate, int64_t{512});
    QCOMPARE(m->config.heads, int64_t{4});
    QCOMPARE(m->config.kvHeads, int64_t{2});
    QCOMPARE(m->config.vocab, int64_t{512});
    for (const char* name : kQuantTensors) {
        const TensorRef& ref = storedNamed(*m, name);
        QCOMPARE(ref.dtypeLabel, typeLabel.toStdString());
        std::vector<int64_t> refShape;
        const std::vector<float> expected = test::referenceFloats(base + ".dequant.safetensors", name, &refShape);
        QCOMPARE(ref.shape, refShape);
        const std::vector<float> got = decodeStored(ref);
        const double diff = test::maxAbsDiff(got, expected);
        if (diff > kExactTol * maxAbs(expected))
            QFAIL(qPrintable(QString("%1 %2: max |diff| %3 (max |ref| %4)").arg(quant, name).arg(diff).arg(maxAbs(expected))));
    }
}

void TestGguf::f32MatchesOriginalValues()
{
    LL_REQUIRE_SHARED();
    auto m = openModel(quantsDir() + "/tiny-llama256-f32.gguf");
    for (const char* name : kQuantTensors) {
        std::vector<int64_t> refShape;
        const std::vector<float> expected = test::referenceFloats(quantsDir() + "/tiny-llama256-f32.values.safetensors", name, &refShape);
        const TensorRef& ref = storedNamed(*m, name);
        QCOMPARE(ref.shape, refShape);
        QCOMPARE(test::maxAbsDiff(decodeStored(ref), expected), 0.0);
    }
}

// Decoding a block-aligned range gives the same values as decoding everything.
void TestGguf::partialDecodeMatchesWhole()
{
    LL_REQUIRE_SHARED();
    for (const char* quant : {"Q4_K_S", "Q5_1", "IQ4_XS"}) {
        auto m = openModel(quantsDir() + "/tiny-llama256-" + quant + ".gguf");
        const TensorRef& ref = storedNamed(*m, "blk.0.attn_q.weight");
        const std::vector<float> all = decodeStored(ref);
        std::vector<float> part(512);
        decodeRange(ref, 1024, 512, part.data());
        QCOMPARE(test::maxAbsDiff(part, std::vector<float>(all.begin() + 1024, all.begin() + 1536)), 0.0);
    }
}

void TestGguf::storiesConfigAndMetadata()
{
    LL_REQUIRE_SHARED();
    auto m = openModel(storiesGguf("stories260K-f32.gguf"));
    const ModelConfig& c = m->config;
    QCOMPARE(c.family, Family::Llama);
    QCOMPARE(c.modelType, std::string("llama"));
    QCOMPARE(c.hidden, int64_t{64});
    QCOMPARE(c.intermediate, int64_t{172});
    QCOMPARE(c.layers, int64_t{5});
    QCOMPARE(c.heads, int64_t{8});
    QCOMPARE(c.kvHeads, int64_t{4});
    QCOMPARE(c.headDim, int64_t{8});
    QCOMPARE(c.vocab, int64_t{512});
    QCOMPARE(c.maxPositions, int64_t{512});
    QCOMPARE(c.bosId, int64_t{1});
    QCOMPARE(c.eosId, int64_t{2});
    QVERIFY(c.ropeInterleaved);
    QCOMPARE(c.partialRotary, 1.0);
    QCOMPARE(c.ropeTheta, 10000.0);
    QVERIFY(std::fabs(c.normEps - 1e-5) < 1e-10); // stored as float32
    QCOMPARE(m->parameterCount(), int64_t{292800});
    QCOMPARE(m->stored.size(), size_t{48});
    QVERIFY(!c.tiedEmbeddings); // this file has its own output.weight

    // Shapes are reversed from ggml's ne order: ne = [64, 172] is stored as (172, 64).
    QCOMPARE(storedNamed(*m, "token_embd.weight").shape, (std::vector<int64_t>{512, 64}));
    QCOMPARE(storedNamed(*m, "blk.0.ffn_down.weight").shape, (std::vector<int64_t>{64, 172}));
    QCOMPARE(storedNamed(*m, "blk.0.attn_k.weight").shape, (std::vector<int64_t>{32, 64}));
    const LogicalTensor* down = m->findLogical("blocks.0.mlp.down.weight");
    QVERIFY(down);
    QCOMPARE(down->role, Role::MlpDown);

    // Metadata keeps every key with its GGUF type mapped to JSON.
    const auto& md = m->metadata;
    QCOMPARE(md.at("general.architecture").get<std::string>(), std::string("llama"));
    QCOMPARE(md.at("llama.embedding_length").get<int64_t>(), int64_t{64});
    QCOMPARE(md.at("tokenizer.ggml.tokens").size(), size_t{512});
    QCOMPARE(md.at("tokenizer.ggml.tokens")[1].get<std::string>(), std::string("<s>"));
    QCOMPARE(md.at("tokenizer.ggml.scores").size(), size_t{512});
    QVERIFY(md.at("tokenizer.ggml.add_bos_token").get<bool>());
    QCOMPARE(md.size(), size_t{22});
    QVERIFY(m->tokenizerPath.empty()); // the vocabulary lives in the metadata
}

void TestGguf::storiesMatchesHfWeights()
{
    LL_REQUIRE_SHARED();
    auto g = openModel(storiesGguf("stories260K-f32.gguf"));
    auto h = openModel(test::sharedPath("models/stories260K-hf"));
    QCOMPARE(g->tensors.size(), h->tensors.size());
    int permuted = 0;
    for (const auto& gt : g->tensors) {
        const LogicalTensor* ht = h->findLogical(gt.logicalName);
        QVERIFY2(ht, gt.logicalName.c_str());
        QCOMPARE(gt.shape, ht->shape);
        const std::vector<float> gv = readLogical(*g, gt);
        const std::vector<float> hv = readLogical(*h, *ht);
        if (gt.role != Role::AttnQ && gt.role != Role::AttnK) {
            QVERIFY2(test::maxAbsDiff(gv, hv) == 0.0, gt.logicalName.c_str());
            continue;
        }
        // Undo HF's per-head permutation; the values then agree exactly.
        const int64_t hd = g->config.headDim, cols = gt.shape[1], rows = gt.shape[0];
        std::vector<float> unpermuted(hv.size());
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t head = r / hd, i = r % hd;
            std::copy_n(hv.begin() + r * cols, cols, unpermuted.begin() + (head * hd + ggufRowOf(i, hd)) * cols);
        }
        QVERIFY2(test::maxAbsDiff(gv, unpermuted) == 0.0, gt.logicalName.c_str());
        QVERIFY2(test::maxAbsDiff(gv, hv) > 0.0, "q/k rows should differ before un-permuting");
        ++permuted;
    }
    QCOMPARE(permuted, 10); // q and k of 5 blocks
}

void TestGguf::storiesQ4KMDecodesEveryTensor()
{
    LL_REQUIRE_SHARED();
    auto q = openModel(storiesGguf("stories260K-Q4_K_M.gguf"));
    auto f = openModel(storiesGguf("stories260K-f32.gguf"));
    QCOMPARE(q->config.family, Family::Llama);
    QCOMPARE(q->parameterCount(), int64_t{292800});
    QCOMPARE(q->stored.size(), f->stored.size());
    std::set<std::string> labels;
    double worst = 0;
    for (const auto& t : q->stored) {
        labels.insert(t.dtypeLabel);
        const TensorRef& ref = storedNamed(*f, t.name);
        QCOMPARE(t.shape, ref.shape);
        const double e = relRms(decodeStored(t), decodeStored(ref));
        QVERIFY2(e < kMaxRelRmsQ4KM, qPrintable(QString("%1 (%2): relative RMS error %3")
                                                     .arg(QString::fromStdString(t.name), QString::fromStdString(t.dtypeLabel))
                                                     .arg(e)));
        worst = std::max(worst, e);
    }
    // 64-wide rows cannot hold 256-value k-quant blocks: llama-quantize fell back.
    QCOMPARE(labels, (std::set<std::string>{"F16", "F32", "Q5_0", "Q8_0"}));
    QVERIFY(worst > 0.0);
    qInfo("worst relative RMS error over %zu tensors: %.4f", q->stored.size(), worst);
}

void TestGguf::cliInspectsGguf()
{
    LL_REQUIRE_SHARED();
    const test::CliResult r = test::runCli({"inspect", storiesGguf("stories260K-Q4_K_M.gguf"), "--json"});
    QCOMPARE(r.exitCode, 0);
    const nlohmann::json j = nlohmann::json::parse(r.out);
    QCOMPARE(j.at("family").get<std::string>(), std::string("llama"));
    QCOMPARE(j.at("format").get<std::string>(), std::string("gguf"));
    QCOMPARE(j.at("parameters").get<int64_t>(), int64_t{292800});
    QCOMPARE(j.at("config").at("vocab").get<int64_t>(), int64_t{512});
    QCOMPARE(j.at("tensors").size(), size_t{48});
}

QTEST_APPLESS_MAIN(TestGguf)
#include "test_gguf.moc"
