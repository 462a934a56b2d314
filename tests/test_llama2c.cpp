// llama2.c checkpoints: the real stories260K file against its Hugging Face
// conversion, the version 1 ("ak42") layout, and malformed files.
#include "test_support.h"

#include "formats/llama2c.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "util/error.h"

#include <QtTest>

#include <cstring>
#include <filesystem>
#include <random>

using namespace ll;

namespace {

// stories260K: dim 64, hidden 172, 5 layers, 8 heads, 4 KV heads, vocab 512, seq 512, shared classifier.
constexpr int64_t kStoriesParams = 292800; // with the tied head, as transformers counts it
constexpr int kStoriesLogicalTensors = 1 + 5 * 9 + 1 + 1;

struct Dims {
    int32_t dim = 16, hidden = 40, layers = 2, heads = 4, kvHeads = 2, vocab = 32, seqLen = 8;
};

std::string i32(int32_t v)
{
    std::string s(4, '\0');
    std::memcpy(s.data(), &v, 4);
    return s;
}

std::string legacyHeader(const Dims& d, bool shared)
{
    return i32(d.dim) + i32(d.hidden) + i32(d.layers) + i32(d.heads) + i32(d.kvHeads) + i32(shared ? d.vocab : -d.vocab)
           + i32(d.seqLen);
}

// Float count of the legacy layout after the header, as run.c's memory_map_weights reads it.
int64_t legacyFloats(const Dims& d, bool shared)
{
    const int64_t hs = d.dim / d.heads, kv = hs * d.kvHeads, L = d.layers;
    int64_t n = int64_t{d.vocab} * d.dim + L * d.dim + L * d.dim * d.dim + 2 * L * kv * d.dim + L * d.dim * d.dim
                + L * d.dim + 3 * L * d.hidden * d.dim + d.dim + int64_t{d.seqLen} * hs;
    if (!shared)
        n += int64_t{d.vocab} * d.dim;
    return n;
}

// A legacy file whose float k holds the value k (so every tensor is distinguishable).
std::string legacyFile(const Dims& d, bool shared)
{
    std::string s = legacyHeader(d, shared);
    const int64_t n = legacyFloats(d, shared);
    for (int64_t k = 0; k < n; ++k) {
        const float v = static_cast<float>(k);
        s.append(reinterpret_cast<const char*>(&v), 4);
    }
    return s;
}

std::string writeScratch(const std::string& name, const std::string& bytes)
{
    const std::string path = test::scratchDir() + "/" + name;
    test::writeFile(path, bytes);
    return path;
}

// Opening must throw ll::Error with this code; returns its message for further checks.
std::string expectError(const std::string& path, ErrorCode code)
{
    try {
        openModel(path);
    } catch (const Error& e) {
        if (e.code() != code)
            qWarning("%s: got %s (%s), expected %s", path.c_str(), errorCodeName(e.code()), e.what(), errorCodeName(code));
        return e.code() == code ? std::string(e.what()) : std::string("WRONG CODE");
    }
    return "NO ERROR";
}

// HF row i of a head (size hd) holds llama2.c row 2i (first half) or 2(i - hd/2) + 1 (second half):
// transformers' conversion regroups the interleaved rotary pairs for rotate_half.
std::vector<float> unpermuteHfRows(const std::vector<float>& hf, int64_t rows, int64_t cols, int64_t hd)
{
    std::vector<float> out(hf.size());
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t head = r / hd, i = r % hd;
        const int64_t src = head * hd + (i < hd / 2 ? 2 * i : 2 * (i - hd / 2) + 1);
        std::copy_n(hf.begin() + r * cols, cols, out.begin() + src * cols);
    }
    return out;
}

} // namespace

class TestLlama2c : public QObject {
    Q_OBJECT
private slots:
    void opensStories260K();
    void matchesHfConversion();
    void separateClassifierAndTokenizerBeside();
    void version1LayoutMatchesLegacy();
    void malformedFiles();
    void randomHeadersNeverCrash();
    void cliRejectsMalformed();
};

