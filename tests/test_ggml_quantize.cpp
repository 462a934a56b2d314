// ggml block quantizers against llama.cpp itself: tiny-llama256 was quantized
// by `llama-quantize --pure` (no imatrix) to every type; our quantizers, fed
// the original F32 values, must write the same blocks, and decode (through
// ll::dequantizeGgml) to what gguf-py decoded from llama.cpp's file.
#include "test_support.h"

#include "formats/open_model.h"
#include "model/model.h"
#include "model/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/quant_method.h"
#include "util/error.h"
#include "util/half.h"

#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>

using namespace ll;

namespace {

// K-quants: if a block differs from llama.cpp's, our RMSE against the original
// values may exceed llama.cpp's by at most this fraction.
constexpr double kKQuantRmseSlack = 0.002;
// Fast (threaded, vectorised) vs scalar reference: bytes that may differ.
constexpr size_t kFastVsRefByteDiffs = 0;

const char* kTensors[] = {"blk.0.ffn_down.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight"};

struct Case {
    const char* file; // tiny-llama256-<file>
    DType type;
    bool exact;       // llama.cpp's algorithm is fully deterministic: demand identical bytes
};

const Case kCases[] = {
    {"Q8_0", DType::Q8_0, true},   {"Q4_0", DType::Q4_0, true},   {"Q4_1", DType::Q4_1, true},
    {"Q5_0", DType::Q5_0, true},   {"Q5_1", DType::Q5_1, true},   {"Q2_K", DType::Q2_K, false},
    {"Q3_K_S", DType::Q3_K, false}, {"Q4_K_S", DType::Q4_K, false}, {"Q5_K_S", DType::Q5_K, false},
    {"Q6_K", DType::Q6_K, false},  {"IQ4_NL", DType::IQ4_NL, true},
};

std::string quantsPath(const std::string& name) { return test::sharedPath("models/gguf-quants/tiny-llama256-" + name); }

double rmse(const std::vector<float>& a, const std::vector<float>& b)
{
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i)
        s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    return std::sqrt(s / static_cast<double>(a.size()));
}

std::vector<float> decode(DType t, const std::vector<uint8_t>& bytes, size_t n)
{
    std::vector<float> out(n);
    dequantizeGgml(t, bytes.data(), out.data(), static_cast<int64_t>(n));
    return out;
}

const TensorRef& storedTensor(const Model& m, const std::string& name)
{
    for (const auto& t : m.stored)
        if (t.name == name)
            return t;
    throw Error(ErrorCode::NotFound, m.path, "no tensor " + name);
}

// Heavy-tailed test values (Student-t like), deterministic.
std::vector<float> heavyTailed(size_t n, unsigned seed)
{
    std::mt19937 rng(seed);
    std::student_t_distribution<float> t(3.0f);
    std::vector<float> v(n);
    for (auto& x : v)
        x = 0.02f * t(rng);
    return v;
}

double weightedSquaredError(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& imp,
                            int64_t cols)
{
    double s = 0.0;
    for (size_t i = 0; i < x.size(); ++i)
        s += imp[i % static_cast<size_t>(cols)] * (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    return s;
}

} // namespace

class TestGgmlQuantize : public QObject {
    Q_OBJECT

private slots:
    void bitsPerWeight();
    void handComputedQ4_0AndQ8_0();
    void matchesLlamaCpp_data();
    void matchesLlamaCpp();
    void fastMatchesRef();
    void importanceLowersWeightedError();
    void typedErrors();
    void fallbackForPartialBlocks();
};

void TestGgmlQuantize::bitsPerWeight()
{
    QCOMPARE(ggmlBitsPerWeight(DType::Q8_0), 8.5);
    QCOMPARE(ggmlBitsPerWeight(DType::Q4_0), 4.5);
    QCOMPARE(ggmlBitsPerWeight(DType::Q4_1), 5.0);
    QCOMPARE(ggmlBitsPerWeight(DType::Q5_0), 5.5);
    QCOMPARE(ggmlBitsPerWeight(DType::Q5_1), 6.0);
    QCOMPARE(ggmlBitsPerWeight(DType::Q2_K), 2.625);
    QCOMPARE(ggmlBitsPerWeight(DType::Q3_K), 3.4375);
    QCOMPARE(ggmlBitsPerWeight(DType::Q4_K), 4.5);
    QCOMPARE(ggmlBitsPerWeight(DType::Q5_K), 5.5);
    QCOMPARE(ggmlBitsPerWeight(DType::Q6_K), 6.5625);
    QVERIFY(!canQuantizeGgml(DType::IQ4_XS));
}

