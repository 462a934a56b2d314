// The compression panel's preview widgets and plot export, offscreen: the
// numbers each widget shows checked against plain loops over its input, zoom
// and pan, the marker positions, the files export writes. Every widget is
// also rendered to /tmp/plots/*.png for a look by eye.
#include "test_support.h"

#include "activation_plot.h"
#include "error_curve_plot.h"
#include "format.h"
#include "histogram_plot.h"
#include "plot_export.h"
#include "sparsity_mask_view.h"
#include "spectrum_plot.h"
#include "stats/tensor_stats.h"
#include "weight_map_plot.h"

#include <QContextMenuEvent>
#include <QDir>
#include <QFileDialog>
#include <QImage>
#include <QLineEdit>
#include <QMenu>
#include <QPainter>
#include <QSignalSpy>
#include <QSvgRenderer>
#include <QToolButton>
#include <QtTest>

#include <chrono>
#include <cmath>
#include <random>

using namespace ll;
using namespace ll::gui;

namespace {

const QString kPngDir = QStringLiteral("/tmp/plots");

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 0.02f)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

// 2:4 by magnitude (the two largest |w| of every 4 kept), then `zeroRows` rows pruned entirely.
std::vector<float> prune24(std::vector<float> w, int64_t rows, int64_t cols, int zeroRows)
{
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < cols; g += 4) {
            float* p = &w[static_cast<size_t>(r * cols + g)];
            int order[4] = {0, 1, 2, 3};
            std::sort(order, order + 4, [p](int a, int b) { return std::fabs(p[a]) > std::fabs(p[b]); });
            p[order[2]] = p[order[3]] = 0.0f;
        }
    for (int k = 0; k < zeroRows; ++k)
        std::fill_n(w.begin() + (rows / 3 + 7 * k) * cols, cols, 0.0f);
    return w;
}

void savePng(QWidget* w, const QString& name)
{
    QDir().mkpath(kPngDir);
    QVERIFY(w->grab().save(kPngDir + QLatin1Char('/') + name));
}

QByteArray head(const QString& path, int n)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.read(n) : QByteArray();
}

void wheel(QWidget* w, QPoint pos, int delta)
{
    QWheelEvent e(pos, w->mapToGlobal(pos), QPoint(), QPoint(0, delta), Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase,
                  false);
    QApplication::sendEvent(w, &e);
}

} // namespace

class TestGuiPlots : public QObject {
    Q_OBJECT
private slots:
    void maskViewSparsitiesMatchLoops();
    void maskViewNMValidity();
    void maskViewZoomPanAndFit();
    void maskViewShadesBlocks();
    void maskViewLargeMatrix();
    void spectrumEnergyLabel();
    void errorCurveMarker();
    void histogramOverlayCounts();
    void exportWritesPngSvgPdf();
    void contextMenuExportsThroughTheDialog();
    void wideMapLabelsDoNotOverlap();
};

void TestGuiPlots::maskViewSparsitiesMatchLoops()
{
    const int64_t rows = 96, cols = 160;
    std::vector<float> w = gaussian(static_cast<size_t>(rows * cols), 1);
    // Unstructured: every weight under a threshold that varies by row and column, so that the shares differ.
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            if (std::fabs(w[static_cast<size_t>(r * cols + c)]) < 0.004f * (1 + (r % 5) + (c % 7)))
                w[static_cast<size_t>(r * cols + c)] = 0.0f;
    SparsityMaskView view;
    view.resize(700, 480);
    view.setWeights(w, rows, cols);

    int64_t zeros = 0;
    std::vector<int64_t> rowZeros(rows, 0), colZeros(cols, 0);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            if (w[static_cast<size_t>(r * cols + c)] == 0.0f)
                ++zeros, ++rowZeros[r], ++colZeros[c];
    QCOMPARE(view.mask().prunedCount(), zeros);
    QVERIFY(std::fabs(view.sparsity() - static_cast<double>(zeros) / (rows * cols)) < 1e-12);
    QCOMPARE(view.rowSparsity().size(), size_t(rows));
    QCOMPARE(view.columnSparsity().size(), size_t(cols));
    for (int64_t r = 0; r < rows; ++r)
        QVERIFY(std::fabs(view.rowSparsity()[r] - static_cast<double>(rowZeros[r]) / cols) < 1e-12);
    for (int64_t c = 0; c < cols; ++c)
        QVERIFY(std::fabs(view.columnSparsity()[c] - static_cast<double>(colZeros[c]) / rows) < 1e-12);
    QVERIFY2(view.summaryText().contains(formatShare(static_cast<double>(zeros) / (rows * cols))),
             qPrintable(view.summaryText()));
    QVERIFY(!view.patternDetected()); // unstructured: no N:M pattern to claim
    QVERIFY(view.summaryText().contains(QStringLiteral("no N:M pattern")));
    view.show();
    savePng(&view, QStringLiteral("mask_unstructured.png"));
}

