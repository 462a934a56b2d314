#pragma once
// ShortGPT's Block Influence of every block as bars (1 − mean cos of the
// block's input and output hidden states), the blocks the step removes in red:
// the chart a user reads to see which blocks barely change the residual stream.
#include <qcustomplot.h>

#include <vector>

namespace ll::gui {

class BlockInfluencePlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit BlockInfluencePlot(QWidget* parent = nullptr);

    // influence[i] of block i; `removed` ascending block indices.
    void showInfluence(const std::vector<double>& influence, const std::vector<int>& removed);
    void clearPlot();

    int bars() const { return static_cast<int>(influence_.size()); }
    int removedBars() const { return static_cast<int>(removed_.size()); }

private:
    QCPBars* kept_;
    QCPBars* removedBars_;
    QCPTextElement* title_;
    std::vector<double> influence_;
    std::vector<int> removed_;
};

} // namespace ll::gui
