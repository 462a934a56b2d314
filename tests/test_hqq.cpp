// HQQ (quant/hqq.h) against the paper's definitions on hand-made cases, and
// through the registry as every other method: recipe, CLI, label.
#include "test_support.h"

#include "methods/method_registry.h"
#include "quant/hqq.h"
#include "quant/quant_method.h"
#include "quant/rtn.h"
#include "recipe/recipe.h"
#include "recipe/step_options.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace ll;

namespace {

double lpError(const MatrixRM& a, const MatrixRM& b, double p)
{
    double s = 0.0;
    for (Eigen::Index i = 0; i < a.size(); ++i)
        s += std::pow(std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]), p);
    return s;
}

} // namespace

class TestHqq : public QObject {
    Q_OBJECT
private slots:
    void shrinkOperator();
    void zeroUpdateByHand();
    void lowersTheLpError();
    void throughTheRegistry();
};

// shrink_p(r, beta) = sign(r) max(0, |r| - |r|^(p-1) / beta)   (the paper's eq. 6; p = 1: soft threshold)
void TestHqq::shrinkOperator()
{
    constexpr float kTol = 1e-6f;
    QVERIFY(std::fabs(hqqShrink(0.5f, 10.0, 1.0) - 0.4f) < kTol);
    QVERIFY(std::fabs(hqqShrink(-0.5f, 10.0, 1.0) + 0.4f) < kTol);
    QVERIFY(std::fabs(hqqShrink(0.5f, 10.0, 0.7) - static_cast<float>(0.5 - std::pow(0.5, -0.3) / 10.0)) < kTol);
    QCOMPARE(hqqShrink(0.05f, 10.0, 0.7), 0.0f); // 0.05^-0.3 / 10 = 0.2456 > 0.05: shrunk to zero
    QCOMPARE(hqqShrink(0.0f, 10.0, 0.7), 0.0f);
}

// One row, one group of 4, 2 bits: the min-max start, then one update of the zero by hand.
void TestHqq::zeroUpdateByHand()
{
    MatrixRM W(1, 4);
    W << 0.0f, 0.2f, 0.3f, 1.2f;
    HqqOptions o;
    o.bits = 2;
    o.groupSize = 0;
    o.iterations = 0; // the min-max grid: s = 1.2 / 3 = 0.4, z = 0
    const HqqResult start = hqqQuantize(W, o);
    QVERIFY(std::fabs(start.params.scales(0, 0) - 0.4f) < 1e-7f);
    QCOMPARE(start.params.zeros(0, 0), 0.0f);
    // q = round(x / 0.4) = 0, 0 (0.5 rounds to even), 1, 3; x^ = 0, 0, 0.4, 1.2
    QCOMPARE(start.codes, (std::vector<uint8_t>{0, 0, 1, 3}));
    QVERIFY(std::fabs(start.meanAbsErrorStart - (0.0 + 0.2 + 0.1 + 0.0) / 4.0) < 1e-6);

    // By hand: e = shrink_p(x - x^, beta) with r = (0, 0.2, -0.1, 0), then
    // z1 = mean(q - (x - e) / s); the error of z1 decides whether it is kept.
    const double beta = 10.0, p = 0.7, s = 0.4;
    const double x[4] = {0.0, 0.2, 0.3, 1.2}, q0[4] = {0, 0, 1, 3};
    double z1 = 0.0;
    for (int i = 0; i < 4; ++i) {
        const double r = x[i] - s * q0[i];
        const double e = std::fabs(r) > 0 ? std::copysign(std::max(0.0, std::fabs(r) - std::pow(std::fabs(r), p - 1) / beta), r) : 0.0;
        z1 += (q0[i] - (x[i] - e) / s) / 4.0;
    }
    double err1 = 0.0;
    for (int i = 0; i < 4; ++i) {
        const double q = std::clamp(std::nearbyint(x[i] / s + z1), 0.0, 3.0);
        err1 += std::fabs(x[i] - s * (q - z1)) / 4.0;
    }
    o.iterations = 1;
    const HqqResult one = hqqQuantize(W, o);
    if (err1 < start.meanAbsErrorStart) {
        QVERIFY(std::fabs(one.params.zeros(0, 0) - static_cast<float>(z1)) < 1e-6f);
        QVERIFY(std::fabs(one.meanAbsError - err1) < 1e-6);
    } else { // the update did not help: the start is kept
        QCOMPARE(one.params.zeros(0, 0), 0.0f);
    }
    qInfo("z1 = %.6f, error %.6f -> %.6f", z1, start.meanAbsErrorStart, one.meanAbsError);
}

