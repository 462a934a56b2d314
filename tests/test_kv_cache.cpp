// KV-cache quantization (engine/kv_quant, the kv-cache step) against its
// definitions: the group quantizers by hand; KIVI's cache simulated as its
// paper describes (keys flushed R at a time, values one at a time) gives the
// engine's attention; the fast attention equals its scalar reference; a
// Session decoding token by token equals one batch pass; positions inside the
// full-precision window are exact; perplexity falls with bits; the cache's
// size at 4k positions by hand; a recipe with a rotation, GPTQ and a KV step
// replays bit-identically from the CLI; refusals.
#include "test_support.h"

#include "analysis/compression_preview.h"
#include "engine/kv_quant.h"
#include "engine/session.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <fstream>
#include <random>

using namespace ll;

namespace {

// Float rounding of the blocked GEMM attention against the double reference.
constexpr float kAttentionTol = 2e-5f;
// A Session's token-by-token decoding against one batch pass (different GEMM blockings).
constexpr float kDecodeTol = 1e-4f;
// Positions that read no quantized entry, against the model without KV quantization
// (the same values through another attention kernel: GEMM blocks instead of registers).
constexpr float kExactWindowTol = 5e-5f;
// Windows of 256 tokens of eval.txt for the perplexity comparisons (of 1222).
constexpr int64_t kWindows = 64;

KvCacheQuantization kivi(int bits, int64_t group, int64_t residual)
{
    KvCacheQuantization q;
    q.method = "kivi";
    q.keyBits = q.valueBits = bits;
    q.group = group;
    q.residual = residual;
    return q;
}

KvCacheQuantization perToken(int bits)
{
    KvCacheQuantization q;
    q.method = "llm-qat";
    q.keyBits = q.valueBits = bits;
    q.keysPerChannel = false;
    q.symmetric = true;
    q.group = 0;
    q.residual = 0;
    return q;
}

double perplexity(const KvCacheQuantization& q)
{
    Transformer t(*test::stories260K());
    t.setKvQuantization(q);
    ScoringOptions so;
    so.maxWindows = kWindows;
    return evaluatePerplexity(t, test::stories260KEval(), so).ppl;
}

} // namespace

class TestKvCache : public QObject {
    Q_OBJECT
private slots:
    void groupQuantizersByHand();
    void keysPerChannelKeepOutlierChannels();
    void readRuleByHand();
    void attentionEqualsKiviCacheSimulation();
    void fastAttentionMatchesReference();
    void decodingEqualsBatch();
    void fullPrecisionWindowIsExact();
    void perplexityFallsWithBits();
    void cacheBytesByHand();
    void stepAndPreview();
    void recipeReplaysBitIdenticallyFromCli();
    void refusals();
};

void TestKvCache::groupQuantizersByHand()
{
    // Min-max, 2 bits: s = (3.3 - 0) / 3 = 1.1; 1.0 -> code 1 (0.909), 2.0 -> 2 (1.818).
    float a[] = {0.0f, 1.0f, 2.0f, 3.3f};
    fakeQuantizeGroup(a, 4, 1, 2, false);
    const float wantA[] = {0.0f, 1.1f, 2.2f, 3.3f};
    for (int i = 0; i < 4; ++i)
        QVERIFY2(std::fabs(a[i] - wantA[i]) < 1e-6f, std::to_string(a[i]).c_str());
    // Symmetric 4 bits: codes -7..7 times absmax / 7 = 1; -2.6 -> -3, 0.4 -> 0, 7 -> 7 (stride 2: every other float).
    float b[] = {-2.6f, 99.0f, 0.4f, 99.0f, 7.0f, 99.0f};
    fakeQuantizeGroup(b, 3, 2, 4, true);
    QCOMPARE(b[0], -3.0f);
    QCOMPARE(b[2], 0.0f);
    QCOMPARE(b[4], 7.0f);
    QCOMPARE(b[1], 99.0f); // not in the group
    // A constant group is exact; so is a group of two under min-max (both are codes).
    float c[] = {5.5f, 5.5f, 5.5f};
    fakeQuantizeGroup(c, 3, 1, 2, false);
    QCOMPARE(c[1], 5.5f);
    float d[] = {-0.123f, 4.567f};
    fakeQuantizeGroup(d, 2, 1, 2, false);
    QCOMPARE(d[0], -0.123f);
    QVERIFY(std::fabs(d[1] - 4.567f) < 1e-6f);
}

