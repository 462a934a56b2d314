#pragma once
// KV-cache quantization, simulated exactly in the forward pass: every query
// reads the keys and values a quantized cache would hand it at that moment.
//
// KIVI (Liu et al., 2024, arXiv:2402.02750): keys per channel (each channel of
// a group of `group` consecutive positions shares a scale and a zero), values
// per token (each group of `group` channels of one position), asymmetric
// min-max codes; the most recent positions stay in full precision. Its cache
// flushes keys `residual` at a time (a query at position p reads the keys
// before floor(p / R) * R quantized) and values one at a time (the values
// before p - R quantized).
// LLM-QAT's plain KV quantization (Liu et al., 2023, arXiv:2305.17888): keys
// and values per token (per head), symmetric MinMax, every position quantized.
#include "engine/attention.h"
#include "model/model.h"

#include <cstdint>
#include <string>

namespace ll {

struct KvCacheQuantization {
    std::string method;          // registry id: "kivi", "llm-qat"
    int keyBits = 0;             // 0: the cache is not quantized
    int valueBits = 0;
    bool keysPerChannel = true;  // KIVI; false: per token like the values
    bool symmetric = false;      // codes in [-(2^(b-1)-1), 2^(b-1)-1] x absmax; else min-max with a zero
    int64_t group = 32;          // positions per key group (per channel), channels per value group; 0: the head
    int64_t residual = 128;      // KIVI's full-precision window R (a multiple of `group`); 0: none

    bool active() const { return keyBits > 0 || valueBits > 0; }
    // A query at position p reads keys [0, end) (values [0, end)) quantized.
    int64_t quantizedKeyEnd(int64_t p) const;
    int64_t quantizedValueEnd(int64_t p) const;
    // Throws InvalidArgument (naming `source`) for settings that do not fit a head of headDim.
    void validate(int64_t headDim, const std::string& source = "") const;
    std::string label() const;   // "KIVI K2V2 g32 r128", "LLM-QAT KV4"
};

// Quantized copies of one head's first n keys (values), rows `stride` floats
// apart, into out (n rows, `outStride` apart). Keys per channel: only whole
// groups of `group` positions are quantized (a partial group is still in the
// residual window and is copied).
void quantizeCachedKeys(const KvCacheQuantization& q, HeadView k, int64_t n, int64_t headDim, float* out,
                        int64_t outStride);
void quantizeCachedValues(const KvCacheQuantization& q, HeadView v, int64_t n, int64_t headDim, float* out,
                          int64_t outStride);
// One group of n floats, `stride` apart, quantized in place (min-max or absmax).
void fakeQuantizeGroup(float* x, int64_t n, int64_t stride, int bits, bool symmetric);

// attendOneHead (attention.h) with a quantized cache: kq, vq are the quantized
// copies of k, v (same positions); the query at position p reads kq below
// quantizedKeyEnd(p) and k from there on, vq below quantizedValueEnd(p).
void attendOneHeadQuantizedKv(const KvCacheQuantization& kvq, HeadView q, HeadView k, HeadView kq, HeadView v,
                              HeadView vq, float* out, int64_t outStride, int64_t n, int64_t pos0, int64_t headDim,
                              float scale, int64_t slidingWindow);
// Its scalar reference: one query at a time, in double.
void attendOneHeadQuantizedKvRef(const KvCacheQuantization& kvq, HeadView q, HeadView k, HeadView kq, HeadView v,
                                 HeadView vq, float* out, int64_t outStride, int64_t n, int64_t pos0,
                                 int64_t headDim, float scale, int64_t slidingWindow);

// Bytes of one sequence's KV cache after `positions` positions: codes at their
// bits, an F16 scale (and zero) per group, the full-precision window in F16;
// every position in F16 when `q` is inactive.
double kvCacheBytes(const ModelConfig& config, const KvCacheQuantization& q, int64_t positions);

} // namespace ll