// On heavy-tailed weights, the fitted zeros lower the l_0.7 error that HQQ
// minimises, and the mean |error|, below the min-max start; the result
// dequantizes from its packed codes exactly.
void TestHqq::lowersTheLpError()
{
    const MatrixRM W = test::heavyTailed(64, 256, 7);
    for (const int bits : {3, 4}) {
        HqqOptions o;
        o.bits = bits;
        o.groupSize = 64;
        o.iterations = 0;
        const HqqResult start = hqqQuantize(W, o);
        o.iterations = 20;
        const HqqResult fit = hqqQuantize(W, o);
        const double lpStart = lpError(W, start.dequantized, 0.7), lpFit = lpError(W, fit.dequantized, 0.7);
        const RtnResult rtn = rtnQuantize(W, QuantGrid{bits, false, 64});
        qInfo("w%d g64: mean |e| min-max %.6f -> HQQ %.6f (RTN, zero on the grid: %.6f); l0.7 %.3f -> %.3f", bits,
              fit.meanAbsErrorStart, fit.meanAbsError, (W - rtn.dequantized).cwiseAbs().mean(), lpStart, lpFit);
        QVERIFY(fit.meanAbsError < 0.99 * fit.meanAbsErrorStart);
        QVERIFY(lpFit < lpStart);
        QCOMPARE(fit.meanAbsErrorStart, start.meanAbsErrorStart);
        QVERIFY(std::fabs((W - fit.dequantized).cwiseAbs().mean() - fit.meanAbsError) < 1e-6);
        const MatrixRM decoded = dequantizeCodes(fit.codes, fit.params);
        QCOMPARE((decoded - fit.dequantized).cwiseAbs().maxCoeff(), 0.0f);
    }
}

// HQQ appears wherever a method appears, with no edit outside its unit and its registry line.
void TestHqq::throughTheRegistry()
{
    const MethodSpec* spec = findMethodSpec(StepAction::Quantize, "hqq");
    QVERIFY(spec);
    QVERIFY(!spec->needsCalibration());
    const QuantizeModelOptions o = quantizeOptionsFrom(JsonParams({{"method", "hqq"}, {"bits", 3}, {"group", 32}}));
    QCOMPARE(o.config.label(), std::string("hqq w3 g32"));
    const MatrixRM W = test::heavyTailed(16, 64, 3);
    const QuantizedLayer l = quantizeLayer(W, o.config);
    QCOMPARE(l.bitsPerWeight, 3.0 + 32.0 / 32.0); // FP16 scale and zero per group of 32
    QCOMPARE((dequantizePacked(l.packed, 16, 64) - l.weights).cwiseAbs().maxCoeff(), 0.0f);

    RecipeStep step;
    step.params = {{"method", "hqq"}, {"bits", 4}};
    step.validate();
    QCOMPARE(step.badge(), std::string("HQQ 4b g64"));
    QVERIFY(!step.usesCalibration());
    step.params["act-order"] = true; // GPTQ's, not HQQ's
    try {
        step.validate();
        QFAIL("act-order accepted for hqq");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("its parameters: bits, group, lp, iterations") != std::string::npos, e.what());
    }
    const test::CliResult help = test::runCli({"quantize", "--help"});
    QCOMPARE(help.exitCode, 0);
    QVERIFY(help.out.find("  hqq: HQQ") != std::string::npos);
}

QTEST_GUILESS_MAIN(TestHqq)
#include "test_hqq.moc"
