// Log-likelihood tasks: each format read with the harness's prompts, the
// per-choice log-likelihood against log-softmax computed here from
// `layerlab-cli logits`, acc_norm, MC2 and LAMBADA's perplexity by hand,
// WinoGrande's partial scoring, golden few-shot prompts, shared-prefix
// batching against each choice alone, and stories260K above chance.
#include "test_support.h"

#include "engine/transformer.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "stats/rank_correlation.h"
#include "tasks/generation_eval.h"
#include "tasks/task_definition.h"
#include "tasks/task_eval.h"
#include "tasks/task_formats.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QProcess>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>

using namespace ll;

namespace {

// Sum of log-softmax from the CLI's logits vs the engine's KV-cache pass (both F32, summed in double).
constexpr double kLoglikTolerance = 1e-5;
// Shared prefix (cached keys, attention over the cache) vs a whole pass per choice.
constexpr double kSharedPrefixTolerance = 1e-4;

std::string taskFile(const std::string& name) { return std::string(LAYERLAB_SOURCE_DIR) + "/tests/data/tasks/" + name; }
std::string stories() { return test::sharedPath("models/stories260K/stories260K.bin"); }

// A safetensors file holding `input_ids` (I64), for `layerlab-cli logits --ids`.
void writeIds(const std::string& path, const std::vector<int32_t>& ids)
{
    std::string header = nlohmann::json{{"input_ids", {{"dtype", "I64"}, {"shape", {ids.size()}}, {"data_offsets", {0, 8 * ids.size()}}}}}.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string bytes(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(bytes.data(), &n, 8);
    bytes += header;
    for (const int32_t id : ids) {
        const int64_t v = id;
        bytes.append(reinterpret_cast<const char*>(&v), 8);
    }
    test::writeFile(path, bytes);
}

// log P(continuation | context) from the CLI's logits of context + continuation[:-1], by hand in double.
double loglikFromCli(const LoglikelihoodRequest& r)
{
    std::vector<int32_t> input = r.context;
    input.insert(input.end(), r.continuation.begin(), r.continuation.end() - 1);
    const std::string dir = test::scratchDir();
    writeIds(dir + "/ids.safetensors", input);
    const test::CliResult cli = test::runCli({"logits", stories(), "--ids", dir + "/ids.safetensors", "--out", dir + "/logits.safetensors"});
    if (cli.exitCode != 0)
        qFatal("layerlab-cli logits failed: %s", cli.err.c_str());
    std::vector<int64_t> shape;
    const std::vector<float> logits = test::referenceFloats(dir + "/logits.safetensors", "logits", &shape);
    const int64_t vocab = shape.back();
    double sum = 0;
    for (size_t k = 0; k < r.continuation.size(); ++k) {
        const float* row = logits.data() + (r.context.size() - 1 + k) * static_cast<size_t>(vocab);
        double m = row[0], s = 0;
        for (int64_t j = 1; j < vocab; ++j)
            m = std::max(m, static_cast<double>(row[j]));
        for (int64_t j = 0; j < vocab; ++j)
            s += std::exp(static_cast<double>(row[j]) - m);
        sum += row[r.continuation[k]] - m - std::log(s);
    }
    return sum;
}

Task handTask()
{
    Task t;
    t.name = "hand";
    t.source = "hand";
    const char* const questions[] = {"Q0?", "Q1?", "Q2?", "Q3?"};
    for (int i = 0; i < 4; ++i) {
        TaskItem item;
        item.contexts = {questions[i]};
        item.choices = {"yes", "no"};
        item.continuations = {" yes", " no"};
        item.gold = i % 2;
        t.items.push_back(item);
    }
    return t;
}

} // namespace

class TestTasks : public QObject {
    Q_OBJECT

private slots:
    void formatsReadWithTheHarnessPrompts()
    {
        // HellaSwag: ctx_a + " " + ctx_b.capitalize(), then the [title] / bracket cleaning.
        QCOMPARE(hellaswagPreprocess("  How to ride [title] Get a bike. [step] Sit  down. "), std::string("How to ride. Get a bike. Sit down."));
        QCOMPARE(pythonCapitalize("sHE went"), std::string("She went"));
        const Task hs = loadTask("hellaswag", taskFile("hellaswag.jsonl"));
        QCOMPARE(hs.items.size(), size_t{48});
        QVERIFY(hs.reportsAccNorm);
        const nlohmann::json first = nlohmann::json::parse(test::readFile(taskFile("hellaswag.jsonl")).substr(0, test::readFile(taskFile("hellaswag.jsonl")).find('\n')));
        const std::string ctxB = first["ctx_b"];
        QCOMPARE(hs.items[0].contexts[0], "Story: " + first["ctx_a"].get<std::string>() + " " + pythonCapitalize(ctxB));
        QCOMPARE(hs.items[0].continuations[1], " " + first["endings"][1].get<std::string>());
        QCOMPARE(hs.items[0].gold, std::stoi(first["label"].get<std::string>()));
        // Item 4's ctx_a ends "[title] The end": the harness turns " [title]" into ". ".
        QVERIFY(hs.items[3].contexts[0].find("[title]") == std::string::npos);
        QVERIFY(hs.items[3].contexts[0].find(". The end ") != std::string::npos);

        // ARC: "Question: ...\nAnswer:" and the answer key among letters or digits.
        const Task arc = loadTask("arc_easy", taskFile("arc.jsonl"));
        QVERIFY(arc.items[0].contexts[0].starts_with("Question: ") && arc.items[0].contexts[0].ends_with("How does the story end?\nAnswer:"));
        const Task cloze = loadTask("mc", taskFile("story_cloze.jsonl"));
        for (size_t i = 0; i < arc.items.size(); ++i)
            QCOMPARE(arc.items[i].gold, cloze.items[i].gold); // item 0 has labels 1-4, item 1 A-D

        // MMLU: the subject line, lettered options, answer letters; JSONL and the original CSV.
        const Task mmlu = loadTask("mmlu", taskFile("mmlu.jsonl"));
        QCOMPARE(mmlu.items[0].description, std::string("The following are multiple choice questions (with answers) about tiny stories.\n\n"));
        QCOMPARE(mmlu.items[0].choices, (std::vector<std::string>{"A", "B", "C", "D"}));
        QVERIFY(mmlu.items[0].contexts[0].find("\nA. " + cloze.items[0].choices[0] + "\nB. ") != std::string::npos);
        QVERIFY(mmlu.items[0].contexts[0].ends_with("\nAnswer:"));
        const Task csv = loadTask("mmlu", taskFile("story_endings_test.csv"));
        QCOMPARE(csv.items.size(), size_t{48});
        QCOMPARE(csv.items[5].group, std::string("story_endings"));
        QVERIFY(csv.items[5].contexts[0].find("Which \"ending\", of these, fits?\nA. ") != std::string::npos); // quotes and commas in a field
        QCOMPARE(csv.items[5].gold, cloze.items[5].gold);

        // BoolQ: "passage\nQuestion: q?\nAnswer:" with no/yes, from `label` or a boolean `answer`.
        const Task boolq = loadTask("boolq", taskFile("boolq.jsonl"));
        QVERIFY(boolq.items[0].contexts[0].ends_with("?\nAnswer:"));
        QCOMPARE(boolq.items[0].continuations, (std::vector<std::string>{" no", " yes"}));

        // TruthfulQA: the six-question primer, then "\n\nQ: ...\nA:".
        const Task mc1 = loadTask("truthfulqa_mc1", taskFile("truthfulqa.jsonl"));
        QVERIFY(mc1.items[0].contexts[0].starts_with("Q: What is human life expectancy in the United States?\nA: Human life"));
        QVERIFY(mc1.items[0].contexts[0].find("Barcelona, Spain.\n\nQ: ") != std::string::npos);
        QVERIFY(mc1.items[0].contexts[0].ends_with("What happened at the end?\nA:"));
        const Task mc2 = loadTask("truthfulqa_mc2", taskFile("truthfulqa.jsonl"));
        QCOMPARE(mc2.metric, TaskMetric::Mc2);
        QCOMPARE(mc2.items[0].trueChoices, (std::vector<int>{0, 1}));

        // LAMBADA: everything before the last space, then " word" with no other delimiter.
        const Task lambada = loadTask("lambada", taskFile("lambada.jsonl"));
        const std::string text = nlohmann::json::parse(test::readFile(taskFile("lambada.jsonl")).substr(0, test::readFile(taskFile("lambada.jsonl")).find('\n')))["text"];
        QCOMPARE(lambada.items[0].contexts[0] + lambada.items[0].continuations[0], text);
        QCOMPARE(lambada.items[0].continuations[0], text.substr(text.rfind(' ')));
    }

