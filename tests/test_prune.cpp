// Pruning: the sparsity mask, magnitude / Wanda / SparseGPT masks against hand
// examples and brute force, SparseGPT's reconstruction against the OBS
// formula, structured neuron / head ranking and slicing, the per-layer result
// and the error vs sparsity curve.
#include "test_support.h"

#include "prune/magnitude.h"
#include "prune/prune_layer.h"
#include "prune/sparsegpt.h"
#include "layer/sparsity_mask.h"
#include "prune/structured.h"
#include "prune/wanda.h"
#include "prune/weight_quantizer.h"
#include "quant/grid.h"
#include "layer/layer_error.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/Dense>
#include <QtTest>

#include <cmath>
#include <algorithm>
#include <random>
#include <utility>

using namespace ll;

namespace {

// Float sums over a few hundred terms: relative agreement asked of two float
// computations of the same quantity.
constexpr double kFloatRelTol = 1e-5;
// SparseGPT against the OBS formula / least squares computed in double.
constexpr double kObsTol = 1e-5;
// The same with a Gram matrix of correlated, unevenly scaled inputs (float
// sweep vs double solve; the conditioning amplifies rounding).
constexpr double kObsConditionedTol = 1e-4;
// SparseGPT must beat magnitude and Wanda on correlated inputs by at least this factor.
constexpr double kSparseGptMargin = 0.8;

MatrixRM randomMatrix(Eigen::Index rows, Eigen::Index cols, uint32_t seed)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> n(0.0f, 1.0f);
    MatrixRM W(rows, cols);
    for (Eigen::Index i = 0; i < W.size(); ++i)
        W.data()[i] = n(gen);
    return W;
}

// (samples, in) inputs with neighbouring channels correlated (AR(1), rho 0.9),
// log-normal channel scales and two outlier channels: what LLM activations look like.
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

// ||(W - W^) X^T||_F computed from the samples themselves, in double.
double outputError(const MatrixRM& W, const MatrixRM& What, const Eigen::MatrixXf& X)
{
    const Eigen::MatrixXd D = (W - What).cast<double>();
    return (D * X.cast<double>().transpose()).norm();
}

int64_t zerosInGroup(const MatrixRM& W, Eigen::Index r, Eigen::Index c0, int m)
{
    int64_t z = 0;
    for (Eigen::Index c = c0; c < std::min<Eigen::Index>(c0 + m, W.cols()); ++c)
        z += W(r, c) == 0.0f ? 1 : 0;
    return z;
}

MatrixRM applied(const MatrixRM& W, const SparsityMask& mask)
{
    MatrixRM out = W;
    mask.applyTo(out);
    return out;
}

// SparseGPT written out plainly in double, without the Cholesky factor and
// without lazy batching: every removal updates all later columns of its row by
// least squares over them, w_{>j} += H_{>j,>j}^-1 H_{>j,j} w_j (columns <= j
// fixed), and the saliency of column j is w^2 / [(H_{>=j,>=j})^-1]_00.
// H must be damped already. nm.m == 0: unstructured per block.
MatrixRM naiveSparseGpt(const MatrixRM& W, const Eigen::MatrixXd& H, int blockSize, double sparsity, NMPattern nm)
{
    const Eigen::Index rows = W.rows(), n = W.cols();
    Eigen::MatrixXd Wd = W.cast<double>();
    std::vector<double> hinvDiag(static_cast<size_t>(n));
    std::vector<Eigen::VectorXd> update(static_cast<size_t>(n));
    for (Eigen::Index j = 0; j < n; ++j) {
        hinvDiag[static_cast<size_t>(j)] = H.bottomRightCorner(n - j, n - j).inverse()(0, 0);
        if (j + 1 < n)
            update[static_cast<size_t>(j)] =
                H.bottomRightCorner(n - j - 1, n - j - 1).ldlt().solve(H.block(j + 1, j, n - j - 1, 1));
    }
    const auto score = [&](Eigen::Index r, Eigen::Index j) { return Wd(r, j) * Wd(r, j) / hinvDiag[static_cast<size_t>(j)]; };
    Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic> pruned = Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic>::Zero(rows, n);
    for (Eigen::Index b = 0; b < n; b += blockSize) {
        const Eigen::Index e = std::min<Eigen::Index>(b + blockSize, n);
        if (nm.m == 0) { // the lowest fraction of the block's scores, from the weights as they are now
            std::vector<std::pair<double, Eigen::Index>> all;
            for (Eigen::Index j = b; j < e; ++j)
                for (Eigen::Index r = 0; r < rows; ++r)
                    all.push_back({score(r, j), j * rows + r});
            std::sort(all.begin(), all.end());
            const auto k = static_cast<size_t>(std::floor(sparsity * static_cast<double>(all.size()) + 1e-9));
            for (size_t i = 0; i < k; ++i)
                pruned(all[i].second % rows, all[i].second / rows) = true;
        }
        for (Eigen::Index j = b; j < e; ++j) {
            for (Eigen::Index r = 0; r < rows; ++r) {
                if (nm.m > 0 && j % nm.m == 0) {
                    std::vector<std::pair<double, Eigen::Index>> group;
                    for (Eigen::Index c = j; c < std::min<Eigen::Index>(j + nm.m, n); ++c)
                        group.push_back({score(r, c), c});
                    std::sort(group.begin(), group.end());
                    for (size_t i = 0; i + nm.n < group.size(); ++i)
                        pruned(r, group[i].second) = true;
                }
                if (!pruned(r, j))
                    continue;
                const double w = Wd(r, j);
                Wd(r, j) = 0.0;
                if (j + 1 < n)
                    Wd.row(r).tail(n - j - 1) += w * update[static_cast<size_t>(j)].transpose();
            }
        }
    }
    return Wd.cast<float>();
}

} // namespace

