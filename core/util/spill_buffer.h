#pragma once
// Memory held in the process, or, past a budget, in a temporary file mapped
// into memory: the kernel writes its pages out as it needs to, so the
// process's own (anonymous) memory stays bounded however large the buffer,
// and on a machine without swap memory pressure evicts pages instead of
// killing the process.
//
//   SpillBuffer  one buffer against one budget (streaming calibration keeps
//                every window's hidden states in one);
//   EditBuffer   the bytes of an edited tensor (packed codes, F32 values):
//                in memory while all live edits together stay under the edit
//                budget (setEditMemoryBudget; LAYERLAB_EDIT_MEMORY_MB), else
//                spilled. The undo history and a 7B model's compressed layers
//                live in these.
//
// A file is created in $TMPDIR (or /tmp), unlinked at once (nothing is left
// behind, even after a crash) and its space reserved up front, so a full disk
// is an Io error naming the folder, never a SIGBUS later.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ll {

class SpillBuffer {
public:
    // `what` names the contents in error messages ("calibration activations").
    SpillBuffer(size_t bytes, uint64_t memoryBudgetBytes, const std::string& what);
    ~SpillBuffer();
    SpillBuffer(const SpillBuffer&) = delete;
    SpillBuffer& operator=(const SpillBuffer&) = delete;

    uint8_t* bytes() { return data_; }
    float* data() { return reinterpret_cast<float*>(data_); }
    size_t size() const { return bytes_; }
    bool onDisk() const { return onDisk_; }
    // The folder temporary files go to.
    static std::string tempDir();

private:
    uint8_t* data_ = nullptr;
    size_t bytes_ = 0;
    bool onDisk_ = false;
};

// An edited tensor's bytes (see above); counted while in memory.
class EditBuffer {
public:
    explicit EditBuffer(size_t bytes);
    ~EditBuffer();
    EditBuffer(const EditBuffer&) = delete;
    EditBuffer& operator=(const EditBuffer&) = delete;

    uint8_t* data() { return buffer_.bytes(); }
    size_t size() const { return buffer_.size(); }
    bool onDisk() const { return buffer_.onDisk(); }

private:
    SpillBuffer buffer_;
};

std::shared_ptr<EditBuffer> makeEditBuffer(size_t bytes);

// Bytes of live edits kept in memory before new ones spill (default 256 MiB, or
// LAYERLAB_EDIT_MEMORY_MB); and what is held now, in memory and spilled.
void setEditMemoryBudget(uint64_t bytes);
uint64_t editMemoryBudget();
uint64_t editBytesInMemory();
uint64_t editBytesSpilled();

} // namespace ll
