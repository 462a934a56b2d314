// The quantization methods beyond RTN and GPTQ on small matrices: AWQ's scale
// and clip searches, SmoothQuant and the W8A8 simulation, LLM.int8's outlier
// columns, OWQ / SpQR outliers, LoRC, BCQ, the packed forms, the bit
// accounting (by hand), the common dispatcher and the error curves.

#include "test_support.h"

#include "methods/method_registry.h"
#include "quant/awq.h"
#include "quant/bcq.h"
#include "quant/int8_outlier.h"
#include "layer/layer_error.h"
#include "quant/lorc.h"
#include "quant/eora.h"
#include "lowrank/activation_aware.h"
#include "lowrank/svd.h"
#include "quant/outlier_aware.h"
#include "quant/quant_method.h"
#include "quant/quantized_layer.h"
#include "quant/rtn.h"
#include "quant/smoothquant.h"
#include "util/error.h"
#include "recipe/step_options.h"
#include "util/progress.h"

#include <QElapsedTimer>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <random>

using namespace ll;

namespace {

MatrixRM randomMatrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, float scale = 1.0f)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, scale);
    MatrixRM W(rows, cols);
    for (Eigen::Index i = 0; i < W.size(); ++i)
        W.data()[i] = n(rng);
    return W;
}

// Inputs (tokens, in) with a few outlier channels (x 20), as LLM activations have.
MatrixRM outlierInputs(Eigen::Index tokens, Eigen::Index in, unsigned seed, std::initializer_list<int> outliers = {3, 17})
{
    MatrixRM X = randomMatrix(tokens, in, seed);
    for (int c : outliers)
        X.col(c) *= 20.0f;
    return X;
}

struct Calib {
    MatrixRM X;
    Eigen::MatrixXf gram;
    LayerInputs in;
};

Calib calibFrom(MatrixRM X)
{
    Calib c;
    c.X = std::move(X);
    c.gram = (c.X.transpose() * c.X).eval();
    c.in.gram = &c.gram;
    c.in.meanAbs = c.X.cwiseAbs().colwise().mean().transpose();
    c.in.maxAbs = c.X.cwiseAbs().colwise().maxCoeff().transpose();
    c.in.samples = &c.X;
    return c;
}

