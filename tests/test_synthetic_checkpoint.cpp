// Synthetic checkpoints (bench/synth): a small sharded model written the way
// transformers' save_pretrained lays out a llama folder, read back by LayerLab's
// own readers: config, tensor names, shapes and types, the shard index,
// determinism per seed, a finite forward pass, and a tokenizer whose size is the
// embedding's row count (also after GGUF export).
#include "test_support.h"

#include "synthetic_checkpoint.h"

#include "engine/transformer.h"
#include "export/gguf_export.h"
#include "export/hf_tokenizer_json.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json_util.h"
#include "util/progress.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

using namespace ll;
namespace fs = std::filesystem;

namespace {

// About 4 MB in BF16: 2 blocks of the tiny shape (hidden 256, GQA 4/2, vocab 1024).
synth::SynthShape smallShape()
{
    synth::ShapeOverrides o;
    o.layers = 2;
    return synth::overrideShape(synth::synthShape("tiny"), o);
}

// The real pieces: stories260K's 512-token llama2.c tokenizer when ../shared is there, else the built-in ones.
std::string tokenizerSource()
{
    return test::haveShared() ? test::sharedPath("models/stories260K/tok512.bin") : std::string();
}

synth::SynthOptions smallOptions(uint64_t seed = 7)
{
    synth::SynthOptions o;
    o.seed = seed;
    o.maxShardBytes = 1'000'000; // several shards, and a tensor (the 512 KB embedding) near the limit
    o.tokenizer = tokenizerSource();
    o.chunkBytes = 64 * 1024;    // many chunks per tensor: exercises the chunk boundaries
    return o;
}

// The folder of one generation per seed, made once.
const std::string& generated(uint64_t seed = 7)
{
    static std::map<uint64_t, std::string> dirs;
    auto& d = dirs[seed];
    if (d.empty()) {
        d = test::scratchDir() + "/synth-" + std::to_string(seed);
        synth::writeSyntheticHf(smallShape(), DType::BF16, d, smallOptions(seed));
    }
    return d;
}

std::set<std::string> filesIn(const std::string& dir)
{
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir))
        names.insert(e.path().filename().string());
    return names;
}

} // namespace

class TestSyntheticCheckpoint : public QObject {
    Q_OBJECT
private slots:
    void namedShapesHaveTheRealParameterCounts();
    void writesTransformersLayout();
    void tensorsMatchTheShape();
    void sameSeedSameBytes();
    void forwardPassIsFinite();
    void tokenizerSizeIsTheEmbeddingRows();
    void fillersAreUnreachable();
    void builtinVocabularyNeedsNoFile();
    void ggufExportKeepsTheVocabulary();
    void tiedShapeHasNoHead();
    void refusesAnExistingDestination();
    void cancelLeavesNothing();
};

void TestSyntheticCheckpoint::namedShapesHaveTheRealParameterCounts()
{
    // The published parameter counts of the real checkpoints.
    QCOMPARE(synth::synthShape("llama2-7b").parameterCount(), int64_t{6738415616});
    QCOMPARE(synth::synthShape("llama3-8b").parameterCount(), int64_t{8030261248});
    QCOMPARE(synth::synthShape("llama3.2-1b").parameterCount(), int64_t{1235814400});
    QCOMPARE(synth::synthShape("smollm-135m").parameterCount(), int64_t{134515008});
    QVERIFY_THROWS_EXCEPTION(Error, synth::synthShape("gpt5"));
    synth::ShapeOverrides o;
    o.hidden = 1024;
    const auto s = synth::overrideShape(synth::synthShape("llama3-8b"), o);
    QCOMPARE(s.heads, int64_t{8});   // head_dim 128 kept
    QCOMPARE(s.kvHeads, int64_t{2}); // groups of 4 kept
    synth::ShapeOverrides plain;
    plain.dropRopeScaling = true;
    QVERIFY(synth::synthShape("llama3.2-1b").ropeScaling.is_object());
    QVERIFY(synth::overrideShape(synth::synthShape("llama3.2-1b"), plain).ropeScaling.is_null());
}

