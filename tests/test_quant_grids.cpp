// Integer grids and RTN (GPTQ's quant.py Quantizer, hand-computed), NF4 with
// double quantization, FP8 E4M3 / E5M2, FP4 E2M1, and the layer error report.

#include "test_support.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "quant/fp4.h"
#include "quant/fp8.h"
#include "quant/grid.h"
#include "layer/layer_error.h"
#include "quant/minifloat.h"
#include "quant/nf4.h"
#include "quant/rtn.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <limits>
#include <random>

using namespace ll;

namespace {

// RTN's vectorised loop against the scalar reference: the same float operations.
constexpr float kRtnFastVsRefMaxDiff = 0.0f;
// nf4Nearest may pick the other neighbour only where both are this close to equidistant.
constexpr float kNf4TieTolerance = 1e-6f;
// Gram-matrix output error vs the explicit ||X D^T|| / ||X W^T|| (float GEMM inside).
constexpr double kGramVsExplicitRelTol = 1e-4;
// Double quantization of NF4's absmax constants may raise the RMSE by at most this fraction.
constexpr double kNf4DoubleQuantRmseSlack = 0.02;
// RTN perplexity of stories260K vs shared/reference/stories260K_compression.json:
// asymmetric grids reproduce it to float noise; symmetric ones within the
// protocol's 0.5 % (see rtnPerplexityMatchesReference).
constexpr double kPplAsymRelTol = 1e-5;
constexpr double kPplSymRelTol = 0.005;

MatrixRM randomMatrix(Eigen::Index rows, Eigen::Index cols, unsigned seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, 1.0f);
    MatrixRM W(rows, cols);
    for (Eigen::Index i = 0; i < W.size(); ++i)
        W.data()[i] = n(rng);
    return W;
}

MatrixRM rows2x4(std::initializer_list<float> r0, std::initializer_list<float> r1)
{
    MatrixRM W(2, 4);
    int c = 0;
    for (float v : r0)
        W(0, c++) = v;
    c = 0;
    for (float v : r1)
        W(1, c++) = v;
    return W;
}

void compareRow(const RtnResult& res, int row, std::initializer_list<int> codes, std::initializer_list<float> values)
{
    int c = 0;
    for (int q : codes) {
        QCOMPARE(int(res.codes[size_t(row * res.dequantized.cols() + c)]), q);
        ++c;
    }
    c = 0;
    for (float v : values)
        QCOMPARE(res.dequantized(row, c++), v);
}

double relError(const MatrixRM& W, const MatrixRM& What) { return (W - What).norm() / W.norm(); }

template <class F>
void expectInvalid(F f)
{
    try {
        f();
        QFAIL("no error");
    } catch (const Error& e) {
        QCOMPARE(errorCodeName(e.code()), errorCodeName(ErrorCode::InvalidArgument));
    }
}

} // namespace

class TestQuantGrids : public QObject {
    Q_OBJECT

private slots:
    void rtnAsym2And3Bit();
    void rtnSym2BitMirrorsOnlyNegativeMinimum();
    void rtn4And8Bit();
    void rtnGroupsAndTensor();
    void zeroRange();
    void nanIsTypedError();
    void errorFallsWithBits();
    void fastMatchesRefAndPacking();
    void bitsPerWeight();
    void nf4Levels();
    void nf4DoubleQuant();
    void fp8Formats();
    void fp8ExhaustiveRoundTrip();
    void fp8Scaled();
    void fp4Grid();
    void fp4Scaled();
    void layerErrorHand();
    void layerErrorGramMatchesExplicit();
    void rtnPerplexityMatchesReference_data();
    void rtnPerplexityMatchesReference();
};

// Row 0: min -1, max 2. Row 1: all positive, so the grid's min is 0.
void TestQuantGrids::rtnAsym2And3Bit()
{
    const MatrixRM W = rows2x4({-1.0f, 0.4f, 1.6f, 2.0f}, {0.5f, 1.0f, 2.5f, 3.0f});
    // 2 bit: maxq 3. Row 0: scale (2 + 1) / 3 = 1, zero round(1 / 1) = 1.
    // Row 1: scale 3 / 3 = 1, zero 0; 0.5 and 2.5 round half to even (0 and 2).
    const RtnResult r2 = rtnQuantize(W, {2, false, 0});
    QCOMPARE(r2.params.scales(0, 0), 1.0f);
    QCOMPARE(r2.params.zeros(0, 0), 1.0f);
    QCOMPARE(r2.params.zeros(1, 0), 0.0f);
    compareRow(r2, 0, {0, 1, 3, 3}, {-1.0f, 0.0f, 2.0f, 2.0f});
    compareRow(r2, 1, {0, 1, 2, 3}, {0.0f, 1.0f, 2.0f, 3.0f});

    // 3 bit: maxq 7. Row 0: scale 3/7, zero round(7/3 = 2.33) = 2;
    // x/scale = -2.33, 0.93, 3.73, 4.67 -> -2, 1, 4, 5 -> codes 0, 3, 6, 7.
    const RtnResult r3 = rtnQuantize(W, {3, false, 0});
    const float s = 3.0f / 7.0f;
    QCOMPARE(r3.params.scales(0, 0), s);
    QCOMPARE(r3.params.zeros(0, 0), 2.0f);
    compareRow(r3, 0, {0, 3, 6, 7}, {s * -2.0f, s * 1.0f, s * 4.0f, s * 5.0f});
}

