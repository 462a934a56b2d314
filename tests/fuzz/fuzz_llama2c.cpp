// A llama2.c checkpoint (.bin): its seven-integer header and the weights it implies.
#include "fuzz_support.h"
#include "formats/open_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string path = fuzz::writeScratch("model.bin", data, size);
    fuzz::expectOnlyErrors([&] {
        const std::unique_ptr<Model> model = openModel(path);
        fuzz::exerciseModel(*model);
        fuzz::exerciseForward(*model);
    });
    return 0;
}