class TestPrune : public QObject {
    Q_OBJECT

private slots:
    void maskBitsAndCounts();
    void magnitudeHandExample();
    void sparsityExactlyAsRequested();
    void inclusiveCountRuleOfTheReference();
    void nmMasksAreValid();
    void wandaUsesTheProductMetric();
    void sparseGptBeatsMagnitudeAndWanda();
    void sparseGptZeroSparsityKeepsW();
    void sparseGptDeadInputs();
    void sparseGptMatchesBruteForceObs();
    void sparseGptFixedMaskMatchesJointObs();
    void sparseGptMatchesPlainSequentialObs();
    void sparseGptNMIsValid();
    void sparseGptJointQuantization();
    void sparseGptScaleInvariantAndCancellable();
    void structuredMlpHandExample();
    void structuredAttentionGroups();
    void pruneLayerReport();
    void errorVsSparsityCurve();
};

void TestPrune::maskBitsAndCounts()
{
    // 3 x 70 crosses a 64-bit word boundary in every row.
    SparsityMask m(3, 70);
    QCOMPARE(m.wordsPerRow(), int64_t(2));
    QCOMPARE(m.keptCount(), int64_t(210));
    QCOMPARE(m.sparsity(), 0.0);
    m.prune(0, 0);
    m.prune(0, 63);
    m.prune(0, 64);
    m.prune(2, 69);
    QVERIFY(!m.kept(0, 63) && !m.kept(0, 64) && m.kept(0, 65) && m.kept(1, 0));
    QCOMPARE(m.prunedCount(), int64_t(4));
    QCOMPARE(m.keptInRow(0), int64_t(67));
    QCOMPARE(m.sparsity(), 4.0 / 210.0);
    const std::vector<double> rows = m.rowSparsity(), cols = m.columnSparsity();
    QCOMPARE(rows[0], 3.0 / 70.0);
    QCOMPARE(rows[1], 0.0);
    QCOMPARE(rows[2], 1.0 / 70.0);
    QCOMPARE(cols[63], 1.0 / 3.0);
    QCOMPARE(cols[69], 1.0 / 3.0);
    QCOMPARE(cols[1], 0.0);
    m.set(0, 0, true);
    QVERIFY(m.kept(0, 0));
    // Padding bits stay 0: row 0's second word holds columns 64..69 only.
    QCOMPARE(m.words()[1], uint64_t(0b111110));

    MatrixRM W = MatrixRM::Ones(3, 70);
    m.applyTo(W);
    QCOMPARE(W(0, 63), 0.0f);
    QCOMPARE(W(0, 0), 1.0f);
    QVERIFY(SparsityMask::fromNonZeros(W) == m);
    MatrixRM narrow = MatrixRM::Ones(3, 69);
    QVERIFY_THROWS_EXCEPTION(Error, m.applyTo(narrow));
    QCOMPARE(SparsityMask(2, 5, false).keptCount(), int64_t(0));
}

void TestPrune::magnitudeHandExample()
{
    // Matrix scope at 50 % prunes the 4 smallest |w|: the whole second row.
    // Row scope prunes the 2 smallest of each row instead.
    MatrixRM W(2, 4);
    W << 1.0f, -2.0f, 3.0f, -4.0f, //
        0.1f, -0.2f, 0.3f, 0.4f;
    const SparsityMask whole = magnitudeMask(W, 0.5, PruneScope::Matrix);
    for (int c = 0; c < 4; ++c) {
        QVERIFY(whole.kept(0, c));
        QVERIFY(!whole.kept(1, c));
    }
    const SparsityMask perRow = magnitudeMask(W, 0.5, PruneScope::Row);
    const bool expected[2][4] = {{false, false, true, true}, {false, false, true, true}};
    for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 4; ++c)
            QCOMPARE(perRow.kept(r, c), expected[r][c]);
    // 3 of 8 (37.5 %): 0.1, 0.2, 0.3 go.
    const SparsityMask three = magnitudeMask(W, 0.375);
    QVERIFY(!three.kept(1, 0) && !three.kept(1, 1) && !three.kept(1, 2) && three.kept(1, 3));
    // Ties: exactly floor(s n) pruned, the first ones in row-major order.
    const SparsityMask ties = magnitudeMask(MatrixRM::Constant(2, 3, 0.5f), 0.5);
    QCOMPARE(ties.prunedCount(), int64_t(3));
    QVERIFY(!ties.kept(0, 0) && !ties.kept(0, 1) && !ties.kept(0, 2) && ties.kept(1, 0));
    QVERIFY_THROWS_EXCEPTION(Error, magnitudeMask(W, 1.5));
    MatrixRM bad = W;
    bad(1, 1) = std::nanf("");
    QVERIFY_THROWS_EXCEPTION(Error, magnitudeMask(bad, 0.5));
}

void TestPrune::sparsityExactlyAsRequested()
{
    const MatrixRM W = randomMatrix(64, 256, 1);
    const Eigen::VectorXf norms = Eigen::VectorXf::LinSpaced(256, 0.5f, 3.0f);
    for (double s : {0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 1.0}) {
        const auto total = static_cast<int64_t>(std::floor(s * 64 * 256 + 1e-9));
        const auto perRow = static_cast<int64_t>(std::floor(s * 256 + 1e-9));
        QCOMPARE(magnitudeMask(W, s).prunedCount(), total);
        const SparsityMask rows = magnitudeMask(W, s, PruneScope::Row);
        const SparsityMask wanda = wandaMask(W, norms, s);
        for (int64_t r = 0; r < 64; ++r) {
            QCOMPARE(256 - rows.keptInRow(r), perRow);
            QCOMPARE(256 - wanda.keptInRow(r), perRow);
        }
        // Magnitude over the whole matrix: no kept |w| below a pruned one.
        const SparsityMask m = magnitudeMask(W, s);
        float maxPruned = 0.0f, minKept = INFINITY;
        for (int64_t r = 0; r < 64; ++r)
            for (int64_t c = 0; c < 256; ++c) {
                if (m.kept(r, c))
                    minKept = std::min(minKept, std::fabs(W(r, c)));
                else
                    maxPruned = std::max(maxPruned, std::fabs(W(r, c)));
            }
        QVERIFY(maxPruned <= minKept);
    }
    // 0.29 * 100 is 28.999999999999996 in binary: still 29 weights.
    QCOMPARE(magnitudeMask(randomMatrix(1, 100, 22), 0.29).prunedCount(), int64_t(29));
}

