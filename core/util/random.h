#pragma once
// Random numbers whose sequence is fixed by the seed on every platform
// (std::normal_distribution is not): splitmix64 and Box-Muller. Seeds in
// recipes (randomized SVD, rotations) replay bit-identically with these.
#include <cmath>
#include <cstdint>
#include <numbers>

namespace ll {

class SplitMix64Bits {
public:
    explicit SplitMix64Bits(uint64_t seed) : state_(seed) {}
    uint64_t next()
    {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in (0, 1].
    double uniform() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }

private:
    uint64_t state_;
};

// Standard normal draws, two per pair of uniforms.
class Gaussian {
public:
    explicit Gaussian(uint64_t seed) : bits_(seed) {}
    float next()
    {
        if (hasSpare_) {
            hasSpare_ = false;
            return spare_;
        }
        const double u1 = bits_.uniform(), u2 = bits_.uniform();
        const double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * std::numbers::pi * u2;
        spare_ = static_cast<float>(r * std::sin(t));
        hasSpare_ = true;
        return static_cast<float>(r * std::cos(t));
    }

private:
    SplitMix64Bits bits_;
    float spare_ = 0.0f;
    bool hasSpare_ = false;
};

} // namespace ll