void TestSyntheticCheckpoint::writesTransformersLayout()
{
    const std::string dir = generated();
    const auto names = filesIn(dir);
    QVERIFY(names.count("config.json") && names.count("generation_config.json") && names.count("tokenizer.json")
            && names.count("tokenizer_config.json") && names.count("model.safetensors.index.json"));
    QVERIFY(!names.count("model.safetensors"));
    const nlohmann::json index = readJsonFile(dir + "/model.safetensors.index.json");
    std::set<std::string> shards;
    for (const auto& [tensor, file] : index.at("weight_map").items())
        shards.insert(file.get<std::string>());
    QVERIFY2(shards.size() >= 2, std::to_string(shards.size()).c_str());
    const size_t n = shards.size();
    for (size_t k = 1; k <= n; ++k) {
        char name[64];
        std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k, n);
        QVERIFY2(shards.count(name) && names.count(name), name);
    }
    QCOMPARE(names.size(), n + 5); // nothing else (no partial files left)

    const nlohmann::json cfg = readJsonFile(dir + "/config.json");
    QCOMPARE(cfg.at("model_type").get<std::string>(), std::string("llama"));
    QCOMPARE(cfg.at("architectures")[0].get<std::string>(), std::string("LlamaForCausalLM"));
    QCOMPARE(cfg.at("torch_dtype").get<std::string>(), std::string("bfloat16"));
    QCOMPARE(cfg.at("tie_word_embeddings").get<bool>(), false);
    QVERIFY(cfg.at("rope_scaling").is_null());
    QCOMPARE(cfg.at("vocab_size").get<int64_t>(), int64_t{1024});

    const auto m = openModel(dir);
    const ModelConfig& c = m->config;
    QCOMPARE(c.family, Family::Llama);
    QCOMPARE(c.hidden, int64_t{256});
    QCOMPARE(c.intermediate, int64_t{688});
    QCOMPARE(c.layers, int64_t{2});
    QCOMPARE(c.heads, int64_t{4});
    QCOMPARE(c.kvHeads, int64_t{2});
    QCOMPARE(c.headDim, int64_t{64});
    QCOMPARE(c.vocab, int64_t{1024});
    QCOMPARE(c.ropeTheta, 10000.0);
    QCOMPARE(c.tiedEmbeddings, false);
    QCOMPARE(c.bosId, int64_t{1});
    QCOMPARE(c.eosId, int64_t{2});

    // total_size is the sum of the tensors' bytes; each shard holds what the map says.
    uint64_t sum = 0;
    for (const auto& t : m->stored) {
        sum += t.nbytes;
        QCOMPARE(fs::path(t.sourceFile).filename().string(), index.at("weight_map").at(t.name).get<std::string>());
    }
    QCOMPARE(index.at("metadata").at("total_size").get<uint64_t>(), sum);
    QCOMPARE(index.at("weight_map").size(), m->stored.size());
}

void TestSyntheticCheckpoint::tensorsMatchTheShape()
{
    const auto m = openModel(generated());
    const auto expected = synth::synthTensors(smallShape());
    QCOMPARE(m->stored.size(), expected.size());
    QCOMPARE(expected.size(), size_t{1 + 2 * 9 + 1 + 1});
    for (const auto& e : expected) {
        const LogicalTensor* lt = m->findByStoredName(e.name);
        QVERIFY2(lt, e.name.c_str());
        const TensorRef& t = m->storedOf(*lt);
        QCOMPARE(t.shape, e.shape);
        QCOMPARE(t.dtype, DType::BF16);
    }
    QVERIFY(m->findByStoredName("model.layers.1.self_attn.k_proj.weight"));
    QCOMPARE(m->findByStoredName("model.layers.1.self_attn.k_proj.weight")->shape, (std::vector<int64_t>{128, 256}));
    QVERIFY(m->findByStoredName("lm_head.weight"));

    // Realistic scales: linears N(0, 0.02), norms near 1.
    const std::vector<float> q = readLogical(*m, *m->findLogical("blocks.0.attn.q.weight"));
    double s = 0, s2 = 0;
    for (float x : q) {
        s += x;
        s2 += double(x) * x;
    }
    const double mean = s / q.size(), sd = std::sqrt(s2 / q.size() - mean * mean);
    QVERIFY2(std::abs(mean) < 1e-3 && std::abs(sd - 0.02) < 1e-3, (std::to_string(mean) + " " + std::to_string(sd)).c_str());
    for (float x : readLogical(*m, *m->findLogical("final_norm.weight")))
        QVERIFY(x > 0.9f && x < 1.1f);
}