void TestGuiPlots::maskViewNMValidity()
{
    const int64_t rows = 64, cols = 128;
    std::vector<float> w = prune24(gaussian(static_cast<size_t>(rows * cols), 2), rows, cols, 3);
    SparsityMaskView view;
    view.resize(700, 480);
    view.setWeights(w, rows, cols);
    QVERIFY(view.patternDetected());
    QCOMPARE(view.pattern()->n, 2);
    QCOMPARE(view.pattern()->m, 4);
    QCOMPARE(view.patternGroups(), rows * cols / 4);
    QCOMPARE(view.patternValidGroups(), rows * cols / 4);
    QVERIFY2(view.summaryText().contains(QStringLiteral("2:4 valid in 100 % of groups")), qPrintable(view.summaryText()));
    QVERIFY(view.mask().isValidNM(2, 4));

    // Break the pattern in some groups (a third weight kept) and count the valid groups with a loop.
    for (int64_t r = 0; r < rows; r += 5)
        for (int64_t g = (r % 3) * 4; g < cols; g += 36)
            for (int64_t c = g; c < g + 4; ++c)
                if (w[static_cast<size_t>(r * cols + c)] == 0.0f) {
                    w[static_cast<size_t>(r * cols + c)] = 0.01f;
                    break;
                }
    view.setWeights(w, rows, cols);
    QVERIFY(!view.patternDetected());
    view.setPattern(NMPattern{2, 4});
    int64_t valid = 0, groups = 0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < cols; g += 4, ++groups) {
            int kept = 0;
            for (int64_t c = g; c < g + 4; ++c)
                kept += w[static_cast<size_t>(r * cols + c)] != 0.0f;
            valid += kept <= 2;
        }
    QVERIFY(valid < groups);
    QCOMPARE(view.patternGroups(), groups);
    QCOMPARE(view.patternValidGroups(), valid);
    const QString expected = QStringLiteral("2:4 valid in %1 % of groups")
                                 .arg(std::floor(1000.0 * valid / groups) / 10.0, 0, 'f', 1);
    QVERIFY2(view.summaryText().contains(expected), qPrintable(view.summaryText() + " / " + expected));
    QVERIFY(!view.mask().isValidNM(2, 4));

    // Zoomed in, the groups are cells; look at the red outlines of the broken ones.
    view.show();
    savePng(&view, QStringLiteral("mask_24_fit.png"));
    view.setVisibleRange(QRectF(0, 0, 24, 12));
    QVERIFY(view.pixelsPerColumn() > 10);
    savePng(&view, QStringLiteral("mask_24_zoomed.png"));
}

