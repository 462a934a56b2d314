// OliVe (quant/olive.h) against its definition: the grids by hand; pairs are
// decodable (codes × scale give the dequantized weights exactly) and lossless
// with respect to the integer grid where no outlier is present; an outlier
// takes its partner's slot by hand; two outliers in a pair; undecodable pairs
// refused; on heavy-tailed weights it beats symmetric RTN at the same bits.
#include "test_support.h"

#include "quant/olive.h"
#include "quant/quant_method.h"
#include "quant/rtn.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>

using namespace ll;

class TestOlive : public QObject {
    Q_OBJECT
private slots:
    void gridsByHand();
    void losslessWithoutOutliers();
    void outlierTakesItsPartnersSlot();
    void everyRowDecodes();
    void undecodablePairsRefused();
    void beatsRtnOnHeavyTails();
};

void TestOlive::gridsByHand()
{
    QCOMPARE(oliveNormalMagnitudes(4), (std::vector<float>{0, 4, 8, 12, 16, 20, 24, 28}));
    // 2^e (1 + j/2), e = 5..8, without 32.
    QCOMPARE(oliveOutlierMagnitudes(4), (std::vector<float>{48, 64, 96, 128, 192, 256, 384}));
    QCOMPARE(oliveOutlierMagnitudes(3), (std::vector<float>{64, 128, 256}));
    QCOMPARE(oliveNormalMagnitudes(3), (std::vector<float>{0, 8, 16, 24}));
}

// Values within the integer range: no identifier, no outlier code, and each
// value is the symmetric integer grid's rounding at the row's scale.
void TestOlive::losslessWithoutOutliers()
{
    MatrixRM W(2, 8);
    W << 0.10f, -0.20f, 0.05f, 0.15f, -0.12f, 0.02f, 0.18f, -0.07f, //
        1.0f, 0.5f, -0.25f, -1.0f, 0.75f, 0.0f, 0.3f, -0.6f;
    const OliveResult r = oliveQuantize(W, 4);
    QCOMPARE(r.outliers, int64_t(0));
    QCOMPARE(r.victims, int64_t(0));
    for (int64_t row = 0; row < 2; ++row) {
        const float s = r.scales[static_cast<size_t>(row)];
        const std::vector<float> units = oliveDecodeRow(r.codes.data() + row * 8, 8, 4);
        for (int64_t c = 0; c < 8; ++c) {
            const float step = 4.0f * s;
            const float want = std::clamp(std::nearbyint(W(row, c) / step), -7.0f, 7.0f) * step;
            QCOMPARE(r.dequantized(row, c), want);
            QCOMPARE(units[static_cast<size_t>(c)] * s, want);
            const int code = r.codes[static_cast<size_t>(row * 8 + c)];
            QVERIFY(code != 8); // 1000b: the identifier
        }
    }
}

void TestOlive::outlierTakesItsPartnersSlot()
{
    // Sixteen small values and one large one at column 5: its partner is column 4.
    MatrixRM W(1, 16);
    for (int c = 0; c < 16; ++c)
        W(0, c) = 0.01f * static_cast<float>((c * 7) % 11 - 5);
    W(0, 5) = 1.0f;
    const OliveResult r = oliveQuantize(W, 4);
    QCOMPARE(r.outliers, int64_t(1));
    QCOMPARE(r.victims, int64_t(1));
    QCOMPARE(r.dequantized(0, 4), 0.0f);     // the victim
    QCOMPARE(static_cast<int>(r.codes[4]), 8); // its slot: the identifier 1000b
    const float s = r.scales[0];
    const std::vector<float> outliers = oliveOutlierMagnitudes(4);
    const float u = r.dequantized(0, 5) / s;
    QVERIFY(std::find(outliers.begin(), outliers.end(), u) != outliers.end()); // an abfloat value
    QVERIFY(std::fabs(r.dequantized(0, 5) - 1.0f) < 0.25f);
    // Two outliers in one pair (among 128 small values, so that both stay beyond the
    // integer range for every scale searched): the first keeps its value, the second is the victim.
    MatrixRM W2(1, 128);
    for (int c = 0; c < 128; ++c)
        W2(0, c) = 0.01f * static_cast<float>((c * 7) % 11 - 5);
    W2(0, 4) = -4.0f;
    W2(0, 5) = 3.0f;
    const OliveResult both = oliveQuantize(W2, 4);
    QCOMPARE(both.outliers, int64_t(1));
    QVERIFY(both.dequantized(0, 4) < -3.0f);
    QCOMPARE(both.dequantized(0, 5), 0.0f);
    QCOMPARE(static_cast<int>(both.codes[5]), 8);
}

void TestOlive::everyRowDecodes()
{
    for (const int bits : {3, 4, 6, 8}) {
        const MatrixRM W = test::heavyTailed(64, 96, 11);
        const OliveResult r = oliveQuantize(W, bits);
        QVERIFY(r.outliers > 0);
        for (int64_t row = 0; row < W.rows(); ++row) {
            const std::vector<float> units = oliveDecodeRow(r.codes.data() + row * W.cols(), W.cols(), bits);
            for (int64_t c = 0; c < W.cols(); ++c)
                QCOMPARE(units[static_cast<size_t>(c)] * r.scales[static_cast<size_t>(row)], r.dequantized(row, c));
        }
    }
}

void TestOlive::undecodablePairsRefused()
{
    const uint8_t twoIdentifiers[] = {8, 8};
    const uint8_t unusedOutlier[] = {8, 0}; // index 0 is the skipped 32
    for (const uint8_t* codes : {twoIdentifiers, unusedOutlier})
        try {
            oliveDecodeRow(codes, 2, 4);
            QFAIL("decoded");
        } catch (const Error& e) {
            QCOMPARE(e.code(), ErrorCode::Malformed);
        }
    try {
        oliveQuantize(MatrixRM::Ones(2, 2), 2);
        QFAIL("2 bits accepted");
    } catch (const Error& e) {
        QVERIFY(std::string(e.what()).find("3 to 8 bits") != std::string::npos);
    }
}

// The paper's point: outliers kept, at a cost to a few neighbours, against a
// symmetric grid whose range the outliers stretch (RTN sym per row, same bits).
void TestOlive::beatsRtnOnHeavyTails()
{
    const MatrixRM W = test::heavyTailed(128, 256, 5);
    for (const int bits : {3, 4}) {
        const double olive = (oliveQuantize(W, bits).dequantized - W).norm() / W.norm();
        const double rtn = (rtnQuantize(W, {bits, true, 0}).dequantized - W).norm() / W.norm();
        qInfo("heavy-tailed 128 x 256, %d bits: relative error OliVe %.4f, RTN sym per row %.4f", bits, olive, rtn);
        QVERIFY(olive < rtn);
    }
}

QTEST_GUILESS_MAIN(TestOlive)
#include "test_olive.moc"
