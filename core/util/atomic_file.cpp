#include "util/atomic_file.h"

#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <new>
#include <random>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ll {

namespace fs = std::filesystem;

namespace {

// Test hook: a simulated write failure after a byte budget (see testing::injectWriteFailure).
std::atomic<int> gInjectedErrno{0};
std::atomic<int64_t> gInjectedBudget{0};

// Test hook for the "killed mid-export" tests: LAYERLAB_TEST_SLOW_WRITES_MS=N
// sleeps N ms before every write, so that a test can kill the process while
// a partial file exists. Read once; unset in normal use.
int slowWritesMs()
{
    static const int ms = [] {
        const char* v = std::getenv("LAYERLAB_TEST_SLOW_WRITES_MS");
        return v ? std::clamp(std::atoi(v), 0, 10000) : 0;
    }();
    return ms;
}

std::string describeErrno(int err)
{
    switch (err) {
    case ENOSPC: return "the disk is full";
    case EDQUOT: return "the disk quota is exhausted";
    case EFBIG: return "the file is larger than this file system (or the file size limit) allows";
    default: return std::strerror(err);
    }
}

std::string folderOf(const std::string& path)
{
    const fs::path parent = fs::path(path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

// Makes a rename durable: the folder entry itself must reach the disk.
void syncFolder(const std::string& folder)
{
    const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd); // best effort: some file systems refuse fsync on folders
        ::close(fd);
    }
}

// rename() that refuses to replace an existing target (RENAME_NOREPLACE where the
// file system supports it, else link + unlink for files).
int renameNoReplace(const std::string& from, const std::string& to)
{
#ifdef RENAME_NOREPLACE
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
#endif
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return ::rename(from.c_str(), to.c_str());
}

// Six random letters: mkstemp's names, but created with the usual permissions
// (mkstemp and mkdtemp make them private to the user, and the rename keeps that).
std::string randomSuffix()
{
    static thread_local std::mt19937_64 rng{std::random_device{}() ^ static_cast<uint64_t>(::getpid())};
    static const char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string s(6, 'x');
    for (char& c : s)
        c = kLetters[rng() % (sizeof kLetters - 1)];
    return s;
}

// Creates "<base>.<tag>-XXXXXX" (a file, or a folder), returns its name; errno set on failure.
std::string createUnique(const std::string& base, const char* tag, bool folder)
{
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::string name = base + "." + tag + "-" + randomSuffix();
        if (folder) {
            if (::mkdir(name.c_str(), 0777) == 0)
                return name;
        } else {
            const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd >= 0) {
                ::close(fd);
                return name;
            }
        }
        if (errno != EEXIST)
            return {};
    }
    return {};
}

// An exclusive flock on a partial file or folder, held while it is written; -1 on failure
// (the export still works, a sweeper then sees no lock: the name's random part keeps
// it apart, and the window is the export's own lifetime on a system without flock).
int lockPartial(const std::string& path, bool folder)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (folder ? O_DIRECTORY : 0));
    if (fd < 0)
        return -1;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void unlock(int& fd)
{
    if (fd >= 0)
        ::close(fd); // drops the flock
    fd = -1;
}

// "<final>.partial-" + 6 letters and digits, as createUnique names them.
bool isPartialOf(const std::string& name, const std::string& finalName)
{
    const std::string tag = ".partial-";
    const size_t at = name.rfind(tag);
    if (at == std::string::npos || at == 0 || name.size() != at + tag.size() + 6)
        return false;
    if (!finalName.empty() && name.compare(0, at, finalName) != 0)
        return false;
    return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at + tag.size()), name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

bool existsNoFollow(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Names that a model export (ours or Hugging Face's) may hold.
bool looksLikeExportEntry(const fs::directory_entry& e)
{
    std::error_code ec;
    if (!e.is_regular_file(ec))
        return false;
    const std::string name = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    return ext == ".safetensors" || ext == ".json" || ext == ".model" || ext == ".txt" || ext == ".md"
           || name == "tokenizer.model" || name == ".gitattributes";
}

fs::path canonicalOrSelf(const std::string& p)
{
    std::error_code ec;
    fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
    return ec ? fs::path(p).lexically_normal() : c;
}

// True when `inner` is `outer` or lies below it.
bool isWithin(const fs::path& inner, const fs::path& outer)
{
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
        if (o->empty())
            continue; // a trailing separator
        if (i == inner.end() || *i != *o)
            return false;
    }
    return true;
}

} // namespace

