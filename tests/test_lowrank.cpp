// Low-rank factorization: exactness at full rank, Eckart-Young against a
// matrix built with known singular values, the rank helpers on hand examples,
// randomized SVD against the exact truncation, and the activation-aware
// variants (ASVD, SVD-LLM whitening) against the theoretical optimum in the
// output norm. Factored models: the two-factor representation, its parameter
// count, and the forward pass through the factors against the dense product.
#include "test_support.h"

#include "engine/session.h"
#include "engine/transformer.h"
#include "formats/open_model.h"
#include "lowrank/activation_aware.h"
#include "lowrank/lowrank_layer.h"
#include "lowrank/randomized_svd.h"
#include "lowrank/rank_choice.h"
#include "lowrank/svd.h"
#include "model/demo_model.h"
#include "pipeline/model_compression.h"
#include "layer/layer_error.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/Dense>
#include <QtTest>

#include <cmath>
#include <random>
#include <set>

using namespace ll;

namespace {

// Full-rank reconstruction of float factors (the brief: <= 1e-5 relative).
constexpr double kFullRankTol = 1e-5;
// Float factors against sums of squared singular values computed in double.
constexpr double kEckartYoungRelTol = 1e-4;
// Randomized SVD (10 oversamples, 2 power iterations) within this factor of the exact error.
constexpr double kRandomizedFactor = 1.05;
// Whitened truncation error^2 against the optimum computed with another square root of G.
constexpr double kOptimumRelTol = 1e-4;
// Logits through the factors, (x B^T) A^T, against the dense product x (A B)^T:
// max |difference| relative to max |logit| (float rounding in another order).
constexpr double kFactoredLogitsRelTol = 1e-4;
// A B as readLogical multiplies it against the factors multiplied here.
constexpr float kProductRelTol = 1e-6f;

MatrixRM randomMatrix(Eigen::Index rows, Eigen::Index cols, uint32_t seed)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> n(0.0f, 1.0f);
    MatrixRM W(rows, cols);
    for (Eigen::Index i = 0; i < W.size(); ++i)
        W.data()[i] = n(gen);
    return W;
}

// A random orthonormal (n, k) basis: Q of a Gaussian matrix's QR.
Eigen::MatrixXd randomOrthonormal(Eigen::Index n, Eigen::Index k, uint32_t seed)
{
    const Eigen::MatrixXd G = randomMatrix(n, k, seed).cast<double>();
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(G);
    return qr.householderQ() * Eigen::MatrixXd::Identity(n, k);
}

// W = P diag(sigma) Q^T with known singular values.
MatrixRM withSpectrum(Eigen::Index rows, Eigen::Index cols, const Eigen::VectorXd& sigma, uint32_t seed)
{
    const Eigen::MatrixXd P = randomOrthonormal(rows, sigma.size(), seed);
    const Eigen::MatrixXd Q = randomOrthonormal(cols, sigma.size(), seed + 1);
    return (P * sigma.asDiagonal() * Q.transpose()).cast<float>();
}

// (samples, in) correlated inputs (AR(1), rho 0.9), log-normal channel scales, two outlier channels.
Eigen::MatrixXf correlatedInputs(Eigen::Index samples, Eigen::Index in, uint32_t seed)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> n(0.0f, 1.0f);
    constexpr float rho = 0.9f;
    Eigen::VectorXf scale(in);
    for (Eigen::Index j = 0; j < in; ++j)
        scale[j] = std::exp(0.5f * n(gen));
    scale[3] *= 8.0f;
    scale[in / 2] *= 8.0f;
    Eigen::MatrixXf X(samples, in);
    for (Eigen::Index s = 0; s < samples; ++s) {
        float prev = n(gen);
        for (Eigen::Index j = 0; j < in; ++j) {
            prev = rho * prev + std::sqrt(1.0f - rho * rho) * n(gen);
            X(s, j) = prev * scale[j];
        }
    }
    return X;
}

