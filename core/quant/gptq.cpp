#include "quant/no_fma.h" // first: the grid arithmetic matches torch's (RTN, quant/grid.h)

#include "quant/gptq.h"

#include "util/threads.h"
#include "layer/checks.h"
#include "layer/obs_hessian.h"
#include "quant/gptq_factor.h"
#include "quant/rtn.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <thread>

namespace ll {

namespace {

using ColMatrix = Eigen::MatrixXf; // column-major: a weight column is contiguous

struct Plan {
    int64_t rows = 0, cols = 0;
    bool refit = false;                 // groups refit during the sweep
    int64_t groupCols = 0;              // refit / static: columns per group
    std::vector<int32_t> order;         // sweep position -> column
    std::vector<char> dead;
    ColMatrix Wp;                       // (rows, cols) weights in sweep order (dead columns zeroed)
    std::vector<char> keepP;            // (cols * rows) col-major in sweep order; empty: none
    Eigen::MatrixXf U;                  // reference sweep: upper factor of the permuted, damped H^-1
    GptqSweepFactor factor;             // fast sweep: R = U^-1 scaled by columns (quant/gptq_factor.h)
    GridParams params;
};

bool keptAt(const Plan& p, int64_t r, int64_t k) { return !p.keepP.empty() && p.keepP[static_cast<size_t>(k * p.rows + r)]; }

// The range of rows [r0, r0 + R) over sweep columns [k0, k0 + n); src holds
// those rows (local row 0 = r0) and the columns from srcCol0. Kept weights as 0.
template <class Src>
void refitGroup(Plan& p, const Src& src, int64_t srcCol0, int64_t k0, int64_t n, int64_t group, int64_t r0, int64_t R)
{
    const QuantGrid& g = p.params.grid;
    for (int64_t rr = 0; rr < R; ++rr) {
        const int64_t r = r0 + rr;
        float lo = 0.0f, hi = 0.0f;
        for (int64_t i = 0; i < n; ++i) {
            if (keptAt(p, r, k0 + i))
                continue;
            const float v = src(rr, srcCol0 + i);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const ScaleZero sz = scaleZeroFromRange(lo, hi, g.bits, g.symmetric);
        p.params.scales(r, group) = sz.scale;
        p.params.zeros(r, group) = sz.zero;
    }
}

// Tiled copies between the row-major (out, in) layout and column-major sweep
// order: plain strided loops miss the cache on every element of a large layer.
constexpr int64_t kTile = 32;

ColMatrix gatherColumns(const MatrixRM& src, const std::vector<int32_t>& order)
{
    ColMatrix dst(src.rows(), src.cols());
    for (int64_t r0 = 0; r0 < src.rows(); r0 += kTile)
        for (int64_t k0 = 0; k0 < src.cols(); k0 += kTile)
            for (int64_t k = k0; k < std::min(k0 + kTile, src.cols()); ++k) {
                const int64_t c = order[static_cast<size_t>(k)];
                for (int64_t r = r0; r < std::min(r0 + kTile, src.rows()); ++r)
                    dst(r, k) = src(r, c);
            }
    return dst;
}

MatrixRM scatterColumns(const ColMatrix& src, const std::vector<int32_t>& order)
{
    MatrixRM dst(src.rows(), src.cols());
    for (int64_t r0 = 0; r0 < src.rows(); r0 += kTile)
        for (int64_t k0 = 0; k0 < src.cols(); k0 += kTile)
            for (int64_t k = k0; k < std::min(k0 + kTile, src.cols()); ++k) {
                const int64_t c = order[static_cast<size_t>(k)];
                for (int64_t r = r0; r < std::min(r0 + kTile, src.rows()); ++r)
                    dst(r, c) = src(r, k);
            }
    return dst;
}

Plan makePlan(const MatrixRM& W, const Eigen::MatrixXf& Hin, const GptqOptions& o, bool reference)
{
    validateGrid(o.grid);
    requireFinite(W, "the weight matrix");
    requireGram(Hin, W.cols(), "the GPTQ Hessian");
    if (o.blockSize < 1)
        fail(ErrorCode::InvalidArgument, "", "the GPTQ block size must be >= 1, not " + std::to_string(o.blockSize));
    if (o.staticGroups && o.grid.groupSize <= 0)
        fail(ErrorCode::InvalidArgument, "", "static groups need a group size (--group G)");
    Plan p;
    p.rows = W.rows();
    p.cols = W.cols();
    if (o.keep && static_cast<int64_t>(o.keep->size()) != p.rows * p.cols)
        fail(ErrorCode::InvalidArgument, "", "the keep mask has " + std::to_string(o.keep->size()) + " entries for "
                                                 + std::to_string(p.rows * p.cols) + " weights");
    for (int32_t c : o.lastColumns)
        if (c < 0 || c >= p.cols)
            fail(ErrorCode::InvalidArgument, "", "column " + std::to_string(c) + " is outside the layer's " + std::to_string(p.cols) + " inputs");

    auto rangeSource = [&](const MatrixRM& src) {
        if (!o.keep)
            return src;
        MatrixRM m = src;
        for (int64_t i = 0; i < m.size(); ++i)
            if ((*o.keep)[static_cast<size_t>(i)])
                m.data()[i] = 0.0f;
        return m;
    };

    // Per-row / per-tensor parameters come from W as given (find_params before the dead columns are zeroed).
    if (o.grid.groupSize <= 0)
        p.params = computeGridParams(rangeSource(W), o.grid);

    Eigen::MatrixXf H = Hin;
    MatrixRM Wd = W;
    p.dead = neutralizeDeadInputs(H, Wd);

    if (o.grid.groupSize > 0) {
        p.groupCols = o.grid.groupSize;
        if (o.staticGroups) {
            p.params = computeGridParams(rangeSource(Wd), o.grid);
        } else {
            p.refit = true;
            const int64_t groups = (p.cols + p.groupCols - 1) / p.groupCols;
            p.params.grid = o.grid;
            p.params.rows = p.rows;
            p.params.cols = p.cols;
            p.params.groupCols = p.groupCols;
            p.params.scales = Eigen::MatrixXf::Ones(p.rows, groups);
            p.params.zeros = Eigen::MatrixXf::Zero(p.rows, groups);
        }
    }

    p.order.resize(static_cast<size_t>(p.cols));
    std::iota(p.order.begin(), p.order.end(), 0);
    if (o.actOrder)
        std::stable_sort(p.order.begin(), p.order.end(), [&](int32_t a, int32_t b) { return H(a, a) > H(b, b); });
    if (!o.lastColumns.empty()) {
        std::vector<char> last(static_cast<size_t>(p.cols), 0);
        for (int32_t c : o.lastColumns)
            last[static_cast<size_t>(c)] = 1;
        std::stable_partition(p.order.begin(), p.order.end(), [&](int32_t c) { return !last[static_cast<size_t>(c)]; });
    }

    if (reference) { // the FP64 inverse-then-Cholesky route, independent of quant/gptq_factor.h
        Eigen::MatrixXf Hp(p.cols, p.cols);
        for (int64_t b = 0; b < p.cols; ++b)
            for (int64_t a = 0; a < p.cols; ++a)
                Hp(a, b) = H(p.order[static_cast<size_t>(a)], p.order[static_cast<size_t>(b)]);
        p.U = inverseHessianFactor(Hp, o.percDamp).upper;
    } else {
        p.factor = gptqSweepFactor(H, o.percDamp, p.order);
    }
    p.Wp = gatherColumns(Wd, p.order);
    if (o.keep) {
        p.keepP.resize(static_cast<size_t>(p.rows * p.cols));
        for (int64_t k = 0; k < p.cols; ++k)
            for (int64_t r = 0; r < p.rows; ++r)
                p.keepP[static_cast<size_t>(k * p.rows + r)] =
                    (*o.keep)[static_cast<size_t>(r * p.cols + p.order[static_cast<size_t>(k)])];
    }
    return p;
}

// Quantizes rows [r0, r0 + R) of the column at sweep position k: q and codes
// out, w becomes the error (w - q) / d; returns sum (w - q)^2 / d^2. All
// pointers are to those rows.
double quantizeColumn(const Plan& p, int64_t k, float d, int64_t r0, int64_t R, float* w, float* q, uint8_t* codes,
                      float* losses)
{
    const int maxq = gridMaxQ(p.params.grid.bits);
    // This column's parameters: refit groups by sweep position, else by the column's group.
    const int64_t g = p.refit ? k / p.groupCols : p.order[static_cast<size_t>(k)] / p.params.groupCols;
    const bool perTensor = p.params.scales.rows() == 1;
    const float* sc = &p.params.scales(perTensor ? 0 : r0, g);
    const float* zc = &p.params.zeros(perTensor ? 0 : r0, g);
    const int64_t step = perTensor ? 0 : 1;
    double loss = 0.0;
    for (int64_t i = 0; i < R; ++i) {
        if (keptAt(p, r0 + i, k)) {
            q[i] = w[i];
            codes[i] = 0;
            w[i] = 0.0f;
            losses[i] = 0.0f;
            continue;
        }
        const float s = sc[i * step], z = zc[i * step];
        const int code = quantizeValue(w[i], s, z, maxq);
        codes[i] = static_cast<uint8_t>(code);
        q[i] = dequantizeValue(code, s, z);
        const float e = (w[i] - q[i]) / d;
        loss += static_cast<double>(e) * static_cast<double>(e);
        losses[i] = e * e / 2.0f;
        w[i] = e;
    }
    return loss;
}

GptqResult finish(const Plan& p, const GptqOptions& o, const ColMatrix& Q, const std::vector<uint8_t>& codesP,
                  const ColMatrix& lossP, double loss)
{
    GptqResult res;
    res.dequantized = scatterColumns(Q, p.order);
    res.weightLoss = scatterColumns(lossP, p.order);
    res.codes.assign(static_cast<size_t>(p.rows * p.cols), 0);
    for (int64_t r0 = 0; r0 < p.rows; r0 += kTile)
        for (int64_t k = 0; k < p.cols; ++k) {
            const int64_t c = p.order[static_cast<size_t>(k)];
            for (int64_t r = r0; r < std::min(r0 + kTile, p.rows); ++r)
                res.codes[static_cast<size_t>(r * p.cols + c)] = codesP[static_cast<size_t>(k * p.rows + r)];
        }
    res.params = p.params;
    res.order = p.order;
    res.dead = p.dead;
    res.loss = loss / 2.0;
    bool identity = true;
    for (int64_t k = 0; k < p.cols; ++k)
        identity = identity && p.order[static_cast<size_t>(k)] == k;
    if (p.refit && !identity) { // the column -> group map (stored only for act-order, see bitsPerWeight)
        res.groupIndex.resize(static_cast<size_t>(p.cols));
        for (int64_t k = 0; k < p.cols; ++k)
            res.groupIndex[static_cast<size_t>(p.order[static_cast<size_t>(k)])] = static_cast<int32_t>(k / p.groupCols);
    }
    res.bitsPerWeight = gridBitsPerWeight(o.grid, p.rows, p.cols);
    if (!res.groupIndex.empty() && o.actOrder && p.rows > 0)
        res.bitsPerWeight += 32.0 / static_cast<double>(p.rows);
    return res;
}

} // namespace

namespace {

// Columns per in-block sub-block: the rank-1 updates stay inside it (in cache),
// the rest of the block gets the sub-block's differences as one small GEMM.
constexpr int64_t kSubBlock = 32;

// Columns per block of the sweep: the block size, rounded up to whole groups
// when groups are refit so that a group never straddles two blocks (the sweep
// brings a block's columns up to date only when it reaches the block).
int64_t sweepBlockColumns(const Plan& p, const GptqOptions& o)
{
    if (!p.refit)
        return o.blockSize;
    return (o.blockSize + p.groupCols - 1) / p.groupCols * p.groupCols;
}

// The blocked sweep over rows [r0, r0 + R), left-looking on R = U^-1
// (gptqSweepFactor): with D = W - q, column k's value is
//   w_k = W_k + sum_{j<k} D_j Rs_jk.
// A block starts as W plus one GEMM with every earlier column's D; inside a
// block the updates are eager within a sub-block and lazy (one GEMM per
// sub-block) for the rest of the block. Rows never interact, so each slice of
// rows runs the whole sweep on its own (one slice per thread).
double sweepRows(Plan& p, const GptqOptions& o, int64_t r0, int64_t R, ColMatrix& Q, std::vector<uint8_t>& codesP,
                 ColMatrix& lossP, Progress* progress, bool report)
{
    const int64_t cols = p.cols, B = sweepBlockColumns(p, o), S = std::min(B, kSubBlock);
    const Eigen::MatrixXf& Rs = p.factor.scaled;
    const auto W0 = p.Wp.middleRows(r0, R); // the weights as given, sweep order
    ColMatrix D(R, cols);                   // W - q of the columns done
    ColMatrix Wb(R, B), G;                  // the current block's values
    Eigen::VectorXf w(R);
    double loss = 0.0;
    for (int64_t i1 = 0; i1 < cols; i1 += B) {
        throwIfCancelled(progress);
        const int64_t i2 = std::min(i1 + B, cols), nb = i2 - i1;
        auto Wk = Wb.leftCols(nb);
        Wk = W0.middleCols(i1, nb);
        if (i1 > 0)
            Wk.noalias() += D.leftCols(i1) * Rs.block(0, i1, i1, nb);
        for (int64_t j1 = i1; j1 < i2; j1 += S) {
            const int64_t j2 = std::min(j1 + S, i2);
            for (int64_t k = j1; k < j2; ++k) {
                if (p.refit && k % p.groupCols == 0) {
                    // The group (inside this block) as every earlier column leaves it:
                    // columns from j2 on still lack the updates from [j1, k).
                    const int64_t n = std::min(p.groupCols, cols - k);
                    G = Wk.middleCols(k - i1, n);
                    const int64_t a0 = std::max(k, j2), a1 = k + n;
                    if (a1 > a0 && k > j1)
                        G.middleCols(a0 - k, a1 - a0).noalias() +=
                            D.middleCols(j1, k - j1) * Rs.block(j1, a0, k - j1, a1 - a0);
                    // G now holds the left-looking partial sums W + sum_{j<k} D_j Rs_jc. The
                    // values GPTQ refits on are those its right-looking updates leave (the
                    // optimal compensation for the columns < k), W + (G - W) (I + Rs_gg)^-1
                    // with Rs_gg the group's own block: equal for c = k, not after.
                    G -= W0.middleCols(k, n);
                    Rs.block(k, k, n, n).triangularView<Eigen::UnitUpper>().solveInPlace<Eigen::OnTheRight>(G);
                    G += W0.middleCols(k, n);
                    refitGroup(p, G, 0, k, n, k / p.groupCols, r0, R);
                }
                w = Wk.col(k - i1);
                loss += quantizeColumn(p, k, 1.0f / p.factor.diagonal(k), r0, R, w.data(), Q.col(k).data() + r0,
                                       codesP.data() + k * p.rows + r0, lossP.col(k).data() + r0);
                D.col(k) = W0.col(k) - Q.col(k).segment(r0, R);
                if (k + 1 < j2)
                    Wk.middleCols(k + 1 - i1, j2 - k - 1).noalias() += D.col(k) * Rs.row(k).segment(k + 1, j2 - k - 1);
            }
            if (j2 < i2)
                Wk.middleCols(j2 - i1, i2 - j2).noalias() += D.middleCols(j1, j2 - j1) * Rs.block(j1, j2, j2 - j1, i2 - j2);
        }
        if (report && progress)
            progress->report(static_cast<double>(i2) / static_cast<double>(cols), "GPTQ");
    }
    return loss;
}

} // namespace

namespace {

// GPTAQ's P (sweep order): alpha · (strictly upper part of A Uᵀ) · U, A = ΔXᵀX permuted.
Eigen::MatrixXf asymmetryTransfer(const Plan& p, const Eigen::MatrixXf& dXXt, double alpha)
{
    if (dXXt.rows() != p.cols || dXXt.cols() != p.cols)
        fail(ErrorCode::InvalidArgument, "", "the GPTAQ asymmetry matrix is " + std::to_string(dXXt.rows()) + " x "
                                                 + std::to_string(dXXt.cols()) + " for " + std::to_string(p.cols) + " inputs");
    Eigen::MatrixXd A(p.cols, p.cols);
    for (int64_t b = 0; b < p.cols; ++b)
        for (int64_t a = 0; a < p.cols; ++a) {
            const int32_t ra = p.order[static_cast<size_t>(a)], rb = p.order[static_cast<size_t>(b)];
            // Dead inputs were zeroed in W; their asymmetry column goes too (as the reference does).
            A(a, b) = p.dead[static_cast<size_t>(rb)] ? 0.0 : static_cast<double>(dXXt(ra, rb));
        }
    const Eigen::MatrixXd U = p.U.cast<double>();
    Eigen::MatrixXd M = A * U.transpose();
    M.triangularView<Eigen::Lower>().setZero();
    return (alpha * (M * U.triangularView<Eigen::Upper>())).cast<float>();
}

// GPTQ's right-looking sweep (the reference's lazy batches) over rows
// [r0, r0 + R) with GPTAQ's second update: column k's error moves by U[k, :]
// as in GPTQ, its value before rounding by P[k, :]. A block's later columns
// take both from every column of the block at once. Groups are refit from the
// block's current values (blocks hold whole groups).
double sweepAsymmetric(Plan& p, const GptqOptions& o, const Eigen::MatrixXf& P, int64_t r0, int64_t R, ColMatrix& Q,
                       std::vector<uint8_t>& codesP, ColMatrix& lossP, Progress* progress, bool report)
{
    const int64_t cols = p.cols, B = sweepBlockColumns(p, o);
    ColMatrix Wr = p.Wp.middleRows(r0, R);
    ColMatrix err(R, B), before(R, B);
    double loss = 0.0;
    for (int64_t i1 = 0; i1 < cols; i1 += B) {
        throwIfCancelled(progress);
        const int64_t i2 = std::min(i1 + B, cols), nb = i2 - i1;
        for (int64_t k = i1; k < i2; ++k) {
            if (p.refit && k % p.groupCols == 0)
                refitGroup(p, Wr, k, k, std::min(p.groupCols, cols - k), k / p.groupCols, r0, R);
            before.col(k - i1) = Wr.col(k);
            loss += quantizeColumn(p, k, p.U(k, k), r0, R, Wr.col(k).data(), Q.col(k).data() + r0,
                                   codesP.data() + k * p.rows + r0, lossP.col(k).data() + r0);
            err.col(k - i1) = Wr.col(k); // quantizeColumn left (w - q) / d there
            if (k + 1 < i2) {
                const int64_t n = i2 - k - 1;
                Wr.middleCols(k + 1, n).noalias() -= err.col(k - i1) * p.U.row(k).segment(k + 1, n);
                Wr.middleCols(k + 1, n).noalias() += before.col(k - i1) * P.row(k).segment(k + 1, n);
            }
        }
        if (i2 < cols) {
            Wr.rightCols(cols - i2).noalias() -= err.leftCols(nb) * p.U.block(i1, i2, nb, cols - i2);
            Wr.rightCols(cols - i2).noalias() += before.leftCols(nb) * P.block(i1, i2, nb, cols - i2);
        }
        if (report && progress)
            progress->report(static_cast<double>(i2) / static_cast<double>(cols), "GPTAQ");
    }
    return loss;
}

// Rows never interact: sweep(r0, R, Q, codes, losses, report) runs on slices
// of rows, two per thread (for balance on a busy machine), none under 64 rows.
// Progress is reported from the caller's thread only.
template <class Sweep>
GptqResult sweepInRowSlices(const Plan& p, const GptqOptions& o, Sweep&& sweep)
{
    const int64_t rows = p.rows, cols = p.cols;
    ColMatrix Q(rows, cols), lossP(rows, cols);
    std::vector<uint8_t> codesP(static_cast<size_t>(rows * cols), 0);
    const int64_t parts = std::clamp<int64_t>(rows / 64, 1, 2 * computeThreads());
    std::vector<double> losses(static_cast<size_t>(parts), 0.0);
    const std::thread::id caller = std::this_thread::get_id();
    runParallel(parts, [&](int64_t part) {
        const int64_t r0 = rows * part / parts, r1 = rows * (part + 1) / parts;
        losses[static_cast<size_t>(part)] = sweep(r0, r1 - r0, Q, codesP, lossP, std::this_thread::get_id() == caller);
    });
    double loss = 0.0;
    for (double l : losses)
        loss += l;
    return finish(p, o, Q, codesP, lossP, loss);
}

} // namespace

GptqResult gptqQuantize(const MatrixRM& W, const Eigen::MatrixXf& H, const GptqOptions& o, Progress* progress)
{
    if (o.asymmetry) { // GPTAQ: the right-looking sweep on the reference's factor U
        Plan p = makePlan(W, H, o, true);
        const Eigen::MatrixXf P = asymmetryTransfer(p, *o.asymmetry, o.alpha);
        return sweepInRowSlices(p, o, [&](int64_t r0, int64_t R, ColMatrix& Q, std::vector<uint8_t>& codes, ColMatrix& losses, bool report) {
            return sweepAsymmetric(p, o, P, r0, R, Q, codes, losses, progress, report);
        });
    }
    Plan p = makePlan(W, H, o, false);
    return sweepInRowSlices(p, o, [&](int64_t r0, int64_t R, ColMatrix& Q, std::vector<uint8_t>& codes, ColMatrix& losses, bool report) {
        return sweepRows(p, o, r0, R, Q, codes, losses, progress, report);
    });
}

GptqResult gptqQuantizeRef(const MatrixRM& W, const Eigen::MatrixXf& H, const GptqOptions& o)
{
    Plan p = makePlan(W, H, o, true);
    const int64_t rows = p.rows, cols = p.cols;
    ColMatrix Q(rows, cols), lossP(rows, cols);
    std::vector<uint8_t> codesP(static_cast<size_t>(rows * cols), 0);
    std::vector<float> w(static_cast<size_t>(rows)), before(static_cast<size_t>(rows));
    const Eigen::MatrixXf P = o.asymmetry ? asymmetryTransfer(p, *o.asymmetry, o.alpha) : Eigen::MatrixXf();
    double loss = 0.0;
    for (int64_t i1 = 0; i1 < cols; i1 += o.blockSize) {
        const int64_t i2 = std::min<int64_t>(i1 + o.blockSize, cols);
        for (int64_t k = i1; k < i2; ++k) {
            if (p.refit && k % p.groupCols == 0)
                refitGroup(p, p.Wp, k, k, std::min(p.groupCols, cols - k), k / p.groupCols, 0, rows);
            for (int64_t r = 0; r < rows; ++r)
                before[static_cast<size_t>(r)] = w[static_cast<size_t>(r)] = p.Wp(r, k);
            loss += quantizeColumn(p, k, p.U(k, k), 0, rows, w.data(), Q.col(k).data(), codesP.data() + k * rows,
                                   lossP.col(k).data());
            for (int64_t c = k + 1; c < cols; ++c)
                for (int64_t r = 0; r < rows; ++r) {
                    p.Wp(r, c) -= w[static_cast<size_t>(r)] * p.U(k, c);
                    if (o.asymmetry) // GPTAQ: the value before rounding moves by P
                        p.Wp(r, c) += before[static_cast<size_t>(r)] * P(k, c);
                }
        }
    }
    return finish(p, o, Q, codesP, lossP, loss);
}

QuantizedLayer quantizedLayerFromGptq(const MatrixRM& W, GptqResult r, const LayerInputs& in, const GptqOptions& o)
{
    QuantizedLayer out;
    out.method = "gptq " + o.grid.label() + (o.actOrder ? " act-order" : "") + (o.staticGroups ? " static" : "");
    out.packed.format = PackedQuant::Format::IntGrid;
    out.packed.bits = o.grid.bits;
    out.packed.grid = std::move(r.params);
    out.packed.groupIndex = std::move(r.groupIndex);
    out.packed.order = std::move(r.order);
    int64_t kept = 0;
    if (o.keep)
        for (int64_t i = 0; i < W.size(); ++i)
            if ((*o.keep)[static_cast<size_t>(i)]) {
                ++kept;
                out.packed.outliers.rows.push_back(static_cast<int32_t>(i / W.cols()));
                out.packed.outliers.cols.push_back(static_cast<int32_t>(i % W.cols()));
                out.packed.outliers.values.push_back(r.dequantized.data()[i]);
            }
    out.packed.codes = std::move(r.codes);
    addGridBits(out.bits, o.grid, W.rows(), W.cols(), W.size() - kept);
    // A g_idx is stored for act-order only: kept columns moved last (OWQ)
    // leave the quantized columns' groups in natural order, which a loader
    // rebuilds from the list of kept columns.
    if (!out.packed.groupIndex.empty() && o.actOrder)
        out.bits.groupIndex = 32.0 * static_cast<double>(W.cols());
    out.bits.outliers = 48.0 * static_cast<double>(kept);
    out.loss = r.loss;
    int64_t dead = 0;
    for (char d : r.dead)
        dead += d;
    if (dead > 0)
        out.info["dead_columns"] = static_cast<double>(dead);
    finishQuantizedLayer(out, W, std::move(r.dequantized), in);
    return out;
}

QuantizedLayer gptqLayer(const MatrixRM& W, const LayerInputs& in, const GptqOptions& o, Progress* progress)
{
    if (!in.gram)
        fail(ErrorCode::InvalidArgument, "", "GPTQ needs the calibration Gram matrix (the Hessian) of the layer's inputs");
    return quantizedLayerFromGptq(W, gptqQuantize(W, *in.gram, o, progress), in, o);
}

} // namespace ll
