#include "quant/gptq_factor.h"

#include "util/threads.h"
#include "util/error.h"

#include <Eigen/Cholesky>

#include <algorithm>
#include <string>

namespace ll {

namespace {

template <typename S>
using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;

// Triangular products by blocks of columns (rows): each block is one small
// triangular product and one GEMM over the rest, and blocks run on separate
// threads, heaviest first (Eigen's triangular products are single-threaded
// and slower than its GEMM).
constexpr Eigen::Index kProductBlock = 256;

// T = B L, L (h, h) lower triangular: T[:, blk] = B[:, blk] L[blk, blk] + B[:, after] L[after, blk].
template <typename S>
void timesLowerOnRight(Eigen::Ref<Mat<S>> T, const Eigen::Ref<const Mat<S>>& B, const Eigen::Ref<const Mat<S>>& L)
{
    const Eigen::Index h = L.rows();
    const int64_t blocks = (h + kProductBlock - 1) / kProductBlock;
    runParallel(blocks, [&](int64_t j) {
        const Eigen::Index c0 = j * kProductBlock, w = std::min(kProductBlock, h - c0), after = c0 + w;
        auto Tj = T.middleCols(c0, w);
        Tj.noalias() = B.middleCols(c0, w) * L.block(c0, c0, w, w).template triangularView<Eigen::Lower>();
        if (after < h)
            Tj.noalias() += B.middleCols(after, h - after) * L.block(after, c0, h - after, w);
    });
}

// X = -L T, L (m, m) lower triangular: X[blk, :] = -(L[blk, blk] T[blk, :] + L[blk, before] T[before, :]).
template <typename S>
void negatedLowerTimes(Eigen::Ref<Mat<S>> X, const Eigen::Ref<const Mat<S>>& L, const Eigen::Ref<const Mat<S>>& T)
{
    const Eigen::Index m = L.rows();
    const int64_t blocks = (m + kProductBlock - 1) / kProductBlock;
    runParallel(blocks, [&](int64_t j) {
        const Eigen::Index r0 = (blocks - 1 - j) * kProductBlock, w = std::min(kProductBlock, m - r0);
        auto Xj = X.middleRows(r0, w);
        Xj.noalias() = -(L.block(r0, r0, w, w).template triangularView<Eigen::Lower>() * T.middleRows(r0, w));
        if (r0 > 0)
            Xj.noalias() -= L.block(r0, 0, w, r0) * T.topRows(r0);
    });
}

template <typename S>
void invertLowerTriangularT(Eigen::Ref<Mat<S>> L)
{
    const Eigen::Index n = L.rows();
    if (n <= 64) { // forward substitution against the identity
        Mat<S> I = Mat<S>::Identity(n, n);
        L.template triangularView<Eigen::Lower>().solveInPlace(I);
        L = I;
        return;
    }
    // [A 0; B C]^-1 = [A^-1 0; -C^-1 B A^-1  C^-1]; A and C are independent.
    const Eigen::Index h = n / 2, m = n - h;
    auto A = L.topLeftCorner(h, h);
    auto B = L.bottomLeftCorner(m, h);
    auto C = L.bottomRightCorner(m, m);
    runParallel(2, [&](int64_t i) {
        invertLowerTriangularT<S>(i == 0 ? Eigen::Ref<Mat<S>>(A) : Eigen::Ref<Mat<S>>(C));
    });
    // T = B A^-1, then B = -C^-1 T, as GEMMs on blocks spread over threads.
    Mat<S> T(m, h);
    timesLowerOnRight<S>(T, B, A);
    negatedLowerTimes<S>(B, C, T);
    L.topRightCorner(h, m).setZero();
}

template <typename S>
bool choleskyLowerInPlaceT(Eigen::Ref<Mat<S>> A)
{
    const Eigen::Index n = A.rows();
    constexpr Eigen::Index kPanel = 512;
    if (n <= kPanel) {
        Eigen::LLT<Eigen::Ref<Mat<S>>, Eigen::Lower> llt(A);
        return llt.info() == Eigen::Success;
    }
    // Right-looking, by panels of kPanel columns: factor the diagonal block,
    // solve the panel below it, then update the trailing lower triangle with
    // GEMMs on column slices spread over threads (Eigen's own LLT runs its
    // rank updates on one thread).
    for (Eigen::Index k = 0; k < n; k += kPanel) {
        const Eigen::Index b = std::min(kPanel, n - k), rest = n - k - b;
        auto A11 = A.block(k, k, b, b);
        Eigen::LLT<Eigen::Ref<Mat<S>>, Eigen::Lower> llt(A11);
        if (llt.info() != Eigen::Success)
            return false;
        if (rest == 0)
            break;
        auto A21 = A.block(k + b, k, rest, b);
        // A21 <- A21 L11^-T, by slices of rows.
        const int64_t rowParts = std::min<int64_t>(4 * computeThreads(), std::max<Eigen::Index>(1, rest / 64));
        runParallel(rowParts, [&](int64_t p) {
            const Eigen::Index r0 = rest * p / rowParts, r1 = rest * (p + 1) / rowParts;
            auto S21 = A21.middleRows(r0, r1 - r0);
            A11.template triangularView<Eigen::Lower>().transpose().template solveInPlace<Eigen::OnTheRight>(S21);
        });
        // A22 -= A21 A21^T, lower part: column slice [c, c+w) needs rows c.. only.
        constexpr Eigen::Index kSlice = 256;
        const int64_t slices = (rest + kSlice - 1) / kSlice;
        runParallel(slices, [&](int64_t j) {
            const Eigen::Index c = j * kSlice, w = std::min(kSlice, rest - c);
            A.block(k + b + c, k + b + c, rest - c, w).noalias() -=
                A21.middleRows(c, rest - c) * A21.middleRows(c, w).transpose();
        });
    }
    return true;
}

// L with J P^T (H + damp I) P J = L L^T (lower triangle; the upper is scratch).
template <typename S>
Mat<S> reversedCholesky(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order)
{
    const Eigen::Index n = H.rows();
    // Hr = J P^T H P J: column b of Hr is column src(b) of H, gathered (H is column-major).
    auto src = [&](Eigen::Index k) { return order.empty() ? n - 1 - k : order[static_cast<size_t>(n - 1 - k)]; };
    Mat<S> L(n, n);
    double mean = 0.0;
    for (Eigen::Index b = 0; b < n; ++b) {
        const float* col = H.col(src(b)).data();
        S* out = L.col(b).data();
        for (Eigen::Index a = b; a < n; ++a) // the lower triangle is all the factorization reads
            out[a] = static_cast<S>(col[src(a)]);
        mean += static_cast<double>(out[b]);
    }
    mean /= static_cast<double>(std::max<Eigen::Index>(n, 1));
    L.diagonal().array() += static_cast<S>(percdamp * mean);
    if (!choleskyLowerInPlaceT<S>(L))
        fail(ErrorCode::InvalidArgument, "",
             "the calibration Hessian is not positive definite even after damping " + std::to_string(percdamp)
                 + " x mean(diag H); use more calibration tokens or more damping");
    return L;
}

// J M J as float: reversing both indices of a column-major matrix reverses its storage.
template <typename S>
Eigen::MatrixXf reversedToFloat(const Mat<S>& M)
{
    const Eigen::Index n = M.rows();
    Eigen::MatrixXf out(n, n);
    const S* s = M.data();
    float* d = out.data();
    const Eigen::Index total = n * n;
    for (Eigen::Index i = 0; i < total; ++i)
        d[i] = static_cast<float>(s[total - 1 - i]);
    return out;
}

template <typename S>
Eigen::MatrixXf inverseFactorIn(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order)
{
    Mat<S> L = reversedCholesky<S>(H, percdamp, order);
    invertLowerTriangularT<S>(L);
    return reversedToFloat<S>(L); // U = J L^-1 J
}

template <typename S>
GptqSweepFactor sweepFactorIn(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order)
{
    Mat<S> L = reversedCholesky<S>(H, percdamp, order);
    const Eigen::Index n = L.rows();
    // R = J L J; in reversed indices R(j, k) / R(k, k) is L(a, b) / L(b, b) with a = n-1-j > b = n-1-k.
    GptqSweepFactor f;
    f.diagonal.resize(n);
    for (Eigen::Index b = 0; b < n; ++b) {
        const S d = L(b, b);
        f.diagonal(n - 1 - b) = static_cast<float>(d);
        L.col(b).tail(n - 1 - b) /= d;
        L.col(b).head(b + 1).setZero(); // the scratch upper part and the diagonal
    }
    f.scaled = reversedToFloat<S>(L);
    return f;
}

} // namespace

void invertLowerTriangular(Eigen::Ref<Eigen::MatrixXd> L) { invertLowerTriangularT<double>(L); }
void invertLowerTriangular(Eigen::Ref<Eigen::MatrixXf> L) { invertLowerTriangularT<float>(L); }
bool choleskyLowerInPlace(Eigen::Ref<Eigen::MatrixXd> A) { return choleskyLowerInPlaceT<double>(A); }
bool choleskyLowerInPlace(Eigen::Ref<Eigen::MatrixXf> A) { return choleskyLowerInPlaceT<float>(A); }

namespace {
void checkFactorInputs(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order)
{
    const Eigen::Index n = H.rows();
    if (H.cols() != n || (!order.empty() && static_cast<Eigen::Index>(order.size()) != n))
        fail(ErrorCode::InvalidArgument, "", "the GPTQ Hessian must be square and match the column order");
    if (!(percdamp >= 0.0))
        fail(ErrorCode::InvalidArgument, "", "the damping fraction must be >= 0, not " + std::to_string(percdamp));
}
} // namespace

bool factorInDouble(Eigen::Index n, FactorPrecision precision)
{
    return precision == FactorPrecision::Double || (precision == FactorPrecision::Auto && n <= kFactorDoubleMaxColumns);
}

Eigen::MatrixXf gptqInverseFactor(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order,
                                  FactorPrecision precision)
{
    checkFactorInputs(H, percdamp, order);
    const Eigen::Index n = H.rows();
    return factorInDouble(n, precision) ? inverseFactorIn<double>(H, percdamp, order)
                                        : inverseFactorIn<float>(H, percdamp, order);
}

GptqSweepFactor gptqSweepFactor(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order,
                                FactorPrecision precision)
{
    checkFactorInputs(H, percdamp, order);
    return factorInDouble(H.rows(), precision) ? sweepFactorIn<double>(H, percdamp, order)
                                               : sweepFactorIn<float>(H, percdamp, order);
}

} // namespace ll