double explicitOutputError(const MatrixRM& W, const MatrixRM& What, const MatrixRM& X)
{
    const Eigen::MatrixXd Xd = X.cast<double>();
    return (Xd * (W - What).cast<double>().transpose()).norm() / (Xd * W.cast<double>().transpose()).norm();
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

class TestQuantMethods : public QObject {
    Q_OBJECT

private slots:
    void symmetricRowsByHand();
    void awqScaleSearchBeatsRtn();
    void awqClipNeverWorse();
    void awqPackedAndJoint();
    void awqGroupThroughTheRegistry();
    void correctionSketchOnLargeLayers();
    void smoothQuantMigratesOutliers();
    void int8KeepsOutlierColumns();
    void owqAndSpqr();
    void lorcErrorFallsWithRank();
    void eoraIsTheOutputOptimalCorrection();
    void bcqErrorFallsWithBits();
    void bitsByHand();
    void dispatcherEveryMethod();
    void errorCurves();
    void invalidInputs();
};

// The output error of AWQ (scale search alone, then with clipping) is below
// RTN's on a layer whose inputs have outlier channels; alpha = 0 is RTN.
void TestQuantMethods::awqScaleSearchBeatsRtn()
{
    const MatrixRM W = randomMatrix(48, 64, 1);
    const Calib c = calibFrom(outlierInputs(512, 64, 2));
    for (QuantGrid grid : {QuantGrid{4, false, 32}, QuantGrid{3, false, 0}, QuantGrid{4, true, 0}}) {
        AwqOptions o;
        o.grid = grid;
        const MatrixRM* ws[] = {&W};
        const AwqScaleSearch search = awqSearchScale(ws, c.gram, c.in.meanAbs, o);
        QCOMPARE(search.losses.size(), size_t(20));
        // alpha = 0: s = 1 everywhere, the loss is RTN's.
        const MatrixRM rtn = rtnQuantize(W, grid).dequantized;
        const MatrixRM D = rtn - W;
        const double rtnLoss = (D * c.gram).cwiseProduct(D).cast<double>().sum();
        QVERIFY(std::fabs(search.losses[0] - rtnLoss) <= 1e-4 * rtnLoss);
        QVERIFY(search.alpha > 0.0);
        o.clip = false;
        const QuantizedLayer scaled = awqQuantize(W, c.in, o);
        o.clip = true;
        const QuantizedLayer clipped = awqQuantize(W, c.in, o);
        const double eRtn = gramOutputError(W, rtn, c.gram);
        qInfo("%s: output error RTN %.4f, AWQ scales (alpha %.2f) %.4f, + clip %.4f", grid.label().c_str(), eRtn,
              search.alpha, *scaled.error.outputError, *clipped.error.outputError);
        QVERIFY(*scaled.error.outputError < eRtn);
        QVERIFY(*clipped.error.outputError <= *scaled.error.outputError * (1.0 + 1e-6));
        // The Gram error is the explicit one.
        QVERIFY(std::fabs(*clipped.error.outputError - explicitOutputError(W, clipped.weights, c.X)) < 1e-4);
    }
}

// Each (row, group)'s chosen threshold gives an error no larger than no clipping (shrink 0 is a candidate).
void TestQuantMethods::awqClipNeverWorse()
{
    const MatrixRM W = randomMatrix(16, 64, 3);
    const Calib c = calibFrom(outlierInputs(256, 64, 4));
    AwqOptions o;
    o.grid = {3, false, 16};
    const Eigen::MatrixXf maxVal = awqSearchClip(W, c.gram, o);
    QCOMPARE(maxVal.rows(), Eigen::Index(16));
    QCOMPARE(maxVal.cols(), Eigen::Index(4));
    const MatrixRM clipped = applyClip(W, maxVal, 16);
    const MatrixRM q0 = rtnQuantize(W, o.grid).dequantized, q1 = rtnQuantize(clipped, o.grid).dequantized;
    for (int r = 0; r < 16; ++r)
        for (int g = 0; g < 4; ++g) {
            const Eigen::MatrixXf G = c.gram.block(g * 16, g * 16, 16, 16);
            const Eigen::VectorXf d0 = (q0.row(r).segment(g * 16, 16) - W.row(r).segment(g * 16, 16)).transpose();
            const Eigen::VectorXf d1 = (q1.row(r).segment(g * 16, 16) - W.row(r).segment(g * 16, 16)).transpose();
            QVERIFY(d1.dot(G * d1) <= d0.dot(G * d0) * (1.0f + 1e-5f));
            const float absMax = W.row(r).segment(g * 16, 16).cwiseAbs().maxCoeff();
            QVERIFY(maxVal(r, g) <= absMax && maxVal(r, g) >= 0.5f * absMax);
        }
}

void TestQuantMethods::awqPackedAndJoint()
{
    const MatrixRM Wq = randomMatrix(32, 64, 5), Wk = randomMatrix(16, 64, 6);
    const Calib c = calibFrom(outlierInputs(256, 64, 7));
    AwqOptions o;
    o.grid = {4, false, 32};
    const MatrixRM* ws[] = {&Wq, &Wk};
    const AwqScaleSearch joint = awqSearchScale(ws, c.gram, c.in.meanAbs, o);
    const QuantizedLayer q = awqQuantize(Wq, c.in, o, &joint.scales);
    QCOMPARE((q.packed.inputScale - joint.scales).cwiseAbs().maxCoeff(), 0.0f);
    // dequant(codes) / s is W^ (to float rounding of the division vs the multiplication by 1/s).
    const MatrixRM unpacked = dequantizePacked(q.packed, Wq.rows(), Wq.cols());
    QVERIFY((unpacked - q.weights).cwiseAbs().maxCoeff() <= 1e-6f * Wq.cwiseAbs().maxCoeff());
    // Folded scales cost nothing: the grid's bits only.
    QCOMPARE(q.bitsPerWeight, 4.0 + 20.0 / 32.0);
    // The normalised scales: sqrt(max * min) = 1.
    QVERIFY(std::fabs(joint.scales.maxCoeff() * joint.scales.minCoeff() - 1.0f) < 1e-4f);
}

// AWQ's registry entry quantizes the linears that share an input as
// llm-awq does: one scale search for q, k, v together, no clip search for q
// and k, the scale kept (16 bits per input channel) where it cannot fold;
// per-linear-scales and clip-qk turn each off. Each result is awqQuantize's
// for the same options, bit for bit.
void TestQuantMethods::awqGroupThroughTheRegistry()
{
    const MatrixRM Wq = randomMatrix(32, 64, 5), Wk = randomMatrix(16, 64, 6);
    MatrixRM Wv = randomMatrix(16, 64, 8);
    Wv.col(3) *= 30.0f; // v's weights are large where the inputs are: its own best scale differs
    const Calib c = calibFrom(outlierInputs(256, 64, 7));
    const MethodSpec& spec = requireMethodSpec(StepAction::Quantize, "awq");
    QVERIFY(spec.quantizeGroup != nullptr);
    LinearGroup g;
    g.weights = {&Wq, &Wk, &Wv};
    g.roles = {Role::AttnQ, Role::AttnK, Role::AttnV};
    const auto config = [](const nlohmann::json& extra) {
        nlohmann::json p = {{"method", "awq"}, {"bits", 4}, {"group", 32}};
        p.update(extra);
        return quantizeOptionsFrom(JsonParams(p)).config;
    };
    const QuantConfig c0 = config(nlohmann::json::object());
    AwqOptions o = awqOptions(c0);
    const AwqScaleSearch joint = awqSearchScale(g.weights, c.gram, c.in.meanAbs, o);
    const std::vector<QuantizedLayer> qs = spec.quantizeGroup(g, c0, c.in, nullptr);
    QCOMPARE(qs.size(), size_t(3));
    for (size_t i = 0; i < 3; ++i) {
        AwqOptions lo = o;
        lo.clip = i == 2; // v only
        const QuantizedLayer want = awqQuantize(*g.weights[i], c.in, lo, &joint.scales);
        QCOMPARE(qs[i].weights, want.weights);
        QCOMPARE(qs[i].packed.inputScale, joint.scales);
        QCOMPARE(qs[i].info.at("alpha"), joint.alpha);
        QCOMPARE(qs[i].bits.inputScales, 0.0);
    }
    // clip-qk clips q too; per-linear-scales gives q its own scale.
    const std::vector<QuantizedLayer> clipped = spec.quantizeGroup(g, config({{"clip-qk", true}}), c.in, nullptr);
    QCOMPARE(clipped[0].weights, awqQuantize(Wq, c.in, o, &joint.scales).weights);
    QVERIFY(clipped[0].weights != qs[0].weights);
    const std::vector<QuantizedLayer> alone = spec.quantizeGroup(g, config({{"per-linear-scales", true}}), c.in, nullptr);
    AwqOptions noClip = o;
    noClip.clip = false;
    QCOMPARE(alone[0].weights, awqQuantize(Wq, c.in, noClip).weights);
    QCOMPARE(alone[1].weights, awqQuantize(Wk, c.in, noClip).weights);
    QCOMPARE(alone[2].weights, awqQuantize(Wv, c.in, o).weights);
    qInfo("alpha: joint %.2f, v alone %.2f", joint.alpha, alone[2].info.count("alpha") ? alone[2].info.at("alpha") : -1.0);
    QVERIFY(alone[2].packed.inputScale != qs[2].packed.inputScale);
    // o's input scale cannot fold when v and o differ in width: it is kept, 16 bits a channel.
    g.scaleFolds = false;
    const QuantizedLayer kept = spec.quantizeGroup(g, c0, c.in, nullptr)[2];
    QCOMPARE(kept.bits.inputScales, 16.0 * 64);
    QVERIFY(!kept.packed.inputScaleFolded);
    QCOMPARE(kept.bitsPerWeight, qs[2].bitsPerWeight + 16.0 / 16.0);
}

// On layers wider than kSketchAbove the correction's factors come from a
// randomized sketch, not a full SVD: on a 3-bit RTN error (a flat spectrum,
// the hard case for a sketch) it takes at least 98 % of the exact truncated
// SVD's reduction of ||E - A B||² (measured: 98.7 % at rank 4, 99.7 % at 64),
// in a tenth of the time.
void TestQuantMethods::correctionSketchOnLargeLayers()
{
    const MatrixRM W = randomMatrix(384, 1536, 21);
    QuantConfig q;
    q.grid = {3, false, 128};
    const MatrixRM E = W - quantizeLayer(W, q).weights;
    for (int64_t rank : {4, 16, 64}) {
        QElapsedTimer t;
        t.start();
        const LowRankFactors exact = truncatedSvd(E, rank);
        const qint64 exactMs = t.restart();
        const LowRankFactors sketch = correctionFactors(E, rank);
        const qint64 sketchMs = t.elapsed();
        const double rExact = (E - exact.product()).squaredNorm(), rSketch = (E - sketch.product()).squaredNorm();
        const double gainExact = E.squaredNorm() - rExact, gainSketch = E.squaredNorm() - rSketch;
        qInfo("rank %2lld: residual exact %.6g, sketch %.6g (%.3f %% more; %.1f %% of the exact gain), %lld ms vs %lld ms",
              static_cast<long long>(rank), rExact, rSketch, 100.0 * (rSketch / rExact - 1.0), 100.0 * gainSketch / gainExact,
              static_cast<long long>(exactMs), static_cast<long long>(sketchMs));
        QVERIFY(gainSketch >= 0.98 * gainExact);
        QVERIFY(rSketch >= rExact * (1.0 - 1e-6)); // the exact one is optimal (Eckart-Young)
    }
}

// 4 bits: levels ±7, scale absmax / 7. Row [1, −0.6, 0.3, 0]: codes 7, −4
// (−4.2), 2 (2.1), 0; stored with zero 8: 15, 4, 10, 8.
void TestQuantMethods::symmetricRowsByHand()
{
    MatrixRM W(1, 4);
    W << 1.0f, -0.6f, 0.3f, 0.0f;
    const IntRows q = intRowAbsmax(W, 4);
    QCOMPARE(q.codes, (std::vector<int8_t>{7, -4, 2, 0}));
    QCOMPARE(q.scales(0), 1.0f / 7.0f);
    PackedQuant p;
    packIntRows(q, p);
    QCOMPARE(p.bits, 4);
    QCOMPARE(p.codes, (std::vector<uint8_t>{15, 4, 10, 8}));
    QVERIFY((dequantizePacked(p, 1, 4) - q.dequantized).cwiseAbs().maxCoeff() <= 1e-7f);
    QVERIFY_THROWS_EXCEPTION(Error, intRowAbsmax(W, 9));
}

// With outlier input channels, smoothing (alpha 0.5) lowers the W8A8 output
// error against plain W8A8; the weight side alone stays exact up to int8.
void TestQuantMethods::smoothQuantMigratesOutliers()
{
    const MatrixRM W = randomMatrix(64, 64, 8, 0.05f);
    const Calib c = calibFrom(outlierInputs(512, 64, 9, {1, 30, 50}));
    const IntRows plain = intRowAbsmax(W);
    const double ePlain = w8a8OutputError(W, plain.dequantized, nullptr, c.X, 8);
    SmoothQuantOptions o;
    const QuantizedLayer sq = smoothQuantLayer(W, c.in, o);
    const double eSmooth = sq.info.at("w8a8_output_error");
    qInfo("W8A8 output error: plain %.5f, SmoothQuant alpha 0.5 %.5f (weight-only %.5f)", ePlain, eSmooth,
          *sq.error.outputError);
    QVERIFY(eSmooth < ePlain);
    // s_j = max|x_j|^0.5 / max|W_j|^0.5
    const int j = 30;
    const float expected = std::sqrt(c.in.maxAbs(j)) / std::sqrt(W.col(j).cwiseAbs().maxCoeff());
    QVERIFY(std::fabs(sq.packed.inputScale(j) - expected) <= 1e-5f * expected);
    // Foldable: 8 bits + a 16-bit scale per row; explicit: + 16 bits per input channel.
    QCOMPARE(sq.bitsPerWeight, 8.0 + 16.0 / 64.0);
    o.foldable = false;
    QCOMPARE(smoothQuantLayer(W, c.in, o).bitsPerWeight, 8.0 + 16.0 / 64.0 + 16.0 / 64.0);
    // Packed: int8 codes (+128), row scales, the input scale.
    QVERIFY((dequantizePacked(sq.packed, 64, 64) - sq.weights).cwiseAbs().maxCoeff() <= 1e-6f);
    // Per-token activation quantization: exact on int8 multiples of the token's scale.
    MatrixRM x(1, 4);
    x << 127.0f, -63.5f, 1.0f, 0.0f;
    const MatrixRM xq = quantizeActivationsPerToken(x, 8);
    QCOMPARE(xq(0, 0), 127.0f);
    QCOMPARE(xq(0, 1), -64.0f); // -63.5 rounds half to even
    QCOMPARE(xq(0, 2), 1.0f);
}

void TestQuantMethods::int8KeepsOutlierColumns()
{
    MatrixRM W = randomMatrix(20, 32, 10);
    W.col(5) *= 50.0f; // a large column that would otherwise dominate every row's absmax
    Calib c = calibFrom(outlierInputs(128, 32, 11, {5, 9}));
    c.in.maxAbs(5) = 7.0f;
    c.in.maxAbs(9) = 6.0f; // at the threshold: an outlier
    for (Eigen::Index j = 0; j < 32; ++j)
        if (j != 5 && j != 9)
            c.in.maxAbs(j) = std::min(c.in.maxAbs(j), 5.9f);
    const QuantizedLayer q = int8OutlierQuantize(W, c.in);
    QCOMPARE(q.packed.denseColumns, (std::vector<int32_t>{5, 9}));
    for (int r = 0; r < 20; ++r) {
        QCOMPARE(q.weights(r, 5), W(r, 5));
        QCOMPARE(q.weights(r, 9), W(r, 9));
    }
    // The other weights: int8 per row without the outlier columns in the absmax.
    for (int r = 0; r < 20; ++r) {
        float absmax = 0.0f;
        for (int j = 0; j < 32; ++j)
            if (j != 5 && j != 9)
                absmax = std::max(absmax, std::fabs(W(r, j)));
        for (int j = 0; j < 32; ++j)
            if (j != 5 && j != 9)
                QVERIFY(std::fabs(q.weights(r, j) - W(r, j)) <= 0.5f * absmax / 127.0f * (1.0f + 1e-5f));
    }
    // Bits: 8 per int8 weight, 16 per row scale, 16 per kept value, 32 per kept column index.
    QCOMPARE(q.bits.total(), 8.0 * 20 * 30 + 16.0 * 20 + 16.0 * 20 * 2 + 32.0 * 2);
    QCOMPARE(q.bitsPerWeight, (8.0 * 20 * 30 + 16.0 * 20 + 16.0 * 20 * 2 + 32.0 * 2) / (20.0 * 32));
    QCOMPARE((dequantizePacked(q.packed, 20, 32) - q.weights).cwiseAbs().maxCoeff(), 0.0f);
    // Top-k instead of the threshold.
    Int8OutlierOptions o;
    o.topK = 1;
    QCOMPARE(int8OutlierQuantize(W, c.in, o).packed.denseColumns, (std::vector<int32_t>{5}));
    // The mixed-precision W8A8 simulation is recorded.
    QVERIFY(q.info.count("w8a8_output_error") == 1);
}

void TestQuantMethods::owqAndSpqr()
{
    const MatrixRM W = randomMatrix(32, 64, 12);
    const Calib c = calibFrom(outlierInputs(512, 64, 13));
    OutlierAwareOptions o;
    o.gptq.grid = {3, false, 0};
    o.columns = 2;
    const QuantizedLayer owq = owqQuantize(W, c.in, o);
    // The outlier input channels (3, 17) carry the most sensitivity.
    QCOMPARE(owq.packed.denseColumns, (std::vector<int32_t>{3, 17}));
    QCOMPARE(owq.bits.outliers, 16.0 * 32 * 2 + 32.0 * 2);
    QCOMPARE(owq.bits.codes, 3.0 * 32 * 62);
    const QuantizedLayer gptq = quantizeLayer(W, [] {
        QuantConfig q;
        q.method = QuantMethod::Gptq;
        q.grid = {3, false, 0};
        return q;
    }(), c.in);
    qInfo("w3 row output error: GPTQ %.4f, OWQ (2 columns) %.4f", *gptq.error.outputError, *owq.error.outputError);
    QVERIFY(*owq.error.outputError < *gptq.error.outputError);
    QVERIFY((dequantizePacked(owq.packed, 32, 64) - owq.weights).cwiseAbs().maxCoeff() == 0.0f);
    // RTN base: the kept columns are the original values exactly.
    o.useGptq = false;
    const QuantizedLayer owqRtn = owqQuantize(W, c.in, o);
    for (int r = 0; r < 32; ++r)
        QCOMPARE(owqRtn.weights(r, 3), W(r, 3));

    o.useGptq = true;
    o.fraction = 0.02;
    const QuantizedLayer spqr = spqrQuantize(W, c.in, o);
    const int64_t k = std::llround(0.02 * 32 * 64);
    QCOMPARE(int64_t(spqr.packed.outliers.size()), k);
    QCOMPARE(spqr.bits.outliers, 48.0 * static_cast<double>(k));
    QCOMPARE(spqr.bits.codes, 3.0 * static_cast<double>(32 * 64 - k));
    qInfo("w3 row output error: SpQR (%lld weights) %.4f", static_cast<long long>(k), *spqr.error.outputError);
    QVERIFY(*spqr.error.outputError < *gptq.error.outputError);
    QVERIFY((dequantizePacked(spqr.packed, 32, 64) - spqr.weights).cwiseAbs().maxCoeff() == 0.0f);
}

void TestQuantMethods::lorcErrorFallsWithRank()
{
    const MatrixRM W = randomMatrix(24, 40, 14);
    const Calib c = calibFrom(outlierInputs(200, 40, 15));
    QuantConfig q;
    q.grid = {3, false, 0};
    const QuantizedLayer base = quantizeLayer(W, q, c.in);
    double previous = base.error.weightError;
    for (int64_t r : {1, 2, 4, 8, 16}) {
        const QuantizedLayer l = lorcCorrect(W, base, r, c.in);
        qInfo("LoRC rank %2lld: weight error %.5f, %.3f bits/weight", static_cast<long long>(r), l.error.weightError, l.bitsPerWeight);
        QVERIFY(l.error.weightError < previous);
        previous = l.error.weightError;
        QCOMPARE(l.bits.lowRank, 16.0 * static_cast<double>(r) * (24 + 40));
        QCOMPARE(l.factorA.cols(), Eigen::Index(r));
        QVERIFY((dequantizePacked(l.packed, 24, 40, &l.factorA, &l.factorB) - l.weights).cwiseAbs().maxCoeff() <= 1e-5f);
    }
    // Full rank: the error is gone, but for the factors' rounding to F16
    // (2^-11 relative to each factor's values, E being a fifth of W at 3 bits).
    const double fullRank = lorcCorrect(W, base, 24, c.in).error.weightError;
    qInfo("LoRC full rank: weight error %.3g (base %.3g)", fullRank, base.error.weightError);
    QVERIFY(fullRank < 2e-3 * base.error.weightError);
    QCOMPARE(lorcCorrect(W, base, 0, c.in).error.weightError, base.error.weightError);
}

// EoRA's definition: the rank-r correction of E = W - W^ that is best for the
// outputs, ||(E - B A) X^T||. Checked against an independent route to the same
// optimum (SVD-LLM's Cholesky whitening of E, lowrank/activation_aware.h), and
// against LoRC (best for the weights), which it must never lose to in output
// error; on inputs with outlier channels it wins clearly.
void TestQuantMethods::eoraIsTheOutputOptimalCorrection()
{
    const MatrixRM W = randomMatrix(24, 40, 14);
    const Calib c = calibFrom(outlierInputs(200, 40, 15));
    QuantConfig q;
    q.grid = {3, false, 0};
    const QuantizedLayer base = quantizeLayer(W, q, c.in);
    const MatrixRM E = W - base.weights;
    for (int64_t r : {1, 2, 4, 8}) {
        const QuantizedLayer lorc = lorcCorrect(W, base, r, c.in);
        const QuantizedLayer eora = eoraCorrect(W, base, r, c.in);
        const double eLorc = explicitOutputError(W, lorc.weights, c.X), eEora = explicitOutputError(W, eora.weights, c.X);
        const MatrixRM whitened = whitenedSvd(E, c.gram, r).product();
        const double eWhitened = explicitOutputError(W, base.weights + whitened, c.X);
        qInfo("rank %lld: output error base %.5f, LoRC %.5f, EoRA %.5f (whitened SVD of E: %.5f)", static_cast<long long>(r),
              explicitOutputError(W, base.weights, c.X), eLorc, eEora, eWhitened);
        QVERIFY(eEora <= eLorc * (1.0 + 1e-5));
        QVERIFY(std::fabs(eEora - eWhitened) <= 1e-4 * eWhitened + 1e-7);
        QCOMPARE(eora.bits.lowRank, lorc.bits.lowRank);
        QCOMPARE(eora.factorA.cols(), Eigen::Index(r));
        QVERIFY(((eora.factorA * eora.factorB) - (eora.weights - base.weights)).cwiseAbs().maxCoeff() <= 1e-5f);
        if (r == 4)
            QVERIFY(eEora < 0.9 * eLorc);
    }
    QVERIFY(explicitOutputError(W, eoraCorrect(W, base, 24, c.in).weights, c.X) < 1e-4);
    QCOMPARE(eoraCorrect(W, base, 0, c.in).weights, base.weights);
    try {
        eoraCorrect(W, base, 2, LayerInputs{});
        QFAIL("EoRA without calibration inputs");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("calibration") != std::string::npos, e.what());
    }
    // Through the registry: eora-rank on any method, not with lorc-rank, reads calibration.
    const QuantizeModelOptions o = quantizeOptionsFrom(JsonParams({{"method", "rtn"}, {"bits", 3}, {"eora-rank", 4}}));
    QCOMPARE(o.config.eoraRank, int64_t(4));
    QCOMPARE(o.config.label(), std::string("rtn w3 asym row + eora r4"));
    QVERIFY(explicitOutputError(W, quantizeLayer(W, o.config, c.in).weights, c.X) < explicitOutputError(W, base.weights, c.X));
    try {
        quantizeOptionsFrom(JsonParams({{"method", "rtn"}, {"bits", 3}, {"eora-rank", 4}, {"lorc-rank", 4}}));
        QFAIL("EoRA and LoRC together");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("does not apply with") != std::string::npos, e.what());
    }
}

