// Model-level pruning and factorization on stories260K under the reference
// protocol (shared/reference/stories260K_compression.json): perplexity on
// eval.txt (windows of 256) after magnitude / Wanda / SparseGPT pruning and
// truncated SVD against the reference numbers, activation-aware SVD against
// plain SVD, structured MLP neuron removal (shapes, parameters, forward pass,
// Hugging Face round trip), target selection, per-layer results, the
// sequential vs one-shot statistics, cancellation and the CLI.
//
// Every full evaluation costs a few seconds on two busy cores, so CTest runs a
// representative subset of the reference table; LAYERLAB_FULL_TABLE=1 runs all
// twelve rows (and ASVD).
#include "test_support.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/hf_export.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "pipeline/model_compression.h"
#include "util/error.h"
#include "util/json_util.h"
#include "util/progress.h"

#include <QElapsedTimer>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

using namespace ll;

namespace {

// Tolerances on the perplexity relative to the reference (the task's acceptance bounds).
constexpr double kMagnitudeTol = 0.01;
constexpr double kWandaTol = 0.02;
constexpr double kSparseGptTol = 0.03; // or lower
constexpr double kSvdTol = 0.01;
// "Clearly below" plain SVD at rank ratio 0.5: SVD-LLM under half of it, ASVD 5 % below.
constexpr double kSvdLlmFactor = 0.5;
constexpr double kAsvdFactor = 0.95;
constexpr int64_t kTargets = 35;               // 5 blocks x q, k, v, o, gate, up, down
constexpr int64_t kStoriesParameters = 292800;

bool fullTable()
{
    const char* v = std::getenv("LAYERLAB_FULL_TABLE");
    return v && std::string(v) == "1";
}

struct Stories {
    std::unique_ptr<Model> model;
    std::vector<int32_t> evalTokens, calibTokens;
    nlohmann::json reference;
};

Stories& stories()
{
    static Stories s;
    if (!s.model) {
        s.model = openModel(test::sharedPath("models/stories260K-hf"));
        s.evalTokens = tokenizeTextFile(*s.model, test::sharedPath("data/tinystories/eval.txt"));
        s.calibTokens = tokenizeTextFile(*s.model, test::sharedPath("data/tinystories/calib.txt"));
        s.reference = readJsonFile(test::sharedPath("reference/stories260K_compression.json"));
    }
    return s;
}

double referencePpl(const std::string& run)
{
    return stories().reference.at("runs").at(run).at("ppl").get<double>();
}

PerplexityResult evaluate(const Model& m)
{
    const Transformer t(m);
    ScoringOptions o;
    o.context = 256;
    return evaluatePerplexity(t, stories().evalTokens, o);
}

// One row of the reference table run through the model-level API.
ModelCompressionResult runRow(const std::string& run)
{
    Stories& s = stories();
    const nlohmann::json& row = s.reference.at("runs").at(run);
    const std::string method = row.at("method");
    if (method == "svd") {
        ModelFactorizeOptions o;
        o.method = LowRankMethod::Svd;
        o.rankRatio = row.at("rank_frac").get<double>();
        return factorizeModel(*s.model, o);
    }
    ModelPruneOptions o;
    o.layer.method = method == "magnitude" ? PruneMethod::Magnitude
                     : method == "wanda"   ? PruneMethod::Wanda
                                           : PruneMethod::SparseGpt;
    if (row.contains("nm"))
        o.layer.nm = NMPattern{2, 4};
    else
        o.layer.sparsity = row.at("sparsity").get<double>();
    const bool calib = method != "magnitude";
    return pruneModel(*s.model, o, calib ? std::span<const int32_t>(s.calibTokens) : std::span<const int32_t>{});
}

int64_t parameterCountOfTargets(const Model& m)
{
    int64_t n = 0;
    for (const LogicalTensor* t : selectTargets(m, ""))
        n += t->elements();
    return n;
}

bool expectError(ErrorCode code, const std::function<void()>& fn)
{
    try {
        fn();
        return false;
    } catch (const Error& e) {
        return e.code() == code;
    }
}

} // namespace

