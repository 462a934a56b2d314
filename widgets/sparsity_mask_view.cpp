#include "sparsity_mask_view.h"

#include "format.h"
#include "plot_export.h"

#include <QContextMenuEvent>
#include <QCursor>
#include <QMenu>
#include <QMouseEvent>
#include <QPainter>
#include <QToolButton>
#include <QWheelEvent>

#include <algorithm>
#include <bit>
#include <cmath>

namespace ll::gui {

namespace {
const QColor kKeptColor(76, 120, 168);     // calm blue, as the other plots' data
const QColor kPrunedColor(236, 236, 236);  // light: pruned weights read as "gone"
const QColor kBarColor(172, 172, 172);     // margins: the pruned share, light so that the mean line reads over it
const QColor kMeanColor(242, 142, 43);     // orange: the overall sparsity in the margins
const QColor kViolationColor(228, 87, 86); // red: groups that break N:M
const QColor kFrameColor(160, 160, 160);
const QColor kTextColor(60, 60, 60);
const QColor kSecondaryColor(110, 110, 110);
constexpr int kBand = 44;   // margin bar plots: width (rows) and height (columns)
constexpr int kGap = 4;
constexpr int kSide = 8;

// Kept bits of one row's columns [c0, c1).
int64_t keptBetween(const uint64_t* row, int64_t c0, int64_t c1)
{
    if (c1 <= c0)
        return 0;
    const int64_t w0 = c0 >> 6, w1 = (c1 - 1) >> 6;
    const uint64_t first = ~uint64_t(0) << (c0 & 63);
    const uint64_t last = (c1 & 63) == 0 ? ~uint64_t(0) : (uint64_t(1) << (c1 & 63)) - 1;
    if (w0 == w1)
        return std::popcount(row[w0] & first & last);
    int64_t n = std::popcount(row[w0] & first) + std::popcount(row[w1] & last);
    for (int64_t w = w0 + 1; w < w1; ++w)
        n += std::popcount(row[w]);
    return n;
}

// "100 %" only when every group is valid: 99.96 % must not round up to it.
QString validShareText(int64_t valid, int64_t total)
{
    if (total > 0 && valid == total)
        return QStringLiteral("100 %");
    const double pct = total > 0 ? std::floor(1000.0 * static_cast<double>(valid) / static_cast<double>(total)) / 10.0 : 0.0;
    return QStringLiteral("%1 %").arg(pct, 0, 'f', 1);
}
} // namespace

SparsityMaskView::SparsityMaskView(QWidget* parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("sparsityMaskView"));
    setMouseTracking(true);
    setFocusPolicy(Qt::WheelFocus);
    fitButton_ = new QToolButton(this);
    fitButton_->setObjectName(QStringLiteral("fitButton"));
    fitButton_->setText(tr("Fit"));
    fitButton_->setToolTip(tr("Show the whole matrix (double-click does the same)"));
    fitButton_->setAutoRaise(true);
    connect(fitButton_, &QToolButton::clicked, this, &SparsityMaskView::fitView);
    clear();
}

void SparsityMaskView::clear()
{
    setMask(SparsityMask());
}

void SparsityMaskView::setWeights(std::span<const float> values, int64_t rows, int64_t cols)
{
    if (rows < 0 || cols < 0 || static_cast<int64_t>(values.size()) != rows * cols) {
        clear();
        return;
    }
    SparsityMask mask(rows, cols, false);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            if (values[static_cast<size_t>(r * cols + c)] != 0.0f)
                mask.set(r, c, true);
    setMask(std::move(mask));
}

void SparsityMaskView::setMask(SparsityMask mask)
{
    mask_ = std::move(mask);
    rowSparsity_ = mask_.rowSparsity();
    columnSparsity_ = mask_.columnSparsity();
    for (auto [shares, prefix] : {std::pair{&rowSparsity_, &rowPrefix_}, std::pair{&columnSparsity_, &columnPrefix_}}) {
        prefix->assign(shares->size() + 1, 0.0);
        for (size_t i = 0; i < shares->size(); ++i)
            (*prefix)[i + 1] = (*prefix)[i] + (*shares)[i];
    }
    computePattern();
    hoverText_.clear();
    view_ = QRectF(0, 0, static_cast<double>(mask_.cols()), static_cast<double>(mask_.rows()));
    imageValid_ = false;
    emit visibleRangeChanged(view_);
    update();
}

