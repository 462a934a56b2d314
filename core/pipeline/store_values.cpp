#include "pipeline/store_values.h"

#include "quant/packed_storage.h"

#include <optional>
#include <vector>

namespace ll {

DType denseEditType(const Model& m, const std::string& name)
{
    const LogicalTensor* t = m.findLogical(name);
    if (!t || t->factored())
        return DType::F32;
    const TensorRef& ref = t->replacedBy >= 0 ? m.stored.at(static_cast<size_t>(t->replacedBy)) : m.storedOf(*t);
    if (ref.dtype == DType::Sparse && ref.sparse) // pruned earlier in this session: its values' type
        return ref.sparse->valueType;
    const DType type = ref.dtype;
    if (type == DType::F16 || type == DType::BF16)
        return type;
    // An edit of a ggml-quantized tensor: F16 holds more than the file did.
    // (A LayerLab Grid is an earlier edit of this session: its values came from
    // the checkpoint's own type, unknown here, so they stay F32.)
    if (type != DType::F32 && type != DType::Grid && dtypeLayout(type).blockElems > 1)
        return DType::F16;
    return DType::F32;
}

void storeDense(Model& m, const std::string& name, const MatrixRM& W)
{
    const DType type = denseEditType(m, name);
    if (std::optional<TensorRef> sparse = sparseTensor(W, type)) {
        replaceTensorStored(m, name, std::move(*sparse));
        return;
    }
    if (std::optional<TensorRef> narrow = narrowRounded(W, type)) {
        replaceTensorStored(m, name, std::move(*narrow));
        return;
    }
    replaceTensor(m, name, std::vector<float>(W.data(), W.data() + W.size()), {W.rows(), W.cols()});
}

} // namespace ll