class TestPruneModel : public QObject {
    Q_OBJECT

private slots:
    void targetSelection();
    void referenceTable_data();
    void referenceTable();
    void countRuleOfTheReference();
    void perLayerResults();
    void sequentialDiffersFromOneShot();
    void activationAwareSvdBeatsSvd();
    void energyChoosesRanksPerLayer();
    void structuredNeurons();
    void structuredHeads();
    void cancellationAndMissingCalibration();
    void cliPruneAndFactorize();
};

void TestPruneModel::targetSelection()
{
    LL_REQUIRE_SHARED();
    const Model& m = *stories().model;
    const auto all = selectTargets(m, "");
    QCOMPARE(static_cast<int64_t>(all.size()), kTargets);
    QCOMPARE(all.front()->logicalName, std::string("blocks.0.attn.q.weight"));
    QCOMPARE(all.back()->logicalName, std::string("blocks.4.mlp.down.weight"));
    // Anything matching outside the blocks' linears (embedding, norms, head) is never a target.
    QCOMPARE(static_cast<int64_t>(selectTargets(m, ".*").size()), kTargets);
    const auto downs = selectTargets(m, R"(mlp\.down)");
    QCOMPARE(downs.size(), size_t{5});
    for (const LogicalTensor* t : downs)
        QCOMPARE(t->role, Role::MlpDown);
    QCOMPARE(selectTargets(m, R"(^blocks\.0\.)").size(), size_t{7});
    QVERIFY(expectError(ErrorCode::InvalidArgument, [&] { selectTargets(m, "(unclosed"); }));
    QVERIFY(expectError(ErrorCode::InvalidArgument, [&] { selectTargets(m, "lm_head"); }));
}

void TestPruneModel::referenceTable_data()
{
    QTest::addColumn<QString>("run");
    QTest::addColumn<double>("tolerance");
    QTest::addColumn<bool>("lowerIsFine");
    QTest::addColumn<bool>("inCTest");
    QTest::newRow("magnitude_50") << "magnitude_50" << kMagnitudeTol << false << false;
    QTest::newRow("magnitude_70") << "magnitude_70" << kMagnitudeTol << false << true; // the count rule shows here
    QTest::newRow("magnitude_2of4") << "magnitude_2of4" << kMagnitudeTol << false << false;
    QTest::newRow("wanda_50") << "wanda_50" << kWandaTol << false << false;
    QTest::newRow("wanda_70") << "wanda_70" << kWandaTol << false << false;
    QTest::newRow("wanda_2of4") << "wanda_2of4" << kWandaTol << false << false; // CTest: through the CLI
    QTest::newRow("sparsegpt_50") << "sparsegpt_50" << kSparseGptTol << true << true;
    QTest::newRow("sparsegpt_70") << "sparsegpt_70" << kSparseGptTol << true << false;
    QTest::newRow("sparsegpt_2of4") << "sparsegpt_2of4" << kSparseGptTol << true << false;
    QTest::newRow("svd_rank75") << "svd_rank75" << kSvdTol << false << false;
    QTest::newRow("svd_rank50") << "svd_rank50" << kSvdTol << false << true;
    QTest::newRow("svd_rank25") << "svd_rank25" << kSvdTol << false << false;
}