void TestGuiPlots::maskViewZoomPanAndFit()
{
    const int64_t rows = 512, cols = 1024;
    SparsityMaskView view;
    view.resize(700, 480);
    view.setWeights(prune24(gaussian(static_cast<size_t>(rows * cols), 3), rows, cols, 4), rows, cols);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    const QRectF full(0, 0, cols, rows);
    QCOMPARE(view.visibleRange(), full);
    QVERIFY(view.isFit());
    QSignalSpy changed(&view, &SparsityMaskView::visibleRangeChanged);

    // Zoom around a point: the weight under it stays under it.
    const QRect area = view.matrixArea();
    const QPointF anchor(area.left() + 0.25 * area.width(), area.top() + 0.75 * area.height());
    auto weightAt = [&](QPointF p) {
        const QRectF v = view.visibleRange();
        return QPointF(v.x() + (p.x() - area.left()) / area.width() * v.width(),
                       v.y() + (p.y() - area.top()) / area.height() * v.height());
    };
    const QPointF before = weightAt(anchor);
    view.zoomBy(4.0, anchor);
    QCOMPARE(changed.count(), 1);
    QVERIFY(std::fabs(view.visibleRange().width() - cols / 4.0) < 1e-9);
    QVERIFY(std::fabs(view.visibleRange().height() - rows / 4.0) < 1e-9);
    QVERIFY((weightAt(anchor) - before).manhattanLength() < 1e-6);

    // The wheel zooms too (1.25× per notch), and back out.
    const double w0 = view.visibleRange().width();
    wheel(&view, anchor.toPoint(), 240);
    QVERIFY(std::fabs(view.visibleRange().width() - w0 / 1.5625) < 1e-6);
    wheel(&view, anchor.toPoint(), -240);
    QVERIFY(std::fabs(view.visibleRange().width() - w0) < 1e-6);

    // Dragging pans by the dragged pixels; never past the matrix edge.
    const QRectF r0 = view.visibleRange();
    const QPoint start = area.center();
    QTest::mousePress(&view, Qt::LeftButton, {}, start);
    QTest::mouseMove(&view, start + QPoint(-40, -20));
    QTest::mouseRelease(&view, Qt::LeftButton, {}, start + QPoint(-40, -20));
    QVERIFY(std::fabs(view.visibleRange().x() - (r0.x() + 40 / view.pixelsPerColumn())) < 1e-6);
    QVERIFY(std::fabs(view.visibleRange().y() - (r0.y() + 20 / view.pixelsPerRow())) < 1e-6);
    view.setVisibleRange(QRectF(5000, -300, 50, 40));
    QCOMPARE(view.visibleRange(), QRectF(cols - 50, 0, 50, 40));

    // At most kMaxCellPixels per weight however far one zooms.
    view.zoomBy(1e6, anchor);
    QVERIFY(view.pixelsPerColumn() <= SparsityMaskView::kMaxCellPixels + 1e-9);
    QVERIFY(view.pixelsPerRow() <= SparsityMaskView::kMaxCellPixels + 1e-9);
    savePng(&view, QStringLiteral("mask_max_zoom.png"));

    // Zooming out stops at the whole matrix; the Fit button and a double-click return to it.
    view.zoomBy(1e-6, anchor);
    QCOMPARE(view.visibleRange(), full);
    view.zoomBy(8.0, anchor);
    QVERIFY(!view.isFit());
    auto* fit = view.findChild<QToolButton*>(QStringLiteral("fitButton"));
    QVERIFY(fit);
    QTest::mouseClick(fit, Qt::LeftButton);
    QCOMPARE(view.visibleRange(), full);
    view.zoomBy(8.0, anchor);
    QTest::mouseDClick(&view, Qt::LeftButton, {}, area.center());
    QCOMPARE(view.visibleRange(), full);
}

void TestGuiPlots::maskViewShadesBlocks()
{
    // Each pixel at fit covers an exact 4 × 2 block: its colour is the block's kept share, counted here.
    const int64_t rows = 256, cols = 512;
    std::vector<float> w = gaussian(static_cast<size_t>(rows * cols), 4);
    for (size_t i = 0; i < w.size(); ++i)
        if (std::fabs(w[i]) < 0.015f)
            w[i] = 0.0f;
    SparsityMaskView view;
    view.resize(700, 480);
    const QRect a0 = view.matrixArea();
    view.resize(700 + (256 - a0.width()), 480 + (128 - a0.height()));
    QCOMPARE(view.matrixArea().size(), QSize(256, 128));
    view.setWeights(w, rows, cols);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.grab();
    const QImage& img = view.cellImage();
    QCOMPARE(img.size(), QSize(256, 128));
    int checked = 0;
    for (int py = 0; py < 128; py += 7)
        for (int px = 0; px < 256; px += 5) {
            int kept = 0;
            for (int64_t r = 2 * py; r < 2 * py + 2; ++r)
                for (int64_t c = 2 * px; c < 2 * px + 2; ++c)
                    kept += w[static_cast<size_t>(r * cols + c)] != 0.0f;
            QCOMPARE(QColor(img.pixel(px, py)), SparsityMaskView::shade(kept / 4.0));
            ++checked;
        }
    QVERIFY(checked > 500);
    // Zoomed in to 1 weight = 16 px, each pixel is one weight: kept or pruned colour.
    view.setVisibleRange(QRectF(100, 50, 16, 8));
    view.grab();
    const QImage& cells = view.cellImage();
    for (int64_t r = 50; r < 58; ++r)
        for (int64_t c = 100; c < 116; ++c) {
            const QPoint centre(static_cast<int>((c - 100) * 16 + 8), static_cast<int>((r - 50) * 16 + 8));
            QCOMPARE(QColor(cells.pixel(centre)), SparsityMaskView::shade(w[static_cast<size_t>(r * cols + c)] != 0.0f ? 1.0 : 0.0));
        }
}

