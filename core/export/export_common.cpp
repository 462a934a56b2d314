#include "export/export_common.h"

#include "model/tensor_data.h"
#include "util/error.h"
#include "util/half.h"
#include "util/mapped_file.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

namespace ll {

namespace fs = std::filesystem;

int64_t PlannedTensor::elements() const
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

std::string shapeText(const std::vector<int64_t>& shape)
{
    std::string s;
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? " x " : "") + std::to_string(shape[i]);
    return s.empty() ? "scalar" : s;
}

namespace {

int64_t rowsOf(const std::vector<int64_t>& shape) { return shape.empty() ? 1 : shape[0]; }
int64_t colsOf(const std::vector<int64_t>& shape) { return shape.size() >= 2 ? shape[1] : 1; }

std::vector<float> transpose(const std::vector<float>& v, int64_t rows, int64_t cols)
{
    std::vector<float> out(v.size());
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            out[c * rows + r] = v[r * cols + c];
    return out;
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

// HF row index that interleaved row j (within a head) moves to.
int64_t halvesRowOf(int64_t j, int64_t hd)
{
    return (j % 2 == 0) ? j / 2 : hd / 2 + j / 2;
}

void checkRotaryShape(int64_t rows, int64_t headDim, const std::string& name)
{
    if (headDim <= 0 || headDim % 2 != 0 || rows % headDim != 0)
        fail(ErrorCode::InvalidArgument, name,
             std::to_string(rows) + " rows cannot be split into rotary heads of " + std::to_string(headDim));
}

} // namespace

std::vector<float> interleavedToHalves(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t hd)
{
    return permuteRows(v, rows, cols, [hd](int64_t r) { return (r / hd) * hd + halvesRowOf(r % hd, hd); });
}

std::vector<float> halvesToInterleaved(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t hd)
{
    // HF row i of a head goes to interleaved row 2i (first half) or 2(i - hd/2) + 1 (second half).
    return permuteRows(v, rows, cols, [hd](int64_t r) {
        const int64_t i = r % hd;
        return (r / hd) * hd + (i < hd / 2 ? 2 * i : 2 * (i - hd / 2) + 1);
    });
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

    if (parts.size() == 1 && first.partLength == 0) {
        // A whole tensor: only a Conv1D weight needs turning back.
        const LogicalTensor* t = parts[0];
        const bool transposed = t->transposed && t->shape.size() == 2;
        p.shape = transposed ? std::vector<int64_t>{t->shape[1], t->shape[0]} : t->shape;
        p.values = [&m, t, transposed] {
            std::vector<float> v = readLogical(m, *t);
            return transposed ? transpose(v, t->shape[0], t->shape[1]) : v;
        };
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
    p.values = [&m, parts, cols, totalRows, strided, stride, transposed] {
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
    };
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
    const LogicalTensor* tp = &t;
    p.values = [&m, tp, permute, rows, cols, headDim] {
        std::vector<float> v = readLogical(m, *tp);
        switch (permute) {
        case RotaryPermute::None: return v;
        case RotaryPermute::InterleavedToHalves: return interleavedToHalves(v, rows, cols, headDim);
        case RotaryPermute::HalvesToInterleaved: return halvesToInterleaved(v, rows, cols, headDim);
        }
        return v;
    };
    return p;
}

std::vector<uint8_t> encodeFloats(const std::vector<float>& values, DType type, int64_t* overflowed)
{
    int64_t over = 0;
    std::vector<uint8_t> out;
    switch (type) {
    case DType::F32:
        out.resize(values.size() * 4);
        std::memcpy(out.data(), values.data(), out.size());
        break;
    case DType::F16:
    case DType::BF16: {
        out.resize(values.size() * 2);
        for (size_t i = 0; i < values.size(); ++i) {
            const uint16_t h = type == DType::F16 ? floatToFp16(values[i]) : floatToBf16(values[i]);
            std::memcpy(out.data() + 2 * i, &h, 2);
            const float back = type == DType::F16 ? fp16ToFloat(h) : bf16ToFloat(h);
            if (std::isfinite(values[i]) && !std::isfinite(back))
                ++over;
        }
        break;
    }
    default:
        fail(ErrorCode::UnsupportedDType, "", "cannot encode floats as " + std::string(dtypeName(type)));
    }
    if (overflowed)
        *overflowed = over;
    return out;
}

std::vector<std::string> sourceFilesOf(const Model& m)
{
    std::vector<std::string> files;
    std::error_code ec;
    if (!fs::is_directory(m.path, ec))
        files.push_back(m.path);
    for (const auto& f : m.files)
        if (f)
            files.push_back(f->path());
    if (!m.tokenizerPath.empty())
        files.push_back(m.tokenizerPath);
    return files;
}

std::string sourceFolderOf(const Model& m)
{
    std::error_code ec;
    return fs::is_directory(m.path, ec) ? m.path : std::string();
}

std::string sourceSideFolderOf(const Model& m)
{
    std::error_code ec;
    if (m.path.empty())
        return {};
    if (fs::is_directory(m.path, ec))
        return m.path;
    const fs::path parent = fs::path(m.path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

bool CurrentDims::uniformFfn() const { return std::adjacent_find(ffn.begin(), ffn.end(), std::not_equal_to<>()) == ffn.end(); }
bool CurrentDims::uniformHeads() const
{
    return std::adjacent_find(heads.begin(), heads.end(), std::not_equal_to<>()) == heads.end();
}
bool CurrentDims::uniformKvHeads() const
{
    return std::adjacent_find(kvHeads.begin(), kvHeads.end(), std::not_equal_to<>()) == kvHeads.end();
}

CurrentDims currentDims(const Model& m)
{
    const ModelConfig& c = m.config;
    CurrentDims d;
    d.vocab = c.vocab;
    d.hidden = c.hidden;
    if (const LogicalTensor* e = m.find(-1, Role::Embedding); e && e->shape.size() == 2) {
        d.vocab = e->shape[0];
        d.hidden = e->shape[1];
    }
    const int64_t hd = c.headDim;
    auto headsOf = [&](const LogicalTensor* t, int64_t fallback) {
        if (!t || t->shape.empty())
            return fallback;
        if (hd <= 0 || t->shape[0] % hd != 0)
            fail(ErrorCode::InvalidArgument, m.path,
                 "'" + t->logicalName + "' has " + std::to_string(t->shape[0]) + " rows, not whole heads of "
                     + std::to_string(hd));
        return t->shape[0] / hd;
    };
    for (int b = 0; b < static_cast<int>(c.layers); ++b) {
        const LogicalTensor* up = m.find(b, Role::MlpUp);
        if (!up)
            up = m.find(b, Role::MlpGate);
        d.ffn.push_back(up && !up->shape.empty() ? up->shape[0] : c.intermediate);
        d.heads.push_back(headsOf(m.find(b, Role::AttnQ), c.heads));
        d.kvHeads.push_back(headsOf(m.find(b, Role::AttnK), c.kvHeads));
        if (d.kvHeads.back() <= 0 || d.heads.back() % d.kvHeads.back() != 0)
            fail(ErrorCode::InvalidArgument, m.path,
                 "block " + std::to_string(b) + " has " + std::to_string(d.heads.back()) + " query heads, not a multiple of its "
                     + std::to_string(d.kvHeads.back()) + " key/value heads");
    }
    return d;
}

std::string quantizedSourceNote(const Model& m, const std::function<bool(const LogicalTensor&)>& copiedAsIs)
{
    std::set<std::string> types;
    int count = 0;
    for (const LogicalTensor& t : m.tensors) {
        const TensorRef& ref = m.storedOf(t);
        if (t.tied || t.edited() || !isQuantized(ref.dtype) || (copiedAsIs && copiedAsIs(t)))
            continue;
        ++count;
        types.insert(std::string(dtypeName(ref.dtype)));
    }
    if (count == 0)
        return {};
    std::string list;
    for (const auto& t : types)
        list += (list.empty() ? "" : ", ") + t;
    return std::to_string(count) + " tensors were already quantized in the source (" + list
           + "): their dequantized values were exported, so their quantization error stays in";
}

double shortestFloat(double v)
{
    if (!std::isfinite(v))
        return v;
    const float target = static_cast<float>(v);
    char buf[64];
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, v);
        const double back = std::strtod(buf, nullptr);
        if (static_cast<float>(back) == target)
            return back;
    }
    return v;
}

} // namespace ll
