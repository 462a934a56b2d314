// Hostile GGUF files, built byte by byte: each must be refused with a typed
// ll::Error that names the file, without crashing or allocating what the file
// merely claims.
#include "test_support.h"

#include "formats/gguf.h"
#include "model/tensor_data.h"
#include "util/error.h"

#include <QtTest>

#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <cstring>
#include <filesystem>
#include <optional>

using namespace ll;

namespace {

// GGUF value and ggml type ids used below (docs/gguf.md).
enum : uint32_t { kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
                  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12 };
enum : uint32_t { kGgmlF32 = 0, kGgmlQ8_0 = 8, kGgmlIQ2_XXS = 16 };

template <class T>
void put(std::string& s, T v)
{
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
}

template <class T>
std::string enc(T v)
{
    std::string s;
    put<T>(s, v);
    return s;
}

void putString(std::string& s, const std::string& v)
{
    put<uint64_t>(s, v.size());
    s += v;
}

// A tiny GGUF writer. Its defaults produce a valid file; each test changes one thing.
struct GgufBuilder {
    std::string magic = "GGUF";
    uint32_t version = 3;
    std::optional<uint64_t> tensorCount, kvCount; // overrides of the real counts
    uint64_t alignment = 32;                        // used for padding (write general.alignment yourself)
    std::string kvs, infos, data;
    uint64_t nKv = 0, nTensors = 0;

    // A key with its type and already encoded value.
    GgufBuilder& kv(const std::string& key, uint32_t type, const std::string& value)
    {
        putString(kvs, key);
        put<uint32_t>(kvs, type);
        kvs += value;
        ++nKv;
        return *this;
    }
    GgufBuilder& kvString(const std::string& key, const std::string& v)
    {
        std::string e;
        putString(e, v);
        return kv(key, kString, e);
    }
    GgufBuilder& kvU32(const std::string& key, uint32_t v)
    {
        std::string e;
        put<uint32_t>(e, v);
        return kv(key, kU32, e);
    }
    GgufBuilder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset)
    {
        putString(infos, name);
        put<uint32_t>(infos, static_cast<uint32_t>(ne.size()));
        for (uint64_t d : ne)
            put<uint64_t>(infos, d);
        put<uint32_t>(infos, type);
        put<uint64_t>(infos, offset);
        ++nTensors;
        return *this;
    }

    std::string build() const
    {
        std::string s = magic;
        put<uint32_t>(s, version);
        put<uint64_t>(s, tensorCount.value_or(nTensors));
        put<uint64_t>(s, kvCount.value_or(nKv));
        s += kvs;
        s += infos;
        s.append((alignment - s.size() % alignment) % alignment, '\0');
        return s + data;
    }
};

// The valid base: an F32 2x4 matrix "a" (values 0..7) and a Q8_0 row "b" of 32 values (d = 0.5, q = i - 16).
GgufBuilder validBase()
{
    GgufBuilder b;
    b.kvString("general.architecture", "demo").kvU32("demo.block_count", 1);
    b.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {32}, kGgmlQ8_0, 32);
    for (int i = 0; i < 8; ++i)
        put<float>(b.data, static_cast<float>(i));
    put<uint16_t>(b.data, 0x3800); // fp16 0.5
    for (int i = 0; i < 32; ++i)
        put<int8_t>(b.data, static_cast<int8_t>(i - 16));
    return b;
}

std::string writeGguf(const std::string& bytes, const std::string& name)
{
    const std::string path = test::scratchDir() + "/" + name + ".gguf";
    test::writeFile(path, bytes);
    return path;
}

// Opens the bytes; returns the error, or nothing when the file opened.
std::optional<Error> openError(const std::string& bytes, const std::string& name, std::string* pathOut = nullptr)
{
    const std::string path = writeGguf(bytes, name);
    if (pathOut)
        *pathOut = path;
    try {
        openGguf(path);
    } catch (const Error& e) {
        return e;
    }
    return std::nullopt;
}


} // namespace

class TestGgufMalformed : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void validBaseOpens();
    void allValueTypesAndNestedArrays();
    void undecodableKnownTypeIsListed();
    void everyTruncationIsRefused();
    void hostileFiles_data();
    void hostileFiles();
    void cliReportsOneLine();
    void hostileNamesStayPrintable();
};

// A file's claims must never turn into allocations: cap the address space so
// that an attempt shows up as bad_alloc (which no test here expects).
void TestGgufMalformed::initTestCase()
{
#if !defined(__SANITIZE_ADDRESS__)
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = rlim_t{4} << 30;
    QCOMPARE(setrlimit(RLIMIT_AS, &lim), 0);
#endif
}