void SparsityMaskView::setPattern(std::optional<NMPattern> pattern)
{
    if (pattern && (pattern->m < 2 || pattern->m > 64 || pattern->n < 1 || pattern->n >= pattern->m))
        pattern.reset();
    explicitPattern_ = pattern;
    computePattern();
    update();
}

void SparsityMaskView::computePattern()
{
    const int64_t rows = mask_.rows(), cols = mask_.cols(), wpr = mask_.wordsPerRow();
    const uint64_t* words = mask_.words().data();
    pattern_ = explicitPattern_;
    detected_ = false;
    groups_ = validGroups_ = 0;
    if (!pattern_ && mask_.size() > 0) {
        const double kept = 1.0 - mask_.sparsity();
        for (const int m : {2, 4, 8, 16}) {
            // Tight: the fullest group holds no more than the average group (rounded),
            // so that a few extra zeros (dead rows) still read as the pattern.
            const int nMax = std::min(m - 1, static_cast<int>(std::floor(kept * m + 0.5)));
            if (nMax < 1 || m > cols)
                continue;
            int64_t fullest = 0;
            for (int64_t r = 0; r < rows && fullest <= nMax; ++r)
                for (int64_t c0 = 0; c0 < cols && fullest <= nMax; c0 += m)
                    fullest = std::max(fullest, keptBetween(words + r * wpr, c0, std::min(c0 + m, cols)));
            if (fullest >= 1 && fullest <= nMax) {
                pattern_ = NMPattern{static_cast<int>(fullest), m};
                detected_ = true;
                break;
            }
        }
    }
    if (!pattern_)
        return;
    const int m = pattern_->m, n = pattern_->n;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c0 = 0; c0 < cols; c0 += m) {
            ++groups_;
            validGroups_ += keptBetween(words + r * wpr, c0, std::min<int64_t>(c0 + m, cols)) <= n ? 1 : 0;
        }
}

double SparsityMaskView::patternValidShare() const
{
    return groups_ > 0 ? static_cast<double>(validGroups_) / static_cast<double>(groups_) : 0.0;
}

double SparsityMaskView::sparsity() const
{
    return mask_.sparsity();
}

double SparsityMaskView::keptFraction(int64_t r0, int64_t r1, int64_t c0, int64_t c1) const
{
    r0 = std::max<int64_t>(r0, 0), c0 = std::max<int64_t>(c0, 0);
    r1 = std::min(r1, mask_.rows()), c1 = std::min(c1, mask_.cols());
    if (r1 <= r0 || c1 <= c0)
        return 0.0;
    int64_t kept = 0;
    for (int64_t r = r0; r < r1; ++r)
        kept += keptBetween(mask_.words().data() + r * mask_.wordsPerRow(), c0, c1);
    return static_cast<double>(kept) / static_cast<double>((r1 - r0) * (c1 - c0));
}

QColor SparsityMaskView::shade(double keptFraction)
{
    const double t = std::clamp(keptFraction, 0.0, 1.0);
    auto mix = [t](int pruned, int kept) { return static_cast<int>(std::lround(pruned + t * (kept - pruned))); };
    return QColor(mix(kPrunedColor.red(), kKeptColor.red()), mix(kPrunedColor.green(), kKeptColor.green()),
                  mix(kPrunedColor.blue(), kKeptColor.blue()));
}

QString SparsityMaskView::summaryText() const
{
    if (!hasMask())
        return tr("No mask");
    QString text = tr("Sparsity %1 · %2 of %3 weights pruned")
                       .arg(formatShare(sparsity()), formatExact(mask_.prunedCount()), formatExact(mask_.size()));
    if (!pattern_)
        return text + tr(" · no N:M pattern");
    text += tr(" · %1:%2 valid in %3 of groups")
                .arg(pattern_->n).arg(pattern_->m).arg(validShareText(validGroups_, groups_));
    return detected_ ? text + tr(" (detected)") : text;
}