void TestPruneModel::referenceTable()
{
    LL_REQUIRE_SHARED();
    QFETCH(QString, run);
    QFETCH(double, tolerance);
    QFETCH(bool, lowerIsFine);
    QFETCH(bool, inCTest);
    if (!inCTest && !fullTable())
        QSKIP("not in the CTest subset (LAYERLAB_FULL_TABLE=1 runs the whole table)");
    QElapsedTimer timer;
    timer.start();
    const ModelCompressionResult r = runRow(run.toStdString());
    const qint64 compressMs = timer.restart();
    const PerplexityResult p = evaluate(*r.model);
    const double ref = referencePpl(run.toStdString());
    const double rel = p.ppl / ref - 1.0;
    qInfo("%-16s ppl %.4f  reference %.4f  (%+.5f %%)  %s statistics, %lld -> %lld parameters, compress %lld ms, eval %lld ms",
          qPrintable(run), p.ppl, ref, 100.0 * rel, r.statsMode.c_str(), static_cast<long long>(r.parametersBefore),
          static_cast<long long>(r.parametersAfter), static_cast<long long>(compressMs),
          static_cast<long long>(timer.elapsed()));
    QCOMPARE(p.tokensScored, int64_t{311610});
    QVERIFY2(lowerIsFine ? rel <= tolerance : std::abs(rel) <= tolerance,
             qPrintable(QString("%1: ppl %2 vs reference %3").arg(run).arg(p.ppl).arg(ref)));
}

void TestPruneModel::countRuleOfTheReference()
{
    LL_REQUIRE_SHARED();
    const Model& m = *stories().model;
    ModelPruneOptions o;
    o.layer.method = PruneMethod::Magnitude;
    o.layer.sparsity = 0.7;
    const ModelCompressionResult inclusive = pruneModel(m, o); // the default: the reference's `<=` rule
    o.countRule = CountRule::Exact;
    const ModelCompressionResult exact = pruneModel(m, o);
    // floor(0.7 n) pruned per matrix vs one more (these matrices have no tied magnitudes there).
    int64_t expectedExact = m.parameterCount();
    for (const LogicalTensor* t : selectTargets(m, ""))
        expectedExact -= static_cast<int64_t>(std::floor(0.7 * static_cast<double>(t->elements()) + 1e-9));
    QCOMPARE(exact.parametersAfter, expectedExact);
    QCOMPARE(inclusive.parametersAfter, expectedExact - kTargets);
    // On the perplexity that one weight per matrix is worth 2 % (386.6 exact vs 395.06 inclusive
    // = the reference); the table checks the inclusive number, LAYERLAB_FULL_TABLE=1 shows both.
    if (fullTable()) {
        const double pe = evaluate(*exact.model).ppl;
        qInfo("magnitude 70 %%: exact count %.4f, reference rule %.4f (reference %.4f)", pe,
              evaluate(*inclusive.model).ppl, referencePpl("magnitude_70"));
    }
}

void TestPruneModel::perLayerResults()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ModelPruneOptions o;
    o.layer.method = PruneMethod::Wanda;
    o.layer.sparsity = 0.5;
    const ModelCompressionResult r = pruneModel(*s.model, o, s.calibTokens);
    QCOMPARE(r.statsMode, std::string("sequential"));
    QCOMPARE(r.calibrationTokens, int64_t{16384});
    QCOMPARE(static_cast<int64_t>(r.layers.size()), kTargets);
    QCOMPARE(r.method, std::string("wanda 50%"));
    int64_t pruned = 0;
    for (const LayerOutcome& l : r.layers) {
        QCOMPARE(l.method, std::string("wanda 50%"));
        QCOMPARE(l.paramsBefore, l.rows * l.cols);
        // Every row has an even width here: exactly half of each row goes.
        QCOMPARE(l.sparsity, 0.5);
        QVERIFY(l.weightError > 0.0 && l.weightError < 1.0);
        QVERIFY(l.outputError.has_value());
        QVERIFY2(*l.outputError > 0.0 && *l.outputError < l.weightError + 0.5, l.name.c_str());
        pruned += l.paramsBefore - l.paramsAfter;
        // The stored tensor is the pruned one.
        const LogicalTensor* t = r.model->findLogical(l.name);
        QVERIFY(t && t->replacedBy >= 0);
        const MatrixRM W = readMatrix(*r.model, *t);
        QCOMPARE(static_cast<int64_t>((W.array() != 0.0f).count()), l.paramsAfter);
    }
    QCOMPARE(r.parametersBefore, kStoriesParameters);
    QCOMPARE(r.storedParameters, kStoriesParameters);
    QCOMPARE(r.parametersAfter, kStoriesParameters - pruned);
    QCOMPARE(pruned, parameterCountOfTargets(*s.model) / 2);
    // Embedding, norms, head untouched; the source model unchanged.
    for (const LogicalTensor& t : r.model->tensors)
        if (!isLinear(t.role) || t.block < 0)
            QCOMPARE(t.replacedBy, int64_t{-1});
    for (const LogicalTensor& t : s.model->tensors)
        QCOMPARE(t.replacedBy, int64_t{-1});
    const nlohmann::json j = r.toJson();
    QCOMPARE(j.at("parameters").get<int64_t>(), r.parametersAfter);
    QCOMPARE(j.at("layers").size(), size_t{kTargets});
    QVERIFY(j.at("layers")[0].at("output_error").is_number());
}