void TestPrune::inclusiveCountRuleOfTheReference()
{
    // scores <= sort(scores)[int(s * n)]: sorted 1 2 3 3 4 5, s = 0.5 -> threshold 3 (index 3).
    const float scores[] = {5, 1, 3, 3, 2, 4};
    std::vector<float> scratch;
    std::vector<int64_t> pruned;
    const auto prunedBy = [&](double s, CountRule rule) {
        pruned.clear();
        applyCut(scores, 6, sparsityCut(scores, 6, s, rule, scratch), [&](int64_t i) { pruned.push_back(i); });
        return pruned;
    };
    QCOMPARE(prunedBy(0.5, CountRule::Exact), (std::vector<int64_t>{1, 2, 4}));        // 3, the first tie
    QCOMPARE(prunedBy(0.5, CountRule::Inclusive), (std::vector<int64_t>{1, 2, 3, 4})); // both ties
    QCOMPARE(prunedBy(0.2, CountRule::Inclusive), (std::vector<int64_t>{1, 4}));       // int(1.2) = 1 -> value 2
    QVERIFY(prunedBy(0.0, CountRule::Inclusive).empty());                              // nothing (see score_mask.h)
    QCOMPARE(prunedBy(1.0, CountRule::Inclusive).size(), size_t{6});

    // Random weights have no ties: one weight more than Exact per scope.
    const MatrixRM W = randomMatrix(64, 256, 31);
    for (double s : {0.1, 0.5, 0.7}) {
        QCOMPARE(magnitudeMask(W, s, PruneScope::Matrix, CountRule::Inclusive).prunedCount(),
                 magnitudeMask(W, s).prunedCount() + 1);
        const SparsityMask rows = magnitudeMask(W, s, PruneScope::Row, CountRule::Inclusive);
        for (int64_t r = 0; r < 64; ++r)
            QCOMPARE(256 - rows.keptInRow(r), static_cast<int64_t>(std::floor(s * 256 + 1e-9)) + 1);
    }
    // SparseGPT: one more per block of columns (3 blocks of 128, 128, 44 here).
    const Eigen::MatrixXf X = correlatedInputs(1024, 300, 32);
    const Eigen::MatrixXf H = X.transpose() * X;
    const MatrixRM W2 = randomMatrix(32, 300, 33);
    SparseGptOptions o;
    o.sparsity = 0.5;
    const int64_t exact = sparseGpt(W2, H, o).mask.prunedCount();
    o.countRule = CountRule::Inclusive;
    QCOMPARE(sparseGpt(W2, H, o).mask.prunedCount(), exact + 3);
    // Through pruneLayer.
    PruneConfig c;
    c.sparsity = 0.5;
    c.countRule = CountRule::Inclusive;
    QCOMPARE(pruneLayer(W, c).mask->prunedCount(), int64_t{64 * 256 / 2 + 1});
}

void TestPrune::nmMasksAreValid()
{
    // Hand example: of |1|, |-3|, |2|, |0.5| the 2:4 mask keeps -3 and 2.
    MatrixRM g(1, 4);
    g << 1.0f, -3.0f, 2.0f, 0.5f;
    const SparsityMask hand = magnitudeMaskNM(g, {2, 4});
    QVERIFY(!hand.kept(0, 0) && hand.kept(0, 1) && hand.kept(0, 2) && !hand.kept(0, 3));

    const MatrixRM W = randomMatrix(16, 70, 2); // 70 = 17 groups of 4 + 2; 8 groups of 8 + 6
    const Eigen::VectorXf norms = Eigen::VectorXf::LinSpaced(70, 3.0f, 0.2f);
    for (NMPattern nm : {NMPattern{2, 4}, NMPattern{4, 8}}) {
        for (const SparsityMask& mask : {magnitudeMaskNM(W, nm), wandaMaskNM(W, norms, nm)}) {
            QVERIFY(mask.isValidNM(nm));
            const MatrixRM P = applied(W, mask);
            for (Eigen::Index r = 0; r < 16; ++r)
                for (Eigen::Index c0 = 0; c0 < 70; c0 += nm.m) {
                    const int64_t width = std::min<int64_t>(nm.m, 70 - c0);
                    // Exactly m - n zeros in a full group; a short group keeps at most n.
                    QCOMPARE(zerosInGroup(P, r, c0, nm.m), std::max<int64_t>(0, width - nm.n));
                }
        }
        // Within each group magnitude N:M keeps the largest |w| (brute force).
        const SparsityMask mask = magnitudeMaskNM(W, nm);
        for (Eigen::Index r = 0; r < 16; ++r)
            for (Eigen::Index c0 = 0; c0 < 70; c0 += nm.m) {
                float maxPruned = 0.0f, minKept = INFINITY;
                for (Eigen::Index c = c0; c < std::min<Eigen::Index>(c0 + nm.m, 70); ++c) {
                    if (mask.kept(r, c))
                        minKept = std::min(minKept, std::fabs(W(r, c)));
                    else
                        maxPruned = std::max(maxPruned, std::fabs(W(r, c)));
                }
                QVERIFY(maxPruned <= minKept);
            }
    }
    const SparsityMask m24 = magnitudeMaskNM(W, {2, 4});
    QVERIFY(m24.isValidNM(4, 8));  // 2:4 implies 4:8
    QVERIFY(!m24.isValidNM(1, 4));
    QVERIFY(!SparsityMask(4, 8).isValidNM(2, 4));
    QCOMPARE(m24.sparsity(), (16.0 * (17 * 2 + 0)) / (16.0 * 70)); // the short group of 2 keeps both
    QVERIFY_THROWS_EXCEPTION(Error, magnitudeMaskNM(W, {4, 4}));
}

