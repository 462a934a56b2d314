#include "util/spill_buffer.h"

#include "util/error.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ll {

std::string SpillBuffer::tempDir()
{
    const char* dir = std::getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

SpillBuffer::SpillBuffer(size_t floats, uint64_t memoryBudgetBytes, const std::string& what) : floats_(floats)
{
    const size_t bytes = floats * sizeof(float);
    if (floats != 0 && bytes / sizeof(float) != floats)
        fail(ErrorCode::Overflow, "", what + " would need more bytes than the address space has");
    if (bytes == 0)
        return;
    onDisk_ = bytes > memoryBudgetBytes;
    int fd = -1;
    const std::string dir = tempDir();
    if (onDisk_) {
        std::string name = dir + "/layerlab-spill-XXXXXX";
        fd = ::mkstemp(name.data());
        if (fd < 0)
            fail(ErrorCode::Io, dir, "cannot create a temporary file for " + what + ": " + std::strerror(errno));
        ::unlink(name.c_str()); // gone with the last reference, even after a crash
        const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
        if (err != 0) {
            ::close(fd);
            fail(ErrorCode::Io, dir, "no room for " + std::to_string(bytes >> 20) + " MiB of " + what + ": "
                                         + std::strerror(err));
        }
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, onDisk_ ? MAP_SHARED : (MAP_PRIVATE | MAP_ANONYMOUS), fd, 0);
    const int mapErr = errno;
    if (fd >= 0)
        ::close(fd); // the mapping keeps the file
    if (p == MAP_FAILED)
        fail(ErrorCode::Io, onDisk_ ? dir : std::string(),
             "cannot map " + std::to_string(bytes >> 20) + " MiB for " + what + ": " + std::strerror(mapErr));
    data_ = static_cast<float*>(p);
}

SpillBuffer::~SpillBuffer()
{
    if (data_)
        ::munmap(data_, floats_ * sizeof(float));
}

} // namespace ll