bool nearProduct(const MatrixRM& W, const MatrixRM& A, const MatrixRM& B)
{
    const MatrixRM P = A * B;
    return W.rows() == P.rows() && W.cols() == P.cols()
           && (W - P).cwiseAbs().maxCoeff() <= kProductRelTol * std::max(1.0f, P.cwiseAbs().maxCoeff());
}

double maxRelDiff(const Eigen::MatrixXf& got, const Eigen::MatrixXf& want)
{
    return (got - want).cwiseAbs().maxCoeff() / want.cwiseAbs().maxCoeff();
}

template <class F>
bool throwsCode(ErrorCode code, F&& f)
{
    try {
        f();
    } catch (const Error& e) {
        return e.code() == code;
    }
    return false;
}

double relError(const MatrixRM& W, const MatrixRM& What)
{
    return (W - What).cast<double>().norm() / W.cast<double>().norm();
}

// ||(W - W^) X^T||_F from the samples, in double.
double outputError(const MatrixRM& W, const MatrixRM& What, const Eigen::MatrixXf& X)
{
    return ((W - What).cast<double>() * X.cast<double>().transpose()).norm();
}

Eigen::VectorXf meanAbs(const Eigen::MatrixXf& X)
{
    return X.cwiseAbs().colwise().mean().transpose();
}

} // namespace

class TestLowRank : public QObject {
    Q_OBJECT

private slots:
    void fullRankIsExact();
    void eckartYoung();
    void rankHelpers();
    void randomizedSvdNearExact();
    void whitenedIsOptimalInOutputNorm();
    void asvdScalesAndUnscales();
    void whiteningSingularGram();
    void factorizeLayerAccounting();
    void errorVsRankCurve();
    void factoredTensorRepresentation();
    void factoredModelForwardPass();
};

void TestLowRank::fullRankIsExact()
{
    for (auto [rows, cols] : {std::pair{48, 80}, std::pair{80, 48}}) {
        const MatrixRM W = randomMatrix(rows, cols, 1);
        const LowRankFactors f = truncatedSvd(W, std::min(rows, cols));
        QCOMPARE(f.A.rows(), Eigen::Index(rows));
        QCOMPARE(f.B.cols(), Eigen::Index(cols));
        QCOMPARE(f.rank(), int64_t(std::min(rows, cols)));
        QVERIFY(relError(W, f.product()) <= kFullRankTol);
        // sqrt(sigma) in both factors: ||A[:, i]|| = ||B[i, :]|| = sqrt(sigma_i).
        QVERIFY(std::fabs(f.A.col(0).norm() - f.B.row(0).norm()) <= 1e-4 * f.A.col(0).norm());
        QVERIFY(std::fabs(double(f.A.col(0).squaredNorm()) - f.singularValues[0]) <= 1e-4 * f.singularValues[0]);
    }
}

void TestLowRank::eckartYoung()
{
    // Known spectrum: the SVD must find it, and the rank-k error^2 must be
    // the sum of the discarded sigma_i^2 (the optimum, Eckart-Young).
    Eigen::VectorXd sigma(6);
    sigma << 10.0, 5.0, 2.0, 1.0, 0.5, 0.25;
    const MatrixRM W = withSpectrum(40, 30, sigma, 2);
    const Eigen::VectorXd found = singularValues(W);
    QCOMPARE(found.size(), Eigen::Index(30));
    for (int i = 0; i < 6; ++i)
        QVERIFY(std::fabs(found[i] - sigma[i]) <= 1e-5 * sigma[0]);
    QVERIFY(found.tail(24).maxCoeff() <= 1e-5 * sigma[0]);
    for (int k : {0, 1, 2, 4, 6}) {
        const double tail = sigma.tail(6 - k).squaredNorm();
        const double err2 = (W - truncatedSvd(W, k).product()).cast<double>().squaredNorm();
        QVERIFY2(std::fabs(err2 - tail) <= kEckartYoungRelTol * sigma.squaredNorm(),
                 qPrintable(QString("rank %1: error^2 %2, sum of the discarded sigma^2 %3").arg(k).arg(err2).arg(tail)));
    }
    // A generic matrix: error^2 equals the tail of its own spectrum, and no
    // random rank-k competitor does better.
    const MatrixRM R = randomMatrix(50, 70, 3);
    const Eigen::VectorXd s = singularValues(R);
    const int k = 12;
    const double err2 = (R - truncatedSvd(R, k).product()).cast<double>().squaredNorm();
    QVERIFY(std::fabs(err2 - s.tail(50 - k).squaredNorm()) <= kEckartYoungRelTol * s.squaredNorm());
    for (uint32_t t = 0; t < 5; ++t) {
        // The rank-k projection of R onto a random k-dimensional row space.
        const Eigen::MatrixXd V = randomOrthonormal(70, k, 100 + t);
        const Eigen::MatrixXd Rd = R.cast<double>();
        QVERIFY((Rd - Rd * V * V.transpose()).squaredNorm() > err2);
    }
    QVERIFY_THROWS_EXCEPTION(Error, truncatedSvd(R, 51));
}