QString SparsityMaskView::rangeText() const
{
    if (!hasMask())
        return QString();
    const auto r0 = static_cast<int64_t>(std::floor(view_.top())), r1 = static_cast<int64_t>(std::ceil(view_.bottom())) - 1;
    const auto c0 = static_cast<int64_t>(std::floor(view_.left())), c1 = static_cast<int64_t>(std::ceil(view_.right())) - 1;
    const double ppc = pixelsPerColumn(), ppr = pixelsPerRow();
    const QString zoom = ppc >= 1.0 && ppr >= 1.0
                             ? tr("a weight is %1 × %2 px").arg(ppc, 0, 'g', 3).arg(ppr, 0, 'g', 3)
                             : tr("a pixel is %1 × %2 weights").arg(1.0 / ppr, 0, 'g', 3).arg(1.0 / ppc, 0, 'g', 3);
    return tr("rows %1–%2 of %3 · cols %4–%5 of %6 · %7")
        .arg(formatExact(r0), formatExact(r1), formatExact(mask_.rows()), formatExact(c0), formatExact(c1),
             formatExact(mask_.cols()), zoom);
}

QRect SparsityMaskView::matrixArea() const
{
    const int line = fontMetrics().height();
    const int top = line + 10 + kBand + kGap, bottom = height() - (line + 8);
    const int left = kSide + kBand + kGap, right = width() - kSide;
    return QRect(QPoint(left, top), QPoint(std::max(left, right - 1), std::max(top, bottom - 1)));
}

double SparsityMaskView::pixelsPerColumn() const
{
    return view_.width() > 0 ? matrixArea().width() / view_.width() : 0.0;
}

double SparsityMaskView::pixelsPerRow() const
{
    return view_.height() > 0 ? matrixArea().height() / view_.height() : 0.0;
}

bool SparsityMaskView::isFit() const
{
    return view_ == QRectF(0, 0, static_cast<double>(mask_.cols()), static_cast<double>(mask_.rows()));
}

void SparsityMaskView::setVisibleRange(const QRectF& range)
{
    setView(range);
}

// Clamps to the matrix (never beyond its edges, never more than kMaxCellPixels a weight).
void SparsityMaskView::setView(QRectF v)
{
    if (!hasMask())
        return;
    const QRect area = matrixArea();
    const double cols = static_cast<double>(mask_.cols()), rows = static_cast<double>(mask_.rows());
    const double w = std::clamp(v.width(), std::min(cols, area.width() / kMaxCellPixels), cols);
    const double h = std::clamp(v.height(), std::min(rows, area.height() / kMaxCellPixels), rows);
    const QRectF next(std::clamp(v.x(), 0.0, cols - w), std::clamp(v.y(), 0.0, rows - h), w, h);
    if (next == view_)
        return;
    view_ = next;
    imageValid_ = false;
    // What is under the cursor has changed (or the cursor is elsewhere).
    if (underMouse())
        updateHover(mapFromGlobal(QCursor::pos()));
    else
        hoverText_.clear();
    emit visibleRangeChanged(view_);
    update();
}

void SparsityMaskView::fitView()
{
    setView(QRectF(0, 0, static_cast<double>(mask_.cols()), static_cast<double>(mask_.rows())));
}

void SparsityMaskView::zoomBy(double factor, QPointF anchor)
{
    if (!hasMask() || !(factor > 0))
        return;
    const QRect area = matrixArea();
    const double ax = std::clamp((anchor.x() - area.left()) / std::max(1, area.width()), 0.0, 1.0);
    const double ay = std::clamp((anchor.y() - area.top()) / std::max(1, area.height()), 0.0, 1.0);
    const double mx = view_.x() + ax * view_.width(), my = view_.y() + ay * view_.height();
    const double w = view_.width() / factor, h = view_.height() / factor;
    setView(QRectF(mx - ax * w, my - ay * h, w, h));
}