void TestPruneModel::sequentialDiffersFromOneShot()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ModelPruneOptions o;
    o.layer.method = PruneMethod::SparseGpt;
    o.layer.sparsity = 0.5;
    o.layers = R"(^blocks\.[04]\.attn\.q\.)";
    const ModelCompressionResult seq = pruneModel(*s.model, o, s.calibTokens);
    o.mode = StatsMode::OneShot;
    const ModelCompressionResult one = pruneModel(*s.model, o, s.calibTokens);
    QCOMPARE(seq.statsMode, std::string("sequential"));
    QCOMPARE(one.statsMode, std::string("one-shot"));
    QCOMPARE(seq.layers.size(), size_t{2});
    const auto weights = [](const ModelCompressionResult& r, const char* name) {
        return readMatrix(*r.model, *r.model->findLogical(name));
    };
    // Block 0 sees the same inputs either way; block 4's inputs went through the pruned block 0.
    QVERIFY(weights(seq, "blocks.0.attn.q.weight") == weights(one, "blocks.0.attn.q.weight"));
    QVERIFY(weights(seq, "blocks.4.attn.q.weight") != weights(one, "blocks.4.attn.q.weight"));
    // Only the selected layers changed.
    QCOMPARE(seq.parametersAfter, kStoriesParameters - 2 * (64 * 64 / 2 + 1)); // inclusive rule: one more per matrix
    QVERIFY(seq.model->findLogical("blocks.1.attn.q.weight")->replacedBy < 0);
}

void TestPruneModel::activationAwareSvdBeatsSvd()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    const double svd = referencePpl("svd_rank50");
    std::vector<LowRankMethod> methods{LowRankMethod::Whitened};
    if (fullTable())
        methods.push_back(LowRankMethod::Asvd);
    for (LowRankMethod method : methods) {
        for (StatsMode mode : {StatsMode::Auto, StatsMode::Sequential}) {
            if (mode == StatsMode::Sequential && !fullTable())
                continue;
            ModelFactorizeOptions o;
            o.method = method;
            o.rankRatio = 0.5;
            o.mode = mode;
            QElapsedTimer timer;
            timer.start();
            const ModelCompressionResult r = factorizeModel(*s.model, o, s.calibTokens);
            const PerplexityResult p = evaluate(*r.model);
            qInfo("%-8s rank 50 %%, %s statistics: ppl %.4f (plain SVD %.4f), %lld -> %lld parameters, %lld ms",
                  lowRankMethodName(method), r.statsMode.c_str(), p.ppl, svd, static_cast<long long>(r.parametersBefore),
                  static_cast<long long>(r.parametersAfter), static_cast<long long>(timer.elapsed()));
            QVERIFY(p.ppl < svd * (method == LowRankMethod::Whitened ? kSvdLlmFactor : kAsvdFactor));
            // The factors: rank round(0.5 min(out, in)), stored as A and B (A B read back) with k (out + in)
            // parameters where that is fewer than out * in (the 64x64 matrices keep the product: 32 * 128 = 64 * 64).
            int64_t params = kStoriesParameters;
            for (const LayerOutcome& l : r.layers) {
                const bool smaller = l.rank * (l.rows + l.cols) < l.rows * l.cols;
                QCOMPARE(r.model->findLogical(l.name)->factored(), smaller);
                QCOMPARE(l.rank, (std::min(l.rows, l.cols) + 1) / 2);
                QCOMPARE(l.factorA.rows(), l.rows);
                QCOMPARE(l.factorA.cols(), l.rank);
                QCOMPARE(l.factorB.cols(), l.cols);
                QCOMPARE(l.paramsAfter, smaller ? l.rank * (l.rows + l.cols) : l.rows * l.cols);
                const MatrixRM W = readMatrix(*r.model, *r.model->findLogical(l.name));
                QVERIFY((W - l.factorA * l.factorB).cwiseAbs().maxCoeff() <= 1e-5f * std::max(1.0f, W.cwiseAbs().maxCoeff()));
                params += l.paramsAfter - l.paramsBefore;
            }
            QCOMPARE(r.parametersAfter, params);
            QCOMPARE(r.model->parameterCount(), params);
        }
    }
}

