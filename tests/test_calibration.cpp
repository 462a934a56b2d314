// Calibration capture: the streaming statistics of every linear input against
// the stored activations (brute force in double), independence from the thread
// count and batching, the early stop after the last block of interest, the
// sequential mode seeing the caller's replaced blocks, cancellation, progress.
// Runs on the generated demo model: no shared data needed.
#include "test_support.h"

#include "calib/calibration.h"
#include "util/threads.h"
#include "engine/transformer.h"
#include "model/demo_model.h"
#include "model/model.h"
#include "util/error.h"
#include "util/progress.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <random>

using namespace ll;

namespace {

// The demo model's inputs over 6 windows of 32 tokens: float products summed
// in double by both sides, so only the order of the additions differs.
constexpr double kGramRelTol = 1e-6;
constexpr int64_t kContext = 32;
constexpr int64_t kWindows = 6;

DemoModelShape smallShape()
{
    DemoModelShape s;
    s.hidden = 64;
    s.intermediate = 96;
    s.layers = 3;
    s.heads = 4;
    s.kvHeads = 2;
    s.vocab = 512;
    return s;
}

std::vector<int32_t> randomTokens(int64_t n, uint32_t seed)
{
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int32_t> d(0, 511);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids)
        id = d(gen);
    return ids;
}

// Keeps every observed row (tests only: the opposite of what calibration does).
class StoringObserver : public LinearInputObserver {
public:
    void linearInput(int block, Role role, const ConstMatrixRef& x) override
    {
        std::lock_guard lock(mutex);
        auto& rows = seen[{block, static_cast<int>(role)}];
        for (Eigen::Index r = 0; r < x.rows(); ++r)
            rows.push_back(x.row(r).cast<double>());
    }
    std::mutex mutex;
    std::map<std::pair<int, int>, std::vector<Eigen::RowVectorXd>> seen;
};

double relDiff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b)
{
    return (a - b).norm() / std::max(b.norm(), 1e-300);
}

const InputStats* findStats(const std::vector<InputStats>& v, int block, Role role)
{
    for (const InputStats& s : v)
        if (s.block == block && s.role == role)
            return &s;
    return nullptr;
}

bool sameStats(const InputStats& a, const InputStats& b, double tol)
{
    return a.tokens == b.tokens && relDiff(a.gram(), b.gram()) <= tol && relDiff(a.sumAbs, b.sumAbs) <= tol
           && relDiff(a.sumSquares, b.sumSquares) <= tol && a.maxAbs == b.maxAbs;
}

class RecordingProgress : public Progress {
public:
    void report(double fraction, std::string_view) override { fractions.push_back(fraction); }
    std::vector<double> fractions;
};


} // namespace

class TestCalibration : public QObject {
    Q_OBJECT

private slots:
    void init() { setComputeThreads(0); }
    void cleanupTestCase() { setComputeThreads(0); }
    void calibrationWindowsFollowTheProtocol();
    void inputRoles();
    void statisticsMatchBruteForce();
    void independentOfThreadsAndBatching();
    void earlyStopGivesTheSameStatistics();
    void sequentialModeSeesReplacedBlocks();
    void activationsPastTheBudgetSpillToAFile();
    void cancellation();
    void progressIsMonotone();
    void badArguments();
};

void TestCalibration::calibrationWindowsFollowTheProtocol()
{
    const std::vector<int32_t> text = randomTokens(64 * 256 + 100, 1);
    CalibrationOptions o; // 64 windows of 256: the protocol's 16384 tokens
    const std::vector<int32_t> w = calibrationWindows(text, o);
    QCOMPARE(w.size(), size_t{16384});
    QVERIFY(std::equal(w.begin(), w.end(), text.begin()));
    o.windows = 65;
    try {
        calibrationWindows(text, o);
        QFAIL("a text of 64 windows accepted for 65");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
        QVERIFY2(std::string(e.what()).find("64 windows") != std::string::npos, e.what());
    }
}

void TestCalibration::inputRoles()
{
    QCOMPARE(inputRoleOf(Role::AttnQ), Role::AttnQ);
    QCOMPARE(inputRoleOf(Role::AttnK), Role::AttnQ);
    QCOMPARE(inputRoleOf(Role::AttnV), Role::AttnQ);
    QCOMPARE(inputRoleOf(Role::AttnO), Role::AttnO);
    QCOMPARE(inputRoleOf(Role::MlpGate), Role::MlpUp);
    QCOMPARE(inputRoleOf(Role::MlpUp), Role::MlpUp);
    QCOMPARE(inputRoleOf(Role::MlpDown), Role::MlpDown);
}