void TestGuiPlots::maskViewLargeMatrix()
{
    // An 11008 × 4096 MLP matrix (down_proj transposed): set, render at fit, zoom; times are printed, not asserted.
    const int64_t rows = 11008, cols = 4096;
    SparsityMask mask(rows, cols, true);
    std::mt19937 rng(5);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < cols; g += 4) {
            const int keep = static_cast<int>(rng() % 6); // pairs (0,1) … (2,3)
            static const int pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
            for (int k = 0; k < 4; ++k)
                if (k != pairs[keep][0] && k != pairs[keep][1])
                    mask.prune(r, g + k);
        }
    SparsityMaskView view;
    view.resize(900, 600);
    auto t0 = std::chrono::steady_clock::now();
    view.setMask(mask);
    auto t1 = std::chrono::steady_clock::now();
    view.show();
    view.grab();
    auto t2 = std::chrono::steady_clock::now();
    view.zoomBy(64.0, view.matrixArea().center());
    view.grab();
    auto t3 = std::chrono::steady_clock::now();
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    qInfo("11008 x 4096: setMask %.0f ms, render at fit %.0f ms, zoomed %.0f ms", ms(t1 - t0), ms(t2 - t1), ms(t3 - t2));
    QCOMPARE(view.pattern()->n, 2);
    QCOMPARE(view.pattern()->m, 4);
    QCOMPARE(view.patternValidGroups(), rows * cols / 4);
    QVERIFY(std::fabs(view.sparsity() - 0.5) < 1e-12);
    for (int64_t r : {int64_t(0), int64_t(5000), rows - 1})
        QVERIFY(std::fabs(view.rowSparsity()[r] - 0.5) < 1e-12);
    view.fitView();
    savePng(&view, QStringLiteral("mask_11008x4096.png"));
}

void TestGuiPlots::spectrumEnergyLabel()
{
    SpectrumPlot plot;
    plot.resize(640, 400);
    // Hand-computed: σ = 10, 5, 2, 1; rank 2 keeps (100 + 25) / 130 = 96.15 %.
    const std::vector<double> small{1.0, 10.0, 2.0, 5.0}; // any order
    plot.showSpectrum(std::span<const double>(small), 2);
    QCOMPARE(plot.singularValues(), (std::vector<double>{10.0, 5.0, 2.0, 1.0}));
    QVERIFY(std::fabs(plot.keptEnergy() - 125.0 / 130.0) < 1e-12);
    QCOMPARE(plot.energyText(), QStringLiteral("rank 2 keeps 96.2 % of the energy"));
    QCOMPARE(plot.rankLineX(), 2.5);

    // σᵢ = 0.9^i, i < 256: rank r keeps (1 - 0.81^r) / (1 - 0.81^256).
    std::vector<float> sigma(256);
    for (size_t i = 0; i < sigma.size(); ++i)
        sigma[i] = static_cast<float>(std::pow(0.9, static_cast<double>(i)));
    plot.showSpectrum(std::span<const float>(sigma), 8);
    double kept = 0, total = 0;
    for (size_t i = 0; i < sigma.size(); ++i) {
        const double e = static_cast<double>(sigma[i]) * sigma[i];
        total += e;
        kept += i < 8 ? e : 0.0;
    }
    QVERIFY(std::fabs(plot.keptEnergy() - kept / total) < 1e-9);
    QCOMPARE(plot.energyText(), QStringLiteral("rank 8 keeps %1 % of the energy").arg(100.0 * kept / total, 0, 'f', 1));
    QVERIFY(plot.energyText().contains(QStringLiteral("81.5 %")));
    QCOMPARE(SpectrumPlot::energyShare(plot.singularValues(), 8), plot.keptEnergy());

    // A click picks the rank under the cursor.
    plot.show();
    QVERIFY(QTest::qWaitForWindowExposed(&plot));
    plot.replot();
    QSignalSpy picked(&plot, &SpectrumPlot::rankPicked);
    const int px = static_cast<int>(plot.xAxis->coordToPixel(40.0));
    QTest::mouseClick(&plot, Qt::LeftButton, {}, QPoint(px, plot.axisRect()->center().y()));
    QCOMPARE(picked.count(), 1);
    QCOMPARE(picked.at(0).at(0).toLongLong(), qint64{40});
    QCOMPARE(plot.rank(), int64_t{40});

    // The shape of a real layer: a decaying spectrum with a noise floor, rank 32.
    std::vector<double> real(512);
    for (size_t i = 0; i < real.size(); ++i)
        real[i] = 12.0 * std::exp(-static_cast<double>(i) / 14.0) + 0.4 * std::exp(-static_cast<double>(i) / 400.0);
    plot.showSpectrum(std::span<const double>(real), 32);
    plot.replot();
    savePng(&plot, QStringLiteral("spectrum.png"));
}

