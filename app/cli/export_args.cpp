#include "export_args.h"

#include "args.h"

#include "util/text.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace ll::cli {

// --gguf-type: a llama-quantize preset or one type for every 2-D weight (--gguf-pure: the preset's base type).
void setGgufType(GgufExportOptions& opt, const std::string& text, bool pure)
{
    static const std::map<std::string, DType> kTypes{
        {"F32", DType::F32},   {"F16", DType::F16},   {"BF16", DType::BF16}, {"Q4_0", DType::Q4_0},
        {"Q4_1", DType::Q4_1}, {"Q5_0", DType::Q5_0}, {"Q5_1", DType::Q5_1}, {"Q3_K", DType::Q3_K},
        {"Q4_K", DType::Q4_K}, {"Q5_K", DType::Q5_K},
    };
    if (const auto preset = ggufPresetNamed(text)) {
        if (pure)
            opt.type = ggufPresetInfo(*preset).base;
        else
            opt.preset = preset;
        return;
    }
    if (const auto it = kTypes.find(asciiUpper(text)); it != kTypes.end()) {
        opt.type = it->second;
        return;
    }
    std::string presets;
    for (const auto& p : ggufPresets())
        presets += (presets.empty() ? "" : ", ") + std::string(p.name);
    const std::string refusal = ggufPresetRefusal(text);
    throw UsageError((refusal.empty() ? "--gguf-type '" + text + "' is not a type LayerLab writes" : refusal)
                     + ". --gguf-type takes a llama-quantize preset (" + presets
                     + ") or one type for every 2-D weight (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q5_K)");
}

DType hfDtypeArg(const std::string& text)
{
    const std::string t = asciiUpper(text);
    if (t == "F32" || t == "FLOAT32") return DType::F32;
    if (t == "F16" || t == "FLOAT16") return DType::F16;
    if (t == "BF16" || t == "BFLOAT16") return DType::BF16;
    throw UsageError("--dtype must be f32, f16 or bf16");
}

} // namespace ll::cli
