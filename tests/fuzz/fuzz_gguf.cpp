// A GGUF file: header, metadata, tensor infos, every block type's decoder on
// the small tensors, and the GGUF vocabulary's tokenizer.
#include "fuzz_support.h"
#include "formats/open_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string path = fuzz::writeScratch("model.gguf", data, size);
    fuzz::expectOnlyErrors([&] {
        const std::unique_ptr<Model> model = openModel(path);
        fuzz::expectOnlyErrors([&] { fuzz::exerciseModel(*model); });
        fuzz::expectOnlyErrors([&] { fuzz::exerciseForward(*model); });
        fuzz::exerciseTokenizer(*loadTokenizer(*model));
    });
    return 0;
}