void TestCalibration::statisticsMatchBruteForce()
{
    const auto model = makeDemoModel(7, smallShape());
    const Transformer t(*model);
    const std::vector<int32_t> ids = randomTokens(kContext * kWindows, 2);
    CalibrationOptions o;
    o.context = kContext;
    o.windows = kWindows;
    const std::vector<InputStats> stats = collectInputStats(t, ids, o, 0, 2, true);
    QCOMPARE(stats.size(), size_t{12}); // 3 blocks x (q/k/v, o, gate/up, down)

    StoringObserver brute;
    (void)t.hiddenBatch(ids, kContext, &brute);
    for (const InputStats& s : stats) {
        const auto& rows = brute.seen.at({s.block, static_cast<int>(s.role)});
        const Eigen::Index in = rows.front().size();
        QCOMPARE(s.tokens, static_cast<int64_t>(rows.size()));
        QCOMPARE(s.tokens, kContext * kWindows);
        QCOMPARE(s.features(), static_cast<int64_t>(in));
        Eigen::MatrixXd G = Eigen::MatrixXd::Zero(in, in);
        Eigen::VectorXd sumAbs = Eigen::VectorXd::Zero(in), sumSq = Eigen::VectorXd::Zero(in);
        Eigen::VectorXd maxAbs = Eigen::VectorXd::Zero(in);
        for (const auto& r : rows) {
            G += r.transpose() * r;
            sumAbs += r.cwiseAbs().transpose();
            sumSq += r.cwiseAbs2().transpose();
            maxAbs = maxAbs.cwiseMax(r.cwiseAbs().transpose());
        }
        QVERIFY2(relDiff(s.gram(), G) < kGramRelTol, qPrintable(QString::number(relDiff(s.gram(), G))));
        QVERIFY(s.gram().isApprox(s.gram().transpose(), 0.0)); // exactly symmetric
        QVERIFY(relDiff(s.sumAbs, sumAbs) < 1e-12);
        QVERIFY(relDiff(s.sumSquares, sumSq) < 1e-12);
        QVERIFY(relDiff(s.maxAbs.cast<double>(), maxAbs) == 0.0);
        // The derived statistics.
        const double n = static_cast<double>(rows.size());
        QVERIFY(relDiff(s.meanAbs().cast<double>(), sumAbs / n) < 1e-6);
        QVERIFY(relDiff(s.rms().cast<double>(), (sumSq / n).cwiseSqrt()) < 1e-6);
        QVERIFY(relDiff(s.l2Norm().cast<double>(), sumSq.cwiseSqrt()) < 1e-6);
        QVERIFY(relDiff(s.gramFloat().cast<double>(), G) < kGramRelTol);
    }
}

void TestCalibration::independentOfThreadsAndBatching()
{
    const auto model = makeDemoModel(8, smallShape());
    const Transformer t(*model);
    const std::vector<int32_t> ids = randomTokens(kContext * kWindows, 3);
    CalibrationOptions o;
    o.context = kContext;
    o.windows = kWindows;
    const std::vector<InputStats> ref = collectInputStats(t, ids, o, 0, 2, true);
    for (int threads : {1, 2}) {
        for (int64_t perBatch : {int64_t{1}, int64_t{4}, kWindows}) {
            setComputeThreads(threads);
            o.windowsPerBatch = perBatch;
            const std::vector<InputStats> s = collectInputStats(t, ids, o, 0, 2, true);
            QCOMPARE(s.size(), ref.size());
            for (size_t i = 0; i < s.size(); ++i) {
                QCOMPARE(s[i].block, ref[i].block);
                QCOMPARE(s[i].role, ref[i].role);
                // Whole-window float partials added in double: the same Gram matrix
                // whatever the grouping (up to the order of exact additions).
                QVERIFY2(sameStats(s[i], ref[i], 1e-13), qPrintable(QString("threads %1, windows per batch %2")
                                                                        .arg(threads).arg(perBatch)));
            }
        }
    }
}

