// A Hugging Face tokenizer.json (BPE, WordPiece-free: the models LayerLab runs),
// its normalizers and pre-tokenizers, encoded and decoded.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string path = fuzz::writeScratch("tokenizer.json", data, size);
    fuzz::expectOnlyErrors([&] { fuzz::exerciseTokenizer(*loadTokenizerFile(path)); });
    return 0;
}