void TestLowRank::rankHelpers()
{
    // The protocol: k = round(frac * min(rows, cols)) on stories260K's shapes.
    QCOMPARE(rankForFraction(0.5, 64, 172), int64_t(32));
    QCOMPARE(rankForFraction(0.75, 32, 64), int64_t(24));
    QCOMPARE(rankForFraction(0.25, 172, 64), int64_t(16));
    QCOMPARE(rankForFraction(0.5, 5, 9), int64_t(2)); // 2.5 -> 2, half to even like Python
    QCOMPARE(rankForFraction(0.5, 7, 9), int64_t(4)); // 3.5 -> 4
    QCOMPARE(rankForFraction(1.0, 7, 9), int64_t(7));
    QVERIFY_THROWS_EXCEPTION(Error, rankForFraction(1.2, 7, 9));

    // sigma^2 = 9, 4, 1, 0 (total 14).
    Eigen::VectorXd s(4);
    s << 3.0, 2.0, 1.0, 0.0;
    QCOMPARE(rankForEnergy(s, 0.0), int64_t(0));
    QCOMPARE(rankForEnergy(s, 0.5), int64_t(1));  // 9 >= 7
    QCOMPARE(rankForEnergy(s, 0.9), int64_t(2));  // 13 >= 12.6
    QCOMPARE(rankForEnergy(s, 0.95), int64_t(3)); // 13 < 13.3 <= 14
    QCOMPARE(rankForEnergy(s, 1.0), int64_t(3));  // the zero singular value adds nothing
    QCOMPARE(rankForEnergy(Eigen::VectorXd::Zero(3), 0.9), int64_t(0));

    QCOMPARE(rankForParameterBudget(250, 10, 20), int64_t(8));    // 8 * 30 = 240 <= 250 < 270
    QCOMPARE(rankForParameterBudget(1000, 10, 20), int64_t(10));  // capped at min(rows, cols)
    QCOMPARE(rankByHand(5, 10, 20), int64_t(5));
    QVERIFY_THROWS_EXCEPTION(Error, rankByHand(11, 10, 20));
    QCOMPARE(maxUsefulRank(64, 172), int64_t(46)); // 46 * 236 = 10856 < 11008 <= 47 * 236
    QCOMPARE(maxUsefulRank(4, 4), int64_t(1));     // 2 * 8 = 16 is not smaller than 16
}

