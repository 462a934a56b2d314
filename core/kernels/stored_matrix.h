#pragma once
// A matrix read in place, in whatever type it is stored: a view of a mapped
// checkpoint (F32, F16, BF16 or a ggml block type) or of a buffer LayerLab
// owns (edited weights). Row r of the (rows, cols) matrix starts at
// data + r * rowBytes and holds cols values, a whole number of the type's blocks.
//
// The engine computes from these views (kernels/matmul.h), so opening a model
// never converts it: a 13 GB BF16 checkpoint stays 13 GB of mapped file, not
// 27 GB of F32 copies.
#include "model/dtype.h"
#include "kernels/row_kernels.h"
#include "model/packed_grid.h"
#include "model/tensor_data.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ll {

struct StoredMatrix {
    DType type = DType::F32;
    const uint8_t* data = nullptr;
    int64_t rows = 0, cols = 0;
    size_t rowBytes = 0;
    std::shared_ptr<const void> keepAlive; // the mapping or buffer that owns data
    std::shared_ptr<const GridLayout> grid; // DType::Grid: the layout of every row
    std::shared_ptr<const SparseLayout> sparse; // DType::Sparse: the layout of every row
    uint64_t poolBytes = 0; // Sparse: the kept values after the row headers (for bytes())

    int64_t elements() const { return rows * cols; }
    bool empty() const { return elements() == 0; }
    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * rowBytes; }
    uint64_t bytes() const { return static_cast<uint64_t>(rows) * rowBytes + poolBytes; }

    // Rows [r0, r0 + n) as floats into out (n, cols), row-major.
    void decodeRows(int64_t r0, int64_t n, float* out) const;
    // The whole matrix as F32 (a copy).
    MatrixRM toMatrix() const;

    // A view of rows (rows, cols) of `type` starting at data; checks that a row
    // is a whole number of blocks (InvalidArgument otherwise). A Grid and
    // Sparse rows need their layout.
    static StoredMatrix view(DType type, const uint8_t* data, int64_t rows, int64_t cols,
                             std::shared_ptr<const void> keepAlive, std::shared_ptr<const GridLayout> grid = nullptr,
                             std::shared_ptr<const SparseLayout> sparse = nullptr);
    // The whole of a stored tensor as (rows, cols), with its layout.
    static StoredMatrix ofTensor(const TensorRef& t, int64_t rows, int64_t cols);
    // Takes ownership of an F32 matrix.
    static StoredMatrix fromMatrix(MatrixRM m);
};

// Bytes of one row of `cols` values of `type`; 0 when cols is not a whole
// number of blocks (or for a Grid or Sparse rows: their layout says).
size_t storedRowBytes(DType type, int64_t cols);
// Bytes of one row of `cols` values of the stored tensor t, whatever its type
// (a Grid's or Sparse rows' layout included); 0 when its rows cannot hold cols values.
size_t storedRowBytes(const TensorRef& t, int64_t cols);

// Reads the rows of one StoredMatrix: decoding and fused dot products with
// the fastest kernels for its type (row_kernels.h; grid_kernels.h for a Grid,
// sparse_kernels.h for Sparse rows).
class RowReader {
public:
    explicit RowReader(const StoredMatrix& m);
    // Row r as m.cols floats.
    void decode(int64_t r, float* out) const;
    // Columns [c0, c0 + n) of row r; c0 and n whole blocks of the type (rows of
    // every type hold whole 256-value blocks when n is a multiple of 256).
    void decodeColumns(int64_t r, int64_t c0, int64_t n, float* out) const;
    // Row r dotted with x (m.cols values).
    float dot(int64_t r, const float* x) const;

private:
    const StoredMatrix& m_;
    RowDecodeFn decode_ = nullptr;
    RowDotFn dot_ = nullptr;
    DTypeLayout layout_;
};

} // namespace ll
