// Exporters: every export is reopened with LayerLab's own readers and compared
// with independent references (the stories260K-hf folder transformers wrote,
// llama.cpp's GGUF files, transformers' tokenizer ids); plus the safety of the
// writes (no overwrite without force, no partial file after a failure, never
// into the source model).
#include "test_support.h"

#include "analysis/model_size.h"
#include "util/atomic_file.h"
#include "export/export_common.h"
#include "export/gguf_export.h"
#include "export/gguf_writer.h"
#include "export/hf_export.h"
#include "export/hf_tokenizer_json.h"
#include "export/safetensors_writer.h"
#include "formats/open_model.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "recipe/apply.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/half.h"
#include "util/json_util.h"
#include "util/mapped_file.h"
#include "util/progress.h"

#include <nlohmann/json.hpp>

#include <QProcess>

#include <csignal>
#include <filesystem>
#include <signal.h>
#include <QtTest>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <set>

using namespace ll;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Our Q8_0 export and llama-quantize's must dequantize to the same error: the
// same algorithm on the same floats (the bytes are compared too).
constexpr double kQ8RmseRelTol = 1e-9;
// The other block types: LayerLab's quantizers are llama.cpp's reference
// algorithms, so the error of the whole file must match llama-quantize --pure's.
constexpr double kQuantRmseRelTol = 1e-6;

const char* const kQuantTensors[] = {"blk.0.ffn_down.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight"};

std::string shared(const std::string& rel) { return test::sharedPath(rel); }
std::string storiesBin() { return shared("models/stories260K/stories260K.bin"); }
std::string storiesHf() { return shared("models/stories260K-hf"); }
std::string storiesGguf() { return shared("models/stories260K-gguf/stories260K-f32.gguf"); }
std::string tinyLlama() { return shared("models/tiny-llama"); }
std::string quants(const std::string& file) { return shared("models/gguf-quants/" + file); }

float roundF16(float x) { return fp16ToFloat(floatToFp16(x)); }
float roundBf16(float x) { return bf16ToFloat(floatToBf16(x)); }

const TensorRef* storedNamed(const Model& m, const std::string& name)
{
    for (const auto& t : m.stored)
        if (t.name == name && !t.edited)
            return &t;
    return nullptr;
}

std::vector<std::string> entries(const std::string& dir)
{
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::string joined(const std::vector<std::string>& v)
{
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : " ") + x;
    return s;
}

double rmse(const std::vector<float>& a, const std::vector<float>& b)
{
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - b[i];
        s += d * d;
    }
    return a.empty() ? 0.0 : std::sqrt(s / static_cast<double>(a.size()));
}

std::vector<float> randomValues(size_t n, uint32_t seed, float scale = 1.0f)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

// Every logical tensor of `expected` exists in `actual` with the same shape and
// values (after `round`, for F16/BF16 exports): bit for bit, no tolerance. When
// one model is a GGUF / llama2.c file and the other a Hugging Face folder, q and
// k rows are compared in the same rotary layout (the permutation itself is
// proven against independent references in the stories260K tests).
void requireSameTensors(const Model& expected, const Model& actual, const std::function<float(float)>& round = {})
{
    QCOMPARE(actual.tensors.size(), expected.tensors.size());
    const bool relayout = expected.config.ropeInterleaved != actual.config.ropeInterleaved;
    for (const LogicalTensor& e : expected.tensors) {
        const LogicalTensor* a = actual.findLogical(e.logicalName);
        QVERIFY2(a, e.logicalName.c_str());
        QVERIFY2(a->shape == e.shape, e.logicalName.c_str());
        std::vector<float> want = readLogical(expected, e);
        if (round)
            for (float& x : want)
                x = round(x);
        std::vector<float> got = readLogical(actual, *a);
        if (relayout && (e.role == Role::AttnQ || e.role == Role::AttnK)) {
            const int64_t rows = e.shape[0], cols = e.shape.size() > 1 ? e.shape[1] : 1;
            got = expected.config.ropeInterleaved ? halvesToInterleaved(got, rows, cols, expected.config.headDim)
                                                  : interleavedToHalves(got, rows, cols, expected.config.headDim);
        }
        QVERIFY2(got == want, e.logicalName.c_str());
    }
}

// The call must throw ll::Error with `code`; returns its message.
std::string expectError(const std::function<void()>& f, ErrorCode code)
{
    try {
        f();
    } catch (const Error& e) {
        if (e.code() != code)
            qWarning("got %s (%s), expected %s", errorCodeName(e.code()), e.what(), errorCodeName(code));
        return e.code() == code ? std::string(e.what()) : std::string("WRONG CODE: ") + e.what();
    }
    return "NO ERROR";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }


// A writable copy of a shared model folder.
std::string copyFolder(const std::string& from, const std::string& name)
{
    const std::string to = test::scratchDir() + "/" + name;
    fs::create_directories(to);
    for (const auto& e : fs::directory_iterator(from)) {
        const fs::path dst = fs::path(to) / e.path().filename();
        fs::copy_file(e.path(), dst);
        fs::permissions(dst, fs::perms::owner_write, fs::perm_options::add);
    }
    return to;
}

// A Hugging Face folder with random weights, written with LayerLab's own safetensors writer.
std::string writeSyntheticHf(const std::string& name, const json& config,
                             const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors)
{
    const std::string dir = test::scratchDir() + "/" + name;
    fs::create_directories(dir);
    test::writeFile(dir + "/config.json", config.dump(2));
    std::vector<SafetensorsTensor> st;
    uint32_t seed = 1;
    for (const auto& [tname, shape] : tensors) {
        SafetensorsTensor t;
        t.name = tname;
        t.shape = shape;
        int64_t n = 1;
        for (int64_t d : shape)
            n *= d;
        const uint32_t s = seed++;
        t.bytes = [n, s] { return encodeFloats(randomValues(static_cast<size_t>(n), s), DType::F32); };
        st.push_back(std::move(t));
    }
    FileWriter w(dir + "/model.safetensors", dir + "/model.safetensors");
    writeSafetensors(w, std::move(st), {{"format", "pt"}});
    w.close();
    return dir;
}

struct ReferenceTokens {
    std::string text;
    std::vector<int32_t> ids;
};

ReferenceTokens referenceTokens()
{
    const json j = readJsonFile(shared("reference/stories260K_tokenizer.json"));
    return {j.at("text_first_2000_chars_of_eval").get<std::string>(), j.at("ids").get<std::vector<int32_t>>()};
}

} // namespace

class TestExport : public QObject {
    Q_OBJECT
private slots:
    void safetensorsWriterLayout();
    void hfRoundTripIsExact();
    void hfHalfPrecisionEqualsRoundedSource();
    void stories260KFromBinAndGgufEqualsHf();
    void shardedExport();
    void ggufFromEveryStories260KSourceEqualsLlamaCpp();
    void ggufQ8MatchesLlamaQuantize();
    void ggufBlockTypesMatchLlamaQuantize();
    void ggufEstimateIsTheFileSize();
    void heldSizesAreTheExportedBytes();
    void ggufFallbackRules();
    void ggufPresetsMatchLlamaQuantize();
    void ggufPresetRulesAtLlama3Shapes();
    void ggufTokenizerRetokenizes();
    void ggufByteLevelTokenizer();
    void editedTensorsAreExported();
    void factoredLayersExportDense();
    void killedExportLeavesNothing();
    void gpt2ReFusesCAttn();
    void phi3AndNeoXFusedLayouts();
    void structuredPruningUpdatesConfig();
    void refusesUnsupportedFamilies();
    void refusesExistingOutput();
    void cancellationLeavesNothing();
    void writeFailureLeavesNothing();
    void fullDiskOnTmpfs();
    void refusesWritingIntoSource();
    void cliExport();
};

void TestExport::safetensorsWriterLayout()
{
    const std::string dir = test::scratchDir();
    const std::vector<float> a = randomValues(6, 1), b = randomValues(5, 2), c = randomValues(4, 3);
    std::vector<SafetensorsTensor> ts;
    // Deliberately unsorted and in every supported type.
    ts.push_back({"zeta", DType::F32, {2, 3}, [&] { return encodeFloats(a, DType::F32); }, {}});
    ts.push_back({"alpha.weight", DType::F16, {5}, [&] { return encodeFloats(b, DType::F16); }, {}});
    ts.push_back({"mid", DType::BF16, {2, 2}, [&] { return encodeFloats(c, DType::BF16); }, {}});
    FileWriter w(dir + "/t.safetensors", dir + "/t.safetensors");
    writeSafetensors(w, ts, {{"format", "pt"}});
    w.close();

    const std::string bytes = test::readFile(dir + "/t.safetensors");
    uint64_t headerLen = 0;
    std::memcpy(&headerLen, bytes.data(), 8);
    QCOMPARE(headerLen % 8, uint64_t{0}); // padded with spaces so the data starts 8-aligned
    const std::string header = bytes.substr(8, headerLen);
    QVERIFY(header.back() == ' ' || header.back() == '}');
    const json j = json::parse(header);
    QCOMPARE(j["__metadata__"], (json{{"format", "pt"}}));
    // Offsets follow the sorted names: alpha.weight, mid, zeta.
    QCOMPARE(j["alpha.weight"]["data_offsets"], (json{0, 10}));
    QCOMPARE(j["mid"]["data_offsets"], (json{10, 18}));
    QCOMPARE(j["zeta"]["data_offsets"], (json{18, 42}));
    QCOMPARE(j["zeta"]["dtype"], json("F32"));
    QCOMPARE(bytes.size(), size_t(8 + headerLen + 42));
    QVERIFY(header.find("\"alpha.weight\"") < header.find("\"mid\""));

    const SafetensorsFile f = readSafetensors(dir + "/t.safetensors");
    QCOMPARE(f.tensors.size(), size_t{3});
    for (const auto& t : f.tensors) {
        const std::vector<float> v = decodeStored(t);
        std::vector<float> want = t.name == "zeta" ? a : t.name == "mid" ? c : b;
        for (float& x : want)
            x = t.name == "zeta" ? x : t.name == "mid" ? roundBf16(x) : roundF16(x);
        QVERIFY2(v == want, t.name.c_str());
    }
}