// KIVI's observation: keys have outlier channels. Per channel, a channel of
// magnitude 100 does not widen the small channels' ranges; per token it does.
void TestKvCache::keysPerChannelKeepOutlierChannels()
{
    MatrixRM K = test::gaussian(64, 8, 3) * 0.1f;
    K.col(2).array() += 100.0f;
    MatrixRM byChannel(64, 8), byToken(64, 8);
    quantizeCachedKeys(kivi(2, 32, 32), {K.data(), 8}, 64, 8, byChannel.data(), 8);
    KvCacheQuantization tokens = kivi(2, 32, 32);
    tokens.keysPerChannel = false;
    quantizeCachedKeys(tokens, {K.data(), 8}, 64, 8, byToken.data(), 8);
    MatrixRM small = K, smallC = byChannel, smallT = byToken;
    for (MatrixRM* m : {&small, &smallC, &smallT})
        m->col(2).setZero();
    const double errChannel = (small - smallC).norm() / small.norm();
    const double errToken = (small - smallT).norm() / small.norm();
    qInfo("2-bit keys with an outlier channel: the other channels' error %.3f per channel, %.3f per token", errChannel,
          errToken);
    QVERIFY(errChannel < 0.5);
    QVERIFY(errToken > 0.9); // the small channels all round to the group's minimum
    // Per channel, groups of two positions are exact (min and max are codes); a partial last group is copied.
    MatrixRM exact(5, 8);
    quantizeCachedKeys(kivi(2, 2, 2), {K.data(), 8}, 5, 8, exact.data(), 8);
    QVERIFY((exact.topRows(4) - K.topRows(4)).cwiseAbs().maxCoeff() < 1e-4f);
    QVERIFY(exact.row(4) == K.row(4));
}

