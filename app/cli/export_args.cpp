#include "export_args.h"

#include "args.h"

#include "util/text.h"


namespace ll::cli {

// --gguf-type: a llama-quantize preset or one type for every 2-D weight (--gguf-pure: the preset's base type).
void setGgufType(GgufExportOptions& opt, const std::string& text, bool pure)
{
    if (const auto preset = ggufPresetNamed(text)) {
        if (pure)
            opt.type = ggufPresetInfo(*preset).base;
        else
            opt.preset = preset;
        return;
    }
    // One type for every 2-D weight: any type a GGUF export writes (the names a preset also has went above).
    std::string single;
    for (DType t : ggufExportTypes()) {
        if (asciiUpper(text) == dtypeName(t)) {
            opt.type = t;
            return;
        }
        if (!ggufPresetNamed(dtypeName(t)))
            single += (single.empty() ? "" : ", ") + std::string(dtypeName(t));
    }
    std::string presets;
    for (const auto& p : ggufPresets())
        presets += (presets.empty() ? "" : ", ") + std::string(p.name);
    const std::string refusal = ggufPresetRefusal(text);
    throw UsageError((refusal.empty() ? "--gguf-type '" + text + "' is not a type LayerLab writes" : refusal)
                     + ". --gguf-type takes a llama-quantize preset (" + presets
                     + ") or one type for every 2-D weight (" + single + ")");
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
