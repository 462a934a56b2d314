// Perplexity and model comparison: the stories260K reference perplexity,
// the scoring protocols against NLL computed here from transformers' logits,
// cancellation, and KL / top-1 agreement between models.
#include "test_support.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/progress.h"

#include <QElapsedTimer>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <span>

using namespace ll;

namespace {

// The reference perplexity of stories260K on eval.txt (shared/reference/stories260K_compression.json).
constexpr double kReferencePpl = 5.374330864181695;
constexpr int64_t kReferenceScored = 311610;
// Relative agreement asked for the whole-file perplexity (0.01 %).
constexpr double kPplRelTolerance = 1e-4;
// NLL computed from our logits vs from transformers' logits (both F32, |logit diff| <= 3e-5).
constexpr double kNllTolerance = 1e-5;

std::vector<int32_t> toInt32(const std::vector<int64_t>& v)
{
    return std::vector<int32_t>(v.begin(), v.end());
}

// Per-token NLL of the tokens after `first` predictor position, from row-major reference logits, in double.
std::vector<double> referenceNll(const std::vector<float>& logits, int64_t vocab, const std::vector<int32_t>& ids,
                                 int64_t firstPredictor)
{
    std::vector<double> out;
    for (size_t p = static_cast<size_t>(firstPredictor); p + 1 < ids.size(); ++p) {
        const float* row = logits.data() + p * static_cast<size_t>(vocab);
        double m = row[0];
        for (int64_t j = 1; j < vocab; ++j)
            m = std::max(m, static_cast<double>(row[j]));
        double s = 0;
        for (int64_t j = 0; j < vocab; ++j)
            s += std::exp(row[j] - m);
        out.push_back(m + std::log(s) - row[ids[p + 1]]);
    }
    return out;
}

double mean(const std::vector<double>& v)
{
    double s = 0;
    for (double x : v)
        s += x;
    return s / static_cast<double>(v.size());
}

// Reports once, then asks to stop: cancellation lands after the first batch.
class CancelAfterFirstBatch : public Progress {
public:
    void report(double, std::string_view) override { ++reports; }
    bool cancelled() const override { return reports >= 1; }
    int reports = 0;
};

struct Stories {
    std::unique_ptr<Model> model;
    std::unique_ptr<Transformer> transformer;
    std::vector<int32_t> evalTokens;
    PerplexityResult full; // eval.txt at ctx 256, once computed
};

Stories& stories()
{
    static Stories s;
    if (!s.model) {
        s.model = openModel(test::sharedPath("models/stories260K-hf"));
        s.transformer = std::make_unique<Transformer>(*s.model);
        const auto tok = loadTokenizer(*s.model);
        s.evalTokens = tok->encode(test::readFile(test::sharedPath("data/tinystories/eval.txt")), true);
    }
    return s;
}

} // namespace

class TestEval : public QObject {
    Q_OBJECT

private slots:
    void windowPlan();
    void protocolsMatchTransformersLogits();
    void storiesPerplexityMatchesReference();
    void llamaCppProtocol();
    void cancelledEvaluationThrowsAndChangesNothing();
    void modelComparedWithItself();
    void comparisonOfDifferentModels();
    void tooShortTextIsRejected();
    void cliPerplexity();
    void cliPerplexityWindows();
    void cliGenerateGreedy();
    void brokenConfigsAreRefusedNotScored();
};

void TestEval::windowPlan()
{
    ScoringOptions o;
    o.context = 256;
    const WindowPlan full = planWindows(1222 * 256 + 255, o); // the tail of 255 tokens is dropped
    QCOMPARE(full.windows, int64_t{1222});
    QCOMPARE(full.tokensScored(), kReferenceScored);
    o.protocol = ScoringProtocol::LlamaCpp;
    const WindowPlan half = planWindows(1222 * 256, o);
    QCOMPARE(half.firstPredictor, int64_t{128});
    QCOMPARE(half.scoredPerWindow, int64_t{127}); // llama.cpp: n_ctx - 1 - n_ctx/2
    o.maxWindows = 10;
    QCOMPARE(planWindows(1222 * 256, o).windows, int64_t{10});
}

