#pragma once
// Which weights of an (out, in) matrix a pruning keeps. Zoomed out, each pixel
// covers a block of weights and its shade is the block's kept fraction;
// zoomed in, each weight is a cell, with the N:M groups outlined and groups
// that break the pattern in red. The margins show the pruned share per output
// row (left) and per input column (top); the header the overall sparsity and
// how many N:M groups meet the pattern.
//
// Only the visible part is rendered, from the mask's bits with popcounts over
// each pixel's block, so an 11008 × 4096 matrix costs one pass over its rows
// at most, per repaint after a zoom or pan.
#include "layer/sparsity_mask.h"

#include <QImage>
#include <QWidget>

#include <optional>
#include <span>
#include <vector>

class QToolButton;

namespace ll::gui {

class SparsityMaskView : public QWidget {
    Q_OBJECT
public:
    explicit SparsityMaskView(QWidget* parent = nullptr);

    // Kept where the value is not 0; `values` is (rows, cols) row-major.
    void setWeights(std::span<const float> values, int64_t rows, int64_t cols);
    void setMask(SparsityMask mask);
    void clear();
    const SparsityMask& mask() const { return mask_; }
    bool hasMask() const { return mask_.size() > 0; }

    // The N:M pattern to check and draw; nullopt detects one: the first of
    // m = 2, 4, 8, 16 whose fullest group keeps no more than the average group
    // (kept fraction × m, rounded), i.e. a pattern the mask was pruned to.
    void setPattern(std::optional<NMPattern> pattern);
    std::optional<NMPattern> pattern() const { return pattern_; } // set or detected
    bool patternDetected() const { return detected_; }
    // The share of groups (all rows) keeping at most n of m; 0 without a pattern.
    double patternValidShare() const;
    int64_t patternGroups() const { return groups_; }
    int64_t patternValidGroups() const { return validGroups_; }

    double sparsity() const;
    const std::vector<double>& rowSparsity() const { return rowSparsity_; }
    const std::vector<double>& columnSparsity() const { return columnSparsity_; }
    // "sparsity 50.0 % · 2 of 4 weights pruned · 2:4 valid in 100 % of groups".
    QString summaryText() const;
    // The line under the matrix: the visible rows and columns and the zoom.
    QString rangeText() const;

    // The part of the matrix shown, in weights: x = first column, y = first row.
    QRectF visibleRange() const { return view_; }
    void setVisibleRange(const QRectF& range); // clamped to the matrix and the largest zoom
    bool isFit() const;
    // Where the cells are drawn, in widget pixels.
    QRect matrixArea() const;
    double pixelsPerColumn() const;
    double pixelsPerRow() const;
    // The cells as last rendered (one pixel per device pixel of matrixArea()).
    const QImage& cellImage() const { return image_; }
    // Kept share of rows [r0, r1) × columns [c0, c1).
    double keptFraction(int64_t r0, int64_t r1, int64_t c0, int64_t c1) const;
    // The colour of a block with this kept fraction.
    static QColor shade(double keptFraction);

    // A weight never grows beyond this many pixels.
    static constexpr double kMaxCellPixels = 48.0;

public slots:
    void fitView();
    // factor > 1 zooms in, keeping the weight under `anchor` (widget pixels) in place.
    void zoomBy(double factor, QPointF anchor);
    void zoomIn();
    void zoomOut();

signals:
    void visibleRangeChanged(const QRectF& range);

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void leaveEvent(QEvent* event) override;
    void contextMenuEvent(QContextMenuEvent* event) override;

public:
    QSize sizeHint() const override { return {640, 440}; }
    QSize minimumSizeHint() const override { return {240, 180}; }

private:
    struct Span {
        int64_t a, b; // [a, b) weights under one pixel
    };
    std::vector<Span> pixelSpans(double start, double perPixel, int pixels, int64_t limit) const;
    void renderCells();
    void computePattern();
    void setView(QRectF view);
    void updateHover(QPointF pos);
    void drawMargins(QPainter& p, const QRect& area);
    void drawCellOverlay(QPainter& p, const QRect& area);
    int keptInRowSpan(int64_t r, int64_t c0, int64_t c1) const;

    SparsityMask mask_;
    std::vector<double> rowSparsity_, columnSparsity_;
    std::vector<double> rowPrefix_, columnPrefix_; // prefix sums of the pruned shares, for the margins
    std::optional<NMPattern> explicitPattern_, pattern_;
    bool detected_ = false;
    int64_t groups_ = 0, validGroups_ = 0;

    QRectF view_;
    QImage image_;
    bool imageValid_ = false;
    QString hoverText_;
    QPointF dragLast_;
    bool dragging_ = false;
    QToolButton* fitButton_;
};

} // namespace ll::gui
