#pragma once
// The factor GPTQ sweeps over, U upper triangular with U^T U = (H + damp I)^-1,
// from one Cholesky and one triangular inverse (2/3 n^3 flops) instead of the
// inverse-then-Cholesky route of layer/obs_hessian.h (8/3 n^3):
//   J = the reversal permutation, J (H + damp I) J = L L^T (L lower)
//   (H + damp I)^-1 = J L^-T L^-1 J = (J L^-1 J)^T (J L^-1 J),  J L^-1 J upper
// so U = J L^-1 J (a Cholesky factor with a positive diagonal is unique, so
// this is the same U). Computed in double up to kFactorDoubleMaxColumns
// columns (under a second there), in float above (as the GPTQ reference
// implementation does throughout: FP64 would double the time and the memory
// of a 11008-column factor, 15 s and 1 GB); returned as float.
// The GPTQ sweep itself reads R = U^-1 (gptqSweepFactor below), which needs
// no triangular inverse at all; U stays for callers that want H^-1's factor.
// Float roundings differ between the two forms: on the protocol's table every
// GPTQ run reproduces the reference to 1e-6 except gptq_w3_asym_row (+0.5 %).
#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace ll {

// The arithmetic of the factorization; Auto = double up to kFactorDoubleMaxColumns.
enum class FactorPrecision { Auto, Double, Float };
inline constexpr Eigen::Index kFactorDoubleMaxColumns = 4096;
bool factorInDouble(Eigen::Index n, FactorPrecision precision);

// H: (n, n) symmetric, finite; order: empty, or the permutation to apply first
// (the factor of H[order][:, order]). damp = percdamp * mean(diag H) is added to
// the diagonal. Throws InvalidArgument when H + damp I is not positive definite.
Eigen::MatrixXf gptqInverseFactor(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order = {},
                                  FactorPrecision precision = FactorPrecision::Auto);

// What the GPTQ sweep reads instead of U: R = U^-1 = J L J (upper triangular,
// no inverse needed: n^3/3 flops), scaled by columns. The sweep in this form is
//   w_k = W_k + sum_{j<k} (W_j - q_j) R_jk / R_kk
// (W the weights as given, q the quantized values), the same update as
// w_k = W_k - sum_{j<k} e_j U_jk with e_j = (w_j - q_j) / U_jj.
struct GptqSweepFactor {
    Eigen::MatrixXf scaled;   // (n, n) R_jk / R_kk for j < k, zero on and below the diagonal
    Eigen::VectorXf diagonal; // (n,) R_kk = 1 / U_kk
};
GptqSweepFactor gptqSweepFactor(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order = {},
                                FactorPrecision precision = FactorPrecision::Auto);

// In place: the lower triangle of A (symmetric positive definite) becomes its
// Cholesky factor L (A = L L^T).
// Blocked and threaded; the strict upper part is scratch. False when A is not
// positive definite.
bool choleskyLowerInPlace(Eigen::Ref<Eigen::MatrixXd> A);
bool choleskyLowerInPlace(Eigen::Ref<Eigen::MatrixXf> A);

// In place: L (lower triangular; the strict upper part is ignored and zeroed)
// becomes L^-1, by recursive halving so that nearly all the work is
// triangular-times-dense products, split across threads.
void invertLowerTriangular(Eigen::Ref<Eigen::MatrixXd> L);
void invertLowerTriangular(Eigen::Ref<Eigen::MatrixXf> L);

} // namespace ll
