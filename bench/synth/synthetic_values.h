#pragma once
// Pseudo-random tensor values for synthetic checkpoints. Element i of a tensor
// is a pure function of (key, i) (a counter-based generator: splitmix64's mixer
// applied to key + i), so any chunk can be made on any thread in any order and
// the bytes never depend on how the work was split.
#include "model/dtype.h"

#include <cstdint>
#include <functional>
#include <string_view>

namespace ll {
class FileWriter;
}

namespace ll::synth {

// The generator key of one tensor: the seed mixed with a hash of the tensor's name.
uint64_t tensorKey(uint64_t seed, std::string_view tensorName);

// Bytes of one value: 4 for F32, 2 for F16 and BF16 (InvalidArgument otherwise).
uint64_t elementBytes(DType dtype);

// Writes the values mean + std * z of elements [first, first + count) to `out`,
// encoded as `dtype` (little-endian). z is approximately standard normal: the
// centred sum of four 16-bit uniforms (Irwin-Hall), so |z| <= 3.47 and nothing
// is ever infinite.
void fillValues(uint64_t key, float mean, float std, uint64_t first, uint64_t count, DType dtype, uint8_t* out);

struct StreamOptions {
    int threads = 2;                  // threads generating a chunk
    uint64_t chunkBytes = 4ull << 20; // bytes generated and written at a time
    // Called after each chunk is written (progress, cancellation: it may throw).
    std::function<void(uint64_t bytesWritten)> afterChunk;
};

// Generates and writes a tensor of `elements` values chunk by chunk: the next
// chunk is generated while the current one is being written, so memory stays
// at two chunks whatever the tensor's size.
void streamValues(FileWriter& out, uint64_t key, float mean, float std, uint64_t elements, DType dtype,
                  const StreamOptions& options);

} // namespace ll::synth