void TestLowRank::randomizedSvdNearExact()
{
    // 400 x 300 with a decaying spectrum plus noise.
    Eigen::VectorXd sigma(300);
    for (int i = 0; i < 300; ++i)
        sigma[i] = 10.0 * std::pow(0.93, i) + 0.05;
    const MatrixRM W = withSpectrum(400, 300, sigma, 4);
    for (int k : {5, 20, 60}) {
        const double exact = relError(W, truncatedSvd(W, k).product());
        const double rand = relError(W, randomizedSvd(W, k).product());
        qInfo("rank %d: exact SVD error %.5f, randomized %.5f", k, exact, rand);
        QVERIFY(rand >= exact * (1.0 - 1e-6)); // the exact truncation is optimal
        QVERIFY(rand <= kRandomizedFactor * exact);
    }
    // Deterministic for a seed; another seed gives other (but as good) factors.
    const LowRankFactors a = randomizedSvd(W, 20), b = randomizedSvd(W, 20);
    QVERIFY(a.A == b.A && a.B == b.B);
    RandomizedSvdOptions other;
    other.seed = 7;
    const LowRankFactors c = randomizedSvd(W, 20, other);
    QVERIFY(!(c.A == a.A));
    QVERIFY(relError(W, c.product()) <= kRandomizedFactor * relError(W, truncatedSvd(W, 20).product()));
    // Without power iterations on a flat noisy spectrum the error grows (they matter).
    RandomizedSvdOptions none;
    none.powerIterations = 0;
    QVERIFY(relError(W, randomizedSvd(W, 60, none).product()) > relError(W, randomizedSvd(W, 60).product()));
}

void TestLowRank::whitenedIsOptimalInOutputNorm()
{
    const MatrixRM W = randomMatrix(64, 128, 5);
    const Eigen::MatrixXf X = correlatedInputs(2048, 128, 6);
    const Eigen::MatrixXf G = X.transpose() * X;
    // An independent square root of G: the symmetric one from its eigendecomposition.
    // W L and W G^(1/2) differ by an orthogonal factor, so their spectra agree.
    const Eigen::MatrixXd sqrtG = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(G.cast<double>()).operatorSqrt();
    const Eigen::VectorXd s = Eigen::BDCSVD<Eigen::MatrixXd>(W.cast<double>() * sqrtG).singularValues();
    for (int k : {8, 16, 32}) {
        const MatrixRM plain = truncatedSvd(W, k).product();
        const MatrixRM asv = asvd(W, meanAbs(X), k).product();
        const LowRankFactors wf = whitenedSvd(W, G, k);
        const MatrixRM white = wf.product();
        const double ePlain = outputError(W, plain, X), eAsvd = outputError(W, asv, X), eWhite = outputError(W, white, X);
        qInfo("rank %d output error: svd %.1f, asvd %.1f, svd-llm %.1f (optimum %.1f)", k, ePlain, eAsvd, eWhite,
              s.tail(64 - k).norm());
        QVERIFY(eWhite < ePlain && eWhite < eAsvd);
        QVERIFY(eAsvd < ePlain); // on outlier channels ASVD helps too
        // The optimum: error^2 = sum of the discarded sigma_i(W G^(1/2))^2.
        const double optimum2 = s.tail(64 - k).squaredNorm();
        QVERIFY(std::fabs(eWhite * eWhite - optimum2) <= kOptimumRelTol * optimum2);
        // No nearby rank-k matrix does better: perturb both factors at random.
        std::mt19937 gen(42 + k);
        std::normal_distribution<float> n(0.0f, 1.0f);
        for (int t = 0; t < 10; ++t) {
            MatrixRM dA = MatrixRM::NullaryExpr(wf.A.rows(), wf.A.cols(), [&]() { return n(gen); });
            MatrixRM dB = MatrixRM::NullaryExpr(wf.B.rows(), wf.B.cols(), [&]() { return n(gen); });
            const MatrixRM A2 = wf.A + 1e-3f * wf.A.norm() / dA.norm() * dA;
            const MatrixRM B2 = wf.B + 1e-3f * wf.B.norm() / dB.norm() * dB;
            QVERIFY(outputError(W, A2 * B2, X) > eWhite);
        }
        // layer_error.h's relative output error from G agrees with the direct one.
        const double ref = (W.cast<double>() * X.cast<double>().transpose()).norm();
        QVERIFY(std::fabs(gramOutputError(W, white, G) - eWhite / ref) <= 1e-4 * eWhite / ref);
    }
}

