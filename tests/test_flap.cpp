// FLAP (prune/flap, pipeline/flap_model, prune method flap): the fluctuation
// score and the compensation against hand calculations (a removed channel
// that never moves is compensated exactly); the global threshold on a
// hand-made case; on stories260K: ratio 0 is exact, the compensation keeps
// every block-0 o_proj output's mean over the calibration tokens, the biases
// are what the engine adds, and the pruned model exports to transformers' and
// llama.cpp's layouts and reloads with the same logits; refusals.
#include "test_support.h"

#include "analysis/compression_preview.h"
#include "engine/transformer.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"
#include "formats/open_model.h"
#include "pipeline/flap_model.h"
#include "prune/flap.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "util/error.h"

#include <QtTest>

#include <mutex>

using namespace ll;

namespace {

// Double sums of float products against a hand calculation.
constexpr double kHandTol = 1e-12;
// A float linear map against the original (compensation of a constant channel).
constexpr float kLinearTol = 1e-5f;
// Means of float rows over 512 tokens, compared relative to the output's scale.
constexpr double kMeanRelTol = 1e-4;
// The same model before and after an export and reload.
constexpr float kReloadTol = 5e-5f;
// Two computations of the same model (biases zeroed vs never added).
constexpr float kSameModelTol = 1e-5f;

FlapOptions options(double ratio)
{
    FlapOptions o;
    o.ratio = ratio;
    o.calibration.context = 64;
    o.calibration.windows = 8;
    return o;
}

// The mean of block 0's o_proj input over the calibration windows, by the test's own sums.
class MeanOfOInput : public LinearInputObserver {
public:
    void linearInput(int block, Role role, const ConstMatrixRef& x) override
    {
        if (block != 0 || role != Role::AttnO)
            return;
        std::lock_guard<std::mutex> lock(mutex); // called from several threads
        if (sum.size() == 0)
            sum = Eigen::VectorXd::Zero(x.cols());
        sum += x.cast<double>().colwise().sum().transpose(); // the engine may hand the windows over in batches
        rows += x.rows();
    }
    Eigen::VectorXd mean() const { return sum / static_cast<double>(rows); }
    Eigen::VectorXd sum;
    int64_t rows = 0;
    std::mutex mutex;
};

Eigen::VectorXd meanOInput(const Model& m, const FlapOptions& o)
{
    const Transformer t(m);
    const std::vector<int32_t> windows = calibrationWindows(test::stories260KCalib(), o.calibration);
    MatrixRM x = t.embedWindows(windows, o.calibration.context);
    MeanOfOInput obs;
    t.runBlocks(x, o.calibration.context, 0, 0, &obs);
    return obs.mean();
}

} // namespace

class TestFlap : public QObject {
    Q_OBJECT
private slots:
    void scoresByHand();
    void constantChannelIsCompensatedExactly();
    void standardizedAndThreshold();
    void ratioZeroIsExact();
    void compensationKeepsTheMeanOutput();
    void biasesAreWhatTheEngineAdds();
    void exportsAndReloads();
    void previewShowsTheRemovedUnits();
    void refusals();
};

// W = [[1, 2], [3, 4]]; channel 0 takes 1, 2, 3 (variance 2/3), channel 1 is always 5.
void TestFlap::scoresByHand()
{
    MatrixRM W(2, 2);
    W << 1, 2, 3, 4;
    const ChannelMoments x = ChannelMoments::fromSums(Eigen::Vector2d(6, 15), Eigen::Vector2d(14, 75), 3);
    QVERIFY(std::fabs(x.mean[0] - 2.0) < kHandTol && std::fabs(x.mean[1] - 5.0) < kHandTol);
    const std::vector<double> s = fluctuationScores(W, x);
    QVERIFY(std::fabs(s[0] - 10.0 * 2.0 / 3.0) < kHandTol); // ‖W[:,0]‖² = 1 + 9
    QVERIFY(std::fabs(s[1]) < kHandTol);
    const std::vector<double> g = groupSums(std::vector<double>{1, 2, 3, 4, 5, 6}, 3);
    QCOMPARE(g, (std::vector<double>{6, 15}));
    // Fast against the loops on a random case.
    const MatrixRM R = test::gaussian(17, 29, 3);
    ChannelMoments m;
    m.variance = Eigen::VectorXd::Random(29).cwiseAbs();
    const std::vector<double> fast = fluctuationScores(R, m), ref = fluctuationScoresRef(R, m);
    for (size_t j = 0; j < fast.size(); ++j)
        QVERIFY(std::fabs(fast[j] - ref[j]) <= 1e-12 * std::fabs(ref[j]));
}