void TestPrune::wandaUsesTheProductMetric()
{
    // Row 0: |W| = [1.0, 0.6, 0.3, 0.2], ||X|| = [0.5, 2, 0.1, 4]
    //   products   [0.5, 1.2, 0.03, 0.8] -> Wanda prunes columns 2, 0
    //   magnitude prunes columns 3, 2.
    // Row 1: |W| = [0.1, 0.9, 0.5, 0.05]: products [0.05, 1.8, 0.05, 0.2] (a tie
    //   at 0.05: the lower column goes first, then the other) -> prunes 0, 2.
    MatrixRM W(2, 4);
    W << 1.0f, -0.6f, 0.3f, 0.2f, //
        -0.1f, 0.9f, 0.5f, -0.05f;
    Eigen::VectorXf norms(4);
    norms << 0.5f, 2.0f, 0.1f, 4.0f;
    // ||X_j|| = sqrt((X^T X)_jj)
    Eigen::MatrixXf G = Eigen::MatrixXf::Constant(4, 4, 0.5f);
    G.diagonal() << 0.25f, 4.0f, 1.0f, 16.0f;
    const Eigen::VectorXf fromGram = inputNormFromGram(G);
    QCOMPARE(fromGram[0], 0.5f);
    QCOMPARE(fromGram[1], 2.0f);
    QCOMPARE(fromGram[3], 4.0f);

    const MatrixRM S = wandaScores(W, norms);
    QCOMPARE(S(0, 1), 0.6f * 2.0f);
    QCOMPARE(S(1, 3), 0.05f * 4.0f);

    const SparsityMask wanda = wandaMask(W, norms, 0.5);
    const SparsityMask mag = magnitudeMask(W, 0.5, PruneScope::Row);
    const bool wandaKept[2][4] = {{false, true, false, true}, {false, true, false, true}};
    const bool magKept[2][4] = {{true, true, false, false}, {false, true, true, false}};
    for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 4; ++c) {
            QCOMPARE(wanda.kept(r, c), wandaKept[r][c]);
            QCOMPARE(mag.kept(r, c), magKept[r][c]);
        }
    // Only the column factor's direction matters: the RMS (norm / sqrt(n)) ranks alike.
    QVERIFY(wandaMask(W, norms / std::sqrt(2048.0f), 0.5) == wanda);
    QVERIFY_THROWS_EXCEPTION(Error, wandaMask(W, Eigen::VectorXf::Ones(3), 0.5));
}

void TestPrune::sparseGptBeatsMagnitudeAndWanda()
{
    const MatrixRM W = randomMatrix(64, 256, 3);
    const Eigen::MatrixXf X = correlatedInputs(2048, 256, 4);
    const Eigen::MatrixXf G = X.transpose() * X;
    const Eigen::MatrixXf H = 2.0f * G / 2048.0f; // the reference's scaling

    SparseGptOptions o;
    o.sparsity = 0.5;
    const SparseGptResult sg = sparseGpt(W, H, o);
    const MatrixRM mag = applied(W, magnitudeMask(W, 0.5));
    const MatrixRM wanda = applied(W, wandaMask(W, inputNormFromGram(G), 0.5));

    // Exactly half of each 64 x 128 block pruned, and pruned weights are 0.
    QCOMPARE(sg.mask.prunedCount(), int64_t(64 * 256 / 2));
    for (Eigen::Index r = 0; r < 64; ++r)
        for (Eigen::Index c = 0; c < 256; ++c)
            if (!sg.mask.kept(r, c))
                QCOMPARE(sg.weights(r, c), 0.0f);

    const double ref = (W.cast<double>() * X.cast<double>().transpose()).norm();
    const double eSg = outputError(W, sg.weights, X) / ref;
    const double eMag = outputError(W, mag, X) / ref;
    const double eWanda = outputError(W, wanda, X) / ref;
    qInfo("relative output error at 50%%: magnitude %.4f, wanda %.4f, sparsegpt %.4f", eMag, eWanda, eSg);
    QVERIFY2(eSg < kSparseGptMargin * std::min(eMag, eWanda), "SparseGPT does not clearly beat magnitude and Wanda");
    // The Gram-based output error of layer_error.h agrees with the direct one.
    QVERIFY(std::fabs(gramOutputError(W, sg.weights, G) - eSg) <= 1e-4 * eSg);
}

void TestPrune::sparseGptZeroSparsityKeepsW()
{
    const MatrixRM W = randomMatrix(16, 200, 5); // 200: a full block and a short one
    const Eigen::MatrixXf X = correlatedInputs(512, 200, 6);
    const SparseGptResult r = sparseGpt(W, X.transpose() * X, {.sparsity = 0.0});
    QCOMPARE(r.mask.prunedCount(), int64_t(0));
    QVERIFY(r.weights == W); // err = 0 exactly: no update
    QCOMPARE(r.loss, 0.0);
}

