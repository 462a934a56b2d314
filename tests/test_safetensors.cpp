// Safetensors and Hugging Face folders: real checkpoints, every supported
// family's naming, and malformed files that must fail with a typed error.
#include "test_support.h"

#include "formats/hf_folder.h"
#include "formats/open_model.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "util/error.h"
#include "util/half.h"

#include <QtTest>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

using namespace ll;

namespace {

// Builds a safetensors file: header JSON text + data bytes.
std::string safetensorsBytes(const std::string& header, const std::string& data, uint64_t declaredLen = UINT64_MAX)
{
    uint64_t n = declaredLen == UINT64_MAX ? header.size() : declaredLen;
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i)
        out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
}

std::string floatsBytes(const std::vector<float>& v)
{
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), v.data(), s.size());
    return s;
}

// Expects opening `path` to throw ll::Error with `code`, naming the file.
void expectError(const std::string& path, ErrorCode code)
{
    try {
        auto m = openModel(path);
        for (const auto& t : m->stored) // reading every tensor must also be safe
            if (canDecode(t.dtype))
                (void)decodeStored(t);
        QFAIL(("no error for " + path).c_str());
    } catch (const Error& e) {
        if (e.code() != code)
            qWarning() << "got" << errorCodeName(e.code()) << e.what();
        QCOMPARE(errorCodeName(e.code()), errorCodeName(code));
        QVERIFY2(std::string(e.what()).find(std::filesystem::path(path).filename().string()) != std::string::npos, e.what());
    }
}

const char* kLlamaConfig = R"({"model_type": "llama", "hidden_size": 4, "intermediate_size": 8,
  "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 3})";

} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
private slots:
    void opensStories260K();
    void opensTinyModelsOfEachFamily();
    void shardedFp16MatchesF32Layout();
    void gpt2FusedAttentionSplitsIntoParts();
    void unsupportedDTypeIsListedNotFatal();
    void malformedFiles_data();
    void malformedFiles();
    void malformedConfigs_data();
    void malformedConfigs();
    void cliReportsBadInput();
    void shardNamesStayInTheFolder();
};

void TestSafetensors::opensStories260K()
{
    LL_REQUIRE_SHARED();
    auto m = openModel(test::sharedPath("models/stories260K-hf"));
    QCOMPARE(m->parameterCount(), int64_t{292800});
    QCOMPARE(m->config.family, Family::Llama);
    QCOMPARE(m->config.layers, int64_t{5});
    QCOMPARE(m->config.heads, int64_t{8});
    QCOMPARE(m->config.kvHeads, int64_t{4});
    QCOMPARE(m->config.headDim, int64_t{8});
    QCOMPARE(m->config.intermediate, int64_t{172});
    QVERIFY(!m->config.tiedEmbeddings);
    QVERIFY(m->tokenizerPath.ends_with("tokenizer.json"));
    // Tree order: embedding first, head last; every block has its 7 linears.
    QCOMPARE(m->tensors.front().logicalName, std::string("embed.weight"));
    QCOMPARE(m->tensors.back().logicalName, std::string("lm_head.weight"));
    for (int b = 0; b < 5; ++b)
        for (Role r : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpGate, Role::MlpUp, Role::MlpDown})
            QVERIFY(m->find(b, r) != nullptr);
    const auto* down = m->findByStoredName("model.layers.0.mlp.down_proj.weight");
    QVERIFY(down);
    QCOMPARE(down->logicalName, std::string("blocks.0.mlp.down.weight"));
    QCOMPARE(down->shape, (std::vector<int64_t>{64, 172}));
}

void TestSafetensors::opensTinyModelsOfEachFamily()
{
    LL_REQUIRE_SHARED();
    struct Case {
        const char* folder;
        Family family;
        int64_t params;
    };
    // Parameter counts: sums of the stored shapes (the gpt2 head is tied to wte and counted once more).
    for (const Case& c : {Case{"tiny-llama", Family::Llama, 158016}, Case{"tiny-gpt2", Family::Gpt2, 173824},
                          Case{"tiny-opt", Family::Opt, 173952}}) {
        auto m = openModel(test::sharedPath(std::string("models/") + c.folder));
        QCOMPARE(m->config.family, c.family);
        QCOMPARE(m->parameterCount(), c.params);
        for (int b = 0; b < 2; ++b)
            for (Role r : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpUp, Role::MlpDown})
                QVERIFY2(m->find(b, r) != nullptr, c.folder);
        QVERIFY(m->find(-1, Role::LmHead));
    }
}