void TestLowRank::asvdScalesAndUnscales()
{
    const MatrixRM W = randomMatrix(24, 40, 7);
    const Eigen::MatrixXf X = correlatedInputs(256, 40, 8);
    const Eigen::VectorXf m = meanAbs(X);
    // s_j = mean|x_j|^alpha + 1e-6
    const Eigen::VectorXd sc = asvdScales(m, 0.5);
    QVERIFY(std::fabs(sc[3] - (std::sqrt(double(m[3])) + 1e-6)) <= 1e-12);
    // Full rank: B diag(s)^-1 undoes the scaling exactly.
    QVERIFY(relError(W, asvd(W, m, 24).product()) <= kFullRankTol);
    // alpha = 0: every s_j = 1 + 1e-6, i.e. plain SVD.
    QVERIFY(relError(asvd(W, m, 6, 0.0).product(), truncatedSvd(W, 6).product()) <= 1e-5);
    QVERIFY_THROWS_EXCEPTION(Error, asvd(W, Eigen::VectorXf::Ones(39), 6));
    QVERIFY_THROWS_EXCEPTION(Error, asvd(W, -Eigen::VectorXf::Ones(40), 6));
}

void TestLowRank::whiteningSingularGram()
{
    // A dead input channel makes X^T X singular: SVD-LLM's rule lifts the
    // smallest eigenvalue; the factors stay finite and still beat plain SVD.
    const MatrixRM W = randomMatrix(16, 32, 9);
    Eigen::MatrixXf X = correlatedInputs(512, 32, 10);
    X.col(7).setZero();
    const Eigen::MatrixXf G = X.transpose() * X;
    const WhiteningFactor wf = whiteningFactor(G);
    QVERIFY(wf.shift > 0.0);
    QVERIFY(wf.shift < 1e-3 * G.diagonal().mean());
    const LowRankFactors f = whitenedSvd(W, G, 8);
    QVERIFY(f.A.allFinite() && f.B.allFinite());
    QVERIFY(outputError(W, f.product(), X) < outputError(W, truncatedSvd(W, 8).product(), X));
    // A positive definite G needs no shift.
    QCOMPARE(whiteningFactor(Eigen::MatrixXf::Identity(4, 4)).shift, 0.0);
}

void TestLowRank::factorizeLayerAccounting()
{
    const MatrixRM W = randomMatrix(64, 172, 11);
    const CompressedLayer r = factorizeLayer(W, {.method = LowRankMethod::Svd, .rank = 16});
    QCOMPARE(r.method, std::string("svd rank 16"));
    QCOMPARE(r.paramsBefore, int64_t(64 * 172));
    QCOMPARE(r.paramsAfter, int64_t(16 * (64 + 172))); // 3776 < 11008
    QVERIFY(r.paramsAfter < r.paramsBefore);
    QCOMPARE(r.bytesAfter, 3776.0 * 4);
    QVERIFY(std::fabs(r.compressionRatio() - 11008.0 / 3776.0) <= 1e-12);
    QCOMPARE(r.factorA.cols(), Eigen::Index(16));
    QCOMPARE(r.factorB.rows(), Eigen::Index(16));
    QVERIFY(r.weights == MatrixRM(r.factorA * r.factorB));
    QVERIFY(std::fabs(r.error.weightError - relError(W, r.weights)) <= 1e-6);
    QVERIFY(!r.error.outputError);
    QVERIFY(!r.mask);

    // Methods that need statistics say so.
    QVERIFY_THROWS_EXCEPTION(Error, factorizeLayer(W, {.method = LowRankMethod::Whitened, .rank = 8}));
    QVERIFY_THROWS_EXCEPTION(Error, factorizeLayer(W, {.method = LowRankMethod::Asvd, .rank = 8}));
    const Eigen::MatrixXf X = correlatedInputs(512, 172, 12);
    const Eigen::MatrixXf G = X.transpose() * X;
    LayerInputs in;
    in.gram = &G;
    in.meanAbs = meanAbs(X);
    for (LowRankMethod m : {LowRankMethod::Svd, LowRankMethod::RandomizedSvd, LowRankMethod::Asvd, LowRankMethod::Whitened}) {
        const CompressedLayer l = factorizeLayer(W, {.method = m, .rank = 8}, in);
        QCOMPARE(l.paramsAfter, int64_t(8 * 236));
        QVERIFY(l.error.outputError.has_value());
    }
}