void TestLlama2c::opensStories260K()
{
    LL_REQUIRE_SHARED();
    auto m = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
    QCOMPARE(m->format, std::string("llama2c"));
    QCOMPARE(m->parameterCount(), kStoriesParams);
    QCOMPARE(static_cast<int>(m->tensors.size()), kStoriesLogicalTensors);
    const ModelConfig& c = m->config;
    QCOMPARE(c.family, Family::Llama);
    QCOMPARE(c.hidden, int64_t{64});
    QCOMPARE(c.intermediate, int64_t{172});
    QCOMPARE(c.layers, int64_t{5});
    QCOMPARE(c.heads, int64_t{8});
    QCOMPARE(c.kvHeads, int64_t{4});
    QCOMPARE(c.headDim, int64_t{8});
    QCOMPARE(c.vocab, int64_t{512});
    QCOMPARE(c.maxPositions, int64_t{512});
    QVERIFY(c.ropeInterleaved);
    QVERIFY(c.tiedEmbeddings);
    QCOMPARE(c.bosId, int64_t{1});
    QCOMPARE(c.eosId, int64_t{2});

    const LogicalTensor* head = m->findLogical("lm_head.weight");
    QVERIFY(head && head->tied);
    QCOMPARE(m->storedOf(*head).name, std::string("tok_embeddings"));
    const LogicalTensor* k = m->findLogical("blocks.3.attn.k.weight");
    QVERIFY(k);
    QCOMPARE(k->shape, (std::vector<int64_t>{32, 64}));
    QCOMPARE(m->storedOf(*k).name, std::string("layers.3.wk"));
    QCOMPARE(m->storedOf(*m->findLogical("blocks.0.mlp.gate.weight")).name, std::string("layers.0.w1"));
    QCOMPARE(m->storedOf(*m->findLogical("blocks.0.mlp.down.weight")).name, std::string("layers.0.w2"));
    QCOMPARE(m->storedOf(*m->findLogical("blocks.0.mlp.up.weight")).name, std::string("layers.0.w3"));
    QCOMPARE(std::filesystem::path(m->tokenizerPath).filename().string(), std::string("tok512.bin"));
}

void TestLlama2c::matchesHfConversion()
{
    LL_REQUIRE_SHARED();
    auto ours = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
    auto hf = openModel(test::sharedPath("models/stories260K-hf"));
    QCOMPARE(ours->tensors.size(), hf->tensors.size());
    const int64_t hd = ours->config.headDim;
    int permuted = 0, exact = 0;
    for (const LogicalTensor& h : hf->tensors) {
        const LogicalTensor* o = ours->findLogical(h.logicalName);
        QVERIFY2(o, h.logicalName.c_str());
        QCOMPARE(o->shape, h.shape);
        const std::vector<float> a = readLogical(*ours, *o);
        const std::vector<float> b = readLogical(*hf, h);
        if (h.role == Role::AttnQ || h.role == Role::AttnK) {
            // The rows really are permuted, and un-permuting them restores every bit.
            QVERIFY2(test::maxAbsDiff(a, b) > 0.0, h.logicalName.c_str());
            QCOMPARE(test::maxAbsDiff(a, unpermuteHfRows(b, h.shape[0], h.shape[1], hd)), 0.0);
            ++permuted;
        } else {
            QVERIFY2(a == b, h.logicalName.c_str());
            ++exact;
        }
    }
    QCOMPARE(permuted, 10);
    QCOMPARE(exact, kStoriesLogicalTensors - 10);
}

void TestLlama2c::separateClassifierAndTokenizerBeside()
{
    const Dims d;
    const std::string dir = test::scratchDir() + "/separate";
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/model.bin";
    test::writeFile(path, legacyFile(d, false));
    test::writeFile(dir + "/tok32.bin", "");
    test::writeFile(dir + "/tokenizer_other.bin", "");
    auto m = openLlama2c(path);
    QVERIFY(!m->config.tiedEmbeddings);
    const LogicalTensor* head = m->findLogical("lm_head.weight");
    QVERIFY(head && !head->tied);
    QCOMPARE(m->storedOf(*head).name, std::string("wcls"));
    QCOMPARE(m->parameterCount(), legacyFloats(d, false) - int64_t{d.seqLen} * (d.dim / d.heads));
    // The classifier is the last block of floats; the rotary tables just before it are skipped.
    const std::vector<float> w = readLogical(*m, *head);
    QCOMPARE(w.front(), static_cast<float>(legacyFloats(d, false) - d.vocab * d.dim));
    QCOMPARE(w.back(), static_cast<float>(legacyFloats(d, false) - 1));
    // tok{vocab}.bin is preferred over other tok*.bin files.
    QCOMPARE(std::filesystem::path(m->tokenizerPath).filename().string(), std::string("tok32.bin"));
    test::writeFile(dir + "/tokenizer.bin", "");
    QCOMPARE(std::filesystem::path(openLlama2c(path)->tokenizerPath).filename().string(), std::string("tokenizer.bin"));
}

