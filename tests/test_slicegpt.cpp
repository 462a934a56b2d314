// SliceGPT with one rotation (pipeline/slice_model, prune method slicegpt):
// at slicing 0 it is a rotation (the original's logits); the PCA's eigenvalues
// sum to the trace every normalised row gives (d per row); the sliced model has
// the smaller hidden size, exports in transformers' and llama.cpp's layouts and
// reloads with the same logits; perplexity grows with slicing; refusals.
#include "test_support.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"
#include "formats/open_model.h"
#include "pipeline/slice_model.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QtTest>

using namespace ll;

namespace {

// A rotation of the whole residual stream: float rounding (as QuaRot's bound).
constexpr float kRotationLogitTol = 1e-4f;
// After an export and reload: the same values, rotary layout permuted for transformers.
constexpr float kReloadTol = 5e-5f;
// The eigenvalues' sum against the trace, relative (double sums of float rows).
constexpr double kTraceRelTol = 1e-6;

SliceOptions options(double slicing)
{
    SliceOptions o;
    o.slicing = slicing;
    o.calibration.context = 64;
    o.calibration.windows = 8;
    return o;
}

} // namespace

class TestSliceGpt : public QObject {
    Q_OBJECT
private slots:
    void slicingZeroIsExact();
    void spectrumSumsToTheTrace();
    void slicedModelExportsAndReloads();
    void perplexityGrowsWithSlicing();
    void refusals();
};

void TestSliceGpt::slicingZeroIsExact()
{
    LL_REQUIRE_SHARED();
    const std::shared_ptr<const Model> tiny = openModel(test::sharedPath("models/tiny-llama"));
    for (const Model* m : {test::stories260K().get(), tiny.get()}) {
        const std::vector<int32_t> tokens = m == test::stories260K().get() ? test::stories260KCalib() : test::probeIds(m->config.vocab, 512);
        const SliceResult r = sliceModel(*m, options(0.0), tokens);
        QCOMPARE(r.hiddenAfter, m->config.hidden);
        QCOMPARE(r.keptEnergy, 1.0);
        const std::vector<int32_t> ids = test::probeIds(m->config.vocab, 48);
        const float diff = (Transformer(*r.model).logits(ids) - Transformer(*m).logits(ids)).cwiseAbs().maxCoeff();
        qInfo("%s at slicing 0: max |logit difference| %.2e", m->path.c_str(), diff);
        QVERIFY(diff < kRotationLogitTol);
    }
}

// Every normalised row x̂ has ‖x̂‖² = d, so the covariance's trace (the sum of
// its eigenvalues) is d times the rows: windows · context · (blocks + 1).
void TestSliceGpt::spectrumSumsToTheTrace()
{
    LL_REQUIRE_SHARED();
    const SliceResult r = sliceModel(*test::stories260K(), options(0.25), test::stories260KCalib());
    const double rows = 8.0 * 64.0 * static_cast<double>(test::stories260K()->config.layers + 1);
    double sum = 0.0;
    for (size_t i = 0; i < r.eigenvalues.size(); ++i) {
        sum += r.eigenvalues[i];
        if (i > 0)
            QVERIFY(r.eigenvalues[i] <= r.eigenvalues[i - 1]);
    }
    QVERIFY(std::fabs(sum / (rows * 64.0) - 1.0) < kTraceRelTol);
    double kept = 0.0;
    for (size_t i = 0; i < 48; ++i)
        kept += r.eigenvalues[i];
    QVERIFY(std::fabs(r.keptEnergy - kept / sum) < 1e-12);
    QCOMPARE(r.hiddenAfter, int64_t(48));
}

void TestSliceGpt::slicedModelExportsAndReloads()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    const SliceResult r = sliceModel(*test::stories260K(), options(0.25), test::stories260KCalib());
    const Model& m = *r.model;
    QCOMPARE(m.config.hidden, int64_t(48));
    QCOMPARE(m.findLogical("embed.weight")->shape, (std::vector<int64_t>{512, 48}));
    QCOMPARE(m.findLogical("blocks.0.attn.q.weight")->shape, (std::vector<int64_t>{64, 48}));
    QCOMPARE(m.findLogical("blocks.0.attn.o.weight")->shape, (std::vector<int64_t>{48, 64}));
    QCOMPARE(m.findLogical("blocks.0.mlp.down.weight")->shape, (std::vector<int64_t>{48, 172}));
    const std::vector<int32_t> ids = test::probeIds(m.config.vocab, 48);
    const Eigen::MatrixXf want = Transformer(m).logits(ids);
    exportHf(m, dir + "/hf");
    const nlohmann::json cfg = nlohmann::json::parse(test::readFile(dir + "/hf/config.json"));
    QCOMPARE(cfg["hidden_size"].get<int64_t>(), int64_t(48));
    QCOMPARE(cfg["head_dim"].get<int64_t>(), int64_t(8));
    float diff = (Transformer(*openModel(dir + "/hf")).logits(ids) - want).cwiseAbs().maxCoeff();
    QVERIFY2(diff < kReloadTol, std::to_string(diff).c_str());
    GgufExportOptions go;
    go.type = DType::F32;
    exportGguf(m, dir + "/s.gguf", go);
    const std::shared_ptr<const Model> g = openModel(dir + "/s.gguf");
    QCOMPARE(g->config.hidden, int64_t(48));
    QCOMPARE(g->config.headDim, int64_t(8));
    diff = (Transformer(*g).logits(ids) - want).cwiseAbs().maxCoeff();
    QVERIFY2(diff < kReloadTol, std::to_string(diff).c_str());
}

void TestSliceGpt::perplexityGrowsWithSlicing()
{
    LL_REQUIRE_SHARED();
    const std::vector<int32_t>& eval = test::stories260KEval();
    ScoringOptions so;
    so.maxWindows = 64;
    double last = 0.0;
    for (const double s : {0.0, 0.125, 0.25}) {
        const SliceResult r = sliceModel(*test::stories260K(), options(s), test::stories260KCalib());
        const double ppl = evaluatePerplexity(Transformer(*r.model), eval, so).ppl;
        qInfo("stories260K slicing %.3f (hidden %lld, %.1f %% of the variance): perplexity %.4f on 64 windows", s,
              static_cast<long long>(r.hiddenAfter), 100.0 * r.keptEnergy, ppl);
        QVERIFY(ppl > last);
        last = ppl;
    }
}

void TestSliceGpt::refusals()
{
    LL_REQUIRE_SHARED();
    try {
        sliceModel(*openModel(test::sharedPath("models/tiny-gpt2")), options(0.25), test::probeIds(test::stories260K()->config.vocab, 512));
        QFAIL("GPT-2 sliced");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::UnsupportedArch);
    }
    try {
        const Recipe r = parseRecipe("layerlab_recipe: 1\ncalibration: {text: " + test::sharedPath("data/tinystories/calib.txt")
                                         + ", windows: 4, context: 64}\nsteps:\n  - {action: quantize, method: rtn, bits: 4}\n"
                                           "  - {action: prune, method: slicegpt, slicing: 0.25}\n",
                                     true, "r.yaml");
        applyRecipe(test::stories260K(), r);
        QFAIL("sliced after quantizing");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("slice before quantizing") != std::string::npos, e.what());
    }
    try {
        sliceModel(*test::stories260K(), options(1.0), test::stories260KCalib());
        QFAIL("slicing 1 accepted");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
    }
}

QTEST_GUILESS_MAIN(TestSliceGpt)
#include "test_slicegpt.moc"