void TestQuantMethods::bcqErrorFallsWithBits()
{
    const MatrixRM W = randomMatrix(16, 64, 16);
    double previous = 1e9;
    for (int b = 1; b <= 6; ++b)
        for (int group : {0, 16}) {
            BcqOptions o;
            o.bits = b;
            o.groupSize = group;
            const QuantizedLayer l = bcqQuantize(W, o);
            if (group == 0) {
                qInfo("BCQ %d bits per row: weight error %.5f", b, l.error.weightError);
                QVERIFY(l.error.weightError < previous);
                previous = l.error.weightError;
            }
            QCOMPARE((dequantizePacked(l.packed, 16, 64) - l.weights).cwiseAbs().maxCoeff(), 0.0f);
            const double groups = 16.0 * (group ? 64 / group : 1);
            QCOMPARE(l.bits.total(), b * 16.0 * 64 + 16.0 * b * groups);
        }
    // One plane, no refinement possible beyond alpha: alpha = mean |w|, b = sign(w).
    const float x[4] = {1.0f, -3.0f, 2.0f, 0.0f};
    float alpha[1];
    uint8_t codes[4];
    BcqOptions o;
    o.bits = 1;
    bcqFitSlice(x, 4, o, alpha, codes);
    QCOMPARE(alpha[0], 1.5f);
    QCOMPARE(int(codes[0]), 1);
    QCOMPARE(int(codes[1]), 0);
    QCOMPARE(int(codes[3]), 1); // sign(0) = +1
    // Refinement never loses to greedy.
    o.bits = 3;
    o.iterations = 0;
    std::vector<float> a3(3);
    std::vector<uint8_t> c3(64);
    const double greedy = bcqFitSlice(&W(0, 0), 64, o, a3.data(), c3.data());
    o.iterations = 10;
    const double refined = bcqFitSlice(&W(0, 0), 64, o, a3.data(), c3.data());
    QVERIFY(refined <= greedy);
}

