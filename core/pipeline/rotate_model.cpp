#include "pipeline/rotate_model.h"

#include "engine/architecture.h"
#include "pipeline/store_values.h"
#include "stats/tensor_stats.h"
#include "util/error.h"
#include "util/progress.h"

#include <chrono>
#include <string>

namespace ll {

namespace {

// Each of Q1, Qh, Qf gets its own stream of the seed.
constexpr uint64_t kHeadStream = 0x68656164ULL, kDownStream = 0x646f776eULL;

const LogicalTensor& requireTensor(const Model& m, int block, Role role)
{
    const LogicalTensor* t = m.find(block, role);
    if (!t)
        fail(ErrorCode::Malformed, m.path,
             std::string("cannot fold the norms: no ") + std::string(roleName(role))
                 + (block >= 0 ? " in block " + std::to_string(block) : std::string()));
    return *t;
}

} // namespace

Eigen::RowVectorXf normWeightBefore(const Model& m, const LogicalTensor& t)
{
    Role norm = Role::Other;
    switch (t.role) {
    case Role::AttnQ: case Role::AttnK: case Role::AttnV: norm = Role::AttnNorm; break;
    case Role::MlpGate: case Role::MlpUp: norm = Role::MlpNorm; break;
    case Role::LmHead: norm = Role::FinalNorm; break;
    default: return {};
    }
    const MatrixRM g = readMatrix(m, requireTensor(m, norm == Role::FinalNorm ? -1 : t.block, norm));
    return g.row(0);
}

namespace {

// Rows of W (out, in) in consecutive slices of `width` columns: each slice x ← x Q.
void rotateColumnSlices(MatrixRM& W, const RandomHadamard& q)
{
    for (int64_t c = 0; c + q.size() <= W.cols(); c += q.size()) {
        MatrixRM slice = W.middleCols(c, q.size());
        q.rotateRows(slice);
        W.middleCols(c, q.size()) = slice;
    }
}

// W ← Qᵀ W over consecutive slices of `q.size()` rows (outputs rotated): (Qᵀ W)ᵀ = Wᵀ Q.
void rotateRowSlices(MatrixRM& W, const RandomHadamard& q)
{
    for (int64_t r = 0; r + q.size() <= W.rows(); r += q.size()) {
        MatrixRM t = W.middleRows(r, q.size()).transpose();
        q.rotateRows(t);
        W.middleRows(r, q.size()) = t.transpose();
    }
}

double kurtosisOf(const MatrixRM& W)
{
    StatsOptions o;
    o.bins = 1;
    return computeStats(std::span<const float>(W.data(), static_cast<size_t>(W.size())), o).kurtosis;
}

} // namespace

ModelRotations modelRotations(const ModelConfig& config, const RotationOptions& options)
{
    ModelRotations r;
    r.residual = std::make_shared<RandomHadamard>(config.hidden, options.seed);
    r.head = std::make_shared<RandomHadamard>(config.headDim, options.seed ^ kHeadStream);
    if (options.onlineDown)
        r.down = std::make_shared<RandomHadamard>(config.intermediate, options.seed ^ kDownStream);
    return r;
}

void checkRotatable(const Model& model)
{
    const ModelConfig& c = model.config;
    const std::string family(familyName(c.family));
    if (c.family != Family::Llama && c.family != Family::Mistral && c.family != Family::Qwen2)
        fail(ErrorCode::UnsupportedArch, model.path,
             "rotations fold into RMSNorm pre-norm models (Llama, Mistral, Qwen2), not " + family);
    const Architecture arch = architectureOf(c, model.metadata, model.path);
    if (arch.norm != NormKind::Rms || !arch.normBefore || arch.parallelResidual)
        fail(ErrorCode::UnsupportedArch, model.path, "rotations need plain RMSNorm pre-norm blocks");
    if (c.onlineDownRotation)
        fail(ErrorCode::InvalidArgument, model.path, "the model is already rotated (with an online rotation of down_proj's input)");
    if (c.hidden < 1 || c.headDim < 1 || c.intermediate < 1)
        fail(ErrorCode::Malformed, model.path, "cannot rotate: the configuration gives no hidden, head or FFN size");
    for (const LogicalTensor& t : model.tensors) {
        if (t.partLength > 0 || t.transposed)
            fail(ErrorCode::UnsupportedArch, model.path,
                 "cannot rotate " + t.logicalName + ": fused or transposed tensors are not supported");
        if (t.role == Role::PostAttnNorm || t.role == Role::PostMlpNorm || t.role == Role::PositionEmbedding
            || t.role == Role::EmbedProjIn || t.role == Role::EmbedProjOut)
            fail(ErrorCode::UnsupportedArch, model.path, "cannot rotate a model with " + t.logicalName);
    }
}

namespace {

// W (t's values as read) rotated as rotateModel leaves it.
MatrixRM rotateValues(const Model& model, const LogicalTensor& t, MatrixRM W, const ModelRotations& q)
{
    const int64_t hidden = model.config.hidden;
    if (t.role == Role::AttnNorm || t.role == Role::MlpNorm || t.role == Role::FinalNorm) {
        W.setOnes();
        return W;
    }
    if (t.isBias) {
        // A bias is added to the output: it rotates with the output.
        if (t.role == Role::AttnV)
            rotateColumnSlices(W, *q.head);
        else if ((t.role == Role::AttnO || t.role == Role::MlpDown) && W.cols() == hidden)
            q.residual->rotateRows(W);
        return W;
    }
    if (const Eigen::RowVectorXf g = normWeightBefore(model, t); g.size() > 0) {
        if (g.size() != W.cols())
            fail(ErrorCode::Malformed, model.path, "cannot rotate " + t.logicalName + ": its norm does not fit its input");
        W.array().rowwise() *= g.array();
    }
    switch (t.role) {
    case Role::Embedding:
    case Role::AttnQ: case Role::AttnK:
    case Role::MlpGate: case Role::MlpUp:
    case Role::LmHead:
        q.residual->rotateRows(W); // input (or the embedding's row) in the rotated stream
        break;
    case Role::AttnV:
        q.residual->rotateRows(W);
        rotateRowSlices(W, *q.head); // each head's output rotated by Qh
        break;
    case Role::AttnO:
        rotateColumnSlices(W, *q.head); // each head's input rotated by Qh
        rotateRowSlices(W, *q.residual);
        break;
    case Role::MlpDown:
        if (q.down)
            q.down->rotateRows(W);
        rotateRowSlices(W, *q.residual);
        break;
    default: break;
    }
    return W;
}

} // namespace

MatrixRM rotatedTensor(const Model& model, const LogicalTensor& t, const ModelRotations& q)
{
    return rotateValues(model, t, readMatrix(model, t), q);
}

ModelRotationResult rotateModel(const Model& source, const RotationOptions& options, Progress* progress)
{
    const auto t0 = std::chrono::steady_clock::now();
    checkRotatable(source);
    ModelRotationResult r;
    r.rotations = modelRotations(source.config, options);
    r.model = std::make_unique<Model>(source);
    if (options.onlineDown)
        r.model->config.onlineDownRotation = options.seed ^ kDownStream; // the engine's Qf, as r.rotations.down
    // Every tensor is computed from the source, so the order of replacement does not matter.
    std::vector<const LogicalTensor*> todo;
    for (const LogicalTensor& t : source.tensors) {
        const bool norm = t.role == Role::AttnNorm || t.role == Role::MlpNorm || t.role == Role::FinalNorm;
        const bool linear = isLinear(t.role) || t.role == Role::Embedding || t.role == Role::LmHead;
        if (norm && t.isBias)
            fail(ErrorCode::UnsupportedArch, source.path, "cannot rotate a model whose norms have biases");
        if (norm || (linear && !t.isBias)
            || (t.isBias && (t.role == Role::AttnV || t.role == Role::AttnO || t.role == Role::MlpDown)))
            todo.push_back(&t);
    }
    for (size_t i = 0; i < todo.size(); ++i) {
        throwIfCancelled(progress);
        const LogicalTensor& t = *todo[i];
        const MatrixRM before = readMatrix(source, t); // decoded once: the kurtosis and the rotation read it
        MatrixRM after = rotateValues(source, t, before, r.rotations);
        RotatedTensor rec{t.logicalName, 0.0, 0.0};
        if (!t.isBias && before.rows() > 1) {
            rec.kurtosisBefore = kurtosisOf(before);
            rec.kurtosisAfter = kurtosisOf(after);
        }
        if (t.shape.size() == 2)
            storeDense(*r.model, t.logicalName, after); // a BF16 model stays BF16, as QuaRot casts back to the dtype
        else
            replaceTensor(*r.model, t.logicalName, std::vector<float>(after.data(), after.data() + after.size()), t.shape);
        r.tensors.push_back(std::move(rec));
        if (progress)
            progress->report(static_cast<double>(i + 1) / static_cast<double>(todo.size()),
                             "rotating " + t.logicalName);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

nlohmann::json ModelRotationResult::toJson(const RotationOptions& options) const
{
    nlohmann::json arr = nlohmann::json::array();
    for (const RotatedTensor& t : tensors) {
        nlohmann::json j{{"name", t.name}};
        if (t.kurtosisBefore > 0.0)
            j["kurtosis_before"] = t.kurtosisBefore, j["kurtosis_after"] = t.kurtosisAfter;
        arr.push_back(std::move(j));
    }
    return {{"method", "quarot"}, {"seed", options.seed}, {"online_down", options.onlineDown},
            {"seconds", seconds}, {"tensors", std::move(arr)}};
}

} // namespace ll