namespace testing {
void injectWriteFailure(uint64_t afterBytes, int err)
{
    gInjectedBudget.store(static_cast<int64_t>(afterBytes));
    gInjectedErrno.store(err);
}
} // namespace testing

// ---------------------------------------------------------------- FileWriter

namespace {
// O_DIRECT needs buffers, sizes and offsets aligned to the device's logical
// block; 4096 covers every block size in use. Whole staging buffers are written.
constexpr uint64_t kDirectAlign = 4096;
constexpr uint64_t kStagingBytes = uint64_t{8} << 20;
} // namespace

FileWriter::FileWriter(const std::string& path, const std::string& displayName) : path_(path), display_(displayName)
{
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
    direct_ = fd_ >= 0;
    if (fd_ < 0 && errno == EINVAL) // a file system without O_DIRECT
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0)
        fail(ErrorCode::Io, display_, std::string("cannot create: ") + describeErrno(errno));
}

FileWriter::~FileWriter()
{
    if (fd_ >= 0)
        ::close(fd_);
    if (staging_)
        std::free(staging_);
}

void FileWriter::writeFailed(int err) const
{
    fail(ErrorCode::Io, display_,
         "writing failed after " + std::to_string(written_) + " bytes: " + describeErrno(err) + "; nothing was kept");
}

void FileWriter::dropDirect()
{
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0)
        ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
    direct_ = false;
}

void FileWriter::writeOut(const uint8_t* p, uint64_t n)
{
    while (n > 0) {
        const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, uint64_t{1} << 30));
        const ssize_t w = ::write(fd_, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EINVAL && direct_) { // the file system took O_DIRECT at open but refuses the write
                dropDirect();
                continue;
            }
            writeFailed(errno);
        }
        if (w == 0)
            writeFailed(ENOSPC); // a zero-length write on a regular file means no room
        if (direct_ && static_cast<uint64_t>(w) % kDirectAlign != 0)
            dropDirect(); // a short direct write: the rest is no longer aligned
        p += w;
        n -= static_cast<uint64_t>(w);
    }
}

void FileWriter::put(const uint8_t* p, uint64_t n)
{
    if (direct_ && !staging_) {
        // aligned_alloc / free: one matched pair (ASan took the aligned nothrow new and its delete for a mismatch).
        staging_ = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, kStagingBytes));
        if (!staging_)
            dropDirect();
    }
    if (!direct_) {
        if (staged_ > 0) { // what was staged before O_DIRECT was dropped goes first
            const uint64_t s = staged_;
            staged_ = 0;
            writeOut(staging_, s);
        }
        writeOut(p, n);
        written_ += n;
        return;
    }
    while (n > 0) {
        const uint64_t k = std::min(n, kStagingBytes - staged_);
        std::memcpy(staging_ + staged_, p, k);
        staged_ += k;
        p += k;
        n -= k;
        written_ += k;
        if (staged_ == kStagingBytes) {
            staged_ = 0;
            writeOut(staging_, kStagingBytes);
        }
    }
}

void FileWriter::write(const void* data, uint64_t n)
{
    if (fd_ < 0)
        fail(ErrorCode::Io, display_, "write after close");
    const auto* p = static_cast<const uint8_t*>(data);
    if (const int ms = slowWritesMs())
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    if (const int err = gInjectedErrno.load()) {
        const int64_t budget = gInjectedBudget.fetch_sub(static_cast<int64_t>(n));
        if (budget < static_cast<int64_t>(n)) {
            if (budget > 0)
                put(p, static_cast<uint64_t>(budget));
            writeFailed(err);
        }
    }
    put(p, n);
}

void FileWriter::writeZeros(uint64_t n)
{
    static const uint8_t zeros[4096] = {};
    while (n > 0) {
        const uint64_t k = std::min<uint64_t>(n, sizeof zeros);
        write(zeros, k);
        n -= k;
    }
}