void TestExport::hfRoundTripIsExact()
{
    LL_REQUIRE_SHARED();
    const auto src = openModel(tinyLlama());
    const std::string out = test::scratchDir() + "/tiny-llama-f32";
    const ExportResult r = exportHf(*src, out);
    QCOMPARE(r.format, std::string("hf"));
    QCOMPARE(entries(out), (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors"}));
    const auto back = openModel(out);
    requireSameTensors(*src, *back);
    // Stored names and shapes are the source's; the config is carried over unchanged.
    for (const auto& t : src->stored) {
        const TensorRef* b = storedNamed(*back, t.name);
        QVERIFY2(b && b->shape == t.shape && b->dtype == DType::F32, t.name.c_str());
    }
    QCOMPARE(readJsonFile(out + "/config.json"), readJsonFile(tinyLlama() + "/config.json"));
    QCOMPARE(test::readFile(out + "/generation_config.json"), test::readFile(tinyLlama() + "/generation_config.json"));
    // Bytes reported = bytes on disk.
    uint64_t total = 0;
    for (const auto& f : r.files) {
        QCOMPARE(static_cast<uint64_t>(fs::file_size(f.path)), f.bytes);
        total += f.bytes;
    }
    QCOMPARE(r.totalBytes, total);

    // Other families keep their own names and layouts too (OPT: biases, learned positions, project-free).
    const auto opt = openModel(shared("models/tiny-opt"));
    const std::string optOut = test::scratchDir() + "/tiny-opt";
    exportHf(*opt, optOut);
    const auto optBack = openModel(optOut);
    requireSameTensors(*opt, *optBack);
    QCOMPARE(optBack->stored.size(), opt->stored.size());
    QCOMPARE(readJsonFile(optOut + "/config.json"), readJsonFile(shared("models/tiny-opt/config.json")));
}

void TestExport::hfHalfPrecisionEqualsRoundedSource()
{
    LL_REQUIRE_SHARED();
    const auto src = openModel(tinyLlama());
    for (DType dt : {DType::F16, DType::BF16}) {
        const std::string out = test::scratchDir() + "/half";
        HfExportOptions opt;
        opt.dtype = dt;
        exportHf(*src, out, opt);
        const auto back = openModel(out);
        requireSameTensors(*src, *back, dt == DType::F16 ? roundF16 : roundBf16);
        for (const auto& t : back->stored)
            QCOMPARE(t.dtype, dt);
        const json cfg = readJsonFile(out + "/config.json");
        QCOMPARE(cfg["dtype"], json(dt == DType::F16 ? "float16" : "bfloat16"));
    }
    // F16 source to F16: decoding and re-encoding F16 is exact, so the shards' values survive.
    const auto half = openModel(shared("models/tiny-llama-fp16-sharded"));
    const std::string out = test::scratchDir() + "/f16-again";
    HfExportOptions opt;
    opt.dtype = DType::F16;
    exportHf(*half, out, opt);
    requireSameTensors(*half, *openModel(out));
}

void TestExport::stories260KFromBinAndGgufEqualsHf()
{
    LL_REQUIRE_SHARED();
    const auto hf = openModel(storiesHf());
    for (const std::string& source : {storiesBin(), storiesGguf()}) {
        const auto src = openModel(source);
        const std::string out = test::scratchDir() + "/stories-hf";
        const ExportResult r = exportHf(*src, out);
        const auto back = openModel(out);
        // The same tensors as transformers' own conversion, bit for bit: q/k rows went back to rotate_half.
        requireSameTensors(*hf, *back);
        if (QTest::currentTestFailed())
            return;
        int permuted = 0;
        for (const LogicalTensor& t : hf->tensors)
            if ((t.role == Role::AttnQ || t.role == Role::AttnK)
                && readLogical(*src, *src->findLogical(t.logicalName)) != readLogical(*hf, t))
                ++permuted;
        QCOMPARE(permuted, 10); // the source really was in the other layout
        const json cfg = readJsonFile(out + "/config.json");
        for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "bos_token_id",
                                "eos_token_id", "model_type", "architectures", "rms_norm_eps"})
            QVERIFY2(cfg[key] == hf->metadata[key], key);
        QCOMPARE(cfg["rope_parameters"]["rope_theta"], json(10000.0));
        // llama2.c shares the classifier (tied, stored once); llama.cpp's GGUF has its own output.weight.
        const bool tied = src->format == "llama2c";
        QCOMPARE(cfg["tie_word_embeddings"], json(tied));
        QCOMPARE(storedNamed(*back, "lm_head.weight") != nullptr, !tied);
        QVERIFY(contains(joined(r.notes), "rotate_half"));
        // The tokenizer files, made from tokenizer.bin or the GGUF vocabulary, are the ones transformers wrote
        // (merges generated from the piece scores included), and the folder's tokenizer gives transformers' ids.
        QCOMPARE(readJsonFile(out + "/tokenizer.json"), readJsonFile(storiesHf() + "/tokenizer.json"));
        QCOMPARE(readJsonFile(out + "/tokenizer_config.json"), readJsonFile(storiesHf() + "/tokenizer_config.json"));
        QVERIFY(contains(joined(r.notes), "tokenizer.json written"));
        const ReferenceTokens ref = referenceTokens();
        QCOMPARE(loadTokenizer(*back)->encode(ref.text), ref.ids);
    }
    // A damaged vocabulary with huge pieces: one past the limit gets no merges (no quadratic scan) though it
    // splits into two pieces of the vocabulary ("a" + the other long one); the rest keep theirs.
    SentencePieceVocab v;
    v.tokens = {"a", "b", "ab", std::string(kMaxMergedPieceBytes, 'a'), std::string(kMaxMergedPieceBytes + 1, 'a')};
    v.scores = {0.0f, -1.0f, -2.0f, -3.0f, -4.0f};
    v.types.assign(5, SentencePieceVocab::Normal);
    const auto merges = sentencePieceMerges(v);
    QCOMPARE(merges.size(), size_t(1));
    QCOMPARE(merges[0], std::make_pair(std::string("a"), std::string("b")));
    // A repeated piece is one vocab entry, at its first position with its last id (Python's dict).
    v.tokens = {"a", "b", "a", "ab", "b"};
    const auto vocab = hfTokenizerJson(v)["model"]["vocab"];
    QCOMPARE(vocab.dump(), std::string(R"({"a":2,"b":4,"ab":3})"));
}

void TestExport::shardedExport()
{
    LL_REQUIRE_SHARED();
    const auto src = openModel(tinyLlama());
    const std::string out = test::scratchDir() + "/sharded";
    HfExportOptions opt;
    opt.shardBytes = 200000;
    const ExportResult r = exportHf(*src, out, opt);
    const json index = readJsonFile(out + "/model.safetensors.index.json");
    std::set<std::string> shards;
    uint64_t tensorBytes = 0;
    for (const auto& [name, file] : index["weight_map"].items()) {
        shards.insert(file.get<std::string>());
        QVERIFY(storedNamed(*src, name));
    }
    for (const auto& t : r.tensors)
        tensorBytes += t.bytes;
    QCOMPARE(index["weight_map"].size(), src->stored.size());
    QCOMPARE(index["metadata"]["total_size"].get<uint64_t>(), tensorBytes);
    const size_t n = shards.size();
    QVERIFY2(n >= 3, std::to_string(n).c_str()); // ~634 KB of weights over 200 KB shards
    for (size_t k = 1; k <= n; ++k) {
        char name[64];
        std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k, n);
        QVERIFY2(shards.count(name), name);
        // No shard passes the limit unless a single tensor does.
        QVERIFY(fs::file_size(out + "/" + name) < opt.shardBytes + 4096);
    }
    requireSameTensors(*src, *openModel(out));
}

