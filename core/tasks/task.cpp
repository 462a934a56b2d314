#include "tasks/task.h"

#include "util/error.h"

#include <numeric>

namespace ll {

namespace {

// SplitMix64: a small generator whose sequence is fixed by its seed on every
// platform (std::uniform_int_distribution is not), so golden prompts stay golden.
struct SplitMix64 {
    uint64_t state;
    uint64_t next()
    {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) by rejection (no modulo bias).
    uint64_t below(uint64_t n)
    {
        const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
        uint64_t x = next();
        while (x >= limit)
            x = next();
        return x % n;
    }
};

} // namespace

std::vector<int> fewshotExamples(const Task& task, int index, int shots, uint64_t seed)
{
    if (shots <= 0)
        return {};
    const int n = static_cast<int>(task.items.size());
    if (index < 0 || index >= n)
        fail(ErrorCode::OutOfRange, task.source, "no item " + std::to_string(index) + " in task " + task.name);
    const std::string& group = task.items[static_cast<size_t>(index)].group;
    std::vector<int> pool;
    for (int i = 0; i < n; ++i)
        if (i != index && task.items[static_cast<size_t>(i)].group == group)
            pool.push_back(i);
    if (static_cast<int>(pool.size()) < shots) { // a group too small: examples from the whole task
        pool.resize(static_cast<size_t>(n));
        std::iota(pool.begin(), pool.end(), 0);
        pool.erase(pool.begin() + index);
    }
    if (static_cast<int>(pool.size()) < shots)
        fail(ErrorCode::InvalidArgument, task.source,
             std::to_string(shots) + "-shot prompts need " + std::to_string(shots + 1) + " items, task " + task.name
                 + " has " + std::to_string(n));
    SplitMix64 rng{seed * 0x100000001B3ull + static_cast<uint64_t>(index)};
    // A partial Fisher-Yates shuffle: the first `shots` entries are the draw, in draw order.
    for (int k = 0; k < shots; ++k) {
        const auto j = static_cast<size_t>(k) + static_cast<size_t>(rng.below(pool.size() - static_cast<size_t>(k)));
        std::swap(pool[static_cast<size_t>(k)], pool[j]);
    }
    pool.resize(static_cast<size_t>(shots));
    return pool;
}

std::string promptPrefix(const Task& task, int index, int shots, uint64_t seed)
{
    std::string prefix = task.items.at(static_cast<size_t>(index)).description;
    for (const int e : fewshotExamples(task, index, shots, seed)) {
        prefix += task.items[static_cast<size_t>(e)].solvedExample();
        prefix += task.fewshotDelimiter;
    }
    return prefix;
}

} // namespace ll
