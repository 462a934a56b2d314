#pragma once
// --gguf-type for every command that writes a GGUF (export, and --gguf of
// quantize, prune, factorize and apply).
#include "export/gguf_export.h"

#include <string>

namespace ll::cli {

// A llama-quantize preset (Q4_K_M, ...) or one type for every 2-D weight;
// `pure`: the preset's base type for every 2-D weight (llama-quantize --pure).
// Throws UsageError naming what is accepted.
void setGgufType(GgufExportOptions& opt, const std::string& text, bool pure);

} // namespace ll::cli