// One block by hand: x = -8 at j = 0 (the largest magnitude, so d = -8 / -8 = 1),
// then values whose codes x + 8.5 truncated are easy to read off.
void TestGgmlQuantize::handComputedQ4_0AndQ8_0()
{
    std::vector<float> x(32, 0.0f);
    x[0] = -8.0f;
    x[1] = 1.0f;  // 9.5 -> 9
    x[2] = 7.0f;  // 15.5 -> 15
    x[3] = 0.5f;  // 9.0 -> 9: halves round up
    x[4] = -0.5f; // 8.0 -> 8
    x[5] = 7.9f;  // 16.4 -> capped at 15
    x[16] = -3.2f; // 5.3 -> 5, stored in the high nibble of qs[0]
    const auto q4 = quantizeGgml(DType::Q4_0, x.data(), 32);
    QCOMPARE(q4.size(), size_t(18));
    uint16_t d;
    std::memcpy(&d, q4.data(), 2);
    QCOMPARE(d, uint16_t(0x3C00)); // FP16 1.0
    const uint8_t* qs = q4.data() + 2;
    QCOMPARE(int(qs[0] & 0xF), 0);
    QCOMPARE(int(qs[0] >> 4), 5);
    QCOMPARE(int(qs[1] & 0xF), 9);
    QCOMPARE(int(qs[2] & 0xF), 15);
    QCOMPARE(int(qs[3] & 0xF), 9);
    QCOMPARE(int(qs[4] & 0xF), 8);
    QCOMPARE(int(qs[5] & 0xF), 15);
    QCOMPARE(int(qs[6] & 0xF), 8); // zeros sit on code 8
    const auto y = decode(DType::Q4_0, q4, 32);
    QCOMPARE(y[0], -8.0f);
    QCOMPARE(y[3], 1.0f);
    QCOMPARE(y[5], 7.0f);
    QCOMPARE(y[16], -3.0f);

    // Q8_0: amax 127 gives d = 1 and codes = round half away from zero.
    std::vector<float> z(32, 0.0f);
    z[0] = 127.0f;
    z[1] = -2.5f; // -> -3
    z[2] = 2.5f;  // -> 3
    z[3] = 0.49f; // -> 0
    const auto q8 = quantizeGgml(DType::Q8_0, z.data(), 32);
    std::memcpy(&d, q8.data(), 2);
    QCOMPARE(d, uint16_t(0x3C00));
    const auto* qs8 = reinterpret_cast<const int8_t*>(q8.data() + 2);
    QCOMPARE(int(qs8[0]), 127);
    QCOMPARE(int(qs8[1]), -3);
    QCOMPARE(int(qs8[2]), 3);
    QCOMPARE(int(qs8[3]), 0);
}

void TestGgmlQuantize::matchesLlamaCpp_data()
{
    QTest::addColumn<int>("index");
    for (int i = 0; i < int(std::size(kCases)); ++i)
        QTest::newRow(kCases[i].file) << i;
}

