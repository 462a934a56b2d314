#include "kernels/stored_matrix.h"

#include "kernels/row_kernels.h"
#include "kernels/grid_kernels.h"
#include "kernels/sparse_kernels.h"
#include "util/error.h"

#include <vector>

namespace ll {

size_t storedRowBytes(DType type, int64_t cols)
{
    const DTypeLayout l = dtypeLayout(type);
    if (l.blockElems == 0 || cols < 0 || cols % l.blockElems != 0)
        return 0;
    return static_cast<size_t>(cols / l.blockElems) * l.blockBytes;
}

size_t storedRowBytes(const TensorRef& t, int64_t cols)
{
    if (t.dtype == DType::Grid)
        return t.grid && t.grid->cols == cols ? t.grid->rowBytes() : 0;
    if (t.dtype == DType::Sparse)
        return t.sparse && t.sparse->cols == cols ? t.sparse->rowBytes() : 0;
    return storedRowBytes(t.dtype, cols);
}

StoredMatrix StoredMatrix::ofTensor(const TensorRef& t, int64_t rows, int64_t cols)
{
    StoredMatrix m = view(t.dtype, t.data, rows, cols, t.keepAlive, t.grid, t.sparse);
    if (t.dtype == DType::Sparse && t.nbytes > m.bytes())
        m.poolBytes = t.nbytes - m.bytes();
    return m;
}

StoredMatrix StoredMatrix::view(DType type, const uint8_t* data, int64_t rows, int64_t cols,
                                std::shared_ptr<const void> keepAlive, std::shared_ptr<const GridLayout> grid,
                                std::shared_ptr<const SparseLayout> sparse)
{
    if (type == DType::Grid || type == DType::Sparse) { // rows whose layout travels beside them
        const bool fits = type == DType::Grid ? grid && grid->cols == cols : sparse && sparse->cols == cols;
        if (!fits)
            fail(ErrorCode::InvalidArgument, "", std::string(type == DType::Grid ? "a packed grid matrix" : "sparse rows")
                                                     + " without a layout of " + std::to_string(cols) + " columns");
        type == DType::Grid ? grid->validate() : sparse->validate();
        StoredMatrix m;
        m.type = type;
        m.data = data;
        m.rows = rows;
        m.cols = cols;
        m.rowBytes = type == DType::Grid ? grid->rowBytes() : sparse->rowBytes();
        m.keepAlive = std::move(keepAlive);
        m.grid = std::move(grid);
        m.sparse = std::move(sparse);
        return m;
    }
    if (!hasRowKernels(type))
        fail(ErrorCode::UnsupportedDType, "", "the engine cannot compute with " + std::string(dtypeName(type)) + " weights");
    const size_t rowBytes = storedRowBytes(type, cols);
    if (rows < 0 || (rowBytes == 0 && cols != 0))
        fail(ErrorCode::InvalidArgument, "",
             "a row of " + std::to_string(cols) + " values is not a whole number of " + std::string(dtypeName(type)) + " blocks");
    StoredMatrix m;
    m.type = type;
    m.data = data;
    m.rows = rows;
    m.cols = cols;
    m.rowBytes = rowBytes;
    m.keepAlive = std::move(keepAlive);
    return m;
}

StoredMatrix StoredMatrix::fromMatrix(MatrixRM values)
{
    auto owned = std::make_shared<MatrixRM>(std::move(values));
    const auto* bytes = reinterpret_cast<const uint8_t*>(owned->data());
    const int64_t rows = owned->rows(), cols = owned->cols();
    return view(DType::F32, bytes, rows, cols, std::move(owned));
}

void StoredMatrix::decodeRows(int64_t r0, int64_t n, float* out) const
{
    if (r0 < 0 || n < 0 || r0 + n > rows)
        fail(ErrorCode::OutOfRange, "", "rows " + std::to_string(r0) + ".." + std::to_string(r0 + n) + " of a matrix of "
                                            + std::to_string(rows));
    const RowReader reader(*this);
    for (int64_t r = 0; r < n; ++r)
        reader.decode(r0 + r, out + r * cols);
}

RowReader::RowReader(const StoredMatrix& m) : m_(m)
{
    if (m.type != DType::Grid && m.type != DType::Sparse) {
        const RowKernels k = rowKernels(m.type);
        decode_ = k.decode;
        dot_ = k.dot;
        layout_ = dtypeLayout(m.type);
    }
}

void RowReader::decodeColumns(int64_t r, int64_t c0, int64_t n, float* out) const
{
    if (decode_)
        decode_(m_.row(r) + static_cast<size_t>(c0 / layout_.blockElems) * layout_.blockBytes, out, n);
    else if (m_.sparse)
        decodeSparseColumnsFast(*m_.sparse, m_.row(r), c0, n, out);
    else
        decodeGridColumnsFast(*m_.grid, m_.row(r), c0, n, out);
}

void RowReader::decode(int64_t r, float* out) const
{
    if (decode_)
        decode_(m_.row(r), out, m_.cols);
    else if (m_.sparse)
        decodeSparseColumnsFast(*m_.sparse, m_.row(r), 0, m_.cols, out);
    else
        decodeGridColumnsFast(*m_.grid, m_.row(r), 0, m_.cols, out);
}

float RowReader::dot(int64_t r, const float* x) const
{
    if (dot_)
        return dot_(m_.row(r), x, m_.cols);
    if (m_.sparse)
        return sparseDot(*m_.sparse, m_.row(r), x);
    return gridDot(*m_.grid, m_.row(r), x);
}

MatrixRM StoredMatrix::toMatrix() const
{
    MatrixRM m(rows, cols);
    if (!empty())
        decodeRows(0, rows, m.data());
    return m;
}

} // namespace ll