void TestSyntheticCheckpoint::sameSeedSameBytes()
{
    const std::string a = generated(7);
    // Same seed, other thread count, chunk and shard sizes: the same tensor bytes.
    synth::SynthOptions o = smallOptions(7);
    o.threads = 1;
    o.chunkBytes = 20000; // not a multiple of the other run's 64 KiB
    const std::string b = test::scratchDir() + "/again";
    synth::writeSyntheticHf(smallShape(), DType::BF16, b, o);
    QCOMPARE(filesIn(a), filesIn(b));
    for (const auto& name : filesIn(a))
        QVERIFY2(test::readFile(a + "/" + name) == test::readFile(b + "/" + name), name.c_str());

    o.maxShardBytes = 5'000'000'000ull;
    const std::string one = test::scratchDir() + "/one-shard";
    synth::writeSyntheticHf(smallShape(), DType::BF16, one, o);
    QVERIFY(filesIn(one).count("model.safetensors"));
    const auto ma = openModel(a), mo = openModel(one);
    for (const auto& t : ma->stored) {
        const TensorRef& u = mo->storedOf(*mo->findByStoredName(t.name));
        QVERIFY2(t.nbytes == u.nbytes && std::memcmp(t.data, u.data, t.nbytes) == 0, t.name.c_str());
    }

    const auto mc = openModel(generated(8));
    int differing = 0;
    for (const auto& t : ma->stored) {
        const TensorRef& u = mc->storedOf(*mc->findByStoredName(t.name));
        differing += std::memcmp(t.data, u.data, t.nbytes) != 0;
    }
    QCOMPARE(differing, static_cast<int>(ma->stored.size()));
}

void TestSyntheticCheckpoint::forwardPassIsFinite()
{
    const auto m = openModel(generated());
    const Transformer t(*m);
    std::vector<int32_t> ids;
    for (int i = 0; i < 48; ++i)
        ids.push_back((i * 37 + 1) % 1024);
    const Eigen::MatrixXf logits = t.logits(ids);
    QCOMPARE(logits.rows(), Eigen::Index{48});
    QCOMPARE(logits.cols(), Eigen::Index{1024});
    QVERIFY(logits.allFinite());
    QVERIFY(logits.cwiseAbs().maxCoeff() > 0.0f);
}

void TestSyntheticCheckpoint::tokenizerSizeIsTheEmbeddingRows()
{
    const auto m = openModel(generated());
    const auto tok = loadTokenizer(*m);
    QCOMPARE(static_cast<int64_t>(tok->vocabSize()), m->findLogical("embed.weight")->shape[0]);
    const std::string text = "Once upon a time, there was a little girl named Lily.";
    const std::vector<int32_t> ids = tok->encode(text);
    QCOMPARE(ids.front(), tok->bosId());
    QCOMPARE(tok->decode(ids), text);
    for (int32_t id : ids)
        QVERIFY(tok->piece(id).rfind("<filler_", 0) != 0); // real pieces only
    if (test::haveShared()) {
        // Same ids as stories260K's own tokenizer: the real pieces kept their merges.
        const auto ref = readJsonFile(test::sharedPath("reference/stories260K_tokenizer.json"));
        const auto refIds = ref.at("ids").get<std::vector<int32_t>>();
        QCOMPARE(tok->encode(ref.at("text_first_2000_chars_of_eval").get<std::string>()), refIds);
    }
    // The CLI's tokenize command reads it too.
    const std::string textFile = test::scratchDir() + "/text.txt";
    test::writeFile(textFile, text);
    const auto r = test::runCli({"tokenize", generated(), "--text", textFile, "--json"});
    QVERIFY2(r.exitCode == 0, r.err.c_str());
}