void TestGuiPlots::errorCurveMarker()
{
    ErrorCurvePlot plot;
    plot.resize(640, 400);
    plot.setXLabel(QStringLiteral("bits"));
    std::vector<ErrorCurvePoint> rtn, gptq;
    for (int b = 8; b >= 2; --b) { // unsorted on purpose
        ErrorCurvePoint p;
        p.x = b;
        p.weightError = 0.9 * std::pow(0.5, b);
        p.outputError = 1.3 * std::pow(0.5, b);
        rtn.push_back(p);
        p.weightError = 0.7 * std::pow(0.5, b);
        p.outputError = b == 5 ? std::nullopt : std::optional<double>(0.6 * std::pow(0.5, b));
        gptq.push_back(p);
    }
    QCOMPARE(plot.addCurve(QStringLiteral("RTN"), rtn), 0);
    QCOMPARE(plot.addCurve(QStringLiteral("GPTQ"), gptq), 1);
    QCOMPARE(plot.xAxis->label(), QStringLiteral("bits"));

    // At a measured x the marks sit on the measured values.
    plot.setCurrent(4.0);
    QCOMPARE(*plot.current(), 4.0);
    QCOMPARE(*plot.markedWeightError(0), 0.9 / 16);
    QCOMPARE(*plot.markedOutputError(0), 1.3 / 16);
    QCOMPARE(*plot.markedWeightError(1), 0.7 / 16);
    QCOMPARE(*plot.markedOutputError(1), 0.6 / 16);
    // Between points: on the drawn line, i.e. geometric on the log y axis (the errors halve per bit).
    plot.setCurrent(4.5);
    QVERIFY(std::fabs(*plot.markedWeightError(0) - 0.9 * std::pow(0.5, 4.5)) < 1e-12);
    // GPTQ has no output error at 5 bits: interpolated between 4 and 6 bits.
    plot.setCurrent(5.0);
    QVERIFY(std::fabs(*plot.markedOutputError(1) - 0.6 / 32) < 1e-12);
    // Outside the measured range there is nothing to mark.
    plot.setCurrent(9.0);
    QVERIFY(!plot.markedWeightError(0));

    // A click picks the nearest measured x; the vertical line follows.
    plot.show();
    QVERIFY(QTest::qWaitForWindowExposed(&plot));
    plot.replot();
    QSignalSpy picked(&plot, &ErrorCurvePlot::xPicked);
    const int px = static_cast<int>(plot.xAxis->coordToPixel(3.2));
    QTest::mouseClick(&plot, Qt::LeftButton, {}, QPoint(px, plot.axisRect()->center().y()));
    QCOMPARE(picked.count(), 1);
    QCOMPARE(picked.at(0).at(0).toDouble(), 3.0);
    QCOMPARE(*plot.markedWeightError(1), 0.7 / 8);
    auto* line = qobject_cast<QCPItemStraightLine*>(plot.item(0));
    QVERIFY(line && line->visible());
    QCOMPARE(line->point1->coords().x(), 3.0);
    QCOMPARE(line->point2->coords().x(), 3.0);

    plot.setCurrent(4.0);
    savePng(&plot, QStringLiteral("error_curve_bits.png"));
    // Sparsity on a linear y axis, one curve without output errors.
    ErrorCurvePlot sp;
    sp.resize(640, 400);
    sp.setXLabel(QStringLiteral("sparsity"));
    sp.setLogY(false);
    std::vector<ErrorCurvePoint> pts;
    for (double s = 0.1; s < 0.95; s += 0.1) {
        ErrorCurvePoint p;
        p.x = s;
        p.weightError = 0.5 * s * s;
        pts.push_back(p);
    }
    sp.addCurve(QString(), pts);
    sp.setCurrent(0.5);
    QVERIFY(std::fabs(*sp.markedWeightError(0) - 0.125) < 1e-12);
    QVERIFY(!sp.markedOutputError(0));
    sp.show();
    savePng(&sp, QStringLiteral("error_curve_sparsity.png"));
}