void TestEval::protocolsMatchTransformersLogits()
{
    LL_REQUIRE_SHARED();
    const std::string refFile = test::sharedPath("reference/stories260K_logits.safetensors");
    const std::vector<int32_t> ids = toInt32(test::referenceInt64(refFile, "input_ids"));
    std::vector<int64_t> shape;
    const std::vector<float> logits = test::referenceFloats(refFile, "logits", &shape);
    const int64_t vocab = shape.back();
    QCOMPARE(ids.size(), size_t{64});
    QCOMPARE(ids.front(), 1); // BOS first, so llama.cpp's BOS replacement changes nothing here
    Stories& s = stories();

    for (auto protocol : {ScoringProtocol::Full, ScoringProtocol::LlamaCpp}) {
        ScoringOptions o;
        o.context = 64;
        o.protocol = protocol;
        const std::vector<double> nll = referenceNll(logits, vocab, ids, protocol == ScoringProtocol::Full ? 0 : 32);
        const PerplexityResult r = evaluatePerplexity(*s.transformer, ids, o);
        QCOMPARE(r.tokensScored, static_cast<int64_t>(nll.size()));
        const double m = mean(nll);
        double var = 0;
        for (double x : nll)
            var += (x - m) * (x - m);
        const double se = std::sqrt(var / static_cast<double>(nll.size() - 1) / static_cast<double>(nll.size()));
        qInfo("protocol %s: nll %.6f (transformers %.6f), stderr %.6f (%.6f), ppl %.4f +- %.4f",
              protocol == ScoringProtocol::Full ? "full" : "llama.cpp", r.nllMean, m, r.nllStderr, se, r.ppl, r.pplStderr);
        QVERIFY(std::fabs(r.nllMean - m) <= kNllTolerance);
        QVERIFY(std::fabs(r.nllStderr - se) <= kNllTolerance);
        QVERIFY(std::fabs(r.ppl - std::exp(m)) <= kNllTolerance * std::exp(m) * 2);
        QVERIFY(std::fabs(r.pplStderr - std::exp(m) * se) <= 1e-4); // delta method
    }
}

void TestEval::storiesPerplexityMatchesReference()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ScoringOptions o;
    o.context = 256;
    QElapsedTimer timer;
    timer.start();
    const PerplexityResult r = s.full = evaluatePerplexity(*s.transformer, s.evalTokens, o);
    const double seconds = static_cast<double>(timer.nsecsElapsed()) * 1e-9;
    qInfo("stories260K eval.txt ctx 256: ppl %.6f +- %.4f (reference %.6f), %lld tokens scored in %.2f s (%.0f tokens/s)",
          r.ppl, r.pplStderr, kReferencePpl, static_cast<long long>(r.tokensScored), seconds,
          static_cast<double>(r.tokensScored) / seconds);
    QCOMPARE(r.tokensScored, kReferenceScored);
    QCOMPARE(r.windows, int64_t{1222});
    QVERIFY2(std::fabs(r.ppl / kReferencePpl - 1.0) <= kPplRelTolerance, qPrintable(QString::number(r.ppl, 'g', 10)));
    QVERIFY(r.pplStderr > 0 && r.pplStderr < 0.05 * r.ppl);
}

void TestEval::llamaCppProtocol()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ScoringOptions o;
    o.context = 256;
    o.protocol = ScoringProtocol::LlamaCpp;
    const PerplexityResult half = evaluatePerplexity(*s.transformer, s.evalTokens, o);
    qInfo("llama.cpp protocol: ppl %.4f over %lld tokens", half.ppl, static_cast<long long>(half.tokensScored));
    QCOMPARE(half.tokensScored, int64_t{1222 * 127});
    // Second halves see at least 128 tokens of context: easier to predict than whole windows.
    if (s.full.tokensScored == 0) {
        o.protocol = ScoringProtocol::Full;
        s.full = evaluatePerplexity(*s.transformer, s.evalTokens, o);
    }
    QVERIFY(half.ppl < s.full.ppl);
}

