#pragma once
// Where the large weights sit: for a matrix a downsampled map of max |w| per
// block (outlier input channels show as bright columns), for a vector (norm
// weights) its values by index. A square matrix keeps square cells: the
// shorter side of the plot shows the whole matrix and the other side pads it.
#include "stats/tensor_stats.h"

#include <qcustomplot.h>

#include <vector>

namespace ll::gui {

class WeightMapPlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit WeightMapPlot(QWidget* parent = nullptr);

    // `rows` × `cols` is the full matrix; the heatmap is its downsampled map.
    void showHeatmap(const Heatmap& map, int64_t rows, int64_t cols);
    void showProfile(const std::vector<float>& values);
    void showMessage(const QString& message);

    QCPColorMap* colorMap() const { return colorMap_; }
    bool showsHeatmap() const { return colorMap_->visible(); }
    // A heatmap of a square matrix (its cells are drawn square).
    bool showsSquareMatrix() const { return showsHeatmap() && squareCells_; }

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void showOnly(bool heatmap, bool profile);
    // Square matrix: ranges so that a row and a column take the same pixels, the whole matrix in view.
    void fitSquareCells();
    void fitTickCounts();

    QCPTextElement* title_;
    QCPColorMap* colorMap_;
    QCPColorScale* colorScale_;
    QCPMarginGroup* margins_;
    QCPGraph* profile_;
    QCPItemText* message_;
    bool squareCells_ = false;
    QCPRange fullX_, fullY_;   // the whole matrix, cell edges included
};

} // namespace ll::gui