void TestSafetensors::shardedFp16MatchesF32Layout()
{
    LL_REQUIRE_SHARED();
    auto m = openModel(test::sharedPath("models/tiny-llama-fp16-sharded"));
    QCOMPARE(m->files.size(), size_t{4});
    QCOMPARE(m->bytesByDType().count("F16"), size_t{1});
    // F16 decoding against an independent decode of the raw halves.
    const auto* q = m->findLogical("blocks.1.attn.q.weight");
    QVERIFY(q);
    const TensorRef& ref = m->storedOf(*q);
    std::vector<float> values = readLogical(*m, *q);
    QCOMPARE(values.size(), size_t{64 * 64});
    const auto* halves = reinterpret_cast<const uint16_t*>(ref.data);
    for (size_t i = 0; i < values.size(); ++i) {
        // IEEE half: sign, 5-bit exponent (bias 15), 10-bit mantissa.
        const uint16_t h = halves[i];
        const int e = (h >> 10) & 31;
        const double mant = h & 1023;
        const double v = e == 0 ? std::ldexp(mant, -24) : std::ldexp(1.0 + mant / 1024.0, e - 15);
        QCOMPARE(static_cast<double>(values[i]), (h & 0x8000) ? -v : v);
    }
}

void TestSafetensors::gpt2FusedAttentionSplitsIntoParts()
{
    LL_REQUIRE_SHARED();
    auto m = openModel(test::sharedPath("models/tiny-gpt2"));
    // c_attn is Conv1D (in=64, out=192): q/k/v are its column blocks, shown as (out, in).
    const std::string file = test::sharedPath("models/tiny-gpt2/model.safetensors");
    std::vector<int64_t> shape;
    const std::vector<float> cattn = test::referenceFloats(file, "transformer.h.0.attn.c_attn.weight", &shape);
    QCOMPARE(shape, (std::vector<int64_t>{64, 192}));
    const char* parts[] = {"blocks.0.attn.q.weight", "blocks.0.attn.k.weight", "blocks.0.attn.v.weight"};
    for (int p = 0; p < 3; ++p) {
        const auto* t = m->findLogical(parts[p]);
        QVERIFY(t);
        QCOMPARE(t->shape, (std::vector<int64_t>{64, 64}));
        std::vector<float> v = readLogical(*m, *t);
        for (int o = 0; o < 64; ++o)
            for (int i = 0; i < 64; ++i)
                QCOMPARE(v[static_cast<size_t>(o * 64 + i)], cattn[static_cast<size_t>(i * 192 + p * 64 + o)]);
    }
    const auto* head = m->find(-1, Role::LmHead);
    QVERIFY(head && head->tied);
}

void TestSafetensors::unsupportedDTypeIsListedNotFatal()
{
    const std::string dir = test::scratchDir();
    test::writeFile(dir + "/config.json", kLlamaConfig);
    const std::string header = R"({"model.embed_tokens.weight":{"dtype":"F8_E4M3","shape":[3,4],"data_offsets":[0,12]}})";
    test::writeFile(dir + "/model.safetensors", safetensorsBytes(header, std::string(12, '\x10')));
    auto m = openModel(dir);
    QCOMPARE(m->stored.size(), size_t{1});
    QVERIFY(!canDecode(m->stored[0].dtype));
    try {
        (void)decodeStored(m->stored[0]);
        QFAIL("decoding F8 should fail");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::UnsupportedDType);
        QVERIFY(std::string(e.what()).find("F8_E4M3") != std::string::npos);
    }
}

void TestSafetensors::malformedFiles_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<int>("code");
    const std::string ok = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
    const std::string data = floatsBytes({1, 2, 3, 4});
    auto row = [](const char* name, const std::string& bytes, ErrorCode code) {
        QTest::newRow(name) << QByteArray(bytes.data(), static_cast<qsizetype>(bytes.size())) << static_cast<int>(code);
    };
    row("empty file", "", ErrorCode::Truncated);
    row("shorter than the length field", "abc", ErrorCode::Truncated);
    row("header length beyond the file", safetensorsBytes(ok, data, 1000), ErrorCode::Truncated);
    row("header length 2^63", safetensorsBytes(ok, data, uint64_t{1} << 63), ErrorCode::Malformed);
    row("truncated data", safetensorsBytes(ok, data.substr(0, 10)), ErrorCode::Truncated);
    row("header not JSON", safetensorsBytes("{\"w\": [", data), ErrorCode::Malformed);
    row("header is an array", safetensorsBytes("[1,2]", data), ErrorCode::Malformed);
    row("dtype missing", safetensorsBytes(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", data), ErrorCode::Malformed);
    row("negative dimension", safetensorsBytes(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data),
        ErrorCode::Malformed);
    row("shape product overflows",
        safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})", data),
        ErrorCode::Malformed);
    row("size does not match shape", safetensorsBytes(R"({"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}})", data),
        ErrorCode::Malformed);
    row("offsets reversed", safetensorsBytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})", data),
        ErrorCode::Malformed);
    row("offset beyond data", safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data),
        ErrorCode::Truncated);
    row("offset 2^64-1",
        safetensorsBytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}})",
                         data),
        ErrorCode::Truncated);
    row("overlapping tensors",
        safetensorsBytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                         data),
        ErrorCode::Malformed);
    row("offsets not integers", safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":["0",16]}})", data),
        ErrorCode::Malformed);
    row("one offset only", safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", data),
        ErrorCode::Malformed);
    row("entry not an object", safetensorsBytes(R"({"w":7})", data), ErrorCode::Malformed);
}

