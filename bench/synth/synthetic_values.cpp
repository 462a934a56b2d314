#include "synthetic_values.h"

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/half.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

namespace ll::synth {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// splitmix64's output function: a bijective mixer, good enough that consecutive
// counters give independent-looking outputs.
inline uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Four 16-bit uniforms summed: mean 4 * 32767.5, standard deviation 65536 / sqrt(3)
// (up to 2^-32). The result is that sum centred and scaled to unit variance.
constexpr float kSumMean = 131070.0f;
constexpr float kInvSumStd = 1.7320508075688772f / 65536.0f;

inline float normalish(uint64_t z)
{
    const uint32_t s = static_cast<uint32_t>(z & 0xffff) + static_cast<uint32_t>((z >> 16) & 0xffff)
                       + static_cast<uint32_t>((z >> 32) & 0xffff) + static_cast<uint32_t>(z >> 48);
    return (static_cast<float>(s) - kSumMean) * kInvSumStd;
}

// One loop per output type so that each vectorizes (the mixer's 64-bit products
// are single instructions with AVX-512).
template <typename Encode>
void fillWith(uint64_t key, float mean, float std, uint64_t first, uint64_t count, Encode encode)
{
    const uint64_t base = key + (first + 1) * kGolden;
    for (uint64_t i = 0; i < count; ++i)
        encode(i, mean + std * normalish(mix(base + i * kGolden)));
}

} // namespace

uint64_t tensorKey(uint64_t seed, std::string_view tensorName)
{
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
    for (unsigned char c : tensorName) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return mix(mix(seed + kGolden) ^ h);
}

uint64_t elementBytes(DType dtype)
{
    switch (dtype) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    default:
        fail(ErrorCode::InvalidArgument, "", "synthetic checkpoints are F32, F16 or BF16, not " + std::string(dtypeName(dtype)));
    }
}

void fillValues(uint64_t key, float mean, float std, uint64_t first, uint64_t count, DType dtype, uint8_t* out)
{
    switch (dtype) {
    case DType::F32: {
        auto* p = reinterpret_cast<float*>(out);
        fillWith(key, mean, std, first, count, [p](uint64_t i, float v) { p[i] = v; });
        break;
    }
    case DType::F16: {
        auto* p = reinterpret_cast<uint16_t*>(out);
        fillWith(key, mean, std, first, count, [p](uint64_t i, float v) { p[i] = floatToFp16(v); });
        break;
    }
    case DType::BF16: {
        // The values are finite by construction, so floatToBf16's NaN branch is left out here.
        auto* p = reinterpret_cast<uint16_t*>(out);
        fillWith(key, mean, std, first, count, [p](uint64_t i, float v) {
            uint32_t bits;
            std::memcpy(&bits, &v, 4);
            bits += 0x7fffu + ((bits >> 16) & 1u); // round to nearest even
            p[i] = static_cast<uint16_t>(bits >> 16);
        });
        break;
    }
    default:
        elementBytes(dtype); // throws
    }
}

namespace {

// fillValues split over `threads` threads (the calling one included).
void fillParallel(uint64_t key, float mean, float std, uint64_t first, uint64_t count, DType dtype, uint8_t* out,
                  int threads)
{
    const uint64_t eb = elementBytes(dtype);
    const uint64_t parts = std::clamp<uint64_t>(static_cast<uint64_t>(std::max(threads, 1)), 1, std::max<uint64_t>(count / 65536, 1));
    const uint64_t per = (count + parts - 1) / parts;
    std::vector<std::thread> helpers;
    for (uint64_t p = 1; p < parts; ++p) {
        const uint64_t a = std::min(count, p * per), n = std::min(count, a + per) - a;
        helpers.emplace_back([=] { fillValues(key, mean, std, first + a, n, dtype, out + a * eb); });
    }
    fillValues(key, mean, std, first, std::min(count, per), dtype, out);
    for (auto& t : helpers)
        t.join();
}

} // namespace

void streamValues(FileWriter& out, uint64_t key, float mean, float std, uint64_t elements, DType dtype,
                  const StreamOptions& opt)
{
    const uint64_t eb = elementBytes(dtype);
    const uint64_t perChunk = std::max<uint64_t>(opt.chunkBytes / eb, 1);
    const uint64_t bufElems = std::min(perChunk, elements);
    // Declared before `next` so that they outlive a generation still running when a write throws.
    std::vector<uint8_t> buffers[2] = {std::vector<uint8_t>(bufElems * eb), std::vector<uint8_t>(bufElems * eb)};
    auto generate = [&](int b, uint64_t first, uint64_t n) {
        fillParallel(key, mean, std, first, n, dtype, buffers[b].data(), opt.threads);
    };
    std::future<void> next;
    uint64_t first = 0;
    int cur = 0;
    if (elements > 0)
        next = std::async(std::launch::async, generate, cur, first, std::min(perChunk, elements));
    while (first < elements) {
        next.get();
        const uint64_t n = std::min(perChunk, elements - first);
        const uint64_t after = first + n;
        if (after < elements)
            next = std::async(std::launch::async, generate, 1 - cur, after, std::min(perChunk, elements - after));
        out.write(buffers[cur].data(), n * eb);
        if (opt.afterChunk)
            opt.afterChunk(n * eb);
        first = after;
        cur = 1 - cur;
    }
}

} // namespace ll::synth
