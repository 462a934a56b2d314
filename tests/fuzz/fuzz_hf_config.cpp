// A Hugging Face folder's config.json (the input) beside valid tiny llama
// shards: the architecture, every hyperparameter the engine reads, and the
// checks of the config against the tensors, up to a forward pass.
#include "hf_folder_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    static const std::string dir = [] {
        const std::filesystem::path d = fuzz::scratchDir() / "config-folder";
        std::filesystem::create_directories(d);
        fuzz::TensorList all = fuzz::tinyShard(0);
        all.insert(all.end(), fuzz::tinyShard(1).begin(), fuzz::tinyShard(1).end());
        fuzz::writeScratch("config-folder/model.safetensors", fuzz::safetensorsBytes(all));
        return d.string();
    }();
    fuzz::writeScratch("config-folder/config.json", data, size);
    fuzz::expectOnlyErrors([&] { fuzz::exerciseFolder(dir); });
    return 0;
}
