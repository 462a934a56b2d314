#include "quant/packed_storage.h"

#include "kernels/row_kernels.h"
#include "kernels/stored_matrix.h"
#include "model/tensor_data.h"
#include "util/half.h"
#include "util/spill_buffer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ll {

namespace {

TensorRef tensorOf(DType type, std::shared_ptr<EditBuffer> bytes, int64_t rows, int64_t cols)
{
    TensorRef t;
    t.shape = {rows, cols};
    t.dtype = type;
    t.dtypeLabel = std::string(dtypeName(type));
    t.nbytes = bytes->size();
    t.data = bytes->data();
    t.keepAlive = std::move(bytes);
    return t;
}

bool sameBits(const float* a, const float* b, int64_t n)
{
    return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

// A row's exceptions (model/packed_grid.h): its dense columns' values and its
// outliers, from the method's dense columns and its list of single weights.
struct RowExceptions {
    std::vector<int32_t> denseColumns; // ascending
    std::vector<int32_t> denseOrder;   // p.denseValues' column of each
    std::vector<std::vector<std::pair<int32_t, float>>> outliers; // per row: (column, value)
    int64_t slots = 0;

    RowExceptions(const PackedQuant& p, int64_t rows)
    {
        std::vector<std::pair<int32_t, int32_t>> cols;
        for (size_t k = 0; k < p.denseColumns.size(); ++k)
            cols.emplace_back(p.denseColumns[k], static_cast<int32_t>(k));
        std::sort(cols.begin(), cols.end());
        for (const auto& [c, k] : cols) {
            denseColumns.push_back(c);
            denseOrder.push_back(k);
        }
        if (p.outliers.size() == 0)
            return;
        outliers.resize(static_cast<size_t>(rows));
        for (size_t k = 0; k < p.outliers.size(); ++k)
            if (p.outliers.rows[k] >= 0 && p.outliers.rows[k] < rows)
                outliers[static_cast<size_t>(p.outliers.rows[k])].emplace_back(p.outliers.cols[k], p.outliers.values[k]);
        for (const auto& r : outliers)
            slots = std::max(slots, static_cast<int64_t>(r.size()));
    }
};

// The grid of `p` (integer, codebook or binary coding, with its exceptions) as
// a packed Grid (rows, cols), when it holds no parts a Grid cannot and, if `W`
// is given, each row decodes to W's exactly.
std::optional<TensorRef> packGrid(const PackedQuant& p, int64_t rows, int64_t cols, const MatrixRM* W)
{
    // An integer grid, dense codes into a codebook (NF4, FP8, FP4), or binary coding (BCQ).
    const bool codebook = p.format == PackedQuant::Format::Dense && !p.codebook.empty();
    const bool binary = p.format == PackedQuant::Format::Bcq;
    if ((p.format != PackedQuant::Format::IntGrid && !codebook && !binary)
        || static_cast<int64_t>(p.codes.size()) != rows * cols || rows == 0)
        return std::nullopt;
    auto layout = std::make_shared<GridLayout>();
    layout->cols = cols;
    if (binary) {
        layout->binaryCoding = true;
        layout->bits = p.bits;
        layout->groupCols = p.bcqGroupCols;
        layout->groups = p.bcqGroupCols > 0 ? (cols + p.bcqGroupCols - 1) / p.bcqGroupCols : 0;
        if (p.bcqGroupCols <= 0 || p.bcqAlpha.rows() != rows * layout->groups || p.bcqAlpha.cols() != p.bits)
            return std::nullopt;
    } else {
        layout->bits = codebook ? p.bits : p.grid.grid.bits;
        layout->groupCols = p.grid.groupCols;
        layout->groups = p.grid.scales.cols();
        layout->groupIndex = p.groupIndex;
        if (codebook && (p.bits < 1 || p.bits > 8 || p.codebook.size() != (size_t{1} << p.bits)))
            return std::nullopt;
        if (codebook)
            layout->codebook = p.codebook;
        if (p.grid.groupCols <= 0)
            return std::nullopt;
    }
    // AWQ's weights are the grid times 1/s (quant/awq.cpp): the same multipliers here.
    if (p.inputScale.size() == cols)
        for (int64_t c = 0; c < cols; ++c)
            layout->columnScale.push_back(1.0f / p.inputScale(c));
    if (layout->bits < 1 || layout->bits > 8)
        return std::nullopt;
    // Zero points are grid integers (GPTQ's round(-min / scale), 2^(b-1)): one byte each.
    const bool integer = !codebook && !binary;
    for (Eigen::Index i = 0; integer && i < p.grid.zeros.size(); ++i) {
        const float z = p.grid.zeros.data()[i];
        if (!(z >= 0.0f && z <= 255.0f) || std::nearbyint(z) != z)
            return std::nullopt;
    }
    const RowExceptions ex(p, rows);
    // Under an exception the code is the zero point, so it must be a code.
    const bool anyExceptions = !ex.denseColumns.empty() || ex.slots > 0;
    if (integer && anyExceptions && p.grid.zeros.size() > 0 && p.grid.zeros.maxCoeff() > static_cast<float>((1 << layout->bits) - 1))
        return std::nullopt;
    if (p.denseValues.rows() != (ex.denseColumns.empty() ? p.denseValues.rows() : rows)
        || p.denseValues.cols() != static_cast<Eigen::Index>(ex.denseColumns.size()))
        return std::nullopt;
    layout->denseColumns = ex.denseColumns;
    layout->outlierSlots = ex.slots;
    layout->validate();
    // Exceptions are worth keeping in the grid while a row stays within half precision's bytes.
    if (layout->hasExceptions() && layout->rowBytes() > static_cast<size_t>(cols) * 2)
        return std::nullopt;
    const bool perTensor = !binary && p.grid.scales.rows() == 1 && rows > 1;
    if (!binary && !perTensor && p.grid.scales.rows() != rows)
        return std::nullopt;
    const size_t rowBytes = layout->rowBytes();
    auto bytes = makeEditBuffer(rowBytes * static_cast<size_t>(rows));
    std::vector<float> scales(static_cast<size_t>(layout->groups) * (binary ? static_cast<size_t>(layout->bits) : 1));
    std::vector<uint8_t> zeros(static_cast<size_t>(layout->groups));
    std::vector<uint8_t> codes(static_cast<size_t>(cols));
    std::vector<float> dense(ex.denseColumns.size());
    std::vector<int32_t> outlierCols;
    std::vector<float> outlierValues;
    std::vector<float> decoded(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t pr = perTensor ? 0 : r;
        for (int64_t g = 0; g < layout->groups; ++g) {
            if (binary) {
                for (int i = 0; i < layout->bits; ++i)
                    scales[static_cast<size_t>(g * layout->bits + i)] = p.bcqAlpha(r * layout->groups + g, i);
                continue;
            }
            scales[static_cast<size_t>(g)] = p.grid.scales(pr, g);
            zeros[static_cast<size_t>(g)] = codebook ? 0 : static_cast<uint8_t>(p.grid.zeros(pr, g));
        }
        std::copy_n(p.codes.data() + r * cols, cols, codes.data());
        outlierCols.clear();
        outlierValues.clear();
        for (size_t k = 0; k < ex.denseColumns.size(); ++k)
            dense[k] = p.denseValues(r, ex.denseOrder[k]);
        // Each position once (the integer dot adds every exception): an outlier
        // in a dense column takes the column's place, a later one an earlier's.
        if (!ex.outliers.empty())
            for (const auto& [c, v] : ex.outliers[static_cast<size_t>(r)]) {
                const auto d = std::lower_bound(ex.denseColumns.begin(), ex.denseColumns.end(), c);
                if (d != ex.denseColumns.end() && *d == c) {
                    dense[static_cast<size_t>(d - ex.denseColumns.begin())] = v;
                    continue;
                }
                const auto o = std::find(outlierCols.begin(), outlierCols.end(), c);
                if (o != outlierCols.end()) {
                    outlierValues[static_cast<size_t>(o - outlierCols.begin())] = v;
                    continue;
                }
                outlierCols.push_back(c);
                outlierValues.push_back(v);
            }
        // Under an exception an integer code is its group's zero: it adds 0 to an integer dot.
        const auto zeroCode = [&](int32_t c) {
            if (integer)
                codes[static_cast<size_t>(c)] = zeros[static_cast<size_t>(layout->groupOf(c))];
        };
        for (int32_t c : ex.denseColumns)
            zeroCode(c);
        for (int32_t c : outlierCols)
            zeroCode(c);
        uint8_t* row = bytes->data() + static_cast<size_t>(r) * rowBytes;
        encodeGridRow(*layout, scales.data(), zeros.data(), codes.data(), row);
        writeGridExceptions(*layout, dense.data(), outlierCols.data(), outlierValues.data(),
                            static_cast<int64_t>(outlierCols.size()), row);
        if (!W)
            continue;
        decodeGridRow(*layout, row, decoded.data());
        if (!sameBits(decoded.data(), W->data() + r * cols, cols))
            return std::nullopt;
    }
    TensorRef t = tensorOf(DType::Grid, std::move(bytes), rows, cols);
    const std::string kind = binary ? "bcq" : codebook ? "cb" : "int";
    t.dtypeLabel = kind + std::to_string(layout->bits)
                   + (layout->groupCols < cols ? " g" + std::to_string(layout->groupCols) : std::string(" row"));
    if (!layout->denseColumns.empty())
        t.dtypeLabel += " + " + std::to_string(layout->denseColumns.size()) + " columns";
    if (layout->outlierSlots > 0)
        t.dtypeLabel += " + outliers";
    t.grid = std::move(layout);
    return t;
}

// Codes stored in a type the engine reads (ggml blocks, F16), when they
// decode to W's values (not checked without W).
std::optional<TensorRef> packDense(const PackedQuant& p, int64_t rows, int64_t cols, const MatrixRM* W)
{
    if (p.format != PackedQuant::Format::Dense || !hasRowKernels(p.storedType) || rows == 0)
        return std::nullopt;
    const size_t rowBytes = storedRowBytes(p.storedType, cols);
    if (rowBytes == 0 || p.codes.size() != rowBytes * static_cast<size_t>(rows))
        return std::nullopt;
    const RowDecodeFn decode = referenceRowKernels(p.storedType).decode;
    std::vector<float> decoded(static_cast<size_t>(cols));
    for (int64_t r = 0; W && r < rows; ++r) {
        decode(p.codes.data() + static_cast<size_t>(r) * rowBytes, decoded.data(), cols);
        if (!sameBits(decoded.data(), W->data() + r * cols, cols))
            return std::nullopt;
    }
    auto bytes = makeEditBuffer(p.codes.size());
    std::memcpy(bytes->data(), p.codes.data(), p.codes.size());
    return tensorOf(p.storedType, std::move(bytes), rows, cols);
}

// A corrected layer's weights are its codes' values plus A B: checked as a
// whole, with the function readLogical computes them with.
bool decodesWithCorrection(const TensorRef& base, const QuantizedLayer& layer)
{
    const std::vector<float> values = decodeStored(base);
    const MatrixRM sum = plusLowRank(Eigen::Map<const MatrixRM>(values.data(), layer.weights.rows(), layer.weights.cols()),
                                     layer.factorA, layer.factorB);
    return sameBits(sum.data(), layer.weights.data(), sum.size());
}

} // namespace

std::optional<TensorRef> takePackedTensor(QuantizedLayer& layer)
{
    const int64_t rows = layer.weights.rows(), cols = layer.weights.cols();
    const bool corrected = layer.factorA.size() > 0 || layer.factorB.size() > 0;
    const MatrixRM* rowCheck = corrected ? nullptr : &layer.weights;
    std::optional<TensorRef> t = packGrid(layer.packed, rows, cols, rowCheck);
    if (t && !layer.packed.codebook.empty()) // "nf4", "fp8 e4m3", "fp4 e2m1 g32"
        t->dtypeLabel = layer.method.substr(0, layer.method.find(" + "));
    if (!t)
        t = packDense(layer.packed, rows, cols, rowCheck);
    if (!t || (corrected && !decodesWithCorrection(*t, layer)))
        return std::nullopt;
    layer.packed.codes.clear();
    layer.packed.codes.shrink_to_fit();
    return t;
}

TensorRef factorTensor(const MatrixRM& factor)
{
    std::optional<TensorRef> t = narrowExactly(factor, DType::F16);
    if (!t) {
        auto bytes = makeEditBuffer(static_cast<size_t>(factor.size()) * sizeof(float));
        if (factor.size() > 0)
            std::memcpy(bytes->data(), factor.data(), bytes->size());
        t = tensorOf(DType::F32, std::move(bytes), factor.rows(), factor.cols());
    }
    return std::move(*t);
}

namespace {

// values in `type` (F16 or BF16), each rounded to nearest; nullopt when `exact`
// and a value changes (bit for bit: -0 stays -0), or when a finite value
// overflows the type.
std::optional<TensorRef> narrow(const MatrixRM& values, DType type, bool exact)
{
    if (type != DType::F16 && type != DType::BF16)
        return std::nullopt;
    const int64_t n = values.size();
    auto bytes = makeEditBuffer(static_cast<size_t>(n) * 2);
    const float* v = values.data();
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = type == DType::F16 ? floatToFp16(v[i]) : floatToBf16(v[i]);
        const float back = type == DType::F16 ? fp16ToFloat(h) : bf16ToFloat(h);
        if (exact ? std::memcmp(&back, &v[i], 4) != 0 : std::isinf(back) && std::isfinite(v[i]))
            return std::nullopt;
        std::memcpy(bytes->data() + 2 * i, &h, 2);
    }
    return tensorOf(type, std::move(bytes), values.rows(), values.cols());
}

} // namespace