void TestPruneModel::energyChoosesRanksPerLayer()
{
    LL_REQUIRE_SHARED();
    const Model& m = *stories().model;
    ModelFactorizeOptions o;
    o.method = LowRankMethod::Svd;
    o.energy = 0.9;
    const ModelCompressionResult r = factorizeModel(m, o);
    QCOMPARE(r.method, std::string("svd energy 90%"));
    std::set<int64_t> ranks;
    for (const LayerOutcome& l : r.layers) {
        QVERIFY(l.rank >= 1 && l.rank <= std::min(l.rows, l.cols));
        // Kept energy >= 90 %: the relative Frobenius error is at most sqrt(0.1).
        QVERIFY(l.weightError <= std::sqrt(0.1) + 1e-6);
        ranks.insert(l.rank);
    }
    QVERIFY(ranks.size() > 1);
    o.rankRatio = 0.5; // both given
    QVERIFY(expectError(ErrorCode::InvalidArgument, [&] { factorizeModel(m, o); }));
}

void TestPruneModel::structuredNeurons()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    for (StructuredScore score : {StructuredScore::Magnitude, StructuredScore::ActivationAware}) {
        if (score == StructuredScore::ActivationAware && !fullTable())
            continue;
        StructuredMlpOptions o;
        o.ratio = 0.25;
        o.score = score;
        const ModelCompressionResult r = pruneMlpNeurons(*s.model, o, s.calibTokens);
        // 172 neurons - floor(0.25 * 172) = 129 kept in every block.
        QCOMPARE(r.model->config.intermediate, int64_t{129});
        QCOMPARE(s.model->config.intermediate, int64_t{172});
        for (int b = 0; b < 5; ++b) {
            QCOMPARE(r.model->find(b, Role::MlpGate)->shape, (std::vector<int64_t>{129, 64}));
            QCOMPARE(r.model->find(b, Role::MlpUp)->shape, (std::vector<int64_t>{129, 64}));
            QCOMPARE(r.model->find(b, Role::MlpDown)->shape, (std::vector<int64_t>{64, 129}));
        }
        const int64_t expected = kStoriesParameters - 5 * 43 * (3 * 64);
        QCOMPARE(r.model->parameterCount(), expected);
        QCOMPARE(r.parametersAfter, expected);
        QCOMPARE(r.layers.size(), size_t{15});
        for (const LayerOutcome& l : r.layers) {
            QCOMPARE(l.paramsAfter, int64_t{129 * 64});
            QVERIFY(l.outputError.has_value());
        }
        // The forward pass runs on the smaller model.
        const PerplexityResult p = evaluate(*r.model);
        qInfo("MLP neurons -25 %% (%s): ppl %.4f (fp32 %.4f), %lld -> %lld parameters", r.method.c_str(), p.ppl,
              stories().reference.at("fp32").get<double>(), static_cast<long long>(r.parametersBefore),
              static_cast<long long>(r.parametersAfter));
        QVERIFY(std::isfinite(p.ppl) && p.ppl > 5.3743);

        // Hugging Face round trip: intermediate_size 129, same outputs.
        if (score == StructuredScore::Magnitude) {
            const std::string dir = test::scratchDir() + "/neurons";
            exportHf(*r.model, dir);
            const nlohmann::json cfg = readJsonFile(dir + "/config.json");
            QCOMPARE(cfg.at("intermediate_size").get<int64_t>(), int64_t{129});
            const auto back = openModel(dir);
            QCOMPARE(back->config.intermediate, int64_t{129});
            QCOMPARE(back->parameterCount(), expected);
            const std::span<const int32_t> ids(s.evalTokens.data(), 64);
            const Eigen::MatrixXf a = Transformer(*r.model).logits(ids), c = Transformer(*back).logits(ids);
            QVERIFY(a == c);
        }
    }
    StructuredMlpOptions bad;
    bad.score = StructuredScore::ActivationAware;
    QVERIFY(expectError(ErrorCode::InvalidArgument, [&] { pruneMlpNeurons(*s.model, bad); })); // needs calibration
}

