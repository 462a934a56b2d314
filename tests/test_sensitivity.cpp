// Layer sensitivity and mixed precision (core/analysis): every sensitivity
// row against an independent applyStep + evaluatePerplexity on the same
// windows, the CLI's ranking against the API's, the mixed-precision recipe's
// size and perplexity against uniform RTN 4-bit g32, the solvers against brute
// force, and cancellation.
#include "test_support.h"

#include "analysis/mixed_precision.h"
#include "analysis/sensitivity.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "pipeline/model_compression.h"
#include "recipe/apply.h"
#include "util/error.h"
#include "util/progress.h"

#include <QtTest>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>

using namespace ll;

namespace {

const char* kStories = "models/stories260K-hf";
const char* kEval = "data/tinystories/eval.txt";
constexpr int64_t kCtx = 128;
const std::vector<std::string> kFive = {"blocks.0.attn.q.weight", "blocks.1.attn.k.weight", "blocks.2.mlp.down.weight",
                                        "blocks.3.mlp.gate.weight", "blocks.4.attn.o.weight"};

std::shared_ptr<const Model> stories()
{
    static std::shared_ptr<const Model> m = openModel(test::sharedPath(kStories));
    return m;
}

const std::vector<int32_t>& evalTokens()
{
    static const std::vector<int32_t> t = tokenizeTextFile(*stories(), test::sharedPath(kEval));
    return t;
}

const CalibrationText& calibration()
{
    static const CalibrationText c = [] {
        RecipeCalibration rc;
        rc.text = test::sharedPath("data/tinystories/calib.txt");
        rc.context = kCtx;
        rc.windows = 8;
        return loadCalibration(*stories(), rc);
    }();
    return c;
}

RecipeStep rtn(int bits, int group)
{
    RecipeStep s;
    s.action = StepAction::Quantize;
    s.params = {{"method", "rtn"}, {"bits", bits}, {"group", group}};
    return s;
}

ScoringOptions windows(int64_t n)
{
    ScoringOptions s;
    s.context = kCtx;
    s.maxWindows = n;
    return s;
}

double pplOf(const CompressionState& s, std::span<const int32_t> tokens, const ScoringOptions& o)
{
    return evaluatePerplexity(*s.makeEngine(), tokens, o).ppl;
}

bool closeRel(double a, double b, double rel) { return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)); }

