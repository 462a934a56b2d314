#include "model/tensor_data.h"

#include "model/ggml_dequant.h"
#include "util/error.h"
#include "util/half.h"
#include "util/progress.h"

#include <algorithm>
#include <cstring>

namespace ll {

namespace {

void requireDecodable(const TensorRef& t)
{
    if (!canDecode(t.dtype))
        fail(ErrorCode::UnsupportedDType, t.sourceFile,
             "tensor '" + t.name + "' has type " + (t.dtypeLabel.empty() ? std::string(dtypeName(t.dtype)) : t.dtypeLabel)
                 + ", which LayerLab cannot decode");
    if (!t.data)
        fail(ErrorCode::Malformed, t.sourceFile, "tensor '" + t.name + "' has no data");
}

// A packed grid or sparse rows decode whole rows only: decodeRow(layout, row, out) on each.
template <class Layout, class DecodeRow>
void decodeRowsRange(const TensorRef& t, const Layout& L, int64_t first, int64_t count, float* out, DecodeRow decodeRow)
{
    if (L.cols <= 0 || first % L.cols != 0 || count % L.cols != 0)
        fail(ErrorCode::OutOfRange, t.sourceFile, "a range of '" + t.name + "' that is not whole rows");
    const size_t rowBytes = L.rowBytes();
    for (int64_t r = 0; r < count / L.cols; ++r)
        decodeRow(L, t.data + static_cast<size_t>(first / L.cols + r) * rowBytes, out + r * L.cols);
}

// Values decoded together: a block of the type, a row of a packed grid or of sparse rows.
int64_t decodeUnit(const TensorRef& t)
{
    if (t.dtype == DType::Grid)
        return t.grid ? std::max<int64_t>(1, t.grid->cols) : 1;
    if (t.dtype == DType::Sparse)
        return t.sparse ? std::max<int64_t>(1, t.sparse->cols) : 1;
    return dtypeLayout(t.dtype).blockElems;
}

} // namespace

void decodeRange(const TensorRef& t, int64_t first, int64_t count, float* out)
{
    requireDecodable(t);
    if (first < 0 || count < 0 || first + count > t.elements())
        fail(ErrorCode::OutOfRange, t.sourceFile, "bad element range for tensor '" + t.name + "'");
    if (t.dtype == DType::Grid) {
        if (!t.grid)
            fail(ErrorCode::Malformed, t.sourceFile, "packed tensor '" + t.name + "' has no layout");
        return decodeRowsRange(t, *t.grid, first, count, out, decodeGridRow);
    }
    if (t.dtype == DType::Sparse) {
        if (!t.sparse)
            fail(ErrorCode::Malformed, t.sourceFile, "sparse tensor '" + t.name + "' has no layout");
        return decodeRowsRange(t, *t.sparse, first, count, out, decodeSparseRow);
    }
    const DTypeLayout layout = dtypeLayout(t.dtype);
    if (first < 0 || count < 0 || first + count > t.elements() || first % layout.blockElems != 0)
        fail(ErrorCode::OutOfRange, t.sourceFile, "bad element range for tensor '" + t.name + "'");
    const uint8_t* src = t.data + (first / layout.blockElems) * layout.blockBytes;
    switch (t.dtype) {
    case DType::F32:
        std::memcpy(out, src, static_cast<size_t>(count) * 4);
        break;
    case DType::F16: {
        const auto* h = reinterpret_cast<const uint16_t*>(src);
        for (int64_t i = 0; i < count; ++i)
            out[i] = fp16ToFloat(h[i]);
        break;
    }
    case DType::BF16: {
        const auto* h = reinterpret_cast<const uint16_t*>(src);
        for (int64_t i = 0; i < count; ++i)
            out[i] = bf16ToFloat(h[i]);
        break;
    }
    default:
        if (count % layout.blockElems != 0)
            fail(ErrorCode::OutOfRange, t.sourceFile, "range is not a whole number of blocks in '" + t.name + "'");
        dequantizeGgml(t.dtype, src, out, count);
        break;
    }
}

namespace {

// decodeStored into out (t.elements() floats).
void decodeInto(const TensorRef& t, float* out, Progress* progress)
{
    requireDecodable(t);
    const int64_t n = t.elements();
    // Decode in chunks so that large tensors report progress and can be cancelled.
    const int64_t block = decodeUnit(t);
    const int64_t chunk = std::max<int64_t>(block, (int64_t{1} << 22) / block * block);
    for (int64_t first = 0; first < n; first += chunk) {
        throwIfCancelled(progress);
        const int64_t count = std::min(chunk, n - first);
        decodeRange(t, first, count, out + first);
        if (progress)
            progress->report(static_cast<double>(first + count) / static_cast<double>(n), "decoding " + t.name);
    }
}

} // namespace

std::vector<float> decodeStored(const TensorRef& t, Progress* progress)
{
    std::vector<float> out(static_cast<size_t>(t.elements()));
    decodeInto(t, out.data(), progress);
    return out;
}

std::vector<float> readLogical(const Model& m, const LogicalTensor& t, Progress* progress)
{
    MatrixRM A, B;
    if (readFactors(m, t, A, B)) {
        throwIfCancelled(progress);
        std::vector<float> out(static_cast<size_t>(A.rows() * B.cols()));
        Eigen::Map<MatrixRM> W(out.data(), A.rows(), B.cols());
        if (t.corrected()) { // the base decoded into out, A B added in place: no copy of the layer
            const TensorRef& base = m.stored.at(static_cast<size_t>(t.replacedBy));
            if (base.elements() != W.size())
                fail(ErrorCode::Malformed, m.path, "tensor '" + t.logicalName + "' has an inconsistent shape");
            decodeInto(base, out.data(), progress);
            addLowRank(W, A, B);
        } else {
            W.noalias() = A * B; // (out, k) @ (k, in) -> (out, in)
        }
        return out;
    }
    if (t.replacedBy >= 0) // edited values are stored in the logical layout already
        return decodeStored(m.stored.at(static_cast<size_t>(t.replacedBy)), progress);
    const TensorRef& ref = m.storedOf(t);
    std::vector<float> all = decodeStored(ref, progress);
    if (!t.transposed && t.partLength == 0)
        return all;

    // Logical matrix before part selection: stored (rows, cols) or its transpose.
    const int64_t rows = ref.shape.size() >= 2 ? ref.shape[0] : 1;
    const int64_t cols = ref.shape.empty() ? 1 : ref.shape.back();
    const int64_t lRows = t.transposed ? cols : (ref.shape.size() >= 2 ? rows : cols);
    const int64_t lCols = t.transposed ? rows : (ref.shape.size() >= 2 ? cols : 1);
    const int64_t len = t.partLength == 0 ? lRows : t.partLength;
    if (len < 0 || (len > 0 && (t.storedRow(0) < 0 || t.storedRow(len - 1) >= lRows)))
        fail(ErrorCode::OutOfRange, ref.sourceFile, "part of '" + ref.name + "' lies outside the tensor");

    std::vector<float> out(static_cast<size_t>(len * lCols));
    for (int64_t r = 0; r < len; ++r) {
        const int64_t src = t.storedRow(r);
        for (int64_t c = 0; c < lCols; ++c)
            out[r * lCols + c] = t.transposed ? all[c * cols + src] : all[src * lCols + c];
    }
    return out;
}

MatrixRM readMatrix(const Model& m, const LogicalTensor& t)
{
    std::vector<float> v = readLogical(m, t);
    const int64_t rows = t.shape.size() >= 2 ? t.shape[0] : 1;
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    if (rows * cols != static_cast<int64_t>(v.size()))
        fail(ErrorCode::Malformed, m.path, "tensor '" + t.logicalName + "' has an inconsistent shape");
    return Eigen::Map<const MatrixRM>(v.data(), rows, cols);
}

} // namespace ll