void TestLowRank::errorVsRankCurve()
{
    const MatrixRM W = randomMatrix(32, 48, 13);
    const Eigen::MatrixXf X = correlatedInputs(512, 48, 14);
    const Eigen::MatrixXf G = X.transpose() * X;
    LayerInputs in;
    in.gram = &G;
    const std::vector<int64_t> ranks{0, 4, 8, 16, 32};
    for (LowRankMethod m : {LowRankMethod::Svd, LowRankMethod::Whitened}) {
        const std::vector<ErrorCurvePoint> curve = errorVsRank(W, {.method = m}, ranks, in);
        QCOMPARE(curve.size(), ranks.size());
        QVERIFY(std::fabs(curve[0].weightError - 1.0) <= 1e-12); // rank 0: W^ = 0
        QVERIFY(curve.back().weightError <= kFullRankTol);
        for (size_t i = 1; i < ranks.size(); ++i) {
            QCOMPARE(curve[i].x, double(ranks[i]));
            QCOMPARE(curve[i].paramsAfter, ranks[i] * 80);
            QVERIFY(*curve[i].outputError < *curve[i - 1].outputError);
            if (m == LowRankMethod::Svd)
                QVERIFY(curve[i].weightError < curve[i - 1].weightError);
        }
        // The same point as a single factorizeLayer call.
        const CompressedLayer at8 = factorizeLayer(W, {.method = m, .rank = 8}, in);
        QVERIFY(std::fabs(curve[2].weightError - at8.error.weightError) <= 1e-9);
    }
    CancelFlag cancel;
    cancel.cancel();
    QVERIFY_THROWS_EXCEPTION(Error, errorVsRank(W, {}, ranks, in, &cancel));
    QVERIFY_THROWS_EXCEPTION(Error, truncatedSvd(W, 4, &cancel));
}

