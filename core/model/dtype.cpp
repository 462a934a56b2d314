#include "model/dtype.h"

#include <array>

namespace ll {

namespace {
struct DTypeRow {
    DType type;
    std::string_view name;
    int ggml; // -1 = no ggml type
    DTypeLayout layout;
    bool decodable;
    bool inMemoryOnly = false; // LayerLab's own forms: never read from or written to a file
};

// ggml type ids and block sizes follow ggml.h / ggml-common.h.
constexpr std::array<DTypeRow, 39> kRows{{
    {DType::F32, "F32", 0, {1, 4}, true},
    {DType::F16, "F16", 1, {1, 2}, true},
    {DType::BF16, "BF16", 30, {1, 2}, true},
    {DType::F64, "F64", 28, {1, 8}, false},
    {DType::I8, "I8", 24, {1, 1}, false},
    {DType::I16, "I16", 25, {1, 2}, false},
    {DType::I32, "I32", 26, {1, 4}, false},
    {DType::I64, "I64", 27, {1, 8}, false},
    {DType::U8, "U8", -1, {1, 1}, false},
    {DType::Bool, "BOOL", -1, {1, 1}, false},
    {DType::F8_E4M3, "F8_E4M3", -1, {1, 1}, false},
    {DType::F8_E5M2, "F8_E5M2", -1, {1, 1}, false},
    {DType::Q4_0, "Q4_0", 2, {32, 18}, true},
    {DType::Q4_1, "Q4_1", 3, {32, 20}, true},
    {DType::Q5_0, "Q5_0", 6, {32, 22}, true},
    {DType::Q5_1, "Q5_1", 7, {32, 24}, true},
    {DType::Q8_0, "Q8_0", 8, {32, 34}, true},
    {DType::Q8_1, "Q8_1", 9, {32, 36}, false},
    {DType::Q2_K, "Q2_K", 10, {256, 84}, true},
    {DType::Q3_K, "Q3_K", 11, {256, 110}, true},
    {DType::Q4_K, "Q4_K", 12, {256, 144}, true},
    {DType::Q5_K, "Q5_K", 13, {256, 176}, true},
    {DType::Q6_K, "Q6_K", 14, {256, 210}, true},
    {DType::Q8_K, "Q8_K", 15, {256, 292}, false},
    {DType::IQ2_XXS, "IQ2_XXS", 16, {256, 66}, false},
    {DType::IQ2_XS, "IQ2_XS", 17, {256, 74}, false},
    {DType::IQ3_XXS, "IQ3_XXS", 18, {256, 98}, false},
    {DType::IQ1_S, "IQ1_S", 19, {256, 50}, false},
    {DType::IQ4_NL, "IQ4_NL", 20, {32, 18}, true},
    {DType::IQ3_S, "IQ3_S", 21, {256, 110}, false},
    {DType::IQ2_S, "IQ2_S", 22, {256, 82}, false},
    {DType::IQ4_XS, "IQ4_XS", 23, {256, 136}, true},
    {DType::IQ1_M, "IQ1_M", 29, {256, 56}, false},
    {DType::TQ1_0, "TQ1_0", 34, {256, 54}, false},
    {DType::TQ2_0, "TQ2_0", 35, {256, 66}, false},
    {DType::MXFP4, "MXFP4", 39, {32, 17}, false},
    {DType::Grid, "GRID", -1, {0, 0}, true, true},
    {DType::Sparse, "SPARSE", -1, {0, 0}, true, true},
    {DType::Unknown, "unknown", -1, {0, 0}, false},
}};

const DTypeRow* rowOf(DType t)
{
    for (const auto& r : kRows)
        if (r.type == t)
            return &r;
    return nullptr;
}
} // namespace

const std::vector<DType>& allDTypes()
{
    static const std::vector<DType> all = [] {
        std::vector<DType> v;
        for (const auto& r : kRows)
            v.push_back(r.type);
        return v;
    }();
    return all;
}

std::string_view dtypeName(DType t)
{
    const auto* r = rowOf(t);
    return r ? r->name : "unknown";
}

std::optional<DType> dtypeFromSafetensors(std::string_view name)
{
    for (const auto& r : kRows)
        if (r.type != DType::Unknown && !r.inMemoryOnly && r.ggml <= 30 && r.name == name && !isQuantized(r.type))
            return r.type;
    return std::nullopt;
}

std::optional<DType> dtypeFromGgml(uint32_t ggmlType)
{
    for (const auto& r : kRows)
        if (r.ggml >= 0 && static_cast<uint32_t>(r.ggml) == ggmlType)
            return r.type;
    return std::nullopt;
}

std::optional<uint32_t> ggmlTypeOf(DType t)
{
    const auto* r = rowOf(t);
    if (!r || r->ggml < 0)
        return std::nullopt;
    return static_cast<uint32_t>(r->ggml);
}

DTypeLayout dtypeLayout(DType t)
{
    const auto* r = rowOf(t);
    return r ? r->layout : DTypeLayout{};
}

bool canDecode(DType t)
{
    const auto* r = rowOf(t);
    return r && r->decodable;
}

bool inMemoryOnly(DType t)
{
    const auto* r = rowOf(t);
    return r && r->inMemoryOnly;
}

bool isQuantized(DType t)
{
    return t >= DType::Q4_0 && t <= DType::Grid;
}

} // namespace ll