void TestLlama2c::version1LayoutMatchesLegacy()
{
    LL_REQUIRE_SHARED();
    // Rewrite stories260K in export.py's version 1 order: 256-byte header, norms, embedding, attention, MLP.
    auto legacy = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
    std::string v1 = i32(0x616b3432) + i32(1) + i32(64) + i32(172) + i32(5) + i32(8) + i32(4) + i32(512) + i32(512);
    v1 += '\1'; // shared classifier
    v1.resize(256, '\0');
    auto append = [&](const std::string& stored) {
        for (const auto& t : legacy->stored)
            if (t.name == stored)
                v1.append(reinterpret_cast<const char*>(t.data), t.nbytes);
    };
    auto appendLayers = [&](const char* field) {
        for (int l = 0; l < 5; ++l)
            append("layers." + std::to_string(l) + "." + field);
    };
    appendLayers("rms_att");
    appendLayers("rms_ffn");
    append("rms_final");
    append("tok_embeddings");
    for (const char* f : {"wq", "wk", "wv", "wo", "w1", "w2", "w3"})
        appendLayers(f);
    const std::string path = writeScratch("stories260K-v1.bin", v1);
    auto m = openModel(path);
    QCOMPARE(m->parameterCount(), kStoriesParams);
    QCOMPARE(m->metadata["llama2c.version"].get<int>(), 1);
    for (const LogicalTensor& t : legacy->tensors) {
        const LogicalTensor* o = m->findLogical(t.logicalName);
        QVERIFY2(o, t.logicalName.c_str());
        QVERIFY2(readLogical(*m, *o) == readLogical(*legacy, t), t.logicalName.c_str());
    }
    // One byte short, and the int8 version 2.
    const std::string shortMsg = expectError(writeScratch("v1-short.bin", v1.substr(0, v1.size() - 1)), ErrorCode::Truncated);
    QVERIFY2(shortMsg.find("describes " + std::to_string(v1.size()) + " bytes") != std::string::npos, shortMsg.c_str());
    std::string v2 = v1;
    std::memcpy(v2.data() + 4, i32(2).data(), 4);
    QVERIFY(expectError(writeScratch("v2.bin", v2), ErrorCode::UnsupportedDType).find("version 2") != std::string::npos);
    std::memcpy(v2.data() + 4, i32(7).data(), 4);
    QVERIFY(expectError(writeScratch("v7.bin", v2), ErrorCode::Malformed).find("version 7") != std::string::npos);
    QVERIFY(expectError(writeScratch("v1-header-only.bin", v1.substr(0, 100)), ErrorCode::Truncated) != "NO ERROR");
}