void SparsityMaskView::zoomIn()
{
    zoomBy(2.0, QRectF(matrixArea()).center());
}

void SparsityMaskView::zoomOut()
{
    zoomBy(0.5, QRectF(matrixArea()).center());
}

// The weights under each pixel: a partition of the range when a pixel holds
// one or more weights, the weight under the pixel's centre when zoomed in.
std::vector<SparsityMaskView::Span> SparsityMaskView::pixelSpans(double start, double perPixel, int pixels,
                                                                 int64_t limit) const
{
    std::vector<Span> spans(static_cast<size_t>(std::max(0, pixels)));
    for (int j = 0; j < pixels; ++j) {
        int64_t a = std::llround(start + j * perPixel), b = std::llround(start + (j + 1) * perPixel);
        if (b <= a) {
            a = static_cast<int64_t>(std::floor(start + (j + 0.5) * perPixel));
            b = a + 1;
        }
        a = std::clamp<int64_t>(a, 0, limit - 1);
        spans[static_cast<size_t>(j)] = {a, std::clamp<int64_t>(b, a + 1, limit)};
    }
    return spans;
}

void SparsityMaskView::renderCells()
{
    const QRect area = matrixArea();
    const qreal dpr = devicePixelRatioF();
    const int w = std::max(1, static_cast<int>(std::lround(area.width() * dpr)));
    const int h = std::max(1, static_cast<int>(std::lround(area.height() * dpr)));
    image_ = QImage(w, h, QImage::Format_RGB32);
    image_.setDevicePixelRatio(dpr);
    imageValid_ = true;
    const std::vector<Span> cs = pixelSpans(view_.x(), view_.width() / w, w, mask_.cols());
    const std::vector<Span> rs = pixelSpans(view_.y(), view_.height() / h, h, mask_.rows());
    QRgb lut[256];
    for (int i = 0; i < 256; ++i)
        lut[i] = shade(i / 255.0).rgb();
    std::vector<int64_t> kept(static_cast<size_t>(w));
    const uint64_t* words = mask_.words().data();
    for (int i = 0; i < h; ++i) {
        auto* line = reinterpret_cast<QRgb*>(image_.scanLine(i));
        // Zoomed in, several pixel rows show the same matrix row: copy it.
        if (i > 0 && rs[i].a == rs[i - 1].a && rs[i].b == rs[i - 1].b) {
            std::copy_n(reinterpret_cast<const QRgb*>(image_.constScanLine(i - 1)), w, line);
            continue;
        }
        std::fill(kept.begin(), kept.end(), 0);
        for (int64_t r = rs[i].a; r < rs[i].b; ++r) {
            const uint64_t* row = words + r * mask_.wordsPerRow();
            for (int j = 0; j < w; ++j)
                kept[static_cast<size_t>(j)] += keptBetween(row, cs[j].a, cs[j].b);
        }
        const auto nRows = static_cast<double>(rs[i].b - rs[i].a);
        for (int j = 0; j < w; ++j) {
            const double share = static_cast<double>(kept[static_cast<size_t>(j)]) / (nRows * static_cast<double>(cs[j].b - cs[j].a));
            line[j] = lut[std::clamp(static_cast<int>(std::lround(share * 255.0)), 0, 255)];
        }
    }
}

