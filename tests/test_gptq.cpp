// GPTQ (quant/gptq.h): the blocked sweep against the scalar reference, both
// against a naive OBQ-style reference that re-inverts the remaining Hessian
// after every column, groups (refit and static), act-order, dead inputs, the
// keep mask, bits and errors.

#include "test_support.h"

#include "quant/gptq.h"
#include "quant/gptq_factor.h"
#include "layer/obs_hessian.h"
#include "layer/layer_error.h"
#include "quant/quantized_layer.h"
#include "quant/rtn.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/Dense>
#include <QtTest>

#include <cmath>
#include <random>

using namespace ll;

namespace {

// Blocked (Eigen GEMM) vs scalar sweep: the same float operations in another
// order, so a code may flip where a value sits within rounding of a tie.
constexpr double kFastVsRefCodeAgreement = 0.999;
constexpr float kFastVsRefMaxDiff = 1e-4f;
// U from one FP64 Cholesky of the reversed H and a triangular inverse
// (quant/gptq_factor.h) vs the FP64 inverse-then-Cholesky route, both
// rounded to float at the end (relative to max |U|).
constexpr double kFactorRelTol = 1e-5;
// The float factorization (large layers): float rounding times the conditioning of the damped Gram matrix.
constexpr double kFactorFloatRelTol = 1e-4;
// The blocked float Cholesky vs Eigen's float LLT, both against the double
// factor: its 256-column panels sum longer dot products in float than Eigen's
// 80-column ones (2.4x the error at n = 700 with GPTQ's damping).
constexpr double kFloatCholeskyVsEigen = 4.0;
// GPTQ vs the naive OBQ sweep (double inverses of every sub-Hessian).
constexpr float kObqMaxDiff = 2e-4f;

MatrixRM randomMatrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, float scale = 1.0f)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, scale);
    MatrixRM W(rows, cols);
    for (Eigen::Index i = 0; i < W.size(); ++i)
        W.data()[i] = n(rng);
    return W;
}

// X^T X of correlated inputs (tokens, in) with unequal channel scales.
Eigen::MatrixXf correlatedGram(Eigen::Index in, Eigen::Index tokens, unsigned seed)
{
    MatrixRM Z = randomMatrix(tokens, in, seed);
    MatrixRM mix = randomMatrix(in, in, seed + 1, 0.3f);
    mix.diagonal().array() += 1.0f;
    MatrixRM X = Z * mix;
    for (Eigen::Index j = 0; j < in; ++j)
        X.col(j) *= 0.5f + static_cast<float>(j % 7) * 0.4f;
    return (X.transpose() * X).eval();
}

// OBQ in a fixed column order: after quantizing column j, the remaining
// weights of every row move by -(w_j - q_j) / [F^-1]_00 * F^-1[0, :], with
// F^-1 the inverse of the damped Hessian restricted to columns j.. (recomputed
// from scratch, in double). Per-row grid from W as given; groups refit from
// the current (updated) weights when their first column is reached.
MatrixRM naiveObq(const MatrixRM& W, const Eigen::MatrixXf& H, const QuantGrid& grid, double percdamp)
{
    const Eigen::Index n = W.cols();
    Eigen::MatrixXd Hd = H.cast<double>();
    Hd.diagonal().array() += percdamp * Hd.diagonal().mean();
    const int maxq = gridMaxQ(grid.bits);
    Eigen::MatrixXd Wd = W.cast<double>();
    std::vector<ScaleZero> sz(static_cast<size_t>(W.rows()));
    if (grid.groupSize <= 0)
        for (Eigen::Index r = 0; r < W.rows(); ++r)
            sz[static_cast<size_t>(r)] = findScaleZero(&W(r, 0), n, grid.bits, grid.symmetric);
    MatrixRM Q(W.rows(), n);
    for (Eigen::Index j = 0; j < n; ++j) {
        const Eigen::Index m = n - j;
        if (grid.groupSize > 0 && j % grid.groupSize == 0)
            for (Eigen::Index r = 0; r < W.rows(); ++r) {
                const Eigen::Index g = std::min<Eigen::Index>(grid.groupSize, n - j);
                std::vector<float> slice(static_cast<size_t>(g));
                for (Eigen::Index c = 0; c < g; ++c)
                    slice[static_cast<size_t>(c)] = static_cast<float>(Wd(r, j + c));
                sz[static_cast<size_t>(r)] = findScaleZero(slice.data(), g, grid.bits, grid.symmetric);
            }
        const Eigen::MatrixXd Finv = Hd.bottomRightCorner(m, m).inverse();
        for (Eigen::Index r = 0; r < W.rows(); ++r) {
            const ScaleZero& p = sz[static_cast<size_t>(r)];
            const float w = static_cast<float>(Wd(r, j));
            const float q = dequantizeValue(quantizeValue(w, p.scale, p.zero, maxq), p.scale, p.zero);
            Q(r, j) = q;
            const double e = (static_cast<double>(w) - q) / Finv(0, 0);
            Wd.row(r).tail(m) -= e * Finv.row(0);
        }
    }
    return Q;
}

