// A sharded Hugging Face folder's model.safetensors.index.json (the input)
// beside a valid config and two shards: shard names (traversal, NUL bytes,
// missing files), tensors named twice or nowhere.
#include "hf_folder_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    static const std::string dir = [] {
        const std::filesystem::path d = fuzz::scratchDir() / "index-folder";
        std::filesystem::create_directories(d);
        fuzz::writeScratch("index-folder/config.json", fuzz::kTinyLlamaConfig);
        fuzz::writeScratch("index-folder/model-00001-of-00002.safetensors", fuzz::safetensorsBytes(fuzz::tinyShard(0)));
        fuzz::writeScratch("index-folder/model-00002-of-00002.safetensors", fuzz::safetensorsBytes(fuzz::tinyShard(1)));
        return d.string();
    }();
    fuzz::writeScratch("index-folder/model.safetensors.index.json", data, size);
    fuzz::expectOnlyErrors([&] { fuzz::exerciseFolder(dir); });
    return 0;
}
