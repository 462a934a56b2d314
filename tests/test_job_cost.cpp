// What a job costs before it starts (core/analysis/model_cost.h) and the time
// left of a running one (core/util/eta.h): every figure against a hand
// calculation on stories260K's shapes (hidden 64, FFN 172, 5 blocks, 8 heads
// of 8, 4 KV heads, vocabulary 512, F32), the refusal message, and the
// estimates of the 1B model as sanity checks against its parameter count.
#include "test_support.h"

#include "formats/open_model.h"
#include "methods/method_registry.h"

#include "analysis/model_cost.h"
#include "recipe/apply.h"
#include "util/eta.h"

#include <QFileInfo>
#include <QtTest>

#include <cmath>

using namespace ll;

namespace {

std::shared_ptr<const Model> stories()
{
    static std::shared_ptr<const Model> m = openModel(test::sharedPath("models/stories260K-hf"));
    return m;
}

// Per token: 2 × the block's linear multiply-adds (q 64·64, k and v 32·64, o 64·64,
// gate, up and down 172·64) + attention 2 · 2 · 64 · ctx/2 at ctx 64.
constexpr double kBlockFlops = 2.0 * (4096 + 2048 + 2048 + 4096 + 3 * 11008) + 2.0 * 2.0 * 64 * 32; // 98 816
// Forward scratch per row: 4 bytes × (3·64 + 2·64 + 2·32 + 2·172).
constexpr double kRowBytes = 4.0 * (3 * 64 + 2 * 64 + 2 * 32 + 2 * 172); // 2 912

double part(const JobCost& c, const std::string& what)
{
    for (const MemoryPart& p : c.memory)
        if (p.what.find(what) != std::string::npos)
            return p.bytes;
    return -1.0;
}

} // namespace

class TestJobCost : public QObject {
    Q_OBJECT
private slots:
    void timeLeft()
    {
        QVERIFY(!secondsLeft(10.0, 0.0));         // nothing done yet: no estimate
        QVERIFY(!secondsLeft(0.0, 0.5));          // no time passed
        QVERIFY(!secondsLeft(10.0, std::nan("")));
        QCOMPARE(*secondsLeft(10.0, 0.25), 30.0); // a quarter in 10 s: 30 s to go
        QCOMPARE(*secondsLeft(83.0, 0.5), 83.0);
        QCOMPARE(*secondsLeft(5.0, 1.0), 0.0);
        QCOMPARE(formatClock(0.0), std::string("0:00"));
        QCOMPARE(formatClock(6.2), std::string("0:07"));   // rounded up: never 0:00 with work left
        QCOMPARE(formatClock(83.0), std::string("1:23"));
        QCOMPARE(formatClock(725.0), std::string("12:05"));
        QCOMPARE(formatClock(3723.0), std::string("1:02:03"));
        QCOMPARE(formatClock(-4.0), std::string("0:00"));
        QCOMPARE(formatClock(INFINITY), std::string("0:00"));
        QCOMPARE(formatTimeLeft(83.0), std::string("1:23 left"));
        QCOMPARE(formatTimeLeft(std::nullopt), std::string());
    }

    void evaluationByHand()
    {
        LL_REQUIRE_SHARED();
        const Model& m = *stories();
        QCOMPARE(forwardBytesPerRow(m.config), kRowBytes);
        QCOMPARE(blockFlopsPerToken(m, 0, 64), kBlockFlops);
        // 10 windows of 64 on 2 threads: one batch of all 10 windows (4096 / 64 = 64 > 10): 640 rows.
        const JobCost c = estimateEvaluation(m, 10, 64, 2);
        QCOMPARE(part(c, "forward pass"), 640.0 * (kRowBytes + 4.0 * 64));   // 2 027 520
        QCOMPARE(part(c, "logits"), 2.0 * 320.0 * 512.0 * 4.0);              // a chunk per thread: 320 rows × 512
        QCOMPARE(part(c, "per-token results"), 16.0 * 640.0);                // NLL in double, id and target
        QCOMPARE(c.workingBytes(), 2027520.0 + 1310720.0 + 10240.0);
        // Every stored tensor once: 292 800 F32 parameters.
        QCOMPARE(c.modelBytes, 4.0 * 292800.0);
        QCOMPARE(c.modelBytes, double(m.storedBytes()));
        // Per token: 5 blocks and the head (2 · 64 · 512).
        QCOMPARE(c.flops, 640.0 * (5.0 * kBlockFlops + 2.0 * 64 * 512));
        QCOMPARE(c.seconds(1.0), c.flops / 1e9);
        QCOMPARE(c.fixedSeconds, 0.0);
    }