void TestExport::ggufFromEveryStories260KSourceEqualsLlamaCpp()
{
    LL_REQUIRE_SHARED();
    // llama.cpp converted stories260K.bin itself (stories260K-f32.gguf): our GGUF from
    // the .bin, from the HF folder (q/k permuted to the interleaved layout) and from
    // that GGUF must hold the same tensors, and the vocabulary keys must agree.
    const auto ref = openModel(storiesGguf());
    for (const std::string& source : {storiesBin(), storiesHf(), storiesGguf()}) {
        const auto src = openModel(source);
        const std::string out = test::scratchDir() + "/stories.gguf";
        GgufExportOptions opt;
        opt.type = DType::F32;
        exportGguf(*src, out, opt);
        const auto back = openModel(out);
        QCOMPARE(back->format, std::string("gguf"));
        QCOMPARE(back->metadata["general.architecture"], json("llama"));
        QCOMPARE(back->metadata["general.file_type"], json(0));
        for (const char* key : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                                "llama.feed_forward_length", "llama.rope.dimension_count", "llama.attention.head_count",
                                "llama.attention.head_count_kv", "llama.attention.layer_norm_rms_epsilon",
                                "llama.rope.freq_base", "llama.vocab_size"})
            QVERIFY2(back->metadata[key] == ref->metadata[key], (source + " " + key).c_str());
        requireSameTensors(*ref, *back);
        if (QTest::currentTestFailed())
            return;
        if (src->format != "safetensors") // tokenizer.json is converted differently (see ggufTokenizerRetokenizes)
            for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                    "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
                                    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                                    "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"})
                QVERIFY2(back->metadata[key] == ref->metadata[key], (source + " " + key).c_str());
        // 32-byte alignment: every tensor's data offset (from the file start) is a multiple of 32.
        for (const auto& t : back->stored)
            QCOMPARE((t.data - back->files[0]->data()) % 32, 0L);
    }
}

void TestExport::ggufQ8MatchesLlamaQuantize()
{
    LL_REQUIRE_SHARED();
    const auto src = openModel(quants("tiny-llama256-f32.gguf"));
    const auto llama = openModel(quants("tiny-llama256-Q8_0.gguf"));
    const std::string out = test::scratchDir() + "/q8.gguf";
    GgufExportOptions opt;
    opt.type = DType::Q8_0;
    const ExportResult r = exportGguf(*src, out, opt);
    QVERIFY(r.fallbacks.empty());
    const auto ours = openModel(out);
    QCOMPARE(ours->metadata["general.file_type"], json(7));
    QCOMPARE(ours->metadata["general.quantization_version"], json(2));
    for (const char* name : kQuantTensors) {
        const std::vector<float> exact = test::referenceFloats(quants("tiny-llama256-f32.values.safetensors"), name);
        const std::vector<float> mine = decodeStored(*storedNamed(*ours, name));
        const std::vector<float> theirs = decodeStored(*storedNamed(*llama, name));
        const double a = rmse(mine, exact), b = rmse(theirs, exact);
        qInfo("Q8_0 %-24s RMSE vs F32: LayerLab %.9g, llama-quantize %.9g", name, a, b);
        QVERIFY2(std::fabs(a - b) <= kQ8RmseRelTol * b, name);
    }
    // Stronger than equal errors: every quantized tensor is byte-identical to llama-quantize's.
    int identical = 0;
    for (const auto& t : llama->stored) {
        const TensorRef* m = storedNamed(*ours, t.name);
        QVERIFY2(m && m->dtype == t.dtype && m->nbytes == t.nbytes, t.name.c_str());
        QVERIFY2(std::memcmp(m->data, t.data, t.nbytes) == 0, t.name.c_str());
        ++identical;
    }
    QCOMPARE(identical, 12);

    // Exporting llama.cpp's Q8_0 file as Q8_0 again copies its blocks: no second rounding.
    const std::string again = test::scratchDir() + "/q8-again.gguf";
    const ExportResult r2 = exportGguf(*llama, again, opt);
    QVERIFY(contains(joined(r2.notes), "copied byte for byte"));
    const auto copy = openModel(again);
    for (const auto& t : llama->stored) {
        const TensorRef* c = storedNamed(*copy, t.name);
        QVERIFY2(c && c->nbytes == t.nbytes && std::memcmp(c->data, t.data, t.nbytes) == 0, t.name.c_str());
    }
}

void TestExport::ggufBlockTypesMatchLlamaQuantize()
{
    LL_REQUIRE_SHARED();
    const auto src = openModel(quants("tiny-llama256-f32.gguf"));
    const std::vector<std::pair<DType, std::string>> types{
        {DType::Q4_0, "Q4_0"}, {DType::Q4_1, "Q4_1"},   {DType::Q5_0, "Q5_0"},   {DType::Q5_1, "Q5_1"},   {DType::Q2_K, "Q2_K"},
        {DType::Q3_K, "Q3_K_S"}, {DType::Q4_K, "Q4_K_S"}, {DType::Q5_K, "Q5_K_S"}, {DType::Q6_K, "Q6_K"}, {DType::F16, "F16"},
        {DType::BF16, "BF16"},
    };
    for (const auto& [type, file] : types) {
        const auto llama = openModel(quants("tiny-llama256-" + file + ".gguf"));
        const std::string out = test::scratchDir() + "/q.gguf";
        GgufExportOptions opt;
        opt.type = type;
        exportGguf(*src, out, opt);
        const auto ours = openModel(out);
        // The whole file's error against the F32 values, over every 2-D tensor.
        std::vector<float> exact, mine, theirs;
        int sameBytes = 0, matrices = 0;
        for (const auto& t : src->stored) {
            if (t.shape.size() != 2)
                continue;
            ++matrices;
            const auto e = decodeStored(t), a = decodeStored(*storedNamed(*ours, t.name)),
                       b = decodeStored(*storedNamed(*llama, t.name));
            exact.insert(exact.end(), e.begin(), e.end());
            mine.insert(mine.end(), a.begin(), a.end());
            theirs.insert(theirs.end(), b.begin(), b.end());
            const TensorRef* x = storedNamed(*ours, t.name);
            const TensorRef* y = storedNamed(*llama, t.name);
            sameBytes += x->dtype == y->dtype && x->nbytes == y->nbytes && std::memcmp(x->data, y->data, x->nbytes) == 0;
        }
        const double a = rmse(mine, exact), b = rmse(theirs, exact);
        qInfo("%-6s RMSE vs F32: LayerLab %.9g, llama-quantize %.9g; %d of %d matrices byte-identical", file.c_str(), a, b,
              sameBytes, matrices);
        QVERIFY2(std::fabs(a - b) <= kQuantRmseRelTol * b, file.c_str());
        QCOMPARE(ours->metadata["general.file_type"], json(ggufFileType(type)));
    }
}

// The size estimate (the GUI's quick-compress choices) is the file's exact size,
// and names the types the export then writes, for a preset and for one type.
void TestExport::ggufEstimateIsTheFileSize()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    struct Case {
        std::string source;
        std::optional<GgufPreset> preset;
        DType type;
    };
    for (const Case& c : {Case{shared("models/stories260K-gguf/stories260K-f32.gguf"), ggufPresetNamed("Q4_K_M"), DType::F16},
                          Case{shared("models/stories260K-gguf/stories260K-f32.gguf"), std::nullopt, DType::Q8_0},
                          Case{shared("models/tiny-llama"), std::nullopt, DType::F16}}) {
        const auto src = openModel(c.source);
        GgufExportOptions opt;
        opt.preset = c.preset;
        opt.type = c.type;
        const ExportResult estimate = estimateGgufExport(*src, opt);
        const std::string out = dir + "/estimate.gguf";
        opt.overwrite = true;
        const ExportResult written = exportGguf(*src, out, opt);
        const std::string what = c.source + " as " + (c.preset ? ggufPresetInfo(*c.preset).name : std::string(dtypeName(c.type)));
        QVERIFY2(estimate.totalBytes == std::filesystem::file_size(out), what.c_str());
        QCOMPARE(estimate.tensors.size(), written.tensors.size());
        for (size_t i = 0; i < written.tensors.size(); ++i) {
            QCOMPARE(estimate.tensors[i].name, written.tensors[i].name);
            QCOMPARE(estimate.tensors[i].type, written.tensors[i].type);
            QCOMPARE(estimate.tensors[i].bytes, written.tensors[i].bytes);
        }
        QCOMPARE(estimate.fallbacks.size(), written.fallbacks.size());
    }
}

// One size model (analysis/model_size.h) against the bytes an export writes
// when it copies what the model holds: an F32 GGUF written as F32 (every
// tensor), and ggml Q8_0 applied to the block linears whose rows hold whole
// blocks, written as Q8_0 GGUF (those blocks copied byte for byte).
void TestExport::heldSizesAreTheExportedBytes()
{
    LL_REQUIRE_SHARED();
    const std::shared_ptr<const Model> src = openModel(shared("models/stories260K-gguf/stories260K-f32.gguf"));
    const std::string out = test::scratchDir() + "/held.gguf";
    GgufExportOptions opt;
    opt.type = DType::F32;
    opt.overwrite = true;
    const CompressionState initial = CompressionState::initial(src);
    ExportResult r = exportGguf(*src, out, opt);
    uint64_t data = 0;
    for (const ExportedTensor& t : r.tensors)
        data += t.bytes;
    QCOMPARE(data, modelSize(initial).bytes);

    RecipeStep q8;
    q8.action = StepAction::Quantize;
    q8.params = {{"method", "ggml"}, {"type", "Q8_0"}};
    q8.layers = "attn|gate|up"; // the down projections' rows of 172 are no whole number of 32-value blocks
    const StepOutcome step = applyStep(initial, q8, CalibrationText{});
    opt.type = DType::Q8_0;
    r = exportGguf(*step.state.model, out, opt);
    int checked = 0;
    for (const std::string& name : step.touched) {
        const LogicalTensor* t = step.state.model->findLogical(name);
        QVERIFY(t);
        const TensorSize held = tensorSize(step.state, *t);
        QCOMPARE(held.type, std::string("Q8_0"));
        const std::string gguf = "blk." + std::to_string(t->block) + "."
                                 + (t->role == Role::AttnQ   ? "attn_q"
                                    : t->role == Role::AttnK ? "attn_k"
                                    : t->role == Role::AttnV ? "attn_v"
                                    : t->role == Role::AttnO ? "attn_output"
                                    : t->role == Role::MlpGate ? "ffn_gate"
                                    : t->role == Role::MlpUp   ? "ffn_up"
                                                               : "ffn_down")
                                 + ".weight";
        const auto it = std::find_if(r.tensors.begin(), r.tensors.end(), [&](const ExportedTensor& e) { return e.name == gguf; });
        QVERIFY2(it != r.tensors.end(), gguf.c_str());
        QVERIFY2(it->bytes == held.bytes, gguf.c_str());
        ++checked;
    }
    QCOMPARE(checked, 30); // 5 blocks x 6 linears
}

