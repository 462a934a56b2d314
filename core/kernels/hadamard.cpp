#include "kernels/hadamard.h"

#include "util/error.h"
#include "util/random.h"
#include "util/threads.h"

#include <Eigen/QR>

#include <cmath>
#include <string>

namespace ll {

void fastWalshHadamard(float* x, int64_t k)
{
    for (int64_t h = 1; h < k; h *= 2)
        for (int64_t i = 0; i < k; i += 2 * h)
            for (int64_t j = i; j < i + h; ++j) {
                const float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

MatrixRM sylvesterHadamard(int64_t k)
{
    MatrixRM h = MatrixRM::Ones(1, 1);
    while (h.rows() < k) {
        const int64_t s = h.rows();
        MatrixRM next(2 * s, 2 * s);
        next << h, h, h, -h;
        h = std::move(next);
    }
    return h;
}

RandomHadamard::RandomHadamard(int64_t n, uint64_t seed) : n_(n)
{
    if (n < 1)
        fail(ErrorCode::InvalidArgument, "", "a rotation needs a size of at least 1, not " + std::to_string(n));
    k_ = n & -n; // the largest power of two dividing n
    m_ = n / k_;
    SplitMix64Bits bits(seed);
    signs_.resize(static_cast<size_t>(n));
    for (float& s : signs_)
        s = (bits.next() >> 63) ? -1.0f : 1.0f;
    // R: Q of the QR decomposition of a Gaussian matrix, columns signed so that
    // R's diagonal is positive (then Q is Haar-distributed and unique).
    Eigen::MatrixXd g(m_, m_);
    Gaussian gauss(seed ^ 0x517cc1b727220a95ULL);
    for (int64_t i = 0; i < m_; ++i)
        for (int64_t j = 0; j < m_; ++j)
            g(i, j) = gauss.next();
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(m_, m_);
    const Eigen::MatrixXd upper = qr.matrixQR().triangularView<Eigen::Upper>();
    for (int64_t j = 0; j < m_; ++j)
        if (upper(j, j) < 0)
            q.col(j) = -q.col(j);
    r_ = q.cast<float>();
}

namespace {

// Rows [begin, end) of X, one at a time, with a scratch row for the odd factor.
template <class PerRow>
void forRows(RowsRef X, int64_t n, const PerRow& perRow)
{
    if (X.cols() != n)
        fail(ErrorCode::InvalidArgument, "",
             "a rotation of size " + std::to_string(n) + " applied to rows of " + std::to_string(X.cols()));
    const int64_t rows = X.rows();
    const int64_t chunk = 64;
    runParallel((rows + chunk - 1) / chunk, [&](int64_t c) {
        std::vector<float> scratch(static_cast<size_t>(n));
        for (int64_t r = c * chunk; r < std::min(rows, (c + 1) * chunk); ++r)
            perRow(X.row(r).data(), scratch.data());
    });
}

// Y (m × k) = A (m × m) X (m × k), row-major, Y and X distinct.
void mixRows(const MatrixRM& A, bool transposeA, const float* x, float* y, int64_t m, int64_t k)
{
    for (int64_t i = 0; i < m; ++i) {
        float* yi = y + i * k;
        std::fill(yi, yi + k, 0.0f);
        for (int64_t a = 0; a < m; ++a) {
            const float w = transposeA ? A(a, i) : A(i, a);
            const float* xa = x + a * k;
            for (int64_t b = 0; b < k; ++b)
                yi[b] += w * xa[b];
        }
    }
}

} // namespace

void RandomHadamard::rotateRows(RowsRef X) const
{
    const float norm = 1.0f / std::sqrt(static_cast<float>(k_));
    forRows(X, n_, [&](float* x, float* scratch) {
        for (int64_t i = 0; i < n_; ++i)
            x[i] *= signs_[static_cast<size_t>(i)] * norm;
        for (int64_t a = 0; a < m_; ++a)
            fastWalshHadamard(x + a * k_, k_);
        if (m_ > 1) {
            mixRows(r_, true, x, scratch, m_, k_); // Rᵀ X
            std::copy(scratch, scratch + n_, x);
        }
    });
}

void RandomHadamard::unrotateRows(RowsRef X) const
{
    const float norm = 1.0f / std::sqrt(static_cast<float>(k_));
    forRows(X, n_, [&](float* x, float* scratch) {
        if (m_ > 1) {
            mixRows(r_, false, x, scratch, m_, k_); // R X
            std::copy(scratch, scratch + n_, x);
        }
        for (int64_t a = 0; a < m_; ++a)
            fastWalshHadamard(x + a * k_, k_);
        for (int64_t i = 0; i < n_; ++i)
            x[i] *= signs_[static_cast<size_t>(i)] * norm;
    });
}

MatrixRM RandomHadamard::denseReference() const
{
    const MatrixRM h = sylvesterHadamard(k_) / std::sqrt(static_cast<float>(k_));
    MatrixRM q(n_, n_);
    for (int64_t a = 0; a < m_; ++a)
        for (int64_t c = 0; c < m_; ++c)
            q.block(a * k_, c * k_, k_, k_) = r_(a, c) * h;
    for (int64_t i = 0; i < n_; ++i)
        q.row(i) *= signs_[static_cast<size_t>(i)];
    return q;
}

} // namespace ll