// Bits per weight of every layout, from the formulas in quantized_layer.h.
void TestQuantMethods::bitsByHand()
{
    const MatrixRM W = randomMatrix(8, 96, 17);
    const Calib c = calibFrom(outlierInputs(128, 96, 18));
    QuantConfig q;
    q.grid = {3, false, 32}; // 3 groups per row
    QCOMPARE(quantizeLayer(W, q, c.in).bitsPerWeight, 3.0 + (16.0 + 3.0) * 3 * 8 / (8.0 * 96));
    q.grid = {3, true, 0};
    QCOMPARE(quantizeLayer(W, q, c.in).bitsPerWeight, 3.0 + 16.0 / 96.0);
    q.grid = {4, false, -1}; // per tensor: one scale and zero
    QCOMPARE(quantizeLayer(W, q, c.in).bitsPerWeight, 4.0 + 20.0 / (8.0 * 96));
    q.grid = {4, false, 32};
    q.lorcRank = 2;
    QCOMPARE(quantizeLayer(W, q, c.in).bitsPerWeight, 4.0 + 20.0 / 32.0 + 16.0 * 2 * (8 + 96) / (8.0 * 96));
    q.lorcRank = 0;
    q.method = QuantMethod::Gptq;
    q.actOrder = true; // refit groups in act-order: a 32-bit g_idx per column
    QCOMPARE(quantizeLayer(W, q, c.in).bitsPerWeight, 4.0 + 20.0 / 32.0 + 32.0 / 8.0);
    q.staticGroups = true; // static groups keep the natural layout: no g_idx
    QCOMPARE(quantizeLayer(W, q, c.in).bitsPerWeight, 4.0 + 20.0 / 32.0);
    q = {};
    q.method = QuantMethod::Bcq;
    q.grid = {2, false, 32};
    QCOMPARE(quantizeLayer(W, q, c.in).bitsPerWeight, 2.0 + 16.0 * 2 / 32.0);
    q.method = QuantMethod::Nf4;
    // NF4's own exact count: 4 + 8 / 64 per block constant + per 256 constants a 32-bit scale + the 32-bit offset.
    const QuantizedLayer nf4 = quantizeLayer(W, q, c.in);
    QCOMPARE(nf4.bitsPerWeight, 4.0 + 8.0 / 64.0 + (32.0 + 32.0) / (8.0 * 96));
}

