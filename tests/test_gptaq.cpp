// GPTAQ (GptqOptions::asymmetry): the blocked sweep against the scalar
// reference; without asymmetry it is GPTQ; on hand-made inputs whose
// full-precision version differs, it lowers the asymmetric objective
// ||W^ X - W X~|| that defines it; the calibration pass gives the cross term
// of the two streams (zero for the first block, whose inputs agree); stories260K.
#include "test_support.h"

#include "calib/calibration.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "methods/method_registry.h"
#include "quant/gptq.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "tokenizer/tokenizer.h"

#include <Eigen/LU>
#include <QtTest>

#include <random>

using namespace ll;

namespace {

// Blocked vs eager updates: the same float operations in another order.
constexpr float kFastVsRefMaxDiff = 1e-4f;
constexpr double kFastVsRefCodeAgreement = 0.999;

// Inputs X (tokens, in) as a quantized model sees them and X~ as the
// full-precision one does: correlated channels, X~ = X + a systematic shift.
struct Inputs {
    MatrixRM X, Xfp;
    Eigen::MatrixXf H, dXXt;
};
Inputs inputs(Eigen::Index tokens, Eigen::Index in, unsigned seed)
{
    Inputs r;
    MatrixRM mix = test::gaussian(in, in, seed + 1, 0.3f);
    mix.diagonal().array() += 1.0f;
    r.X = test::gaussian(tokens, in, seed) * mix;
    r.Xfp = r.X + r.X * test::gaussian(in, in, seed + 2, 0.05f) + test::gaussian(tokens, in, seed + 3, 0.05f);
    r.H = (r.X.transpose() * r.X).eval();
    r.dXXt = ((r.Xfp - r.X).transpose() * r.X).eval();
    return r;
}

double asymmetricError(const MatrixRM& Wq, const MatrixRM& W, const Inputs& in)
{
    return (in.X * Wq.transpose() - in.Xfp * W.transpose()).norm() / (in.Xfp * W.transpose()).norm();
}

} // namespace

class TestGptaq : public QObject {
    Q_OBJECT
private slots:
    void withoutAsymmetryItIsGptq();
    void fastMatchesReference();
    void lowersTheAsymmetricObjective();
    void calibrationGivesTheCrossTerm();
    void storiesPerplexity();
};

void TestGptaq::withoutAsymmetryItIsGptq()
{
    const MatrixRM W = test::gaussian(48, 64, 1);
    const Inputs in = inputs(512, 64, 2);
    const Eigen::MatrixXf zero = Eigen::MatrixXf::Zero(64, 64);
    GptqOptions o;
    o.grid = {3, false, 16};
    o.blockSize = 32;
    const GptqResult gptq = gptqQuantizeRef(W, in.H, o);
    o.asymmetry = &zero;
    const GptqResult fast = gptqQuantize(W, in.H, o), ref = gptqQuantizeRef(W, in.H, o);
    QVERIFY(ref.codes == gptq.codes);
    QVERIFY(ref.dequantized == gptq.dequantized);
    QVERIFY((fast.dequantized - gptq.dequantized).cwiseAbs().maxCoeff() < kFastVsRefMaxDiff);
}

void TestGptaq::fastMatchesReference()
{
    const MatrixRM W = test::gaussian(130, 96, 3);
    const Inputs in = inputs(600, 96, 4);
    for (const bool actOrder : {false, true})
        for (const int group : {0, 32}) {
            GptqOptions o;
            o.grid = {3, false, group};
            o.blockSize = 64;
            o.actOrder = actOrder;
            o.asymmetry = &in.dXXt;
            o.alpha = 0.5;
            const GptqResult fast = gptqQuantize(W, in.H, o), ref = gptqQuantizeRef(W, in.H, o);
            int64_t same = 0;
            for (size_t i = 0; i < fast.codes.size(); ++i)
                same += fast.codes[i] == ref.codes[i];
            const double agreement = static_cast<double>(same) / static_cast<double>(fast.codes.size());
            const float diff = (fast.dequantized - ref.dequantized).cwiseAbs().maxCoeff();
            QVERIFY2(agreement >= kFastVsRefCodeAgreement, std::to_string(agreement).c_str());
            if (agreement == 1.0)
                QVERIFY2(diff < kFastVsRefMaxDiff, std::to_string(diff).c_str());
        }
}

// The definition: GPTAQ targets the full-precision outputs W X~, so its error
// against them is lower than GPTQ's (which targets W X), and grows back to
// GPTQ's as alpha goes to 0.
void TestGptaq::lowersTheAsymmetricObjective()
{
    const MatrixRM W = test::gaussian(64, 128, 5);
    const Inputs in = inputs(1024, 128, 6);
    GptqOptions o;
    o.grid = {4, false, 32};
    const double gptq = asymmetricError(gptqQuantize(W, in.H, o).dequantized, W, in);
    o.asymmetry = &in.dXXt;
    double last = gptq;
    for (const double alpha : {0.25, 0.5, 1.0}) {
        o.alpha = alpha;
        const double e = asymmetricError(gptqQuantize(W, in.H, o).dequantized, W, in);
        qInfo("||W^ X - W X~|| / ||W X~||: GPTQ %.4f, GPTAQ alpha %.2f %.4f", gptq, alpha, e);
        QVERIFY(e < last);
        last = e;
    }
    // The unconstrained optimum W X~^T X H^-1 = W + W ΔX^T X H^-1 bounds what any quantized W^ can reach.
    const MatrixRM best = (W * in.dXXt * in.H.inverse() + W).eval();
    QVERIFY(asymmetricError(best, W, in) < last);
}

