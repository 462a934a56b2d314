// Recipes: the YAML / JSON schema (round trips, every kind of mistake refused
// with a message naming the step), applyRecipe() against the model-level
// methods called directly (bit-identical weights), and `layerlab-cli apply`
// against the in-process result (identical weights and perplexity).
#include "test_support.h"

#include "analysis/model_cost.h"
#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "model/tensor_data.h"
#include "pipeline/model_compression.h"
#include "pipeline/quantize_model.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "recipe/step_options.h"
#include "recipe/yaml_json.h"
#include "util/error.h"
#include "util/json_util.h"

#include <QtTest>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

using namespace ll;

namespace {

const char* kStories = "models/stories260K-hf";
// Short calibration keeps the test quick; the protocol's 64 windows are not needed to test replay.
constexpr int64_t kCalibWindows = 8;

std::shared_ptr<const Model> stories()
{
    static std::shared_ptr<const Model> m = openModel(test::sharedPath(kStories));
    return m;
}

Recipe threeStepRecipe()
{
    Recipe r;
    r.calibration.text = test::sharedPath("data/tinystories/calib.txt");
    r.calibration.windows = kCalibWindows;
    r.description = "test: three kinds of steps";
    RecipeStep q;
    q.action = StepAction::Quantize;
    q.layers = "attn";
    q.params = {{"method", "gptq"}, {"bits", 4}, {"group", 32}};
    RecipeStep p;
    p.action = StepAction::Prune;
    p.layers = "mlp\\.(gate|up)";
    p.params = {{"method", "wanda"}, {"sparsity", 0.5}};
    RecipeStep f;
    f.action = StepAction::Factorize;
    f.layers = "mlp\\.down";
    f.params = {{"method", "svd"}, {"rank-ratio", 0.5}};
    r.steps = {q, p, f};
    return r;
}

// Every logical tensor of a and b has bit-identical values.
void verifySameWeights(const Model& a, const Model& b)
{
    QCOMPARE(a.tensors.size(), b.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        const LogicalTensor& ta = a.tensors[i];
        const LogicalTensor* tb = b.findLogical(ta.logicalName);
        QVERIFY2(tb, ta.logicalName.c_str());
        QCOMPARE(ta.shape, tb->shape);
        const std::vector<float> va = readLogical(a, ta), vb = readLogical(b, *tb);
        QVERIFY2(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0, ta.logicalName.c_str());
    }
}

void expectMalformed(const std::string& text, bool yaml, const std::string& needle)
{
    try {
        parseRecipe(text, yaml, "r.yaml");
        QFAIL(("accepted: " + text).c_str());
    } catch (const Error& e) {
        QVERIFY2(e.code() == ErrorCode::Malformed, e.what());
        QVERIFY2(std::string(e.what()).find(needle) != std::string::npos, (std::string(e.what()) + " lacks " + needle).c_str());
        QVERIFY2(std::string(e.what()).find("r.yaml") != std::string::npos, e.what());
    }
}

} // namespace

class TestRecipe : public QObject {
    Q_OBJECT
private slots:
    void yamlAndJsonRoundTrip()
    {
        const Recipe r = threeStepRecipe();
        const Recipe fromYaml = parseRecipe(recipeToYaml(r), true);
        QVERIFY(fromYaml == r);
        const Recipe fromJson = parseRecipe(r.toJson().dump(), false);
        QVERIFY(fromJson == r);
        // Underscores and hyphens mean the same key; LayerLab writes underscores.
        QVERIFY(recipeToYaml(r).find("rank_ratio: 0.5") != std::string::npos);
        const Recipe hyphen = parseRecipe("layerlab_recipe: 1\nsteps:\n  - {action: factorize, method: svd, rank-ratio: 0.5}\n", true);
        QCOMPARE(hyphen.steps.at(0).params, r.steps[2].params);
        // Text that looks like a number or a boolean stays text through YAML.
        Recipe tricky;
        RecipeStep s;
        s.action = StepAction::Prune;
        s.layers = "1";
        s.params = {{"method", "magnitude"}, {"nm", "2:4"}};
        tricky.steps = {s};
        tricky.description = "true";
        QVERIFY(parseRecipe(recipeToYaml(tricky), true) == tricky);
    }