void TestPrune::sparseGptDeadInputs()
{
    // An input that never fires (zero row and column of H): its weights become
    // 0, as in the reference, and the rest is pruned as usual.
    const MatrixRM W = randomMatrix(8, 16, 7);
    Eigen::MatrixXf X = correlatedInputs(256, 16, 8);
    X.col(5).setZero();
    const SparseGptResult r = sparseGpt(W, X.transpose() * X, {.sparsity = 0.0});
    for (Eigen::Index i = 0; i < 8; ++i)
        QCOMPARE(r.weights(i, 5), 0.0f);
    QCOMPARE(r.weights(3, 4), W(3, 4));
}

void TestPrune::sparseGptMatchesBruteForceObs()
{
    // One row, 4 inputs, prune one weight (25 %), no damping. Brute force over
    // q: SparseGPT fixes the columns left of q, so the best reconstruction is
    //   w^_q = 0, w^_{<q} = w_{<q}, w^_{>q} = w_{>q} + H_{>q,>q}^-1 H_{>q,q} w_q
    // with loss e^T H e; SparseGPT must choose the q with the least loss and
    // produce exactly this w^.
    Eigen::Matrix4d Hd;
    Hd << 4.0, 1.2, 0.5, 0.2, //
        1.2, 3.0, 0.9, 0.4,   //
        0.5, 0.9, 2.5, 0.7,   //
        0.2, 0.4, 0.7, 2.0;
    const Eigen::MatrixXf H = Hd.cast<float>();
    for (const Eigen::Vector4d& w : {Eigen::Vector4d(0.05, 1.0, -0.8, 0.6), Eigen::Vector4d(1.0, -0.9, 0.07, 0.8),
                                    Eigen::Vector4d(0.7, 0.8, -0.9, 0.1)}) {
        double bestLoss = INFINITY;
        Eigen::Vector4d best;
        int bestQ = -1;
        for (int q = 0; q < 4; ++q) {
            Eigen::Vector4d what = w;
            what[q] = 0.0;
            const int rest = 3 - q;
            if (rest > 0) { // through a dynamic vector: GCC 12 flags AVX-512 loads on a Vector4d tail (-Warray-bounds)
                const Eigen::VectorXd shift = Hd.bottomRightCorner(rest, rest).ldlt().solve(Hd.block(q + 1, q, rest, 1));
                for (int i = 0; i < rest; ++i)
                    what[q + 1 + i] += shift[i] * w[q];
            }
            const Eigen::Vector4d e = w - what;
            const double loss = e.dot(Hd * e);
            if (loss < bestLoss) {
                bestLoss = loss;
                best = what;
                bestQ = q;
            }
        }
        MatrixRM W = w.transpose().cast<float>();
        const SparseGptResult r = sparseGpt(W, H, {.sparsity = 0.25, .percDamp = 0.0});
        QCOMPARE(r.mask.prunedCount(), int64_t(1));
        QVERIFY2(!r.mask.kept(0, bestQ), "SparseGPT pruned another weight than the brute-force OBS choice");
        for (int c = 0; c < 4; ++c)
            QVERIFY(std::fabs(r.weights(0, c) - best[c]) <= kObsTol);
        // Its reported loss is half the quadratic form, as the reference's.
        QVERIFY(std::fabs(r.loss - bestLoss / 2.0) <= kObsTol * bestLoss);
        if (bestQ == 0) {
            // The first column has nothing fixed before it: the classic OBS
            // update w - (w_q / [H^-1]_qq) H^-1[:, q] holds exactly.
            const Eigen::Matrix4d Hinv = Hd.inverse();
            const Eigen::Vector4d obs = w - (w[0] / Hinv(0, 0)) * Hinv.col(0);
            for (int c = 0; c < 4; ++c)
                QVERIFY(std::fabs(r.weights(0, c) - obs[c]) <= kObsTol);
        }
    }
}

void TestPrune::sparseGptFixedMaskMatchesJointObs()
{
    // Pruning columns {0, 1} of every row (a given mask) with nothing kept
    // before them is the joint OBS problem: w^_K = w_K + H_KK^-1 H_KP w_P.
    const MatrixRM W = randomMatrix(3, 6, 9);
    const Eigen::MatrixXf X = correlatedInputs(400, 6, 10);
    const Eigen::MatrixXf G = X.transpose() * X;
    SparsityMask mask(3, 6);
    for (int r = 0; r < 3; ++r) {
        mask.prune(r, 0);
        mask.prune(r, 1);
    }
    const SparseGptResult r = sparseGpt(W, G, {.percDamp = 0.0, .fixedMask = &mask});
    QVERIFY(r.mask == mask);
    const Eigen::MatrixXd Gd = G.cast<double>();
    const Eigen::MatrixXd HKK = Gd.bottomRightCorner(4, 4), HKP = Gd.bottomLeftCorner(4, 2);
    for (int row = 0; row < 3; ++row) {
        const Eigen::VectorXd w = W.row(row).transpose().cast<double>();
        const Eigen::VectorXd kept = w.tail(4) + HKK.ldlt().solve(HKP * w.head(2));
        QCOMPARE(r.weights(row, 0), 0.0f);
        QCOMPARE(r.weights(row, 1), 0.0f);
        for (int c = 0; c < 4; ++c)
            QVERIFY(std::fabs(r.weights(row, 2 + c) - kept[c]) <= kObsConditionedTol * std::max(1.0, std::fabs(kept[c])));
    }
}

