#pragma once
// IEEE half and bfloat16 conversion (scalar, exact; the compiler vectorises the loops that call them).
#include <cstdint>
#include <cstring>

namespace ll {

inline float bf16ToFloat(uint16_t h)
{
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// The portable conversions: exact, IEEE round to nearest even. Clang 14 has
// no _Float16 on x86-64 (the fuzz build), GCC's lowers to F16C where it can.
inline float fp16ToFloatPortable(uint16_t h)
{
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) { // infinity, or a NaN made quiet (as the hardware does)
        bits = sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x400000u : 0u);
    } else if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
            bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t floatToFp16Portable(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) // NaN: quiet, the payload's top bits kept
        return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) // 65520 and above round to infinity
        return static_cast<uint16_t>(sign | 0x7c00u);
    const uint32_t e = a >> 23;
    if (e < 113) { // below 2^-14: a half subnormal, m * 2^-24 with m = M * 2^(e - 126)
        if (e < 102)
            return sign; // below 2^-25: rounds to zero
        const uint32_t M = (a & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e; // 14..24
        uint32_t m = M >> shift;
        const uint32_t rem = M & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (m & 1u)))
            ++m; // 1024 is the smallest normal: the encoding carries into it
        return static_cast<uint16_t>(sign | m);
    }
    uint32_t h = ((e - 112) << 10) | ((a >> 13) & 0x3ffu);
    const uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        ++h; // a carry into the exponent is the right rounding too
    return static_cast<uint16_t>(sign | h);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LL_HAVE_FLOAT16 1
#endif

inline float fp16ToFloat(uint16_t h)
{
#ifdef LL_HAVE_FLOAT16
    _Float16 v;
    std::memcpy(&v, &h, 2);
    return static_cast<float>(v);
#else
    return fp16ToFloatPortable(h);
#endif
}

inline uint16_t floatToFp16(float f)
{
#ifdef LL_HAVE_FLOAT16
    _Float16 v = static_cast<_Float16>(f);
    uint16_t h;
    std::memcpy(&h, &v, 2);
    return h;
#else
    return floatToFp16Portable(f);
#endif
}

// Round to nearest even, NaN kept quiet.
inline uint16_t floatToBf16(float f)
{
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return static_cast<uint16_t>((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>(bits >> 16);
}

} // namespace ll