void SparsityMaskView::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    p.fillRect(rect(), Qt::white); // white like the QCustomPlot plots beside it, also when exported
    const QRect area = matrixArea();
    const int line = fontMetrics().height();
    const QRect header(kSide, 0, width() - 2 * kSide - fitButton_->width() - 4, line + 10);
    QFont bold = font();
    bold.setBold(true);
    p.setFont(bold);
    p.setPen(kTextColor);
    p.drawText(header, Qt::AlignLeft | Qt::AlignVCenter,
               QFontMetrics(bold).elidedText(summaryText(), Qt::ElideRight, header.width()));
    p.setFont(font());
    if (!hasMask()) {
        p.setPen(kSecondaryColor);
        p.drawText(area, Qt::AlignCenter, tr("No mask"));
        return;
    }
    if (!imageValid_ || image_.size() != QSize(std::lround(area.width() * devicePixelRatioF()),
                                               std::lround(area.height() * devicePixelRatioF())))
        renderCells();
    p.drawImage(area.topLeft(), image_);
    drawCellOverlay(p, area);
    p.setPen(kFrameColor);
    p.setBrush(Qt::NoBrush);
    p.drawRect(area.adjusted(-1, -1, 0, 0));
    drawMargins(p, area);

    // Footer: the visible range on the left, what is under the cursor (or the colour key) on the right.
    const QRect footer(kSide, area.bottom() + 1, width() - 2 * kSide, height() - area.bottom() - 1);
    p.setPen(kSecondaryColor);
    const QString right = hoverText_;
    const int rightWidth = right.isEmpty() ? 130 : fontMetrics().horizontalAdvance(right) + 8;
    p.drawText(footer.adjusted(0, 0, -rightWidth, 0), Qt::AlignLeft | Qt::AlignVCenter,
               fontMetrics().elidedText(rangeText(), Qt::ElideRight, footer.width() - rightWidth));
    if (!right.isEmpty()) {
        p.drawText(footer, Qt::AlignRight | Qt::AlignVCenter, right);
        return;
    }
    // The colour key: ■ kept ■ pruned.
    const int box = line / 2 + 2, y = footer.center().y() - box / 2;
    int x = footer.right() - fontMetrics().horizontalAdvance(tr("kept")) - fontMetrics().horizontalAdvance(tr("pruned"))
            - 2 * box - 16;
    for (const auto& [color, label] : {std::pair{kKeptColor, tr("kept")}, std::pair{kPrunedColor, tr("pruned")}}) {
        p.fillRect(QRect(x, y, box, box), color);
        p.setPen(kFrameColor);
        p.drawRect(QRect(x, y, box, box).adjusted(0, 0, -1, -1));
        x += box + 3;
        p.setPen(kSecondaryColor);
        p.drawText(QRect(x, footer.top(), 200, footer.height()), Qt::AlignLeft | Qt::AlignVCenter, label);
        x += fontMetrics().horizontalAdvance(label) + 10;
    }
}

// Zoomed in: cell borders, the N:M group boundaries, groups keeping more than n in red.
void SparsityMaskView::drawCellOverlay(QPainter& p, const QRect& area)
{
    const double ppc = pixelsPerColumn(), ppr = pixelsPerRow();
    const auto c0 = static_cast<int64_t>(std::floor(view_.left())), c1 = static_cast<int64_t>(std::ceil(view_.right()));
    const auto r0 = static_cast<int64_t>(std::floor(view_.top())), r1 = static_cast<int64_t>(std::ceil(view_.bottom()));
    auto xOf = [&](int64_t c) { return area.left() + (static_cast<double>(c) - view_.left()) * ppc; };
    auto yOf = [&](int64_t r) { return area.top() + (static_cast<double>(r) - view_.top()) * ppr; };
    p.save();
    p.setClipRect(area);
    if (ppc >= 6.0) {
        p.setPen(QPen(QColor(255, 255, 255, 200), 1.0));
        for (int64_t c = c0 + 1; c < c1; ++c)
            p.drawLine(QPointF(xOf(c), area.top()), QPointF(xOf(c), area.bottom() + 1));
    }
    if (ppr >= 6.0) {
        p.setPen(QPen(QColor(255, 255, 255, 200), 1.0));
        for (int64_t r = r0 + 1; r < r1; ++r)
            p.drawLine(QPointF(area.left(), yOf(r)), QPointF(area.right() + 1, yOf(r)));
    }
    if (pattern_ && ppc * pattern_->m >= 10.0) {
        const int m = pattern_->m;
        p.setPen(QPen(QColor(40, 40, 40, 170), ppc >= 6.0 ? 1.5 : 1.0));
        for (int64_t c = (c0 / m + 1) * m; c < c1; c += m)
            p.drawLine(QPointF(xOf(c), area.top()), QPointF(xOf(c), area.bottom() + 1));
        // Bounded by the area: at most area.height() / 3 rows × area.width() / 10 groups.
        if (ppr >= 3.0) {
            p.setPen(QPen(kViolationColor, 2.0));
            p.setBrush(Qt::NoBrush);
            for (int64_t r = r0; r < r1; ++r)
                for (int64_t g = (c0 / m) * m; g < c1; g += m) {
                    const int64_t end = std::min<int64_t>(g + m, mask_.cols());
                    if (keptBetween(mask_.words().data() + r * mask_.wordsPerRow(), g, end) > pattern_->n)
                        p.drawRect(QRectF(QPointF(xOf(g), yOf(r)), QPointF(xOf(end), yOf(r + 1))).adjusted(1, 1, -1, -1));
                }
        }
    }
    p.restore();
}