    void exampleRecipesParse()
    {
        const std::string dir = std::string(LAYERLAB_SOURCE_DIR) + "/resources/recipes/";
        for (const char* name : {"gptq-4bit.yaml", "sparse-then-quantize.yaml", "lowrank-mlp.json", "mixed-precision.yaml"}) {
            const Recipe r = loadRecipe(dir + name);
            QVERIFY2(!r.steps.empty(), name);
        }
    }

    void mistakesAreRefused()
    {
        expectMalformed("steps: []\n", true, "layerlab_recipe");
        expectMalformed("layerlab_recipe: 2\nsteps: []\n", true, "version 2");
        expectMalformed("layerlab_recipe: 1\nsteps: [{method: rtn, bits: 4}]\n", true, "step 1 has no 'action'");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: squash}]\n", true, "quantize, prune, factorize, rotate or kv-cache");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: quantize, method: rtn, bitz: 4}]\n", true, "no parameter 'bitz'");
        expectMalformed("layerlab_recipe: 1\nsteps:\n - {action: quantize, method: rtn, bits: 4}\n - {action: quantize, method: rtn, bits: 12}\n",
                        true, "step 2");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: quantize, method: rtn, bits: 12}]\n", true, "bits must be an integer in [2, 8]");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: prune, method: wanda}]\n", true, "sparsity");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: factorize, method: svd, rank_ratio: 1.5}]\n", true, "rank-ratio");
        // A number given as true/false (the recipe fuzzer's crash: the value was read from an empty optional).
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: prune, method: wanda, sparsity: true}]\n", true,
                        "sparsity must be a number in [0, 1], not true or false");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: quantize, method: rtn, bits: true}]\n", true,
                        "bits must be an integer in [2, 8], not true or false");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: prune, method: magnitude, sparsity: 0.5, extra: [1, 2]}]\n", true,
                        "string, a number or true/false");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: quantize\n", true, "not valid YAML");
        expectMalformed("{\"layerlab_recipe\": 1, \"steps\": [}", false, "not valid JSON");
        expectMalformed("layerlab_recipe: 1\ncalibration: {windows: -3}\nsteps: []\n", true, "calibration");
        expectMalformed("layerlab_recipe: 1\nsteps: []\ncolour: blue\n", true, "unknown key 'colour'");
        try {
            loadRecipe("/nonexistent/recipe.yaml");
            QFAIL("opened a missing file");
        } catch (const Error& e) {
            QCOMPARE(e.code(), ErrorCode::Io);
        }
    }

    // Issue 16's recipe findings, each with its minimal input: refused with a
    // one-line Malformed error naming the file, at once and in bounded memory.
    void hostileYamlIsRefused()
    {
        expectMalformed("layerlab_recipe: 1\nsteps: &s [*s]\n", true, "aliases");   // was SIGSEGV (recursion)
        expectMalformed("x: &x [*x]\n", true, "aliases");
        // "Billion laughs": nine levels of nine aliases (was 4 GB, then bad_alloc).
        std::string laughs = "layerlab_recipe: 1\na0: &a0 [lol]\n";
        for (int i = 1; i <= 9; ++i) {
            laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
            for (int k = 0; k < 9; ++k)
                laughs += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
            laughs += "]\n";
        }
        laughs += "steps: []\n";
        expectMalformed(laughs, true, "aliases");
        // Deep nesting ends before the parser's recursion can exhaust the stack.
        expectMalformed(std::string(200000, '[') + std::string(200000, ']'), true, "nested deeper than 64");
        std::string dashes; // block sequences: "- - - ... x" nests one level per "- "
        for (int i = 0; i < 100000; ++i)
            dashes += "- ";
        expectMalformed(dashes + "x\n", true, "nested deeper than 64");
        expectMalformed("layerlab_recipe: 1\nsteps: []\nsteps: []\n", true, "\"steps\" appears twice");
        expectMalformed("layerlab_recipe: 1\nsteps: []\n---\nlayerlab_recipe: 1\n", true, "more than one YAML document");
        expectMalformed("layerlab_recipe: 1\n[a]: b\nsteps: []\n", true, "key must be text");
        std::string many = "layerlab_recipe: 1\nsteps: []\ndescription: [";
        for (size_t i = 0; i <= kMaxYamlNodes; ++i)
            many += "1,";
        expectMalformed(many + "1]\n", true, "YAML nodes");
        // Not UTF-8 (found by the fuzzer: saving the session then threw from inside json::dump).
        expectMalformed("layerlab_recipe: 1\ndescription: caf\xE9\nsteps: []\n", true, "not UTF-8 text (byte 0xE9 at offset 35)");
        expectMalformed("layerlab_recipe: 1\nsteps: [{action: quantize, method: rtn, layers: \"\xC0\xAF\"}]\n", true, "not UTF-8");
        // Non-UTF-8 names made elsewhere (a GGUF's tensor names in a layers pattern) serialize without throwing.
        Recipe odd;
        odd.steps.push_back(RecipeStep{});
        odd.steps.back().layers = exactNamePattern("blk.0.attn_\xFF.weight");
        QVERIFY(dumpJson(odd.toJson()).find("\xEF\xBF\xBD") != std::string::npos); // U+FFFD
        // A description that is YAML syntax still round-trips (quoted when saved).
        Recipe r;
        r.description = std::string(100, '[') + " &x [*x]";
        QCOMPARE(parseRecipe(recipeToYaml(r), true, "r.yaml").description, r.description);
    }

    // `layerlab-cli CMD --help` prints that command's usage (it used to fail
    // with "unknown option --help", issue 14).
    void everyCommandAnswersHelp()
    {
        for (const char* cmd : {"inspect", "bench", "tokenize", "logits", "ppl", "generate", "export", "prune", "factorize",
                                "quantize", "apply", "sensitivity", "mixed", "clean", "session"}) {
            const test::CliResult r = test::runCli({cmd, "--help"});
            QVERIFY2(r.exitCode == 0, cmd);
            QVERIFY2(r.out.rfind(std::string("usage: layerlab-cli ") + cmd + " ", 0) == 0, r.out.c_str());
            QVERIFY2(std::count(r.out.begin(), r.out.end(), '\n') >= 2, r.out.c_str()); // usage and what it does
        }
    }

    // Errors inside a step name the recipe and the step; control characters in
    // a key stay on one line (issue 16, finding 6).
    void recipeErrorsNameTheFileAndStep()
    {
        const std::string dir = test::scratchDir();
        const std::string model = test::sharedPath(kStories);
        test::writeFile(dir + "/regex.yaml", "layerlab_recipe: 1\nsteps:\n - {action: quantize, method: rtn, bits: 4, layers: \"attn[(\"}\n");
        test::CliResult r = test::runCli({"apply", dir + "/regex.yaml", model});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.find(dir + "/regex.yaml: step 1 (RTN 4b") != std::string::npos, r.err.c_str());
        test::writeFile(dir + "/ctrl.yaml", "layerlab_recipe: 1\nsteps: []\n\"a\\x01\\nb\": 1\n");
        r = test::runCli({"apply", dir + "/ctrl.yaml", model});
        QCOMPARE(r.exitCode, 2);
        QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), std::ptrdiff_t{1});
        QVERIFY2(r.err.find("unknown key 'a\\x01\\nb'") != std::string::npos, r.err.c_str());
    }

    // `session check` opens a GUI session headless (issue 16, finding 9): its
    // model, each step against that model; --replay and `apply --session` give
    // the weights `apply` gives. Damaged sessions: exit 2, one line naming the file.
    void sessionsOpenHeadless()
    {
        const std::string dir = test::scratchDir();
        const std::string model = test::sharedPath(kStories);
        const nlohmann::json step = {{"action", "quantize"}, {"method", "rtn"}, {"bits", 4}, {"group", 32}, {"layers", "attn"}};
        nlohmann::json session = {{"layerlab_session", 1},
                                  {"version", "0.1.0"},
                                  {"model", {{"path", model}, {"format", "safetensors"}, {"demo", false}}},
                                  {"recipe", {{"layerlab_recipe", 1}, {"steps", {step}}}},
                                  {"evaluation", {{"ppl", 0}}}, // malformed: a warning, not an error
                                  {"compare", nlohmann::json::array()}};
        const std::string good = dir + "/good.layerlab";
        test::writeFile(good, session.dump());
        test::CliResult r = test::runCli({"session", "check", good, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.c_str());
        nlohmann::json j = nlohmann::json::parse(r.out);
        QCOMPARE(j["steps"].size(), size_t(1));
        QCOMPARE(j["steps"][0]["targets"].get<int>(), 5 * 4); // stories260K: 5 blocks x q, k, v, o
        QCOMPARE(j["warnings"].size(), size_t(1));
        r = test::runCli({"session", "check", good});
        QVERIFY2(r.exitCode == 0 && r.out.find("WARNING: " + good + ": the saved evaluation is malformed") != std::string::npos,
                 r.out.c_str());

        // Replayed: the same bits per weight as `apply` of the same recipe.
        test::writeFile(dir + "/same.json", session["recipe"].dump());
        const test::CliResult applied = test::runCli({"apply", dir + "/same.json", model, "--json"});
        const test::CliResult viaSession = test::runCli({"apply", "--session", good, "--json"});
        r = test::runCli({"session", "check", good, "--replay", "--json"});
        QVERIFY2(applied.exitCode == 0 && viaSession.exitCode == 0 && r.exitCode == 0, (applied.err + viaSession.err + r.err).c_str());
        const double bpw = nlohmann::json::parse(applied.out)["bits_per_weight"].get<double>();
        QCOMPARE(nlohmann::json::parse(viaSession.out)["bits_per_weight"].get<double>(), bpw);
        QCOMPARE(nlohmann::json::parse(r.out)["replayed"]["bits_per_weight"].get<double>(), bpw);
        QVERIFY(bpw > 4.0 && bpw < 32.0); // 4-bit attention, F32 MLP

        // Damaged: the file is named, on one line.
        std::vector<std::pair<std::string, std::string>> cases; // file, words
        auto add = [&](const std::string& name, const std::string& text, const std::string& words) {
            test::writeFile(dir + "/" + name, text);
            cases.emplace_back(dir + "/" + name, words);
        };
        nlohmann::json s = session;
        s["model"]["path"] = dir + "/gone";
        add("gone.layerlab", s.dump(), "is missing");
        s = session;
        s["recipe"]["steps"][0]["layers"] = "no-such-layer";
        add("layers.layerlab", s.dump(), "step 1 (RTN 4b g32): ");
        s = session;
        s["recipe"]["steps"][0]["bits"] = 99;
        add("bits.layerlab", s.dump(), "recipe: step 1");
        add("deep.layerlab", "{\"layerlab_session\": 1, \"x\": " + std::string(1000, '[') + std::string(1000, ']') + "}",
            "more than 128 levels deep");
        for (const auto& e : std::filesystem::directory_iterator(std::string(LAYERLAB_SOURCE_DIR) + "/tests/data/bad/session"))
            cases.emplace_back(e.path().string(), "");
        for (const auto& [file, words] : cases) {
            r = test::runCli({"session", "check", file});
            const std::string what = file + ": " + r.err;
            QVERIFY2(r.exitCode == 2, what.c_str());
            QVERIFY2(r.err.find(file) != std::string::npos && r.err.find(words) != std::string::npos, what.c_str());
            QVERIFY2(std::count(r.err.begin(), r.err.end(), '\n') == 1, what.c_str());
        }
    }

    // Paths that are not regular files, or far too large, are refused before
    // anything is read: /dev/zero never ends, a FIFO blocks on open.
    void inputsNamedByPathMustBeRegularFiles()
    {
        const std::string dir = test::scratchDir();
        const std::string fifo = dir + "/fifo.gguf";
        QCOMPARE(::mkfifo(fifo.c_str(), 0600), 0);
        const std::string model = test::sharedPath(kStories);
        struct Case {
            std::vector<std::string> args;
            std::string file, words;
        };
        const std::string recipe = dir + "/zero.yaml";
        test::writeFile(recipe, "layerlab_recipe: 1\ncalibration: {text: /dev/zero}\nsteps:\n"
                                " - {action: quantize, method: gptq, bits: 4, group: 32, layers: attn}\n");
        const std::vector<Case> cases = {
            {{"ppl", model, "--text", "/dev/zero"}, "/dev/zero", "not a regular file"},
            {{"tokenize", model, "--text", "/dev/zero"}, "/dev/zero", "not a regular file"},
            {{"ppl", model, "--text", dir}, dir, "is a folder"},
            {{"apply", recipe, model, "--out", dir + "/out"}, "/dev/zero", "not a regular file"},
            {{"apply", "/dev/zero", model, "--out", dir + "/out"}, "/dev/zero", "not a regular file"},
            {{"inspect", fifo}, fifo, "not a regular file"},
        };
        for (const Case& c : cases) {
            const test::CliResult r = test::runCli(c.args);
            const std::string what = c.args.front() + " " + c.args.back() + ": " + r.err;
            QVERIFY2(r.exitCode == 2, what.c_str());
            QVERIFY2(r.err.find(c.file) != std::string::npos && r.err.find(c.words) != std::string::npos, what.c_str());
            QVERIFY2(std::count(r.err.begin(), r.err.end(), '\n') == 1, what.c_str()); // one line
        }
    }

    void saveIsAtomicAndReadable()
    {
        const std::string dir = test::scratchDir();
        const Recipe r = threeStepRecipe();
        for (const char* name : {"/r.yaml", "/r.json"}) {
            saveRecipe(r, dir + name);
            QVERIFY(loadRecipe(dir + name) == r);
        }
        QVERIFY(QDir(QString::fromStdString(dir)).entryList(QDir::Files).size() == 2); // no partial files left
    }

    // applyRecipe == the model-level methods chained by hand, bit for bit.
    void applyMatchesDirectCalls()
    {
        LL_REQUIRE_SHARED();
        const Recipe recipe = threeStepRecipe();
        const StepOutcome r = applyRecipe(stories(), recipe);
        QCOMPARE(r.state.steps.size(), size_t(3));

        const std::vector<int32_t> tokens = tokenizeTextFile(*stories(), recipe.calibration.text);
        CalibrationOptions calib;
        calib.windows = kCalibWindows;
        QuantizeModelOptions q;
        q.config.method = QuantMethod::Gptq;
        q.config.grid = {4, false, 32};
        q.layers = "attn";
        q.calibration = calib;
        ModelCompressionResult m1 = quantizeModel(*stories(), q, tokens);
        ModelPruneOptions p;
        p.layer.method = PruneMethod::Wanda;
        p.layer.sparsity = 0.5;
        p.layers = "mlp\\.(gate|up)";
        p.calibration = calib;
        ModelCompressionResult m2 = pruneModel(*m1.model, p, tokens);
        ModelFactorizeOptions f;
        f.method = LowRankMethod::Svd;
        f.rankRatio = 0.5;
        f.layers = "mlp\\.down";
        f.calibration = calib;
        ModelCompressionResult m3 = factorizeModel(*m2.model, f, tokens);
        verifySameWeights(*r.state.model, *m3.model);

        // The records: badges in order, bits of the quantized layers, sparsity, rank.
        const LayerRecord& q0 = r.state.layers.at("blocks.0.attn.q.weight");
        QCOMPARE(q0.badges, std::vector<std::string>{"GPTQ 4b g32"});
        QVERIFY(q0.bitsPerWeight && *q0.bitsPerWeight > 4.0 && *q0.bitsPerWeight < 5.5);
        QCOMPARE(*q0.bitsPerWeight, m1.layers.front().quantized->bitsPerWeight);
        const LayerRecord& up = r.state.layers.at("blocks.0.mlp.up.weight");
        QCOMPARE(up.badges, std::vector<std::string>{"wanda 50 % sparse"});
        QVERIFY(std::abs(up.sparsity - 0.5) < 0.01);
        const LayerRecord& down = r.state.layers.at("blocks.0.mlp.down.weight");
        QCOMPARE(down.badges, std::vector<std::string>{"SVD rank 50 %"});
        QVERIFY(down.rank > 0);
        // Weight error against the source, recomputed independently.
        const LogicalTensor* t = stories()->findLogical("blocks.0.mlp.up.weight");
        const MatrixRM W0 = readMatrix(*stories(), *t), W = readMatrix(*r.state.model, *r.state.model->findLogical(t->logicalName));
        QVERIFY(std::abs(*up.weightError - (W0 - W).norm() / W0.norm()) < 1e-5);
        QVERIFY(!r.state.layers.count("blocks.0.attn_norm.weight"));
        // Bits a weight over the block linears, by hand: the quantized attention at its records' bits; gate and
        // up (172 x 64) as sparse F32 rows, Wanda keeping 32 of each row's 64 (an 8-byte offset, a 64-bit
        // mask, 32 values; 64 zero bytes after the last row); down (64 x 172) as F32 factors of rank 32.
        double bits = 0, weights = 0;
        for (int b = 0; b < 5; ++b)
            for (Role role : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO}) {
                const LogicalTensor* t = r.state.model->find(b, role);
                bits += *r.state.layers.at(t->logicalName).bitsPerWeight * static_cast<double>(t->elements());
                weights += static_cast<double>(t->elements());
            }
        const double sparseBytes = 172.0 * (8 + 8 + 32 * 4) + 64, factorBytes = (64.0 * 32 + 32.0 * 172) * 4;
        bits += 5 * 8 * (2 * sparseBytes + factorBytes);
        weights += 5 * 3 * 11008.0;
        QVERIFY2(std::abs(r.state.linearBitsPerWeight() - bits / weights) < 1e-9,
                 qPrintable(QString("%1 against %2").arg(r.state.linearBitsPerWeight()).arg(bits / weights)));
    }

    // The cost model of Compare, against stories260K's shapes counted by hand.
    void costOfACompressedModel()
    {
        LL_REQUIRE_SHARED();
        const StepOutcome r = applyRecipe(stories(), threeStepRecipe());
        const ModelCost before = estimateCost(CompressionState::initial(stories()), 256);
        // Per block: q, o 64x64; k, v 32x64; gate, up 172x64; down 64x172. Head 512x64 (tied, still multiplied).
        const double blockMacs = 2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64;
        const double attention = 2.0 * 2.0 * 5 * 8 * 8 * 256; // layers * heads * headDim * context, scores + values
        QCOMPARE(before.denseFlopsPerToken, 2.0 * (5 * blockMacs + 512 * 64) + attention);
        QCOMPARE(before.flopsPerToken, before.denseFlopsPerToken);
        QCOMPARE(before.sourceBytes, double(stories()->storedBytes()));
        QCOMPARE(before.bytes, before.sourceBytes); // F32, nothing edited
        const ModelCost after = estimateCost(r.state, 256);
        // The five down projections are factored at rank 32: 32 (64 + 172) multiply-adds instead of 64 * 172.
        for (int b = 0; b < 5; ++b)
            QCOMPARE(r.state.layers.at("blocks." + std::to_string(b) + ".mlp.down.weight").rank, int64_t{32});
        QCOMPARE(after.flopsPerToken, before.denseFlopsPerToken - 2.0 * 5 * (64 * 172 - 32 * (64 + 172)));
        QCOMPARE(after.parameters, r.state.model->uniqueParameterCount()); // the tied head once
        QVERIFY(after.bytes < before.bytes && after.compressionRatio > 1.0);
    }

    void builtinCalibrationAndBadTargets()
    {
        LL_REQUIRE_SHARED();
        const CalibrationText c = loadCalibration(*stories(), RecipeCalibration{});
        QCOMPARE(c.name, std::string("builtin"));
        QVERIFY(c.options.windows >= 1 && c.options.windows < 64); // the sample is shorter than 64 windows: all of them
        QCOMPARE(c.options.windows, static_cast<int64_t>(c.tokens.size()) / 256);

        RecipeStep s;
        s.action = StepAction::Prune;
        s.layers = "no_such_layer";
        s.params = {{"method", "magnitude"}, {"sparsity", 0.5}};
        try {
            applyStep(CompressionState::initial(stories()), s, c);
            QFAIL("a pattern matching nothing was accepted");
        } catch (const Error& e) {
            QCOMPARE(e.code(), ErrorCode::InvalidArgument);
        }
        // Two W8A8 steps cannot stack.
        RecipeStep sq;
        sq.action = StepAction::Quantize;
        sq.params = {{"method", "smoothquant"}};
        const StepOutcome once = applyStep(CompressionState::initial(stories()), sq, c);
        QVERIFY(!once.state.activations.empty());
        QVERIFY_THROWS_EXCEPTION(Error, applyStep(once.state, sq, c));
    }

    // Data-free steps skip the calibration forward pass unless the output
    // error is asked for; then it is measured, and the weights are the same.
    void dataFreeStepsMeasureOutputErrorOnlyWhenAsked()
    {
        LL_REQUIRE_SHARED();
        const CalibrationText c = loadCalibration(*stories(), RecipeCalibration{});
        RecipeStep s;
        s.action = StepAction::Quantize;
        s.params = {{"method", "rtn"}, {"bits", 4}, {"group", 32}};
        QVERIFY(!s.usesCalibration());
        // A parameter that reads calibration when set (the registry's needsWhenSet: LoRC's rank).
        RecipeStep lorc = s;
        lorc.params["lorc_rank"] = 4;
        QVERIFY(lorc.usesCalibration());
        lorc.params["lorc_rank"] = 0;
        QVERIFY(!lorc.usesCalibration());
        const StepOutcome plain = applyStep(CompressionState::initial(stories()), s, c);
        const std::string q0 = "blocks.0.attn.q.weight";
        QVERIFY(!plain.state.layers.at(q0).outputError.has_value());
        QVERIFY(plain.state.layers.at(q0).weightError.has_value());
        s.params["output_error"] = true;
        const StepOutcome measured = applyStep(CompressionState::initial(stories()), s, c);
        QVERIFY(measured.state.layers.at(q0).outputError.has_value());
        QVERIFY(*measured.state.layers.at(q0).outputError > 0.0);
        verifySameWeights(*plain.state.model, *measured.state.model);
        // The key survives a save and a reload.
        const Recipe reloaded = parseRecipe(recipeToYaml(measured.state.recipe()), true);
        QVERIFY(JsonParams(reloaded.steps.front().params).flag("output-error"));
    }

    // layerlab-cli apply: the same weights (exported as F32) and perplexity as in process.
    void cliReplaysIdentically()
    {
        LL_REQUIRE_SHARED();
        const std::string dir = test::scratchDir();
        const Recipe recipe = threeStepRecipe();
        saveRecipe(recipe, dir + "/recipe.yaml");
        const std::string evalText = test::sharedPath("data/tinystories/eval.txt");
        const test::CliResult cli = test::runCli({"apply", dir + "/recipe.yaml", test::sharedPath(kStories), "--eval", evalText,
                                                  "--ctx", "64", "--out", dir + "/out", "--json"});
        QVERIFY2(cli.exitCode == 0, cli.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(cli.out);

        const StepOutcome r = applyRecipe(stories(), recipe);
        const auto exported = openModel(dir + "/out");
        verifySameWeights(*exported, *r.state.model);

        const std::vector<int32_t> tokens = tokenizeTextFile(*stories(), evalText);
        ScoringOptions opt;
        opt.context = 64;
        const auto engine = r.state.makeEngine();
        const PerplexityResult ppl = evaluatePerplexity(*engine, tokens, opt);
        QCOMPARE(j.at("ppl").get<double>(), ppl.ppl);
        QCOMPARE(j.at("bits_per_weight").get<double>(), r.state.linearBitsPerWeight());
        QCOMPARE(j.at("parameters").get<int64_t>(), r.state.model->parameterCount());

        // A broken recipe: exit 2 and one line naming the file.
        test::writeFile(dir + "/bad.yaml", "layerlab_recipe: 1\nsteps: [{action: quantize, method: rtn, bits: 99}]\n");
        const test::CliResult bad = test::runCli({"apply", dir + "/bad.yaml", test::sharedPath(kStories)});
        QCOMPARE(bad.exitCode, 2);
        QVERIFY2(bad.err.find("bad.yaml") != std::string::npos && bad.err.find("step 1") != std::string::npos, bad.err.c_str());
    }
};

QTEST_APPLESS_MAIN(TestRecipe)
#include "test_recipe.moc"
