#include "util/input_file.h"

#include "util/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ll {

namespace {

std::string sizeText(uint64_t bytes)
{
    return bytes >= (uint64_t{1} << 30) ? std::to_string(bytes >> 30) + " GiB" : std::to_string(bytes >> 20) + " MiB";
}

void checkStat(const struct stat& st, const std::string& path, uint64_t maxBytes, const std::string& what)
{
    if (S_ISDIR(st.st_mode))
        fail(ErrorCode::Io, path, what + " is a folder, not a file");
    if (!S_ISREG(st.st_mode))
        fail(ErrorCode::Io, path, what + " is not a regular file (a device, pipe or socket)");
    if (static_cast<uint64_t>(st.st_size) > maxBytes)
        fail(ErrorCode::OutOfRange, path, what + " is " + std::to_string(st.st_size) + " bytes, more than the "
                                              + sizeText(maxBytes) + " such a file can be");
}

} // namespace

void requireRegularFile(const std::string& path, uint64_t maxBytes, const std::string& what)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        fail(ErrorCode::Io, path, "cannot open " + what + ": " + std::strerror(errno));
    checkStat(st, path, maxBytes, what);
}

std::string readInputFile(const std::string& path, uint64_t maxBytes, const std::string& what)
{
    requireRegularFile(path, maxBytes, what); // before open(): opening a FIFO blocks
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        fail(ErrorCode::Io, path, "cannot open " + what + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        fail(ErrorCode::Io, path, "cannot read " + what + ": " + std::strerror(e));
    }
    try {
        checkStat(st, path, maxBytes, what); // the file the descriptor reads, not the one stat() saw
    } catch (...) {
        ::close(fd);
        throw;
    }
    std::string bytes(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            const int e = errno;
            ::close(fd);
            fail(ErrorCode::Io, path, "cannot read " + what + (n < 0 ? std::string(": ") + std::strerror(e) : ": it shrank while being read"));
        }
        got += static_cast<size_t>(n);
    }
    ::close(fd);
    return bytes;
}

} // namespace ll