// A removed channel that never moves: X W^T = X_kept W_kept^T + b' exactly.
void TestFlap::constantChannelIsCompensatedExactly()
{
    const MatrixRM W = test::gaussian(3, 4, 5);
    MatrixRM X = test::gaussian(10, 4, 6);
    X.col(2).setConstant(1.7f);
    const Eigen::VectorXd mean = X.cast<double>().colwise().mean().transpose();
    const std::vector<char> kept{1, 1, 0, 1};
    const Eigen::VectorXf b = compensationBias(W, mean, kept);
    MatrixRM Wk = W;
    Wk.col(2).setZero();
    const MatrixRM got = (X * Wk.transpose()).rowwise() + b.transpose();
    const MatrixRM want = X * W.transpose();
    QVERIFY((got - want).cwiseAbs().maxCoeff() < kLinearTol);
}

// Costs: a head 3, a neuron 1; heads {0.5, -1}, neurons {1, 0, -0.5, -2}: total 10,
// ratio 0.3 keeps 7: 1 (1), 0.5 (4), 0 (5), -0.5 (6); -1 would make 9, farther than 6.
void TestFlap::standardizedAndThreshold()
{
    const std::vector<double> z = standardized(std::vector<double>{1, 2, 3});
    QVERIFY(std::fabs(z[0] + std::sqrt(1.5)) < kHandTol && std::fabs(z[1]) < kHandTol && std::fabs(z[2] - std::sqrt(1.5)) < kHandTol);
    QCOMPARE(standardized(std::vector<double>{4, 4}), (std::vector<double>{0, 0}));
    const std::vector<int64_t> removed = adaptiveRemovalCounts({{{0.5, -1}}, {{1, 0, -0.5, -2}}}, {3, 1}, 0.3);
    QCOMPARE(removed, (std::vector<int64_t>{1, 1}));
    QCOMPARE(adaptiveRemovalCounts({{{0.5, -1}}, {{1, 0, -0.5, -2}}}, {3, 1}, 0.0), (std::vector<int64_t>{0, 0}));
}

void TestFlap::ratioZeroIsExact()
{
    LL_REQUIRE_SHARED();
    const FlapResult r = flapPrune(*test::stories260K(), options(0.0), test::stories260KCalib());
    QCOMPARE(r.groupsRemoved, int64_t(0));
    QCOMPARE(r.neuronsRemoved, int64_t(0));
    const std::vector<int32_t> ids = test::probeIds(test::stories260K()->config.vocab, 48);
    const float diff = (Transformer(*r.compression.model).logits(ids) - Transformer(*test::stories260K()).logits(ids)).cwiseAbs().maxCoeff();
    QVERIFY2(diff < kSameModelTol, std::to_string(diff).c_str());
}

// Block 0's input is untouched and its kept heads compute as before, so the
// compensated o_proj's mean output over the calibration tokens, W' mean(x') + b',
// equals the original's W mean(x).
void TestFlap::compensationKeepsTheMeanOutput()
{
    LL_REQUIRE_SHARED();
    const FlapOptions o = options(0.3);
    const FlapResult r = flapPrune(*test::stories260K(), o, test::stories260KCalib());
    QVERIFY(r.groupsRemoved >= 1);
    const Model& m = *r.compression.model;
    const Eigen::VectorXd want = readMatrix(*test::stories260K(), *test::stories260K()->find(0, Role::AttnO)).cast<double>() * meanOInput(*test::stories260K(), o);
    const Eigen::VectorXd got = readMatrix(m, *m.find(0, Role::AttnO)).cast<double>() * meanOInput(m, o)
                                + readMatrix(m, *m.find(0, Role::AttnO, true)).row(0).transpose().cast<double>();
    const Eigen::VectorXd uncompensated = readMatrix(m, *m.find(0, Role::AttnO)).cast<double>() * meanOInput(m, o);
    const double rel = (got - want).norm() / want.norm();
    qInfo("block 0 o_proj mean output: relative error %.2e compensated, %.2e without", rel,
          (uncompensated - want).norm() / want.norm());
    QVERIFY(rel < kMeanRelTol);
    QVERIFY((uncompensated - want).norm() / want.norm() > 100 * kMeanRelTol); // the heads removed did contribute
}