// GPTQ's sym: xmax = max(|xmin|, xmax) and xmin = -xmax only when xmin < 0,
// zero = 2^(b-1). An all-positive row keeps xmin = 0, so its top half is clipped.
void TestQuantGrids::rtnSym2BitMirrorsOnlyNegativeMinimum()
{
    const MatrixRM W = rows2x4({-1.0f, 0.4f, 1.6f, 2.0f}, {0.5f, 1.0f, 2.5f, 3.0f});
    const RtnResult r = rtnQuantize(W, {2, true, 0});
    // Row 0: range [-2, 2], scale 4/3, zero 2; x/scale = -0.75, 0.3, 1.2, 1.5 -> codes 1, 2, 3, 3 (clamped).
    const float s = 4.0f / 3.0f;
    QCOMPARE(r.params.scales(0, 0), s);
    QCOMPARE(r.params.zeros(0, 0), 2.0f);
    compareRow(r, 0, {1, 2, 3, 3}, {-s, 0.0f, s, s});
    // Row 1: range [0, 3], scale 1, zero 2: only codes 2, 3 are >= 0, so 2.5 and 3 clip to 1.
    QCOMPARE(r.params.scales(1, 0), 1.0f);
    compareRow(r, 1, {2, 3, 3, 3}, {0.0f, 1.0f, 1.0f, 1.0f});
}

void TestQuantGrids::rtn4And8Bit()
{
    // 4 bit asym, row 0 range [-1, 14]: scale 1, zero 1; 7.5 rounds to 8 (even).
    // 4 bit sym, row 1 range [-7.5, 7.5]: scale 1, zero 8; -7.5 rounds to -8 (even), the grid's bottom.
    const MatrixRM W4 = rows2x4({-1.0f, 3.4f, 7.5f, 14.0f}, {-7.5f, 0.2f, 3.6f, 1.0f});
    const RtnResult a4 = rtnQuantize(W4, {4, false, 0});
    compareRow(a4, 0, {0, 4, 9, 15}, {-1.0f, 3.0f, 8.0f, 14.0f});
    const RtnResult s4 = rtnQuantize(W4, {4, true, 0});
    QCOMPARE(s4.params.zeros(1, 0), 8.0f);
    compareRow(s4, 1, {0, 8, 12, 9}, {-8.0f, 0.0f, 4.0f, 1.0f});

    // 8 bit asym, row 0 range [-5, 250]: scale 1, zero 5. 8 bit sym, row 1 range
    // [-127.5, 127.5]: scale 1, zero 128; -127.5 -> -128 (even), 50.5 -> 50 (even).
    const MatrixRM W8 = rows2x4({-5.0f, 0.5f, 100.49f, 250.0f}, {-127.5f, 0.0f, 50.5f, 10.0f});
    const RtnResult a8 = rtnQuantize(W8, {8, false, 0});
    compareRow(a8, 0, {0, 5, 105, 255}, {-5.0f, 0.0f, 100.0f, 250.0f});
    const RtnResult s8 = rtnQuantize(W8, {8, true, 0});
    QCOMPARE(s8.params.zeros(1, 0), 128.0f);
    compareRow(s8, 1, {0, 128, 178, 138}, {-128.0f, 0.0f, 50.0f, 10.0f});
}