void FileWriter::close()
{
    if (fd_ < 0)
        return;
    if (staged_ > 0) { // the tail is not a whole number of blocks: written without O_DIRECT
        if (direct_)
            dropDirect();
        const uint64_t s = staged_;
        staged_ = 0;
        try {
            writeOut(staging_, s);
        } catch (...) {
            ::close(fd_);
            fd_ = -1;
            throw;
        }
    }
    const int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0 && errno != EINVAL) { // EINVAL: a special file such as /dev/full
        const int err = errno;
        ::close(fd);
        writeFailed(err);
    }
    if (::close(fd) != 0)
        writeFailed(errno);
}

// ---------------------------------------------------------------- AtomicFile

AtomicFile::AtomicFile(const std::string& finalPath, bool overwrite) : final_(finalPath), overwrite_(overwrite)
{
    if (finalPath.empty())
        fail(ErrorCode::InvalidArgument, finalPath, "no output file name given");
    std::error_code ec;
    if (fs::is_directory(finalPath, ec))
        fail(ErrorCode::InvalidArgument, finalPath, "is a folder; give a file name");
    if (existsNoFollow(finalPath) && !overwrite)
        fail(ErrorCode::InvalidArgument, finalPath, "exists; pass --force to overwrite it");
    const std::string folder = folderOf(finalPath);
    if (!fs::is_directory(folder, ec))
        fail(ErrorCode::NotFound, finalPath, "the folder " + folder + " does not exist");

    swept_ = sweepStalePartials(finalPath);
    partial_ = createUnique(finalPath, "partial", false);
    if (partial_.empty())
        fail(ErrorCode::Io, finalPath, "cannot create a file in " + folder + ": " + describeErrno(errno));
    lock_ = lockPartial(partial_, false);
    try {
        writer_ = new FileWriter(partial_, finalPath);
    } catch (...) {
        ::unlink(partial_.c_str());
        throw;
    }
}

AtomicFile::~AtomicFile()
{
    delete writer_;
    if (!committed_ && !partial_.empty())
        ::unlink(partial_.c_str());
    unlock(lock_);
}

uint64_t AtomicFile::commit()
{
    writer_->close();
    const uint64_t bytes = writer_->written();
    const int rc = overwrite_ ? ::rename(partial_.c_str(), final_.c_str()) : renameNoReplace(partial_, final_);
    if (rc != 0) {
        const int err = errno;
        if (err == EEXIST)
            fail(ErrorCode::InvalidArgument, final_, "exists (it appeared while exporting); pass --force to overwrite it");
        fail(ErrorCode::Io, final_, std::string("cannot rename the finished file into place: ") + describeErrno(err));
    }
    committed_ = true;
    unlock(lock_);
    syncFolder(folderOf(final_));
    return bytes;
}

// ---------------------------------------------------------------- AtomicDir

AtomicDir::AtomicDir(const std::string& finalDir, bool overwrite) : overwrite_(overwrite)
{
    if (finalDir.empty())
        fail(ErrorCode::InvalidArgument, finalDir, "no output folder given");
    // "out/" and "out" name the same folder; the partial folder goes beside it.
    final_ = fs::path(finalDir).lexically_normal().string();
    while (final_.size() > 1 && final_.back() == '/')
        final_.pop_back();
    std::error_code ec;
    if (existsNoFollow(final_)) {
        if (!fs::is_directory(final_, ec) || fs::is_symlink(final_, ec))
            fail(ErrorCode::InvalidArgument, final_, "exists and is not a folder; refusing to replace it");
        if (!overwrite)
            fail(ErrorCode::InvalidArgument, final_, "exists; pass --force to replace it");
        for (const auto& e : fs::directory_iterator(final_, ec))
            if (!looksLikeExportEntry(e))
                fail(ErrorCode::InvalidArgument, final_,
                     "exists and holds '" + e.path().filename().string()
                         + "', which is not part of a model export; refusing to replace the folder");
    }
    const std::string folder = folderOf(final_);
    if (!fs::is_directory(folder, ec))
        fail(ErrorCode::NotFound, final_, "the folder " + folder + " does not exist");
    swept_ = sweepStalePartials(final_);
    partial_ = createUnique(final_, "partial", true);
    if (partial_.empty())
        fail(ErrorCode::Io, final_, "cannot create a folder in " + folder + ": " + describeErrno(errno));
    lock_ = lockPartial(partial_, true);
}