// llama-quantize's presets choose a type per tensor. Against llama.cpp's own
// files: stories260K as Q4_K_M (every tensor's type, after the rules and the
// row-length fallbacks, and its bytes) and a --pure IQ4_NL file.
void TestExport::ggufPresetsMatchLlamaQuantize()
{
    LL_REQUIRE_SHARED();
    struct Case {
        std::string source, reference;
        std::vector<std::string> typeArgs;
        uint32_t fileType;
    };
    const std::string dir = test::scratchDir();
    for (const Case& c : {Case{shared("models/stories260K-gguf/stories260K-f32.gguf"),
                               shared("models/stories260K-gguf/stories260K-Q4_K_M.gguf"), {"--gguf-type", "q4_k_m"}, 15},
                          Case{quants("tiny-llama256-f32.gguf"), quants("tiny-llama256-IQ4_NL.gguf"),
                               {"--gguf-type", "IQ4_NL", "--gguf-pure"}, 25}}) {
        const std::string out = dir + "/preset.gguf";
        std::vector<std::string> args{"export", c.source, "--gguf", out, "--force", "--json"};
        args.insert(args.end(), c.typeArgs.begin(), c.typeArgs.end());
        const auto r = test::runCli(args);
        QVERIFY2(r.exitCode == 0, r.err.c_str());
        const json j = json::parse(r.out);
        const auto ours = openModel(out), llama = openModel(c.reference);
        QCOMPARE(ours->stored.size(), llama->stored.size());
        for (const TensorRef& t : llama->stored) {
            const TensorRef* x = storedNamed(*ours, t.name);
            QVERIFY2(x, t.name.c_str());
            QVERIFY2(x->dtype == t.dtype, (t.name + ": " + std::string(dtypeName(x->dtype)) + " instead of llama-quantize's "
                                           + std::string(dtypeName(t.dtype))).c_str());
            QVERIFY2(x->nbytes == t.nbytes && std::memcmp(x->data, t.data, t.nbytes) == 0, t.name.c_str());
        }
        QCOMPARE(ours->metadata["general.file_type"], json(c.fileType));
        QCOMPARE(llama->metadata["general.file_type"], json(c.fileType));
        if (c.typeArgs.size() == 2) {
            QCOMPARE(j["preset"], json("Q4_K_M"));
            // The rule is stated for the tensors it moved: the tied output in Q8_0 (rows of 64 do not fill Q4_K).
            bool explained = false;
            for (const auto& t : j["tensors"])
                explained = explained || (t["name"] == "output.weight" && t.value("rule", "").find("output layer") != std::string::npos);
            QVERIFY(explained);
            QVERIFY(contains(r.out, "\"fallbacks\""));
        }
    }
    // llama-quantize's presets LayerLab cannot write are refused with the reason (usage error).
    const auto r = test::runCli({"export", storiesBin(), "--gguf", dir + "/x.gguf", "--gguf-type", "IQ2_XS"});
    QCOMPARE(r.exitCode, 64);
    QVERIFY2(contains(r.err, "IQ2_XS blocks, which LayerLab does not write"), r.err.c_str());
    QVERIFY(contains(test::runCli({"export", storiesBin(), "--gguf", dir + "/x.gguf", "--gguf-type", "Q2_K_S"}).err,
                     "importance matrix"));
    QCOMPARE(test::runCli({"export", storiesBin(), "--gguf", dir + "/x.gguf", "--gguf-pure"}).exitCode, 64);
}