void TestCalibration::earlyStopGivesTheSameStatistics()
{
    const auto model = makeDemoModel(9, smallShape());
    const Transformer t(*model);
    const std::vector<int32_t> ids = randomTokens(kContext * kWindows, 4);
    CalibrationOptions o;
    o.context = kContext;
    o.windows = kWindows;
    const std::vector<InputStats> all = collectInputStats(t, ids, o, 0, 2, true);
    for (int block = 0; block < 3; ++block) {
        const std::vector<InputStats> one = collectInputStats(t, ids, o, block, block, true);
        QCOMPARE(one.size(), size_t{4});
        for (const InputStats& s : one) {
            QCOMPARE(s.block, block);
            QVERIFY(sameStats(s, *findStats(all, block, s.role), 1e-13));
        }
    }
    // The forward pass really ends after the last block of interest.
    InputStatsCollector collector(0, 0, kContext, true, 3);
    bool stopped = false;
    try {
        (void)t.hiddenBatch(ids, kContext, &collector);
    } catch (const Error&) {
    } catch (...) {
        stopped = true;
    }
    QVERIFY(stopped);
    QCOMPARE(collector.take().size(), size_t{4});
    // Without the Gram matrix: the channel statistics only.
    const std::vector<InputStats> light = collectInputStats(t, ids, o, 1, 1, false);
    QVERIFY(!light.front().hasGram());
    QVERIFY(relDiff(light.front().sumSquares, findStats(all, 1, light.front().role)->sumSquares) < 1e-13);
}

void TestCalibration::sequentialModeSeesReplacedBlocks()
{
    const auto model = makeDemoModel(10, smallShape());
    const std::vector<int32_t> ids = randomTokens(kContext * kWindows, 5);
    BlockStatsOptions bo;
    bo.calibration.context = kContext;
    bo.calibration.windows = kWindows;
    const Role linears[] = {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpGate, Role::MlpUp, Role::MlpDown};
    // "Compression" = halving every linear of the block.
    const auto compress = [&](Transformer& t, int block) {
        for (Role r : linears)
            t.setLinearWeight(block, r, t.linear(block, r).dense() * 0.5f);
    };

    // Expected: block l's statistics on a model whose blocks < l are halved.
    std::vector<std::vector<InputStats>> expected;
    {
        Transformer t(*model);
        for (int b = 0; b < 3; ++b) {
            expected.push_back(collectInputStats(t, ids, bo.calibration, b, b, true));
            compress(t, b);
        }
    }
    const Transformer original(*model);
    const std::vector<InputStats> originalStats = collectInputStats(original, ids, bo.calibration, 0, 2, true);

    Transformer t(*model);
    const int blocks[] = {0, 1, 2};
    std::vector<int> order;
    forEachBlockStats(t, ids, blocks, bo, [&](int block, std::vector<InputStats>& stats, Progress*) {
        order.push_back(block);
        QCOMPARE(stats.size(), size_t{4});
        for (const InputStats& s : stats)
            QVERIFY(sameStats(s, *findStats(expected[static_cast<size_t>(block)], block, s.role), 1e-13));
        compress(t, block);
    });
    QCOMPARE(order, (std::vector<int>{0, 1, 2}));
    // Block 2 really differs from the original model's (the check above is not vacuous).
    QVERIFY(relDiff(findStats(expected[2], 2, Role::AttnQ)->gram(), findStats(originalStats, 2, Role::AttnQ)->gram()) > 1e-3);

    // One-shot: every block sees the original model (the callback leaves it alone).
    bo.mode = CalibrationMode::OneShot;
    Transformer u(*model);
    forEachBlockStats(u, ids, blocks, bo, [&](int block, std::vector<InputStats>& stats, Progress*) {
        for (const InputStats& s : stats)
            QVERIFY(sameStats(s, *findStats(originalStats, block, s.role), 1e-13));
    });
}

