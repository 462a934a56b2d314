#include "kernels/gemm.h"

#include <Eigen/Core>

namespace ll {

namespace {

using Index = Eigen::Index;
using RowMajorMap = Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
using ConstRowMajorMap =
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;

// C = A @ op(B) through Eigen's blocked kernel, called directly with no
// parallel info: the serial path of what `C.noalias() = A * B` runs.
template <int RhsOrder>
void serialGemm(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                int64_t k)
{
    using namespace Eigen::internal;
    RowMajorMap(c, m, n, Eigen::OuterStride<>(ldc)).setZero(); // the kernel accumulates
    if (k == 0)
        return;
    gemm_blocking_space<Eigen::RowMajor, float, float, Eigen::Dynamic, Eigen::Dynamic, Eigen::Dynamic> blocking(m, n, k, 1,
                                                                                                              true);
    general_matrix_matrix_product<Index, float, Eigen::RowMajor, false, float, RhsOrder, false, Eigen::RowMajor, 1>::run(
        m, n, k, a, lda, b, ldb, c, 1, ldc, 1.0f, blocking, nullptr);
}

} // namespace

void gemmABt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
             int64_t k)
{
    if (m == 1) {
        // One row (a decoding step): Eigen's matrix-vector kernel, which never threads.
        Eigen::Map<Eigen::RowVectorXf>(c, n).noalias() =
            Eigen::Map<const Eigen::RowVectorXf>(a, k) * ConstRowMajorMap(b, n, k, Eigen::OuterStride<>(ldb)).transpose();
        return;
    }
    // B (n, k) row-major is B^T (k, n) column-major with the same leading dimension.
    serialGemm<Eigen::ColMajor>(a, lda, b, ldb, c, ldc, m, n, k);
}

void gemmAB(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
            int64_t k)
{
    if (m == 1) {
        Eigen::Map<Eigen::RowVectorXf>(c, n).noalias() =
            Eigen::Map<const Eigen::RowVectorXf>(a, k) * ConstRowMajorMap(b, k, n, Eigen::OuterStride<>(ldb));
        return;
    }
    serialGemm<Eigen::RowMajor>(a, lda, b, ldb, c, ldc, m, n, k);
}

} // namespace ll