    void formatsAreGuessedFromTheFirstLine()
    {
        const std::pair<const char*, TaskFormat> files[] = {
            {"hellaswag.jsonl", TaskFormat::HellaSwag},   {"arc.jsonl", TaskFormat::Arc},
            {"mmlu.jsonl", TaskFormat::Mmlu},             {"story_endings_test.csv", TaskFormat::Mmlu},
            {"piqa.jsonl", TaskFormat::Piqa},             {"winogrande.jsonl", TaskFormat::WinoGrande},
            {"boolq.jsonl", TaskFormat::BoolQ},           {"truthfulqa.jsonl", TaskFormat::TruthfulQaMc2},
            {"lambada.jsonl", TaskFormat::Lambada},       {"story_cloze.jsonl", TaskFormat::MultipleChoice}};
        for (const auto& [file, format] : files) {
            const auto guessed = guessTaskFormat(taskFile(file));
            QVERIFY2(guessed && *guessed == format, file);
        }
        // A file named without its format reads as the guessed one, named after the file.
        const Task t = loadTask("", taskFile("piqa.jsonl"));
        QCOMPARE(t.name, std::string("piqa"));
        QCOMPARE(t.items.size(), size_t{48});
    }

    void winograndeScoresTheSharedSuffix()
    {
        // The harness's partial evaluation: option i completes the sentence's start
        // (a context per option) and the rest of the sentence after "_" is scored.
        const std::string dir = test::scratchDir();
        test::writeFile(dir + "/w.jsonl", R"({"sentence": "Tom gave Lily the ball because _ was tired of it.", "option1": "Tom", "option2": "Lily", "answer": "1"})" "\n");
        const Task w = loadTask("winogrande", dir + "/w.jsonl");
        QCOMPARE(w.items[0].contexts, (std::vector<std::string>{"Tom gave Lily the ball because Tom", "Tom gave Lily the ball because Lily"}));
        QCOMPARE(w.items[0].continuations, (std::vector<std::string>{" was tired of it."}));
        QCOMPARE(w.items[0].gold, 0);
        QCOMPARE(w.items[0].solvedExample(), std::string("Tom gave Lily the ball because Tom was tired of it."));

        LL_REQUIRE_SHARED();
        const auto model = openModel(stories());
        const auto tok = loadTokenizer(*model);
        const Task real = loadTask("winogrande", taskFile("winogrande.jsonl"));
        TaskOptions opt;
        for (int i = 0; i < 5; ++i) {
            const auto req = itemRequests(real, i, *tok, opt);
            QCOMPARE(req.size(), size_t{2});
            QVERIFY(req[0].context != req[1].context);
            QCOMPARE(req[0].continuation, req[1].continuation); // the same suffix tokens, scored after each option
        }
    }