// FLAP without compensation removes the same units; with its biases set to zero the
// compensated model computes the same logits, with them it does not.
void TestFlap::biasesAreWhatTheEngineAdds()
{
    LL_REQUIRE_SHARED();
    FlapOptions plain = options(0.2);
    plain.compensate = false;
    const FlapResult with = flapPrune(*test::stories260K(), options(0.2), test::stories260KCalib());
    const FlapResult without = flapPrune(*test::stories260K(), plain, test::stories260KCalib());
    QVERIFY(!without.compression.model->find(0, Role::AttnO, true));
    Model zeroed = *with.compression.model;
    for (const LogicalTensor& t : with.compression.model->tensors)
        if (t.isBias)
            replaceTensor(zeroed, t.logicalName, std::vector<float>(static_cast<size_t>(t.shape[0]), 0.0f), t.shape);
    const std::vector<int32_t> ids = test::probeIds(test::stories260K()->config.vocab, 48);
    const Eigen::MatrixXf a = Transformer(zeroed).logits(ids), b = Transformer(*without.compression.model).logits(ids);
    const Eigen::MatrixXf c = Transformer(*with.compression.model).logits(ids);
    QVERIFY2((a - b).cwiseAbs().maxCoeff() < kSameModelTol, std::to_string((a - b).cwiseAbs().maxCoeff()).c_str());
    QVERIFY((c - b).cwiseAbs().maxCoeff() > 1e-2f);
}

void TestFlap::exportsAndReloads()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    const FlapResult r = flapPrune(*test::stories260K(), options(0.3), test::stories260KCalib());
    const Model& m = *r.compression.model;
    const int64_t groups = r.groupsBefore - r.groupsRemoved, neurons = r.neuronsBefore - r.neuronsRemoved;
    QCOMPARE(m.findLogical("blocks.0.mlp.down.weight")->shape, (std::vector<int64_t>{64, neurons}));
    QCOMPARE(m.findLogical("blocks.0.attn.k.weight")->shape, (std::vector<int64_t>{groups * 8, 64}));
    const std::vector<int32_t> ids = test::probeIds(m.config.vocab, 48);
    const Eigen::MatrixXf want = Transformer(m).logits(ids);
    exportHf(m, dir + "/hf");
    const nlohmann::json cfg = nlohmann::json::parse(test::readFile(dir + "/hf/config.json"));
    QCOMPARE(cfg["intermediate_size"].get<int64_t>(), neurons);
    QCOMPARE(cfg["num_key_value_heads"].get<int64_t>(), groups);
    QCOMPARE(cfg["attention_bias"].get<bool>(), true);
    QCOMPARE(cfg["mlp_bias"].get<bool>(), true);
    const std::shared_ptr<const Model> hf = openModel(dir + "/hf");
    QVERIFY(hf->findLogical("blocks.4.mlp.down.bias") && hf->findLogical("blocks.4.attn.o.bias"));
    float diff = (Transformer(*hf).logits(ids) - want).cwiseAbs().maxCoeff();
    QVERIFY2(diff < kReloadTol, std::to_string(diff).c_str());
    // llama.cpp's names: attn_output.bias and ffn_down.bias, which its llama loader reads.
    GgufExportOptions go;
    go.type = DType::F32;
    exportGguf(m, dir + "/f.gguf", go);
    const std::shared_ptr<const Model> g = openModel(dir + "/f.gguf");
    QVERIFY(g->findByStoredName("blk.0.attn_output.bias") && g->findByStoredName("blk.0.ffn_down.bias"));
    QVERIFY(!g->findByStoredName("blk.0.attn_q.bias")); // zeros: left out (llama.cpp expects n_embd values there)
    diff = (Transformer(*g).logits(ids) - want).cwiseAbs().maxCoeff();
    QVERIFY2(diff < kReloadTol, std::to_string(diff).c_str());
    // And the Hugging Face export of the GGUF (llama names written by LayerLab):
    // the zero q, k, v, gate and up biases are back for transformers' config.
    exportHf(*g, dir + "/hf2");
    const nlohmann::json cfg2 = nlohmann::json::parse(test::readFile(dir + "/hf2/config.json"));
    QVERIFY(cfg2["attention_bias"].get<bool>() && cfg2["mlp_bias"].get<bool>());
    const std::shared_ptr<const Model> hf2 = openModel(dir + "/hf2");
    QVERIFY(hf2->findLogical("blocks.3.attn.q.bias") && hf2->findLogical("blocks.3.mlp.gate.bias"));
    diff = (Transformer(*hf2).logits(ids) - want).cwiseAbs().maxCoeff();
    QVERIFY2(diff < kReloadTol, std::to_string(diff).c_str());
}