// Every method through the dispatcher: shapes, finite errors, packed forms.
void TestQuantMethods::dispatcherEveryMethod()
{
    const MatrixRM W = randomMatrix(16, 256, 19);
    const Calib c = calibFrom(outlierInputs(300, 256, 20));
    // Every method of the registry, with 4 bits (or its fixed width) and groups of 32 where it takes them.
    const auto specs = methodSpecsFor(StepAction::Quantize);
    QVERIFY(specs.size() >= 12);
    for (const MethodSpec* spec : specs) {
        QVERIFY2(spec->quantize != nullptr || spec->quantizeGroup != nullptr, spec->id.c_str());
        nlohmann::json params{{"method", spec->id}};
        if (const ParamSpec* bits = spec->param("bits"); bits && bits->min <= 4 && bits->max >= 4)
            params["bits"] = 4;
        if (spec->takes("group"))
            params["group"] = 32;
        const QuantConfig q = quantizeOptionsFrom(JsonParams(params)).config;
        QCOMPARE(q.method, spec->id);
        const QuantizedLayer l = quantizeLayer(W, q, c.in);
        QCOMPARE(l.weights.rows(), Eigen::Index(16));
        QVERIFY(l.error.outputError.has_value() && std::isfinite(*l.error.outputError));
        QVERIFY(l.bitsPerWeight > 3.9 && l.bitsPerWeight < 16.0);
        int64_t total = 0;
        for (int64_t n : l.error.errorStats.histogram.counts)
            total += n;
        QCOMPARE(total, int64_t(W.size()));
        if (l.packed.format != PackedQuant::Format::Dense)
            QVERIFY((dequantizePacked(l.packed, 16, 256) - l.weights).cwiseAbs().maxCoeff() <= 1e-5f);
        qInfo("%-28s %.4f bits/weight, weight error %.4f, output error %.4f", q.label().c_str(), l.bitsPerWeight,
              l.error.weightError, *l.error.outputError);
    }
    QVERIFY(!findMethodSpec(StepAction::Quantize, "gptq2"));
    QVERIFY(findMethodSpec(StepAction::Quantize, "gptq")->needsCalibration());
    QVERIFY(!findMethodSpec(StepAction::Quantize, "nf4")->needsCalibration());
    QVERIFY(!findMethodSpec(StepAction::Quantize, "bcq")->needsCalibration());
    QVERIFY(!findMethodSpec(StepAction::Quantize, "ggml")->needsCalibration()); // reads a Gram matrix when given
}

