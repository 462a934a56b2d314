// An importance matrix file (llama-imatrix's format), as `export --imatrix`
// reads it; what loads is written back and must read the same.
#include "fuzz_support.h"

#include "pipeline/imatrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ll;
    const std::string path = fuzz::writeScratch("input.imatrix", data, size);
    fuzz::expectOnlyErrors([&] {
        const Imatrix m = loadImatrix(path);
        const std::string again = (fuzz::scratchDir() / "again.imatrix").string();
        saveImatrix(m, again);
        const Imatrix back = loadImatrix(again);
        if (back.entries.size() != m.entries.size() || back.chunks != m.chunks || back.dataset != m.dataset)
            std::abort(); // a file LayerLab wrote must read back as it was
    });
    return 0;
}