// The rules at Llama-3-8B's shapes (32 blocks, 32 heads, 8 KV heads: n_gqa 4),
// by hand from llama_tensor_get_type (llama.cpp src/llama-quant.cpp, c392e50):
// use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2.
void TestExport::ggufPresetRulesAtLlama3Shapes()
{
    const int64_t n = 32, H = 4096, F = 14336, V = 128256, KV = 1024;
    std::vector<GgufPresetTensor> tensors{{"token_embd.weight", {V, H}}, {"output_norm.weight", {H}}, {"output.weight", {V, H}}};
    for (int64_t b = 0; b < n; ++b) {
        const std::string p = "blk." + std::to_string(b) + ".";
        for (const GgufPresetTensor& t : std::vector<GgufPresetTensor>{
                 {p + "attn_norm.weight", {H}}, {p + "attn_q.weight", {H, H}}, {p + "attn_k.weight", {KV, H}},
                 {p + "attn_v.weight", {KV, H}}, {p + "attn_output.weight", {H, H}}, {p + "ffn_norm.weight", {H}},
                 {p + "ffn_gate.weight", {F, H}}, {p + "ffn_up.weight", {F, H}}, {p + "ffn_down.weight", {H, F}}})
            tensors.push_back(t);
    }
    const std::set<int64_t> moreBits{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    auto typeOf = [&](const std::vector<GgufTypeChoice>& ch, const std::string& name) {
        for (size_t i = 0; i < tensors.size(); ++i)
            if (tensors[i].name == name)
                return ch[i];
        return GgufTypeChoice{};
    };
    const auto q4km = chooseGgufPresetTypes(GgufPreset::Q4_K_M, {n, 32, 8}, tensors);
    QCOMPARE(typeOf(q4km, "output.weight").type, DType::Q6_K);
    QCOMPARE(typeOf(q4km, "token_embd.weight").type, DType::Q4_K);
    QVERIFY(!typeOf(q4km, "output_norm.weight").quantized);
    QVERIFY(!typeOf(q4km, "blk.7.ffn_norm.weight").quantized);
    for (int64_t b = 0; b < n; ++b) {
        const std::string p = "blk." + std::to_string(b) + ".";
        const DType more = moreBits.count(b) ? DType::Q6_K : DType::Q4_K;
        QCOMPARE(typeOf(q4km, p + "attn_v.weight").type, more);
        QCOMPARE(typeOf(q4km, p + "ffn_down.weight").type, more);
        QCOMPARE(typeOf(q4km, p + "attn_q.weight").type, DType::Q4_K);
        QCOMPARE(typeOf(q4km, p + "ffn_up.weight").type, DType::Q4_K);
        QCOMPARE(typeOf(q4km, p + "attn_output.weight").type, DType::Q4_K);
    }
    // Q3_K_M: attn_v Q5_K in the first 2 blocks, Q4_K after; ffn_down Q5_K in the first n/16; attn_output Q4_K.
    const auto q3km = chooseGgufPresetTypes(GgufPreset::Q3_K_M, {n, 32, 8}, tensors);
    QCOMPARE(typeOf(q3km, "blk.1.attn_v.weight").type, DType::Q5_K);
    QCOMPARE(typeOf(q3km, "blk.2.attn_v.weight").type, DType::Q4_K);
    QCOMPARE(typeOf(q3km, "blk.1.ffn_down.weight").type, DType::Q5_K);
    QCOMPARE(typeOf(q3km, "blk.2.ffn_down.weight").type, DType::Q4_K);
    QCOMPARE(typeOf(q3km, "blk.5.attn_output.weight").type, DType::Q4_K);
    QCOMPARE(typeOf(q3km, "blk.5.attn_q.weight").type, DType::Q3_K);
    // Q2_K with n_gqa 4: attn_v Q4_K (Q3_K below 4); ffn_down and attn_output Q3_K.
    const auto q2k = chooseGgufPresetTypes(GgufPreset::Q2_K, {n, 32, 8}, tensors);
    QCOMPARE(typeOf(q2k, "blk.0.attn_v.weight").type, DType::Q4_K);
    QCOMPARE(chooseGgufPresetTypes(GgufPreset::Q2_K, {n, 32, 16}, tensors)[0 + 3 + 3].type, DType::Q3_K); // blk.0.attn_v
    QCOMPARE(typeOf(q2k, "blk.0.ffn_down.weight").type, DType::Q3_K);
    QCOMPARE(typeOf(q2k, "blk.0.attn_q.weight").type, DType::Q2_K);
    // A tied head: the embedding takes the output's Q6_K.
    std::vector<GgufPresetTensor> tied(tensors.begin(), tensors.end());
    tied.erase(tied.begin() + 2);
    QCOMPARE(chooseGgufPresetTypes(GgufPreset::Q4_K_M, {n, 32, 8}, tied)[0].type, DType::Q6_K);
}

void TestExport::ggufFallbackRules()
{
    struct Case {
        DType requested;
        int64_t row;
        DType expected;
    };
    // llama-quantize's rules (llama_tensor_get_type).
    const Case cases[] = {
        {DType::Q4_K, 256, DType::Q4_K}, {DType::Q4_K, 64, DType::Q5_0},  {DType::Q4_K, 172, DType::F16},
        {DType::Q5_K, 64, DType::Q5_1},  {DType::Q6_K, 64, DType::Q8_0},  {DType::Q6_K, 100, DType::F16},
        {DType::Q2_K, 64, DType::IQ4_NL}, {DType::Q3_K, 96, DType::IQ4_NL},  {DType::Q8_0, 64, DType::Q8_0},
        {DType::Q8_0, 172, DType::F16},  {DType::Q4_0, 48, DType::F16},   {DType::F16, 7, DType::F16},
        {DType::BF16, 172, DType::BF16}, {DType::F32, 3, DType::F32},
    };
    for (const auto& c : cases) {
        std::string reason;
        QCOMPARE(ggufTypeFor(c.requested, c.row, &reason), c.expected);
        QCOMPARE(reason.empty(), c.expected == c.requested);
    }
    LL_REQUIRE_SHARED();
    // stories260K in Q4_K: 64-wide rows take Q5_0, ffn_down's 172-wide rows F16, norms stay F32; all listed.
    const auto src = openModel(storiesBin());
    const std::string out = test::scratchDir() + "/q4k.gguf";
    GgufExportOptions opt;
    opt.type = DType::Q4_K;
    const ExportResult r = exportGguf(*src, out, opt);
    int q50 = 0, f16 = 0;
    for (const auto& f : r.fallbacks) {
        QCOMPARE(f.requested, std::string("Q4_K"));
        q50 += f.used == "Q5_0";
        f16 += f.used == "F16";
        QVERIFY2(f.used == (contains(f.tensor, "ffn_down") ? "F16" : "Q5_0"), f.tensor.c_str());
    }
    QCOMPARE(q50, 1 + 5 * 6); // token_embd and six 64-wide matrices per block (tied head: no output.weight)
    QCOMPARE(f16, 5);
    const auto back = openModel(out);
    for (const auto& t : back->stored) {
        const ExportedTensor* e = nullptr;
        for (const auto& x : r.tensors)
            if (x.name == t.name)
                e = &x;
        QVERIFY2(e && e->type == std::string(dtypeName(t.dtype)), t.name.c_str());
        if (t.shape.size() == 1)
            QCOMPARE(t.dtype, DType::F32);
    }
}

void TestExport::ggufTokenizerRetokenizes()
{
    LL_REQUIRE_SHARED();
    const ReferenceTokens ref = referenceTokens();
    const auto llamaCpp = openModel(storiesGguf()); // llama.cpp's conversion of tok512.bin
    const Model& ref260 = *llamaCpp;
    for (const std::string& source : {storiesBin(), storiesHf(), storiesGguf()}) {
        const auto src = openModel(source);
        const std::string out = test::scratchDir() + "/tok.gguf";
        exportGguf(*src, out);
        const auto back = openModel(out);
        const auto tok = loadTokenizer(*back);
        QCOMPARE(back->metadata["tokenizer.ggml.bos_token_id"], json(1));
        QCOMPARE(back->metadata["tokenizer.ggml.eos_token_id"], json(2));
        QCOMPARE(back->metadata["tokenizer.ggml.unknown_token_id"], json(0));
        QCOMPARE(back->metadata["tokenizer.ggml.token_type"], ref260.metadata["tokenizer.ggml.token_type"]);
        QCOMPARE(back->metadata["tokenizer.ggml.tokens"], ref260.metadata["tokenizer.ggml.tokens"]);
        const std::vector<int32_t> ids = tok->encode(ref.text, true);
        QVERIFY2(ids == ref.ids, (source + ": " + std::to_string(ids.size()) + " ids vs " + std::to_string(ref.ids.size())).c_str());
        QCOMPARE(tok->decode(ids), ref.text);
    }
}

void TestExport::ggufByteLevelTokenizer()
{
    LL_REQUIRE_SHARED();
    // tiny-llama with a GPT-2 byte-level tokenizer.json (266 tokens: bytes, 9 merges, one special).
    const std::vector<std::pair<std::string, std::string>> merges{
        {"h", "e"}, {"Ġ", "t"}, {"Ġt", "he"}, {"t", "he"}, {"Ġ", "c"}, {"a", "t"}, {"Ġc", "at"}, {"'", "s"}, {"Ċ", "Ċ"}};
    json vocab = json::object();
    for (int b = 0; b < 256; ++b)
        vocab[bytelevel::fromBytes(std::string(1, static_cast<char>(b)))] = b;
    json mergeList = json::array();
    for (size_t i = 0; i < merges.size(); ++i) {
        vocab[merges[i].first + merges[i].second] = 256 + i;
        mergeList.push_back(merges[i].first + " " + merges[i].second);
    }
    const json tj{
        {"version", "1.0"},
        {"added_tokens", {{{"id", 265}, {"content", "<|endoftext|>"}, {"special", true}}}},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
        {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", false}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", mergeList}, {"unk_token", nullptr}}},
    };
    const std::string dir = copyFolder(tinyLlama(), "tiny-llama-bytelevel");
    test::writeFile(dir + "/tokenizer.json", tj.dump());
    const auto src = openModel(dir);
    const std::string out = test::scratchDir() + "/bl.gguf";
    exportGguf(*src, out);
    const auto back = openModel(out);
    QCOMPARE(back->metadata["tokenizer.ggml.model"], json("gpt2"));
    QCOMPARE(back->metadata["tokenizer.ggml.pre"], json("gpt-2"));
    QCOMPARE(back->metadata["tokenizer.ggml.merges"].size(), merges.size());
    QCOMPARE(back->metadata["tokenizer.ggml.tokens"].size(), size_t{512}); // padded to the embedding
    QCOMPARE(back->metadata["tokenizer.ggml.tokens"][300], json("[PAD300]"));
    QCOMPARE(back->metadata["tokenizer.ggml.token_type"][265], json(3));
    QCOMPARE(back->metadata["tokenizer.ggml.token_type"][300], json(5));
    const auto gguf = loadTokenizer(*back);
    const HfTokenizer hf(dir + "/tokenizer.json");
    for (const char* text : {"the cat's hat", " the  cat", "\n\nthe", "x\n\n", "cat42!? h\xC3\xA9", "hello there"})
        QVERIFY2(gguf->encode(text, true) == hf.encode(text, true), text);
}

void TestExport::editedTensorsAreExported()
{
    LL_REQUIRE_SHARED();
    // stories260K.bin: edit a q (rotary rows), an MLP weight, and the tied embedding.
    auto m = openModel(storiesBin());
    const std::vector<float> original = readLogical(*m, *m->findLogical("embed.weight"));
    replaceTensor(*m, "blocks.2.attn.q.weight", randomValues(64 * 64, 7), {64, 64});
    replaceTensor(*m, "blocks.4.mlp.down.weight", randomValues(64 * 172, 8), {64, 172});
    replaceTensor(*m, "embed.weight", randomValues(512 * 64, 9), {512, 64});

    const std::string hfOut = test::scratchDir() + "/edited-hf";
    const ExportResult r = exportHf(*m, hfOut);
    const auto hf = openModel(hfOut);
    requireSameTensors(*m, *hf); // q in rotate_half order there, compared in llama2.c's
    // The embedding was edited, so the head (still the source values) is its own tensor now.
    QCOMPARE(readJsonFile(hfOut + "/config.json")["tie_word_embeddings"], json(false));
    QVERIFY(!hf->findLogical("lm_head.weight")->tied);
    QVERIFY(readLogical(*hf, *hf->findLogical("lm_head.weight")) == original);
    QVERIFY(contains(joined(r.notes), "no longer shared"));

    // GGUF keeps llama2.c's layout: the logical tensors compare directly.
    const std::string ggufOut = test::scratchDir() + "/edited.gguf";
    GgufExportOptions opt;
    opt.type = DType::F32;
    exportGguf(*m, ggufOut, opt);
    const auto g = openModel(ggufOut);
    requireSameTensors(*m, *g);
    QVERIFY(storedNamed(*g, "output.weight"));

    // An HF source: an edited q goes through the opposite permutation and comes back unchanged.
    auto h = openModel(storiesHf());
    replaceTensor(*h, "blocks.0.attn.k.weight", randomValues(32 * 64, 10), {32, 64});
    const std::string g2 = test::scratchDir() + "/edited2.gguf";
    exportGguf(*h, g2, opt);
    const std::string h2 = test::scratchDir() + "/edited2-hf";
    exportHf(*openModel(g2), h2);
    requireSameTensors(*h, *openModel(h2));
}

