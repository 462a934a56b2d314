#pragma once
// Random Hadamard rotations (QuaRot, Ashkboos et al. 2024): an orthogonal Q
// that spreads a vector's outliers over all its coordinates, applied in
// O(n log n) instead of a dense n × n product.
//
//   n = m k, k the largest power of two dividing n (m odd)
//   Q = D (R ⊗ H / √k)
//   D: random ±1 signs (n), H: the k × k Sylvester Hadamard matrix,
//   R: a random m × m orthogonal matrix (QR of a Gaussian; 1 when m = 1).
//
// A row x seen as the m × k matrix X (x[a k + b] = X[a][b]) becomes
//   x Q  = Rᵀ (X ∘ D) H / √k   and   x Qᵀ = (R X H / √k) ∘ D.
// QuaRot uses known Hadamard matrices for the odd factor (12, 20, 28, 36, 172
// …); LayerLab uses a random orthogonal one, which is as orthogonal and needs
// no table. Sizes that are powers of two (Llama's 4096, 2048, head dims) are
// the pure random Hadamard transform.
#include "model/tensor_data.h"

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace ll {

using RowsRef = Eigen::Ref<MatrixRM>;

class RandomHadamard {
public:
    // A rotation of n-vectors drawn from `seed` (the same Q on every platform).
    RandomHadamard(int64_t n, uint64_t seed);

    int64_t size() const { return n_; }
    int64_t oddFactor() const { return m_; }

    // Every row x of X (rows, n) becomes x Q.
    void rotateRows(RowsRef X) const;
    // Every row x of X becomes x Qᵀ (undoes rotateRows).
    void unrotateRows(RowsRef X) const;
    // Q itself (n × n), built with the definition above by dense products
    // (the scalar reference that tests compare the fast transform with).
    MatrixRM denseReference() const;

private:
    int64_t n_ = 0, k_ = 0, m_ = 0;
    std::vector<float> signs_;  // D (n)
    MatrixRM r_;                // R (m, m)
};

// In place, x of length k (a power of two) becomes x H (unnormalised Sylvester
// Hadamard: entries ±1). The scalar reference is the product with
// sylvesterHadamard(k).
void fastWalshHadamard(float* x, int64_t k);
MatrixRM sylvesterHadamard(int64_t k);

} // namespace ll