double seconds(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Cancels at the first progress report past `fraction` (inside a layer's step or evaluation).
class CancelAt : public CancelFlag {
public:
    explicit CancelAt(double fraction) : at_(fraction) {}
    void report(double fraction, std::string_view) override
    {
        if (fraction >= at_)
            cancel();
    }

private:
    double at_;
};

// A synthetic sweep: rows with the given bits per weight and KL per layer.
SensitivityResult sweep(const std::vector<int64_t>& weights, double bpw, const std::vector<double>& kl)
{
    SensitivityResult r;
    r.step = rtn(static_cast<int>(bpw), 32);
    for (size_t i = 0; i < weights.size(); ++i) {
        LayerSensitivity l;
        l.name = "blocks." + std::to_string(i) + ".attn.q.weight";
        l.weights = weights[i];
        l.bitsPerWeight = bpw;
        l.kl = kl[i];
        l.deltaNll = kl[i];
        r.rows.push_back(l);
    }
    return r;
}

} // namespace

class TestSensitivity : public QObject {
    Q_OBJECT
private slots:
    void rowsMatchIndependentSteps()
    {
        LL_REQUIRE_SHARED();
        const CompressionState base = CompressionState::initial(stories());
        SensitivityOptions o;
        o.step = rtn(3, 32);
        o.names = kFive;
        o.scoring = windows(4);
        std::vector<std::string> seen;
        const auto t0 = std::chrono::steady_clock::now();
        const SensitivityResult r = measureSensitivity(base, o, evalTokens(), calibration(),
                                                       [&](const LayerSensitivity& row, size_t i, size_t total) {
                                                           QCOMPARE(total, kFive.size());
                                                           QCOMPARE(i, seen.size());
                                                           seen.push_back(row.name);
                                                       });
        qInfo("sensitivity of 5 layers (RTN 3b g32, 4 windows of 128): %.2f s", seconds(t0));
        QCOMPARE(seen, kFive);
        QCOMPARE(r.rows.size(), kFive.size());

        const std::unique_ptr<Transformer> baseEngine = base.makeEngine();
        const PerplexityResult basePpl = evaluatePerplexity(*baseEngine, evalTokens(), o.scoring);
        QCOMPARE(r.base.ppl, basePpl.ppl);
        QCOMPARE(r.base.tokensScored, int64_t{4 * (kCtx - 1)});
        for (const LayerSensitivity& row : r.rows) {
            // Independently: the step on that layer alone, a fresh engine, the library's evaluation.
            RecipeStep step = rtn(3, 32);
            step.layers = "^" + std::string(row.name).replace(row.name.find(".weight"), 7, "\\.weight") + "$";
            const StepOutcome out = applyStep(base, step, calibration());
            QCOMPARE(out.touched, std::vector<std::string>{row.name});
            const std::unique_ptr<Transformer> engine = out.state.makeEngine();
            const PerplexityResult ppl = evaluatePerplexity(*engine, evalTokens(), o.scoring);
            const ComparisonResult cmp = compareModels(*baseEngine, *engine, evalTokens(), o.scoring);
            QVERIFY2(row.ppl == ppl.ppl, row.name.c_str()); // the same sums in the same order: bit-identical
            QVERIFY2(closeRel(row.deltaPpl, ppl.ppl - basePpl.ppl, 1e-9), row.name.c_str());
            QVERIFY2(closeRel(row.deltaNll, cmp.deltaNll, 1e-9), row.name.c_str());
            QVERIFY2(row.kl && *row.kl == cmp.klMean, row.name.c_str());
            QVERIFY2(row.top1 && *row.top1 == cmp.top1Agreement, row.name.c_str());
            QCOMPARE(*row.bitsPerWeight, *out.state.layers.at(row.name).bitsPerWeight);
            QCOMPARE(*row.weightError, *out.state.layers.at(row.name).weightError);
            QCOMPARE(row.badge, std::string("RTN 3b g32"));
            qInfo("  %-26s ppl %.6f  dppl %+.6f  KL %.6f  top-1 %.4f  %.3f bits/w", row.name.c_str(), row.ppl,
                  row.deltaPpl, *row.kl, *row.top1, *row.bitsPerWeight);
        }
        // The ranking helper: most sensitive first, by any metric.
        std::vector<LayerSensitivity> sorted = r.rows;
        sortBySensitivity(sorted, SensitivityMetric::DeltaPpl);
        for (size_t i = 1; i < sorted.size(); ++i)
            QVERIFY(sorted[i - 1].deltaPpl >= sorted[i].deltaPpl);
        QString ranking;
        for (const LayerSensitivity& l : sorted)
            ranking += QString::fromStdString(l.name) + " ";
        qInfo("ranking by dppl: %s", qPrintable(ranking));
    }

    void swappedLayersMatchFreshEngines()
    {
        LL_REQUIRE_SHARED();
        // Fused q/k/v (GPT-2's transposed c_attn), biases and post-norm (OPT), and a factored
        // layer: the sweep swaps one linear into the base engine; a fresh engine must agree.
        std::vector<int32_t> ids(3 * 64);
        for (size_t i = 0; i < ids.size(); ++i)
            ids[i] = static_cast<int32_t>((i * 7919 + 13) % 512);
        RecipeStep svd;
        svd.action = StepAction::Factorize;
        svd.params = {{"method", "svd"}, {"rank-ratio", 0.25}};
        const struct {
            const char* model;
            RecipeStep step;
        } cases[] = {{"models/tiny-gpt2", rtn(3, 32)}, {"models/tiny-opt", rtn(2, 0)}, {kStories, svd}};
        for (const auto& c : cases) {
            const CompressionState base = CompressionState::initial(openModel(test::sharedPath(c.model)));
            SensitivityOptions o;
            o.step = c.step;
            o.layers = "blocks\\.1\\.(attn\\.[kv]|mlp\\.down)";
            o.scoring.context = 64;
            const SensitivityResult r = measureSensitivity(base, o, ids, {});
            QCOMPARE(r.rows.size(), size_t{3});
            const std::unique_ptr<Transformer> baseEngine = base.makeEngine();
            for (const LayerSensitivity& row : r.rows) {
                const StepOutcome out = applyStep(base, singleLayerStep(c.step, row.name), {});
                const std::unique_ptr<Transformer> engine = out.state.makeEngine();
                const ComparisonResult cmp = compareModels(*baseEngine, *engine, ids, o.scoring);
                QVERIFY2(row.ppl == evaluatePerplexity(*engine, ids, o.scoring).ppl, (std::string(c.model) + " " + row.name).c_str());
                QVERIFY2(*row.kl == cmp.klMean && *row.top1 == cmp.top1Agreement, row.name.c_str());
                QVERIFY2(row.deltaPpl != 0.0, row.name.c_str());
            }
        }
    }

    // The block-input cache (in memory or spilled to a file) gives the rows a
    // whole forward pass per layer gives, bit for bit.
    void cachedBlockInputsChangeNothing()
    {
        LL_REQUIRE_SHARED();
        const CompressionState base = CompressionState::initial(stories());
        SensitivityOptions o;
        o.step = rtn(3, 32);
        o.names = kFive;
        o.scoring = windows(3);
        o.cacheBlockInputs = false;
        const SensitivityResult whole = measureSensitivity(base, o, evalTokens(), calibration());
        o.cacheBlockInputs = true;
        const SensitivityResult cached = measureSensitivity(base, o, evalTokens(), calibration());
        o.cacheBudgetBytes = 0;
        const SensitivityResult spilled = measureSensitivity(base, o, evalTokens(), calibration());
        for (size_t i = 0; i < whole.rows.size(); ++i) {
            QCOMPARE(cached.rows[i].ppl, whole.rows[i].ppl);
            QCOMPARE(*cached.rows[i].kl, *whole.rows[i].kl);
            QCOMPARE(spilled.rows[i].ppl, whole.rows[i].ppl);
        }
    }

    // The proxy: one step on every layer, each ranked by its output error as
    // that step reports it; nothing evaluated.
    void proxyRanksByOutputError()
    {
        LL_REQUIRE_SHARED();
        const CompressionState base = CompressionState::initial(stories());
        SensitivityOptions o;
        o.step = rtn(3, 32);
        o.proxyOutputError = true;
        SensitivityResult r = measureSensitivity(base, o, {}, calibration());
        QCOMPARE(r.rows.size(), size_t{35});
        RecipeStep all = rtn(3, 32);
        all.params["output_error"] = true;
        const StepOutcome out = applyStep(base, all, calibration());
        for (const LayerSensitivity& row : r.rows) {
            QVERIFY(row.outputError && *row.outputError > 0.0);
            QCOMPARE(*row.outputError, *out.state.layers.at(row.name).outputError);
            QVERIFY(std::isnan(row.deltaPpl));
        }
        sortBySensitivity(r.rows, SensitivityMetric::OutputError);
        QVERIFY(*r.rows.front().outputError >= *r.rows.back().outputError);
    }

    void cliRankingMatchesApi()
    {
        LL_REQUIRE_SHARED();
        const std::string pattern = exactNamesPattern(kFive);
        SensitivityOptions o;
        o.step = rtn(3, 32);
        o.layers = pattern;
        o.scoring = windows(4);
        SensitivityResult api = measureSensitivity(CompressionState::initial(stories()), o, evalTokens(), {});
        sortBySensitivity(api.rows, SensitivityMetric::DeltaPpl);
        const test::CliResult cli = test::runCli({"sensitivity", test::sharedPath(kStories), "--method", "rtn", "--bits", "3",
                                                  "--group", "32", "--layers", pattern, "--eval", test::sharedPath(kEval),
                                                  "--ctx", "128", "--windows", "4", "--json"});
        QVERIFY2(cli.exitCode == 0, cli.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(cli.out);
        QCOMPARE(j["sorted_by"].get<std::string>(), std::string("dppl"));
        QCOMPARE(j["rows"].size(), api.rows.size());
        for (size_t i = 0; i < api.rows.size(); ++i) {
            QCOMPARE(j["rows"][i]["name"].get<std::string>(), api.rows[i].name);
            QCOMPARE(j["rows"][i]["delta_ppl"].get<double>(), api.rows[i].deltaPpl);
        }
        // The table form and a usage error.
        const test::CliResult table = test::runCli({"sensitivity", test::sharedPath(kStories), "--method", "rtn", "--bits", "3",
                                                    "--layers", pattern, "--eval", test::sharedPath(kEval), "--windows", "2"});
        QVERIFY2(table.exitCode == 0, table.err.c_str());
        QVERIFY(table.out.find("rank") != std::string::npos && table.out.find("blocks.2.mlp.down.weight") != std::string::npos);
        const test::CliResult bad = test::runCli({"sensitivity", test::sharedPath(kStories), "--method", "rtn", "--bits", "3",
                                                  "--sparsity", "0.5", "--eval", test::sharedPath(kEval)});
        QCOMPARE(bad.exitCode, 64);
    }

    void solversAgainstBruteForce()
    {
        const std::vector<int64_t> w = {100, 300, 200, 50, 400, 150};
        const std::vector<SensitivityResult> sweeps = {
            sweep(w, 3.0, {0.9, 0.5, 0.7, 0.2, 0.4, 1.3}),
            sweep(w, 4.0, {0.3, 0.2, 0.1, 0.05, 0.15, 0.6}),
            sweep(w, 8.0, {0.01, 0.02, 0.0, 0.0, 0.01, 0.05}),
        };
        const double total = 1200.0;
        // The least summed loss within `bits`, by brute force over the 3^6 assignments.
        const auto bruteForce = [&](double bitsAllowed) {
            double best = INFINITY;
            for (int code = 0; code < 729; ++code) {
                double bits = 0, loss = 0;
                for (size_t i = 0, c = static_cast<size_t>(code); i < 6; ++i, c /= 3) {
                    bits += *sweeps[c % 3].rows[i].bitsPerWeight * static_cast<double>(w[i]);
                    loss += *sweeps[c % 3].rows[i].kl;
                }
                if (bits <= bitsAllowed)
                    best = std::min(best, loss);
            }
            return best;
        };
        for (double budgetBpw : {3.2, 4.0, 4.5, 5.7}) {
            const double best = bruteForce(budgetBpw * total);
            // The exact solver cuts the budget into 2^22 / 6 units and rounds each layer's cost up to a unit.
            const double bestRounded = bruteForce(budgetBpw * total * (1.0 - 6.0 / double((1 << 22) / 6)));
            MixedBudget b;
            b.bitsPerWeight = budgetBpw;
            for (MixedSolver s : {MixedSolver::Exact, MixedSolver::Greedy}) {
                const MixedPlan p = solveMixedPrecision(sweeps, b, SensitivityMetric::Kl, s);
                double loss = 0;
                for (const MixedLayerChoice& l : p.layers)
                    loss += l.loss;
                QVERIFY(p.bitsPerWeight <= budgetBpw + 1e-12);
                QVERIFY(loss >= best - 1e-12);
                if (s == MixedSolver::Exact)
                    QVERIFY2(loss <= bestRounded + 1e-12,
                             qPrintable(QString("exact %1 vs %2 at %3").arg(loss).arg(bestRounded).arg(budgetBpw)));
            }
        }
        MixedBudget tooSmall;
        tooSmall.bitsPerWeight = 2.5;
        QVERIFY_THROWS_EXCEPTION(Error, solveMixedPrecision(sweeps, tooSmall));
        // Candidate syntax.
        const std::vector<RecipeStep> c = parseCandidates("rtn:3:32,gptq:4:128:act-order,ggml:type=Q4_K");
        QCOMPARE(c.size(), size_t{3});
        QCOMPARE(c[0].badge(), std::string("RTN 3b g32"));
        QCOMPARE(c[1].badge(), std::string("GPTQ 4b g128 act-order"));
        QCOMPARE(c[2].badge(), std::string("Q4_K"));
        QVERIFY_THROWS_EXCEPTION(Error, parseCandidates("rtn:12:32"));
        QVERIFY_THROWS_EXCEPTION(Error, parseCandidates("rtn:3:32,,"));
    }

    void mixedPrecisionBeatsUniformRtn4()
    {
        LL_REQUIRE_SHARED();
        const auto t0 = std::chrono::steady_clock::now();
        const CompressionState base = CompressionState::initial(stories());
        MixedPrecisionOptions o;
        // g64 gives the solver a 4-bit option cheaper than g32's 4.64 bits per weight.
        o.candidates = parseCandidates("rtn:3:32,rtn:4:64,rtn:4:32,rtn:8:32");
        o.budget.bitsPerWeight = 4.5;
        o.metric = SensitivityMetric::Kl;
        o.scoring = windows(8);
        RecipeCalibration rc;
        rc.text = test::sharedPath("data/tinystories/calib.txt");
        rc.context = kCtx;
        rc.windows = 8;
        const MixedPrecisionResult r = planMixedPrecision(base, o, evalTokens(), calibration(), rc);
        const double planSeconds = seconds(t0);
        QVERIFY(r.measuredPpl && r.measuredBitsPerWeight);
        QVERIFY(*r.measuredBitsPerWeight <= 4.5 + 1e-9);
        QVERIFY(closeRel(*r.measuredBitsPerWeight, r.plan.bitsPerWeight, 1e-12)); // predicted size is exact

        // The recipe replays to the same model.
        const StepOutcome replay = applyRecipe(stories(), r.recipe);
        QCOMPARE(replay.state.linearBitsPerWeight(), *r.measuredBitsPerWeight);
        QCOMPARE(pplOf(replay.state, evalTokens(), o.scoring), *r.measuredPpl);

        // Uniform RTN 4-bit g32, on the selection windows and on 64 held-out windows after them.
        const CompressionState uniform = applyStep(base, rtn(4, 32), calibration()).state;
        const double uniformPpl = pplOf(uniform, evalTokens(), o.scoring);
        const std::span<const int32_t> heldOut = std::span<const int32_t>(evalTokens()).subspan(8 * kCtx, 64 * kCtx);
        const double mixedHeld = pplOf(replay.state, heldOut, windows(64));
        const double uniformHeld = pplOf(uniform, heldOut, windows(64));
        qInfo("mixed (%s, KL, exact): %.4f bits/w (predicted %.4f), PPL %.4f on the 8 selection windows (predicted %.4f), "
              "%.4f on 64 held-out windows; %.1f s",
              "rtn:3:32,rtn:4:64,rtn:4:32,rtn:8:32", *r.measuredBitsPerWeight, r.plan.bitsPerWeight, *r.measuredPpl,
              r.plan.predictedPpl, mixedHeld, planSeconds);
        qInfo("uniform RTN 4b g32: %.4f bits/w, PPL %.4f on the selection windows, %.4f held out",
              uniform.linearBitsPerWeight(), uniformPpl, uniformHeld);
        QVERIFY(uniform.linearBitsPerWeight() > 4.5); // the mixed model is the smaller one
        QVERIFY(*r.measuredPpl <= uniformPpl);
        QVERIFY(mixedHeld <= uniformHeld);
    }

    void cancellationLeavesBaseUntouched()
    {
        LL_REQUIRE_SHARED();
        const CompressionState base = CompressionState::initial(stories());
        const nlohmann::json before = base.toJson();
        SensitivityOptions o;
        o.step = rtn(3, 32);
        o.names = kFive;
        o.scoring = windows(2);
        const double basePpl = pplOf(base, evalTokens(), o.scoring);

        // Between layers: the callback asks to stop after the second row.
        CancelFlag flag;
        size_t rows = 0;
        try {
            measureSensitivity(base, o, evalTokens(), {}, [&](const LayerSensitivity&, size_t, size_t) {
                if (++rows == 2)
                    flag.cancel();
            }, &flag);
            QFAIL("not cancelled");
        } catch (const Error& e) {
            QCOMPARE(e.code(), ErrorCode::Cancelled);
        }
        QCOMPARE(rows, size_t{2});

        // Inside a step or an evaluation, part way through the sweep.
        for (double fraction : {0.3, 0.55, 0.9}) {
            CancelAt inside(fraction);
            rows = 0;
            try {
                measureSensitivity(base, o, evalTokens(), {}, [&](const LayerSensitivity&, size_t, size_t) { ++rows; },
                                   &inside);
                QFAIL("not cancelled");
            } catch (const Error& e) {
                QCOMPARE(e.code(), ErrorCode::Cancelled);
            }
            QVERIFY(rows < kFive.size());
        }
        QCOMPARE(base.toJson(), before);
        QVERIFY(base.model == stories() && base.steps.empty() && base.layers.empty());
        for (const LogicalTensor& t : stories()->tensors)
            QVERIFY(!t.edited());
        QCOMPARE(pplOf(base, evalTokens(), o.scoring), basePpl);
    }
};

QTEST_APPLESS_MAIN(TestSensitivity)
#include "test_sensitivity.moc"