// The pruned share per row (left, bars growing away from the matrix) and per column (top).
void SparsityMaskView::drawMargins(QPainter& p, const QRect& area)
{
    const QRect rowBand(area.left() - kGap - kBand, area.top(), kBand, area.height());
    const QRect colBand(area.left(), area.top() - kGap - kBand, area.width(), kBand);
    p.fillRect(rowBand, QColor(246, 246, 246));
    p.fillRect(colBand, QColor(246, 246, 246));
    const std::vector<Span> rs = pixelSpans(view_.y(), view_.height() / area.height(), area.height(), mask_.rows());
    const std::vector<Span> cs = pixelSpans(view_.x(), view_.width() / area.width(), area.width(), mask_.cols());
    for (int i = 0; i < area.height(); ++i) {
        const double s = (rowPrefix_[rs[i].b] - rowPrefix_[rs[i].a]) / static_cast<double>(rs[i].b - rs[i].a);
        const int len = static_cast<int>(std::lround(s * kBand));
        p.fillRect(QRect(rowBand.right() + 1 - len, area.top() + i, len, 1), kBarColor);
    }
    for (int j = 0; j < area.width(); ++j) {
        const double s = (columnPrefix_[cs[j].b] - columnPrefix_[cs[j].a]) / static_cast<double>(cs[j].b - cs[j].a);
        const int len = static_cast<int>(std::lround(s * kBand));
        p.fillRect(QRect(area.left() + j, colBand.bottom() + 1 - len, 1, len), kBarColor);
    }
    // The overall sparsity as a reference line in both margins.
    const double mean = sparsity();
    p.setPen(QPen(kMeanColor.darker(110), 1.5));
    const double xm = rowBand.right() + 1 - mean * kBand, ym = colBand.bottom() + 1 - mean * kBand;
    p.drawLine(QPointF(xm, rowBand.top()), QPointF(xm, rowBand.bottom() + 1));
    p.drawLine(QPointF(colBand.left(), ym), QPointF(colBand.right() + 1, ym));
    // The corner explains the margins: bars are the pruned share, full band = 100 %.
    QFont small = font();
    small.setPointSizeF(std::max(6.0, font().pointSizeF() - 2));
    p.setFont(small);
    p.setPen(kSecondaryColor);
    const QRect corner(rowBand.left(), colBand.top(), kBand, kBand);
    p.drawText(corner, Qt::AlignRight | Qt::AlignBottom | Qt::TextWordWrap, tr("pruned\nshare"));
    p.setFont(font());
}