void TestGgmlQuantize::matchesLlamaCpp()
{
    LL_REQUIRE_SHARED();
    QFETCH(int, index);
    const Case& c = kCases[index];
    const std::string values = quantsPath("f32.values.safetensors");
    const std::string dequant = quantsPath(std::string(c.file) + ".dequant.safetensors");
    const auto model = openModel(quantsPath(std::string(c.file) + ".gguf"));
    const size_t blockBytes = dtypeLayout(c.type).blockBytes;

    for (const char* name : kTensors) {
        std::vector<int64_t> shape;
        const std::vector<float> x = test::referenceFloats(values, name, &shape);
        QCOMPARE(shape.size(), size_t(2));
        const std::vector<uint8_t> ours = quantizeGgml(c.type, x.data(), static_cast<int64_t>(x.size()));

        // Bytes against llama.cpp's file.
        const TensorRef& ref = storedTensor(*model, name);
        QCOMPARE(ref.dtype, c.type);
        QCOMPARE(size_t(ref.nbytes), ours.size());
        size_t same = 0;
        const size_t blocks = ours.size() / blockBytes;
        for (size_t b = 0; b < blocks; ++b)
            same += std::memcmp(ours.data() + b * blockBytes, ref.data + b * blockBytes, blockBytes) == 0;
        const std::vector<uint8_t> theirs(ref.data, ref.data + ref.nbytes);

        // Values against gguf-py's decoding of llama.cpp's file.
        const std::vector<float> expected = test::referenceFloats(dequant, name);
        const std::vector<float> ourValues = decode(c.type, ours, x.size());
        const double ourRmse = rmse(ourValues, x), theirRmse = rmse(expected, x);
        qInfo("%-6s %-22s identical blocks %zu/%zu (%.2f %%), RMSE ours %.6g llama.cpp %.6g, "
              "max |ours - gguf-py| %.3g, max |decode(theirs) - gguf-py| %.3g",
              c.file, name, same, blocks, 100.0 * same / blocks, ourRmse, theirRmse,
              test::maxAbsDiff(ourValues, expected), test::maxAbsDiff(decode(c.type, theirs, x.size()), expected));
        if (c.exact) {
            QCOMPARE(same, blocks);
            QCOMPARE(test::maxAbsDiff(ourValues, expected), 0.0);
        } else {
            QVERIFY2(ourRmse <= theirRmse * (1.0 + kKQuantRmseSlack),
                     qPrintable(QString("RMSE %1 vs llama.cpp %2").arg(ourRmse).arg(theirRmse)));
            // We reproduce llama.cpp's reference k-quant search exactly.
            QCOMPARE(same, blocks);
        }
    }
}

void TestGgmlQuantize::fastMatchesRef()
{
    // 40 super-blocks: several threads' chunks of legacy blocks, odd counts.
    const std::vector<float> x = heavyTailed(256 * 40 + 0, 7);
    for (const Case& c : kCases) {
        const auto fast = quantizeGgml(c.type, x.data(), static_cast<int64_t>(x.size()));
        const auto ref = quantizeGgmlRef(c.type, x.data(), static_cast<int64_t>(x.size()));
        QCOMPARE(fast.size(), ref.size());
        size_t diffs = 0;
        for (size_t i = 0; i < fast.size(); ++i)
            diffs += fast[i] != ref[i];
        QVERIFY2(diffs <= kFastVsRefByteDiffs, c.file);
    }
    // Ties of the rounding in Q8_0's fast path: v = k + 0.5 and just below.
    std::vector<float> t(32);
    t[0] = 127.0f;
    for (int j = 1; j < 32; ++j)
        t[j] = (j % 2 ? 1.0f : -1.0f) * (static_cast<float>(j) + (j % 3 == 0 ? 0.5f : std::nextafter(0.5f, 0.0f)));
    QVERIFY(quantizeGgml(DType::Q8_0, t.data(), 32) == quantizeGgmlRef(DType::Q8_0, t.data(), 32));
}

// An imatrix that weighs a few columns 100x: the weighted error must drop.
void TestGgmlQuantize::importanceLowersWeightedError()
{
    const int64_t rows = 16, cols = 512;
    const std::vector<float> x = heavyTailed(static_cast<size_t>(rows * cols), 11);
    std::vector<float> imp(static_cast<size_t>(cols), 1.0f);
    for (int64_t c = 0; c < cols; c += 13)
        imp[static_cast<size_t>(c)] = 100.0f;
    for (const Case& c : kCases) {
        if (c.type == DType::Q8_0)
            continue; // llama.cpp ignores importance for Q8_0
        const auto plain = quantizeGgmlRows(c.type, x.data(), rows, cols);
        const auto weighted = quantizeGgmlRows(c.type, x.data(), rows, cols, imp.data());
        QCOMPARE(weighted.size(), plain.size());
        const double ePlain = weightedSquaredError(x, decode(c.type, plain, x.size()), imp, cols);
        const double eWeighted = weightedSquaredError(x, decode(c.type, weighted, x.size()), imp, cols);
        qInfo("%-6s importance-weighted squared error: plain %.4g, with importance %.4g", c.file, ePlain, eWeighted);
        QVERIFY2(eWeighted < ePlain, c.file);
        // One row through quantizeGgml with a row-long importance equals quantizeGgmlRows' first row.
        const auto row0 = quantizeGgml(c.type, x.data(), cols, imp.data());
        QVERIFY(std::equal(row0.begin(), row0.end(), weighted.begin()));
    }
}