void TestQuantGrids::rtnGroupsAndTensor()
{
    // Groups of 2 columns, 2 bit asym. Group [-1, 1]: scale 2/3, zero round(1.5) = 2,
    // codes 0 and 3. Group [0.25, 0.75]: range [0, 0.75], scale 0.25, zero 0: exact.
    const MatrixRM W = rows2x4({-1.0f, 1.0f, 0.25f, 0.75f}, {0.0f, 0.0f, -4.0f, 2.0f});
    const RtnResult g = rtnQuantize(W, {2, false, 2});
    QCOMPARE(g.params.groupsPerRow(), Eigen::Index(2));
    const float s = 2.0f / 3.0f;
    QCOMPARE(g.params.scales(0, 0), s);
    QCOMPARE(g.params.zeros(0, 0), 2.0f);
    QCOMPARE(g.params.scales(0, 1), 0.25f);
    compareRow(g, 0, {0, 3, 1, 3}, {-2.0f * s, s, 0.25f, 0.75f});
    // Per row the same row loses 0.25: scale 2/3, zero 2, 0.25 / (2/3) = 0.375 -> 0.
    const RtnResult row = rtnQuantize(W, {2, false, 0});
    QCOMPARE(row.dequantized(0, 2), 0.0f);

    // Per tensor: one range [-4, 2] for everything: scale 2, zero 2.
    const RtnResult t = rtnQuantize(W, {2, false, -1});
    QCOMPARE(t.params.scales.size(), Eigen::Index(1));
    QCOMPARE(t.params.scales(0, 0), 2.0f);
    QCOMPARE(t.params.zeros(0, 0), 2.0f);
    compareRow(t, 1, {2, 2, 0, 3}, {0.0f, 0.0f, -4.0f, 2.0f});

    // GPTQ finds a group's parameters when it reaches it, on a column block of
    // the matrix: per-row parameters of that block equal the grouped ones.
    const MatrixRM R = randomMatrix(5, 96, 12);
    const GridParams grouped = computeGridParams(R, {4, false, 32});
    const GridParams block = computeGridParams(R.middleCols(32, 32), {4, false, 0});
    QVERIFY(block.scales.col(0) == grouped.scales.col(1));
    QVERIFY(block.zeros.col(0) == grouped.zeros.col(1));
    for (Eigen::Index r = 0; r < R.rows(); ++r) {
        const ScaleZero sz = findScaleZero(R.data() + r * 96 + 32, 32, 4, false);
        QCOMPARE(sz.scale, grouped.scales(r, 1));
        QCOMPARE(sz.zero, grouped.zeros(r, 1));
    }

    // A last group shorter than the others (5 columns, groups of 2).
    MatrixRM W5(1, 5);
    W5 << 1.0f, 2.0f, 3.0f, 4.0f, -8.0f;
    const RtnResult g5 = rtnQuantize(W5, {3, false, 2});
    QCOMPARE(g5.params.groupsPerRow(), Eigen::Index(3));
    QCOMPARE(g5.dequantized(0, 4), -8.0f); // alone in its group: range [-8, 0], exact
}

// An all-zero row: GPTQ sets the range to [-1, 1] (scale 2/maxq), and zero
// still decodes to exactly 0. A constant row keeps 0 in its grid.
void TestQuantGrids::zeroRange()
{
    MatrixRM W = MatrixRM::Zero(2, 4);
    W.row(1).setConstant(2.0f);
    for (bool sym : {false, true}) {
        const RtnResult r = rtnQuantize(W, {4, sym, 0});
        QCOMPARE(r.params.scales(0, 0), 2.0f / 15.0f);
        // sym: 2^3; asym: round(1 / fl(2/15)) = round(7.4999995) = 7 in float32, as torch computes it
        QCOMPARE(r.params.zeros(0, 0), sym ? 8.0f : 7.0f);
        for (int c = 0; c < 4; ++c) {
            QCOMPARE(r.dequantized(0, c), 0.0f);
            QVERIFY(std::isfinite(r.dequantized(1, c)));
        }
    }
    // Asym constant row [0, 2]: scale 2/15, zero 0, code 15 -> 2 (to float rounding).
    const RtnResult r = rtnQuantize(W, {4, false, 0});
    QCOMPARE(int(r.codes[4]), 15);
    QVERIFY(std::fabs(r.dequantized(1, 0) - 2.0f) < 1e-6f);
}

void TestQuantGrids::nanIsTypedError()
{
    MatrixRM W = randomMatrix(3, 8, 1);
    W(2, 5) = std::numeric_limits<float>::quiet_NaN();
    expectInvalid([&] { rtnQuantize(W, {4, false, 0}); });
    expectInvalid([&] { rtnQuantizeRef(W, {4, false, 0}); });
    expectInvalid([&] { fp8Quantize(W, Fp8Format::E4M3, true); });
    expectInvalid([&] { fp4Quantize(W); });
    expectInvalid([&] { nf4Quantize(W); });
    W(2, 5) = std::numeric_limits<float>::infinity();
    expectInvalid([&] { computeGridParams(W, {4, true, 32}); });
    W(2, 5) = 0.0f;
    expectInvalid([&] { rtnQuantize(W, {9, false, 0}); });  // bits out of 2..8
    expectInvalid([&] { rtnQuantize(W, {1, false, 0}); });
    expectInvalid([&] { rtnQuantize(W, {4, false, -2}); }); // group size
    // The message says where.
    W(2, 5) = std::numeric_limits<float>::quiet_NaN();
    try {
        rtnQuantize(W, {4, false, 0});
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("row 2, column 5") != std::string::npos, e.what());
    }
}