void TestKvCache::readRuleByHand()
{
    // R = 4: keys flushed 4 at a time after the step that fills the window; values one at a time, R + 1 full.
    const KvCacheQuantization q = kivi(2, 2, 4);
    const int64_t keys[] = {0, 0, 0, 0, 4, 4, 4, 4, 8, 8};
    const int64_t values[] = {0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
    for (int p = 0; p < 10; ++p) {
        QCOMPARE(q.quantizedKeyEnd(p), keys[p]);
        QCOMPARE(q.quantizedValueEnd(p), values[p]);
    }
    // Per token without a window: everything, the newest position included.
    QCOMPARE(perToken(4).quantizedKeyEnd(6), int64_t(7));
    QCOMPARE(perToken(4).quantizedValueEnd(6), int64_t(7));
}

// KIVI's cache as its paper describes it, step by step: a full-precision key
// buffer quantized and moved out (per channel, groups of G) whenever it holds
// R keys, a full-precision value buffer whose oldest value is quantized (per
// token, groups of G channels) once it holds more than R. Each decoding step attends over what the
// cache holds. The engine's one-pass attention must give the same outputs.
void TestKvCache::attentionEqualsKiviCacheSimulation()
{
    const int64_t hd = 16, n = 70, G = 4, R = 8;
    const KvCacheQuantization q = kivi(2, G, R);
    const MatrixRM Q = test::gaussian(n, hd, 1), K = test::gaussian(n, hd, 2), V = test::gaussian(n, hd, 3);
    const float scale = 1.0f / 4.0f;
    MatrixRM cacheK(n, hd), cacheV(n, hd); // what the cache holds at each position's slot
    int64_t keysQuantized = 0, valuesQuantized = 0;
    MatrixRM simulated(n, hd);
    for (int64_t p = 0; p < n; ++p) {
        cacheK.row(p) = K.row(p);
        cacheV.row(p) = V.row(p);
        // The query attends over the cache as it stands (the new entry in full precision).
        Eigen::VectorXd s(p + 1);
        for (int64_t j = 0; j <= p; ++j)
            s[j] = static_cast<double>(Q.row(p).cast<double>().dot(cacheK.row(j).cast<double>())) * scale;
        const Eigen::VectorXd e = (s.array() - s.maxCoeff()).exp();
        simulated.row(p) = ((e.transpose() * cacheV.topRows(p + 1).cast<double>()) / e.sum()).cast<float>();
        // Then the cache moves entries out of its full-precision buffers.
        if (p + 1 - keysQuantized == R) {
            for (int64_t g = keysQuantized; g < p + 1; g += G)
                for (int64_t c = 0; c < hd; ++c)
                    fakeQuantizeGroup(cacheK.data() + g * hd + c, G, hd, 2, false);
            keysQuantized = p + 1;
        }
        if (p + 1 - valuesQuantized > R) {
            for (int64_t c = 0; c < hd; c += G) // per token, groups of G channels
                fakeQuantizeGroup(cacheV.data() + valuesQuantized * hd + c, G, 1, 2, false);
            ++valuesQuantized;
        }
    }
    MatrixRM kq(n, hd), vq(n, hd), out(n, hd);
    quantizeCachedKeys(q, {K.data(), hd}, n, hd, kq.data(), hd);
    quantizeCachedValues(q, {V.data(), hd}, n, hd, vq.data(), hd);
    attendOneHeadQuantizedKv(q, {Q.data(), hd}, {K.data(), hd}, {kq.data(), hd}, {V.data(), hd}, {vq.data(), hd},
                             out.data(), hd, n, 0, hd, scale, 0);
    const float diff = (out - simulated).cwiseAbs().maxCoeff();
    qInfo("KIVI cache simulated step by step vs one pass: max |difference| %.2e", diff);
    QVERIFY(diff < kAttentionTol);
    // And it is not the unquantized attention.
    MatrixRM plain(n, hd);
    attendOneHead({Q.data(), hd}, {K.data(), hd}, {V.data(), hd}, plain.data(), hd, n, 0, hd, scale, 0);
    QVERIFY((plain - simulated).cwiseAbs().maxCoeff() > 100 * kAttentionTol);
}

void TestKvCache::fastAttentionMatchesReference()
{
    struct Case {
        int64_t hd, n, pos0, window;
        KvCacheQuantization q;
    };
    const Case cases[] = {{8, 100, 0, 0, kivi(2, 8, 16)},   {64, 150, 0, 0, kivi(4, 32, 64)},
                          {16, 40, 90, 0, kivi(3, 4, 32)},  {32, 130, 0, 48, kivi(2, 16, 32)},
                          {8, 77, 0, 0, perToken(4)},       {128, 65, 5, 0, perToken(2)}};
    for (const Case& c : cases) {
        const int64_t keys = c.pos0 + c.n;
        const MatrixRM Q = test::gaussian(c.n, c.hd, 7), K = test::gaussian(keys, c.hd, 8), V = test::gaussian(keys, c.hd, 9);
        MatrixRM kq(keys, c.hd), vq(keys, c.hd), fast(c.n, c.hd), ref(c.n, c.hd);
        quantizeCachedKeys(c.q, {K.data(), c.hd}, keys, c.hd, kq.data(), c.hd);
        quantizeCachedValues(c.q, {V.data(), c.hd}, keys, c.hd, vq.data(), c.hd);
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
        attendOneHeadQuantizedKv(c.q, {Q.data(), c.hd}, {K.data(), c.hd}, {kq.data(), c.hd}, {V.data(), c.hd},
                                 {vq.data(), c.hd}, fast.data(), c.hd, c.n, c.pos0, c.hd, scale, c.window);
        attendOneHeadQuantizedKvRef(c.q, {Q.data(), c.hd}, {K.data(), c.hd}, {kq.data(), c.hd}, {V.data(), c.hd},
                                    {vq.data(), c.hd}, ref.data(), c.hd, c.n, c.pos0, c.hd, scale, c.window);
        const float diff = (fast - ref).cwiseAbs().maxCoeff();
        QVERIFY2(diff < kAttentionTol, (c.q.label() + " hd " + std::to_string(c.hd) + ": " + std::to_string(diff)).c_str());
    }
}

void TestKvCache::decodingEqualsBatch()
{
    LL_REQUIRE_SHARED();
    Transformer t(*test::stories260K());
    t.setKvQuantization(kivi(2, 8, 16));
    std::vector<int32_t> ids(test::stories260KEval().begin(), test::stories260KEval().begin() + 60);
    const Eigen::MatrixXf batch = t.logits(ids);
    Session s(t);
    s.append(std::span<const int32_t>(ids.data(), 10)); // a prompt, then one token at a time
    float diff = 0.0f;
    for (size_t i = 10; i < ids.size(); ++i) {
        const Eigen::VectorXf l = s.appendToken(ids[i]);
        diff = std::max(diff, (l - batch.row(static_cast<Eigen::Index>(i)).transpose()).cwiseAbs().maxCoeff());
    }
    qInfo("KIVI K2V2 g8 r16 on stories260K: Session decoding vs one pass, max |logit difference| %.2e", diff);
    QVERIFY(diff < kDecodeTol);
    // The quantization matters at all: the batch differs from the plain model's.
    const Eigen::MatrixXf plain = Transformer(*test::stories260K()).logits(ids);
    QVERIFY((plain - batch).cwiseAbs().maxCoeff() > 0.05f);
}

// Queries before position R read no quantized key and no quantized value.
void TestKvCache::fullPrecisionWindowIsExact()
{
    LL_REQUIRE_SHARED();
    Transformer t(*test::stories260K());
    const int64_t R = 32;
    t.setKvQuantization(kivi(2, 8, R));
    std::vector<int32_t> ids(test::stories260KEval().begin(), test::stories260KEval().begin() + 96);
    const Eigen::MatrixXf q = t.logits(ids), plain = Transformer(*test::stories260K()).logits(ids);
    const float inside = (q.topRows(R) - plain.topRows(R)).cwiseAbs().maxCoeff();
    const float after = (q.bottomRows(ids.size() - R) - plain.bottomRows(ids.size() - R)).cwiseAbs().maxCoeff();
    qInfo("first %lld positions: max |logit difference| %.2e; after: %.2e", static_cast<long long>(R), inside, after);
    QVERIFY(inside < kExactWindowTol);
    QVERIFY(after > 0.05f);
}

void TestKvCache::perplexityFallsWithBits()
{
    LL_REQUIRE_SHARED();
    const double none = perplexity({});
    const double k8 = perplexity(kivi(8, 32, 32)), k4 = perplexity(kivi(4, 32, 32)), k2 = perplexity(kivi(2, 32, 32));
    const double t8 = perplexity(perToken(8)), t4 = perplexity(perToken(4)), t2 = perplexity(perToken(2));
    qInfo("stories260K perplexity, %lld windows: F32 %.4f; KIVI g32 r32 8/4/2 bits %.4f %.4f %.4f; per-token "
          "(LLM-QAT) 8/4/2 bits %.4f %.4f %.4f",
          static_cast<long long>(kWindows), none, k8, k4, k2, t8, t4, t2);
    QVERIFY(std::fabs(k8 - none) / none < 0.005);
    QVERIFY(std::fabs(t8 - none) / none < 0.01);
    QVERIFY(none < k4 && k4 < k2);
    QVERIFY(t8 < t4 && t4 < t2);
    QVERIFY(k2 < t2); // per-channel keys and the full-precision window at 2 bits
}

// Llama-2-7B's cache at 4096 positions (32 layers, 32 KV heads of 128).
void TestKvCache::cacheBytesByHand()
{
    ModelConfig c;
    c.layers = 32;
    c.heads = c.kvHeads = 32;
    c.headDim = 128;
    const double f16 = 32.0 * 2 * 4096 * 4096 * 2; // layers, K and V, positions, 4096 channels, 2 bytes
    QCOMPARE(kvCacheBytes(c, {}, 4096), f16);
    QCOMPARE(f16, 2147483648.0);
    // KIVI 2 bits, g32, R128: all 4096 keys flushed (4096 = 32 R): codes 4096·4096/4 bytes, per channel a
    // scale and a zero (2 + 2 bytes) per 32 positions. Values: 3968 quantized (codes + 4 bytes per 32
    // channels), the last 128 in F16.
    const double keys = 4096.0 * 4096 / 4 + 4096.0 / 32 * 4096 * 4;
    const double values = 3968.0 * 4096 / 4 + 3968.0 * 4096 / 32 * 4 + 128.0 * 4096 * 2;
    QCOMPARE(kvCacheBytes(c, kivi(2, 32, 128), 4096), 32 * (keys + values));
    qInfo("Llama-2-7B KV cache at 4k positions: F16 %.0f MiB, KIVI-2 %.0f MiB (%.2fx smaller)", f16 / 1048576,
          32 * (keys + values) / 1048576, f16 / (32 * (keys + values)));
    // Per token symmetric, 4 bits: codes plus one 2-byte scale per token and head.
    QCOMPARE(kvCacheBytes(c, perToken(4), 4096), 32.0 * 2 * (4096.0 * 4096 / 2 + 4096.0 * 32 * 2));
}

void TestKvCache::stepAndPreview()
{
    LL_REQUIRE_SHARED();
    const CompressionState s0 = CompressionState::initial(test::stories260K());
    const RecipeStep step = test::recipeStep({{"action", "kv-cache"}, {"method", "kivi"}, {"bits", 2}, {"group", 8}, {"residual", 16}});
    QCOMPARE(step.badge(), std::string("KIVI K2V2 g8 r16"));
    const StepOutcome out = applyStep(s0, step, CalibrationText{});
    QVERIFY(out.state.model == s0.model); // no weight changes
    QVERIFY(out.touched.empty());
    QCOMPARE(out.state.activations.kv.keyBits, 2);
    QVERIFY(!out.state.activations.quantizesInputs());
    QCOMPARE(out.state.toJson()["kv_cache"].get<std::string>(), std::string("KIVI K2V2 g8 r16"));
    // The engine built from the state simulates it.
    std::vector<int32_t> ids(test::stories260KEval().begin(), test::stories260KEval().begin() + 64);
    Transformer direct(*test::stories260K());
    direct.setKvQuantization(kivi(2, 8, 16));
    QVERIFY(out.state.makeEngine()->logits(ids) == direct.logits(ids));
    // The preview: block 1's keys, errors falling with bits, the cache's size.
    CalibrationText calib = loadCalibration(*test::stories260K(), RecipeCalibration{});
    const PreviewResult p = computePreview(s0, step, "blocks.1.attn.k.weight", calib, nullptr);
    QCOMPARE(p.curveLabel, std::string("bits"));
    QCOMPARE(p.curveSeries.first, std::string("key error"));
    QVERIFY(p.curve.size() >= 4);
    for (size_t i = 1; i < p.curve.size(); ++i) {
        QVERIFY(p.curve[i].weightError < p.curve[i - 1].weightError);
        QVERIFY(*p.curve[i].outputError < *p.curve[i - 1].outputError);
    }
    QCOMPARE(p.rows, std::min<int64_t>(256, static_cast<int64_t>(calib.tokens.size())));
    QVERIFY2(p.note.find("KV cache at 4096 positions") != std::string::npos, p.note.c_str());
}

// The acceptance: a recipe mixing a rotation, GPTQ and a KV
// quantization replays bit-identically from the CLI (the same perplexity to the
// last digit and the same exported bytes, twice).
void TestKvCache::recipeReplaysBitIdenticallyFromCli()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    const std::string recipe = dir + "/mixed.yaml";
    test::writeFile(recipe, "layerlab_recipe: 1\n"
                            "calibration: {text: " + test::sharedPath("data/tinystories/calib.txt") + ", windows: 4, context: 128}\n"
                            "steps:\n"
                            "  - {action: rotate, method: quarot, seed: 3}\n"
                            "  - {action: quantize, method: gptq, bits: 4, group: 32}\n"
                            "  - {action: kv-cache, method: kivi, bits: 2, group: 16, residual: 32}\n");
    std::string ppl[2], bytes[2];
    for (int run = 0; run < 2; ++run) {
        const std::string out = dir + "/out" + std::to_string(run) + ".gguf";
        const test::CliResult r = test::runCli({"apply", recipe, test::sharedPath("models/stories260K-hf"), "--eval",
                                                test::sharedPath("data/tinystories/eval.txt"), "--gguf", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(r.out);
        ppl[run] = j.at("ppl").dump();
        QCOMPARE(j.at("state").at("kv_cache").get<std::string>(), std::string("KIVI K2V2 g16 r32"));
        bytes[run] = test::readFile(out);
    }
    QCOMPARE(ppl[0], ppl[1]);
    QVERIFY(bytes[0] == bytes[1]);
    // The KV step counts: without it the perplexity differs.
    test::writeFile(recipe + ".nokv.yaml", "layerlab_recipe: 1\n"
                                           "calibration: {text: " + test::sharedPath("data/tinystories/calib.txt") + ", windows: 4, context: 128}\n"
                                           "steps:\n"
                                           "  - {action: rotate, method: quarot, seed: 3}\n"
                                           "  - {action: quantize, method: gptq, bits: 4, group: 32}\n");
    const test::CliResult plain = test::runCli({"apply", recipe + ".nokv.yaml", test::sharedPath("models/stories260K-hf"),
                                                "--eval", test::sharedPath("data/tinystories/eval.txt"), "--json"});
    QVERIFY2(plain.exitCode == 0, plain.err.c_str());
    const double withKv = std::stod(ppl[0]);
    const double without = nlohmann::json::parse(plain.out).at("ppl").get<double>();
    qInfo("rotate + GPTQ w4 g32: perplexity %.4f; with KIVI K2V2 g16 r32: %.4f", without, withKv);
    QVERIFY(withKv > without);
}

void TestKvCache::refusals()
{
    LL_REQUIRE_SHARED();
    const auto refused = [](const nlohmann::json& j, const std::string& words) {
        try {
            CompressionState s = CompressionState::initial(test::stories260K());
            s = applyStep(s, test::recipeStep(j), CalibrationText{}).state;
            s = applyStep(s, test::recipeStep(j), CalibrationText{}).state; // twice
            QFAIL(("accepted: " + j.dump()).c_str());
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find(words) != std::string::npos, e.what());
        }
    };
    refused({{"action", "kv-cache"}, {"method", "kivi"}, {"bits", 2}}, "already quantized");
    refused({{"action", "kv-cache"}, {"method", "kivi"}, {"group", 32}, {"residual", 48}}, "multiple of group");
    refused({{"action", "kv-cache"}, {"method", "kivi"}, {"layers", "blocks.0.*"}}, "takes no layers");
    refused({{"action", "kv-cache"}, {"method", "kivi"}, {"bits", 1}}, "bits");
    refused({{"action", "kv-cache"}, {"method", "kivi"}, {"group", 3}, {"residual", 3}}, "does not divide the head size");
    refused({{"action", "kv-cache"}, {"method", "nope"}}, "kivi or llm-qat");
    refused({{"action", "kv-cache"}, {"method", "llm-qat"}, {"group", 32}}, "has no parameter group");
}

QTEST_GUILESS_MAIN(TestKvCache)
#include "test_kv_cache.moc"