void TestLowRank::factoredTensorRepresentation()
{
    const auto m = makeDemoModel(7, {.hidden = 64, .intermediate = 96, .layers = 2, .heads = 4, .kvHeads = 2, .vocab = 128});
    const std::string up = "blocks.0.mlp.up.weight";
    const int64_t before = m->parameterCount(), storedBefore = m->storedParameterCount();
    const size_t storedCount = m->stored.size();
    const MatrixRM A = randomMatrix(96, 8, 21), B = randomMatrix(8, 64, 22);
    replaceTensorFactored(*m, up, A, B);
    const LogicalTensor* t = m->findLogical(up);
    QVERIFY(t->factored() && t->edited() && t->replacedBy < 0);
    QCOMPARE(t->shape, (std::vector<int64_t>{96, 64}));
    QCOMPARE(m->parameterCount(), before - 96 * 64 + 8 * (96 + 64));
    QCOMPARE(m->storedParameterCount(), storedBefore); // the source file's tensors
    QCOMPARE(m->stored.size(), storedCount + 2);
    QVERIFY(nearProduct(readMatrix(*m, *t), A, B));
    MatrixRM a, b;
    QVERIFY(readFactors(*m, *t, a, b));
    QVERIFY(a == A && b == B);
    QVERIFY(!readFactors(*m, *m->findLogical("blocks.0.mlp.down.weight"), a, b));

    // Refactoring reuses both slots; replaceTensor makes the tensor dense in A's slot.
    replaceTensorFactored(*m, up, randomMatrix(96, 4, 23), randomMatrix(4, 64, 24));
    QCOMPARE(m->stored.size(), storedCount + 2);
    QCOMPARE(m->parameterCount(), before - 96 * 64 + 4 * (96 + 64));
    replaceTensor(*m, up, std::vector<float>(96 * 64, 0.5f), {96, 64});
    QVERIFY(!t->factored() && t->replacedBy >= 0);
    QCOMPARE(m->parameterCount(), before);
    QCOMPARE(m->stored.size(), storedCount + 2);
    QVERIFY(readMatrix(*m, *t) == MatrixRM::Constant(96, 64, 0.5f));
    // ... and factoring an edited tensor reuses its slot for A (B's old slot stays empty).
    replaceTensorFactored(*m, up, A, B);
    QCOMPARE(m->stored.size(), storedCount + 3);
    QVERIFY(nearProduct(readMatrix(*m, *t), A, B));

    // Refused: factors that do not chain or hold the wrong count, a vector, an unknown name.
    QVERIFY(throwsCode(ErrorCode::InvalidArgument, [&] { replaceTensorFactored(*m, up, A, randomMatrix(6, 64, 25)); }));
    QVERIFY(throwsCode(ErrorCode::InvalidArgument,
                       [&] { replaceTensorFactored(*m, up, std::vector<float>(10), std::vector<float>(8 * 64), 96, 8, 64); }));
    QVERIFY(m->findLogical("blocks.0.attn_norm.weight"));
    QVERIFY(throwsCode(ErrorCode::InvalidArgument, [&] { replaceTensorFactored(*m, "blocks.0.attn_norm.weight", A, B); }));
    QVERIFY(throwsCode(ErrorCode::NotFound, [&] { replaceTensorFactored(*m, "nothing.weight", A, B); }));

    // The engine keeps the factors; its logits equal those of the dense product.
    const auto dense = makeDemoModel(7, {.hidden = 64, .intermediate = 96, .layers = 2, .heads = 4, .kvHeads = 2, .vocab = 128});
    replaceTensor(*dense, up, readLogical(*m, *t), {96, 64});
    // Rank 0 (A (out, 0), B (0, in)): the layer outputs zeros.
    replaceTensorFactored(*m, "blocks.1.attn.v.weight", MatrixRM(32, 0), MatrixRM(0, 64));
    replaceTensor(*dense, "blocks.1.attn.v.weight", std::vector<float>(32 * 64, 0.0f), {32, 64});
    QVERIFY(readMatrix(*m, *m->findLogical("blocks.1.attn.v.weight")).isZero());
    const Transformer tf(*m), td(*dense);
    QVERIFY(tf.linear(0, Role::MlpUp).factored() && tf.linear(0, Role::MlpUp).W.empty());
    QCOMPARE(tf.linear(0, Role::MlpUp).rank(), int64_t{8});
    QCOMPARE(tf.linear(1, Role::AttnV).rank(), int64_t{0});
    QVERIFY(tf.weightBytes() < td.weightBytes());
    const std::vector<int32_t> ids{1, 5, 9, 77, 3, 100, 42, 8};
    QVERIFY(maxRelDiff(tf.logits(ids), td.logits(ids)) <= kFactoredLogitsRelTol);

    // setLinearWeight / setLinearFactors switch a layer between the two forms.
    Transformer e(*dense);
    e.setLinearFactors(0, Role::MlpUp, A, B);
    QVERIFY(e.linear(0, Role::MlpUp).factored() && nearProduct(e.linear(0, Role::MlpUp).dense(), A, B));
    QVERIFY(maxRelDiff(e.logits(ids), td.logits(ids)) <= kFactoredLogitsRelTol);
    QVERIFY(throwsCode(ErrorCode::InvalidArgument, [&] { e.setLinearFactors(0, Role::MlpUp, B, A); }));
    e.setLinearWeight(0, Role::MlpUp, td.linear(0, Role::MlpUp).W);
    QVERIFY(!e.linear(0, Role::MlpUp).factored() && e.linear(0, Role::MlpUp).A.empty());
    QVERIFY(e.logits(ids) == td.logits(ids));
}