std::optional<TensorRef> narrowExactly(const MatrixRM& values, DType type)
{
    return narrow(values, type, true);
}

std::optional<TensorRef> narrowRounded(const MatrixRM& values, DType type)
{
    return narrow(values, type, false);
}

namespace {

// v rounded to nearest in `type` (F16 or BF16; F32 leaves it), as a float.
float roundedTo(DType type, float v)
{
    if (type == DType::F16)
        return fp16ToFloat(floatToFp16(v));
    return type == DType::BF16 ? bf16ToFloat(floatToBf16(v)) : v;
}

} // namespace

std::optional<TensorRef> sparseTensor(const MatrixRM& values, DType type)
{
    if (type != DType::F32 && type != DType::F16 && type != DType::BF16)
        return std::nullopt;
    const int64_t rows = values.rows(), cols = values.cols();
    if (rows == 0 || cols == 0)
        return std::nullopt;
    auto layout = std::make_shared<SparseLayout>();
    layout->valueType = type;
    layout->cols = cols;
    // Counted on the values as they will be rounded, before any copy: most
    // dense results (rotations, slices) are not sparse, and a copy of a 7B
    // layer is 180 MB.
    int64_t kept = 0;
    const float* v = values.data();
    for (Eigen::Index i = 0; i < values.size(); ++i) {
        const float r = roundedTo(type, v[i]);
        if (std::isinf(r) && std::isfinite(v[i]))
            return std::nullopt; // overflows the type (roundToType refuses it too)
        kept += sparseKept(&r, 1);
    }
    const uint64_t sparseBytes = layout->bytes(rows, kept);
    const uint64_t denseBytes = static_cast<uint64_t>(rows * cols) * layout->valueBytes();
    if (sparseBytes * 4 > denseBytes * 3) // worth a mask and a slower decoder only when it saves a quarter
        return std::nullopt;
    MatrixRM rounded = values;
    roundToType(rounded, type);
    auto bytes = makeEditBuffer(sparseBytes);
    encodeSparseRows(*layout, rounded.data(), rows, bytes->data());
    TensorRef t = tensorOf(DType::Sparse, std::move(bytes), rows, cols);
    t.dtypeLabel = "SPARSE " + std::string(dtypeName(type));
    t.sparse = std::move(layout);
    return t;
}

bool roundToType(MatrixRM& W, DType type)
{
    if (type != DType::F16 && type != DType::BF16)
        return type == DType::F32;
    float* v = W.data();
    const Eigen::Index n = W.size();
    for (Eigen::Index i = 0; i < n; ++i) {
        const float r = roundedTo(type, v[i]);
        if (std::isinf(r) && std::isfinite(v[i]))
            return false; // overflow: leave W as it was (checked before anything is written)
    }
    for (Eigen::Index i = 0; i < n; ++i)
        v[i] = roundedTo(type, v[i]);
    return true;
}

} // namespace ll
