#pragma once
// Floats held in memory, or, past a budget, in a temporary file mapped into
// memory: the kernel writes its pages out as it needs to, so the process's own
// (anonymous) memory stays bounded however large the buffer. Streaming
// calibration keeps every calibration window's hidden states here.
//
// The file is created in $TMPDIR (or /tmp), unlinked at once (nothing is left
// behind, even after a crash) and its space reserved up front, so a full disk
// is an Io error naming the folder, never a SIGBUS later.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ll {

class SpillBuffer {
public:
    // `what` names the contents in error messages ("calibration activations").
    SpillBuffer(size_t floats, uint64_t memoryBudgetBytes, const std::string& what);
    ~SpillBuffer();
    SpillBuffer(const SpillBuffer&) = delete;
    SpillBuffer& operator=(const SpillBuffer&) = delete;

    float* data() { return data_; }
    size_t size() const { return floats_; }
    bool onDisk() const { return onDisk_; }
    // The folder temporary files go to.
    static std::string tempDir();

private:
    float* data_ = nullptr;
    size_t floats_ = 0;
    bool onDisk_ = false;
};

} // namespace ll
