#include "engine/weights.h"

#include "kernels/row_kernels.h"
#include "util/error.h"

namespace ll {

namespace {

// A 2-D stored tensor (already in the logical layout) as a matrix.
StoredMatrix viewOfStored(const TensorRef& ref, int64_t rows, int64_t cols)
{
    return StoredMatrix::ofTensor(ref, rows, cols);
}

bool viewable(const TensorRef& ref)
{
    return ref.data
           && (hasRowKernels(ref.dtype) || (ref.dtype == DType::Grid && ref.grid) || (ref.dtype == DType::Sparse && ref.sparse));
}

} // namespace

MatrixRM LinearWeights::dense() const
{
    if (!hasFactors())
        return W.toMatrix();
    const MatrixRM a = A.toMatrix(), b = B.toMatrix();
    return W.empty() ? MatrixRM(a * b) : plusLowRank(W.toMatrix(), a, b);
}

LinearWeights loadLinearWeights(const Model& m, const LogicalTensor& t)
{
    LinearWeights lw;
    if (t.hasFactors()) {
        const TensorRef& a = m.stored.at(static_cast<size_t>(t.factorA));
        const TensorRef& b = m.stored.at(static_cast<size_t>(t.factorB));
        if (a.shape.size() != 2 || b.shape.size() != 2 || a.shape[1] != b.shape[0] || t.shape.size() != 2
            || a.shape[0] != t.shape[0] || b.shape[1] != t.shape[1])
            fail(ErrorCode::Malformed, m.path, "the factors of '" + t.logicalName + "' do not fit its shape");
        const auto factor = [&](const TensorRef& r) {
            if (r.elements() == 0) // rank 0: no bytes
                return StoredMatrix::view(r.dtype, nullptr, r.shape[0], r.shape[1], nullptr);
            return viewable(r) ? viewOfStored(r, r.shape[0], r.shape[1]) : StoredMatrix::fromMatrix(
                Eigen::Map<const MatrixRM>(decodeStored(r).data(), r.shape[0], r.shape[1]));
        };
        lw.A = factor(a);
        lw.B = factor(b);
        if (t.factored())
            return lw;
    }
    const int64_t rows = t.shape.size() >= 2 ? t.shape[0] : 1;
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    if (t.replacedBy >= 0) {
        const TensorRef& r = m.stored.at(static_cast<size_t>(t.replacedBy));
        if (r.elements() != rows * cols)
            fail(ErrorCode::Malformed, m.path, "tensor '" + t.logicalName + "' has an inconsistent shape");
        if (viewable(r) && storedRowBytes(r, cols) != 0)
            lw.W = viewOfStored(r, rows, cols);
        else
            lw.W = StoredMatrix::fromMatrix(readMatrix(m, t));
        return lw;
    }
    const TensorRef& ref = m.storedOf(t);
    const int64_t storedCols = ref.shape.empty() ? 1 : ref.shape.back();
    const int64_t storedRows = storedCols > 0 ? ref.elements() / storedCols : 0;
    const size_t rowBytes = storedRowBytes(ref.dtype, cols);
    const bool inPlace = viewable(ref) && !t.transposed && t.partGroupRows == 0 && storedCols == cols && rowBytes != 0
                         && t.partOffset >= 0 && t.partOffset + rows <= storedRows
                         && static_cast<uint64_t>(t.partOffset + rows) * rowBytes <= ref.nbytes;
    if (inPlace) {
        const int64_t first = t.partLength == 0 ? 0 : t.partOffset;
        lw.W = StoredMatrix::view(ref.dtype, ref.data + static_cast<size_t>(first) * rowBytes, rows, cols, ref.keepAlive);
    } else {
        lw.W = StoredMatrix::fromMatrix(readMatrix(m, t));
    }
    return lw;
}

} // namespace ll
