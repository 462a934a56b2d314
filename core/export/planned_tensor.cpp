#include "export/planned_tensor.h"

#include "kernels/row_kernels.h"
#include "kernels/stored_matrix.h"
#include "model/tensor_data.h"
#include "util/error.h"

#include <algorithm>
#include <memory>

namespace ll {

int64_t PlannedTensor::elements() const
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

int64_t PlannedTensor::rows() const
{
    const int64_t cols = rowLength();
    return cols > 0 ? elements() / cols : 0;
}

std::vector<float> PlannedTensor::values() const
{
    std::vector<float> v(static_cast<size_t>(elements()));
    if (!v.empty())
        openRows()(0, rows(), v.data());
    return v;
}

std::string shapeText(const std::vector<int64_t>& shape)
{
    std::string s;
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? " x " : "") + std::to_string(shape[i]);
    return s.empty() ? "scalar" : s;
}

namespace {

using RowMap = std::function<int64_t(int64_t)>;

// Rows of a factored tensor's product computed at once (a multiple of 16, so that
// every row takes the GEMM's full-vector path, whatever tile it is in).
constexpr int64_t kFactorTileRows = 64;

int64_t rowsOf(const std::vector<int64_t>& shape) { return shape.empty() ? 1 : shape[0]; }
int64_t colsOf(const std::vector<int64_t>& shape) { return shape.size() >= 2 ? shape[1] : 1; }
int64_t elementsOf(const std::vector<int64_t>& shape)
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

// ---- rotary layouts ----

// HF row index that interleaved row j (within a head) moves to.
int64_t halvesRowOf(int64_t j, int64_t hd) { return (j % 2 == 0) ? j / 2 : hd / 2 + j / 2; }
// Interleaved row index that HF row i (within a head) moves to.
int64_t interleavedRowOf(int64_t i, int64_t hd) { return i < hd / 2 ? 2 * i : 2 * (i - hd / 2) + 1; }

// The input row that output row r takes.
RowMap permutedSource(RotaryPermute p, int64_t hd)
{
    if (p == RotaryPermute::HalvesToInterleaved)
        return [hd](int64_t r) { return (r / hd) * hd + halvesRowOf(r % hd, hd); };
    return [hd](int64_t r) { return (r / hd) * hd + interleavedRowOf(r % hd, hd); };
}

void checkRotaryShape(int64_t rows, int64_t headDim, const std::string& name)
{
    if (headDim <= 0 || headDim % 2 != 0 || rows % headDim != 0)
        fail(ErrorCode::InvalidArgument, name,
             std::to_string(rows) + " rows cannot be split into rotary heads of " + std::to_string(headDim));
}

// Moves whole rows: out row `dst(r)` = in row r.
template <class DestRow>
std::vector<float> permuteRows(const std::vector<float>& v, int64_t rows, int64_t cols, DestRow dst)
{
    std::vector<float> out(v.size());
    for (int64_t r = 0; r < rows; ++r)
        std::copy_n(v.begin() + r * cols, cols, out.begin() + dst(r) * cols);
    return out;
}

std::vector<float> transpose(const std::vector<float>& v, int64_t rows, int64_t cols)
{
    std::vector<float> out(v.size());
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            out[c * rows + r] = v[r * cols + c];
    return out;
}

// ---- readers ----

// Rows of the stored tensor decoded where they lie: the fast row decoders, or a
// packed grid's rows (an edited RTN / GPTQ / AWQ layer kept compressed).
int64_t storedCols(const TensorRef& ref) { return ref.shape.empty() ? 1 : ref.shape.back(); }

bool readableByRows(const TensorRef& ref)
{
    const int64_t cols = storedCols(ref);
    if (!ref.data)
        return false;
    if (ref.dtype == DType::Grid || ref.dtype == DType::Sparse)
        return storedRowBytes(ref, cols) > 0 && ref.shape.size() == 2;
    return hasRowKernels(ref.dtype) && (cols == 0 || storedRowBytes(ref.dtype, cols) > 0);
}

BandReader storedRows(const TensorRef& ref, RowMap rowOf)
{
    const int64_t cols = storedCols(ref);
    if (ref.dtype == DType::Grid || ref.dtype == DType::Sparse) {
        auto m = std::make_shared<StoredMatrix>(StoredMatrix::ofTensor(ref, ref.elements() / std::max<int64_t>(cols, 1), cols));
        auto reader = std::make_shared<RowReader>(*m);
        return [m, reader, rowOf, cols](int64_t r0, int64_t n, float* out) {
            for (int64_t i = 0; i < n; ++i)
                reader->decode(rowOf ? rowOf(r0 + i) : r0 + i, out + i * cols);
        };
    }
    const size_t rowBytes = storedRowBytes(ref.dtype, cols);
    const RowDecodeFn decode = rowKernels(ref.dtype).decode;
    const uint8_t* data = ref.data;
    return [=](int64_t r0, int64_t n, float* out) {
        if (!rowOf) {
            decode(data + static_cast<size_t>(r0) * rowBytes, out, n * cols);
            return;
        }
        for (int64_t i = 0; i < n; ++i)
            decode(data + static_cast<size_t>(rowOf(r0 + i)) * rowBytes, out + i * cols, cols);
    };
}

// A tensor that can only be produced whole (transposed or 1-D parts, types
// without row decoders): produced on the first read, freed with the reader.
std::function<BandReader()> wholeReader(std::function<std::vector<float>()> produce, std::vector<int64_t> shape, std::string name)
{
    return [produce = std::move(produce), shape = std::move(shape), name = std::move(name)] {
        auto cache = std::make_shared<std::vector<float>>();
        auto filled = std::make_shared<bool>(false);
        const int64_t cols = shape.empty() ? 1 : shape.back();
        return BandReader([=](int64_t r0, int64_t n, float* out) {
            if (!*filled) {
                *cache = produce();
                *filled = true;
                if (static_cast<int64_t>(cache->size()) != elementsOf(shape))
                    fail(ErrorCode::InvalidArgument, "",
                         "tensor '" + name + "' has " + std::to_string(cache->size()) + " values, its shape "
                             + shapeText(shape) + " needs " + std::to_string(elementsOf(shape)));
            }
            std::copy_n(cache->data() + r0 * cols, n * cols, out);
        });
    };
}

// How to read a logical tensor's rows (logical layout).
struct RowPlan {
    std::function<BandReader()> open;
    const TensorRef* stored = nullptr; // rows are this stored tensor's rows (see PlannedTensor::stored)
    RowMap storedRowOf;
};

RowPlan factoredRows(const Model& m, const LogicalTensor& t)
{
    const TensorRef& a = m.stored.at(static_cast<size_t>(t.factorA));
    const TensorRef& b = m.stored.at(static_cast<size_t>(t.factorB));
    if (a.shape.size() != 2 || b.shape.size() != 2 || a.shape[1] != b.shape[0] || t.shape.size() != 2
        || a.shape[0] != t.shape[0] || b.shape[1] != t.shape[1])
        fail(ErrorCode::Malformed, m.path, "the factors of '" + t.logicalName + "' do not fit its shape");
    RowPlan p;
    if (!readableByRows(a) && a.elements() > 0) {
        p.open = wholeReader([&m, &t] { return readLogical(m, t); }, t.shape, t.logicalName);
        return p;
    }
    p.open = [&a, &b] {
        // W = A B tile by tile: B (k, in) decoded once per tensor, then the product of
        // each fixed tile of kFactorTileRows rows of A (the last tile computed is kept,
        // for reads of a few rows). Tiles sit at fixed rows, so the values do not depend
        // on how the export cuts its bands; a tensor of one tile is readLogical's product.
        const int64_t out = a.shape[0], k = a.shape[1], in = b.shape[1];
        auto B = std::make_shared<MatrixRM>(k, in);
        if (k > 0)
            *B = Eigen::Map<const MatrixRM>(decodeStored(b).data(), k, in);
        BandReader aRows = k > 0 ? storedRows(a, {}) : BandReader{};
        auto tile = std::make_shared<MatrixRM>();
        auto tileIndex = std::make_shared<int64_t>(-1);
        return BandReader([=](int64_t r0, int64_t n, float* dst) {
            for (int64_t r = r0; r < r0 + n;) {
                const int64_t t = r / kFactorTileRows, first = t * kFactorTileRows;
                if (*tileIndex != t) {
                    const int64_t rows = std::min(kFactorTileRows, out - first);
                    MatrixRM A(rows, k);
                    if (k > 0)
                        aRows(first, rows, A.data());
                    tile->resize(rows, in);
                    tile->noalias() = A * *B;
                    *tileIndex = t;
                }
                const int64_t take = std::min(r0 + n, first + kFactorTileRows) - r;
                std::copy_n(tile->data() + (r - first) * in, take * in, dst + (r - r0) * in);
                r += take;
            }
        });
    };
    return p;
}

RowPlan logicalRows(const Model& m, const LogicalTensor& t)
{
    if (t.factored())
        return factoredRows(m, t);
    RowPlan p;
    if (t.corrected()) { // W^ + A B, one tensor at a time (the checkpoint formats have no correction)
        p.open = wholeReader([&m, &t] { return readLogical(m, t); }, t.shape, t.logicalName);
        return p;
    }
    if (t.replacedBy >= 0) { // edited values are stored in the logical layout already
        const TensorRef& ref = m.stored.at(static_cast<size_t>(t.replacedBy));
        if (readableByRows(ref) && ref.elements() == t.elements()
            && (ref.shape.empty() ? 1 : ref.shape.back()) == (t.shape.empty() ? 1 : t.shape.back())) {
            p.stored = &ref;
            p.open = [&ref] { return storedRows(ref, {}); };
            return p;
        }
    } else {
        const TensorRef& ref = m.storedOf(t);
        const bool whole = t.partLength == 0 && t.partGroupRows == 0 && t.partOffset == 0 && t.shape == ref.shape;
        const bool rowsOfMatrix = t.shape.size() == 2 && ref.shape.size() == 2 && t.shape[1] == ref.shape[1];
        if (!t.transposed && readableByRows(ref) && (whole || rowsOfMatrix)) {
            p.stored = &ref;
            if (!whole) {
                const int64_t len = t.shape[0];
                if (len > 0 && (t.storedRow(0) < 0 || t.storedRow(len - 1) >= ref.shape[0]))
                    fail(ErrorCode::OutOfRange, ref.sourceFile, "part of '" + ref.name + "' lies outside the tensor");
                const LogicalTensor* tp = &t;
                p.storedRowOf = [tp](int64_t r) { return tp->storedRow(r); };
            }
            const RowMap rowOf = p.storedRowOf;
            p.open = [&ref, rowOf] { return storedRows(ref, rowOf); };
            return p;
        }
    }
    p.open = wholeReader([&m, &t] { return readLogical(m, t); }, t.shape, t.logicalName);
    return p;
}

// Rows of `inner` in the order `source` gives, band by band through whole
// heads of `hd` rows (a band of output rows needs only the heads it covers).
std::function<BandReader()> permutedReader(std::function<BandReader()> inner, RowMap source, int64_t hd, int64_t cols)
{
    return [inner = std::move(inner), source = std::move(source), hd, cols] {
        BandReader read = inner();
        auto scratch = std::make_shared<std::vector<float>>();
        return BandReader([=](int64_t r0, int64_t n, float* out) {
            const int64_t lo = r0 / hd * hd, hi = (r0 + n + hd - 1) / hd * hd;
            scratch->resize(static_cast<size_t>((hi - lo) * cols));
            read(lo, hi - lo, scratch->data());
            for (int64_t i = 0; i < n; ++i)
                std::copy_n(scratch->data() + (source(r0 + i) - lo) * cols, cols, out + i * cols);
        });
    };
}

} // namespace

