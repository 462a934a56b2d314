// RPTQ (quant/rptq, quantize method rptq): the clusters of a hand-made input
// by their ranges; one cluster is a per-tensor asymmetric grid and one
// cluster per channel a per-channel one, both by hand; more clusters lose
// less; on stories260K the clustered ranges beat one range per tensor at W8A4.
#include "test_support.h"

#include "methods/method_registry.h"
#include "quant/int8_outlier.h"
#include "quant/quant_method.h"
#include "quant/quantized_layer.h"
#include "quant/rptq.h"
#include "recipe/step_options.h"

#include <QtTest>

#include <set>

using namespace ll;

namespace {

constexpr float kHandTol = 1e-6f;

double clusteredError(const MatrixRM& X, int clusters, int bits)
{
    const RptqClusters k = rptqClusters(X, clusters, bits);
    MatrixRM Q = X;
    quantizeClusteredRows(Q, k.low, k.step, bits);
    return (Q - X).norm() / X.norm();
}

} // namespace

class TestRptq : public QObject {
    Q_OBJECT
private slots:
    void clustersFollowTheRanges();
    void oneClusterAndOnePerChannelByHand();
    void moreClustersLoseLess();
    void groupSharesTheClustersW4();
    void stories260K();
};

// Channels 0, 1 in [0, 1] and [0, 1.1]; 2, 3 in [−50, 50] and [−48, 52].
void TestRptq::clustersFollowTheRanges()
{
    MatrixRM X(2, 4);
    X << 0, 0, -50, -48, 1, 1.1f, 50, 52;
    const RptqClusters k = rptqClusters(X, 2, 8);
    QCOMPARE(k.clusters, 2);
    QCOMPARE(k.cluster[0], k.cluster[1]);
    QCOMPARE(k.cluster[2], k.cluster[3]);
    QVERIFY(k.cluster[0] != k.cluster[2]);
    // Each cluster's range is the union of its channels' ranges: [0, 1.1] and [−50, 52].
    QVERIFY(std::fabs(k.low[0]) < kHandTol && std::fabs(k.step[1] - 1.1f / 255) < kHandTol);
    QVERIFY(std::fabs(k.low[3] + 50) < kHandTol && std::fabs(k.step[2] - 102.0f / 255) < 1e-5f);
}

void TestRptq::oneClusterAndOnePerChannelByHand()
{
    // One cluster, 2 bits: range [−1, 2], Δ = 1: −0.4 → 0, 0.6 → 1, 1.4 → 1, 2 → 2.
    MatrixRM X(2, 2);
    X << -1, 0.6f, 1.4f, 2;
    RptqClusters k = rptqClusters(X, 1, 2);
    MatrixRM Q = X;
    Q(0, 0) = -0.4f;
    quantizeClusteredRows(Q, k.low, k.step, 2);
    QCOMPARE(Q, (MatrixRM(2, 2) << 0, 1, 1, 2).finished());
    // One cluster per channel: channel 0 on [−1, 1.4] (Δ 0.8), channel 1 on [0.6, 2] (Δ 0.4667).
    k = rptqClusters(X, 2, 2);
    QVERIFY(std::fabs(k.step[0] - 0.8f) < kHandTol && std::fabs(k.step[1] - 1.4f / 3) < kHandTol);
    Q = X;
    quantizeClusteredRows(Q, k.low, k.step, 2);
    QVERIFY((Q - X).cwiseAbs().maxCoeff() < kHandTol); // each channel's ends are on its grid
}

void TestRptq::moreClustersLoseLess()
{
    MatrixRM X = test::gaussian(256, 32, 21);
    for (Eigen::Index j = 0; j < 32; ++j)
        X.col(j) *= 1.0f + static_cast<float>(j % 8) * static_cast<float>(j % 8); // ranges from 1 to 50
    const double one = clusteredError(X, 1, 4), eight = clusteredError(X, 8, 4), all = clusteredError(X, 32, 4);
    qInfo("4-bit relative error: %.4f one range, %.4f 8 clusters, %.4f one per channel", one, eight, all);
    QVERIFY(eight < 0.5 * one);
    QVERIFY(all <= eight);
}

// The step's group hook (q, k, v read one input): one clustering, the same
// input grid for every reader, equal to rptqClusters on the samples; 4-bit
// weights symmetric per row (at most 15 levels a row).
void TestRptq::groupSharesTheClustersW4()
{
    const MatrixRM X = test::gaussian(128, 16, 31);
    const MatrixRM W1 = test::gaussian(8, 16, 32), W2 = test::gaussian(5, 16, 33);
    const QuantConfig c =
        quantizeOptionsFrom(JsonParams({{"method", "rptq"}, {"bits", 4}, {"act-bits", 8}, {"clusters", 4}})).config;
    LayerInputs in;
    in.samples = &X;
    LinearGroup g;
    g.weights = {&W1, &W2};
    g.roles = {Role::AttnQ, Role::AttnK};
    const std::vector<const MatrixRM*>& ws = g.weights;
    const std::vector<QuantizedLayer> qs = requireMethodSpec(StepAction::Quantize, "rptq").quantizeGroup(g, c, in, nullptr);
    QCOMPARE(qs.size(), size_t(2));
    const RptqClusters k = rptqClusters(X, 4, 8);
    for (size_t i = 0; i < 2; ++i) {
        QCOMPARE(qs[i].packed.inputLow, k.low);
        QCOMPARE(qs[i].packed.inputStep, k.step);
        QCOMPARE(qs[i].packed.bits, 4);
        QCOMPARE(qs[i].weights, intRowAbsmax(*ws[i], 4).dequantized);
        for (Eigen::Index r = 0; r < qs[i].weights.rows(); ++r) {
            const std::set<float> levels(qs[i].weights.row(r).data(), qs[i].weights.row(r).data() + 16);
            QVERIFY(levels.size() <= 15);
        }
    }
}

void TestRptq::stories260K()
{
    LL_REQUIRE_SHARED();
    const double k1 = test::stories260KStepPerplexity("{action: quantize, method: rptq, act-bits: 4, clusters: 1}");
    const double k8 = test::stories260KStepPerplexity("{action: quantize, method: rptq, act-bits: 4, clusters: 8}");
    qInfo("stories260K W8A4, 64 windows: one range per tensor %.4f, 8 clusters %.4f", k1, k8);
    QVERIFY(k8 < k1);
}

QTEST_GUILESS_MAIN(TestRptq)
#include "test_rptq.moc"