void TestQuantMethods::errorCurves()
{
    const MatrixRM W = randomMatrix(32, 128, 21);
    const Calib c = calibFrom(outlierInputs(256, 128, 22));
    QuantConfig q;
    const auto bits = quantErrorVsBits(W, q, defaultBitSteps(), c.in);
    QCOMPARE(bits.size(), size_t(7));
    for (size_t i = 1; i < bits.size(); ++i) {
        QVERIFY(bits[i].weightError < bits[i - 1].weightError);
        QVERIFY(*bits[i].outputError < *bits[i - 1].outputError);
        QVERIFY(bits[i].bytesAfter > bits[i - 1].bytesAfter);
    }
    q.method = QuantMethod::Gptq;
    q.grid.bits = 3;
    const auto groups = quantErrorVsGroupSize(W, q, defaultGroupSizeSteps(), c.in);
    QCOMPARE(groups.size(), size_t(4));
    QCOMPARE(groups.back().x, 0.0);
    for (size_t i = 1; i < groups.size(); ++i) {
        qInfo("GPTQ w3 g%g: output error %.4f", groups[i].x, *groups[i].outputError);
        QVERIFY(groups[i].bytesAfter <= groups[i - 1].bytesAfter); // g128 of 128 columns is per row
    }
    QVERIFY(*groups.front().outputError < *groups.back().outputError);
    CancelFlag cancel;
    cancel.cancel();
    expectError(ErrorCode::Cancelled, [&] { quantErrorVsBits(W, q, defaultBitSteps(), c.in, &cancel); });
}