std::vector<float> interleavedToHalves(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t hd)
{
    return permuteRows(v, rows, cols, [hd](int64_t r) { return (r / hd) * hd + halvesRowOf(r % hd, hd); });
}

std::vector<float> halvesToInterleaved(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t hd)
{
    return permuteRows(v, rows, cols, [hd](int64_t r) { return (r / hd) * hd + interleavedRowOf(r % hd, hd); });
}

PlannedTensor computedTensor(const std::string& name, std::vector<float> values)
{
    PlannedTensor p;
    p.name = name;
    p.shape = {static_cast<int64_t>(values.size())};
    auto v = std::make_shared<const std::vector<float>>(std::move(values));
    p.openRows = [v] { return BandReader([v](int64_t, int64_t, float* out) { std::copy(v->begin(), v->end(), out); }); };
    return p;
}

PlannedTensor rebuildStored(const Model& m, const std::string& name, std::vector<const LogicalTensor*> parts)
{
    if (parts.empty())
        fail(ErrorCode::InvalidArgument, m.path, "no logical tensor lives in '" + name + "'");
    std::sort(parts.begin(), parts.end(),
              [](const LogicalTensor* a, const LogicalTensor* b) { return a->partOffset < b->partOffset; });
    PlannedTensor p;
    p.name = name;
    p.isBias = parts[0]->isBias;
    const LogicalTensor& first = *parts[0];
    const TensorRef& ref = m.storedOf(first);
    bool edited = false;
    for (const LogicalTensor* t : parts)
        edited = edited || t->edited();

    if (parts.size() == 1 && first.partLength == 0) {
        // A whole tensor: only a Conv1D weight needs turning back.
        const LogicalTensor* t = parts[0];
        const bool transposed = t->transposed && t->shape.size() == 2;
        p.shape = transposed ? std::vector<int64_t>{t->shape[1], t->shape[0]} : t->shape;
        if (!edited && p.shape == ref.shape && readableByRows(ref)) {
            p.stored = &ref;
            p.openRows = [&ref] { return storedRows(ref, {}); };
        } else if (!transposed) {
            RowPlan r = logicalRows(m, *t);
            p.openRows = std::move(r.open);
            p.stored = r.stored;
            p.storedRowOf = std::move(r.storedRowOf);
        } else {
            const int64_t rows = t->shape[0], cols = t->shape[1];
            p.openRows = wholeReader([&m, t, rows, cols] { return transpose(readLogical(m, *t), rows, cols); }, p.shape, name);
        }
        return p;
    }

    // Fused parts: all of the same rank and width, stacked along the logical rows.
    const size_t rank = first.shape.size();
    const int64_t cols = colsOf(first.shape);
    const bool strided = first.partGroupRows > 0;
    int64_t totalRows = 0, groups = -1, stride = 0;
    for (const LogicalTensor* t : parts) {
        if (t->shape.size() != rank || rank > 2 || colsOf(t->shape) != cols || t->transposed != first.transposed
            || (t->partGroupRows > 0) != strided)
            fail(ErrorCode::InvalidArgument, m.path,
                 "the parts of '" + name + "' no longer fit together (" + t->logicalName + " is " + shapeText(t->shape) + ")");
        totalRows += rowsOf(t->shape);
        if (strided) {
            if (rowsOf(t->shape) % t->partGroupRows != 0
                || (groups >= 0 && rowsOf(t->shape) / t->partGroupRows != groups))
                fail(ErrorCode::InvalidArgument, m.path,
                     "the per-head parts of '" + name + "' no longer have the same number of heads");
            groups = rowsOf(t->shape) / t->partGroupRows;
            stride += t->partGroupRows;
        }
    }
    const bool transposed = first.transposed && rank == 2;
    p.shape = rank == 1 ? std::vector<int64_t>{totalRows}
                        : (transposed ? std::vector<int64_t>{cols, totalRows} : std::vector<int64_t>{totalRows, cols});
    if (!edited && p.shape == ref.shape && readableByRows(ref)) {
        p.stored = &ref; // the parts put back together are the stored tensor
        p.openRows = [&ref] { return storedRows(ref, {}); };
        return p;
    }
    if (rank == 2 && !transposed) {
        // Output row R lives in one part: contiguous parts one after another, strided
        // ones (GPT-NeoX) a group of partGroupRows rows of each part per head.
        std::vector<RowPlan> plans;
        std::vector<int64_t> offsets; // first row of each part, or its row within each group
        int64_t offset = 0;
        for (const LogicalTensor* t : parts) {
            plans.push_back(logicalRows(m, *t));
            offsets.push_back(offset);
            offset += strided ? t->partGroupRows : rowsOf(t->shape);
        }
        p.openRows = [plans, offsets, parts, strided, stride, cols] {
            std::vector<BandReader> readers;
            for (const RowPlan& rp : plans)
                readers.push_back(rp.open());
            // (part, its logical row) of output row R
            auto locate = [=](int64_t R) {
                const int64_t within = strided ? R % stride : R;
                size_t k = 0;
                while (k + 1 < offsets.size() && offsets[k + 1] <= within)
                    ++k;
                const int64_t row = strided ? (R / stride) * parts[k]->partGroupRows + within - offsets[k] : within - offsets[k];
                return std::pair<size_t, int64_t>{k, row};
            };
            return BandReader([=](int64_t r0, int64_t n, float* out) {
                for (int64_t i = 0; i < n;) {
                    const auto [k, row] = locate(r0 + i);
                    int64_t run = 1; // consecutive rows of the same part
                    while (i + run < n && locate(r0 + i + run) == std::pair<size_t, int64_t>{k, row + run})
                        ++run;
                    readers[k](row, run, out + i * cols);
                    i += run;
                }
            });
        };
        return p;
    }
    // Transposed (GPT-2 Conv1D) or 1-D fused parts, edited: put together whole, as small models have them.
    p.openRows = wholeReader(
        [&m, parts, cols, totalRows, strided, stride, transposed] {
            std::vector<float> all(static_cast<size_t>(totalRows * cols));
            int64_t offset = 0; // contiguous: first row of this part; strided: its row within each group
            for (const LogicalTensor* t : parts) {
                const std::vector<float> v = readLogical(m, *t);
                const int64_t rows = rowsOf(t->shape);
                for (int64_t r = 0; r < rows; ++r) {
                    const int64_t dst = strided ? (r / t->partGroupRows) * stride + offset + r % t->partGroupRows : offset + r;
                    std::copy_n(v.begin() + r * cols, cols, all.begin() + dst * cols);
                }
                offset += strided ? t->partGroupRows : rows;
            }
            return transposed ? transpose(all, totalRows, cols) : all;
        },
        p.shape, name);
    return p;
}