    void calibrationByHand()
    {
        LL_REQUIRE_SHARED();
        const Model& m = *stories();
        CalibrationShape s;
        s.windows = 8;
        s.context = 64;
        s.lastBlock = 2;
        s.statsBlocks = 1;
        s.sequential = true;
        s.threads = 2;
        const JobCost c = estimateCalibration(m, s);
        QCOMPARE(part(c, "calibration activations"), 8.0 * 64 * 64 * 4);            // windows × ctx × hidden × 4
        QCOMPARE(part(c, "forward pass"), 512.0 * (kRowBytes + 4.0 * 64));           // + the sequential copy
        // X^T X in double (lower triangles) for q/k/v (64), o (64), gate/up (64), down (172), and a float partial per thread.
        QCOMPARE(part(c, "Hessians"), 8.0 * (3 * 64 * 65 / 2 + 172 * 173 / 2) + 2.0 * 4.0 * 172 * 172);
        QCOMPARE(c.spillBytes, 0.0);
        // Blocks 0..2 once, block 2 again (sequential), and block 2's Gram products 2 in² per token.
        QCOMPARE(c.flops, 512.0 * (3 * kBlockFlops + kBlockFlops + 2.0 * (3 * 64 * 64 + 172 * 172)));

        // Past the in-memory budget, the activations go to a temporary file.
        s.activationBudgetBytes = 100000;
        const JobCost spilled = estimateCalibration(m, s);
        QCOMPARE(part(spilled, "calibration activations"), 100000.0);
        QCOMPARE(spilled.spillBytes, 131072.0 - 100000.0);
        // It reads the embedding (512 × 64) and blocks 0..2 (45 440 parameters each), in F32.
        QCOMPARE(c.modelBytes, 4.0 * (512 * 64 + 3 * 45440));
    }

    void stepByHand()
    {
        LL_REQUIRE_SHARED();
        const CompressionState st = CompressionState::initial(stories());
        RecipeStep rtn;
        rtn.action = StepAction::Quantize;
        rtn.params = {{"method", "rtn"}, {"bits", 4}, {"group", 32}};
        const std::vector<std::string> targets{"blocks.0.mlp.down.weight", "blocks.1.attn.q.weight"};
        const JobCost c = estimateStep(st, rtn, targets, RecipeCalibration{}, 2);
        // Data-free: no calibration pass at all.
        QCOMPARE(part(c, "calibration activations"), -1.0);
        QCOMPARE(part(c, "largest layer"), 3.0 * 4.0 * 64 * 172);
        // 4 bits + a float scale and a byte zero per group of 32: 5.25 bits a weight.
        QCOMPARE(part(c, "compressed layers"), (64.0 * 172 + 64.0 * 64) * 5.25 / 8.0);
        QCOMPARE(c.flops, 20.0 * (64 * 172 + 64 * 64));
        QCOMPARE(c.fixedSeconds, kStepSecondsPerWeight * (64 * 172 + 64 * 64)); // decode, pack, check, weight error
        QCOMPARE(c.modelBytes, 4.0 * (64 * 172 + 64 * 64));                    // it reads its two layers only
        QCOMPARE(c.seconds(40.0), c.flops / 40e9 + c.fixedSeconds);

        // Asking for the output error runs the calibration on at most 8 windows through block 1.
        RecipeStep measured = rtn;
        measured.params["output-error"] = true;
        RecipeCalibration calib;
        calib.windows = 64;
        calib.context = 64;
        const JobCost withError = estimateStep(st, measured, targets, calib, 2);
        QCOMPARE(part(withError, "calibration activations"), 8.0 * 64 * 64 * 4);
        QVERIFY(withError.flops > c.flops + 8 * 64 * 2 * kBlockFlops);

        // GPTQ: the calibration over all 64 windows, sequential, and 2·out·in² + in³ per layer.
        RecipeStep gptq = rtn;
        gptq.params["method"] = "gptq";
        const JobCost g = estimateStep(st, gptq, {"blocks.1.attn.q.weight"}, calib, 2);
        QCOMPARE(part(g, "calibration activations"), 64.0 * 64 * 64 * 4);
        CalibrationShape s;
        s.windows = 64;
        s.context = 64;
        s.lastBlock = 1;
        s.threads = 2;
        QCOMPARE(g.flops, estimateCalibration(*stories(), s).flops + 2.0 * 64 * 64 * 64 + 64.0 * 64 * 64);

        // Each method's work comes from its registry entry (MethodSpec::work): GPTAQ
        // runs GPTQ's sweep, where the cost model once charged it an RTN's 20 flops a weight.
        const MethodSpec& gptaqSpec = requireMethodSpec(StepAction::Quantize, "gptaq");
        QVERIFY(gptaqSpec.work);
        const MethodWork w = gptaqSpec.work(ParamValues{}, 64, 172);
        QCOMPARE(w.flops, 2.0 * 64 * 172 * 172 + 172.0 * 172 * 172);
        QCOMPARE(w.workBytes, 2.0 * 4 * 172 * 172);
        // SVD-LLM: a full SVD and the whitening; a pruning step without a hook: 30 flops a weight.
        RecipeStep svdLlm;
        svdLlm.action = StepAction::Factorize;
        svdLlm.params = {{"method", "svd-llm"}, {"rank-ratio", 0.5}};
        const JobCost f = estimateStep(st, svdLlm, {"blocks.1.attn.q.weight"}, calib, 2);
        s.sequential = false; // SVD-LLM profiles the original model
        QCOMPARE(f.flops, estimateCalibration(*stories(), s).flops + 4.0 * 64 * 64 * 64 + 8.0 * 64 * 64 * 64
                              + 2.0 * 64 * 64 * 64);
        RecipeStep magnitude;
        magnitude.action = StepAction::Prune;
        magnitude.params = {{"method", "magnitude"}, {"sparsity", 0.5}};
        QCOMPARE(estimateStep(st, magnitude, targets, RecipeCalibration{}, 2).flops, 30.0 * (64 * 172 + 64 * 64));
    }