void TestEval::cancelledEvaluationThrowsAndChangesNothing()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ScoringOptions o;
    o.context = 256;
    o.maxWindows = 64;
    o.windowsPerBatch = 8;
    const PerplexityResult before = evaluatePerplexity(*s.transformer, s.evalTokens, o);
    CancelAfterFirstBatch cancel;
    try {
        (void)evaluatePerplexity(*s.transformer, s.evalTokens, o, &cancel);
        QFAIL("the evaluation ran to the end although cancelled");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::Cancelled);
    }
    QCOMPARE(cancel.reports, 1); // stopped after the first of 8 batches
    const PerplexityResult after = evaluatePerplexity(*s.transformer, s.evalTokens, o);
    QCOMPARE(after.nllMean, before.nllMean);
    QCOMPARE(after.tokensScored, before.tokensScored);

    CancelFlag flag;
    flag.cancel();
    try {
        (void)compareModels(*s.transformer, *s.transformer, s.evalTokens, o, &flag);
        QFAIL("the comparison ran although cancelled");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::Cancelled);
    }
}

void TestEval::modelComparedWithItself()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ScoringOptions o;
    o.context = 256;
    o.maxWindows = 40;
    const ComparisonResult c = compareModels(*s.transformer, *s.transformer, s.evalTokens, o);
    QCOMPARE(c.tokensScored, int64_t{40 * 255});
    QCOMPARE(c.klMean, 0.0);
    QCOMPARE(c.klMax, 0.0);
    QCOMPARE(c.top1Agreement, 1.0);
    QCOMPARE(c.deltaNll, 0.0);
    QCOMPARE(c.nllReference, c.nllCandidate);
}

void TestEval::comparisonOfDifferentModels()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    // A cruder copy: every weight of block 2's MLP down projection rounded to 1/8.
    Transformer rough(*s.model);
    MatrixRM w = rough.linear(2, Role::MlpDown).dense();
    w = (w.array() * 8.0f).round() / 8.0f;
    rough.setLinearWeight(2, Role::MlpDown, w);
    ScoringOptions o;
    o.context = 256;
    o.maxWindows = 40;
    const ComparisonResult c = compareModels(*s.transformer, rough, s.evalTokens, o);
    const PerplexityResult pr = evaluatePerplexity(*s.transformer, s.evalTokens, o);
    const PerplexityResult pc = evaluatePerplexity(rough, s.evalTokens, o);
    qInfo("rounded down-proj: KL %.5f (max %.4f), top-1 %.4f, dNLL %.5f +- %.5f", c.klMean, c.klMax, c.top1Agreement,
          c.deltaNll, c.deltaNllStderr);
    QVERIFY(c.klMean > 0 && c.klMax >= c.klMean);
    QVERIFY(c.top1Agreement > 0.5 && c.top1Agreement < 1.0);
    // Each side's NLL is the one a separate perplexity run gives.
    QVERIFY(std::fabs(c.nllReference - pr.nllMean) <= 1e-9);
    QVERIFY(std::fabs(c.nllCandidate - pc.nllMean) <= 1e-9);
    QVERIFY(std::fabs(c.deltaNll - (pc.nllMean - pr.nllMean)) <= 1e-9);
}

void TestEval::tooShortTextIsRejected()
{
    LL_REQUIRE_SHARED();
    Stories& s = stories();
    ScoringOptions o;
    o.context = 256;
    try {
        (void)evaluatePerplexity(*s.transformer, std::vector<int32_t>(255, 1), o);
        QFAIL("255 tokens made a window of 256");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
    }
}

