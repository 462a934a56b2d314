#include "model/model.h"

#include "util/spill_buffer.h"

#include "util/error.h"
#include "util/input_file.h"

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace ll {

namespace {
struct FamilyRow {
    Family family;
    std::string_view name;
};
constexpr std::array<FamilyRow, 8> kFamilies{{
    {Family::Llama, "llama"},
    {Family::Mistral, "mistral"},
    {Family::Qwen2, "qwen2"},
    {Family::Gemma, "gemma"},
    {Family::Phi3, "phi3"},
    {Family::Gpt2, "gpt2"},
    {Family::Opt, "opt"},
    {Family::GptNeoX, "gpt_neox"},
}};
} // namespace

std::string_view familyName(Family f)
{
    for (const auto& r : kFamilies)
        if (r.family == f)
            return r.name;
    return "unknown";
}

std::optional<Family> familyFromModelType(std::string_view modelType)
{
    for (const auto& r : kFamilies)
        if (r.name == modelType)
            return r.family;
    return std::nullopt;
}

std::string_view roleName(Role r)
{
    switch (r) {
    case Role::Embedding: return "embedding";
    case Role::PositionEmbedding: return "position embedding";
    case Role::EmbedProjIn: return "embedding projection in";
    case Role::EmbedProjOut: return "embedding projection out";
    case Role::AttnNorm: return "attention norm";
    case Role::AttnQ: return "q";
    case Role::AttnK: return "k";
    case Role::AttnV: return "v";
    case Role::AttnO: return "o";
    case Role::MlpNorm: return "MLP norm";
    case Role::MlpGate: return "gate";
    case Role::MlpUp: return "up";
    case Role::MlpDown: return "down";
    case Role::PostAttnNorm: return "post-attention norm";
    case Role::PostMlpNorm: return "post-MLP norm";
    case Role::FinalNorm: return "final norm";
    case Role::LmHead: return "LM head";
    case Role::Other: return "other";
    }
    return "other";
}

bool isLinear(Role r)
{
    switch (r) {
    case Role::AttnQ: case Role::AttnK: case Role::AttnV: case Role::AttnO:
    case Role::MlpGate: case Role::MlpUp: case Role::MlpDown:
        return true;
    default:
        return false;
    }
}

int64_t TensorRef::elements() const
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

int64_t LogicalTensor::elements() const
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

int64_t Model::parameterCount() const
{
    int64_t n = 0;
    for (const auto& t : tensors)
        n += (t.factored() ? 0 : t.elements())
             + (t.hasFactors() ? stored.at(static_cast<size_t>(t.factorA)).elements() + stored.at(static_cast<size_t>(t.factorB)).elements()
                               : 0);
    return n;
}

int64_t Model::uniqueParameterCount() const
{
    int64_t n = parameterCount();
    for (const auto& t : tensors)
        if (t.tied && !t.hasFactors())
            n -= t.elements();
    return n;
}

int64_t Model::storedParameterCount() const
{
    int64_t n = 0;
    for (const auto& t : stored)
        if (!t.edited)
            n += t.elements();
    return n;
}

uint64_t Model::storedBytes() const
{
    uint64_t n = 0;
    for (const auto& t : stored)
        if (!t.edited)
            n += t.nbytes;
    return n;
}

std::map<std::string, uint64_t> Model::bytesByDType() const
{
    std::map<std::string, uint64_t> out;
    for (const auto& t : stored)
        if (!t.edited)
            out[t.dtypeLabel.empty() ? std::string(dtypeName(t.dtype)) : t.dtypeLabel] += t.nbytes;
    return out;
}

const LogicalTensor* Model::findLogical(std::string_view logicalName) const
{
    for (const auto& t : tensors)
        if (t.logicalName == logicalName)
            return &t;
    return nullptr;
}

const LogicalTensor* Model::find(int block, Role role, bool bias) const
{
    for (const auto& t : tensors)
        if (t.block == block && t.role == role && t.isBias == bias)
            return &t;
    return nullptr;
}

const LogicalTensor* Model::findByStoredName(std::string_view name) const
{
    for (const auto& t : tensors)
        if (!t.tied && stored.at(t.stored).name == name)
            return &t;
    return nullptr;
}

namespace {

LogicalTensor& mutableLogical(Model& m, const std::string& logicalName)
{
    for (auto& t : m.tensors)
        if (t.logicalName == logicalName)
            return t;
    fail(ErrorCode::NotFound, m.path, "no tensor named '" + logicalName + "'");
}

// An owned F32 tensor holding `values` in `shape` (checked against each other).
TensorRef ownedF32(const Model& m, const std::string& name, std::vector<float> values, const std::vector<int64_t>& shape)
{
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0)
            fail(ErrorCode::InvalidArgument, m.path, "negative dimension for '" + name + "'");
        n *= d;
    }
    if (n != static_cast<int64_t>(values.size()))
        fail(ErrorCode::InvalidArgument, m.path,
             "replacement for '" + name + "' has " + std::to_string(values.size()) + " values, its shape needs "
                 + std::to_string(n));
    // The edit store keeps it (in memory up to its budget, else in a temporary file).
    auto buffer = makeEditBuffer(values.size() * sizeof(float));
    if (!values.empty()) // a rank-0 factor has no values: memcpy must not see its null pointers
        std::memcpy(buffer->data(), values.data(), values.size() * sizeof(float));
    values = {};
    TensorRef ref;
    ref.name = name;
    ref.shape = shape;
    ref.dtype = DType::F32;
    ref.sourceFile = "(in memory)";
    ref.nbytes = static_cast<uint64_t>(n) * 4;
    ref.data = buffer->data();
    ref.keepAlive = std::move(buffer);
    ref.edited = true;
    return ref;
}

