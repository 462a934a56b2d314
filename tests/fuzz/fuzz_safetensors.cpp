// A .safetensors file on its own (header, dtypes, offsets), opened as a model
// and every small tensor decoded.
#include "fuzz_support.h"

#include "formats/open_model.h"
#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string path = fuzz::writeScratch("model.safetensors", data, size);
    fuzz::expectOnlyErrors([&] { (void)readSafetensors(path); });
    fuzz::expectOnlyErrors([&] { fuzz::exerciseModel(*openModel(path)); });
    return 0;
}