double codeAgreement(const GptqResult& a, const GptqResult& b)
{
    int64_t same = 0;
    for (size_t i = 0; i < a.codes.size(); ++i)
        same += a.codes[i] == b.codes[i];
    return a.codes.empty() ? 1.0 : static_cast<double>(same) / static_cast<double>(a.codes.size());
}

template <class F>
void expectError(ErrorCode code, F f)
{
    try {
        f();
        QFAIL("no error");
    } catch (const Error& e) {
        QCOMPARE(errorCodeName(e.code()), errorCodeName(code));
    }
}

} // namespace

class TestGptq : public QObject {
    Q_OBJECT

private slots:
    void matchesNaiveObq();
    void fastMatchesScalarReference_data();
    void fastMatchesScalarReference();
    void sweepFactorMatchesInverseRoute();
    void fastMatchesReferenceAcrossRowSlices();
    void beatsRtnOnOutputError();
    void groupsRefitStaticAndActOrder();
    void deadInputs();
    void keepMask();
    void bitsAndLayerResult();
    void invalidAndCancelled();
};

void TestGptq::matchesNaiveObq()
{
    const MatrixRM W = randomMatrix(6, 10, 1);
    const Eigen::MatrixXf H = correlatedGram(10, 64, 2);
    for (int bits : {2, 3, 4})
        for (int group : {0, 4}) {
            GptqOptions o;
            o.grid = {bits, false, group};
            const MatrixRM obq = naiveObq(W, H, o.grid, o.percDamp);
            o.blockSize = 3; // several blocks, groups across block borders: lazy updates matter
            const GptqResult fast = gptqQuantize(W, H, o);
            const GptqResult ref = gptqQuantizeRef(W, H, o);
            const float dFast = (fast.dequantized - obq).cwiseAbs().maxCoeff();
            const float dRef = (ref.dequantized - obq).cwiseAbs().maxCoeff();
            qInfo("%s: max |GPTQ - OBQ| %.3g (blocked), %.3g (scalar)", o.grid.label().c_str(), dFast, dRef);
            QVERIFY(dFast <= kObqMaxDiff);
            QVERIFY(dRef <= kObqMaxDiff);
        }
}

void TestGptq::fastMatchesScalarReference_data()
{
    QTest::addColumn<int>("bits");
    QTest::addColumn<int>("group");
    QTest::addColumn<bool>("actOrder");
    QTest::addColumn<bool>("staticGroups");
    QTest::addColumn<int>("blockSize");
    QTest::newRow("w4 row") << 4 << 0 << false << false << 128;
    QTest::newRow("w3 row blocks of 32") << 3 << 0 << false << false << 32;
    QTest::newRow("w4 g32 refit") << 4 << 32 << false << false << 128;
    QTest::newRow("w3 g48 refit, blocks of 64") << 3 << 48 << false << false << 64;
    QTest::newRow("w4 g32 static act-order") << 4 << 32 << true << true << 128;
    QTest::newRow("w2 g32 refit act-order") << 2 << 32 << true << false << 128;
    QTest::newRow("w8 sym row act-order") << 8 << 0 << true << false << 128;
}

