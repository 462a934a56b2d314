#include "kernels/stored_matrix.h"

#include "kernels/row_kernels.h"
#include "util/error.h"

namespace ll {

size_t storedRowBytes(DType type, int64_t cols)
{
    const DTypeLayout l = dtypeLayout(type);
    if (l.blockElems == 0 || cols < 0 || cols % l.blockElems != 0)
        return 0;
    return static_cast<size_t>(cols / l.blockElems) * l.blockBytes;
}

StoredMatrix StoredMatrix::view(DType type, const uint8_t* data, int64_t rows, int64_t cols,
                                std::shared_ptr<const void> keepAlive)
{
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
    const RowKernels k = rowKernels(type);
    for (int64_t r = 0; r < n; ++r)
        k.decode(row(r0 + r), out + r * cols, cols);
}

MatrixRM StoredMatrix::toMatrix() const
{
    MatrixRM m(rows, cols);
    if (!empty())
        decodeRows(0, rows, m.data());
    return m;
}

} // namespace ll
