#include "util/mapped_file.h"
#include "util/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ll {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, path,
             std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        fail(ErrorCode::Io, path, std::string("cannot stat: ") + std::strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        fail(ErrorCode::InvalidArgument, path, "is a directory, expected a file");
    }
    std::shared_ptr<MappedFile> file(new MappedFile());
    file->path_ = path;
    file->size_ = static_cast<uint64_t>(st.st_size);
    if (file->size_ > 0) {
        void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            fail(ErrorCode::Io, path, std::string("cannot map: ") + std::strerror(e));
        }
        file->data_ = static_cast<const uint8_t*>(p);
        adviseHugePages(p, file->size_);
    }
    ::close(fd);
    return file;
}

MappedFile::~MappedFile()
{
    if (data_)
        ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::span<const uint8_t> MappedFile::bytes(uint64_t offset, uint64_t n, const char* what) const
{
    uint64_t end = 0;
    if (addOverflows(offset, n, &end) || end > size_)
        fail(ErrorCode::Truncated, path_,
             std::string(what) + " lies outside the file (offset " + std::to_string(offset) + ", "
                 + std::to_string(n) + " bytes, file has " + std::to_string(size_) + ")");
    return {data_ + offset, static_cast<size_t>(n)};
}

void adviseHugePages(void* p, uint64_t bytes)
{
    if (p && bytes >= (uint64_t{2} << 20))
        ::madvise(p, bytes, MADV_HUGEPAGE);
}

bool mulOverflows(uint64_t a, uint64_t b, uint64_t* out)
{
    return __builtin_mul_overflow(a, b, out);
}

bool addOverflows(uint64_t a, uint64_t b, uint64_t* out)
{
    return __builtin_add_overflow(a, b, out);
}

} // namespace ll