void TestGuiPlots::histogramOverlayCounts()
{
    const std::vector<float> before = gaussian(20000, 6);
    const TensorStats st = computeStats(before);
    // After: 4-bit absmax round-to-nearest, scaled by 1.05 so that some values leave the range.
    float absMax = 0;
    for (float v : before)
        absMax = std::max(absMax, std::fabs(v));
    const float step = absMax / 7.0f;
    std::vector<float> after(before.size());
    for (size_t i = 0; i < before.size(); ++i)
        after[i] = 1.05f * step * std::round(before[i] / step);

    HistogramPlot plot;
    plot.resize(640, 400);
    plot.showStats(st);
    const std::vector<int64_t> shownBefore = plot.shownCounts();
    const int64_t outside = plot.showOverlayValues(after, QStringLiteral("after RTN 4-bit"));
    QVERIFY(plot.hasOverlay());

    // Count by the bin edges, independently of the widget's formula.
    const Histogram& h = st.histogram;
    std::vector<int64_t> expected(h.counts.size(), 0);
    int64_t out = 0;
    for (float v : after) {
        if (v < h.lo || v > h.hi) {
            ++out;
            continue;
        }
        size_t bin = 0;
        while (bin + 1 < h.counts.size() && static_cast<double>(v) >= h.lo + static_cast<double>(bin + 1) * h.binWidth())
            ++bin;
        ++expected[bin];
    }
    QVERIFY(out > 0);
    QCOMPARE(outside, out);
    QCOMPARE(plot.overlayCounts(), expected);
    QCOMPARE(plot.shownCounts(), shownBefore); // the bars are untouched
    QCOMPARE(plot.shownCounts(), h.counts);
    QVERIFY(plot.legend->itemCount() >= 2);
    QString legendText;
    for (int i = 0; i < plot.legend->itemCount(); ++i)
        if (auto* item = qobject_cast<QCPPlottableLegendItem*>(plot.legend->item(i)))
            legendText += item->plottable()->name() + QLatin1Char('|');
    QVERIFY2(legendText.contains(QStringLiteral("before|")), qPrintable(legendText));
    QVERIFY2(legendText.contains(QStringLiteral("after RTN 4-bit (")), qPrintable(legendText));

    // Log counts keep empty bins at zero; a new tensor drops the overlay (other bins).
    plot.setLogY(true);
    QCOMPARE(plot.overlayCounts(), expected);
    plot.show();
    savePng(&plot, QStringLiteral("histogram_overlay_log.png"));
    plot.setLogY(false);
    savePng(&plot, QStringLiteral("histogram_overlay.png"));
    // Pruned: the after spike at 0 next to the before bell.
    std::vector<float> pruned = before;
    for (float& v : pruned)
        v = std::fabs(v) < 0.013f ? 0.0f : v;
    plot.showOverlayValues(pruned, QStringLiteral("after 50 % pruning"));
    QCOMPARE(plot.overlayCounts(), HistogramPlot::binInto(h, pruned));
    savePng(&plot, QStringLiteral("histogram_overlay_pruned.png"));
    plot.showStats(st);
    QVERIFY(!plot.hasOverlay());
    QVERIFY(plot.overlayCounts().empty());
    // A count vector of the wrong length is refused.
    plot.showOverlay(std::vector<int64_t>(3, 1));
    QVERIFY(!plot.hasOverlay());
}