void TestGgufMalformed::validBaseOpens()
{
    const std::string path = writeGguf(validBase().build(), "valid");
    auto m = openGguf(path);
    QCOMPARE(m->stored.size(), size_t{2});
    QCOMPARE(m->config.family, Family::Unknown);
    QCOMPARE(m->config.modelType, std::string("demo"));
    QCOMPARE(m->tensors.size(), size_t{2});
    QCOMPARE(m->tensors[1].logicalName, std::string("b")); // unknown architecture: stored names
    QCOMPARE(m->stored[0].shape, (std::vector<int64_t>{2, 4}));
    QCOMPARE(m->stored[1].nbytes, uint64_t{34});
    QCOMPARE(decodeStored(m->stored[0]), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
    const std::vector<float> b = decodeStored(m->stored[1]);
    for (int i = 0; i < 32; ++i)
        QCOMPARE(b[i], 0.5f * static_cast<float>(i - 16));

    GgufBuilder v2 = validBase(); // version 2 has the same layout (64-bit counts)
    v2.version = 2;
    QCOMPARE(openGguf(writeGguf(v2.build(), "v2"))->stored.size(), size_t{2});
}

void TestGgufMalformed::allValueTypesAndNestedArrays()
{
    GgufBuilder g = validBase();
    g.kv("t.u8", kU8, enc<uint8_t>(200));
    g.kv("t.i8", kI8, enc<int8_t>(-100));
    g.kv("t.u16", kU16, enc<uint16_t>(60000));
    g.kv("t.i16", kI16, enc<int16_t>(-30000));
    g.kv("t.i32", kI32, enc<int32_t>(-2000000000));
    g.kv("t.f32", kF32, enc<float>(0.25f));
    g.kv("t.bool", kBool, enc<uint8_t>(1));
    g.kv("t.u64", kU64, enc<uint64_t>(uint64_t{1} << 63));
    g.kv("t.i64", kI64, enc<int64_t>(-(int64_t{1} << 62)));
    g.kv("t.f64", kF64, enc<double>(-1.5));
    g.kvString("t.raw", std::string("\xff\xfe ok", 5)); // not UTF-8: kept as raw bytes
    // [[1, 2], [], [3]] as an array of arrays of u16.
    std::string v;
    put<uint32_t>(v, kArray), put<uint64_t>(v, 3);
    put<uint32_t>(v, kU16), put<uint64_t>(v, 2), put<uint16_t>(v, 1), put<uint16_t>(v, 2);
    put<uint32_t>(v, kU16), put<uint64_t>(v, 0);
    put<uint32_t>(v, kU16), put<uint64_t>(v, 1), put<uint16_t>(v, 3);
    g.kv("t.nested", kArray, v);
    g.kvU32("general.alignment", 64);
    g.alignment = 64;
    g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {32}, kGgmlQ8_0, 64);
    g.data.insert(32, std::string(32, '\0')); // b moves to the next multiple of 64

    auto m = openGguf(writeGguf(g.build(), "types"));
    const auto& md = m->metadata;
    QCOMPARE(md.at("t.u8").get<int>(), 200);
    QCOMPARE(md.at("t.i8").get<int>(), -100);
    QCOMPARE(md.at("t.u16").get<int>(), 60000);
    QCOMPARE(md.at("t.i16").get<int>(), -30000);
    QCOMPARE(md.at("t.i32").get<int64_t>(), int64_t{-2000000000});
    QCOMPARE(md.at("t.f32").get<double>(), 0.25);
    QCOMPARE(md.at("t.bool").get<bool>(), true);
    QCOMPARE(md.at("t.u64").get<uint64_t>(), uint64_t{1} << 63);
    QCOMPARE(md.at("t.i64").get<int64_t>(), -(int64_t{1} << 62));
    QCOMPARE(md.at("t.f64").get<double>(), -1.5);
    QCOMPARE(md.at("t.raw").get<std::string>(), std::string("\xff\xfe ok", 5));
    QCOMPARE(md.at("t.nested").size(), size_t{3});
    QCOMPARE(md.at("t.nested")[0][1].get<int>(), 2);
    QVERIFY(md.at("t.nested")[1].empty());
    QCOMPARE(md.at("t.nested")[2][0].get<int>(), 3);
    QCOMPARE(decodeStored(m->stored[1])[31], 7.5f);
}

// A known type LayerLab cannot decode still opens; only decoding refuses.
void TestGgufMalformed::undecodableKnownTypeIsListed()
{
    GgufBuilder g = validBase();
    g.tensor("c", {256}, kGgmlIQ2_XXS, 96);
    g.data.append(96 - g.data.size(), '\0');
    g.data.append(66, '\0'); // one IQ2_XXS block
    auto m = openGguf(writeGguf(g.build(), "iq2"));
    QCOMPARE(m->stored.size(), size_t{3});
    QCOMPARE(m->stored[2].dtypeLabel, std::string("IQ2_XXS"));
    QCOMPARE(m->stored[2].nbytes, uint64_t{66});
    try {
        decodeStored(m->stored[2]);
        QFAIL("decoding IQ2_XXS should be refused");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::UnsupportedDType);
    }
}