void TestGgmlQuantize::typedErrors()
{
    std::vector<float> x(256, 0.5f);
    x[77] = std::nanf("");
    try {
        quantizeGgml(DType::Q4_K, x.data(), 256);
        QFAIL("NaN accepted");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
    }
    x[77] = 0.5f;
    try {
        quantizeGgml(DType::Q4_K, x.data(), 100); // not a whole super-block
        QFAIL("partial block accepted");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
    }
    try {
        quantizeGgml(DType::IQ4_XS, x.data(), 256);
        QFAIL("unsupported type accepted");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::UnsupportedDType);
    }
    std::vector<float> imp(256, 1.0f);
    imp[3] = -1.0f;
    try {
        quantizeGgml(DType::Q4_K, x.data(), 256, imp.data());
        QFAIL("negative importance accepted");
    } catch (const Error& e) {
        QCOMPARE(e.code(), ErrorCode::InvalidArgument);
    }
    // All-zero input is valid and decodes to zeros.
    std::vector<float> zeros(256, 0.0f);
    for (const Case& c : kCases) {
        const auto y = decode(c.type, quantizeGgml(c.type, zeros.data(), 256), 256);
        QCOMPARE(test::maxAbsDiff(y, zeros), 0.0);
    }
}

// Rows that are not a whole number of 256-value super-blocks take
// llama-quantize's fallback (llama_tensor_get_type): the layer result names it.
void TestGgmlQuantize::fallbackForPartialBlocks()
{
    QCOMPARE(ggmlFallbackType(DType::Q4_K, 512), DType::Q4_K);
    QCOMPARE(ggmlFallbackType(DType::Q2_K, 64), DType::IQ4_NL);
    QCOMPARE(ggmlFallbackType(DType::Q3_K, 64), DType::IQ4_NL);
    QCOMPARE(ggmlFallbackType(DType::Q4_K, 64), DType::Q5_0);
    QCOMPARE(ggmlFallbackType(DType::Q5_K, 64), DType::Q5_1);
    QCOMPARE(ggmlFallbackType(DType::Q6_K, 64), DType::Q8_0);
    QCOMPARE(ggmlFallbackType(DType::Q4_K, 172), DType::F16); // not a whole number of 32-value blocks either
    QCOMPARE(ggmlFallbackType(DType::Q4_0, 172), DType::Q4_0); // no fallback: quantizing throws, as in llama.cpp

    const int64_t rows = 8;
    for (const int64_t cols : {int64_t(64), int64_t(172)}) {
        const std::vector<float> v = heavyTailed(static_cast<size_t>(rows * cols), 5);
        const MatrixRM W = Eigen::Map<const MatrixRM>(v.data(), rows, cols);
        for (const DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
            QuantConfig c;
            c.method = QuantMethod::Ggml;
            c.ggmlType = t;
            const QuantizedLayer l = quantizeLayer(W, c);
            const DType used = ggmlFallbackType(t, cols);
            const std::string expected = "ggml " + std::string(dtypeName(used)) + " (fallback for " + std::string(dtypeName(t))
                                         + ": rows of " + std::to_string(cols) + ")";
            QCOMPARE(l.method, expected);
            if (used == DType::F16) {
                QCOMPARE(l.bitsPerWeight, 16.0);
                for (Eigen::Index i = 0; i < W.size(); ++i)
                    QCOMPARE(l.weights.data()[i], fp16ToFloat(floatToFp16(W.data()[i])));
            } else {
                // The fallback type's own quantizer, row by row.
                QCOMPARE(l.bitsPerWeight, ggmlBitsPerWeight(used));
                const auto bytes = quantizeGgmlRows(used, W.data(), rows, cols);
                QCOMPARE(test::maxAbsDiff(std::vector<float>(l.weights.data(), l.weights.data() + W.size()),
                                          decode(used, bytes, static_cast<size_t>(W.size()))),
                         0.0);
            }
        }
        // No fallback for the 32-value types: the error names the block size.
        QuantConfig c;
        c.method = QuantMethod::Ggml;
        c.ggmlType = DType::Q4_0;
        if (cols % 32 != 0) {
            try {
                quantizeLayer(W, c);
                QFAIL("partial Q4_0 block accepted");
            } catch (const Error& e) {
                QCOMPARE(e.code(), ErrorCode::InvalidArgument);
            }
        }
    }
}

QTEST_APPLESS_MAIN(TestGgmlQuantize)
#include "test_ggml_quantize.moc"
