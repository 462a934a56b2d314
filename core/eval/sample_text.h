#pragma once
// The built-in sample text: short, simple stories in plain English (written
// for LayerLab), about 8 KB. Perplexity, generation and calibration work
// without any file; small models trained on children's stories (stories260K,
// TinyStories) score it well. Recipes name it "builtin".
#include <string_view>

namespace ll {

std::string_view builtinSampleText();

} // namespace ll