void TestQuantGrids::errorFallsWithBits()
{
    const MatrixRM W = randomMatrix(64, 256, 2);
    for (int group : {0, 32, 128, -1})
        for (bool sym : {false, true}) {
            double previous = std::numeric_limits<double>::infinity();
            for (int bits = 2; bits <= 8; ++bits) {
                const double e = relError(W, rtnQuantize(W, {bits, sym, group}).dequantized);
                QVERIFY2(e < previous, qPrintable(QString("group %1 sym %2 bits %3: %4 >= %5")
                                                      .arg(group).arg(sym).arg(bits).arg(e).arg(previous)));
                previous = e;
            }
            // 8-bit per-row RTN of a Gaussian: ~ 2 * 3.5 sigma / 255 / sqrt(12) relative error
            QVERIFY(previous < 0.02);
        }
    // Smaller groups fit tighter ranges.
    const double eRow = relError(W, rtnQuantize(W, {4, false, 0}).dequantized);
    const double eG32 = relError(W, rtnQuantize(W, {4, false, 32}).dequantized);
    QVERIFY(eG32 < eRow);
}

void TestQuantGrids::fastMatchesRefAndPacking()
{
    const MatrixRM W = randomMatrix(37, 300, 3); // groups of 128 leave a short last group
    for (int bits = 2; bits <= 8; ++bits)
        for (int group : {0, 128, -1})
            for (bool sym : {false, true}) {
                const QuantGrid g{bits, sym, group};
                const RtnResult fast = rtnQuantize(W, g), ref = rtnQuantizeRef(W, g);
                QVERIFY((fast.dequantized - ref.dequantized).cwiseAbs().maxCoeff() <= kRtnFastVsRefMaxDiff);
                QVERIFY(fast.codes == ref.codes);
                QVERIFY(dequantizeCodes(fast.codes, fast.params) == fast.dequantized);
                const auto packed = packCodes(fast.codes, bits);
                QCOMPARE(packed.size(), (fast.codes.size() * size_t(bits) + 7) / 8);
                QVERIFY(unpackCodes(packed, bits, int64_t(fast.codes.size())) == fast.codes);
            }
    // Packing by hand: 3-bit codes 5, 2, 7 -> bits 101 010 111 (LSB first) -> 0xD5, 0x01.
    const auto p = packCodes({5, 2, 7}, 3);
    QCOMPARE(p.size(), size_t(2));
    QCOMPARE(int(p[0]), 0xD5);
    QCOMPARE(int(p[1]), 0x01);
}

// b bits per code + per group a 16-bit scale (+ a b-bit zero when asymmetric).
void TestQuantGrids::bitsPerWeight()
{
    QCOMPARE(gridBitsPerWeight({4, false, 128}, 64, 4096), 4.0 + 20.0 / 128.0); // 4.15625
    QCOMPARE(gridBitsPerWeight({4, true, 128}, 64, 4096), 4.125);
    QCOMPARE(gridBitsPerWeight({3, false, 0}, 64, 256), 3.0 + 19.0 / 256.0);
    QCOMPARE(gridBitsPerWeight({8, true, -1}, 64, 256), 8.0 + 16.0 / (64.0 * 256.0));
    QCOMPARE(gridBitsPerWeight({2, false, 32}, 4, 40), 2.0 + 18.0 * 2.0 / 40.0); // ceil(40/32) = 2 groups
    QCOMPARE(rtnQuantize(randomMatrix(4, 64, 9), {4, false, 32}).bitsPerWeight, 4.0 + 20.0 / 32.0);
}

void TestQuantGrids::nf4Levels()
{
    // The levels of the QLoRA paper (Appendix E) / bitsandbytes.
    QCOMPARE(kNf4Levels[0], -1.0f);
    QCOMPARE(kNf4Levels[7], 0.0f);
    QCOMPARE(kNf4Levels[15], 1.0f);
    QCOMPARE(kNf4Levels[1], -0.6961928009986877f);
    QCOMPARE(kNf4Levels[8], 0.07958029955625534f);
    QCOMPARE(kNf4Levels[14], 0.7229568362236023f);
    for (int i = 0; i < 15; ++i)
        QVERIFY(kNf4Levels[i] < kNf4Levels[i + 1]);
    // Every level maps to itself; the binary search agrees with the scan.
    for (int i = 0; i < 16; ++i) {
        QCOMPARE(nf4NearestRef(kNf4Levels[i]), i);
        QCOMPARE(nf4Nearest(kNf4Levels[i]), i);
    }
    std::mt19937 rng(4);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int k = 0; k < 200000; ++k) {
        const float v = u(rng);
        const int a = nf4NearestRef(v), b = nf4Nearest(v);
        if (a != b)
            QVERIFY(std::fabs(std::fabs(v - kNf4Levels[a]) - std::fabs(v - kNf4Levels[b])) <= kNf4TieTolerance);
    }
    // A block holding exact multiples of the levels is reproduced exactly (no double quantization).
    std::vector<float> x(64);
    for (int i = 0; i < 64; ++i)
        x[size_t(i)] = 0.5f * kNf4Levels[i % 16];
    const Nf4Result r = nf4Quantize(x.data(), 64, {64, false, 256});
    QCOMPARE(r.absmax[0], 0.5f);
    for (int i = 0; i < 64; ++i) {
        QCOMPARE(int(r.codes[size_t(i)]), i % 16);
        QCOMPARE(r.dequantized[size_t(i)], x[size_t(i)]);
    }
}