// The Compress preview of down_proj: the kept columns, and for the mask the
// original shape with the removed neurons' columns as zeros.
void TestFlap::previewShowsTheRemovedUnits()
{
    LL_REQUIRE_SHARED();
    const CompressionState s0 = CompressionState::initial(test::stories260K());
    const RecipeStep step =
        parseRecipe(nlohmann::json{{"layerlab_recipe", 1}, {"steps", {{{"action", "prune"}, {"method", "flap"}, {"ratio", 0.2}}}}}.dump(), false)
            .steps.front();
    CalibrationText calib = loadCalibration(*test::stories260K(), RecipeCalibration{});
    calib.options.windows = 8;
    const PreviewResult p = computePreview(s0, step, "blocks.1.mlp.down.weight", calib, nullptr);
    QCOMPARE(p.rowsAfter, int64_t(64));
    QVERIFY(p.colsAfter < 172);
    QCOMPARE(p.removedAsZeros.size(), p.before.size());
    int64_t zeroColumns = 0;
    for (int64_t c = 0; c < 172; ++c) {
        bool zero = true, same = true;
        for (int64_t r = 0; r < 64; ++r) {
            const size_t i = static_cast<size_t>(r * 172 + c);
            zero = zero && p.removedAsZeros[i] == 0.0f;
            same = same && p.removedAsZeros[i] == p.before[i];
        }
        QVERIFY(zero || same);
        zeroColumns += zero ? 1 : 0;
    }
    QCOMPARE(zeroColumns, 172 - p.colsAfter);
    QVERIFY2(p.note.find("FLAP removes") != std::string::npos, p.note.c_str());
}

void TestFlap::refusals()
{
    LL_REQUIRE_SHARED();
    try {
        flapPrune(*openModel(test::sharedPath("models/tiny-gpt2")), options(0.2), test::probeIds(test::stories260K()->config.vocab, 512));
        QFAIL("GPT-2 pruned by FLAP");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::UnsupportedArch);
    }
    try {
        flapPrune(*test::stories260K(), options(0.2), {});
        QFAIL("FLAP without calibration text");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
    }
    try {
        flapPrune(*test::stories260K(), options(0.95), test::stories260KCalib());
        QFAIL("a block left without attention");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("lower ratio") != std::string::npos, e.what());
    }
    try {
        const Recipe r = parseRecipe("layerlab_recipe: 1\ncalibration: {text: " + test::sharedPath("data/tinystories/calib.txt")
                                         + ", windows: 4, context: 64}\nsteps:\n  - {action: quantize, method: rtn, bits: 4}\n"
                                           "  - {action: prune, method: flap, ratio: 0.2}\n",
                                     true, "r.yaml");
        applyRecipe(test::stories260K(), r);
        QFAIL("FLAP after quantizing");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("before quantizing") != std::string::npos, e.what());
    }
}

QTEST_GUILESS_MAIN(TestFlap)
#include "test_flap.moc"
