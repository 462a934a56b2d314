#pragma once
// Byte layouts of ggml's quantized blocks, field for field as ggml-common.h
// defines them (https://github.com/ggml-org/ggml/blob/master/src/ggml-common.h).
// Half-precision fields are kept as raw uint16_t bits; the static_asserts pin
// the sizes so that a block can be memcpy'd straight out of a GGUF file.
#include <cstdint>

namespace ll::ggml {

constexpr int kQK = 32;   // values per block of the "legacy" types (Q4_0 ... Q8_0, IQ4_NL)
constexpr int kQK_K = 256; // values per super-block of the k-quants and IQ4_XS
constexpr int kKScaleSize = 12; // packed 6-bit scales and mins of Q4_K / Q5_K

// x = d * (q - 8), q in [0, 15]
struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[kQK / 2]; // value j in the low nibble of qs[j], value j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

// x = d * q + m
struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// x = d * (q - 16), q in [0, 31]; bit 4 of value j is bit j of qh (little-endian 32 bits)
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

// 16 groups of 16 values: x = d * (scale & 15) * q - dmin * (scale >> 4), q in [0, 3]
struct BlockQ2_K {
    uint8_t scales[kQK_K / 16];
    uint8_t qs[kQK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// 16 groups of 16 values: x = d * (scale6 - 32) * (q2 - (high bit ? 0 : 4))
struct BlockQ3_K {
    uint8_t hmask[kQK_K / 8];
    uint8_t qs[kQK_K / 4];
    uint8_t scales[12]; // sixteen 6-bit scales
    uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// 8 groups of 32 values: x = d * scale6 * q - dmin * min6, q in [0, 15]
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// As Q4_K with a fifth bit per value in qh.
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// 16 groups of 16 values: x = d * scale8 * (q - 32), q in [0, 63]
struct BlockQ6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// x = d * kIq4nlValues[q]
struct BlockIQ4_NL {
    uint16_t d;
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18);

// 8 groups of 32 values: x = d * (scale6 - 32) * kIq4nlValues[q]
struct BlockIQ4_XS {
    uint16_t d;
    uint16_t scales_h; // high 2 bits of each group's scale
    uint8_t scales_l[kQK_K / 64]; // low 4 bits, two groups per byte
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);

// The 16 non-linear levels shared by IQ4_NL and IQ4_XS.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

} // namespace ll::ggml
