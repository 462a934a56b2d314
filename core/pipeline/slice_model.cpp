#include "pipeline/slice_model.h"

#include "engine/transformer.h"
#include "pipeline/store_values.h"
#include "pipeline/rotate_model.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ll {

namespace {

// Σ_t x̂_tᵀ x̂_t of the rows of x after RMS normalisation (the norms' outputs without their weights).
void addNormalisedCovariance(const MatrixRM& x, Eigen::MatrixXd& C)
{
    MatrixRM n = x;
    for (int64_t r = 0; r < n.rows(); ++r) {
        const double rms = std::sqrt(n.row(r).cast<double>().squaredNorm() / static_cast<double>(n.cols()));
        if (rms > 0.0)
            n.row(r) /= static_cast<float>(rms);
    }
    C.noalias() += (n.transpose() * n).cast<double>();
}

} // namespace

nlohmann::json SliceResult::toJson() const
{
    return {{"method", "slicegpt"},
            {"hidden_before", hiddenBefore},
            {"hidden_after", hiddenAfter},
            {"kept_energy", keptEnergy},
            {"eigenvalues", eigenvalues},
            {"calibration_tokens", calibrationTokens},
            {"seconds", seconds}};
}

SliceResult sliceModel(const Model& source, const SliceOptions& o, std::span<const int32_t> calibrationTokens,
                       Progress* progress)
{
    const auto started = std::chrono::steady_clock::now();
    checkRotatable(source);
    if (!(o.slicing >= 0.0 && o.slicing < 1.0))
        fail(ErrorCode::InvalidArgument, source.path, "slicing must be in [0, 1), not " + std::to_string(o.slicing));
    if (calibrationTokens.empty())
        fail(ErrorCode::InvalidArgument, source.path, "SliceGPT needs calibration text (the PCA of the hidden states)");
    const int64_t d = source.config.hidden;
    const int64_t k = std::max<int64_t>(1, d - static_cast<int64_t>(std::floor(o.slicing * static_cast<double>(d))));

    // The covariance of the normalised residual stream at every block's input and at the end.
    const std::vector<int32_t> windows = calibrationWindows(calibrationTokens, o.calibration);
    const int64_t ctx = o.calibration.context;
    Eigen::MatrixXd C = Eigen::MatrixXd::Zero(d, d);
    {
        const Transformer t(source);
        MatrixRM x = t.embedWindows(windows, ctx);
        for (int b = 0; b < t.layers(); ++b) {
            throwIfCancelled(progress);
            addNormalisedCovariance(x, C);
            t.runBlocks(x, ctx, b, b);
            if (progress)
                progress->report(0.8 * (b + 1) / static_cast<double>(t.layers()), "PCA of the hidden states");
        }
        addNormalisedCovariance(x, C);
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(C);
    if (eig.info() != Eigen::Success)
        fail(ErrorCode::InvalidArgument, source.path, "the PCA of the hidden states did not converge");
    // Descending: the eigen solver returns ascending eigenvalues.
    const Eigen::MatrixXf Qk = eig.eigenvectors().rowwise().reverse().leftCols(k).cast<float>();
    SliceResult r;
    for (int64_t i = d - 1; i >= 0; --i)
        r.eigenvalues.push_back(std::max(0.0, eig.eigenvalues()[i]));
    double total = 0.0, kept = 0.0;
    for (int64_t i = 0; i < d; ++i) {
        total += r.eigenvalues[static_cast<size_t>(i)];
        if (i < k)
            kept += r.eigenvalues[static_cast<size_t>(i)];
    }
    r.keptEnergy = total > 0.0 ? kept / total : 1.0;
    r.hiddenBefore = d;
    r.hiddenAfter = k;

    r.model = std::make_unique<Model>(source);
    // RMSNorm over k values of x Q_k against over d values of x: √(d/k) · ‖x Q_k‖/‖x‖, the
    // second factor √(kept share of the variance) on average.
    const float normScale = static_cast<float>(std::sqrt(static_cast<double>(d) / static_cast<double>(k) * r.keptEnergy));
    for (const LogicalTensor& t : source.tensors) {
        throwIfCancelled(progress);
        MatrixRM W;
        std::vector<int64_t> shape = t.shape;
        switch (t.role) {
        case Role::AttnNorm: case Role::MlpNorm: case Role::FinalNorm:
            if (t.isBias)
                fail(ErrorCode::UnsupportedArch, source.path, "cannot slice a model whose norms have biases");
            W = MatrixRM::Constant(1, k, normScale);
            shape = {k};
            break;
        case Role::Embedding:
            W = readMatrix(source, t) * Qk; // (vocab, d) -> (vocab, k)
            shape = {W.rows(), k};
            break;
        case Role::AttnQ: case Role::AttnK: case Role::AttnV: case Role::MlpGate: case Role::MlpUp: case Role::LmHead: {
            if (t.isBias)
                continue; // an output bias: outputs are not in the residual stream
            MatrixRM X = readMatrix(source, t);
            X.array().rowwise() *= normWeightBefore(source, t).array();
            W = X * Qk; // reads the sliced stream
            shape = {W.rows(), k};
            break;
        }
        case Role::AttnO: case Role::MlpDown:
            if (t.isBias) {
                W = readMatrix(source, t) * Qk; // added to the stream
                shape = {k};
            } else {
                W = Qk.transpose() * readMatrix(source, t); // writes the sliced stream
                shape = {k, W.cols()};
            }
            break;
        default: continue;
        }
        if (shape.size() == 2)
            storeDense(*r.model, t.logicalName, W); // in the model's type (store_values.h)
        else
            replaceTensor(*r.model, t.logicalName, std::vector<float>(W.data(), W.data() + W.size()), shape);
        r.tensors.push_back(t.logicalName);
    }
    r.model->config.hidden = k;
    r.calibrationTokens = static_cast<int64_t>(windows.size());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (progress)
        progress->report(1.0, "sliced " + std::to_string(d) + " -> " + std::to_string(k));
    return r;
}

} // namespace ll
