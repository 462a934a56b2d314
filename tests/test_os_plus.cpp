// Outlier Suppression+ (quant/os_plus, quantize method os-plus): the shift
// and scale of the paper's definition on a hand-made input; the search's loss
// equals a double-precision loop; the static grid and the shifted hook by
// hand; the shift narrows an asymmetric channel's range and lowers the error;
// on stories260K W8A8 costs little and the shift helps at W8A4 (the engine's
// hook runs what the search measured).
#include "test_support.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "pipeline/model_compression.h"
#include "quant/os_plus.h"

#include <QtTest>

using namespace ll;

namespace {

// Float products against double loops (relative).
constexpr double kLossRelTol = 1e-5;
constexpr double kHandTol = 1e-6;

std::shared_ptr<const Model> stories()
{
    static const std::shared_ptr<const Model> m = openModel(test::sharedPath("models/stories260K-hf"));
    return m;
}

} // namespace

class TestOsPlus : public QObject {
    Q_OBJECT
private slots:
    void shiftAndScaleByDefinition();
    void lossEqualsTheReference();
    void staticGridAndHookByHand();
    void shiftHelpsAnAsymmetricChannel();
    void stories260K();
};

// Channel 0 takes 1 and 3 (z = 2, half-range 1), channel 1 −10 and 30 (z = 10, half-range 20).
void TestOsPlus::shiftAndScaleByDefinition()
{
    MatrixRM X(4, 2);
    X << 1, -10, 3, 30, 1, -10, 3, 30;
    MatrixRM W(2, 2);
    W << 0.5f, -0.25f, 1, 0.125f;
    const MatrixRM* ws[] = {&W};
    const OsPlusParams p = osPlusParams(X, ws, 4);
    QVERIFY(std::fabs(p.shift[0] - 2.0f) < kHandTol && std::fabs(p.shift[1] - 10.0f) < kHandTol);
    // s_j = max(1, half_j / t) at the t found, and t is one of the 20 grid points k/20 · 20.
    QVERIFY(std::fabs(p.scale[0] - std::max(1.0, 1.0 / p.threshold)) < kHandTol);
    QVERIFY(std::fabs(p.scale[1] - std::max(1.0, 20.0 / p.threshold)) < kHandTol);
    QVERIFY(std::fabs(p.threshold - std::round(p.threshold)) < kHandTol);
    // The static range covers (x − z) / s of every sample.
    QVERIFY(std::fabs(p.range - std::max(1.0 / p.scale[0], 20.0 / p.scale[1])) < kHandTol);
    // Without the shift: z = 0, half-ranges 3 and 30.
    const OsPlusParams q = osPlusParams(X, ws, 4, 20, false);
    QVERIFY(q.shift.isZero());
    QVERIFY(std::fabs(q.scale[1] - std::max(1.0, 30.0 / q.threshold)) < kHandTol);
}

void TestOsPlus::lossEqualsTheReference()
{
    const MatrixRM X = test::gaussian(200, 24, 7) + MatrixRM::Constant(200, 24, 0.5f);
    const MatrixRM W1 = test::gaussian(16, 24, 8), W2 = test::gaussian(9, 24, 9);
    const MatrixRM* ws[] = {&W1, &W2};
    for (const bool shift : {true, false}) {
        const OsPlusParams p = osPlusParams(X, ws, 6, 20, shift);
        const double ref = osPlusLossRef(X, ws, p.shift, p.scale, p.range, 6);
        QVERIFY2(std::fabs(p.loss - ref) <= kLossRelTol * ref, (std::to_string(p.loss) + " vs " + std::to_string(ref)).c_str());
        // The search's choice is no worse than no scaling at all (s = 1 is its last grid point).
        const Eigen::VectorXf ones = Eigen::VectorXf::Ones(24);
        const float range1 = ((X.rowwise() - p.shift.transpose())).cwiseAbs().maxCoeff();
        QVERIFY(p.loss <= osPlusLossRef(X, ws, p.shift, ones, range1, 6) * (1 + kLossRelTol));
    }
    // W4: the weights on a 4-bit grid per row, in the search and in the reference alike.
    const OsPlusParams p4 = osPlusParams(X, ws, 6, 20, true, 4);
    const double ref4 = osPlusLossRef(X, ws, p4.shift, p4.scale, p4.range, 6, 4);
    QVERIFY2(std::fabs(p4.loss - ref4) <= kLossRelTol * ref4, (std::to_string(p4.loss) + " vs " + std::to_string(ref4)).c_str());
    QVERIFY(p4.loss > osPlusParams(X, ws, 6, 20, true, 8).loss);
}

// 3 bits: levels ±3, range 1.5: step 0.5.
void TestOsPlus::staticGridAndHookByHand()
{
    MatrixRM U(1, 4);
    U << 0.2f, -0.8f, 2.0f, 0.74f;
    quantizeStatic(U, 1.5f, 3);
    QCOMPARE(U, (MatrixRM(1, 4) << 0.0f, -1.0f, 1.5f, 0.5f).finished());
    // The hook: u − z' on the grid, z' back: 10.2 − 10 = 0.2 → 0 → 10; 9.3 − 10 = −0.7 → −0.5 → 9.5.
    MatrixRM V(1, 2);
    V << 10.2f, 9.3f;
    quantizeShiftedRows(V, Eigen::Vector2f(10.0f, 10.0f), 1.5f, 3);
    QVERIFY(std::fabs(V(0, 0) - 10.0f) < kHandTol && std::fabs(V(0, 1) - 9.5f) < kHandTol);
}

// A channel between 100 and 104 beside ones of size 1: without the shift, the
// static range must reach 104 and the small channels round to nothing.
void TestOsPlus::shiftHelpsAnAsymmetricChannel()
{
    MatrixRM X = test::gaussian(128, 8, 11);
    for (Eigen::Index t = 0; t < X.rows(); ++t)
        X(t, 3) = 100.0f + 4.0f * static_cast<float>(t % 5) / 4.0f;
    const MatrixRM W = test::gaussian(6, 8, 12);
    const MatrixRM* ws[] = {&W};
    const OsPlusParams with = osPlusParams(X, ws, 4), without = osPlusParams(X, ws, 4, 20, false);
    QVERIFY(std::fabs(with.shift[3] - 102.0f) < 1e-4f);
    qInfo("4-bit static: loss %.4g with the shift, %.4g without", with.loss, without.loss);
    QVERIFY(with.loss < 0.5 * without.loss);
}

void TestOsPlus::stories260K()
{
    LL_REQUIRE_SHARED();
    static const std::vector<int32_t> eval = tokenizeTextFile(*stories(), test::sharedPath("data/tinystories/eval.txt"));
    ScoringOptions so;
    so.maxWindows = 64;
    const double f32 = evaluatePerplexity(Transformer(*stories()), eval, so).ppl;
    const double a8 = test::stories260KStepPerplexity("{action: quantize, method: os-plus, act-bits: 8}");
    const double a4 = test::stories260KStepPerplexity("{action: quantize, method: os-plus, act-bits: 4}");
    const double a4plain = test::stories260KStepPerplexity("{action: quantize, method: os-plus, act-bits: 4, no-shift: true}");
    qInfo("stories260K, 64 windows: F32 %.4f, OS+ W8A8 %.4f, W8A4 %.4f, W8A4 without the shift %.4f", f32, a8, a4, a4plain);
    QVERIFY(a8 < 1.05 * f32);
    QVERIFY(a4 < a4plain);
}

QTEST_GUILESS_MAIN(TestOsPlus)
#include "test_os_plus.moc"