void SparsityMaskView::updateHover(QPointF pos)
{
    QString text;
    const QRect area = matrixArea();
    if (hasMask()) {
        const double ppc = pixelsPerColumn(), ppr = pixelsPerRow();
        const auto col = static_cast<int64_t>(std::floor(view_.x() + (pos.x() - area.left()) / ppc));
        const auto row = static_cast<int64_t>(std::floor(view_.y() + (pos.y() - area.top()) / ppr));
        const bool inCols = pos.x() >= area.left() && pos.x() <= area.right();
        const bool inRows = pos.y() >= area.top() && pos.y() <= area.bottom();
        const bool validRow = row >= 0 && row < mask_.rows(), validCol = col >= 0 && col < mask_.cols();
        if (inCols && inRows && validRow && validCol) {
            if (ppc >= 1.0 && ppr >= 1.0) {
                text = tr("row %1, col %2: %3").arg(row).arg(col).arg(mask_.kept(row, col) ? tr("kept") : tr("pruned"));
                if (pattern_) {
                    const int64_t g = col / pattern_->m * pattern_->m;
                    text += tr(" · group %1 keeps %2 of %3")
                                .arg(col / pattern_->m)
                                .arg(keptBetween(mask_.words().data() + row * mask_.wordsPerRow(), g,
                                                 std::min<int64_t>(g + pattern_->m, mask_.cols())))
                                .arg(std::min<int64_t>(pattern_->m, mask_.cols() - g));
                }
            } else {
                const auto i = static_cast<int>(pos.y() - area.top()), j = static_cast<int>(pos.x() - area.left());
                const Span rs = pixelSpans(view_.y(), 1.0 / ppr, i + 1, mask_.rows())[static_cast<size_t>(i)];
                const Span cs = pixelSpans(view_.x(), 1.0 / ppc, j + 1, mask_.cols())[static_cast<size_t>(j)];
                text = tr("rows %1–%2 × cols %3–%4: %5 kept")
                           .arg(rs.a).arg(rs.b - 1).arg(cs.a).arg(cs.b - 1)
                           .arg(formatShare(keptFraction(rs.a, rs.b, cs.a, cs.b)));
            }
        } else if (inRows && validRow && pos.x() < area.left()) {
            text = tr("row %1: %2 pruned").arg(row).arg(formatShare(rowSparsity_[static_cast<size_t>(row)]));
        } else if (inCols && validCol && pos.y() < area.top()) {
            text = tr("col %1: %2 pruned").arg(col).arg(formatShare(columnSparsity_[static_cast<size_t>(col)]));
        }
    }
    if (text != hoverText_) {
        hoverText_ = text;
        update();
    }
}

void SparsityMaskView::resizeEvent(QResizeEvent*)
{
    const int line = fontMetrics().height();
    const QSize hint = fitButton_->sizeHint();
    fitButton_->setGeometry(width() - kSide - hint.width(), (line + 10 - hint.height()) / 2, hint.width(), hint.height());
    imageValid_ = false;
    setView(view_); // the largest zoom depends on the area
}

void SparsityMaskView::wheelEvent(QWheelEvent* event)
{
    // 1.25× per notch, around the weight under the cursor.
    zoomBy(std::pow(1.25, event->angleDelta().y() / 120.0), event->position());
    event->accept();
}

void SparsityMaskView::mousePressEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton && matrixArea().contains(event->position().toPoint())) {
        dragging_ = true;
        dragLast_ = event->position();
        setCursor(Qt::ClosedHandCursor);
    }
}

void SparsityMaskView::mouseMoveEvent(QMouseEvent* event)
{
    if (dragging_) {
        const QPointF d = event->position() - dragLast_;
        dragLast_ = event->position();
        setView(view_.translated(-d.x() / pixelsPerColumn(), -d.y() / pixelsPerRow()));
    }
    updateHover(event->position());
}

void SparsityMaskView::mouseReleaseEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton && dragging_) {
        dragging_ = false;
        unsetCursor();
    }
}

void SparsityMaskView::mouseDoubleClickEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton)
        fitView();
}

void SparsityMaskView::leaveEvent(QEvent*)
{
    if (!hoverText_.isEmpty()) {
        hoverText_.clear();
        update();
    }
}

void SparsityMaskView::contextMenuEvent(QContextMenuEvent* event)
{
    QMenu menu(this);
    menu.setObjectName(QStringLiteral("plotContextMenu"));
    menu.addAction(tr("Fit to view"), this, &SparsityMaskView::fitView)->setEnabled(hasMask() && !isFit());
    menu.addAction(tr("Zoom in"), this, &SparsityMaskView::zoomIn)->setEnabled(hasMask());
    menu.addAction(tr("Zoom out"), this, &SparsityMaskView::zoomOut)->setEnabled(hasMask() && !isFit());
    menu.addSeparator();
    addExportAction(&menu, this);
    menu.exec(event->globalPos());
}

} // namespace ll::gui
