#pragma once
// The inverse-Hessian factor that SparseGPT (and GPTQ) sweep over, computed
// as in the reference fasterprune (IST-DASLab/sparsegpt sparsegpt.py):
//   dead = diag(H) == 0:  H_jj = 1 (the caller zeroes W[:, j])
//   H += percdamp * mean(diag H) * I
//   U = cholesky(inverse(H), upper)      so that U^T U = H^-1
// Row j of U, divided by U_jj, is the OBS update that removing weight j
// (after columns < j are fixed) applies to columns >= j; U_jj^2 is that
// weight's [H^-1]_jj in the sub-problem of columns >= j.
// Computed in double (the reference uses float32); returned as float.
#include <Eigen/Core>

#include <vector>

namespace ll {

struct InverseHessianFactor {
    Eigen::MatrixXf upper;        // (in, in) U, upper triangular, U^T U = (H + damp I)^-1
    std::vector<char> dead;       // (in,) 1 where diag(H) was 0
    double damp = 0.0;            // the damping that was added to the diagonal
};

// H: (in, in) symmetric positive semi-definite, any positive multiple of
// X^T X (the reference uses 2 X^T X / n; the sweep is invariant to the scale).
// Throws InvalidArgument when H + damp I is still not positive definite.
InverseHessianFactor inverseHessianFactor(const Eigen::MatrixXf& H, double percdamp);

// The dead-input rule above for the sweeps that factor H themselves (GPTQ,
// SparseGPT): where diag(H) is 0, H_jj = 1 and column j of W is zeroed.
// Returns the dead mask (in,).
template <class WeightMatrix>
std::vector<char> neutralizeDeadInputs(Eigen::MatrixXf& H, WeightMatrix& W)
{
    std::vector<char> dead(static_cast<size_t>(H.cols()), 0);
    for (Eigen::Index j = 0; j < H.cols(); ++j)
        if (H(j, j) == 0.0f) {
            dead[static_cast<size_t>(j)] = 1;
            H(j, j) = 1.0f;
            W.col(j).setZero();
        }
    return dead;
}

} // namespace ll
