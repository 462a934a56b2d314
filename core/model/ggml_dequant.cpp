#include "model/ggml_dequant.h"

#include "model/ggml_blocks.h"
#include "util/error.h"
#include "util/half.h"

#include <cstring>
#include <string>

namespace ll {

namespace {

using namespace ggml;

// Each decoder turns one block into its values. The arithmetic is done in the
// same float order as ggml's dequantize_row_* so that results match bit for bit
// (the build uses ISO C++, so the compiler does not fuse multiply-adds).

void decodeQ4_0(const BlockQ4_0& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
        y[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
}

void decodeQ4_1(const BlockQ4_1& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    const float m = fp16ToFloat(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
        y[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
}

// The fifth bit of value j is bit j of the block's 32-bit qh word.
uint32_t highBits(const uint8_t (&qh)[4])
{
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 | static_cast<uint32_t>(qh[2]) << 16
        | static_cast<uint32_t>(qh[3]) << 24;
}

void decodeQ5_0(const BlockQ5_0& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    const uint32_t qh = highBits(b.qh);
    for (int j = 0; j < kQK / 2; ++j) {
        const int lo = (b.qs[j] & 0x0F) | static_cast<int>((qh >> j) & 1) << 4;
        const int hi = (b.qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4;
        y[j] = static_cast<float>(lo - 16) * d;
        y[j + kQK / 2] = static_cast<float>(hi - 16) * d;
    }
}

void decodeQ5_1(const BlockQ5_1& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    const float m = fp16ToFloat(b.m);
    const uint32_t qh = highBits(b.qh);
    for (int j = 0; j < kQK / 2; ++j) {
        const int lo = (b.qs[j] & 0x0F) | static_cast<int>((qh >> j) & 1) << 4;
        const int hi = (b.qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4;
        y[j] = static_cast<float>(lo) * d + m;
        y[j + kQK / 2] = static_cast<float>(hi) * d + m;
    }
}

void decodeQ8_0(const BlockQ8_0& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    for (int j = 0; j < kQK; ++j)
        y[j] = static_cast<float>(b.qs[j]) * d;
}

// Q2_K and Q3_K share one arrangement: the super-block is two halves of 128
// values; in half h, value 32*j + l takes bits (2j, 2j+1) of qs[32*h + l], and
// every 16 consecutive values share a scale (index 8*h + 2*j + l/16).
void decodeQ2_K(const BlockQ2_K& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    const float dmin = fp16ToFloat(b.dmin);
    for (int v = 0; v < kQK_K; ++v) {
        const int h = v / 128, j = (v % 128) / 32, l = v % 32;
        const uint8_t sc = b.scales[8 * h + 2 * j + l / 16];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        const int q = (b.qs[32 * h + l] >> (2 * j)) & 3;
        y[v] = dl * static_cast<float>(q) - ml;
    }
}

// Sixteen 6-bit scales packed in 12 bytes: low nibbles in bytes 0..7 (scales
// 0..7 low half, 8..15 high half), the top two bits in bytes 8..11.
int q3kScale(const uint8_t (&s)[12], int i)
{
    const int low = i < 8 ? (s[i] & 0x0F) : (s[i - 8] >> 4);
    const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (low | high << 4) - 32;
}

void decodeQ3_K(const BlockQ3_K& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    for (int v = 0; v < kQK_K; ++v) {
        const int h = v / 128, j = (v % 128) / 32, l = v % 32;
        const float dl = d * static_cast<float>(q3kScale(b.scales, 8 * h + 2 * j + l / 16));
        const int low = (b.qs[32 * h + l] >> (2 * j)) & 3;
        // The stored high bit set means "no offset"; clear means subtract 4.
        const bool high = (b.hmask[l] >> (4 * h + j)) & 1;
        y[v] = dl * static_cast<float>(low - (high ? 0 : 4));
    }
}

// Scale and min of sub-block i (0..7) of Q4_K / Q5_K: 6 bits each, the first
// four stored whole, the last four split between a nibble and spare top bits.
void kScaleMin(const uint8_t (&s)[kKScaleSize], int i, int& scale, int& min)
{
    if (i < 4) {
        scale = s[i] & 63;
        min = s[i + 4] & 63;
    } else {
        scale = (s[i + 4] & 0x0F) | (s[i - 4] >> 6) << 4;
        min = (s[i + 4] >> 4) | (s[i] >> 6) << 4;
    }
}

// Q4_K and Q5_K: four chunks of 64 values; chunk c uses qs[32c .. 32c+31],
// low nibbles for sub-block 2c and high nibbles for sub-block 2c+1.
void decodeQ4_K(const BlockQ4_K& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    const float dmin = fp16ToFloat(b.dmin);
    for (int sub = 0; sub < 8; ++sub) {
        int sc = 0, mn = 0;
        kScaleMin(b.scales, sub, sc, mn);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(mn);
        const uint8_t* q = b.qs + 32 * (sub / 2);
        const int shift = 4 * (sub % 2);
        for (int l = 0; l < 32; ++l)
            y[32 * sub + l] = dl * static_cast<float>((q[l] >> shift) & 0x0F) - ml;
    }
}

void decodeQ5_K(const BlockQ5_K& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    const float dmin = fp16ToFloat(b.dmin);
    for (int sub = 0; sub < 8; ++sub) {
        int sc = 0, mn = 0;
        kScaleMin(b.scales, sub, sc, mn);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(mn);
        const uint8_t* q = b.qs + 32 * (sub / 2);
        const int shift = 4 * (sub % 2);
        for (int l = 0; l < 32; ++l) {
            const int fifth = (b.qh[l] >> sub) & 1; // bit `sub` of qh[l] belongs to sub-block `sub`
            y[32 * sub + l] = dl * static_cast<float>(((q[l] >> shift) & 0x0F) | fifth << 4) - ml;
        }
    }
}

// Q6_K: two halves of 128 values. In half h, for l in 0..31 the four values
// l, l+32, l+64, l+96 take the low nibble of ql[l], of ql[l+32], the high
// nibble of ql[l], of ql[l+32], and bit pairs 0, 2, 4, 6 of qh[l].
void decodeQ6_K(const BlockQ6_K& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = b.ql + 64 * h;
        const uint8_t* qh = b.qh + 32 * h;
        const int8_t* sc = b.scales + 8 * h;
        float* out = y + 128 * h;
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
            const int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
            const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
            out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
            out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
            out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
        }
    }
}

void decodeIQ4_NL(const BlockIQ4_NL& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = d * static_cast<float>(kIq4nlValues[b.qs[j] & 0x0F]);
        y[j + kQK / 2] = d * static_cast<float>(kIq4nlValues[b.qs[j] >> 4]);
    }
}

void decodeIQ4_XS(const BlockIQ4_XS& b, float* y)
{
    const float d = fp16ToFloat(b.d);
    for (int sub = 0; sub < 8; ++sub) {
        const int low = (b.scales_l[sub / 2] >> (4 * (sub % 2))) & 0x0F;
        const int high = (b.scales_h >> (2 * sub)) & 3;
        const float dl = d * static_cast<float>((low | high << 4) - 32);
        const uint8_t* q = b.qs + 16 * sub;
        float* out = y + 32 * sub;
        for (int j = 0; j < 16; ++j) {
            out[j] = dl * static_cast<float>(kIq4nlValues[q[j] & 0x0F]);
            out[j + 16] = dl * static_cast<float>(kIq4nlValues[q[j] >> 4]);
        }
    }
}

// Copies each block out of the (possibly unaligned) source before decoding it.
template <class Block, int Elems>
void decodeBlocks(void (*decode)(const Block&, float*), const uint8_t* src, float* dst, int64_t n, DType t)
{
    if (n % Elems != 0)
        fail(ErrorCode::InvalidArgument, "",
             std::to_string(n) + " values of " + std::string(dtypeName(t)) + " are not a whole number of "
                 + std::to_string(Elems) + "-value blocks");
    const int64_t blocks = n / Elems;
    for (int64_t i = 0; i < blocks; ++i) {
        Block b;
        std::memcpy(&b, src + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
        decode(b, dst + i * Elems);
    }
}

} // namespace

void dequantizeGgml(DType t, const uint8_t* src, float* dst, int64_t n)
{
    if (n < 0)
        fail(ErrorCode::InvalidArgument, "", "negative value count for " + std::string(dtypeName(t)));
    switch (t) {
    case DType::Q4_0: return decodeBlocks<BlockQ4_0, kQK>(decodeQ4_0, src, dst, n, t);
    case DType::Q4_1: return decodeBlocks<BlockQ4_1, kQK>(decodeQ4_1, src, dst, n, t);
    case DType::Q5_0: return decodeBlocks<BlockQ5_0, kQK>(decodeQ5_0, src, dst, n, t);
    case DType::Q5_1: return decodeBlocks<BlockQ5_1, kQK>(decodeQ5_1, src, dst, n, t);
    case DType::Q8_0: return decodeBlocks<BlockQ8_0, kQK>(decodeQ8_0, src, dst, n, t);
    case DType::Q2_K: return decodeBlocks<BlockQ2_K, kQK_K>(decodeQ2_K, src, dst, n, t);
    case DType::Q3_K: return decodeBlocks<BlockQ3_K, kQK_K>(decodeQ3_K, src, dst, n, t);
    case DType::Q4_K: return decodeBlocks<BlockQ4_K, kQK_K>(decodeQ4_K, src, dst, n, t);
    case DType::Q5_K: return decodeBlocks<BlockQ5_K, kQK_K>(decodeQ5_K, src, dst, n, t);
    case DType::Q6_K: return decodeBlocks<BlockQ6_K, kQK_K>(decodeQ6_K, src, dst, n, t);
    case DType::IQ4_NL: return decodeBlocks<BlockIQ4_NL, kQK>(decodeIQ4_NL, src, dst, n, t);
    case DType::IQ4_XS: return decodeBlocks<BlockIQ4_XS, kQK_K>(decodeIQ4_XS, src, dst, n, t);
    default:
        fail(ErrorCode::UnsupportedDType, "", "cannot decode " + std::string(dtypeName(t)) + " values");
    }
}

} // namespace ll
