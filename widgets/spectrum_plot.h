#pragma once
// The singular values of a weight matrix on a log axis, with the chosen rank
// marked: the kept values shaded, a line between σ_r and σ_r+1, and the share
// of the energy (Σ σ², i.e. ||W||_F²) the rank keeps, which is what a
// rank-r truncation preserves. The cumulative energy runs on the right axis.
#include <qcustomplot.h>

#include <cstdint>
#include <span>
#include <vector>

namespace ll::gui {

class SpectrumPlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit SpectrumPlot(QWidget* parent = nullptr);

    // Singular values in any order (shown largest first); rank is clamped to [0, n].
    void showSpectrum(std::span<const double> singularValues, int64_t rank);
    void showSpectrum(std::span<const float> singularValues, int64_t rank);
    void setRank(int64_t rank);
    void clearPlot();

    int64_t rank() const { return rank_; }
    int64_t size() const { return static_cast<int64_t>(sigma_.size()); }
    const std::vector<double>& singularValues() const { return sigma_; } // descending
    // Σ_{i<rank} σ_i² / Σ σ_i² (0 without a spectrum).
    double keptEnergy() const;
    // "rank 32 keeps 91.2 % of the energy".
    QString energyText() const;
    // The x position of the rank line (between index rank and rank + 1).
    double rankLineX() const;

    // Energy share of the first `rank` values of a descending spectrum.
    static double energyShare(const std::vector<double>& descending, int64_t rank);

signals:
    // A click (not a drag) on the plot: the rank up to the clicked index, already applied.
    void rankPicked(int64_t rank);

private:
    void rebuild();
    void rebuildRank();

    QCPTextElement* title_;
    QCPGraph* kept_;
    QCPGraph* dropped_;
    QCPGraph* cumulative_;
    QCPItemStraightLine* rankLine_;
    QCPItemText* rankLabel_;
    QCPItemText* message_;
    std::vector<double> sigma_;
    std::vector<double> cumEnergy_; // cumEnergy_[i] = share of the first i values, i = 0..n
    int64_t rank_ = 0;
    QPoint pressPos_;
};

} // namespace ll::gui
