#include "analysis/model_cost.h"

#include "model/model.h"

namespace ll {

namespace {

// 2 * multiply-adds of one token through every matrix of `m` that a forward pass multiplies by.
double matrixFlops(const Model& m)
{
    double macs = 0.0;
    for (const LogicalTensor& t : m.tensors) {
        if (t.isBias || t.shape.size() != 2)
            continue;
        if (t.role == Role::Embedding || t.role == Role::PositionEmbedding)
            continue; // a lookup, not a product
        if (!isLinear(t.role) && t.role != Role::LmHead && t.role != Role::EmbedProjIn && t.role != Role::EmbedProjOut)
            continue;
        // A factored layer multiplies by B then A: k (out + in); elements() is out * in.
        const int64_t dense = t.shape[0] * t.shape[1];
        const int64_t rank = t.factored() ? m.stored.at(static_cast<size_t>(t.factorA)).shape.at(1) : 0;
        macs += static_cast<double>(t.factored() ? rank * (t.shape[0] + t.shape[1]) : dense);
    }
    return 2.0 * macs;
}

double attentionFlops(const Model& m, int64_t context)
{
    const ModelConfig& c = m.config;
    // q k^T over the context and the weighted sum of v: 2 * heads * headDim * context each.
    return 2.0 * 2.0 * static_cast<double>(c.layers * c.heads * c.headDim) * static_cast<double>(context);
}

} // namespace

ModelCost estimateCost(const CompressionState& state, int64_t context)
{
    ModelCost c;
    const Model& m = *state.model;
    c.parameters = m.parameterCount();
    c.bitsPerWeight = state.linearBitsPerWeight();
    for (const LogicalTensor& t : m.tensors) {
        if (t.tied)
            continue;
        const auto rec = state.layers.find(t.logicalName);
        double bits = 32.0;
        if (rec != state.layers.end() && rec->second.bitsPerWeight) {
            bits = *rec->second.bitsPerWeight;
        } else if (!t.edited()) {
            const DTypeLayout l = dtypeLayout(m.storedOf(t).dtype);
            if (l.blockElems > 0)
                bits = 8.0 * l.blockBytes / l.blockElems;
        }
        // Factored layers store their factors; the rest their elements.
        const double count = t.factored()
                                 ? static_cast<double>(m.stored.at(static_cast<size_t>(t.factorA)).elements()
                                                       + m.stored.at(static_cast<size_t>(t.factorB)).elements())
                                 : static_cast<double>(t.elements());
        c.bytes += bits / 8.0 * count;
    }
    c.sourceBytes = static_cast<double>(state.source->storedBytes()); // each stored tensor once (fused, tied)
    c.compressionRatio = c.bytes > 0.0 ? c.sourceBytes / c.bytes : 0.0;
    c.flopsPerToken = matrixFlops(m) + attentionFlops(m, context);
    c.denseFlopsPerToken = matrixFlops(*state.source) + attentionFlops(*state.source, context);
    return c;
}

} // namespace ll