void TestPrune::sparseGptMatchesPlainSequentialObs()
{
    // 5 blocks of 8 columns (the lazy updates between blocks matter), damping
    // 1 %, unstructured 50 % and 2:4, against the plain double version.
    const MatrixRM W = randomMatrix(4, 40, 20);
    const Eigen::MatrixXf X = correlatedInputs(300, 40, 21);
    const Eigen::MatrixXf G = X.transpose() * X;
    Eigen::MatrixXd Hd = G.cast<double>();
    Hd.diagonal().array() += 0.01 * Hd.diagonal().mean();
    const SparseGptResult un = sparseGpt(W, G, {.sparsity = 0.5, .blockSize = 8});
    const SparseGptResult nm = sparseGpt(W, G, {.nm = NMPattern{2, 4}, .blockSize = 8});
    const MatrixRM refUn = naiveSparseGpt(W, Hd, 8, 0.5, {0, 0});
    const MatrixRM refNm = naiveSparseGpt(W, Hd, 8, 0.0, {2, 4});
    for (const auto& [got, ref] : {std::pair{&un.weights, &refUn}, std::pair{&nm.weights, &refNm}}) {
        QVERIFY(SparsityMask::fromNonZeros(*got) == SparsityMask::fromNonZeros(*ref));
        for (Eigen::Index i = 0; i < W.size(); ++i) {
            const double a = got->data()[i], b = ref->data()[i];
            QVERIFY2(std::fabs(a - b) <= kObsConditionedTol * std::max(1.0, std::fabs(b)),
                     qPrintable(QString("weight %1: %2 vs the plain OBS %3").arg(i).arg(a).arg(b)));
        }
    }
}

void TestPrune::sparseGptNMIsValid()
{
    const MatrixRM W = randomMatrix(32, 256, 11);
    const Eigen::MatrixXf X = correlatedInputs(1024, 256, 12);
    const Eigen::MatrixXf G = X.transpose() * X;
    for (NMPattern nm : {NMPattern{2, 4}, NMPattern{4, 8}}) {
        const SparseGptResult r = sparseGpt(W, G, {.nm = nm});
        QVERIFY(r.mask.isValidNM(nm));
        QVERIFY(SparsityMask::fromNonZeros(r.weights).isValidNM(nm));
        for (Eigen::Index row = 0; row < 32; ++row)
            for (Eigen::Index c0 = 0; c0 < 256; c0 += nm.m)
                QCOMPARE(zerosInGroup(r.weights, row, c0, nm.m), int64_t(nm.m - nm.n));
        const double eSg = outputError(W, r.weights, X);
        const double eMag = outputError(W, applied(W, magnitudeMaskNM(W, nm)), X);
        const double eWanda = outputError(W, applied(W, wandaMaskNM(W, inputNormFromGram(G), nm)), X);
        qInfo("%d:%d output error: magnitude %.1f, wanda %.1f, sparsegpt %.1f", nm.n, nm.m, eMag, eWanda, eSg);
        QVERIFY(eSg < kSparseGptMargin * std::min(eMag, eWanda));
    }
    // A block size that is not a multiple of m is rounded down to one.
    const SparseGptResult odd = sparseGpt(W, G, {.nm = NMPattern{2, 4}, .blockSize = 30});
    QVERIFY(odd.mask.isValidNM(2, 4));
}

void TestPrune::sparseGptJointQuantization()
{
    // 50 % sparse + 4-bit per-row grid: every kept value is a grid point of its
    // row (scale * (q - zero)), pruned values are 0.
    const MatrixRM W = randomMatrix(16, 128, 13);
    const Eigen::MatrixXf X = correlatedInputs(1024, 128, 14);
    const Eigen::MatrixXf G = X.transpose() * X;
    const QuantGrid grid{4, false, 0};
    const GridParams params = computeGridParams(W, grid);
    const SparseGptResult joint = sparseGpt(W, G, {.sparsity = 0.5, .quantizer = gridQuantizer(W, grid)});
    const SparseGptResult pruneOnly = sparseGpt(W, G, {.sparsity = 0.5});
    QCOMPARE(joint.mask.prunedCount(), int64_t(16 * 128 / 2));
    for (Eigen::Index r = 0; r < 16; ++r)
        for (Eigen::Index c = 0; c < 128; ++c) {
            const float v = joint.weights(r, c);
            if (!joint.mask.kept(r, c)) {
                QCOMPARE(v, 0.0f);
                continue;
            }
            const float q = (v / params.scale(r, c)) + params.zero(r, c);
            QVERIFY2(std::fabs(q - std::nearbyint(q)) <= 1e-3f && q >= -1e-3f && q <= 15.001f, "off the grid");
        }
    // Quantizing costs output error, but the OBS updates keep it far below
    // rounding the pruned-only result afterwards.
    MatrixRM roundedAfter = pruneOnly.weights;
    const WeightQuantizer rtn = gridQuantizer(W, grid);
    for (Eigen::Index r = 0; r < 16; ++r)
        for (Eigen::Index c = 0; c < 128; ++c)
            roundedAfter(r, c) = rtn(roundedAfter(r, c), r, c);
    const double eJoint = outputError(W, joint.weights, X), eOnly = outputError(W, pruneOnly.weights, X);
    const double eAfter = outputError(W, roundedAfter, X);
    qInfo("output error: sparsegpt %.2f, sparsegpt + w4 jointly %.2f, sparsegpt then w4 RTN %.2f", eOnly, eJoint, eAfter);
    QVERIFY(eJoint > eOnly);
    QVERIFY(eJoint < eAfter);
}

void TestPrune::sparseGptScaleInvariantAndCancellable()
{
    const MatrixRM W = randomMatrix(8, 64, 15);
    const Eigen::MatrixXf X = correlatedInputs(256, 64, 16);
    const Eigen::MatrixXf G = X.transpose() * X;
    const SparseGptResult a = sparseGpt(W, G, {.sparsity = 0.5});
    const SparseGptResult b = sparseGpt(W, G * (2.0f / 256.0f), {.sparsity = 0.5});
    QVERIFY(a.mask == b.mask);
    QVERIFY((a.weights - b.weights).norm() <= kFloatRelTol * 10 * W.norm());

    CancelFlag cancel;
    cancel.cancel();
    try {
        sparseGpt(W, G, {}, &cancel);
        QFAIL("a cancelled SparseGPT returned");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::Cancelled);
    }
    QVERIFY_THROWS_EXCEPTION(Error, sparseGpt(W, Eigen::MatrixXf::Identity(63, 63), {}));
    // Not positive definite and no damping: a readable error, not NaNs.
    QVERIFY_THROWS_EXCEPTION(Error, sparseGpt(W, -Eigen::MatrixXf::Identity(64, 64), {.percDamp = 0.0}));
}

