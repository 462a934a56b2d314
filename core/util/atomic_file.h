#pragma once
// Writing export files so that a failure never leaves a half-written model
// behind: data goes to "<final>.partial-XXXXXX" beside the final name, is
// fsync'ed, and is renamed over the final name only once complete. Any error
// (a full disk included) or a cancellation removes the partial file and throws
// an ll::Error naming the final file. Folders (Hugging Face exports) are built
// in "<dir>.partial-XXXXXX" and renamed as a whole at the end.
//
// An export killed outright (SIGKILL, a crash, power loss) cannot clean up:
// its partial file stays. Every live export holds an exclusive flock on its
// partial file or folder, which the kernel drops when the process dies, so a
// partial nobody locks is stale: the next export to the same name removes it
// (and says so), `layerlab-cli clean` lists them.
#include <cstdint>
#include <string>
#include <vector>

namespace ll {

class Progress;

// An open file written sequentially; every write error is an ll::Error naming
// `displayName`. Meant for files of an AtomicFile or AtomicDir, whose clean-up
// the error message promises ("nothing was kept").
//
// Data goes to the disk directly (O_DIRECT, through an aligned staging buffer of
// a few MB) where the file system allows it: copying gigabytes into the page
// cache and writing them back at fsync costs more than the disk itself, and an
// export is not read back soon. Elsewhere (tmpfs, some network file systems) it
// falls back to ordinary buffered writes.
class FileWriter {
public:
    FileWriter(const std::string& path, const std::string& displayName);
    ~FileWriter(); // closes (without syncing) when close() was not called
    FileWriter(const FileWriter&) = delete;
    FileWriter& operator=(const FileWriter&) = delete;

    void write(const void* data, uint64_t n);
    void writeZeros(uint64_t n);
    uint64_t written() const { return written_; }
    // fsync + close; throws on failure (a delayed write error shows up here).
    void close();

    const std::string& path() const { return path_; }
    // The name errors give: the final file, not the partial one being written.
    const std::string& displayName() const { return display_; }

    // Writes through O_DIRECT (false once the file system refused it).
    bool direct() const { return direct_; }

private:
    [[noreturn]] void writeFailed(int err) const;
    void put(const uint8_t* p, uint64_t n);           // to the file (the staging buffer when direct)
    void writeOut(const uint8_t* p, uint64_t n);      // write(2) until done
    void dropDirect();                                // buffered writes from here on
    int fd_ = -1;
    std::string path_;
    std::string display_;
    uint64_t written_ = 0;
    bool direct_ = false;
    uint8_t* staging_ = nullptr; // kStagingBytes, aligned for O_DIRECT; allocated on first use
    uint64_t staged_ = 0;
};

// A single file: construct, write(), commit(). Destroyed without commit(), it removes the partial file.
class AtomicFile {
public:
    // Refuses (InvalidArgument) when finalPath exists and overwrite is false, or when it is a folder.
    AtomicFile(const std::string& finalPath, bool overwrite);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    FileWriter& out() { return *writer_; }
    const std::string& finalPath() const { return final_; }
    const std::string& partialPath() const { return partial_; }
    // fsync, rename over the final name, fsync the folder. Returns the bytes written.
    uint64_t commit();
    // Stale partial files of the same final name removed before this one was made.
    const std::vector<std::string>& swept() const { return swept_; }

private:
    std::string final_;
    std::string partial_;
    bool overwrite_;
    bool committed_ = false;
    FileWriter* writer_ = nullptr;
    int lock_ = -1; // holds the flock on partial_ (see above)
    std::vector<std::string> swept_;
};

// A folder built under a partial name; commit() renames it to the final name.
class AtomicDir {
public:
    // Refuses when finalDir exists (unless overwrite) or is a file. With overwrite,
    // an existing folder is only replaced when it looks like a model export
    // (config.json, *.safetensors, *.json, tokenizer files), never an arbitrary folder.
    AtomicDir(const std::string& finalDir, bool overwrite);
    ~AtomicDir(); // removes the partial folder unless committed
    AtomicDir(const AtomicDir&) = delete;
    AtomicDir& operator=(const AtomicDir&) = delete;

    const std::string& finalPath() const { return final_; }
    const std::string& partialPath() const { return partial_; }
    // Path of a file inside the partial folder.
    std::string partialFile(const std::string& name) const { return partial_ + "/" + name; }
    // fsyncs the folder and renames it into place (replacing an old export when allowed).
    void commit();
    const std::vector<std::string>& swept() const { return swept_; }

private:
    std::string final_;
    std::string partial_;
    bool overwrite_;
    bool committed_ = false;
    int lock_ = -1;
    std::vector<std::string> swept_;
};

// A partial file or folder nobody is writing (its export was killed).
struct StalePartial {
    std::string path;
    uint64_t bytes = 0;
    bool folder = false;
};
// The stale partials in `folder` ("<name>.partial-XXXXXX"); of one final
// name only when finalName is not empty.
std::vector<StalePartial> findStalePartials(const std::string& folder, const std::string& finalName = "");
// Removes the stale partials of finalPath; returns their paths.
std::vector<std::string> sweepStalePartials(const std::string& finalPath);

// Refuses (InvalidArgument) an output that would modify the source model: the
// output is one of `sourceFiles`, lies inside `sourceFolder` (the folder the
// user opened, if any), or is a folder that contains a source file.
void refuseSourceOverlap(const std::vector<std::string>& sourceFiles, const std::string& sourceFolder,
                         const std::string& output, bool outputIsFolder);

// Throws Cancelled naming `file` when the user cancelled.
void throwIfCancelledWriting(const Progress* progress, const std::string& file);

namespace testing {
// Makes every FileWriter fail with errno `err` once `afterBytes` bytes have been
// written in this process (ENOSPC simulates a full disk). err = 0 turns it off.
void injectWriteFailure(uint64_t afterBytes, int err);
} // namespace testing

} // namespace ll