    void refusalSaysWhatToChange()
    {
        JobCost c;
        c.job = "GPTQ 4b g128 on 224 layers";
        c.memory = {{"calibration activations", 3e9, "fewer calibration windows (64 now) or a shorter context (512)"},
                    {"Hessians (XᵀX of one block)", 1e9, "a method that needs no Hessians"}};
        c.modelBytes = 2e9;
        // Needed: 1.1 × (4 GB + the 2 GB of weights not yet resident) = 6.6 GB.
        const FitCheck no = checkFits(c, 4e9, 0.0);
        QVERIFY(!no.fits);
        QCOMPARE(no.neededBytes, 1.1 * 6e9);
        qInfo("%s", no.message.c_str());
        QVERIFY(no.message.find("GPTQ 4b g128 on 224 layers needs about 6.6 GB") != std::string::npos);
        QVERIFY(no.message.find("calibration activations 3.0 GB") != std::string::npos);
        QVERIFY(no.message.find("only 4.0 GB is available") != std::string::npos);
        QVERIFY(no.message.find("Use fewer calibration windows (64 now)") != std::string::npos);
        // The weights already mapped and resident cost nothing more.
        QCOMPARE(checkFits(c, 4e9, 2e9).neededBytes, 1.1 * 4e9);
        QVERIFY(checkFits(c, 5e9, 2e9).fits);
        QVERIFY(checkFits(c, 5e9, 2e9).message.empty());
    }

    // The 1B model's figures follow from its parameter count (headers only: opening maps nothing).
    void userSizedModel()
    {
        // The benchmark models live in ../models beside the project (docs/benchmarks.md, `layerlab-bench gen`).
        std::string path = test::sharedPath("models/llama3.2-1b-bf16");
        if (!QFileInfo::exists(QString::fromStdString(path)))
            path = std::string(LAYERLAB_SOURCE_DIR) + "/../models/llama3.2-1b-bf16";
        if (!QFileInfo::exists(QString::fromStdString(path)))
            QSKIP("no llama3.2-1b-bf16 in ../shared/models or ../models");
        const std::shared_ptr<const Model> m = openModel(path);
        const JobCost eval = estimateEvaluation(*m, 40, 512, 2);
        // Per token about 2 × the 1.24 B parameters less the embedding lookup (tied: the head reads it).
        const double perToken = eval.flops / (40.0 * 512);
        qInfo("1B: %.2f GFLOP per token, evaluation memory %s + weights %s", perToken / 1e9,
              formatGigabytes(eval.workingBytes()).c_str(), formatGigabytes(eval.modelBytes).c_str());
        QVERIFY(perToken > 2.0 * 1.2e9 && perToken < 2.0 * 1.3e9);
        QVERIFY(std::abs(eval.modelBytes - 2.47e9) < 0.01e9);
        QVERIFY(eval.workingBytes() < 1e9);

        // RTN 4-bit on every linear: no calibration; the results packed at about 4.3 bits.
        RecipeStep rtn;
        rtn.action = StepAction::Quantize;
        rtn.params = {{"method", "rtn"}, {"bits", 4}, {"group", 128}};
        std::vector<std::string> all;
        for (const LogicalTensor& t : m->tensors)
            if (isLinear(t.role) && t.block >= 0 && !t.isBias)
                all.push_back(t.logicalName);
        QCOMPARE(all.size(), size_t(112));
        const JobCost step = estimateStep(CompressionState::initial(m), rtn, all, RecipeCalibration{}, 2);
        qInfo("1B RTN 4-bit: %s working, %.1f s at the assumed rate", formatGigabytes(step.workingBytes()).c_str(),
              step.seconds(kAssumedGflops));
        QVERIFY(step.workingBytes() < 1e9);
        QVERIFY(part(step, "calibration activations") < 0);
    }
};

QTEST_APPLESS_MAIN(TestJobCost)
#include "test_job_cost.moc"