void TestSyntheticCheckpoint::fillersAreUnreachable()
{
    const SentencePieceVocab v = synth::synthVocab(1024, tokenizerSource());
    QCOMPARE(v.tokens.size(), size_t{1024});
    const std::set<std::string> unique(v.tokens.begin(), v.tokens.end());
    QCOMPARE(unique.size(), v.tokens.size());
    const size_t real = static_cast<size_t>(std::count_if(v.tokens.begin(), v.tokens.end(), [](const std::string& t) {
        return t.rfind("<filler_", 0) != 0;
    }));
    QVERIFY(real < 1000);
    if (test::haveShared())
        QCOMPARE(real, size_t{512});
    const float lowestReal = *std::min_element(v.scores.begin(), v.scores.begin() + real);
    for (size_t i = real; i < v.tokens.size(); ++i)
        QVERIFY(v.scores[i] < lowestReal);
    for (const auto& [l, r] : sentencePieceMerges(v))
        QVERIFY2((l + r).rfind("<filler_", 0) != 0, (l + r).c_str());
    // Even the filler's own text is spelled with real pieces.
    const HfTokenizer tok(hfTokenizerJson(v), "synthetic tokenizer.json");
    for (int32_t id : tok.encode(v.tokens[900], false))
        QVERIFY(id < static_cast<int32_t>(real));
    // Cut to fewer pieces than the source has: fine while the byte tokens stay.
    QCOMPARE(synth::synthVocab(300, tokenizerSource()).tokens.size(), size_t{300});
    QVERIFY_THROWS_EXCEPTION(Error, synth::synthVocab(100, tokenizerSource()));
}

void TestSyntheticCheckpoint::builtinVocabularyNeedsNoFile()
{
    const SentencePieceVocab v = synth::synthVocab(2000, "");
    QCOMPARE(v.tokens.size(), size_t{2000});
    const HfTokenizer tok(hfTokenizerJson(v), "built-in tokenizer.json");
    const std::string text = "Once upon a time the engineer measured every layer of the model.\nZ\xC3\xA9!";
    const std::vector<int32_t> ids = tok.encode(text);
    QCOMPARE(tok.decode(ids), text);
    QVERIFY(ids.size() < text.size() / 2); // learned merges at work, not one byte per token
    if (test::haveShared()) { // the tokenizer.json form of a source gives the same pieces
        const SentencePieceVocab fromJson = synth::synthVocab(1024, test::sharedPath("models/stories260K-hf/tokenizer.json"));
        const SentencePieceVocab fromBin = synth::synthVocab(1024, test::sharedPath("models/stories260K/tok512.bin"));
        QCOMPARE(fromJson.tokens, fromBin.tokens);
        QCOMPARE(sentencePieceMerges(fromJson), sentencePieceMerges(fromBin));
    }
}

void TestSyntheticCheckpoint::ggufExportKeepsTheVocabulary()
{
    const auto m = openModel(generated());
    const std::string out = test::scratchDir() + "/synth.gguf";
    GgufExportOptions o;
    o.type = DType::F16;
    exportGguf(*m, out, o);
    const auto g = openModel(out);
    QCOMPARE(g->metadata.at("tokenizer.ggml.model").get<std::string>(), std::string("llama"));
    QCOMPARE(static_cast<int64_t>(g->metadata.at("tokenizer.ggml.tokens").size()), g->findLogical("embed.weight")->shape[0]);
    QCOMPARE(g->config.vocab, int64_t{1024});
    const std::string text = "Once upon a time, there was a little girl named Lily.";
    QCOMPARE(loadTokenizer(*g)->encode(text), loadTokenizer(*m)->encode(text));
}