void TestQuantMethods::invalidInputs()
{
    const MatrixRM W = randomMatrix(4, 8, 23);
    QuantConfig q;
    for (std::string_view m : {QuantMethod::Gptq, QuantMethod::Awq, QuantMethod::SmoothQuant, QuantMethod::Int8, QuantMethod::Owq,
                          QuantMethod::Spqr}) {
        q.method = m;
        expectError(ErrorCode::InvalidArgument, [&] { quantizeLayer(W, q, {}); });
    }
    q.method = QuantMethod::Ggml; // Q4_0 needs rows of 32 and has no fallback (k-quants fall back: test_ggml_quantize)
    q.ggmlType = DType::Q4_0;
    expectError(ErrorCode::InvalidArgument, [&] { quantizeLayer(W, q, {}); });
    q.method = QuantMethod::Rtn;
    q.lorcRank = 5; // above min(4, 8)
    expectError(ErrorCode::InvalidArgument, [&] { quantizeLayer(W, q, {}); });
    BcqOptions b;
    b.bits = 9;
    expectError(ErrorCode::InvalidArgument, [&] { bcqQuantize(W, b); });
    const Calib c = calibFrom(randomMatrix(16, 8, 24));
    const MatrixRM* ws[] = {&W};
    expectError(ErrorCode::InvalidArgument, [&] { smoothQuantScales(c.in.maxAbs, ws, 1.5); });
    expectError(ErrorCode::InvalidArgument, [&] { awqSearchScale(ws, c.gram, Eigen::VectorXf::Ones(3), AwqOptions{}); });
}

QTEST_APPLESS_MAIN(TestQuantMethods)
#include "test_quant_methods.moc"