void TestGptq::fastMatchesScalarReference()
{
    QFETCH(int, bits);
    QFETCH(int, group);
    QFETCH(bool, actOrder);
    QFETCH(bool, staticGroups);
    QFETCH(int, blockSize);
    const MatrixRM W = randomMatrix(24, 172, 3);
    const Eigen::MatrixXf H = correlatedGram(172, 400, 4);
    GptqOptions o;
    o.grid = {bits, bits == 8, group};
    o.actOrder = actOrder;
    o.staticGroups = staticGroups;
    o.blockSize = blockSize;
    const GptqResult fast = gptqQuantize(W, H, o);
    const GptqResult ref = gptqQuantizeRef(W, H, o);
    const double agree = codeAgreement(fast, ref);
    const float diff = (fast.dequantized - ref.dequantized).cwiseAbs().maxCoeff();
    qInfo("codes agree %.5f, max |fast - ref| %.3g, loss %.6g vs %.6g", agree, diff, fast.loss, ref.loss);
    QVERIFY(agree >= kFastVsRefCodeAgreement);
    if (agree == 1.0)
        QVERIFY(diff <= kFastVsRefMaxDiff);
    QVERIFY(std::fabs(fast.loss - ref.loss) <= 1e-3 * ref.loss);
    // The packed form reproduces the dequantized weights exactly.
    const QuantizedLayer layer = quantizedLayerFromGptq(W, fast, {}, o);
    QCOMPARE((dequantizePacked(layer.packed, W.rows(), W.cols()) - fast.dequantized).cwiseAbs().maxCoeff(), 0.0f);
    // The loss is the sum of the per-weight losses.
    QVERIFY(std::fabs(fast.weightLoss.cast<double>().sum() - fast.loss) <= 1e-4 * fast.loss);
}

