#pragma once
// Type arguments of the exports: --gguf-type for every command that writes a
// GGUF (export, and --gguf of quantize, prune, factorize and apply), export's --dtype.
#include "export/gguf_export.h"

#include <string>

namespace ll::cli {

// A llama-quantize preset (Q4_K_M, ...) or one type for every 2-D weight;
// `pure`: the preset's base type for every 2-D weight (llama-quantize --pure).
// Throws UsageError naming what is accepted.
void setGgufType(GgufExportOptions& opt, const std::string& text, bool pure);

// export --dtype: f32, f16 or bf16 (any case; float32, float16, bfloat16 too).
DType hfDtypeArg(const std::string& text);

} // namespace ll::cli