void TestGuiPlots::exportWritesPngSvgPdf()
{
    const std::string dir = test::scratchDir();
    HistogramPlot hist;
    hist.showStats(computeStats(gaussian(5000, 7)));
    SpectrumPlot spectrum;
    std::vector<double> sigma{9, 5, 3, 2, 1, 0.5};
    spectrum.showSpectrum(std::span<const double>(sigma), 3);
    ErrorCurvePlot curves;
    ErrorCurvePoint p2, p4;
    p2.x = 2, p2.weightError = 0.3, p2.outputError = 0.4;
    p4.x = 4, p4.weightError = 0.08, p4.outputError = 0.1;
    curves.addCurve(QStringLiteral("m"), {p2, p4});
    WeightMapPlot map;
    ActivationPlot act;
    for (QCustomPlot* plot : std::initializer_list<QCustomPlot*>{&hist, &spectrum, &curves, &map, &act}) {
        plot->resize(600, 380);
        const QString base = QString::fromStdString(dir) + QLatin1Char('/') + plot->objectName();
        QString error;
        QVERIFY2(exportPlot(plot, base + ".png", &error), qPrintable(error));
        QVERIFY2(exportPlot(plot, base + ".svg", &error), qPrintable(error));
        QVERIFY2(exportPlot(plot, base + ".pdf", &error), qPrintable(error));
        QCOMPARE(head(base + ".png", 8), QByteArray("\x89PNG\r\n\x1a\n"));
        QCOMPARE(QImage(base + ".png").size(), QSize(600, 380));
        const QByteArray svg = head(base + ".svg", 4096);
        QVERIFY(svg.startsWith("<?xml") || svg.contains("<svg"));
        QVERIFY(svg.contains("<svg"));
        QVERIFY(QFileInfo(base + ".svg").size() > 1000); // drawn content, not an empty document
        QCOMPARE(head(base + ".pdf", 5), QByteArray("%PDF-"));
        QVERIFY(QFileInfo(base + ".pdf").size() > 1000);
        // The SVG read back: valid, the plot's size, and drawn for a look (fonts as on screen?).
        QSvgRenderer svgBack(base + ".svg");
        QVERIFY(svgBack.isValid());
        QCOMPARE(svgBack.viewBox(), QRect(0, 0, 600, 380)); // (its size is in mm, read back at 90 dpi)
        QImage img(600, 380, QImage::Format_ARGB32);
        img.fill(Qt::white);
        QPainter painter(&img);
        svgBack.render(&painter);
        painter.end();
        QDir().mkpath(kPngDir);
        img.save(kPngDir + QLatin1Char('/') + plot->objectName() + QStringLiteral("_from_svg.png"));
    }
    // An explicit size; an unknown suffix fails with a message naming the file.
    const QString big = QString::fromStdString(dir) + "/big.png";
    QVERIFY(exportPlot(&hist, big, nullptr, 1200, 700));
    QCOMPARE(QImage(big).size(), QSize(1200, 700));
    QString error;
    QVERIFY(!exportPlot(&hist, QString::fromStdString(dir) + "/plot.bmpx", &error));
    QVERIFY(error.contains(QStringLiteral("plot.bmpx")));

    // The mask view (custom painted): PNG through grab(), SVG and PDF through render().
    SparsityMaskView view;
    view.resize(500, 360);
    view.setWeights(prune24(gaussian(64 * 64, 8), 64, 64, 1), 64, 64);
    for (const char* suffix : {".png", ".svg", ".pdf"}) {
        const QString path = QString::fromStdString(dir) + "/mask" + suffix;
        QVERIFY2(exportWidget(&view, path, &error), qPrintable(error));
        QVERIFY(QFileInfo(path).size() > 500);
    }
    QCOMPARE(QImage(QString::fromStdString(dir) + "/mask.png").size(), QSize(500, 360) * view.devicePixelRatio());
    QCOMPARE(head(QString::fromStdString(dir) + "/mask.pdf", 5), QByteArray("%PDF-"));
    // One page the widget's size: 500 × 360 px at 96 dpi = 375 × 270 pt.
    QVERIFY(head(QString::fromStdString(dir) + "/mask.pdf", 1 << 20).contains("/MediaBox [0 0 375.000000 270.000000]"));
}