void TestQuantGrids::nf4DoubleQuant()
{
    // QLoRA: 8/64 + 32/(64*256) = 0.127 bits of constants per weight.
    QCOMPARE(nf4BitsPerWeight({}), 4.0 + 8.0 / 64.0 + 32.0 / (64.0 * 256.0));
    QVERIFY(std::fabs(nf4BitsPerWeight({}) - 4.127) < 5e-4);
    QCOMPARE(nf4BitsPerWeight({64, false, 256}), 4.5);

    // bitsandbytes' signed dynamic map: 256 sorted values in [-1, 1] holding 0 and 1.
    const auto& map = dynamicMap8();
    QVERIFY(std::is_sorted(map.begin(), map.end()));
    QCOMPARE(map[255], 1.0f);
    QVERIFY(std::find(map.begin(), map.end(), 0.0f) != map.end());
    QVERIFY(map[0] > -1.0f && map[0] < -0.99f); // the largest negative is the mean of 0.99297 and 1
    QCOMPARE(int(std::count_if(map.begin(), map.end(), [](float v) { return v > 0.0f; })), 128);

    const MatrixRM W = randomMatrix(64, 1024, 5); // 1024 blocks of 64, 4 second-level blocks
    const Nf4Result dq = nf4Quantize(W);
    const Nf4Result plain = nf4Quantize(W, {64, false, 256});
    QCOMPARE(dq.absmaxCodes.size(), size_t(1024));
    QCOMPARE(dq.absmaxScales.size(), size_t(4));
    QVERIFY(dq.codes == plain.codes); // the 4-bit codes use the exact constants
    QCOMPARE(dq.bitsPerWeight, nf4BitsPerWeight({}) + 32.0 / double(W.size()));
    QCOMPARE(plain.bitsPerWeight, 4.5);
    // The compressed constants stay within ~1 % of the exact ones.
    for (size_t b = 0; b < plain.absmax.size(); ++b)
        QVERIFY(std::fabs(dq.absmax[b] - plain.absmax[b]) <= 0.01f * plain.absmax[b]);
    const Eigen::Map<const MatrixRM> Wdq(dq.dequantized.data(), W.rows(), W.cols());
    const Eigen::Map<const MatrixRM> Wplain(plain.dequantized.data(), W.rows(), W.cols());
    const double eDq = relError(W, Wdq), ePlain = relError(W, Wplain);
    qInfo("NF4 relative error on N(0,1): %.5f, with double quantization %.5f", ePlain, eDq);
    QVERIFY(eDq <= ePlain * (1.0 + kNf4DoubleQuantRmseSlack));
    QVERIFY(ePlain < 0.12); // NF4 of a Gaussian: ~10 %

    std::vector<float> zeros(100, 0.0f); // a short last block and all-zero blocks
    const Nf4Result z = nf4Quantize(zeros.data(), 100);
    for (float v : z.dequantized)
        QCOMPARE(v, 0.0f);
}