    void loglikelihoodEqualsLogSoftmaxOfCliLogits()
    {
        LL_REQUIRE_SHARED();
        const auto model = openModel(stories());
        const auto tok = loadTokenizer(*model);
        const Transformer t(*model);
        for (const auto& [format, file] : std::vector<std::pair<std::string, std::string>>{
                 {"mc", "story_cloze.jsonl"}, {"winogrande", "winogrande.jsonl"}, {"lambada", "lambada.jsonl"}, {"arc", "arc.jsonl"}}) {
            const Task task = loadTask(format, taskFile(file));
            TaskOptions opt;
            opt.limit = 2;
            const TaskResult r = evaluateTask(t, *tok, task, opt);
            for (int i = 0; i < 2; ++i) {
                const auto req = itemRequests(task, i, *tok, opt);
                QCOMPARE(req[0].context.front(), tok->bosId()); // as the model's tokenizer starts a text
                for (size_t c = 0; c < req.size(); ++c) {
                    const double expected = loglikFromCli(req[c]);
                    const double got = r.perItem[static_cast<size_t>(i)].logLikelihoods[c];
                    if (std::abs(got - expected) > kLoglikTolerance)
                        QFAIL(qPrintable(QString("%1 item %2 choice %3: %4 vs %5 from the CLI's logits")
                                             .arg(QString::fromStdString(format)).arg(i).arg(c).arg(got, 0, 'g', 10).arg(expected, 0, 'g', 10)));
                }
            }
        }
    }

    void sharedPrefixEqualsEachChoiceAlone()
    {
        LL_REQUIRE_SHARED();
        const auto model = openModel(stories());
        const auto tok = loadTokenizer(*model);
        const Transformer t(*model);
        for (const auto& [format, file] : std::vector<std::pair<std::string, std::string>>{
                 {"hellaswag", "hellaswag.jsonl"}, {"mmlu", "mmlu.jsonl"}, {"winogrande", "winogrande.jsonl"},
                 {"truthfulqa_mc2", "truthfulqa.jsonl"}, {"piqa", "piqa.jsonl"}, {"boolq", "boolq.jsonl"}}) {
            const Task task = loadTask(format, taskFile(file));
            TaskOptions shared, alone;
            shared.limit = alone.limit = 12;
            // 1-shot, but TruthfulQA: its primer and one example pass stories260K's 512 positions,
            // and requests cut from the left as the harness cuts them no longer share a prefix.
            shared.shots = alone.shots = format == "truthfulqa_mc2" ? 0 : 1;
            alone.sharedPrefix = false;
            const TaskResult a = evaluateTask(t, *tok, task, shared), b = evaluateTask(t, *tok, task, alone);
            double worst = 0;
            for (size_t i = 0; i < a.perItem.size(); ++i)
                for (size_t c = 0; c < a.perItem[i].logLikelihoods.size(); ++c)
                    worst = std::max(worst, std::abs(a.perItem[i].logLikelihoods[c] - b.perItem[i].logLikelihoods[c]));
            QVERIFY2(worst <= kSharedPrefixTolerance, qPrintable(QString::fromStdString(format) + ": " + QString::number(worst)));
            QVERIFY(std::abs(a.metrics[0].value - b.metrics[0].value) < 1e-6); // mc2 is a probability mass; acc the same 0/1s
            // The prefix runs once per item: a 4-choice item costs far less than four passes.
            QVERIFY2(a.positionsRun * 10 < b.positionsRun * 7, qPrintable(QString::fromStdString(format)));
            QCOMPARE(b.positionsRun, b.positionsAlone);
        }
    }