void TestSyntheticCheckpoint::tiedShapeHasNoHead()
{
    synth::SynthShape s = smallShape();
    s.tied = true;
    s.ropeScaling = synth::synthShape("llama3.2-1b").ropeScaling;
    const std::string dir = test::scratchDir() + "/tied";
    synth::SynthOptions o;
    o.tokenizer = tokenizerSource();
    const auto r = synth::writeSyntheticHf(s, DType::F32, dir, o);
    QCOMPARE(r.shards, 1);
    QVERIFY(filesIn(dir).count("model.safetensors") && !filesIn(dir).count("model.safetensors.index.json"));
    const nlohmann::json cfg = readJsonFile(dir + "/config.json");
    QCOMPARE(cfg.at("tie_word_embeddings").get<bool>(), true);
    QCOMPARE(cfg.at("rope_scaling").at("rope_type").get<std::string>(), std::string("llama3"));
    QCOMPARE(cfg.at("rope_parameters").at("factor").get<double>(), 32.0);
    const auto m = openModel(dir);
    QVERIFY(!m->findByStoredName("lm_head.weight"));
    QVERIFY(m->config.tiedEmbeddings);
    QVERIFY(m->findLogical("lm_head.weight")->tied);
    QCOMPARE(m->stored.front().dtype, DType::F32);
    QVERIFY(Transformer(*m).logits(std::vector<int32_t>{1, 5, 9}).allFinite());
}

void TestSyntheticCheckpoint::refusesAnExistingDestination()
{
    const std::string dir = generated();
    const std::string before = test::readFile(dir + "/config.json");
    try {
        synth::writeSyntheticHf(smallShape(), DType::BF16, dir, smallOptions());
        QFAIL("no error");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
        QVERIFY2(std::string(e.what()).find(dir) != std::string::npos, e.what());
    }
    QCOMPARE(test::readFile(dir + "/config.json"), before);

    // Allowed with overwrite, but never over a folder that is not a model export.
    const std::string other = test::scratchDir();
    test::writeFile(other + "/notes.odt", "mine");
    synth::SynthOptions o = smallOptions();
    o.overwrite = true;
    QVERIFY_THROWS_EXCEPTION(Error, synth::writeSyntheticHf(smallShape(), DType::BF16, other, o));
    QVERIFY(fs::exists(other + "/notes.odt"));

    // A bad tokenizer fails before anything is written.
    const std::string fresh = test::scratchDir() + "/never";
    o.tokenizer = fresh + "-missing-tokenizer.bin";
    try {
        synth::writeSyntheticHf(smallShape(), DType::BF16, fresh, o);
        QFAIL("no error");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::NotFound);
        QVERIFY2(std::string(e.what()).find("missing-tokenizer.bin") != std::string::npos, e.what());
    }
    QVERIFY(!fs::exists(fresh));
    QCOMPARE(filesIn(fs::path(fresh).parent_path().string()).size(), size_t{0});
}

void TestSyntheticCheckpoint::cancelLeavesNothing()
{
    // Cancelled halfway through the first shard: an Error(Cancelled), and no folder, partial or final.
    class CancelMidway : public Progress {
    public:
        void report(double fraction, std::string_view) override { half = half || fraction > 0.1; }
        bool cancelled() const override { return half; }
        bool half = false;
    } progress;
    const std::string parent = test::scratchDir();
    synth::SynthOptions o = smallOptions();
    o.progress = &progress;
    try {
        synth::writeSyntheticHf(smallShape(), DType::BF16, parent + "/cancelled", o);
        QFAIL("no error");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::Cancelled);
    }
    QVERIFY(progress.half);
    QCOMPARE(filesIn(parent).size(), size_t{0});
    QVERIFY_THROWS_EXCEPTION(Error, synth::writeSyntheticHf(smallShape(), DType::Q8_0, parent + "/q8", smallOptions()));
}

QTEST_APPLESS_MAIN(TestSyntheticCheckpoint)
#include "test_synthetic_checkpoint.moc"