void TestGptq::sweepFactorMatchesInverseRoute()
{
    // The reversed-Cholesky factor against the FP64 inverse route, columns permuted by `order` first.
    const Eigen::Index n = 150;
    const Eigen::MatrixXf H = correlatedGram(n, 400, 21);
    std::vector<int32_t> order(static_cast<size_t>(n));
    for (Eigen::Index k = 0; k < n; ++k)
        order[static_cast<size_t>(k)] = static_cast<int32_t>((k * 37) % n); // a permutation (37 is prime to 150)
    Eigen::MatrixXf Hp(n, n);
    for (Eigen::Index a = 0; a < n; ++a)
        for (Eigen::Index b = 0; b < n; ++b)
            Hp(a, b) = H(order[static_cast<size_t>(a)], order[static_cast<size_t>(b)]);
    const Eigen::MatrixXf Uref = inverseHessianFactor(Hp, 0.01).upper;
    const Eigen::MatrixXf U = gptqInverseFactor(H, 0.01, order);
    const double err = (U - Uref).cwiseAbs().maxCoeff() / Uref.cwiseAbs().maxCoeff();
    qInfo("max |U - U_inverse_route| / max |U| = %.3g", err);
    QVERIFY(err <= kFactorRelTol);
    QCOMPARE(U.triangularView<Eigen::StrictlyLower>().toDenseMatrix().cwiseAbs().maxCoeff(), 0.0f);
    // The float factorization (Auto picks it above kFactorDoubleMaxColumns columns).
    QVERIFY(factorInDouble(n, FactorPrecision::Auto) && !factorInDouble(kFactorDoubleMaxColumns + 1, FactorPrecision::Auto));
    const Eigen::MatrixXf Uf = gptqInverseFactor(H, 0.01, order, FactorPrecision::Float);
    const double errF = (Uf - Uref).cwiseAbs().maxCoeff() / Uref.cwiseAbs().maxCoeff();
    qInfo("float factorization: max |U - U_inverse_route| / max |U| = %.3g", errF);
    QVERIFY(errF <= kFactorFloatRelTol);
    QVERIFY(errF > 0.0); // it did run in float
    // The recursive triangular inverse on its own (sizes that split unevenly).
    for (const Eigen::Index m : {Eigen::Index(1), Eigen::Index(65), Eigen::Index(203), Eigen::Index(1100)}) {
        // Off-diagonal entries of order 1/sqrt(m) keep L^-1 well conditioned at every size.
        Eigen::MatrixXd L = Eigen::MatrixXd::Random(m, m) / std::sqrt(static_cast<double>(m));
        L.diagonal().array() = L.diagonal().array().abs() + 2.0;
        L = L.triangularView<Eigen::Lower>().toDenseMatrix();
        Eigen::MatrixXd Li = L;
        invertLowerTriangular(Li);
        const double residual = (L * Li - Eigen::MatrixXd::Identity(m, m)).cwiseAbs().maxCoeff();
        qInfo("triangular inverse, n = %lld: max |L L^-1 - I| = %.3g", static_cast<long long>(m), residual);
        QVERIFY(residual <= 1e-12);
        Eigen::MatrixXf Lf = L.cast<float>();
        invertLowerTriangular(Lf);
        QVERIFY((L.cast<float>() * Lf - Eigen::MatrixXf::Identity(m, m)).cwiseAbs().maxCoeff() <= 1e-4f);
    }
    // The blocked, threaded Cholesky against Eigen's LLT (one panel, several, a ragged last one).
    for (const Eigen::Index m : {Eigen::Index(3), Eigen::Index(256), Eigen::Index(700)}) {
        Eigen::MatrixXd A = correlatedGram(m, 2 * m + 8, 40).cast<double>(); // damped as GPTQ damps
        A.diagonal().array() += 0.01 * A.diagonal().mean();
        Eigen::MatrixXd L = A;
        QVERIFY(choleskyLowerInPlace(L));
        const Eigen::MatrixXd Lref = A.llt().matrixL();
        const Eigen::MatrixXd Lmine = L.triangularView<Eigen::Lower>();
        QVERIFY((Lmine - Lref).cwiseAbs().maxCoeff() <= 1e-10 * Lref.cwiseAbs().maxCoeff());
        Eigen::MatrixXf Lf = A.cast<float>();
        QVERIFY(choleskyLowerInPlace(Lf));
        const Eigen::MatrixXf Lfl = Lf.triangularView<Eigen::Lower>();
        // In float, against the double factor: no worse than Eigen's own float LLT (the conditioning sets both).
        const Eigen::MatrixXf LeigenF = A.cast<float>().llt().matrixL();
        const double errF = (Lfl.cast<double>() - Lref).cwiseAbs().maxCoeff() / Lref.cwiseAbs().maxCoeff();
        const double errEigenF = (LeigenF.cast<double>() - Lref).cwiseAbs().maxCoeff() / Lref.cwiseAbs().maxCoeff();
        qInfo("float Cholesky, n = %lld: max |L - L_double| / max |L| = %.3g (Eigen's float LLT: %.3g)",
              static_cast<long long>(m), errF, errEigenF);
        QVERIFY(errF <= kFloatCholeskyVsEigen * errEigenF + 1e-7);
        Eigen::MatrixXd notPd = A;
        notPd(m - 1, m - 1) = -1.0; // the last pivot goes negative
        QVERIFY(!choleskyLowerInPlace(notPd));
    }
    expectError(ErrorCode::InvalidArgument, [&] { gptqInverseFactor(Eigen::MatrixXf::Zero(4, 4), 0.0); });
}

void TestGptq::fastMatchesReferenceAcrossRowSlices()
{
    // Enough rows for several independent row slices (threads), refit groups
    // that straddle sub-blocks and blocks, kept weights, act-order.
    const MatrixRM W = randomMatrix(200, 300, 31);
    const Eigen::MatrixXf H = correlatedGram(300, 700, 32);
    std::vector<char> keep(static_cast<size_t>(W.size()), 0);
    for (size_t i = 0; i < keep.size(); i += 97)
        keep[i] = 1;
    for (bool actOrder : {false, true}) {
        GptqOptions o;
        o.grid = {3, false, 48};
        o.blockSize = 64;
        o.actOrder = actOrder;
        o.keep = &keep;
        const GptqResult fast = gptqQuantize(W, H, o);
        const GptqResult ref = gptqQuantizeRef(W, H, o);
        const double agree = codeAgreement(fast, ref);
        const float diff = (fast.dequantized - ref.dequantized).cwiseAbs().maxCoeff();
        qInfo("act-order %d: codes agree %.5f, max |fast - ref| %.3g, loss %.6g vs %.6g", actOrder, agree, diff, fast.loss,
              ref.loss);
        QVERIFY(agree >= kFastVsRefCodeAgreement);
        QVERIFY(std::fabs(fast.loss - ref.loss) <= 1e-3 * ref.loss);
        QVERIFY((fast.params.scales - ref.params.scales).cwiseAbs().maxCoeff() <= 1e-3f * ref.params.scales.maxCoeff());
    }
}