// stories260K factored by SVD at rank ratio 0.25: the model holds the factors,
// counts k (out + in) per layer, and its forward pass (batched windows and
// KV-cache decoding) gives the dense-product model's logits.
void TestLowRank::factoredModelForwardPass()
{
    LL_REQUIRE_SHARED();
    const auto source = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
    ModelFactorizeOptions o;
    o.method = LowRankMethod::Svd;
    o.rankRatio = 0.25;
    const ModelCompressionResult f = factorizeModel(*source, o);
    o.keepFactors = false;
    const ModelCompressionResult d = factorizeModel(*source, o);
    QCOMPARE(f.layers.size(), size_t{35});

    int64_t expected = 0;
    std::set<std::string> factored;
    for (const LayerOutcome& l : f.layers) {
        const LogicalTensor* t = f.model->findLogical(l.name);
        QVERIFY2(t && t->factored() && t->replacedBy < 0, l.name.c_str());
        QCOMPARE(t->shape, (std::vector<int64_t>{l.rows, l.cols}));
        QCOMPARE(l.rank, std::min(l.rows, l.cols) / 4); // round(0.25 * min(out, in)): 16, 8 for k and v (32 rows)
        QVERIFY(nearProduct(readMatrix(*f.model, *t), l.factorA, l.factorB));
        QVERIFY(!d.model->findLogical(l.name)->factored());
        expected += l.rank * (l.rows + l.cols);
        factored.insert(l.name);
    }
    for (const LogicalTensor& t : source->tensors)
        if (!factored.count(t.logicalName))
            expected += t.elements();
    QCOMPARE(f.model->parameterCount(), expected);
    QCOMPARE(f.storedParameters, expected);
    QCOMPARE(f.parametersAfter, expected);
    QCOMPARE(d.parametersAfter, expected); // the same count with the dense product stored
    QCOMPARE(d.model->parameterCount(), source->parameterCount());
    qInfo("stories260K svd rank 25 %%: %lld -> %lld parameters", static_cast<long long>(source->parameterCount()),
          static_cast<long long>(expected));

    const std::vector<int64_t> ids64 =
        test::referenceInt64(test::sharedPath("reference/stories260K_logits.safetensors"), "input_ids");
    const std::vector<int32_t> ids(ids64.begin(), ids64.end());
    const Transformer tf(*f.model), td(*d.model);
    for (int b = 0; b < tf.layers(); ++b)
        for (Role r : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpGate, Role::MlpUp, Role::MlpDown})
            QVERIFY(tf.linear(b, r).factored() && !td.linear(b, r).factored());
    QVERIFY(!tf.linear(-1, Role::LmHead).factored());
    QVERIFY(tf.flopsPerToken(64) < td.flopsPerToken(64));
    const Eigen::MatrixXf want = td.logits(ids);
    const double whole = maxRelDiff(tf.logits(ids), want);
    // Two windows of 32 (parallel groups where there are threads).
    const MatrixRM batch = tf.logitsBatch(ids, 32), batchDense = td.logitsBatch(ids, 32);
    const double windows = maxRelDiff(batch, batchDense);
    // KV-cache decoding: one row per product.
    Session s(tf);
    double decode = 0.0;
    for (size_t i = 0; i < ids.size(); ++i) {
        const Eigen::VectorXf row = s.appendToken(ids[i]);
        decode = std::max(decode, maxRelDiff(row.transpose(), want.row(static_cast<Eigen::Index>(i))));
    }
    qInfo("factored vs dense-product logits, max |diff| / max |logit|: %.3g (sequence), %.3g (windows), %.3g (decoding)",
          whole, windows, decode);
    QVERIFY(whole <= kFactoredLogitsRelTol);
    QVERIFY(windows <= kFactoredLogitsRelTol);
    QVERIFY(decode <= kFactoredLogitsRelTol);
}

QTEST_APPLESS_MAIN(TestLowRank)
#include "test_lowrank.moc"