void TestPrune::structuredMlpHandExample()
{
    // d = 2, ff = 3. Neuron j touches gate[j, :], up[j, :], down[:, j].
    MlpWeights mlp;
    mlp.gate.resize(3, 2);
    mlp.up.resize(3, 2);
    mlp.down.resize(2, 3);
    mlp.gate << 1, -1, 0.5, 0.5, 2, 0;
    mlp.up << 1, 0, -0.5, 0.5, 1, 1;
    mlp.down << 3, 0.1, -1, 4, 0.1, 1;
    // Magnitude: neuron 0: 2 + 1 + 7 = 10; neuron 1: 1 + 1 + 0.2 = 2.2; neuron 2: 2 + 2 + 2 = 6.
    const std::vector<double> mag = mlpNeuronImportance(mlp, StructuredScore::Magnitude);
    QCOMPARE(mag[0], 10.0);
    QVERIFY(std::fabs(mag[1] - 2.2) < 1e-6);
    QCOMPARE(mag[2], 6.0);
    // Activation-aware: ||X_j|| * ||down[:, j]||: 0.1 * 5, 50 * sqrt(0.02), 1 * sqrt(2).
    Eigen::VectorXf xnorm(3);
    xnorm << 0.1f, 50.0f, 1.0f;
    const std::vector<double> act = mlpNeuronImportance(mlp, StructuredScore::ActivationAware, &xnorm);
    QVERIFY(std::fabs(act[0] - 0.5) < 1e-6);
    QVERIFY(std::fabs(act[1] - 50.0 * std::sqrt(0.02)) < 1e-5);
    QVERIFY(std::fabs(act[2] - std::sqrt(2.0)) < 1e-6);
    QCOMPARE(keepMostImportant(mag, 2), (std::vector<int64_t>{0, 2}));
    QCOMPARE(keepMostImportant(act, 2), (std::vector<int64_t>{1, 2}));
    QCOMPARE(keepMostImportant({1.0, 2.0, 2.0, 0.5}, 1), (std::vector<int64_t>{1})); // tie: the lower index
    QCOMPARE(keepCountFor(0.5, 172), int64_t(86));
    QVERIFY_THROWS_EXCEPTION(Error, mlpNeuronImportance(mlp, StructuredScore::ActivationAware));

    // The sliced MLP computes the full one with neuron 1's contribution removed.
    const MlpWeights small = sliceMlp(mlp, {0, 2});
    QCOMPARE(small.gate.rows(), Eigen::Index(2));
    QCOMPARE(small.down.cols(), Eigen::Index(2));
    const auto swiglu = [](const MlpWeights& m, const Eigen::Vector2f& x, int skip) {
        Eigen::VectorXf g = m.gate * x, u = m.up * x;
        Eigen::VectorXf h = (g.array() / (1.0f + (-g.array()).exp()) * u.array()).matrix();
        if (skip >= 0)
            h[skip] = 0.0f;
        return Eigen::VectorXf(m.down * h);
    };
    const Eigen::Vector2f x(0.7f, -1.3f);
    QVERIFY((swiglu(small, x, -1) - swiglu(mlp, x, 1)).norm() <= 1e-6f);
    QVERIFY_THROWS_EXCEPTION(Error, sliceMlp(mlp, {0, 3}));
}

void TestPrune::structuredAttentionGroups()
{
    // 4 query heads, 2 KV heads (groups {0, 1} and {2, 3}), head size 2, d = 3.
    AttentionWeights a;
    a.shape = {4, 2, 2};
    a.q = MatrixRM::Ones(8, 3);
    a.k = MatrixRM::Ones(4, 3);
    a.v = MatrixRM::Ones(4, 3);
    a.o = MatrixRM::Ones(3, 8);
    a.q.middleRows(4, 4) *= 2.0f; // group 1's query heads are twice as large
    a.k.middleRows(0, 2) *= 3.0f; // group 0's key head three times
    // Group 0: q 4*3 + o 4*3 + k 2*3*3 + v 2*3 = 12 + 12 + 18 + 6 = 48
    // Group 1: q 4*3*2 + o 12 + k 6 + v 6 = 48 -> tie; make group 1 win by o.
    a.o.col(7) *= 2.0f; // + 3
    const std::vector<double> mag = attentionGroupImportance(a, StructuredScore::Magnitude);
    QCOMPARE(mag[0], 48.0);
    QCOMPARE(mag[1], 51.0);
    // Activation-aware: sum over the group's o channels of ||X_c|| * ||o[:, c]||.
    Eigen::VectorXf xnorm = Eigen::VectorXf::Ones(8);
    xnorm.head(4) *= 10.0f;
    const std::vector<double> act = attentionGroupImportance(a, StructuredScore::ActivationAware, &xnorm);
    QVERIFY(std::fabs(act[0] - 40.0 * std::sqrt(3.0)) < 1e-4);
    QVERIFY(std::fabs(act[1] - 5.0 * std::sqrt(3.0)) < 1e-4); // 3 sqrt(3) + 2 sqrt(3)
    QCOMPARE(keepMostImportant(mag, 1), (std::vector<int64_t>{1}));
    QCOMPARE(keepMostImportant(act, 1), (std::vector<int64_t>{0}));

    // Keeping group 1: query heads 2, 3 (rows 4..7), KV head 1 (rows 2..3), o columns 4..7.
    const AttentionWeights s = sliceAttention(a, {1});
    QCOMPARE(s.shape.heads, int64_t(2));
    QCOMPARE(s.shape.kvHeads, int64_t(1));
    QCOMPARE(s.shape.headDim, int64_t(2));
    QVERIFY(s.q == a.q.middleRows(4, 4));
    QVERIFY(s.k == a.k.middleRows(2, 2));
    QVERIFY(s.v == a.v.middleRows(2, 2));
    QVERIFY(s.o == a.o.middleCols(4, 4));
    AttentionWeights bad = a;
    bad.shape.kvHeads = 3;
    QVERIFY_THROWS_EXCEPTION(Error, attentionGroupImportance(bad, StructuredScore::Magnitude));
}

