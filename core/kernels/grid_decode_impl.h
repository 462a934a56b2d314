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
#include <climits>
#include <cstdint>
#include <cstring>
#if defined(__BMI2__) || defined(__AVX512F__)
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

// The 2^bits values of a binary-coding group (its alphas at p), each summed
// as decodeGridColumns sums it: in plane order, from 0.
inline void binaryCodeTable(const uint8_t* p, int bits, float* table)
{
    float alpha[8];
    std::memcpy(alpha, p, static_cast<size_t>(bits) * 4);
    for (int code = 0; code < (1 << bits); ++code) {
        float v = 0.0f;
        for (int i = 0; i < bits; ++i)
            v += ((code >> i) & 1) ? alpha[i] : -alpha[i];
        table[code] = v;
    }
}

// dst[k] = table[code[k]] (times scale, when one is given) for k in [i, end).
inline void lookupRun(const uint8_t* code, int64_t i, int64_t end, const float* table, const float* scale, float* dst)
{
    for (; i < end; ++i)
        dst[i] = scale ? *scale * table[code[i]] : table[code[i]];
}

#if defined(__AVX512F__)
// The same for a table of at most 16 entries held in a vector: 16 values per
// VPERMPS, the last few under a mask.
inline void permuteRun(const uint8_t* code, int64_t i, int64_t end, __m512 table, const float* scale, float* dst)
{
    const __m512 s = _mm512_set1_ps(scale ? *scale : 1.0f);
    for (; i < end; i += 16) {
        const auto mask = static_cast<__mmask16>(end - i >= 16 ? 0xFFFF : (1u << (end - i)) - 1u);
        const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, code + i));
        const __m512 v = _mm512_permutexvar_ps(idx, table);
        _mm512_mask_storeu_ps(dst + i, mask, scale ? _mm512_mul_ps(s, v) : v);
    }
}

// The 16 values of a binary-coding group of at most 4 bits (alphas at p), each
// lane summing in plane order as binaryCodeTable does.
inline __m512 binaryCodeVector(const uint8_t* p, int bits)
{
    const __m512i codes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 v = _mm512_setzero_ps();
    for (int i = 0; i < bits; ++i) {
        float a;
        std::memcpy(&a, p + static_cast<size_t>(i) * 4, 4);
        const __m512 plus = _mm512_set1_ps(a);
        const __m512 minus = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(plus), _mm512_set1_epi32(INT32_MIN)));
        v = _mm512_add_ps(v, _mm512_mask_blend_ps(_mm512_test_epi32_mask(codes, _mm512_set1_epi32(1 << i)), minus, plus));
    }
    return v;
}
#endif

// Columns [c0, c0 + n) of one row, as decodeGridColumns computes them.
inline void decodeColumns(const GridLayout& L, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    const uint8_t* zeros = row + static_cast<size_t>(L.groups) * 4;
    const uint8_t* codes = row + L.codesOffset();
    const float* book = L.codebook.empty() ? nullptr : L.codebook.data();
    constexpr int64_t kChunk = 512;
    uint8_t code[kChunk];
    float table[256];
    int64_t tableGroup = -1;
#if defined(__AVX512F__)
    __m512 tableVector = _mm512_setzero_ps(), bookVector = _mm512_setzero_ps();
    if (book && L.bits <= 4) {
        alignas(64) float padded[16] = {};
        std::memcpy(padded, book, (size_t{1} << L.bits) * 4);
        bookVector = _mm512_load_ps(padded);
    }
#endif
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
            if (L.binaryCoding) { // a table of the group's 2^bits values, then one lookup a column
                const uint8_t* alphas = row + static_cast<size_t>(g) * L.groupBytes();
#if defined(__AVX512F__)
                if (L.bits <= 4) {
                    if (g != tableGroup)
                        tableVector = binaryCodeVector(alphas, L.bits);
                    tableGroup = g;
                    permuteRun(code, i, end, tableVector, nullptr, dst);
                    i = end;
                    continue;
                }
#endif
                if (g != tableGroup)
                    binaryCodeTable(alphas, L.bits, table);
                tableGroup = g;
                lookupRun(code, i, end, table, nullptr, dst);
                i = end;
                continue;
            }
            float s;
            std::memcpy(&s, row + static_cast<size_t>(g) * 4, 4);
            if (book) {
#if defined(__AVX512F__)
                if (L.bits <= 4) {
                    permuteRun(code, i, end, bookVector, &s, dst);
                    i = end;
                    continue;
                }
#endif
                lookupRun(code, i, end, book, &s, dst);
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
    if (L.hasExceptions())
        applyGridExceptions(L, row, c0, n, out);
}

#if defined(__AVX512F__)
// A binary-coding row of at most 4 bits, without exceptions or column scales,
// dotted with x without writing the decoded row: per group its 16 values in
// a vector, per 16 columns one VPERMPS and one FMA (the float path; BCQ has no
// integer grid for the int8 dots).
inline float binaryDot(const GridLayout& L, const uint8_t* row, const float* x)
{
    const uint8_t* codes = row + L.codesOffset();
    constexpr int64_t kChunk = 512;
    uint8_t code[kChunk];
    // Two accumulators: one FMA chain would wait out its latency every 16 columns.
    __m512 acc = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), table = _mm512_setzero_ps();
    int64_t tableGroup = -1;
    for (int64_t done = 0; done < L.cols; done += kChunk) {
        const int64_t len = std::min(kChunk, L.cols - done);
        unpackCodes(codes, L.bits, done, len, code);
        for (int64_t i = 0; i < len;) {
            const int64_t g = (done + i) / L.groupCols;
            const int64_t end = std::min(len, (g + 1) * L.groupCols - done);
            if (g != tableGroup)
                table = binaryCodeVector(row + static_cast<size_t>(g) * L.groupBytes(), L.bits);
            tableGroup = g;
            for (; i + 32 <= end; i += 32) {
                const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i)));
                const __m512i idx2 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i + 16)));
                acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, table), _mm512_loadu_ps(x + done + i), acc);
                acc2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx2, table), _mm512_loadu_ps(x + done + i + 16), acc2);
            }
            for (; i < end; i += 16) {
                const auto mask = static_cast<__mmask16>(end - i >= 16 ? 0xFFFF : (1u << (end - i)) - 1u);
                const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, code + i));
                acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, table), _mm512_maskz_loadu_ps(mask, x + done + i), acc);
            }
            i = end;
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc, acc2));
}
#endif

} // namespace
} // namespace ll::grid_impl