void TestGptq::beatsRtnOnOutputError()
{
    const MatrixRM W = randomMatrix(32, 64, 5);
    const Eigen::MatrixXf H = correlatedGram(64, 256, 6);
    for (int bits : {2, 3, 4})
        for (int group : {0, 32}) {
            GptqOptions o;
            o.grid = {bits, false, group};
            const double eGptq = gramOutputError(W, gptqQuantize(W, H, o).dequantized, H);
            const double eRtn = gramOutputError(W, rtnQuantize(W, o.grid).dequantized, H);
            qInfo("%s: output error GPTQ %.4f, RTN %.4f", o.grid.label().c_str(), eGptq, eRtn);
            QVERIFY(eGptq < eRtn);
        }
}

void TestGptq::groupsRefitStaticAndActOrder()
{
    const MatrixRM W = randomMatrix(8, 96, 7);
    const Eigen::MatrixXf H = correlatedGram(96, 300, 8);
    GptqOptions o;
    o.grid = {4, false, 32};
    // Refit groups without act-order: natural groups, no g_idx; the first
    // group's parameters are RTN's (nothing was updated yet).
    const GptqResult refit = gptqQuantize(W, H, o);
    QVERIFY(refit.groupIndex.empty());
    const GridParams rtn = computeGridParams(W, o.grid);
    for (int r = 0; r < 8; ++r) {
        QCOMPARE(refit.params.scales(r, 0), rtn.scales(r, 0));
        QCOMPARE(refit.params.zeros(r, 0), rtn.zeros(r, 0));
    }
    // Static groups: every group's parameters are RTN's.
    o.staticGroups = true;
    o.actOrder = true;
    const GptqResult stat = gptqQuantize(W, H, o);
    QVERIFY(stat.groupIndex.empty());
    QVERIFY((stat.params.scales - rtn.scales).cwiseAbs().maxCoeff() == 0.0f);
    // Act-order: descending diag(H); refit groups follow the sweep and need g_idx.
    o.staticGroups = false;
    const GptqResult act = gptqQuantize(W, H, o);
    for (size_t k = 1; k < act.order.size(); ++k)
        QVERIFY(H(act.order[k - 1], act.order[k - 1]) >= H(act.order[k], act.order[k]));
    QCOMPARE(act.groupIndex.size(), size_t(96));
    for (size_t k = 0; k < act.order.size(); ++k)
        QCOMPARE(act.groupIndex[static_cast<size_t>(act.order[k])], int32_t(k / 32));
    QCOMPARE(act.bitsPerWeight, 4.0 + (16.0 + 4.0) / 32.0 + 32.0 / 8.0);
}

void TestGptq::deadInputs()
{
    MatrixRM W = randomMatrix(5, 12, 9);
    Eigen::MatrixXf H = correlatedGram(12, 80, 10);
    H.row(3).setZero();
    H.col(3).setZero();
    GptqOptions o;
    o.grid = {3, false, 0};
    const GptqResult r = gptqQuantize(W, H, o);
    QCOMPARE(int(r.dead[3]), 1);
    QCOMPARE(r.dequantized.col(3).cwiseAbs().maxCoeff(), 0.0f);
    // Per-row parameters still come from W as given (the dead column included).
    const GridParams p = computeGridParams(W, o.grid);
    QCOMPARE((r.params.scales - p.scales).cwiseAbs().maxCoeff(), 0.0f);
    const GptqResult ref = gptqQuantizeRef(W, H, o);
    QVERIFY((r.dequantized - ref.dequantized).cwiseAbs().maxCoeff() <= kFastVsRefMaxDiff);
}