// Every proper prefix of a valid file is refused as truncated.
void TestGgufMalformed::everyTruncationIsRefused()
{
    const std::string full = validBase().build();
    for (size_t n = 0; n < full.size(); ++n) {
        std::string path;
        const auto e = openError(full.substr(0, n), "cut" + std::to_string(n), &path);
        QVERIFY2(e.has_value(), qPrintable(QString("a prefix of %1 bytes opened").arg(n)));
        QVERIFY2(e->code() == ErrorCode::Truncated, qPrintable(QString("%1 bytes: %2").arg(n).arg(e->what())));
        QVERIFY(std::string(e->what()).find(path) != std::string::npos);
    }
}

void TestGgufMalformed::hostileFiles_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("mentions"); // a word the message must contain
    auto row = [](const char* name, const GgufBuilder& g, ErrorCode code, const char* mentions) {
        const std::string s = g.build();
        QTest::newRow(name) << QByteArray(s.data(), static_cast<qsizetype>(s.size())) << static_cast<int>(code) << QString(mentions);
    };
    GgufBuilder g;

    g = validBase(), g.magic = "GGUX";
    row("bad magic", g, ErrorCode::Malformed, "not a GGUF file");
    g = validBase(), g.version = 1;
    row("version 1", g, ErrorCode::Malformed, "version 1");
    g = validBase(), g.version = 99;
    row("version 99", g, ErrorCode::Malformed, "version 99");
    g = validBase(), g.version = 0x03000000;
    row("big-endian", g, ErrorCode::Malformed, "big-endian");
    g = validBase(), g.tensorCount = uint64_t{1} << 60;
    row("tensor count 2^60", g, ErrorCode::Truncated, "1152921504606846976 tensors");
    g = validBase(), g.kvCount = ~uint64_t{0};
    row("kv count 2^64-1", g, ErrorCode::Truncated, "metadata entries");

    g = validBase(), g.kvs.replace(0, 8, enc<uint64_t>(uint64_t{1} << 40)); // first key's length
    row("key length beyond file", g, ErrorCode::Truncated, "claims 1099511627776 bytes");
    g = validBase(), g.kv("x.s", kString, enc<uint64_t>(uint64_t{1} << 50)); // the string's length only
    row("string value beyond file", g, ErrorCode::Truncated, "x.s");
    g = validBase(), g.kv("x.arr", kArray, enc<uint32_t>(kU32) + enc<uint64_t>(uint64_t{1} << 62));
    row("array length 2^62", g, ErrorCode::Truncated, "4611686018427387904 elements");
    g = validBase(), g.kv("x.strs", kArray, enc<uint32_t>(kString) + enc<uint64_t>(1000000));
    row("array of strings beyond file", g, ErrorCode::Truncated, "x.strs");
    g = validBase(), g.kv("x.t", 13, enc<uint64_t>(0));
    row("unknown value type", g, ErrorCode::Malformed, "unknown value type 13");
    g = validBase(), g.kv("x.a", kArray, enc<uint32_t>(77) + enc<uint64_t>(1) + enc<uint32_t>(0));
    row("unknown array element type", g, ErrorCode::Malformed, "unknown element type 77");
    g = validBase();
    {
        std::string v; // arrays of one array, 100 deep, around an empty u8 array
        for (int i = 0; i < 100; ++i)
            put<uint32_t>(v, kArray), put<uint64_t>(v, 1);
        put<uint32_t>(v, kU8), put<uint64_t>(v, 0);
        g.kv("x.deep", kArray, v);
    }
    row("arrays nested 100 deep", g, ErrorCode::Malformed, "nests arrays");
    g = validBase(), g.kv("x.b", kBool, std::string(1, '\x02'));
    row("bool byte 2", g, ErrorCode::Malformed, "boolean");
    g = validBase(), g.kvU32("demo.block_count", 2);
    row("duplicate key", g, ErrorCode::Malformed, "appears twice");
    g = validBase(), g.kvU32("general.alignment", 24);
    row("alignment 24", g, ErrorCode::Malformed, "power of two");
    g = validBase(), g.kvU32("general.alignment", 0);
    row("alignment 0", g, ErrorCode::Malformed, "power of two");

    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {1, 1, 1, 1, 1, 1, 1, 1, 32}, kGgmlQ8_0, 32);
    row("9 dimensions", g, ErrorCode::Malformed, "9 dimensions");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {uint64_t{1} << 32, uint64_t{1} << 32}, kGgmlF32, 32);
    row("dims product overflow", g, ErrorCode::Overflow, "overflows");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {0, uint64_t{1} << 63}, kGgmlF32, 32);
    row("dimension beyond int64", g, ErrorCode::Overflow, "overflows");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {uint64_t{1} << 61, 2}, kGgmlF32, 32);
    row("byte size overflow", g, ErrorCode::Overflow, "overflows");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {32}, kGgmlQ8_0, uint64_t{1} << 20);
    row("data offset beyond file", g, ErrorCode::Truncated, "past the end");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {32}, kGgmlQ8_0, ~uint64_t{0} - 31);
    row("data offset wraps around", g, ErrorCode::Truncated, "past the end");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {32}, kGgmlQ8_0, 40);
    row("unaligned offset", g, ErrorCode::Malformed, "not a multiple of the alignment");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 4}, kGgmlF32, 0).tensor("b", {32}, kGgmlQ8_0, 32);
    row("overlapping tensors", g, ErrorCode::Malformed, "overlap");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {32}, 1000, 32);
    row("unknown ggml type", g, ErrorCode::UnsupportedDType, "tensor 'b' has unknown ggml type 1000");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {32}, 4, 32);
    row("removed ggml type Q4_2", g, ErrorCode::UnsupportedDType, "unknown ggml type 4");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("b", {33}, kGgmlQ8_0, 32);
    row("row not a multiple of the block", g, ErrorCode::Malformed, "not a multiple of the 32-value blocks");
    g = validBase(), g.infos.clear(), g.nTensors = 0;
    g.tensor("a", {4, 2}, kGgmlF32, 0).tensor("a", {32}, kGgmlQ8_0, 32);
    row("duplicate tensor names", g, ErrorCode::Malformed, "two tensors are named 'a'");
    g = validBase(), g.kvString("general.architecture", "llama");
    row("duplicate architecture", g, ErrorCode::Malformed, "appears twice");
    g = GgufBuilder(), g.kvString("general.architecture", "llama").kvU32("llama.block_count", 1);
    row("llama without dimensions", g, ErrorCode::Malformed, "llama.embedding_length");
}