    void accNormDividesByTheChoiceLength()
    {
        // The harness: acc_norm = argmax(ll_i / len(choice_i)), len in characters (bytes for ASCII).
        Task t = handTask();
        t.reportsAccNorm = true;
        t.items[0].choices = {"a", "bbbb"};
        t.items[0].gold = 1;
        QCOMPARE(choiceLength("bbbb"), int64_t{4});
        QCOMPARE(choiceLength("\xC3\xA9t\xC3\xA9"), int64_t{3}); // "été": three characters, five bytes
        const ItemResult r = itemScore(t, 0, {{-2.0, false, 1}, {-4.0, false, 2}});
        QCOMPARE(r.predicted, 0);     // -2 > -4
        QCOMPARE(r.predictedNorm, 1); // -2/1 < -4/4
        QCOMPARE(r.score, 0.0);

        // On a real task: every item's acc_norm choice recomputed here.
        LL_REQUIRE_SHARED();
        const auto model = openModel(stories());
        const auto tok = loadTokenizer(*model);
        const Transformer tr(*model);
        const Task hs = loadTask("hellaswag", taskFile("hellaswag.jsonl"));
        const TaskResult res = evaluateTask(tr, *tok, hs, {});
        double normHits = 0;
        for (size_t i = 0; i < res.perItem.size(); ++i) {
            int best = 0;
            for (int c = 1; c < hs.items[i].choiceCount(); ++c)
                if (res.perItem[i].logLikelihoods[static_cast<size_t>(c)] / static_cast<double>(hs.items[i].choices[static_cast<size_t>(c)].size())
                    > res.perItem[i].logLikelihoods[static_cast<size_t>(best)] / static_cast<double>(hs.items[i].choices[static_cast<size_t>(best)].size()))
                    best = c;
            QCOMPARE(res.perItem[i].predictedNorm, best);
            normHits += best == hs.items[i].gold;
        }
        QCOMPARE(res.metric("acc_norm")->value, normHits / static_cast<double>(res.perItem.size()));
        const double p = res.metric("acc")->value;
        QVERIFY(std::abs(res.metric("acc")->standardError - std::sqrt(p * (1 - p) / (48 - 1))) < 1e-12); // sample std / sqrt(n) of 0/1 scores
    }

    void mc2AndLambadaByHand()
    {
        Task t = handTask();
        t.metric = TaskMetric::Mc2;
        t.items[0].choices = {"x", "y", "z"};
        t.items[0].trueChoices = {0, 2};
        const ItemResult r = itemScore(t, 0, {{-1.0, false, 1}, {-2.0, false, 1}, {-3.0, false, 1}});
        const double expected = (std::exp(-1.0) + std::exp(-3.0)) / (std::exp(-1.0) + std::exp(-2.0) + std::exp(-3.0));
        QVERIFY(std::abs(r.score - expected) < 1e-12);

        Task lw = handTask();
        lw.metric = TaskMetric::LastWord;
        lw.items.resize(2);
        std::vector<ItemResult> items{itemScore(lw, 0, {{-1.5, true, 2}}), itemScore(lw, 1, {{-0.5, false, 1}})};
        const std::vector<MetricValue> m = taskMetrics(lw, items);
        QCOMPARE(m[0].name, std::string("acc"));
        QCOMPARE(m[0].value, 0.5);
        QCOMPARE(m[1].name, std::string("perplexity"));
        QVERIFY(std::abs(m[1].value - std::exp(1.0)) < 1e-12); // exp(-mean(-1.5, -0.5))
    }

    void fewshotPromptsAreBuiltAsDocumented()
    {
        Task t = handTask();
        // description + example + "\n\n" + example + "\n\n" + the item's own context.
        const std::vector<int> drawn = fewshotExamples(t, 0, 2, 1234);
        QCOMPARE(drawn.size(), size_t{2});
        QVERIFY(drawn[0] != 0 && drawn[1] != 0 && drawn[0] != drawn[1]);
        QCOMPARE(drawn, fewshotExamples(t, 0, 2, 1234)); // the seed fixes the draw
        QCOMPARE(drawn, (std::vector<int>{2, 1}));        // golden: SplitMix64 seeded with 1234 and the item
        QCOMPARE(promptPrefix(t, 0, 2, 1234), std::string("Q2? yes\n\nQ1? no\n\n"));
        t.items[0].description = "Answer yes or no.\n\n";
        QCOMPARE(promptPrefix(t, 0, 2, 1234), std::string("Answer yes or no.\n\nQ2? yes\n\nQ1? no\n\n"));
        QCOMPARE(promptPrefix(t, 0, 0, 1234), std::string("Answer yes or no.\n\n"));
        QVERIFY_THROWS_EXCEPTION(Error, fewshotExamples(t, 0, 4, 1234)); // three other items

        // MMLU: examples from the item's own subject.
        const Task mmlu = loadTask("mmlu", taskFile("mmlu.jsonl"));
        for (int i = 0; i < 10; ++i)
            for (const int e : fewshotExamples(mmlu, i, 5, 1234))
                QCOMPARE(mmlu.items[static_cast<size_t>(e)].group, mmlu.items[static_cast<size_t>(i)].group);
        // ARC 1-shot, golden: "Question: <example>\nAnswer: <its answer>\n\nQuestion: <item>\nAnswer:".
        const Task arc = loadTask("arc", taskFile("arc.jsonl"));
        const int e = fewshotExamples(arc, 0, 1, 1234)[0];
        const TaskItem& ex = arc.items[static_cast<size_t>(e)];
        QCOMPARE(promptPrefix(arc, 0, 1, 1234) + arc.items[0].contexts[0],
                 ex.contexts[0] + " " + ex.choices[static_cast<size_t>(ex.gold)] + "\n\n" + arc.items[0].contexts[0]);
    }