void TestQuantGrids::fp8Formats()
{
    QCOMPARE(fp8MaxFinite(Fp8Format::E4M3), 448.0f);
    QCOMPARE(fp8MaxFinite(Fp8Format::E5M2), 57344.0f);
    QCOMPARE(fp8Decode(0x7E, Fp8Format::E4M3), 448.0f);   // S.1111.110
    QVERIFY(std::isnan(fp8Decode(0x7F, Fp8Format::E4M3))); // S.1111.111
    QCOMPARE(fp8Decode(0x7B, Fp8Format::E5M2), 57344.0f); // S.11110.11
    QCOMPARE(fp8Decode(0x7C, Fp8Format::E5M2), std::numeric_limits<float>::infinity());
    QVERIFY(std::isnan(fp8Decode(0x7D, Fp8Format::E5M2)));
    QCOMPARE(fp8Decode(0x01, Fp8Format::E4M3), std::ldexp(1.0f, -9));  // smallest subnormal
    QCOMPARE(fp8Decode(0x08, Fp8Format::E4M3), std::ldexp(1.0f, -6));  // smallest normal
    QCOMPARE(fp8Decode(0x01, Fp8Format::E5M2), std::ldexp(1.0f, -16));
    QCOMPARE(fp8Decode(0x38, Fp8Format::E4M3), 1.0f);
    QCOMPARE(fp8Decode(0x3C, Fp8Format::E5M2), 1.0f);
    QCOMPARE(fp8Decode(0xC0, Fp8Format::E4M3), -2.0f);
    // Saturation instead of NaN / inf; 460 would round to 480 (the NaN code) without it.
    for (auto enc : {fp8Encode, fp8EncodeRef}) {
        QCOMPARE(int(enc(460.0f, Fp8Format::E4M3)), 0x7E);
        QCOMPARE(int(enc(-1e9f, Fp8Format::E4M3)), 0xFE);
        QCOMPARE(int(enc(std::numeric_limits<float>::infinity(), Fp8Format::E4M3)), 0x7E);
        QCOMPARE(int(enc(1e9f, Fp8Format::E5M2)), 0x7B);
        QCOMPARE(int(enc(-0.0f, Fp8Format::E4M3)), 0x80);
        QCOMPARE(int(enc(1e-30f, Fp8Format::E4M3)), 0x00); // underflow to zero
        // Ties to even: 1.0625 lies halfway between 1 (0x38) and 1.125 (0x39).
        QCOMPARE(int(enc(1.0625f, Fp8Format::E4M3)), 0x38);
        QCOMPARE(int(enc(1.1875f, Fp8Format::E4M3)), 0x3A);
        // 1.5 * 2^-9, halfway between subnormals 1 and 2 -> 2.
        QCOMPARE(int(enc(1.5f * std::ldexp(1.0f, -9), Fp8Format::E4M3)), 0x02);
        QVERIFY(std::isnan(fp8Decode(enc(std::nanf(""), Fp8Format::E5M2), Fp8Format::E5M2)));
    }
}

// Every code: decode then encode gives it back (NaN stays NaN, E5M2's inf
// saturates); every midpoint between neighbours goes to the even code; the
// bit-manipulation encoder agrees with the reference on a million floats.
void TestQuantGrids::fp8ExhaustiveRoundTrip()
{
    for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
        for (int c = 0; c < 256; ++c) {
            const float v = fp8Decode(uint8_t(c), f);
            for (auto enc : {fp8Encode, fp8EncodeRef}) {
                const uint8_t back = enc(v, f);
                if (std::isnan(v))
                    QVERIFY(std::isnan(fp8Decode(back, f)));
                else if (std::isinf(v))
                    QCOMPARE(int(back), (c & 0x80) | 0x7B);
                else
                    QCOMPARE(int(back), c);
            }
        }
        const int top = f == Fp8Format::E4M3 ? 0x7E : 0x7B;
        for (int c = 0; c < top; ++c) {
            const float lo = fp8Decode(uint8_t(c), f), hi = fp8Decode(uint8_t(c + 1), f);
            const float mid = 0.5f * (lo + hi);
            const int even = c % 2 == 0 ? c : c + 1;
            QCOMPARE(int(fp8Encode(mid, f)), even);
            QCOMPARE(int(fp8EncodeRef(mid, f)), even);
            QCOMPARE(int(fp8Encode(-mid, f)), 0x80 | even);
            QCOMPARE(int(fp8Encode(std::nextafter(mid, 0.0f), f)), c);
            QCOMPARE(int(fp8Encode(std::nextafter(mid, hi), f)), c + 1);
        }
        std::mt19937 rng(6);
        std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
        std::uniform_int_distribution<int> ex(-30, 20);
        for (int k = 0; k < 1000000; ++k) {
            const float x = std::ldexp(mant(rng), ex(rng));
            QCOMPARE(fp8Encode(x, f), fp8EncodeRef(x, f));
        }
    }
}

void TestQuantGrids::fp8Scaled()
{
    MatrixRM W = randomMatrix(8, 64, 7);
    W(3, 10) = 9.0f; // an outlier that sets row 3's (and the tensor's) scale
    const Fp8Result t = fp8Quantize(W, Fp8Format::E4M3, false);
    QCOMPARE(t.scales.size(), size_t(1));
    QCOMPARE(t.scales[0], 9.0f / 448.0f);
    QCOMPARE(int(t.codes[3 * 64 + 10]), 0x7E); // absmax maps to 448
    QVERIFY(std::fabs(t.dequantized(3, 10) - 9.0f) <= 1e-5f);
    QCOMPARE(t.bitsPerWeight, 8.0 + 32.0 / 512.0);
    const Fp8Result c = fp8Quantize(W, Fp8Format::E4M3, true);
    QCOMPARE(c.scales.size(), size_t(8));
    QCOMPARE(c.bitsPerWeight, 8.0 + 32.0 / 64.0);
    // E4M3 has 3 mantissa bits: relative error per value <= 2^-4 in the normal range.
    QVERIFY(relError(W, c.dequantized) < 0.04);
    QVERIFY(relError(W, c.dequantized) <= relError(W, t.dequantized));
    const Fp8Result e5 = fp8Quantize(W, Fp8Format::E5M2, true);
    QVERIFY(relError(W, e5.dequantized) > relError(W, c.dequantized)); // 2 mantissa bits
}