void TestGgufMalformed::hostileFiles()
{
    QFETCH(QByteArray, bytes);
    QFETCH(int, code);
    QFETCH(QString, mentions);
    std::string path;
    const auto e = openError(bytes.toStdString(), QTest::currentDataTag(), &path);
    QVERIFY2(e.has_value(), "the file opened");
    const std::string what = e->what();
    QVERIFY2(static_cast<int>(e->code()) == code, what.c_str());
    QVERIFY2(what.find(path) != std::string::npos, what.c_str());
    QVERIFY2(what.find(mentions.toStdString()) != std::string::npos, what.c_str());
}

void TestGgufMalformed::cliReportsOneLine()
{
    GgufBuilder g = validBase();
    g.tensorCount = uint64_t{1} << 60;
    const std::string path = writeGguf(g.build(), "cli");
    const test::CliResult r = test::runCli({"inspect", path});
    QCOMPARE(r.exitCode, 2);
    QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), std::ptrdiff_t{1});
    QVERIFY(r.err.find(path) != std::string::npos);
    QVERIFY(r.out.empty());
}

// Issue 16, finding 6: a tensor name that is not UTF-8 made `inspect --json`
// throw nlohmann's type_error 316; control characters broke the one-line
// error. JSON output now carries U+FFFD, messages escape such bytes.
void TestGgufMalformed::hostileNamesStayPrintable()
{
    GgufBuilder g;
    g.kvString("general.architecture", "demo").kvU32("demo.block_count", 1);
    g.tensor(std::string("bad\xff\xfename"), {4, 2}, kGgmlF32, 0);
    for (int i = 0; i < 8; ++i)
        put<float>(g.data, static_cast<float>(i));
    const std::string path = writeGguf(g.build(), "notutf8");
    const test::CliResult r = test::runCli({"inspect", path, "--json"});
    QVERIFY2(r.exitCode == 0, r.err.c_str());
    const nlohmann::json j = nlohmann::json::parse(r.out); // valid UTF-8 JSON
    QVERIFY2(r.out.find("bad\xEF\xBF\xBD") != std::string::npos, r.out.c_str()); // U+FFFD

    GgufBuilder h = validBase();
    h.tensorCount = uint64_t{1} << 60;
    const std::string dir = test::scratchDir() + "/line\nbreak\x01";
    std::filesystem::create_directories(dir);
    const std::string hostile = dir + "/x.gguf";
    test::writeFile(hostile, h.build());
    const test::CliResult e = test::runCli({"inspect", hostile});
    QCOMPARE(e.exitCode, 2);
    QCOMPARE(std::count(e.err.begin(), e.err.end(), '\n'), std::ptrdiff_t{1});
    QVERIFY2(e.err.find("line\\nbreak\\x01/x.gguf") != std::string::npos, e.err.c_str());
}

QTEST_APPLESS_MAIN(TestGgufMalformed)
#include "test_gguf_malformed.moc"
