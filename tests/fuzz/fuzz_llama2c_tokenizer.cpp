// A llama2.c tokenizer.bin (max length, then score, length, bytes per token), encoded and decoded.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string path = fuzz::writeScratch("tokenizer.bin", data, size);
    fuzz::expectOnlyErrors([&] { fuzz::exerciseTokenizer(*loadTokenizerFile(path)); });
    return 0;
}