namespace ll {

bool readFactors(const Model& m, const LogicalTensor& t, MatrixRM& A, MatrixRM& B)
{
    if (!t.hasFactors())
        return false;
    const TensorRef& a = m.stored.at(static_cast<size_t>(t.factorA));
    const TensorRef& b = m.stored.at(static_cast<size_t>(t.factorB));
    if (a.shape.size() != 2 || b.shape.size() != 2 || a.shape[1] != b.shape[0] || t.shape.size() != 2
        || a.shape[0] != t.shape[0] || b.shape[1] != t.shape[1])
        fail(ErrorCode::Malformed, m.path, "the factors of '" + t.logicalName + "' do not fit its shape");
    // Rank 0 has no values to decode (and no data pointer).
    const auto decode = [](const TensorRef& r) { return r.elements() > 0 ? decodeStored(r) : std::vector<float>{}; };
    const std::vector<float> av = decode(a), bv = decode(b);
    A = Eigen::Map<const MatrixRM>(av.data(), a.shape[0], a.shape[1]);
    B = Eigen::Map<const MatrixRM>(bv.data(), b.shape[0], b.shape[1]);
    return true;
}

void addLowRank(Eigen::Ref<MatrixRM> W, const MatrixRM& A, const MatrixRM& B)
{
    if (A.cols() > 0)
        W.noalias() += A * B;
}

MatrixRM plusLowRank(const MatrixRM& W, const MatrixRM& A, const MatrixRM& B)
{
    MatrixRM out = W;
    addLowRank(out, A, B);
    return out;
}

void replaceTensorFactored(Model& m, const std::string& logicalName, const MatrixRM& A, const MatrixRM& B)
{
    if (A.cols() != B.rows())
        fail(ErrorCode::InvalidArgument, m.path,
             "factors of '" + logicalName + "' do not chain: A has " + std::to_string(A.cols()) + " columns, B "
                 + std::to_string(B.rows()) + " rows");
    replaceTensorFactored(m, logicalName, std::vector<float>(A.data(), A.data() + A.size()),
                          std::vector<float>(B.data(), B.data() + B.size()), A.rows(), A.cols(), B.cols());
}

} // namespace ll