PlannedTensor logicalAsIs(const Model& m, const LogicalTensor& t, const std::string& name, RotaryPermute permute,
                          int64_t headDim)
{
    PlannedTensor p;
    p.name = name;
    p.shape = t.shape;
    p.isBias = t.isBias;
    const int64_t rows = rowsOf(t.shape), cols = colsOf(t.shape);
    if (permute != RotaryPermute::None)
        checkRotaryShape(rows, headDim, t.logicalName);
    RowPlan base = logicalRows(m, t);
    if (permute == RotaryPermute::None) {
        p.openRows = std::move(base.open);
        p.stored = base.stored;
        p.storedRowOf = std::move(base.storedRowOf);
        return p;
    }
    if (t.shape.size() < 2) { // a q/k bias: one row of values, permuted as a column
        const LogicalTensor* tp = &t;
        p.openRows = wholeReader(
            [&m, tp, permute, rows, cols, headDim] {
                const std::vector<float> v = readLogical(m, *tp);
                return permute == RotaryPermute::InterleavedToHalves ? interleavedToHalves(v, rows, cols, headDim)
                                                                     : halvesToInterleaved(v, rows, cols, headDim);
            },
            p.shape, t.logicalName);
        return p;
    }
    const RowMap source = permutedSource(permute, headDim);
    if (base.stored) { // each output row is a stored row: decode it where it lies
        const RowMap inner = base.storedRowOf;
        p.stored = base.stored;
        p.storedRowOf = inner ? RowMap([inner, source](int64_t r) { return inner(source(r)); }) : source;
        const TensorRef* ref = base.stored;
        const RowMap rowOf = p.storedRowOf;
        p.openRows = [ref, rowOf] { return storedRows(*ref, rowOf); };
        return p;
    }
    p.openRows = permutedReader(std::move(base.open), source, headDim, cols);
    p.rowAlign = headDim;
    return p;
}

} // namespace ll
