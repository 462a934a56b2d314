#pragma once
// Opening a checkpoint of any supported format. The format is decided by the
// file's first bytes (and a folder is a Hugging Face folder), not by its name.
#include "model/model.h"

#include <memory>
#include <string>

namespace ll {

// Opens any supported checkpoint: a folder (HF), .safetensors, .gguf, llama2.c .bin.
std::unique_ptr<Model> openModel(const std::string& path);

} // namespace ll
