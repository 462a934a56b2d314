#include "analysis/model_size.h"

#include "model/held_bytes.h"
#include "model/packed_grid.h"

#include <cmath>

namespace ll {

namespace {

std::string typeOf(const TensorRef& ref)
{
    if (ref.dtype == DType::Grid && ref.grid)
        return std::to_string(ref.grid->bits) + (ref.grid->binaryCoding ? "-bit BCQ" : "-bit grid")
               + (ref.grid->hasExceptions() ? " + 16-bit outliers" : "");
    if (ref.dtype == DType::Sparse && ref.sparse) // "sparse BF16": pruned, a mask and the kept values
        return "sparse " + std::string(dtypeName(ref.sparse->valueType));
    return ref.dtypeLabel.empty() ? std::string(dtypeName(ref.dtype)) : ref.dtypeLabel;
}

} // namespace

TensorSize tensorSize(const CompressionState& state, const LogicalTensor& t)
{
    const Model& m = *state.model;
    TensorSize s;
    if (t.tied) {
        s.type = typeOf(m.storedOf(t));
        return s;
    }
    if (t.factored()) {
        const TensorRef& a = m.stored.at(static_cast<size_t>(t.factorA));
        const TensorRef& b = m.stored.at(static_cast<size_t>(t.factorB));
        s.bytes = heldBytes(m, t);
        s.parameters = a.elements() + b.elements();
        s.type = "factored " + typeOf(a);
        return s;
    }
    s.parameters = t.elements();
    const TensorRef& ref = t.replacedBy >= 0 ? m.stored.at(static_cast<size_t>(t.replacedBy)) : m.storedOf(t);
    if (t.corrected()) { // the base as stored, plus its correction's factors
        const TensorRef& a = m.stored.at(static_cast<size_t>(t.factorA));
        const TensorRef& b = m.stored.at(static_cast<size_t>(t.factorB));
        s.bytes = heldBytes(m, t);
        s.parameters += a.elements() + b.elements();
        s.type = typeOf(ref) + " + r" + std::to_string(a.shape.at(1)) + " " + typeOf(a);
        return s;
    }
    const auto rec = state.layers.find(t.logicalName);
    if (ref.dtype == DType::F32 && t.edited() && rec != state.layers.end() && rec->second.bitsPerWeight) {
        s.bytes = static_cast<uint64_t>(std::llround(*rec->second.bitsPerWeight * static_cast<double>(t.elements()) / 8.0));
        s.type = rec->second.badges.empty() ? "F32" : rec->second.badges.back();
        s.nominal = true;
        return s;
    }
    s.bytes = heldBytes(m, t);
    s.type = typeOf(ref);
    return s;
}

ModelSize modelSize(const CompressionState& state)
{
    ModelSize size;
    for (const LogicalTensor& t : state.model->tensors) {
        const TensorSize s = tensorSize(state, t);
        size.bytes += s.bytes;
        size.parameters += s.parameters;
    }
    return size;
}

} // namespace ll