void TestSafetensors::malformedFiles()
{
    QFETCH(QByteArray, bytes);
    QFETCH(int, code);
    const std::string path = test::scratchDir() + "/model.safetensors";
    test::writeFile(path, bytes.toStdString());
    expectError(path, static_cast<ErrorCode>(code));
}

void TestSafetensors::malformedConfigs_data()
{
    QTest::addColumn<QString>("config");
    QTest::addColumn<int>("code");
    auto row = [](const char* name, const char* config, ErrorCode code) {
        QTest::newRow(name) << QString::fromUtf8(config) << static_cast<int>(code);
    };
    row("config not JSON", "{\"model_type\": ", ErrorCode::Malformed);
    row("unknown architecture", R"({"model_type": "mamba", "hidden_size": 4})", ErrorCode::UnsupportedArch);
    row("no model_type", R"({"hidden_size": 4})", ErrorCode::UnsupportedArch);
    row("heads not grouping",
        R"({"model_type": "llama", "hidden_size": 6, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 3, "num_key_value_heads": 2, "vocab_size": 3})",
        ErrorCode::Malformed);
    row("negative hidden size",
        R"({"model_type": "llama", "hidden_size": -4, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 3})",
        ErrorCode::Malformed);
    row("hidden size as string",
        R"({"model_type": "llama", "hidden_size": "4", "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 3})",
        ErrorCode::Malformed);
    row("unknown activation",
        R"({"model_type": "llama", "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 3, "hidden_act": "swoosh"})",
        ErrorCode::UnsupportedArch);
}

void TestSafetensors::malformedConfigs()
{
    QFETCH(QString, config);
    QFETCH(int, code);
    const std::string dir = test::scratchDir();
    test::writeFile(dir + "/config.json", config.toStdString());
    test::writeFile(dir + "/model.safetensors",
                    safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", floatsBytes({1, 2, 3, 4})));
    try {
        (void)openModel(dir);
        QFAIL("no error");
    } catch (const Error& e) {
        QCOMPARE(errorCodeName(e.code()), errorCodeName(static_cast<ErrorCode>(code)));
        QVERIFY2(std::string(e.what()).find("config.json") != std::string::npos, e.what());
    }
}

void TestSafetensors::cliReportsBadInput()
{
    const std::string dir = test::scratchDir();
    const std::string path = dir + "/broken.safetensors";
    test::writeFile(path, safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "short"));
    const auto r = test::runCli({"inspect", path, "--json"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.empty());
    QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);
    QVERIFY2(r.err.find("broken.safetensors") != std::string::npos, r.err.c_str());

    const auto missing = test::runCli({"inspect", dir + "/does-not-exist"});
    QCOMPARE(missing.exitCode, 2);
    // A folder without weights, and a config with an unknown architecture.
    test::writeFile(dir + "/config.json", R"({"model_type": "mamba"})");
    const auto arch = test::runCli({"inspect", dir});
    QCOMPARE(arch.exitCode, 2);
    QVERIFY2(arch.err.find("mamba") != std::string::npos, arch.err.c_str());
}

// A shard index may only name plain files beside it: '..', '/', a NUL byte
// (which open() would cut the name at) or another control character is an
// error naming the index, on one line (issue 16, finding 6).
void TestSafetensors::shardNamesStayInTheFolder()
{
    const std::string dir = test::scratchDir() + "/sharded";
    std::filesystem::create_directories(dir);
    test::writeFile(dir + "/config.json", R"({"model_type": "llama", "hidden_size": 4, "intermediate_size": 8,
                                             "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 3})");
    test::writeFile(dir + "/a.safetensors",
                    safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", floatsBytes({1, 2, 3, 4})));
    const std::string index = dir + "/model.safetensors.index.json";
    for (const std::string& shard : {std::string("a.safetensors\\u0000../../etc/passwd"), std::string("../a.safetensors"),
                                     std::string("sub/a.safetensors"), std::string("a\\u0007.safetensors"), std::string()}) {
        test::writeFile(index, "{\"weight_map\": {\"w\": \"" + shard + "\"}}");
        try {
            (void)openModel(dir);
            QFAIL(("opened with shard " + shard).c_str());
        } catch (const Error& e) {
            QVERIFY2(e.file() == index && e.problem().find("must be a plain file name") != std::string::npos, e.what());
        }
        const auto r = test::runCli({"inspect", dir});
        QCOMPARE(r.exitCode, 2);
        QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);
        QVERIFY2(r.err.find(index + ": shard name") != std::string::npos, r.err.c_str());
        if (shard.find("u0000") != std::string::npos)
            QVERIFY2(r.err.find("\\x00../../etc/passwd") != std::string::npos, r.err.c_str()); // the whole name, escaped
    }
}

QTEST_APPLESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
