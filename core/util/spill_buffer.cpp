#include "util/spill_buffer.h"

#include "util/error.h"
#include "util/mapped_file.h"

#include <atomic>
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

SpillBuffer::SpillBuffer(size_t bytes, uint64_t memoryBudgetBytes, const std::string& what) : bytes_(bytes)
{
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
    data_ = static_cast<uint8_t*>(p);
    // An edited tensor (EditBuffer) is read whole for every token, the
    // calibration activations for every layer.
    adviseHugePages(p, bytes);
}

SpillBuffer::~SpillBuffer()
{
    if (data_)
        ::munmap(data_, bytes_);
}

namespace {

std::atomic<uint64_t> gInMemory{0}, gSpilled{0};

uint64_t initialEditBudget()
{
    const char* env = std::getenv("LAYERLAB_EDIT_MEMORY_MB");
    if (env && *env)
        return static_cast<uint64_t>(std::strtoull(env, nullptr, 10)) << 20;
    // Small: a spilled edit stays in the page cache while memory allows (as
    // fast to read), but as file pages the kernel can write out and drop, not
    // as anonymous memory a machine without swap can only kill for. A 7B's
    // GPTQ results (3.4 GB) would otherwise hold their first GiB in memory.
    return uint64_t{256} << 20;
}

std::atomic<uint64_t>& budgetSlot()
{
    static std::atomic<uint64_t> budget{initialEditBudget()};
    return budget;
}

// The budget left for one more buffer of `bytes`: 0 (spill) once it would be exceeded.
uint64_t roomFor(size_t bytes)
{
    return gInMemory.load() + bytes <= budgetSlot().load() ? UINT64_MAX : 0;
}

} // namespace

EditBuffer::EditBuffer(size_t bytes) : buffer_(bytes, roomFor(bytes), "edited weights")
{
    (buffer_.onDisk() ? gSpilled : gInMemory) += buffer_.size();
}

EditBuffer::~EditBuffer()
{
    (buffer_.onDisk() ? gSpilled : gInMemory) -= buffer_.size();
}

std::shared_ptr<EditBuffer> makeEditBuffer(size_t bytes)
{
    return std::make_shared<EditBuffer>(bytes);
}

void setEditMemoryBudget(uint64_t bytes)
{
    budgetSlot().store(bytes);
}

uint64_t editMemoryBudget()
{
    return budgetSlot().load();
}

uint64_t editBytesInMemory()
{
    return gInMemory.load();
}

uint64_t editBytesSpilled()
{
    return gSpilled.load();
}

} // namespace ll