void TestQuantGrids::fp4Grid()
{
    const float expected[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    for (int c = 0; c < 16; ++c) {
        const float v = fp4Decode(uint8_t(c));
        QCOMPARE(std::fabs(v), expected[c & 7]);
        QCOMPARE(std::signbit(v), c >= 8);
        QCOMPARE(v, decodeMiniFloat(uint8_t(c), formatE2M1()));
        QCOMPARE(int(fp4Encode(v)), c);
        QCOMPARE(int(fp4EncodeRef(v)), c);
    }
    // Midpoints round to the even code; beyond 6 saturates.
    const std::pair<float, int> ties[] = {{0.25f, 0}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4},
                                          {2.5f, 4},  {3.5f, 6},  {5.0f, 6},  {7.0f, 7}, {1e9f, 7}};
    for (auto [x, code] : ties) {
        QCOMPARE(int(fp4Encode(x)), code);
        QCOMPARE(int(fp4EncodeRef(x)), code);
        QCOMPARE(int(fp4Encode(-x)), code | 8);
    }
    std::mt19937 rng(8);
    std::uniform_real_distribution<float> u(-8.0f, 8.0f);
    for (int k = 0; k < 200000; ++k) {
        const float x = u(rng);
        QCOMPARE(fp4Encode(x), fp4EncodeRef(x));
    }
}

void TestQuantGrids::fp4Scaled()
{
    // A group whose absmax / 6 is a power of two is reproduced exactly.
    MatrixRM W(1, 32);
    for (int i = 0; i < 32; ++i)
        W(0, i) = 0.25f * fp4Decode(uint8_t(i % 16));
    for (Fp4Scale s : {Fp4Scale::Fp16, Fp4Scale::PowerOfTwo}) {
        const Fp4Result r = fp4Quantize(W, {32, s});
        QCOMPARE(r.scales(0, 0), 0.25f);
        QVERIFY(r.dequantized == W);
    }
    const MatrixRM R = randomMatrix(16, 256, 9);
    const Fp4Result fp16 = fp4Quantize(R, {32, Fp4Scale::Fp16});
    const Fp4Result pow2 = fp4Quantize(R, {32, Fp4Scale::PowerOfTwo});
    QCOMPARE(fp16.bitsPerWeight, 4.5);
    QCOMPARE(pow2.bitsPerWeight, 4.25);
    QCOMPARE(fp4Quantize(R, {0, Fp4Scale::Fp16}).bitsPerWeight, 4.0 + 16.0 / 256.0);
    for (Eigen::Index i = 0; i < pow2.scales.size(); ++i) {
        int e = 0;
        QCOMPARE(std::frexp(pow2.scales.data()[i], &e), 0.5f); // a power of two
    }
    // Power-of-two scales round up, so nothing saturates: |x| / scale <= 6.
    for (Eigen::Index r = 0; r < R.rows(); ++r)
        for (Eigen::Index c = 0; c < R.cols(); ++c)
            QVERIFY(std::fabs(R(r, c)) <= 6.0f * pow2.scales(r, c / 32));
    QVERIFY(relError(R, fp16.dequantized) < relError(R, pow2.dequantized)); // the price of cheap scales
    QVERIFY(relError(R, fp16.dequantized) < 0.15);
}

// W = I (2x2), W^ drops the second weight: weight error 1/sqrt(2); with G = I
// the output error is the same; with G = diag(4, 0) the second input is never
// active, so the output does not change at all.
void TestQuantGrids::layerErrorHand()
{
    MatrixRM W = MatrixRM::Identity(2, 2), What = MatrixRM::Identity(2, 2);
    What(1, 1) = 0.0f;
    const Eigen::MatrixXf I = Eigen::MatrixXf::Identity(2, 2);
    const LayerErrorReport rep = layerErrorReport(W, What, &I);
    QCOMPARE(rep.weightError, std::sqrt(0.5));
    QVERIFY(rep.outputError.has_value());
    QVERIFY(std::fabs(*rep.outputError - std::sqrt(0.5)) < 1e-12);
    Eigen::MatrixXf G = Eigen::MatrixXf::Zero(2, 2);
    G(0, 0) = 4.0f;
    QCOMPARE(gramOutputError(W, What, G), 0.0);
    // Error statistics of W^ - W = {0, 0, 0, -1}.
    QCOMPARE(rep.errorStats.count, int64_t(4));
    QCOMPARE(rep.errorStats.min, -1.0);
    QCOMPARE(rep.errorStats.mean, -0.25);
    QCOMPARE(rep.errorStats.zeros, int64_t(3));
    QVERIFY(!layerErrorReport(W, What).outputError.has_value());
    expectInvalid([&] { layerErrorReport(W, MatrixRM::Zero(2, 3)); });
    expectInvalid([&] { gramOutputError(W, What, Eigen::MatrixXf::Identity(3, 3)); });
}