void TestGuiPlots::contextMenuExportsThroughTheDialog()
{
    const QString dir = QString::fromStdString(test::scratchDir());
    HistogramPlot hist;
    hist.resize(500, 320);
    hist.showStats(computeStats(gaussian(5000, 9)));
    SparsityMaskView view;
    view.resize(500, 360);
    view.setWeights(prune24(gaussian(32 * 64, 10), 32, 64, 0), 32, 64);
    // The new plots carry the menu from construction; the others get it with one call.
    SpectrumPlot spectrum;
    ErrorCurvePlot curves;
    WeightMapPlot map;
    installExportMenu(&map);
    installExportMenu(&map); // twice is harmless
    for (QWidget* w : std::initializer_list<QWidget*>{&hist, &spectrum, &curves, &map})
        QCOMPARE(w->contextMenuPolicy(), Qt::CustomContextMenu);

    for (QWidget* w : std::initializer_list<QWidget*>{&hist, &view}) {
        w->show();
        QVERIFY(QTest::qWaitForWindowExposed(w));
        const QString path = dir + QLatin1Char('/') + w->objectName() + QStringLiteral("-menu.png");
        bool sawMenu = false, sawDialog = false;
        // Right-click, pick "Export plot…", type the file name, accept.
        QTimer::singleShot(50, w, [&] {
            auto* menu = qobject_cast<QMenu*>(QApplication::activePopupWidget());
            if (!menu)
                return;
            auto* action = menu->findChild<QAction*>(QStringLiteral("exportPlotAction"));
            if (!action)
                action = [&]() -> QAction* {
                    for (QAction* a : menu->actions())
                        if (a->objectName() == QLatin1String("exportPlotAction"))
                            return a;
                    return nullptr;
                }();
            sawMenu = action && action->text() == QStringLiteral("Export plot…");
            QTimer::singleShot(100, w, [&] {
                auto* dialog = qobject_cast<QFileDialog*>(QApplication::activeModalWidget());
                if (!dialog)
                    return;
                sawDialog = true;
                // Typed as a user would: selectFile() leaves a focused name field alone.
                auto* name = dialog->findChild<QLineEdit*>(QStringLiteral("fileNameEdit"));
                if (name)
                    name->setText(path);
                static_cast<QDialog*>(dialog)->accept(); // QFileDialog::accept() is protected
            });
            if (action)
                menu->setActiveAction(action);
            QTest::keyClick(menu, Qt::Key_Return);
        });
        QContextMenuEvent event(QContextMenuEvent::Mouse, QPoint(40, 40), w->mapToGlobal(QPoint(40, 40)));
        QApplication::sendEvent(w, &event);
        QTRY_VERIFY(QFileInfo::exists(path));
        QVERIFY(sawMenu);
        QVERIFY(sawDialog);
        QCOMPARE(head(path, 4), QByteArray("\x89PNG"));
    }
}

QTEST_MAIN(TestGuiPlots)
// A wide matrix's map is a short strip (the inspector puts it under the
// histogram): its row axis and colour bar must not print labels over each other.
void TestGuiPlots::wideMapLabelsDoNotOverlap()
{
    const int64_t rows = 64, cols = 172;
    const std::vector<float> w = gaussian(static_cast<size_t>(rows * cols), 12);
    WeightMapPlot map;
    map.resize(860, 110);
    map.show(); // a hidden widget gets its size (and the plot its layout) only when shown
    QVERIFY(QTest::qWaitForWindowExposed(&map));
    map.showHeatmap(absHeatmap(w, rows, cols, 256, 256), rows, cols);
    map.replot();
    QVERIFY(map.axisRect()->rect().height() < 60); // the strip this is about
    QCPColorScale* scale = nullptr;
    for (QCPLayoutElement* e : map.plotLayout()->elements(true))
        if (auto* s = qobject_cast<QCPColorScale*>(e))
            scale = s;
    QVERIFY(scale);
    for (QCPAxis* axis : {map.yAxis, scale->axis()}) {
        const QVector<double> ticks = axis->tickVector();
        QVERIFY2(ticks.size() >= 2, "at least two labels");
        const int labelHeight = QFontMetrics(axis->tickLabelFont()).height();
        for (int i = 1; i < ticks.size(); ++i) {
            const double gap = std::abs(axis->coordToPixel(ticks[i]) - axis->coordToPixel(ticks[i - 1]));
            QVERIFY2(gap >= labelHeight, qPrintable(QString("%1: labels %2 and %3 are %4 px apart, a label is %5 px tall")
                                                        .arg(axis->label()).arg(ticks[i - 1]).arg(ticks[i]).arg(gap).arg(labelHeight)));
        }
    }
    savePng(&map, QStringLiteral("weight_map_wide.png"));
}

#include "test_gui_plots.moc"