void TestPrune::pruneLayerReport()
{
    MatrixRM W(2, 4);
    W << 1.0f, -2.0f, 3.0f, -4.0f, //
        0.1f, -0.2f, 0.3f, 0.4f;
    const CompressedLayer mag = pruneLayer(W, {.method = PruneMethod::Magnitude, .sparsity = 0.5});
    QCOMPARE(mag.method, std::string("magnitude 50%"));
    QCOMPARE(mag.paramsBefore, int64_t(8));
    QCOMPARE(mag.paramsAfter, int64_t(4));
    QCOMPARE(mag.bytesBefore, 32.0);      // 8 F32 values
    QCOMPARE(mag.bytesAfter, 16.0 + 1.0); // 4 values + an 8-bit bitmap
    // ||W - W^|| / ||W|| = sqrt(0.30) / sqrt(30.30)
    QVERIFY(std::fabs(mag.error.weightError - std::sqrt(0.30 / 30.30)) <= kFloatRelTol);
    QVERIFY(!mag.error.outputError);
    QVERIFY(mag.mask && mag.mask->prunedCount() == 4);

    // 2:4 in FP16: 4 kept values of 16 bits + 2 index bits each = 9 bytes.
    const CompressedLayer nm = pruneLayer(W, {.nm = NMPattern{2, 4}, .valueBits = 16});
    QCOMPARE(nm.method, std::string("magnitude 2:4"));
    QCOMPARE(nm.bytesAfter, 9.0);

    // With a Gram matrix the report carries the output error of layer_error.h.
    const Eigen::MatrixXf X = correlatedInputs(64, 4, 17);
    const Eigen::MatrixXf G = X.transpose() * X;
    LayerInputs in;
    in.gram = &G;
    for (PruneMethod m : {PruneMethod::Magnitude, PruneMethod::MagnitudeRow, PruneMethod::Wanda, PruneMethod::SparseGpt}) {
        const CompressedLayer r = pruneLayer(W, {.method = m, .sparsity = 0.5}, in);
        QVERIFY(r.error.outputError.has_value());
        QVERIFY(std::fabs(*r.error.outputError - gramOutputError(W, r.weights, G)) <= 1e-12);
        QCOMPARE(r.paramsAfter, int64_t(4));
    }
    // Joint SparseGPT + 4-bit asym per row: 4 kept codes of 4 bits, 2 rows x (16-bit scale + 4-bit zero), 8-bit bitmap.
    const CompressedLayer jq = pruneLayer(W, {.method = PruneMethod::SparseGpt, .quantize = QuantGrid{4, false, 0}}, in);
    QCOMPARE(jq.method, std::string("sparsegpt 50% + w4 asym row"));
    QCOMPARE(jq.bytesAfter, (4 * 4 + 2 * 20 + 8) / 8.0);

    QVERIFY_THROWS_EXCEPTION(Error, pruneLayer(W, {.method = PruneMethod::Wanda}));
    QVERIFY_THROWS_EXCEPTION(Error, pruneLayer(W, {.method = PruneMethod::SparseGpt}));
    QVERIFY_THROWS_EXCEPTION(Error, pruneLayer(W, {.quantize = QuantGrid{}}));
}

void TestPrune::errorVsSparsityCurve()
{
    const MatrixRM W = randomMatrix(32, 128, 18);
    const Eigen::MatrixXf X = correlatedInputs(512, 128, 19);
    const Eigen::MatrixXf G = X.transpose() * X;
    LayerInputs in;
    in.gram = &G;
    const std::vector<double> steps = defaultSparsitySteps();
    QCOMPARE(steps.size(), size_t(10));
    QCOMPARE(steps[9], 0.9);
    const std::vector<ErrorCurvePoint> mag = errorVsSparsity(W, {.method = PruneMethod::Magnitude}, steps, in);
    const std::vector<ErrorCurvePoint> sg = errorVsSparsity(W, {.method = PruneMethod::SparseGpt}, steps, in);
    QCOMPARE(mag.size(), steps.size());
    QCOMPARE(mag[0].weightError, 0.0);
    for (size_t i = 1; i < steps.size(); ++i) {
        QCOMPARE(mag[i].x, steps[i]);
        // Nested magnitude masks: the weight error can only grow.
        QVERIFY(mag[i].weightError > mag[i - 1].weightError);
        QCOMPARE(mag[i].paramsAfter, 32 * 128 - static_cast<int64_t>(std::floor(steps[i] * 32 * 128 + 1e-9)));
        QVERIFY(*sg[i].outputError < *mag[i].outputError);
    }
    // The same point as a single pruneLayer call.
    const CompressedLayer at5 = pruneLayer(W, {.method = PruneMethod::SparseGpt, .sparsity = 0.5}, in);
    QCOMPARE(*sg[5].outputError, *at5.error.outputError);

    CancelFlag cancel;
    cancel.cancel();
    QVERIFY_THROWS_EXCEPTION(Error, errorVsSparsity(W, {.method = PruneMethod::SparseGpt}, steps, in, &cancel));
}

QTEST_APPLESS_MAIN(TestPrune)
#include "test_prune.moc"