// Puts `ref` into stored slot `slot` (reused) or a new one; returns its index.
int64_t putStored(Model& m, int64_t slot, TensorRef ref)
{
    if (slot >= 0) {
        m.stored.at(static_cast<size_t>(slot)) = std::move(ref);
        return slot;
    }
    m.stored.push_back(std::move(ref));
    return static_cast<int64_t>(m.stored.size()) - 1;
}

// Frees an edited slot no tensor uses any more (the index stays valid for the others).
void releaseStored(Model& m, int64_t slot)
{
    TensorRef unused;
    unused.name = "(unused)";
    unused.shape = {0};
    unused.dtype = DType::F32;
    unused.sourceFile = "(in memory)";
    unused.edited = true;
    m.stored.at(static_cast<size_t>(slot)) = std::move(unused);
}

// Dense values replace the factors: a factored tensor's A slot will take
// them; a corrected one frees both factors (its base slot takes them).
void dropFactors(Model& m, LogicalTensor& t)
{
    if (!t.hasFactors())
        return;
    if (t.replacedBy < 0)
        t.replacedBy = t.factorA;
    else
        releaseStored(m, t.factorA);
    releaseStored(m, t.factorB);
    t.factorA = t.factorB = -1;
}

// `ref` checked and marked as LayerLab's values for `name`.
TensorRef editedRef(const Model& m, const std::string& name, TensorRef ref)
{
    for (int64_t d : ref.shape)
        if (d < 0)
            fail(ErrorCode::InvalidArgument, m.path, "negative dimension for '" + name + "'");
    if (!ref.data && ref.elements() > 0)
        fail(ErrorCode::InvalidArgument, m.path, "replacement for '" + name + "' has no data");
    ref.name = name + " (edited)";
    ref.sourceFile = "(in memory)";
    ref.edited = true;
    if (ref.dtypeLabel.empty())
        ref.dtypeLabel = std::string(dtypeName(ref.dtype));
    return ref;
}

} // namespace

void replaceTensor(Model& m, const std::string& logicalName, std::vector<float> values, std::vector<int64_t> shape)
{
    LogicalTensor& target = mutableLogical(m, logicalName);
    TensorRef ref = ownedF32(m, logicalName, std::move(values), shape);
    ref.name = logicalName + " (edited)";
    dropFactors(m, target);
    target.replacedBy = putStored(m, target.replacedBy, std::move(ref));
    target.shape = std::move(shape);
}

void replaceTensorStored(Model& m, const std::string& logicalName, TensorRef ref)
{
    LogicalTensor& target = mutableLogical(m, logicalName);
    ref = editedRef(m, logicalName, std::move(ref));
    dropFactors(m, target);
    std::vector<int64_t> shape = ref.shape;
    target.replacedBy = putStored(m, target.replacedBy, std::move(ref));
    target.shape = std::move(shape);
}

void replaceTensorFactored(Model& m, const std::string& logicalName, std::vector<float> a, std::vector<float> b,
                           int64_t out, int64_t rank, int64_t in)
{
    LogicalTensor& target = mutableLogical(m, logicalName);
    if (target.shape.size() != 2)
        fail(ErrorCode::InvalidArgument, m.path, "'" + logicalName + "' is not a matrix, it cannot be factored");
    TensorRef refA = ownedF32(m, logicalName + " (factor A)", std::move(a), {out, rank});
    TensorRef refB = ownedF32(m, logicalName + " (factor B)", std::move(b), {rank, in});
    // A reuses the slot of earlier edited values, if any.
    const int64_t slotA = target.hasFactors() ? target.factorA : target.replacedBy;
    if (target.corrected())
        releaseStored(m, target.replacedBy);
    target.factorA = putStored(m, slotA, std::move(refA));
    target.factorB = putStored(m, target.factorB, std::move(refB));
    target.replacedBy = -1;
    target.shape = {out, in};
}

void replaceTensorCorrected(Model& m, const std::string& logicalName, TensorRef base, TensorRef a, TensorRef b)
{
    LogicalTensor& target = mutableLogical(m, logicalName);
    if (target.shape.size() != 2 || base.shape.size() != 2 || a.shape.size() != 2 || b.shape.size() != 2
        || a.shape[0] != base.shape[0] || b.shape[1] != base.shape[1] || a.shape[1] != b.shape[0])
        fail(ErrorCode::InvalidArgument, m.path, "the correction of '" + logicalName + "' does not fit its values");
    a = editedRef(m, logicalName, std::move(a));
    b = editedRef(m, logicalName, std::move(b));
    a.name = logicalName + " (correction A)";
    b.name = logicalName + " (correction B)";
    // Earlier factors' slots are freed by replaceTensorStored (a factored
    // tensor's A becomes the base's): the new factors take them.
    const int64_t slotA = target.corrected() ? target.factorA : -1;
    const int64_t slotB = target.hasFactors() ? target.factorB : -1;
    replaceTensorStored(m, logicalName, std::move(base));
    target.factorA = putStored(m, slotA, std::move(a));
    target.factorB = putStored(m, slotB, std::move(b));
}

} // namespace ll