// Low-rank layers (replaceTensorFactored) are written as their dense product A B:
// HF and GGUF readers get plain matrices equal to what readLogical returns.
void TestExport::factoredLayersExportDense()
{
    LL_REQUIRE_SHARED();
    const auto factor = [](Model& m, const std::string& name, int64_t out, int64_t rank, int64_t in, uint32_t seed) {
        replaceTensorFactored(m, name, randomValues(static_cast<size_t>(out * rank), seed, 0.3f),
                              randomValues(static_cast<size_t>(rank * in), seed + 1, 0.3f), out, rank, in);
    };
    // stories260K.bin: a q (rotary rows), an MLP weight and the tied head.
    auto m = openModel(storiesBin());
    factor(*m, "blocks.2.attn.q.weight", 64, 16, 64, 20);
    factor(*m, "blocks.4.mlp.down.weight", 64, 8, 172, 22);
    factor(*m, "lm_head.weight", 512, 32, 64, 24);
    QVERIFY(m->parameterCount() < int64_t{292800});
    const std::string hfOut = test::scratchDir() + "/factored-hf";
    const ExportResult r = exportHf(*m, hfOut);
    const auto hf = openModel(hfOut);
    requireSameTensors(*m, *hf);
    for (const LogicalTensor& t : hf->tensors)
        QVERIFY2(!t.factored(), t.logicalName.c_str());
    // Dense again: the embedding, untouched, and the head (512 x 64) as its own tensor.
    QCOMPARE(hf->parameterCount(), int64_t{292800});
    QCOMPARE(readJsonFile(hfOut + "/config.json")["tie_word_embeddings"], json(false));
    QVERIFY(contains(joined(r.notes), "no longer shared"));
    GgufExportOptions opt;
    opt.type = DType::F32;
    const std::string ggufOut = test::scratchDir() + "/factored.gguf";
    exportGguf(*m, ggufOut, opt);
    const auto g = openModel(ggufOut);
    requireSameTensors(*m, *g);
    QVERIFY(storedNamed(*g, "output.weight")); // the head, no longer implicit

    // GPT-2: a factored part of the fused, transposed c_attn is multiplied back into it.
    auto gpt2 = openModel(shared("models/tiny-gpt2"));
    factor(*gpt2, "blocks.1.attn.k.weight", 64, 4, 64, 26);
    const std::string gOut = test::scratchDir() + "/gpt2-factored";
    exportHf(*gpt2, gOut);
    const auto back = openModel(gOut);
    requireSameTensors(*gpt2, *back);
    QCOMPARE(back->stored.size(), gpt2->stored.size() - 2); // neither factor is an extra tensor
}

void TestExport::gpt2ReFusesCAttn()
{
    LL_REQUIRE_SHARED();
    auto m = openModel(shared("models/tiny-gpt2"));
    // Unedited: every stored tensor comes back with the same name, shape and bytes.
    const std::string plain = test::scratchDir() + "/gpt2";
    exportHf(*m, plain);
    const auto p = openModel(plain);
    for (const auto& t : m->stored) {
        const TensorRef* b = storedNamed(*p, t.name);
        QVERIFY2(b && b->shape == t.shape && decodeStored(*b) == decodeStored(t), t.name.c_str());
    }
    // Edit the k part of block 1's c_attn (weight and bias) and an MLP Conv1D weight.
    replaceTensor(*m, "blocks.1.attn.k.weight", randomValues(64 * 64, 11), {64, 64});
    replaceTensor(*m, "blocks.1.attn.k.bias", randomValues(64, 12), {64});
    replaceTensor(*m, "blocks.0.mlp.up.weight", randomValues(256 * 64, 13), {256, 64});
    const std::string out = test::scratchDir() + "/gpt2-edited";
    exportHf(*m, out);
    const auto back = openModel(out);
    requireSameTensors(*m, *back);
    // Still one fused, transposed c_attn of (in, 3 * out).
    const TensorRef* cattn = storedNamed(*back, "h.1.attn.c_attn.weight");
    if (!cattn)
        cattn = storedNamed(*back, "transformer.h.1.attn.c_attn.weight");
    QVERIFY(cattn);
    QCOMPARE(cattn->shape, (std::vector<int64_t>{64, 192}));
    QCOMPARE(back->stored.size(), m->stored.size() - 3); // the edited buffers are not extra tensors
}