void TestEval::cliPerplexity()
{
    LL_REQUIRE_SHARED();
    // The same model in all three formats: llama2.c, GGUF (their own tokenizers) and HF.
    for (const char* model : {"models/stories260K-hf", "models/stories260K/stories260K.bin",
                              "models/stories260K-gguf/stories260K-f32.gguf"}) {
        const test::CliResult r = test::runCli({"ppl", test::sharedPath(model), "--text",
                                                test::sharedPath("data/tinystories/eval.txt"), "--ctx", "256", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(r.out);
        qInfo("layerlab-cli ppl %s: %s", model, j.dump().c_str());
        QCOMPARE(j["tokens_scored"].get<int64_t>(), kReferenceScored);
        QVERIFY(std::fabs(j["ppl"].get<double>() / kReferencePpl - 1.0) <= kPplRelTolerance);
        QVERIFY(std::fabs(std::exp(j["nll_mean"].get<double>()) - j["ppl"].get<double>()) <= 1e-9);
        QVERIFY(j["stderr"].get<double>() > 0);
    }

    const test::CliResult bad = test::runCli({"ppl", test::sharedPath("models/stories260K-hf"), "--text",
                                              test::sharedPath("data/tinystories/eval.txt"), "--protocol", "wiki"});
    QCOMPARE(bad.exitCode, 64);
}

// --windows N scores the first N windows (--max-windows is its older name),
// --tokens N the whole windows covering N tokens; the progress lines (asked
// for with --progress, as stderr is no terminal here) end with the time left.
void TestEval::cliPerplexityWindows()
{
    LL_REQUIRE_SHARED();
    const std::string model = test::sharedPath("models/stories260K-hf");
    const std::string text = test::sharedPath("data/tinystories/eval.txt");
    const auto run = [&](std::vector<std::string> extra) {
        std::vector<std::string> args{"ppl", model, "--text", text, "--ctx", "64", "--json"};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::runCli(args);
    };
    const test::CliResult windows = run({"--windows", "3", "--batch", "1", "--progress"});
    QVERIFY2(windows.exitCode == 0, windows.err.c_str());
    const nlohmann::json j = nlohmann::json::parse(windows.out);
    QCOMPARE(j["windows"].get<int64_t>(), int64_t{3});
    QCOMPARE(j["tokens_scored"].get<int64_t>(), int64_t{3 * 63});
    QVERIFY(j["stderr"].get<double>() > 0);
    // One line per batch of one window; from the second on, the time left.
    qInfo("progress lines:\n%s", windows.err.c_str());
    QVERIFY2(windows.err.find("window 1 of 3") != std::string::npos, windows.err.c_str());
    QVERIFY2(windows.err.find("window 3 of 3") != std::string::npos, windows.err.c_str());
    QVERIFY2(windows.err.find(" left") != std::string::npos, windows.err.c_str());

    const test::CliResult alias = run({"--max-windows", "3"});
    QVERIFY2(alias.exitCode == 0, alias.err.c_str());
    QCOMPARE(nlohmann::json::parse(alias.out)["ppl"].get<double>(), j["ppl"].get<double>());
    QVERIFY(alias.err.empty()); // no terminal, no --progress: silent

    const test::CliResult tokens = run({"--tokens", "129"}); // 129 tokens: three windows of 64
    QVERIFY2(tokens.exitCode == 0, tokens.err.c_str());
    QCOMPARE(nlohmann::json::parse(tokens.out)["windows"].get<int64_t>(), int64_t{3});
    QCOMPARE(nlohmann::json::parse(tokens.out)["ppl"].get<double>(), j["ppl"].get<double>());

    QCOMPARE(run({"--windows", "3", "--tokens", "100"}).exitCode, 64);
    QCOMPARE(run({"--windows", "3", "--max-windows", "3"}).exitCode, 64);
}

void TestEval::cliGenerateGreedy()
{
    LL_REQUIRE_SHARED();
    const nlohmann::json ref = nlohmann::json::parse(test::readFile(test::sharedPath("reference/stories260K_tokenizer.json")));
    const test::CliResult r = test::runCli({"generate", test::sharedPath("models/stories260K-hf"), "--prompt",
                                            ref["prompt"].get<std::string>(), "-n", "48", "--no-eos", "--json"});
    QVERIFY2(r.exitCode == 0, r.err.c_str());
    const nlohmann::json j = nlohmann::json::parse(r.out);
    QCOMPARE(j["prompt_ids"], ref["prompt_ids"]);
    std::vector<int> all = j["prompt_ids"].get<std::vector<int>>();
    for (int id : j["ids"].get<std::vector<int>>())
        all.push_back(id);
    QCOMPARE(all, ref["greedy_48_ids"].get<std::vector<int>>());
    QCOMPARE(j["text"].get<std::string>(), ref["greedy_48_text"].get<std::string>());
}

QTEST_APPLESS_MAIN(TestEval)
#include "test_eval.moc"

// Issue 16, finding 5: a rotary base of -1, 0 or 1e-320 or a linear rope
// factor of 0 used to give PPL = -nan with exit 0. They are refused when the
// model is built, naming the folder; NaN logits (a NaN weight) are refused
// by the evaluation instead of averaged.
void TestEval::brokenConfigsAreRefusedNotScored()
{
    LL_REQUIRE_SHARED();
    namespace fs = std::filesystem;
    const fs::path source = test::sharedPath("models/stories260K-hf");
    const nlohmann::json config = nlohmann::json::parse(test::readFile((source / "config.json").string()));
    const std::string text = test::sharedPath("data/tinystories/eval.txt");
    struct Case {
        const char* name;
        nlohmann::json patch;
        const char* words;
    };
    const Case cases[] = {
        {"theta-1", {{"rope_parameters", {{"rope_theta", -1.0}, {"rope_type", "default"}}}}, "rotary base"},
        {"theta0", {{"rope_parameters", {{"rope_theta", 0}, {"rope_type", "default"}}}}, "rotary base"},
        {"theta-denormal", {{"rope_parameters", {{"rope_theta", 1e-320}, {"rope_type", "default"}}}}, "rotary base"},
        {"linear0", {{"rope_parameters", {{"rope_theta", 10000.0}, {"rope_type", "linear"}, {"factor", 0}}}}, "factor"},
        // Finding 7: values that contradict the tensors are errors for running the model.
        {"vocab", {{"vocab_size", 1000000000}}, "vocabulary has 1000000000 tokens"},
        {"ffn", {{"intermediate_size", 2}}, "MLP is 2 wide"},
        {"heads", {{"num_attention_heads", 1000000}, {"num_key_value_heads", 1000000}}, "block 0 q"},
        // Finding 6: numbers are printed as they were given (2^63 was shown as a negative number).
        {"vocab-2^63", {{"vocab_size", 9223372036854775808ULL}}, "\"vocab_size\" = 9223372036854775808 is outside"},
    };
    for (const Case& c : cases) {
        const fs::path dir = fs::path(test::scratchDir()) / c.name;
        fs::create_directories(dir);
        for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json"})
            fs::copy_file(source / f, dir / f);
        nlohmann::json patched = config;
        patched.merge_patch(c.patch);
        test::writeFile((dir / "config.json").string(), patched.dump());
        const test::CliResult r = test::runCli({"ppl", dir.string(), "--text", text, "--ctx", "256", "--windows", "1"});
        const std::string what = std::string(c.name) + ": exit " + std::to_string(r.exitCode) + ", " + r.err + r.out;
        QVERIFY2(r.exitCode == 2, what.c_str());
        QVERIFY2(r.err.find(dir.string()) != std::string::npos && r.err.find(c.words) != std::string::npos, what.c_str());
        QVERIFY2(r.out.find("nan") == std::string::npos, what.c_str());
        // `inspect` still lists a file whose config contradicts its tensors, with a warning.
        if (std::string(c.name) == "vocab" || std::string(c.name) == "ffn" || std::string(c.name) == "heads") {
            const test::CliResult i = test::runCli({"inspect", dir.string()});
            QVERIFY2(i.exitCode == 0 && i.out.find("WARNING: the configuration says") != std::string::npos, (i.out + i.err).c_str());
        }
    }
    // NaN logits: one NaN in the final norm's weights reaches every logit.
    auto m = openModel(source.string());
    Transformer t(*m);
    TransformerWeights w = t.weights();
    w.finalNorm.w[0] = std::nanf("");
    const Transformer broken(t.config(), std::move(w), m->metadata);
    ScoringOptions o;
    o.context = 256;
    try {
        (void)evaluatePerplexity(broken, std::span(stories().evalTokens).first(512), o);
        QFAIL("a NaN model got a perplexity");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::Malformed);
        QVERIFY2(std::string(e.what()).find("not finite") != std::string::npos, e.what());
    }
}
