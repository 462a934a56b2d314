#pragma once
// The fast decoder of packed grid rows (model/packed_grid.h), written once and
// compiled twice: by grid_kernels.cpp with the build's own flags and by
// grid_kernels_avx512.cpp for AVX-512 whatever the flags say. The float
// operations are the reference's (decodeGridColumns) in the same order, so the
// results are bit-identical; the speed comes from unpacking the codes 8 at a
// time (8 codes of b bits are exactly b bytes) and then scaling each group's
// run of columns in a loop the compiler vectorises, instead of looking up the
// group, its scale and a straddling code for every value.
// Internal to kernels/: include only from those two files and from
// int8_dot_avx512.cpp (the grids' integer dots spread odd widths with spreadOctet).
#include "model/packed_grid.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__BMI2__)
#include <immintrin.h>
#endif

// An unnamed namespace: each including file keeps its own copy, compiled with
// its own flags. (Inline functions with external linkage would be merged by the
// linker into one copy, possibly the AVX-512 one on the portable path.)
namespace ll::grid_impl {
namespace {

// The code of column c (bits at bit offset c * bits, possibly across two bytes).
inline unsigned codeAt(const uint8_t* codes, int64_t c, int bits)
{
    const size_t bit = static_cast<size_t>(c) * static_cast<size_t>(bits);
    unsigned v = codes[bit / 8] >> (bit % 8);
    if (bit % 8 + static_cast<size_t>(bits) > 8)
        v |= static_cast<unsigned>(codes[bit / 8 + 1]) << (8 - bit % 8);
    return v & ((1u << bits) - 1u);
}

// Bytes [0, N) at p, little-endian, from loads of 4, 2 and 1 bytes. (A copy of
// N bytes into a zeroed 8-byte word goes through the stack, and the 8-byte read
// then waits for the narrower writes: a store-forwarding stall per octet.)
template <int N>
inline uint64_t loadLE(const uint8_t* p)
{
    uint64_t v = 0;
    int at = 0;
    if constexpr (N >= 4) {
        uint32_t w;
        std::memcpy(&w, p, 4);
        v = w;
        at = 4;
    }
    if constexpr (N % 4 >= 2) {
        uint16_t h;
        std::memcpy(&h, p + at, 2);
        v |= static_cast<uint64_t>(h) << (8 * at);
        at += 2;
    }
    if constexpr (N % 2 == 1)
        v |= static_cast<uint64_t>(p[at]) << (8 * at);
    return v;
}

// An octet of 8 codes of Bits bits (Bits bytes, little-endian) spread to one
// code a byte. With BMI2 (every AVX-512 CPU), PDEP does it in one
// instruction: 6x the rate of shifting the codes out one by one.
template <int Bits>
inline uint64_t spreadOctet(const uint8_t* p)
{
    const uint64_t v = loadLE<Bits>(p);
#if defined(__BMI2__)
    return _pdep_u64(v, ((uint64_t{1} << Bits) - 1) * 0x0101010101010101ull);
#else
    uint64_t out = 0;
    for (int k = 0; k < 8; ++k)
        out |= ((v >> (k * Bits)) & ((uint64_t{1} << Bits) - 1)) << (8 * k);
    return out;
#endif
}

template <int Bits>
inline void unpackOctets(const uint8_t* p, int64_t octets, uint8_t* o)
{
    for (int64_t j = 0; j < octets; ++j) {
        const uint64_t spread = spreadOctet<Bits>(p + j * Bits);
        std::memcpy(o + 8 * j, &spread, 8);
    }
}

// The codes of columns [c0, c0 + n) into out (n bytes).
inline void unpackCodes(const uint8_t* codes, int bits, int64_t c0, int64_t n, uint8_t* out)
{
    int64_t i = 0;
    for (; i < n && (c0 + i) % 8 != 0; ++i)
        out[i] = static_cast<uint8_t>(codeAt(codes, c0 + i, bits));
    const int64_t octets = (n - i) / 8;
    const uint8_t* p = codes + static_cast<size_t>((c0 + i) / 8) * static_cast<size_t>(bits);
    uint8_t* o = out + i;
    switch (bits) {
    case 8:
        std::memcpy(o, p, static_cast<size_t>(octets) * 8);
        break;
    case 4:
        for (int64_t j = 0; j < octets * 4; ++j) {
            o[2 * j] = p[j] & 15u;
            o[2 * j + 1] = p[j] >> 4;
        }
        break;
    case 2:
        for (int64_t j = 0; j < octets * 2; ++j)
            for (int k = 0; k < 4; ++k)
                o[4 * j + k] = (p[j] >> (2 * k)) & 3u;
        break;
    case 1: unpackOctets<1>(p, octets, o); break;
    case 3: unpackOctets<3>(p, octets, o); break;
    case 5: unpackOctets<5>(p, octets, o); break;
    case 6: unpackOctets<6>(p, octets, o); break;
    default: unpackOctets<7>(p, octets, o); break;
    }
    for (i += octets * 8; i < n; ++i)
        out[i] = static_cast<uint8_t>(codeAt(codes, c0 + i, bits));
}

// Columns [c0, c0 + n) of one row, as decodeGridColumns computes them.
inline void decodeColumns(const GridLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    const uint8_t* zeros = row + static_cast<size_t>(L.groups) * 4;
    const uint8_t* codes = zeros + L.groups;
    const float* book = L.codebook.empty() ? nullptr : L.codebook.data();
    constexpr int64_t kChunk = 512;
    uint8_t code[kChunk];
    for (int64_t done = 0; done < n; done += kChunk) {
        const int64_t len = std::min(kChunk, n - done);
        const int64_t first = c0 + done;
        float* dst = out + done;
        unpackCodes(codes, L.bits, first, len, code);
        if (!L.groupIndex.empty()) { // act-order: each column names its group
            for (int64_t i = 0; i < len; ++i) {
                const auto g = static_cast<size_t>(L.groupIndex[static_cast<size_t>(first + i)]);
                float s;
                std::memcpy(&s, row + g * 4, 4);
                dst[i] = book ? s * book[code[i]] : s * (static_cast<float>(code[i]) - static_cast<float>(zeros[g]));
            }
            continue;
        }
        for (int64_t i = 0; i < len;) {
            const int64_t g = (first + i) / L.groupCols;
            const int64_t end = std::min(len, (g + 1) * L.groupCols - first);
            float s;
            std::memcpy(&s, row + static_cast<size_t>(g) * 4, 4);
            if (book) {
                for (int64_t k = i; k < end; ++k)
                    dst[k] = s * book[code[k]];
            } else {
                const float z = static_cast<float>(zeros[g]);
                for (int64_t k = i; k < end; ++k)
                    dst[k] = s * (static_cast<float>(code[k]) - z);
            }
            i = end;
        }
    }
    if (!L.columnScale.empty()) {
        const float* cs = L.columnScale.data() + c0;
        for (int64_t i = 0; i < n; ++i)
            out[i] *= cs[i];
    }
}

} // namespace
} // namespace ll::grid_impl