void TestPruneModel::structuredHeads()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    // A capped evaluation keeps the test short: the first 64 windows of 256 tokens.
    const auto capped = [&](const Model& m) {
        const Transformer t(m);
        ScoringOptions o;
        o.context = 256;
        o.maxWindows = 64;
        return evaluatePerplexity(t, s.evalTokens, o);
    };
    const double fp32 = capped(*s.model).ppl;
    for (StructuredScore score : {StructuredScore::Magnitude, StructuredScore::ActivationAware}) {
        StructuredAttentionOptions o;
        o.ratio = 0.25; // 1 of the 4 KV groups (a KV head and its 2 query heads)
        o.score = score;
        const ModelCompressionResult r = pruneAttentionHeads(*s.model, o, s.calibTokens);
        QCOMPARE(r.model->config.heads, int64_t{6});
        QCOMPARE(r.model->config.kvHeads, int64_t{3});
        QCOMPARE(r.model->config.headDim, int64_t{8});
        QCOMPARE(s.model->config.heads, int64_t{8});
        QCOMPARE(s.model->config.kvHeads, int64_t{4});
        for (int b = 0; b < 5; ++b) {
            QCOMPARE(r.model->find(b, Role::AttnQ)->shape, (std::vector<int64_t>{48, 64}));
            QCOMPARE(r.model->find(b, Role::AttnK)->shape, (std::vector<int64_t>{24, 64}));
            QCOMPARE(r.model->find(b, Role::AttnV)->shape, (std::vector<int64_t>{24, 64}));
            QCOMPARE(r.model->find(b, Role::AttnO)->shape, (std::vector<int64_t>{64, 48}));
        }
        // Per block: q 16 x 64, k and v 8 x 64 each, o 64 x 16 removed.
        const int64_t expected = kStoriesParameters - 5 * (16 * 64 + 2 * 8 * 64 + 64 * 16);
        QCOMPARE(r.model->parameterCount(), expected);
        QCOMPARE(r.parametersAfter, expected);
        QCOMPARE(r.layers.size(), size_t{20});
        for (const LayerOutcome& l : r.layers) {
            QVERIFY(l.outputError.has_value());
            QVERIFY(l.weightError > 0.0 && l.weightError < 1.0);
        }
        const PerplexityResult p = capped(*r.model);
        qInfo("attention KV groups -25 %% (%s): ppl %.4f (unpruned %.4f, same %lld windows), %lld -> %lld parameters",
              r.method.c_str(), p.ppl, fp32, static_cast<long long>(p.windows), static_cast<long long>(r.parametersBefore),
              static_cast<long long>(r.parametersAfter));
        QVERIFY(std::isfinite(p.ppl) && p.ppl > fp32);

        // Hugging Face round trip: 6 heads, 3 KV heads, head_dim 8, same logits.
        const std::string dir = test::scratchDir() + "/heads";
        HfExportOptions eo;
        eo.overwrite = true;
        exportHf(*r.model, dir, eo);
        const nlohmann::json cfg = readJsonFile(dir + "/config.json");
        QCOMPARE(cfg.at("num_attention_heads").get<int64_t>(), int64_t{6});
        QCOMPARE(cfg.at("num_key_value_heads").get<int64_t>(), int64_t{3});
        QCOMPARE(cfg.at("head_dim").get<int64_t>(), int64_t{8});
        const auto back = openModel(dir);
        QCOMPARE(back->config.heads, int64_t{6});
        QCOMPARE(back->config.kvHeads, int64_t{3});
        QCOMPARE(back->parameterCount(), expected);
        const std::span<const int32_t> ids(s.evalTokens.data(), 64);
        const Eigen::MatrixXf a = Transformer(*r.model).logits(ids), c = Transformer(*back).logits(ids);
        QVERIFY(a == c);
    }
    // Magnitude needs no calibration; activation-aware does; nothing left is refused.
    StructuredAttentionOptions plain;
    QCOMPARE(pruneAttentionHeads(*s.model, plain).statsMode, std::string("none"));
    StructuredAttentionOptions bad;
    bad.score = StructuredScore::ActivationAware;
    QVERIFY(expectError(ErrorCode::InvalidArgument, [&] { pruneAttentionHeads(*s.model, bad); }));
    StructuredAttentionOptions all;
    all.ratio = 0.99; // floor(0.99 * 4) = 3 removed, one kept
    QCOMPARE(pruneAttentionHeads(*s.model, all).model->config.kvHeads, int64_t{1});
    all.ratio = 1.0;
    QVERIFY(expectError(ErrorCode::InvalidArgument, [&] { pruneAttentionHeads(*s.model, all); }));
    // The CLI: --structured heads.
    const test::CliResult c = test::runCli({"prune", test::sharedPath("models/stories260K-hf"), "--method", "magnitude",
                                            "--structured", "heads", "--ratio", "0.25", "--json"});
    QVERIFY2(c.exitCode == 0, c.err.c_str());
    const nlohmann::json j = nlohmann::json::parse(c.out);
    QCOMPARE(j.at("parameters").get<int64_t>(), kStoriesParameters - 5 * 3072);
    QCOMPARE(test::runCli({"prune", test::sharedPath("models/stories260K-hf"), "--method", "sparsegpt", "--structured",
                           "heads"})
                 .exitCode,
             64);
}