void TestExport::phi3AndNeoXFusedLayouts()
{
    // Phi-3: fused qkv_proj and gate_up_proj; the FFN shrinks from 48 to 40.
    const json phi3{{"model_type", "phi3"},          {"hidden_size", 32},        {"intermediate_size", 48},
                    {"num_hidden_layers", 1},        {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                    {"vocab_size", 64},              {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-5},
                    {"tie_word_embeddings", false}};
    const std::string phiDir = writeSyntheticHf(
        "phi3", phi3,
        {{"model.embed_tokens.weight", {64, 32}}, {"model.layers.0.input_layernorm.weight", {32}},
         {"model.layers.0.self_attn.qkv_proj.weight", {64, 32}}, {"model.layers.0.self_attn.o_proj.weight", {32, 32}},
         {"model.layers.0.post_attention_layernorm.weight", {32}}, {"model.layers.0.mlp.gate_up_proj.weight", {96, 32}},
         {"model.layers.0.mlp.down_proj.weight", {32, 48}}, {"model.norm.weight", {32}}, {"lm_head.weight", {64, 32}}});
    auto phi = openModel(phiDir);
    replaceTensor(*phi, "blocks.0.mlp.gate.weight", randomValues(40 * 32, 21), {40, 32});
    replaceTensor(*phi, "blocks.0.mlp.up.weight", randomValues(40 * 32, 22), {40, 32});
    replaceTensor(*phi, "blocks.0.mlp.down.weight", randomValues(32 * 40, 23), {32, 40});
    replaceTensor(*phi, "blocks.0.attn.v.weight", randomValues(16 * 32, 24), {16, 32});
    const std::string phiOut = test::scratchDir() + "/phi3-out";
    const ExportResult r = exportHf(*phi, phiOut);
    QCOMPARE(readJsonFile(phiOut + "/config.json")["intermediate_size"], json(40));
    QVERIFY(contains(joined(r.notes), "intermediate_size 48 -> 40"));
    const auto phiBack = openModel(phiOut);
    QCOMPARE(storedNamed(*phiBack, "model.layers.0.mlp.gate_up_proj.weight")->shape, (std::vector<int64_t>{80, 32}));
    requireSameTensors(*phi, *phiBack);

    // GPT-NeoX: query_key_value interleaves [q_h, k_h, v_h] per head (head size 8).
    const json neox{{"model_type", "gpt_neox"}, {"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 1},
                    {"num_attention_heads", 4}, {"vocab_size", 64},  {"max_position_embeddings", 64},
                    {"layer_norm_eps", 1e-5},   {"rotary_pct", 0.25}, {"tie_word_embeddings", false}};
    const std::string neoxDir = writeSyntheticHf(
        "neox", neox,
        {{"gpt_neox.embed_in.weight", {64, 32}}, {"gpt_neox.layers.0.input_layernorm.weight", {32}},
         {"gpt_neox.layers.0.input_layernorm.bias", {32}}, {"gpt_neox.layers.0.attention.query_key_value.weight", {96, 32}},
         {"gpt_neox.layers.0.attention.query_key_value.bias", {96}}, {"gpt_neox.layers.0.attention.dense.weight", {32, 32}},
         {"gpt_neox.layers.0.attention.dense.bias", {32}}, {"gpt_neox.layers.0.post_attention_layernorm.weight", {32}},
         {"gpt_neox.layers.0.post_attention_layernorm.bias", {32}}, {"gpt_neox.layers.0.mlp.dense_h_to_4h.weight", {64, 32}},
         {"gpt_neox.layers.0.mlp.dense_h_to_4h.bias", {64}}, {"gpt_neox.layers.0.mlp.dense_4h_to_h.weight", {32, 64}},
         {"gpt_neox.layers.0.mlp.dense_4h_to_h.bias", {32}}, {"gpt_neox.final_layer_norm.weight", {32}},
         {"gpt_neox.final_layer_norm.bias", {32}}, {"embed_out.weight", {64, 32}}});
    auto nx = openModel(neoxDir);
    const std::vector<float> newK = randomValues(32 * 32, 31), newVBias = randomValues(32, 32);
    replaceTensor(*nx, "blocks.0.attn.k.weight", newK, {32, 32});
    replaceTensor(*nx, "blocks.0.attn.v.bias", newVBias, {32});
    const std::string nxOut = test::scratchDir() + "/neox-out";
    exportHf(*nx, nxOut);
    const auto nxBack = openModel(nxOut);
    requireSameTensors(*nx, *nxBack);
    // Directly in the file: k row i of head h is stored row h*24 + 8 + i, v bias h*24 + 16 + i.
    const std::vector<float> qkv = decodeStored(*storedNamed(*nxBack, "gpt_neox.layers.0.attention.query_key_value.weight"));
    const std::vector<float> qkvBias = decodeStored(*storedNamed(*nxBack, "gpt_neox.layers.0.attention.query_key_value.bias"));
    for (int h = 0; h < 4; ++h)
        for (int i = 0; i < 8; ++i) {
            QCOMPARE(qkv[(h * 24 + 8 + i) * 32 + 5], newK[(h * 8 + i) * 32 + 5]);
            QCOMPARE(qkvBias[h * 24 + 16 + i], newVBias[h * 8 + i]);
        }
}

void TestExport::structuredPruningUpdatesConfig()
{
    LL_REQUIRE_SHARED();
    // tiny-llama's FFN 176 -> 128 in both blocks: config and GGUF follow the shapes.
    auto m = openModel(tinyLlama());
    for (int b = 0; b < 2; ++b) {
        const std::string p = "blocks." + std::to_string(b) + ".mlp.";
        replaceTensor(*m, p + "gate.weight", randomValues(128 * 64, 40 + b), {128, 64});
        replaceTensor(*m, p + "up.weight", randomValues(128 * 64, 50 + b), {128, 64});
        replaceTensor(*m, p + "down.weight", randomValues(64 * 128, 60 + b), {64, 128});
    }
    const std::string hfOut = test::scratchDir() + "/pruned-hf";
    const ExportResult r = exportHf(*m, hfOut);
    QCOMPARE(readJsonFile(hfOut + "/config.json")["intermediate_size"], json(128));
    QVERIFY(contains(joined(r.notes), "intermediate_size 176 -> 128"));
    requireSameTensors(*m, *openModel(hfOut));
    const std::string ggufOut = test::scratchDir() + "/pruned.gguf";
    GgufExportOptions opt;
    opt.type = DType::F32;
    exportGguf(*m, ggufOut, opt);
    const auto g = openModel(ggufOut);
    QCOMPARE(g->metadata["llama.feed_forward_length"], json(128));
    QCOMPARE(g->config.intermediate, int64_t{128});
    requireSameTensors(*m, *g);

    // Two query heads fewer (4 -> 2, the 2 KV heads kept): head_dim is no longer hidden / heads.
    auto h = openModel(tinyLlama());
    for (int b = 0; b < 2; ++b) {
        const std::string p = "blocks." + std::to_string(b) + ".attn.";
        replaceTensor(*h, p + "q.weight", randomValues(32 * 64, 70 + b), {32, 64});
        replaceTensor(*h, p + "o.weight", randomValues(64 * 32, 80 + b), {64, 32});
    }
    const std::string headsOut = test::scratchDir() + "/heads-hf";
    exportHf(*h, headsOut);
    const json cfg = readJsonFile(headsOut + "/config.json");
    QCOMPARE(cfg["num_attention_heads"], json(2));
    QCOMPARE(cfg["head_dim"], json(16));
    requireSameTensors(*h, *openModel(headsOut));
    const std::string headsGguf = test::scratchDir() + "/heads.gguf";
    exportGguf(*h, headsGguf, opt);
    const auto hg = openModel(headsGguf);
    QCOMPARE(hg->metadata["llama.attention.head_count"], json(2));
    QCOMPARE(hg->metadata["llama.attention.key_length"], json(16));
    requireSameTensors(*h, *hg);

    // Blocks of different widths: neither format can describe them, and both say so.
    auto u = openModel(tinyLlama());
    replaceTensor(*u, "blocks.0.mlp.gate.weight", randomValues(128 * 64, 90), {128, 64});
    replaceTensor(*u, "blocks.0.mlp.up.weight", randomValues(128 * 64, 91), {128, 64});
    replaceTensor(*u, "blocks.0.mlp.down.weight", randomValues(64 * 128, 92), {64, 128});
    const std::string dir = test::scratchDir();
    QVERIFY(contains(expectError([&] { exportHf(*u, dir + "/u-hf"); }, ErrorCode::InvalidArgument), "128, 176"));
    QVERIFY(contains(expectError([&] { exportGguf(*u, dir + "/u.gguf"); }, ErrorCode::InvalidArgument), "128, 176"));
    QCOMPARE(entries(dir), std::vector<std::string>{});
}

void TestExport::refusesUnsupportedFamilies()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    for (const char* model : {"models/tiny-gpt2", "models/tiny-opt"}) {
        const auto m = openModel(shared(model));
        QVERIFY(contains(expectError([&] { exportGguf(*m, dir + "/x.gguf"); }, ErrorCode::UnsupportedArch), "llama-family"));
    }
    QVERIFY(contains(expectError([&] { GgufExportOptions o; o.type = DType::Q8_1; exportGguf(*openModel(storiesBin()), dir + "/x.gguf", o); },
                                 ErrorCode::InvalidArgument),
                     "Q8_1"));
    QCOMPARE(entries(dir), std::vector<std::string>{});
}

void TestExport::refusesExistingOutput()
{
    LL_REQUIRE_SHARED();
    const auto m = openModel(storiesBin());
    const std::string dir = test::scratchDir();
    const std::string file = dir + "/out.gguf";
    test::writeFile(file, "precious");
    QVERIFY(contains(expectError([&] { exportGguf(*m, file); }, ErrorCode::InvalidArgument), "exists; pass --force"));
    QCOMPARE(test::readFile(file), std::string("precious"));
    GgufExportOptions force;
    force.overwrite = true;
    exportGguf(*m, file, force);
    QCOMPARE(openModel(file)->format, std::string("gguf"));

    const std::string folder = dir + "/hf";
    exportHf(*m, folder);
    QVERIFY(contains(expectError([&] { exportHf(*m, folder); }, ErrorCode::InvalidArgument), "exists; pass --force"));
    HfExportOptions hfForce;
    hfForce.overwrite = true;
    hfForce.dtype = DType::BF16;
    exportHf(*m, folder, hfForce);
    QCOMPARE(readJsonFile(folder + "/config.json")["dtype"], json("bfloat16"));
    // --force never replaces a folder that holds something other than a model export.
    const std::string home = dir + "/documents";
    fs::create_directories(home);
    test::writeFile(home + "/thesis.docx", "years of work");
    QVERIFY(contains(expectError([&] { exportHf(*m, home, hfForce); }, ErrorCode::InvalidArgument), "thesis.docx"));
    QCOMPARE(test::readFile(home + "/thesis.docx"), std::string("years of work"));
    // Nor a file with a folder, nor a folder with a file.
    QVERIFY(contains(expectError([&] { exportHf(*m, file, hfForce); }, ErrorCode::InvalidArgument), "not a folder"));
    QVERIFY(contains(expectError([&] { exportGguf(*m, folder, force); }, ErrorCode::InvalidArgument), "is a folder"));
    QCOMPARE(entries(dir), (std::vector<std::string>{"documents", "hf", "out.gguf"}));
}

void TestExport::cancellationLeavesNothing()
{
    LL_REQUIRE_SHARED();
    const auto m = openModel(storiesBin());
    const std::string dir = test::scratchDir();
    test::writeFile(dir + "/old.gguf", "the previous export");
    for (int after : {1, 10, 30}) {
        test::CancelAfter cancel(after);
        GgufExportOptions g;
        g.progress = &cancel;
        g.overwrite = true;
        QVERIFY(contains(expectError([&] { exportGguf(*m, dir + "/old.gguf", g); }, ErrorCode::Cancelled), "old.gguf"));
        QVERIFY(cancel.reports >= after); // it really stopped midway, not before starting
        test::CancelAfter cancel2(after);
        HfExportOptions h;
        h.progress = &cancel2;
        h.shardBytes = 100000;
        expectError([&] { exportHf(*m, dir + "/hf", h); }, ErrorCode::Cancelled);
        // No final file or folder, no partial one; the old file is untouched.
        QCOMPARE(entries(dir), std::vector<std::string>{"old.gguf"});
        QCOMPARE(test::readFile(dir + "/old.gguf"), std::string("the previous export"));
    }
}

void TestExport::writeFailureLeavesNothing()
{
    LL_REQUIRE_SHARED();
    const auto m = openModel(storiesBin());
    const std::string dir = test::scratchDir();
    test::writeFile(dir + "/old.gguf", "the previous export");
    for (uint64_t after : {uint64_t{0}, uint64_t{100}, uint64_t{300000}}) {
        testing::injectWriteFailure(after, ENOSPC);
        GgufExportOptions g;
        g.overwrite = true;
        const std::string e1 = expectError([&] { exportGguf(*m, dir + "/old.gguf", g); }, ErrorCode::Io);
        testing::injectWriteFailure(after, ENOSPC);
        const std::string e2 = expectError([&] { exportHf(*m, dir + "/hf"); }, ErrorCode::Io);
        testing::injectWriteFailure(0, 0);
        QVERIFY2(contains(e1, "old.gguf") && contains(e1, "disk is full"), e1.c_str());
        QVERIFY2(contains(e2, "/hf/") && contains(e2, "disk is full"), e2.c_str());
        QCOMPARE(entries(dir), std::vector<std::string>{"old.gguf"});
        QCOMPARE(test::readFile(dir + "/old.gguf"), std::string("the previous export"));
    }
}

void TestExport::fullDiskOnTmpfs()
{
    LL_REQUIRE_SHARED();
    // A real ENOSPC: a 256 KiB tmpfs in a private mount namespace (unshare -rm), if the system allows one.
    QProcess probe;
    probe.start("unshare", {"-rm", "sh", "-c", "mount -t tmpfs -o size=64k none \"$1\"", "sh", QString::fromStdString(test::scratchDir())});
    if (!probe.waitForFinished(20000) || probe.exitStatus() != QProcess::NormalExit || probe.exitCode() != 0)
        QSKIP("cannot mount a tmpfs in a user namespace here; the injected-failure test covers the error path");
    const std::string dir = test::scratchDir();
    const char* script = "mount -t tmpfs -o size=256k none \"$1\" || exit 99; shift;"
                         "\"$@\"; rc=$?; echo \"left: $(ls -A \"$MNT\")\"; exit $rc";
    for (const std::vector<std::string>& out : {std::vector<std::string>{"--gguf", dir + "/full.gguf", "--gguf-type", "F32"},
                                                std::vector<std::string>{"--hf", dir + "/full-hf"}}) {
        QProcess p;
        QStringList args{"-rm", "sh", "-c", script, "sh", QString::fromStdString(dir), LAYERLAB_CLI_PATH, "export",
                         QString::fromStdString(storiesBin())};
        for (const auto& a : out)
            args << QString::fromStdString(a);
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("MNT", QString::fromStdString(dir));
        p.setProcessEnvironment(env);
        p.start("unshare", args);
        QVERIFY(p.waitForFinished(120000));
        const std::string err = p.readAllStandardError().toStdString();
        const std::string stdoutText = p.readAllStandardOutput().toStdString();
        QCOMPARE(p.exitCode(), 2);
        QVERIFY2(contains(err, "disk is full"), err.c_str());
        QCOMPARE(std::count(err.begin(), err.end(), '\n'), 1L); // one line
        QCOMPARE(stdoutText.substr(stdoutText.rfind("left:")), std::string("left: \n")); // nothing left on the full disk
    }
}

void TestExport::refusesWritingIntoSource()
{
    LL_REQUIRE_SHARED();
    // A writable HF folder: nothing may be written inside it, or replace it.
    const std::string src = copyFolder(tinyLlama(), "source-model");
    const auto m = openModel(src);
    HfExportOptions hfForce;
    hfForce.overwrite = true;
    GgufExportOptions ggufForce;
    ggufForce.overwrite = true;
    const auto before = entries(src);
    QVERIFY(contains(expectError([&] { exportGguf(*m, src + "/model.gguf"); }, ErrorCode::InvalidArgument), "source model"));
    QVERIFY(contains(expectError([&] { exportHf(*m, src + "/sub"); }, ErrorCode::InvalidArgument), "source model"));
    QVERIFY(contains(expectError([&] { exportHf(*m, src, hfForce); }, ErrorCode::InvalidArgument), "source model"));
    QVERIFY(contains(expectError([&] { exportHf(*m, src + "/../source-model/", hfForce); }, ErrorCode::InvalidArgument),
                     "source model"));
    QCOMPARE(entries(src), before);
    // A single-file source: not over itself (even with force), not a folder holding it; beside it is fine.
    const std::string dir = test::scratchDir();
    fs::copy_file(storiesGguf(), dir + "/s.gguf");
    const auto g = openModel(dir + "/s.gguf");
    QVERIFY(contains(expectError([&] { exportGguf(*g, dir + "/s.gguf", ggufForce); }, ErrorCode::InvalidArgument),
                     "source model's own file"));
    fs::create_symlink(dir + "/s.gguf", dir + "/link.gguf");
    QVERIFY(contains(expectError([&] { exportGguf(*g, dir + "/link.gguf", ggufForce); }, ErrorCode::InvalidArgument),
                     "source model's own file"));
    QVERIFY(contains(expectError([&] { exportHf(*g, dir, hfForce); }, ErrorCode::InvalidArgument), "holds the source model"));
    exportGguf(*g, dir + "/s-f16.gguf");
    QCOMPARE(openModel(dir + "/s-f16.gguf")->format, std::string("gguf"));
}

void TestExport::cliExport()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    const std::string out = dir + "/cli.gguf";
    auto r = test::runCli({"export", storiesBin(), "--gguf", out, "--gguf-type", "Q4_K", "--json"});
    QCOMPARE(r.exitCode, 0);
    const json j = json::parse(r.out);
    QCOMPARE(j["format"], json("gguf"));
    QCOMPARE(j["files"][0]["bytes"].get<uint64_t>(), static_cast<uint64_t>(fs::file_size(out)));
    QCOMPARE(j["fallbacks"].size(), size_t{36});
    QCOMPARE(j["types"]["F32"], json(11));
    QCOMPARE(j["tensors"].size(), size_t{47});

    r = test::runCli({"export", storiesHf(), "--hf", dir + "/cli-hf", "--dtype", "bf16", "--shard-mb", "0.3"});
    QCOMPARE(r.exitCode, 0);
    QVERIFY(fs::exists(dir + "/cli-hf/model.safetensors.index.json"));
    QVERIFY(fs::exists(dir + "/cli-hf/tokenizer.json"));
    requireSameTensors(*openModel(storiesHf()), *openModel(dir + "/cli-hf"), roundBf16);

    // Errors: exit 2 and one line on stderr naming the file.
    for (const std::vector<std::string>& bad : {
             std::vector<std::string>{"export", storiesBin(), "--gguf", out},                       // exists
             std::vector<std::string>{"export", dir + "/missing.bin", "--gguf", dir + "/x.gguf"},    // no model
             std::vector<std::string>{"export", shared("models/tiny-gpt2"), "--gguf", dir + "/x.gguf"}, // family
             std::vector<std::string>{"export", storiesHf(), "--gguf", storiesHf() + "/x.gguf"},     // into the source
         }) {
        r = test::runCli(bad);
        QCOMPARE(r.exitCode, 2);
        QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);
        QVERIFY2(r.err.rfind("error: ", 0) == 0, r.err.c_str());
    }
    QVERIFY(contains(test::runCli({"export", storiesBin(), "--gguf", out}).err, "exists; pass --force"));
    QCOMPARE(test::runCli({"export", storiesBin(), "--gguf", out, "--force"}).exitCode, 0);
    // Usage errors: 64.
    for (const std::vector<std::string>& bad : {
             std::vector<std::string>{"export", storiesBin(), "--gguf", out, "--eval", "e.txt"}, // --eval needs --report
             std::vector<std::string>{"export", storiesBin(), "--gguf", out, "--hf", dir + "/y"},
             std::vector<std::string>{"export", storiesBin(), "--gguf", out, "--gguf-type", "IQ1_S"},
             std::vector<std::string>{"export", storiesBin()},
         }) {
        r = test::runCli(bad);
        QCOMPARE(r.exitCode, 64);
    }
    // A recipe that is not there: bad input (2), naming the file.
    r = test::runCli({"export", storiesBin(), "--gguf", out, "--force", "--recipe", dir + "/missing.json"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY(contains(r.err, "missing.json"));
}

// The CLI killed (SIGKILL: no clean-up possible) in the middle of an export:
// nothing under the final name, the source byte for byte unchanged. Writes are
// slowed by the atomic writer's test hook so that the kill lands mid-file.
void TestExport::killedExportLeavesNothing()
{
    LL_REQUIRE_SHARED();
    const std::string source = storiesHf();
    auto sourceBytes = [&] {
        std::string all;
        for (const auto& e : std::filesystem::directory_iterator(source))
            if (e.is_regular_file())
                all += e.path().filename().string() + test::readFile(e.path().string());
        return all;
    };
    const std::string before = sourceBytes();
    const std::string dir = test::scratchDir();
    for (const auto& [flag, name] : std::vector<std::pair<std::string, std::string>>{{"--gguf", "killed.gguf"}, {"--hf", "killed-hf"}}) {
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("LAYERLAB_TEST_SLOW_WRITES_MS"), QStringLiteral("40"));
        p.setProcessEnvironment(env);
        p.start(QStringLiteral(LAYERLAB_CLI_PATH), {QStringLiteral("export"), QString::fromStdString(source), QString::fromStdString(flag),
                                                  QString::fromStdString(dir + "/" + name)});
        QVERIFY(p.waitForStarted());
        // Wait until the partial output exists and has some bytes, then kill.
        auto partialStarted = [&] {
            for (const auto& e : std::filesystem::directory_iterator(dir))
                if (e.path().filename().string().rfind(name + ".partial-", 0) == 0)
                    return true;
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(partialStarted(), 30000);
        QTest::qWait(150);
        // A live export's partial is locked: `clean` does not list it.
        test::CliResult clean = test::runCli({"clean", dir});
        QVERIFY2(clean.exitCode == 0 && contains(clean.out, "no partial files"), clean.out.c_str());
        QCOMPARE(p.state(), QProcess::Running); // still writing: the kill lands mid-export
        ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitStatus(), QProcess::CrashExit);
        QVERIFY2(!std::filesystem::exists(dir + "/" + name), name.c_str());
        QVERIFY(sourceBytes() == before);
        // Issue 16, finding 8: the stale partial is listed by `clean`, and the
        // next export to the same name removes it and says so.
        QVERIFY(partialStarted());
        clean = test::runCli({"clean", dir});
        QVERIFY2(clean.exitCode == 0 && contains(clean.out, name + ".partial-") && contains(clean.out, "1 partial file"),
                 clean.out.c_str());
        const test::CliResult again = test::runCli({"export", source, flag, dir + "/" + name});
        QVERIFY2(again.exitCode == 0, again.err.c_str());
        QVERIFY2(contains(again.out, "removed ") && contains(again.out, "left by an export that was killed"), again.out.c_str());
        QVERIFY(!partialStarted());
        QVERIFY(std::filesystem::exists(dir + "/" + name));
    }
    const test::CliResult clean = test::runCli({"clean", dir, "--remove"});
    QVERIFY2(clean.exitCode == 0 && contains(clean.out, "no partial files"), clean.out.c_str());
}

QTEST_APPLESS_MAIN(TestExport)
#include "test_export.moc"