void TestCalibration::activationsPastTheBudgetSpillToAFile()
{
    const auto model = makeDemoModel(11, smallShape());
    Transformer t(*model);
    const std::vector<int32_t> ids = randomTokens(kContext * kWindows, 6);
    BlockStatsOptions bo;
    bo.calibration.context = kContext;
    bo.calibration.windows = kWindows;
    bo.mode = CalibrationMode::OneShot;
    const int blocks[] = {0, 2}; // a block may be left out
    std::map<int, std::vector<InputStats>> big, small;
    forEachBlockStats(t, ids, blocks, bo, [&](int b, std::vector<InputStats>& s, Progress*) { big[b] = s; });
    bo.activationBudgetBytes = 1; // the hidden states go to a temporary file
    forEachBlockStats(t, ids, blocks, bo, [&](int b, std::vector<InputStats>& s, Progress*) { small[b] = s; });
    QCOMPARE(big.size(), size_t{2});
    QVERIFY(big.count(0) && big.count(2));
    for (const auto& [b, stats] : big)
        for (size_t i = 0; i < stats.size(); ++i)
            QVERIFY(sameStats(stats[i], small[b][i], 1e-13));
    QVERIFY(blockStatsBytes(t, 0, true) > blockStatsBytes(t, 0, false));
    // 64^2 (q/k/v) + 64^2 (o) + 64^2 (gate/up) + 96^2 (down) doubles + channel vectors
    QCOMPARE(blockStatsBytes(t, 0, true), uint64_t{(3 * 64 * 65 / 2 + 96 * 97 / 2) * 8 + (3 * 64 + 96) * 20});
}

void TestCalibration::cancellation()
{
    const auto model = makeDemoModel(12, smallShape());
    Transformer t(*model);
    const std::vector<int32_t> ids = randomTokens(kContext * kWindows, 7);
    CalibrationOptions o;
    o.context = kContext;
    o.windows = kWindows;
    CancelFlag cancelled;
    cancelled.cancel();
    try {
        collectInputStats(t, ids, o, 0, 2, true, &cancelled);
        QFAIL("not cancelled");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::Cancelled);
    }
    // Cancelled after a few reports: the blocks' callbacks stop.
    BlockStatsOptions bo;
    bo.calibration = o;
    bo.calibration.windowsPerBatch = 1;
    test::CancelAfter later(3);
    const int blocks[] = {0, 1, 2};
    int calls = 0;
    try {
        forEachBlockStats(t, ids, blocks, bo, [&](int, std::vector<InputStats>&, Progress*) { ++calls; }, &later);
        QFAIL("not cancelled");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::Cancelled);
    }
    QVERIFY(calls < 3);
}

void TestCalibration::progressIsMonotone()
{
    const auto model = makeDemoModel(13, smallShape());
    Transformer t(*model);
    const std::vector<int32_t> ids = randomTokens(kContext * kWindows, 8);
    BlockStatsOptions bo;
    bo.calibration.context = kContext;
    bo.calibration.windows = kWindows;
    bo.calibration.windowsPerBatch = 2;
    RecordingProgress p;
    const int blocks[] = {0, 1, 2};
    forEachBlockStats(t, ids, blocks, bo, [&](int, std::vector<InputStats>&, Progress* sub) { sub->report(0.5, "x"); }, &p);
    QVERIFY(p.fractions.size() > 6);
    for (size_t i = 1; i < p.fractions.size(); ++i)
        QVERIFY(p.fractions[i] >= p.fractions[i - 1] - 1e-12);
    QVERIFY(p.fractions.front() >= 0.0);
    QCOMPARE(p.fractions.back(), 1.0);
}

void TestCalibration::badArguments()
{
    const auto model = makeDemoModel(14, smallShape());
    Transformer t(*model);
    const std::vector<int32_t> ids = randomTokens(kContext * 2, 9);
    CalibrationOptions o;
    o.context = kContext;
    const auto expectInvalid = [](auto&& fn) {
        try {
            fn();
            return false;
        } catch (const Error& e) {
            return e.code() == ErrorCode::InvalidArgument;
        }
    };
    QVERIFY(expectInvalid([&] { collectInputStats(t, ids, o, 0, 3, true); }));      // no block 3
    QVERIFY(expectInvalid([&] { collectInputStats(t, ids, o, 2, 1, true); }));      // empty range
    QVERIFY(expectInvalid([&] { collectInputStats(t, std::span(ids).first(40), o, 0, 1, true); })); // not whole windows
    BlockStatsOptions bo;
    bo.calibration = o;
    const int unordered[] = {1, 0};
    QVERIFY(expectInvalid([&] { forEachBlockStats(t, ids, unordered, bo, [](int, std::vector<InputStats>&, Progress*) {}); }));
}

QTEST_APPLESS_MAIN(TestCalibration)
#include "test_calibration.moc"
