#include "formats/open_model.h"

#include "formats/gguf.h"
#include "formats/hf_folder.h"
#include "formats/llama2c.h"
#include "util/error.h"
#include "util/input_file.h"

#include <filesystem>
#include <fstream>
#include <string_view>

namespace ll {

std::unique_ptr<Model> openModel(const std::string& path)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec))
        fail(ErrorCode::NotFound, path, "no such file or folder");
    if (fs::is_directory(path, ec))
        return openHfFolder(path);

    requireRegularFile(path, UINT64_MAX, "the model file"); // a FIFO would block the open below
    // Decide by content, not by extension: the first bytes say what it is.
    char magic[8] = {};
    {
        std::ifstream in(path, std::ios::binary);
        if (!in)
            fail(ErrorCode::Io, path, "cannot open for reading");
        in.read(magic, sizeof magic);
    }
    if (std::string_view(magic, 4) == "GGUF")
        return openGguf(path);
    const std::string ext = fs::path(path).extension().string();
    if (ext == ".safetensors")
        return openHfFolder(path);
    if (ext == ".bin")
        return openLlama2c(path);
    if (std::string_view(magic, 4) == "ggml" || std::string_view(magic, 4) == "ggjt" || std::string_view(magic, 4) == "lmgg")
        fail(ErrorCode::UnsupportedDType, path, "legacy GGML file; convert it to GGUF first");
    fail(ErrorCode::Malformed, path,
         "not a recognised model: expected a Hugging Face folder, a .safetensors file, a GGUF file or a llama2.c .bin");
}

} // namespace ll