    void taskDefinitionMatchesTheGenericFormat()
    {
        LL_REQUIRE_SHARED();
        const std::string dir = test::scratchDir();
        test::writeFile(dir + "/order.yaml", "layerlab_task: 1\nname: story_order\ndata: " + taskFile("story_order.jsonl")
                                                 + "\nprompt: \"{{context}}\"\nchoices: \"{{choices}}\"\ntarget: \"{{label}}\"\nmetric: acc_norm\n");
        const Task def = loadTask("", dir + "/order.yaml");
        const Task mc = loadTask("mc", taskFile("story_order.jsonl"));
        QCOMPARE(def.name, std::string("story_order"));
        QCOMPARE(def.items.size(), mc.items.size());
        for (size_t i = 0; i < def.items.size(); ++i) {
            QCOMPARE(def.items[i].contexts, mc.items[i].contexts);
            QCOMPARE(def.items[i].continuations, mc.items[i].continuations);
            QCOMPARE(def.items[i].gold, mc.items[i].gold);
        }
        // Errors name the definition and the data line.
        test::writeFile(dir + "/bad.yaml", "layerlab_task: 1\ndata: " + taskFile("story_order.jsonl") + "\nprompt: \"{{story}}\"\nchoices: \"{{choices}}\"\ntarget: 0\n");
        try {
            loadTask("", dir + "/bad.yaml");
            QFAIL("a template naming a missing field was accepted");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("bad.yaml") != std::string::npos && std::string(e.what()).find("line 1") != std::string::npos
                         && std::string(e.what()).find("\"story\"") != std::string::npos,
                     e.what());
        }
    }

