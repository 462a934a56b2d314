#pragma once
// Read-only memory mapping of a model file. Opening a model maps it and reads
// only the headers; tensor bytes are paged in on first use.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ll {

class MappedFile {
public:
    static std::shared_ptr<const MappedFile> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::string& path() const { return path_; }
    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }

    // Bounds-checked view; throws Truncated naming the file when [offset, offset+n) leaves it.
    std::span<const uint8_t> bytes(uint64_t offset, uint64_t n, const char* what) const;

private:
    MappedFile() = default;
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

// Asks the kernel to back [p, p + bytes) with 2 MiB pages (madvise
// MADV_HUGEPAGE), for mappings of 2 MiB or more. Decoding reads every weight
// once a token, and with 4 KiB pages each page is a TLB miss: a file read from
// disk through such a mapping lands in 2 MiB page-cache folios, mapped whole,
// and decoding a 1B F16 model ran 1.4x faster so (docs/benchmarks.md). Pages
// already cached stay as they are. Advice only: errors are ignored.
void adviseHugePages(void* p, uint64_t bytes);

// Size arithmetic that reports overflow instead of wrapping.
bool mulOverflows(uint64_t a, uint64_t b, uint64_t* out);
bool addOverflows(uint64_t a, uint64_t b, uint64_t* out);

} // namespace ll
