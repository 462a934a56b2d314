#include "export/export_common.h"

#include "util/error.h"
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

void refuseUnexportable(const Model& m, const std::string& target)
{
    if (m.config.onlineDownRotation)
        fail(ErrorCode::InvalidArgument, target,
             "the model rotates down_proj's input at run time (QuaRot with online: true), which neither llama.cpp "
             "nor transformers do; rotate without online to export");
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