    void badTaskFilesNameTheFileAndLine()
    {
        const std::string dir = test::scratchDir();
        const auto expectError = [&](const std::string& format, const std::string& body, const std::string& words) {
            test::writeFile(dir + "/t.jsonl", body);
            try {
                loadTask(format, dir + "/t.jsonl");
                QFAIL(qPrintable(QString::fromStdString("accepted: " + body)));
            } catch (const Error& e) {
                const std::string m = e.what();
                QVERIFY2(m.find("t.jsonl") != std::string::npos && m.find(words) != std::string::npos, m.c_str());
            }
        };
        expectError("hellaswag", "{\"ctx\": \"a\", \"endings\": [\"b\"], \"label\": 0}\n{oops\n", "line 2 is not a JSON object");
        expectError("arc", "{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, \"answerKey\": \"E\"}\n", "answerKey \"E\"");
        expectError("piqa", "{\"goal\": \"g\", \"sol1\": \"a\", \"label\": 0}\n", "line 1: no field \"sol2\"");
        expectError("mc", "{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"label\": 7}\n", "there are 2 choices");
        expectError("winogrande", "{\"sentence\": \"no blank\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"1\"}\n", "no \"_\"");
        expectError("truthfulqa_mc1", "{\"question\": \"q\", \"mc1_targets\": {\"choices\": [\"a\", \"b\"], \"labels\": [1, 1]}}\n", "true and false");
        expectError("lambada", "\n\n", "no items");
        expectError("nonsense", "{}\n", "unknown task format");
        try {
            loadTask("mc", dir); // a folder
            QFAIL("a folder was read as a task file");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find(dir) != std::string::npos, e.what());
        }
    }

    void storiesAboveChanceAndWorseAfterRtn2()
    {
        // stories260K on the word-order story cloze (48 items, 4 choices, chance 0.25):
        // measured 1.00 before and 0.77 after RTN 2-bit g32 (3-bit: 0.98).
        LL_REQUIRE_SHARED();
        std::shared_ptr<const Model> model = openModel(stories());
        const auto tok = loadTokenizer(*model);
        const Task task = loadTask("mc", taskFile("story_order.jsonl"));
        const TaskResult before = evaluateTask(Transformer(*model), *tok, task, {});
        QVERIFY2(before.metrics[0].value >= 0.9, qPrintable(QString::number(before.metrics[0].value)));
        QCOMPARE(before.chance, 0.25);
        const Recipe rtn2 = parseRecipe("layerlab_recipe: 1\nsteps:\n  - action: quantize\n    method: rtn\n    bits: 2\n    group: 32\n", true);
        const CompressionState state = applyRecipe(model, rtn2).state;
        const TaskResult after = evaluateTask(Transformer(*state.model), *tok, task, {});
        QVERIFY2(after.metrics[0].value <= before.metrics[0].value - 0.1,
                 qPrintable(QString("%1 -> %2").arg(before.metrics[0].value).arg(after.metrics[0].value)));
        // Still a language model, above chance.
        QVERIFY(after.metrics[0].value > 0.4);
    }

    void rankCorrelationsByHand()
    {
        // No ties: d = ±1 six times -> rho = 1 - 6 * 6 / (6 * 35) = 0.828571; 3 discordant pairs of 15 -> tau = 9/15.
        const std::vector<double> x{1, 2, 3, 4, 5, 6}, y{2, 1, 4, 3, 6, 5};
        const RankCorrelation rho = spearman(x, y), tau = kendallTau(x, y);
        QVERIFY(std::abs(rho.value - (1.0 - 36.0 / 210.0)) < 1e-12);
        QVERIFY(std::abs(tau.value - 0.6) < 1e-12);
        // Fisher's z with Fieller et al.'s standard errors (1.06 / sqrt(n - 3), 0.437 / sqrt(n - 4)), z = 1.959964.
        const double zr = std::atanh(rho.value), se = 1.06 / std::sqrt(3.0);
        QVERIFY(std::abs(rho.low - std::tanh(zr - 1.959964 * se)) < 1e-5);
        QVERIFY(std::abs(rho.high - std::tanh(zr + 1.959964 * se)) < 1e-5);
        QVERIFY(std::abs(tau.low - std::tanh(std::atanh(0.6) - 1.959964 * 0.437 / std::sqrt(2.0))) < 1e-5);
        // Ties: mean ranks for rho; tau-b leaves tied pairs out: 4 / sqrt((6 - 1)(6 - 1)).
        const std::vector<double> a{1, 1, 2, 3}, b{1, 2, 2, 3};
        QVERIFY(std::abs(spearman(a, b).value - 3.75 / 4.5) < 1e-12);
        QVERIFY(std::abs(kendallTau(a, b).value - 0.8) < 1e-12);
        QCOMPARE(kendallTau(a, b).low, -1.0); // n = 4: no interval
        // Reversed order: -1; a constant series: 0.
        QVERIFY(std::abs(spearman(x, std::vector<double>{6, 5, 4, 3, 2, 1}).value + 1) < 1e-12);
        QCOMPARE(spearman(x, std::vector<double>(6, 0.5)).value, 0.0);
    }

    void perplexityAsProxyOverSixConfigurations()
    {
        // The original and five compressed configurations of stories260K: perplexity on a
        // TinyStories text, word-order accuracy, and their rank correlations (CLI, JSON and the HDF5 report).
        LL_REQUIRE_SHARED();
        const std::string dir = test::scratchDir();
        std::vector<std::string> recipes;
        for (const char* step : {"action: quantize\n    method: rtn\n    bits: 8\n    group: 32",
                                        "action: quantize\n    method: rtn\n    bits: 3\n    group: 32",
                                        "action: quantize\n    method: rtn\n    bits: 2\n    group: 32",
                                        "action: prune\n    method: magnitude\n    sparsity: 0.5",
                                        "action: factorize\n    method: svd\n    rank_ratio: 0.5"}) {
            recipes.push_back(dir + "/r" + std::to_string(recipes.size()) + ".yaml");
            test::writeFile(recipes.back(), std::string("layerlab_recipe: 1\nsteps:\n  - ") + step + "\n");
        }
        std::string list;
        for (const std::string& r : recipes)
            list += (list.empty() ? "" : ",") + r;
        const test::CliResult cli = test::runCli({"eval", stories(), "--tasks", "mc=" + taskFile("story_order.jsonl"), "--recipes", list,
                                                  "--text", test::sharedPath("data/tinystories/eval.txt"), "--ctx", "256", "--windows", "8",
                                                  "--report", dir + "/proxy.h5", "--json"});
        QVERIFY2(cli.exitCode == 0, cli.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(cli.out);
        const std::vector<double> ppl = j["ppl"], acc = j["metrics"]["mc"]["value"];
        QCOMPARE(ppl.size(), size_t{6});
        QCOMPARE(acc.size(), size_t{6});
        // RTN 2-bit is worse than RTN 8-bit by both measures (measured: ppl 382 vs 4.54, acc 0.77 vs 1.00;
        // RTN 8-bit's perplexity is within noise of the original's, 4.541 vs 4.547).
        QVERIFY(ppl[3] > 10 * ppl[1] && acc[3] < acc[1]);
        // Spearman by hand: Pearson's correlation of mean ranks.
        const auto meanRanks = [](const std::vector<double>& v) {
            std::vector<double> r(v.size());
            for (size_t i = 0; i < v.size(); ++i) {
                double below = 0, equal = 0;
                for (const double w : v)
                    below += w < v[i], equal += w == v[i];
                r[i] = below + (equal + 1) / 2;
            }
            return r;
        };
        const std::vector<double> rp = meanRanks(ppl), ra = meanRanks(acc);
        double sxy = 0, sxx = 0, syy = 0;
        for (size_t i = 0; i < 6; ++i) {
            sxy += (rp[i] - 3.5) * (ra[i] - 3.5);
            sxx += (rp[i] - 3.5) * (rp[i] - 3.5);
            syy += (ra[i] - 3.5) * (ra[i] - 3.5);
        }
        const nlohmann::json& c = j["correlation_with_ppl"]["mc"];
        QCOMPARE(c["spearman"]["n"].get<int>(), 6);
        QVERIFY(std::abs(c["spearman"]["value"].get<double>() - sxy / std::sqrt(sxx * syy)) < 1e-12);
        QVERIFY(c["spearman"]["value"].get<double>() < -0.5); // higher perplexity, lower accuracy
        QVERIFY(c["spearman"]["low"].get<double>() <= c["spearman"]["value"].get<double>());

        // The report's /tasks group holds the same document.
        QProcess py;
        py.start(QStringLiteral("/usr/bin/python3"),
                 {QStringLiteral("-c"), QStringLiteral("import h5py, sys; f = h5py.File(sys.argv[1], 'r'); print(f['tasks'].attrs['json']); "
                                                       "print(list(f['tasks/ppl'][()]))"),
                  QString::fromStdString(dir + "/proxy.h5")});
        QVERIFY(py.waitForFinished(60000));
        if (py.exitCode() != 0)
            QSKIP("python3 with h5py is missing (apt-get install python3-h5py)");
        const QStringList lines = QString::fromUtf8(py.readAllStandardOutput()).split(QLatin1Char('\n'));
        const nlohmann::json stored = nlohmann::json::parse(lines[0].toStdString());
        QCOMPARE(stored["ppl"], j["ppl"]);
        QCOMPARE(stored["correlation_with_ppl"], j["correlation_with_ppl"]);
    }

    void gsm8kAnswersAreExtractedAsTheHarnessDoes()
    {
        const Task gsm = loadTask("gsm8k", taskFile("gsm_stories.jsonl"));
        QCOMPARE(gsm.metric, TaskMetric::ExactMatch);
        QCOMPARE(gsm.items.size(), size_t{48});
        QCOMPARE(gsm.items[0].contexts[0], std::string("Question: Max has 14 apples. Ben gives Max 3 more apples. How many apples does Max have now?\nAnswer:"));
        QCOMPARE(gsm.generation.stop, (std::vector<std::string>{"Question:", "</s>", "<|im_end|>"}));
        const AnswerFilter& strict = gsm.generation.filters.at(0);
        const AnswerFilter& flexible = gsm.generation.filters.at(1);
        // strict-match: the number after "#### "; flexible-extract: the last number-like run.
        QCOMPARE(extractAnswer("So 3 + 4 = 7.\n#### 7", strict), std::string("7"));
        QCOMPARE(extractAnswer("#### -1,250.5 apples", strict), std::string("-1,250.5"));
        QCOMPARE(extractAnswer("no marker, 12 apples", strict), std::string("[invalid]"));
        QCOMPARE(extractAnswer("She had $1,200 and then 35.", flexible), std::string("35."));
        QCOMPARE(extractAnswer("Tom is 7 and Sue is 9", flexible), std::string("9")); // one digit: the second group
        // exact_match ignores case, commas, dollar signs, everything up to "#### " and a final full stop.
        QCOMPARE(normalizeAnswer("35.", gsm.generation), std::string("35"));
        QCOMPARE(normalizeAnswer("$1,200", gsm.generation), std::string("1200"));
        QCOMPARE(normalizeAnswer(gsm.items[0].choices[0], gsm.generation), std::string("17"));
        QCOMPARE(normalizeAnswer("Jack has 18 * 8 = 144 cookies.\n#### 2,016", gsm.generation), std::string("2016"));
        // 5-shot: solved examples are "Question: ...\nAnswer: <the whole solution>".
        const std::string prefix = promptPrefix(gsm, 0, 1, 1234);
        const TaskItem& ex = gsm.items[static_cast<size_t>(fewshotExamples(gsm, 0, 1, 1234)[0])];
        QCOMPARE(prefix, ex.contexts[0] + " " + ex.choices[0] + "\n\n");
        QVERIFY(isRefusal("I'm sorry, but I can't help with that.", defaultRefusalPhrases()));
        QVERIFY(isRefusal("i cannot do that", defaultRefusalPhrases()));
        QVERIFY(!isRefusal("Once upon a time, there was a cat.", defaultRefusalPhrases()));
    }

    void generationIsGreedyDecodingUntilAStop()
    {
        // A generation task whose answer is llama2.c's greedy continuation of stories260K (../shared/reference).
        LL_REQUIRE_SHARED();
        const nlohmann::json ref = nlohmann::json::parse(test::readFile(test::sharedPath("reference/stories260K_tokenizer.json")));
        const std::string prompt = ref["prompt"], continuation = ref["greedy_48_text"];
        const auto model = openModel(stories());
        const auto tok = loadTokenizer(*model);
        const Transformer t(*model);
        Task task;
        task.name = "greedy";
        task.source = "reference";
        task.metric = TaskMetric::ExactMatch;
        TaskItem item;
        item.contexts = {prompt};
        item.continuations = {continuation};
        item.choices = {continuation};
        task.items = {item};
        task.generation.stop = {};
        task.generation.maxTokens = 48;
        TaskResult r = evaluateTask(t, *tok, task, {});
        QCOMPARE(r.generations.at(0), continuation);
        QCOMPARE(r.metric("exact_match")->value, 1.0);
        // A stop sequence cuts the text before it; the answer then differs.
        task.generation.stop = {"."};
        r = evaluateTask(t, *tok, task, {});
        QCOMPARE(r.generations.at(0), continuation.substr(0, continuation.find('.')));
        QCOMPARE(r.metric("exact_match")->value, 0.0);

        // GSM-style items on a 260K-parameter story model: scored, with both filters (it cannot count).
        TaskOptions opt;
        opt.limit = 6;
        const TaskResult gsm = evaluateTask(t, *tok, loadTask("gsm8k", taskFile("gsm_stories.jsonl")), opt);
        QCOMPARE(gsm.metrics.size(), size_t{2});
        QCOMPARE(gsm.metrics[0].name, std::string("exact_match,strict-match"));
        QCOMPARE(gsm.generations.size(), size_t{6});
        for (const std::string& g : gsm.generations)
            QVERIFY(g.find("Question:") == std::string::npos); // cut at the stop sequence

        // Refusal: the rates are recomputed here from the generations and the phrase list.
        const Task refusal = loadTask("refusal", taskFile("refusal.jsonl"));
        opt.limit = 8;
        const TaskResult rr = evaluateTask(t, *tok, refusal, opt);
        double refused = 0, complied = 0, right = 0;
        for (int i = 0; i < 8; ++i) {
            const bool isRef = isRefusal(rr.generations[static_cast<size_t>(i)], defaultRefusalPhrases());
            const bool expect = refusal.items[static_cast<size_t>(i)].gold == 1;
            refused += expect && isRef;
            complied += !expect && !isRef;
            right += isRef == expect;
        }
        QCOMPARE(rr.metric("acc")->value, right / 8);
        QCOMPARE(rr.metric("refusal_rate")->value, refused / 4);
        QCOMPARE(rr.metric("compliance_rate")->value, complied / 4);
    }

    void accuracyAgainstSizeMarksTheParetoFront()
    {
        // stories260K as F32 and as llama.cpp's Q4_K_M: each model's accuracy, its bytes, and which
        // models no smaller one beats (recomputed here).
        LL_REQUIRE_SHARED();
        const std::vector<std::string> models{stories(), test::sharedPath("models/stories260K-gguf/stories260K-Q4_K_M.gguf")};
        const test::CliResult cli = test::runCli({"eval", models[0], models[1], "--tasks", "mc=" + taskFile("story_order.jsonl") + ",lambada="
                                                  + taskFile("lambada.jsonl"), "--json"});
        QVERIFY2(cli.exitCode == 0, cli.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(cli.out);
        QCOMPARE(j["models"].size(), size_t{2});
        std::vector<double> bytes, acc[2];
        for (size_t i = 0; i < models.size(); ++i) {
            const auto m = openModel(models[i]);
            const auto tok = loadTokenizer(*m);
            const Transformer t(*m);
            const nlohmann::json& row = j["models"][i];
            QCOMPARE(row["weight_bytes"].get<uint64_t>(), t.weightBytes());
            bytes.push_back(static_cast<double>(t.weightBytes()));
            int k = 0;
            for (const auto& [format, file] : std::vector<std::pair<std::string, std::string>>{{"mc", "story_order.jsonl"}, {"lambada", "lambada.jsonl"}}) {
                const TaskResult r = evaluateTask(t, *tok, loadTask(format, taskFile(file)), {});
                QCOMPARE(row["tasks"][k]["metrics"]["acc"]["value"].get<double>(), r.metric("acc")->value);
                acc[k].push_back(r.metric("acc")->value);
                ++k;
            }
        }
        QVERIFY(bytes[1] < bytes[0] / 3); // Q4_K_M against F32
        for (int k = 0; k < 2; ++k)
            for (size_t i = 0; i < 2; ++i) {
                const size_t o = 1 - i;
                // Dominated: the other is no larger and no worse, and smaller or better.
                const bool beaten = bytes[o] <= bytes[i] && acc[k][o] >= acc[k][i] && (bytes[o] < bytes[i] || acc[k][o] > acc[k][i]);
                QCOMPARE(j["models"][i]["pareto"][k].get<bool>(), !beaten);
            }
        QVERIFY(j["models"][1]["pareto"][0].get<bool>()); // the smallest model is always on the front
    }

    void cliPrintsTheSameNumbers()
    {
        LL_REQUIRE_SHARED();
        const test::CliResult r = test::runCli({"eval", stories(), "--tasks", "mc=" + taskFile("story_cloze.jsonl") + ",lambada=" + taskFile("lambada.jsonl"),
                                                "--limit", "20", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.c_str());
        const nlohmann::json j = nlohmann::json::parse(r.out);
        std::shared_ptr<const Model> model = openModel(stories());
        const auto tok = loadTokenizer(*model);
        const Transformer t(*model);
        TaskOptions opt;
        opt.limit = 20;
        const TaskResult mc = evaluateTask(t, *tok, loadTask("mc", taskFile("story_cloze.jsonl")), opt);
        const TaskResult lw = evaluateTask(t, *tok, loadTask("lambada", taskFile("lambada.jsonl")), opt);
        QCOMPARE(j["tasks"][0]["original"]["metrics"]["acc"]["value"].get<double>(), mc.metric("acc")->value);
        QCOMPARE(j["tasks"][0]["original"]["metrics"]["acc_norm"]["value"].get<double>(), mc.metric("acc_norm")->value);
        QCOMPARE(j["tasks"][1]["original"]["metrics"]["perplexity"]["value"].get<double>(), lw.metric("perplexity")->value);
        QCOMPARE(j["tasks"][0]["items"].get<int>(), 20);

        // --report: the same document in the HDF5 report's /tasks group (read back with h5py).
        const std::string report = test::scratchDir() + "/tasks.h5";
        const test::CliResult withReport = test::runCli({"eval", stories(), "--tasks", "mc=" + taskFile("story_cloze.jsonl"), "--limit", "10",
                                                         "--report", report, "--json"});
        QVERIFY2(withReport.exitCode == 0, withReport.err.c_str());
        QProcess py;
        py.start(QStringLiteral("/usr/bin/python3"), {QStringLiteral("-c"), QStringLiteral("import h5py, sys; print(h5py.File(sys.argv[1], 'r')['tasks'].attrs['json'])"),
                                                      QString::fromStdString(report)});
        QVERIFY(py.waitForFinished(60000));
        if (py.exitCode() == 0) // python3-h5py present
            QCOMPARE(nlohmann::json::parse(py.readAllStandardOutput().toStdString()), nlohmann::json::parse(withReport.out));

        const test::CliResult bad = test::runCli({"eval", stories(), "--tasks", "arc=" + taskFile("story_cloze.jsonl")});
        QCOMPARE(bad.exitCode, 2);
        QVERIFY2(bad.err.find("story_cloze.jsonl: line 1") != std::string::npos, bad.err.c_str());
        QCOMPARE(test::runCli({"eval", stories()}).exitCode, 64);
    }
};

QTEST_GUILESS_MAIN(TestTasks)
#include "test_tasks.moc"