AtomicDir::~AtomicDir()
{
    if (!committed_ && !partial_.empty()) {
        std::error_code ec;
        fs::remove_all(partial_, ec);
    }
    unlock(lock_);
}

std::vector<StalePartial> findStalePartials(const std::string& folder, const std::string& finalName)
{
    std::vector<StalePartial> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder.empty() ? "." : folder, ec)) {
        const std::string name = e.path().filename().string();
        if (!isPartialOf(name, finalName) || e.is_symlink(ec))
            continue;
        const bool dir = e.is_directory(ec);
        if (!dir && !e.is_regular_file(ec))
            continue;
        const int fd = lockPartial(e.path().string(), dir);
        if (fd < 0)
            continue; // a live export holds it (or it vanished)
        ::close(fd);
        StalePartial p;
        p.path = e.path().string();
        p.folder = dir;
        if (dir) {
            for (const auto& f : fs::recursive_directory_iterator(e.path(), ec))
                if (f.is_regular_file(ec))
                    p.bytes += f.file_size(ec);
        } else {
            p.bytes = e.file_size(ec);
        }
        out.push_back(std::move(p));
    }
    std::sort(out.begin(), out.end(), [](const StalePartial& a, const StalePartial& b) { return a.path < b.path; });
    return out;
}

std::vector<std::string> sweepStalePartials(const std::string& finalPath)
{
    std::vector<std::string> removed;
    const fs::path p(finalPath);
    for (const StalePartial& s : findStalePartials(folderOf(finalPath), p.filename().string())) {
        std::error_code ec;
        if (s.folder)
            fs::remove_all(s.path, ec);
        else
            fs::remove(s.path, ec);
        if (!ec)
            removed.push_back(s.path);
    }
    return removed;
}

void AtomicDir::commit()
{
    syncFolder(partial_);
    if (renameNoReplace(partial_, final_) == 0) {
        committed_ = true;
        syncFolder(folderOf(final_));
        return;
    }
    if (errno != EEXIST && errno != ENOTEMPTY)
        fail(ErrorCode::Io, final_, std::string("cannot rename the finished folder into place: ") + describeErrno(errno));
    if (!overwrite_)
        fail(ErrorCode::InvalidArgument, final_, "exists (it appeared while exporting); pass --force to replace it");

    // Replace the old export: move it aside, move the new one in, then delete the old one.
    const std::string old = createUnique(final_, "old", true);
    if (old.empty())
        fail(ErrorCode::Io, final_, "cannot create a folder beside it: " + describeErrno(errno));
    if (::rename(final_.c_str(), old.c_str()) != 0) {
        const int err = errno;
        ::rmdir(old.c_str());
        fail(ErrorCode::Io, final_, std::string("cannot move the old folder aside: ") + describeErrno(err));
    }
    if (::rename(partial_.c_str(), final_.c_str()) != 0) {
        const int err = errno;
        ::rename(old.c_str(), final_.c_str()); // put the old export back
        fail(ErrorCode::Io, final_, std::string("cannot rename the finished folder into place: ") + describeErrno(err));
    }
    committed_ = true;
    syncFolder(folderOf(final_));
    std::error_code ec;
    fs::remove_all(old, ec);
}

// ---------------------------------------------------------------- checks

void refuseSourceOverlap(const std::vector<std::string>& sourceFiles, const std::string& sourceFolder,
                         const std::string& output, bool outputIsFolder)
{
    const fs::path out = canonicalOrSelf(output);
    for (const auto& f : sourceFiles) {
        if (f.empty())
            continue;
        const fs::path src = canonicalOrSelf(f);
        if (src == out)
            fail(ErrorCode::InvalidArgument, output, "is the source model's own file; export to a new file");
        if (outputIsFolder && isWithin(src, out))
            fail(ErrorCode::InvalidArgument, output,
                 "holds the source model (" + f + "); export to a new folder");
    }
    if (!sourceFolder.empty() && isWithin(out, canonicalOrSelf(sourceFolder)))
        fail(ErrorCode::InvalidArgument, output,
             "lies inside the source model's folder " + sourceFolder + "; LayerLab never modifies the source model");
}

void throwIfCancelledWriting(const Progress* progress, const std::string& file)
{
    if (progress && progress->cancelled())
        fail(ErrorCode::Cancelled, file, "export cancelled; nothing was written");
}

} // namespace ll