void TestPruneModel::cancellationAndMissingCalibration()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ModelPruneOptions o;
    o.layer.method = PruneMethod::SparseGpt;
    CancelFlag cancel;
    cancel.cancel();
    QVERIFY(expectError(ErrorCode::Cancelled, [&] { pruneModel(*s.model, o, s.calibTokens, &cancel); }));
    QVERIFY(expectError(ErrorCode::Cancelled, [&] {
        ModelFactorizeOptions f;
        f.rankRatio = 0.5;
        factorizeModel(*s.model, f, {}, &cancel);
    }));
    for (const LogicalTensor& t : s.model->tensors)
        QCOMPARE(t.replacedBy, int64_t{-1});
    // Wanda and SparseGPT cannot run without calibration text.
    QVERIFY(expectError(ErrorCode::InvalidArgument, [&] { pruneModel(*s.model, o); }));
    // Too little calibration text for 64 windows of 256.
    QVERIFY(expectError(ErrorCode::InvalidArgument,
                        [&] { pruneModel(*s.model, o, std::span<const int32_t>(s.calibTokens).first(1000)); }));
}

void TestPruneModel::cliPruneAndFactorize()
{
    LL_REQUIRE_SHARED();
    const std::string model = test::sharedPath("models/stories260K-hf");
    const std::string calib = test::sharedPath("data/tinystories/calib.txt");
    const std::string eval = test::sharedPath("data/tinystories/eval.txt");
    const std::string out = test::scratchDir() + "/wanda24";
    // Wanda 2:4 through the CLI: evaluation, export, JSON.
    const test::CliResult r = test::runCli({"prune", model, "--method", "wanda", "--nm", "2:4", "--calib", calib,
                                            "--eval", eval, "--ctx", "256", "--out", out, "--json"});
    QVERIFY2(r.exitCode == 0, r.err.c_str());
    const nlohmann::json j = nlohmann::json::parse(r.out);
    const double ref = referencePpl("wanda_2of4");
    qInfo("layerlab-cli prune wanda 2:4: ppl %.4f (reference %.4f), %lld parameters, %.1f s", j.at("ppl").get<double>(), ref,
          static_cast<long long>(j.at("parameters").get<int64_t>()), j.at("seconds_total").get<double>());
    QVERIFY(std::abs(j.at("ppl").get<double>() / ref - 1.0) <= kWandaTol);
    QCOMPARE(j.at("parameters").get<int64_t>(), kStoriesParameters - parameterCountOfTargets(*stories().model) / 2);
    QCOMPARE(j.at("layers").size(), size_t{kTargets});
    QCOMPARE(j.at("layers")[0].at("method").get<std::string>(), std::string("wanda 2:4"));
    QCOMPARE(j.at("stats_mode").get<std::string>(), std::string("sequential"));
    QVERIFY(std::filesystem::exists(out + "/config.json"));
    QVERIFY(std::filesystem::exists(out + "/model.safetensors"));
    const auto written = openModel(out);
    const MatrixRM W = readMatrix(*written, *written->findLogical("blocks.2.mlp.down.weight"));
    QCOMPARE(SparsityMask::fromNonZeros(W).isValidNM(2, 4), true);

    // SVD without evaluation: parameters and layers, no ppl.
    const test::CliResult f = test::runCli({"factorize", model, "--method", "svd", "--rank-ratio", "0.5", "--json"});
    QVERIFY2(f.exitCode == 0, f.err.c_str());
    const nlohmann::json fj = nlohmann::json::parse(f.out);
    QVERIFY(!fj.contains("ppl"));
    QCOMPARE(fj.at("layers")[0].at("rank").get<int64_t>(), int64_t{32});
    QVERIFY(fj.at("parameters").get<int64_t>() < kStoriesParameters);
    // --dense stores A B instead of the factors: the same parameters, the dense stored count.
    const test::CliResult fd = test::runCli({"factorize", model, "--method", "svd", "--rank-ratio", "0.5", "--dense", "--json"});
    QVERIFY2(fd.exitCode == 0, fd.err.c_str());
    const nlohmann::json fdj = nlohmann::json::parse(fd.out);
    QCOMPARE(fdj.at("parameters").get<int64_t>(), fj.at("parameters").get<int64_t>());
    QCOMPARE(fj.at("stored_parameters").get<int64_t>(), fj.at("parameters").get<int64_t>());
    QCOMPARE(fdj.at("stored_parameters").get<int64_t>(), kStoriesParameters);

    // Usage errors (64) and bad input (2).
    QCOMPARE(test::runCli({"prune", model, "--sparsity", "0.5"}).exitCode, 64);                           // no method
    QCOMPARE(test::runCli({"prune", model, "--method", "magnitude"}).exitCode, 64);                        // no amount
    QCOMPARE(test::runCli({"prune", model, "--method", "magnitude", "--sparsity", "0.5", "--nm", "2:4"}).exitCode, 64);
    QCOMPARE(test::runCli({"prune", model, "--method", "wanda", "--sparsity", "0.5"}).exitCode, 64);     // no --calib
    QCOMPARE(test::runCli({"prune", model, "--method", "magnitude", "--nm", "4:2"}).exitCode, 64);
    QCOMPARE(test::runCli({"factorize", model, "--method", "svd"}).exitCode, 64);
    QCOMPARE(test::runCli({"factorize", model, "--method", "asvd", "--rank-ratio", "0.5"}).exitCode, 64);
    QCOMPARE(test::runCli({"prune", model, "--method", "magnitude", "--sparsity", "0.5", "--layers", "nothing"}).exitCode, 2);
    QCOMPARE(test::runCli({"prune", model + "/missing", "--method", "magnitude", "--sparsity", "0.5"}).exitCode, 2);
}

QTEST_APPLESS_MAIN(TestPruneModel)
#include "test_prune_model.moc"