// The pass's cross term: zero at block 0 (both streams read the embeddings);
// at block 1, after block 0 was changed, Σ (x~ - x)^T x from the two streams.
void TestGptaq::calibrationGivesTheCrossTerm()
{
    LL_REQUIRE_SHARED();
    const std::shared_ptr<const Model> model = openModel(test::sharedPath("models/stories260K-hf"));
    const std::vector<int32_t> tokens = tokenizeTextFile(*model, test::sharedPath("data/tinystories/calib.txt"));
    BlockStatsOptions bo;
    bo.calibration.context = 64;
    bo.calibration.windows = 4;
    bo.asymmetric = true;
    const std::vector<int32_t> windows = calibrationWindows(tokens, bo.calibration);
    Transformer t(*model);
    const Transformer original(*model);
    const int blocks[] = {0, 1};
    std::vector<InputStats> seen[2];
    forEachBlockStats(t, windows, blocks, bo, [&](int block, std::vector<InputStats>& stats, Progress*) {
        seen[block] = stats;
        // "Quantize" block 0: scale its o and down weights, so block 1's inputs differ.
        if (block == 0)
            for (Role r : {Role::AttnO, Role::MlpDown})
                t.setLinearWeight(0, r, MatrixRM(t.linear(0, r).dense() * 0.9f));
    });
    for (const InputStats& s : seen[0])
        QVERIFY(s.asymmetry.size() > 0 && s.asymmetry.cwiseAbs().maxCoeff() == 0.0f);
    // Block 1's attention input, independently: the normed hidden states after block 0, both ways.
    struct Capture : LinearInputObserver {
        MatrixRM x;
        void linearInput(int block, Role role, const ConstMatrixRef& in) override
        {
            if (block == 1 && role == Role::AttnQ)
                x = in;
        }
    };
    Eigen::MatrixXf want = Eigen::MatrixXf::Zero(model->config.hidden, model->config.hidden);
    for (size_t w = 0; w < windows.size(); w += 64) {
        const std::span<const int32_t> one(windows.data() + w, 64);
        Capture now, fp;
        (void)t.hiddenBatch(one, 64, &now);
        (void)original.hiddenBatch(one, 64, &fp);
        want += (fp.x - now.x).transpose() * now.x;
    }
    const InputStats* q = nullptr;
    for (const InputStats& s : seen[1])
        if (s.role == Role::AttnQ)
            q = &s;
    QVERIFY(q);
    const float scale = want.cwiseAbs().maxCoeff();
    const float diff = (q->asymmetry - want).cwiseAbs().maxCoeff();
    qInfo("block 1's cross term: max |entry| %.3g, max |difference| from the independent sum %.2e", scale, diff);
    QVERIFY(scale > 0.1f);
    QVERIFY(diff < 1e-4f * scale);
}

void TestGptaq::storiesPerplexity()
{
    LL_REQUIRE_SHARED();
    const std::shared_ptr<const Model> model = openModel(test::sharedPath("models/stories260K-hf"));
    const std::vector<int32_t> eval = tokenizeTextFile(*model, test::sharedPath("data/tinystories/eval.txt"));
    const auto ppl = [&](const std::string& method, int bits) {
        const Recipe r = parseRecipe("layerlab_recipe: 1\ncalibration: {text: " + test::sharedPath("data/tinystories/calib.txt")
                                         + ", windows: 32, context: 256}\nsteps:\n  - {action: quantize, method: " + method
                                         + ", bits: " + std::to_string(bits) + ", group: 32}\n",
                                     true, "r.yaml");
        ScoringOptions so;
        so.maxWindows = 64;
        return evaluatePerplexity(*applyRecipe(model, r).state.makeEngine(), eval, so).ppl;
    };
    for (const int bits : {4, 3}) {
        const double gptq = ppl("gptq", bits), gptaq = ppl("gptaq", bits);
        qInfo("stories260K w%d g32, 64 windows: GPTQ %.4f, GPTAQ %.4f", bits, gptq, gptaq);
        // Not a claim that GPTAQ wins here (docs/methods.md: on this model it does not at
        // every setting): a guard that the second stream and the P updates stay sane.
        // (Not at 2 bits: there perplexity is above 100 and the two builds' float
        // rounding alone moved GPTAQ's from 128 to 135.)
        QVERIFY(std::fabs(gptaq / gptq - 1.0) < 0.05);
    }
}

QTEST_GUILESS_MAIN(TestGptaq)
#include "test_gptaq.moc"