void TestLlama2c::malformedFiles()
{
    const Dims ok;
    // Sanity: the generator makes files that open.
    QCOMPARE(openModel(writeScratch("good.bin", legacyFile(ok, true)))->config.vocab, int64_t{ok.vocab});

    auto withHeader = [&](Dims d, bool shared, const std::string& name) {
        // Header as given, followed by the floats of a valid model (so only the header is wrong).
        std::string s = legacyHeader(d, shared);
        s += legacyFile(ok, true).substr(28);
        return writeScratch(name, s);
    };
    const std::string full = legacyFile(ok, true);
    const int64_t expectedBytes = 28 + 4 * legacyFloats(ok, true);

    QCOMPARE(expectError(writeScratch("empty.bin", ""), ErrorCode::Truncated).find("too short") != std::string::npos, true);
    QCOMPARE(expectError(writeScratch("header-only.bin", full.substr(0, 20)), ErrorCode::Truncated) != "NO ERROR", true);

    // Truncated: the message says expected vs actual bytes.
    const std::string truncated = expectError(writeScratch("truncated.bin", full.substr(0, full.size() - 4)), ErrorCode::Truncated);
    QVERIFY2(truncated.find(std::to_string(expectedBytes) + " bytes") != std::string::npos, truncated.c_str());
    QVERIFY2(truncated.find(std::to_string(expectedBytes - 4)) != std::string::npos, truncated.c_str());

    // Extra trailing bytes.
    const std::string extra = expectError(writeScratch("extra.bin", full + "xyz!"), ErrorCode::Malformed);
    QVERIFY2(extra.find(std::to_string(expectedBytes + 4)) != std::string::npos, extra.c_str());

    // The header claims a separate classifier that the file lacks: the message says what would fit.
    const std::string flag = expectError(withHeader(ok, false, "flag.bin"), ErrorCode::Truncated);
    QVERIFY2(flag.find("fits a shared classifier") != std::string::npos, flag.c_str());

    Dims d = ok;
    d.dim = -16;
    QVERIFY(expectError(withHeader(d, true, "neg-dim.bin"), ErrorCode::Malformed).find("positive") != std::string::npos);
    d = ok;
    d.heads = 5; // 16 % 5 != 0
    QVERIFY(expectError(withHeader(d, true, "dim-heads.bin"), ErrorCode::Malformed).find("multiple") != std::string::npos);
    d = ok;
    d.kvHeads = 0;
    QVERIFY(expectError(withHeader(d, true, "kv0.bin"), ErrorCode::Malformed) != "NO ERROR");
    d = ok;
    d.kvHeads = 3; // 4 % 3 != 0
    QVERIFY(expectError(withHeader(d, true, "kv3.bin"), ErrorCode::Malformed).find("grouped") != std::string::npos);
    d = ok;
    d.layers = 1 << 30;
    QVERIFY(expectError(withHeader(d, true, "layers.bin"), ErrorCode::Malformed).find("n_layers") != std::string::npos);
    d = ok;
    d.heads = 16; // head size 1: rotary pairs impossible
    d.kvHeads = 16;
    QVERIFY(expectError(withHeader(d, true, "odd-head.bin"), ErrorCode::Malformed).find("odd") != std::string::npos);
    d = ok;
    d.vocab = INT32_MIN; // cannot be negated into a size
    QVERIFY(expectError(withHeader(d, true, "vocab-min.bin"), ErrorCode::Malformed) != "NO ERROR");
    d = ok;
    d.seqLen = 0;
    QVERIFY(expectError(withHeader(d, true, "seq0.bin"), ErrorCode::Malformed) != "NO ERROR");
    // Every field at INT32_MAX: refused before any size is computed.
    d = Dims{INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    QVERIFY(expectError(withHeader(d, true, "max.bin"), ErrorCode::Malformed).find("implausibly large") != std::string::npos);
    // The largest accepted dimensions: products far beyond the file, computed without overflow,
    // reported as a size mismatch, nothing allocated.
    d = Dims{1 << 20, 1 << 20, 4096, 1 << 10, 1 << 10, 1 << 24, 1 << 24};
    const std::string huge = expectError(withHeader(d, true, "huge.bin"), ErrorCode::Truncated);
    QVERIFY2(huge.find("describes") != std::string::npos, huge.c_str());
}

void TestLlama2c::randomHeadersNeverCrash()
{
    // Headers drawn from edge values over a valid payload: each either opens or throws ll::Error.
    const Dims ok;
    const std::string payload = legacyFile(ok, true).substr(28);
    const std::vector<int32_t> edges{-1, 0, 1, 2, 3, 4, 8, 16, 32, 40, 64, 1 << 20, (1 << 20) + 1, INT32_MAX, INT32_MIN, -32};
    std::mt19937 rng(7);
    int opened = 0, refused = 0;
    for (int round = 0; round < 400; ++round) {
        std::string header;
        for (int i = 0; i < 7; ++i) {
            const int32_t v = rng() % 4 == 0 ? static_cast<int32_t>(rng()) : edges[rng() % edges.size()];
            header += i32(rng() % 3 == 0 ? std::vector<int32_t>{ok.dim, ok.hidden, ok.layers, ok.heads, ok.kvHeads, ok.vocab, ok.seqLen}[i] : v);
        }
        const std::string path = writeScratch("random.bin", header + payload.substr(0, rng() % 2 ? payload.size() : rng() % payload.size()));
        try {
            auto m = openModel(path);
            QVERIFY(m->parameterCount() > 0);
            ++opened;
        } catch (const Error&) {
            ++refused;
        }
    }
    QCOMPARE(opened + refused, 400);
    QVERIFY(refused > 300);
}

void TestLlama2c::cliRejectsMalformed()
{
    const Dims ok;
    const std::string good = writeScratch("cli-good.bin", legacyFile(ok, true));
    QCOMPARE(test::runCli({"inspect", good}).exitCode, 0);
    for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
             {"cli-empty.bin", ""},
             {"cli-truncated.bin", legacyFile(ok, true).substr(0, 200)},
             {"cli-extra.bin", legacyFile(ok, true) + "!!!!"},
             {"cli-negative.bin", i32(-1) + legacyFile(ok, true).substr(4)}}) {
        const auto r = test::runCli({"inspect", writeScratch(name, bytes)});
        QVERIFY2(r.exitCode == 2, (name + ": " + r.err).c_str());
        QVERIFY2(!r.err.empty(), name.c_str());
    }
}

QTEST_APPLESS_MAIN(TestLlama2c)
#include "test_llama2c.moc"