void TestQuantGrids::layerErrorGramMatchesExplicit()
{
    const MatrixRM X = randomMatrix(200, 48, 10);        // (tokens, in)
    const MatrixRM W = randomMatrix(24, 48, 11);         // (out, in)
    const MatrixRM What = rtnQuantize(W, {3, false, 16}).dequantized;
    const Eigen::MatrixXf G = (X.transpose() * X).eval(); // (in, in)
    const Eigen::MatrixXd Xd = X.cast<double>();
    const double explicitErr = (Xd * (W - What).cast<double>().transpose()).norm() / (Xd * W.cast<double>().transpose()).norm();
    const LayerErrorReport rep = layerErrorReport(W, What, &G);
    qInfo("3-bit g16 RTN: weight error %.5f, output error %.5f (explicit %.5f)", rep.weightError, *rep.outputError,
          explicitErr);
    QVERIFY(std::fabs(*rep.outputError - explicitErr) <= kGramVsExplicitRelTol * explicitErr);
    QVERIFY(std::fabs(rep.weightError - relError(W, What)) < 1e-6);
    int64_t total = 0;
    for (auto n : rep.errorStats.histogram.counts)
        total += n;
    QCOMPARE(total, int64_t(W.size()));
}

void TestQuantGrids::rtnPerplexityMatchesReference_data()
{
    QTest::addColumn<QString>("run");
    QTest::addColumn<int>("bits");
    QTest::addColumn<bool>("sym");
    QTest::addColumn<int>("group");
    QTest::newRow("w3 asym g32") << "rtn_w3_asym_g32" << 3 << false << 32; // groups + a short last group (172 = 5*32 + 12)
    QTest::newRow("w4 sym row") << "rtn_w4_sym_row" << 4 << true << 0;
}

// The acceptance test of the grid: every linear of stories260K's decoder
// layers RTN-quantized, perplexity of eval.txt under the reference protocol.
// Symmetric grids put each row's absmax exactly on a rounding tie (x / scale =
// +-(2^b - 1) / 2), so the reference's sym numbers depend on arithmetic details
// we could not identify (it agrees with GPTQ's quant.py to 0.002 % at 8 bits,
// 0.2 % at 4 bits, 1.6 % at w3 per row, 4-8 % at 2 bits); asym ones match to float noise.
// Variants tried against the reference's sym runs (w8 row / w4 row / w3 row / w2 g32),
// none closer: the protocol text read literally (no mirroring: scale from the
// 0-containing min/max, zero 2^(b-1)) +1.0 / -3.6 / -5.6 / -57 %; negative ties
// rounded towards 0 (codes 1..2^b-1) +0.003 / +0.23 / -2.4 / -9.5 %; x * (1 / scale)
// w3 row -2.8 %, w2 g32 +4.1 %; the division in double w3 row -4.1 %; levels
// +-(2^(b-1) - 1) with scale absmax / (2^(b-1) - 1) w4 row +0.6 %, w3 row +84 %;
// scale absmax / 2^(b-1) w4 row -3.2 %. tests/test_quantize_model.cpp runs all 16.
void TestQuantGrids::rtnPerplexityMatchesReference()
{
    LL_REQUIRE_SHARED();
    QFETCH(QString, run);
    QFETCH(int, bits);
    QFETCH(bool, sym);
    QFETCH(int, group);
    const auto reference = nlohmann::json::parse(test::readFile(test::sharedPath("reference/stories260K_compression.json")));
    const double expected = reference.at("runs").at(run.toStdString()).at("ppl").get<double>();

    static const auto model = openModel(test::sharedPath("models/stories260K-hf"));
    static const std::vector<int32_t> tokens =
        loadTokenizer(*model)->encode(test::readFile(test::sharedPath("data/tinystories/eval.txt")), true);
    Transformer t(*model);
    for (int b = 0; b < t.layers(); ++b)
        for (Role r : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpGate, Role::MlpUp, Role::MlpDown})
            t.setLinearWeight(b, r, rtnQuantize(t.linear(b, r).dense(), {bits, sym, group}).dequantized);
    const double ppl = evaluatePerplexity(t, tokens).ppl;
    qInfo("%s: perplexity %.6f, reference %.6f (%+.4f %%)", qPrintable(run), ppl, expected,
          100.0 * (ppl / expected - 1.0));
    QVERIFY(std::fabs(ppl / expected - 1.0) <= (sym ? kPplSymRelTol : kPplAsymRelTol));
}

QTEST_APPLESS_MAIN(TestQuantGrids)
#include "test_quant_grids.moc"