void TestGptq::keepMask()
{
    MatrixRM W = randomMatrix(6, 40, 11);
    W(2, 5) = 9.0f; // a weight that would stretch its row's grid
    const Eigen::MatrixXf H = correlatedGram(40, 200, 12);
    std::vector<char> keep(static_cast<size_t>(W.size()), 0);
    keep[static_cast<size_t>(2 * 40 + 5)] = 1;
    GptqOptions o;
    o.grid = {3, false, 0};
    o.keep = &keep;
    const GptqResult r = gptqQuantize(W, H, o);
    // Column 5 is swept sixth: its kept weight only moved by the updates of columns 0..4.
    QVERIFY(std::fabs(r.dequantized(2, 5) - 9.0f) < 1.0f);
    QCOMPARE(r.weightLoss(2, 5), 0.0f);
    // The kept weight is out of row 2's range.
    MatrixRM Wr = W;
    Wr(2, 5) = 0.0f;
    QCOMPARE(r.params.scales(2, 0), computeGridParams(Wr, o.grid).scales(2, 0));
    // Kept columns swept last take every update.
    std::vector<char> keepCol(static_cast<size_t>(W.size()), 0);
    for (int rr = 0; rr < 6; ++rr)
        keepCol[static_cast<size_t>(rr * 40 + 7)] = 1;
    o.keep = &keepCol;
    o.lastColumns = {7};
    const GptqResult rc = gptqQuantize(W, H, o);
    QCOMPARE(rc.order.back(), 7);
    const GptqResult rcRef = gptqQuantizeRef(W, H, o);
    QVERIFY((rc.dequantized - rcRef.dequantized).cwiseAbs().maxCoeff() <= kFastVsRefMaxDiff);
    // Keeping a column can only help the output error here.
    GptqOptions plain;
    plain.grid = o.grid;
    QVERIFY(gramOutputError(W, rc.dequantized, H) < gramOutputError(W, gptqQuantize(W, H, plain).dequantized, H));
}

void TestGptq::bitsAndLayerResult()
{
    const MatrixRM W = randomMatrix(16, 64, 13);
    const Eigen::MatrixXf H = correlatedGram(64, 256, 14);
    LayerInputs in;
    in.gram = &H;
    GptqOptions o;
    o.grid = {4, false, 32};
    const QuantizedLayer l = gptqLayer(W, in, o);
    // 4-bit codes + per (row, group of 32) a 16-bit scale and a 4-bit zero.
    QCOMPARE(l.bits.codes, 4.0 * 16 * 64);
    QCOMPARE(l.bits.scales, 16.0 * 16 * 2);
    QCOMPARE(l.bits.zeros, 4.0 * 16 * 2);
    QCOMPARE(l.bitsPerWeight, 4.0 + 20.0 / 32.0);
    QCOMPARE(l.bytesAfter, (4.0 * 16 * 64 + 20.0 * 32) / 8.0);
    QVERIFY(l.error.outputError.has_value());
    QVERIFY(l.loss > 0.0);
    QVERIFY(std::fabs(*l.error.outputError - gramOutputError(W, l.weights, H)) < 1e-12);
    o.actOrder = true;
    const QuantizedLayer a = gptqLayer(W, in, o);
    QCOMPARE(a.bits.groupIndex, 32.0 * 64);
    QCOMPARE(a.bitsPerWeight, 4.0 + 20.0 / 32.0 + 32.0 / 16.0);
    o.grid = {4, true, 0};
    o.actOrder = true;
    const QuantizedLayer s = gptqLayer(W, in, o); // per row: act-order needs no g_idx; sym: no zeros
    QCOMPARE(s.bitsPerWeight, 4.0 + 16.0 / 64.0);
}

void TestGptq::invalidAndCancelled()
{
    const MatrixRM W = randomMatrix(4, 8, 15);
    const Eigen::MatrixXf H = correlatedGram(8, 40, 16);
    GptqOptions o;
    o.staticGroups = true; // without groups
    expectError(ErrorCode::InvalidArgument, [&] { gptqQuantize(W, H, o); });
    expectError(ErrorCode::InvalidArgument, [&] { gptqQuantize(W, Eigen::MatrixXf::Identity(7, 7), GptqOptions{}); });
    MatrixRM bad = W;
    bad(1, 1) = std::nanf("");
    expectError(ErrorCode::InvalidArgument, [&] { gptqQuantize(bad, H, GptqOptions{}); });
    expectError(ErrorCode::InvalidArgument, [&] { gptqLayer(W, {}, GptqOptions{}); });
    CancelFlag cancel;
    cancel.cancel();
    expectError(ErrorCode::Cancelled, [&] { gptqQuantize(W, H, GptqOptions{}, &cancel); });
}

QTEST_APPLESS_MAIN(TestGptq)
#include "test_gptq.moc"
