#include "engine/kv_quant.h"

#include "kernels/gemm.h"
#include "util/error.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ll {

namespace {

constexpr double kF16Bytes = 2.0;

// Groups of one head's `headDim` channels: `group` wide, or the whole head.
int64_t channelGroup(const KvCacheQuantization& q, int64_t headDim)
{
    return q.group > 0 && q.group < headDim ? q.group : headDim;
}

void copyRows(HeadView x, int64_t n, int64_t headDim, float* out, int64_t outStride)
{
    for (int64_t r = 0; r < n; ++r)
        std::copy_n(x.data + r * x.stride, headDim, out + r * outStride);
}

void quantizePerToken(HeadView x, int64_t n, int64_t headDim, int64_t group, int bits, bool symmetric, float* out,
                      int64_t outStride)
{
    copyRows(x, n, headDim, out, outStride);
    for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < headDim; c += group)
            fakeQuantizeGroup(out + r * outStride + c, group, 1, bits, symmetric);
}

} // namespace

int64_t KvCacheQuantization::quantizedKeyEnd(int64_t p) const
{
    if (keyBits <= 0)
        return 0;
    return residual > 0 ? p / residual * residual : p + 1;
}

int64_t KvCacheQuantization::quantizedValueEnd(int64_t p) const
{
    if (valueBits <= 0)
        return 0;
    return residual > 0 ? std::max<int64_t>(0, p - residual) : p + 1;
}

void KvCacheQuantization::validate(int64_t headDim, const std::string& source) const
{
    const auto bad = [&](const std::string& what) { fail(ErrorCode::InvalidArgument, source, "KV cache: " + what); };
    for (const int b : {keyBits, valueBits})
        if (b < 0 || b > 16)
            bad("bits must be 0 (off) to 16, not " + std::to_string(b));
    if (group < 0 || residual < 0)
        bad("group and residual must not be negative");
    const int64_t g = channelGroup(*this, headDim);
    if (headDim % g != 0)
        bad("a value group of " + std::to_string(group) + " channels does not divide the head size "
            + std::to_string(headDim));
    if (keysPerChannel && keyBits > 0) {
        // A key group is quantized once whole; a partial one must still be in the full-precision window.
        if (group <= 0)
            bad("keys quantized per channel need a group of positions");
        if (residual < group || residual % group != 0)
            bad("the residual window (" + std::to_string(residual) + ") must be a multiple of the key group ("
                + std::to_string(group) + ")");
    }
}

std::string KvCacheQuantization::label() const
{
    if (!active())
        return "KV F16";
    if (method == "kivi")
        return "KIVI K" + std::to_string(keyBits) + "V" + std::to_string(valueBits) + " g" + std::to_string(group)
               + " r" + std::to_string(residual);
    const std::string bits = keyBits == valueBits ? std::to_string(keyBits)
                                                  : std::to_string(keyBits) + "/" + std::to_string(valueBits);
    return (method == "llm-qat" ? "LLM-QAT KV" : method + " KV") + bits;
}

void fakeQuantizeGroup(float* x, int64_t n, int64_t stride, int bits, bool symmetric)
{
    if (n <= 0 || bits <= 0 || bits >= 24)
        return;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int64_t i = 0; i < n; ++i) {
        lo = std::min(lo, x[i * stride]);
        hi = std::max(hi, x[i * stride]);
    }
    if (!std::isfinite(lo) || !std::isfinite(hi))
        return; // NaN or Inf keys: leave them for the model to propagate
    if (symmetric) {
        const float amax = std::max(std::fabs(lo), std::fabs(hi));
        const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
        if (amax == 0.0f || qmax <= 0.0f)
            return;
        const float s = amax / qmax;
        for (int64_t i = 0; i < n; ++i) {
            float& v = x[i * stride];
            v = std::clamp(std::nearbyint(v / s), -qmax, qmax) * s;
        }
        return;
    }
    if (hi == lo)
        return; // one value: exact with a zero point
    const float levels = static_cast<float>((1 << bits) - 1);
    const float s = (hi - lo) / levels;
    for (int64_t i = 0; i < n; ++i) {
        float& v = x[i * stride];
        v = std::clamp(std::nearbyint((v - lo) / s), 0.0f, levels) * s + lo;
    }
}

void quantizeCachedKeys(const KvCacheQuantization& q, HeadView k, int64_t n, int64_t headDim, float* out,
                        int64_t outStride)
{
    if (!q.keysPerChannel) {
        quantizePerToken(k, n, headDim, channelGroup(q, headDim), q.keyBits, q.symmetric, out, outStride);
        return;
    }
    copyRows(k, n, headDim, out, outStride);
    // Each channel of each whole group of positions: one scale and zero.
    for (int64_t r0 = 0; r0 + q.group <= n; r0 += q.group)
        for (int64_t c = 0; c < headDim; ++c)
            fakeQuantizeGroup(out + r0 * outStride + c, q.group, outStride, q.keyBits, q.symmetric);
}

void quantizeCachedValues(const KvCacheQuantization& q, HeadView v, int64_t n, int64_t headDim, float* out,
                          int64_t outStride)
{
    quantizePerToken(v, n, headDim, channelGroup(q, headDim), q.valueBits, q.symmetric, out, outStride);
}

void attendOneHeadQuantizedKv(const KvCacheQuantization& kvq, HeadView q, HeadView k, HeadView kq, HeadView v,
                              HeadView vq, float* out, int64_t outStride, int64_t n, int64_t pos0, int64_t headDim,
                              float scale, int64_t slidingWindow)
{
    // Blocks of 64 queries as in attendBlocked: scores against both key
    // versions, each query picks its own mix, then the unnormalised
    // probabilities split by which values they weigh. Eigen-aligned buffers and
    // padded rows (softmaxNumerators' contract): a row's address must not depend
    // on where the heap put the buffer, or the vectorised sums would change.
    constexpr int64_t kBlock = 64, kPad = kScoreRowPad;
    thread_local Eigen::VectorXf scoresFull, scoresQuant, probQuant, part;
    float rowSum[kBlock];
    for (int64_t r0 = 0; r0 < n; r0 += kBlock) {
        const int64_t rows = std::min(kBlock, n - r0);
        const int64_t kEnd = pos0 + r0 + rows;
        const int64_t kBegin = slidingWindow > 0 ? std::max<int64_t>(0, pos0 + r0 - slidingWindow + 1) : 0;
        const int64_t len = kEnd - kBegin;
        const int64_t ld = (len + kPad - 1) / kPad * kPad;
        for (Eigen::VectorXf* b : {&scoresFull, &scoresQuant, &probQuant})
            if (b->size() < rows * ld)
                b->resize(rows * ld);
        if (part.size() < rows * headDim)
            part.resize(rows * headDim);
        float* s = scoresFull.data();
        float* sq = scoresQuant.data();
        float* pq = probQuant.data();
        gemmABt(q.data + r0 * q.stride, q.stride, k.data + kBegin * k.stride, k.stride, s, ld, rows, len, headDim);
        gemmABt(q.data + r0 * q.stride, q.stride, kq.data + kBegin * kq.stride, kq.stride, sq, ld, rows, len,
                headDim);
        for (int64_t i = 0; i < rows; ++i) {
            const int64_t pos = pos0 + r0 + i;
            const int64_t lo = slidingWindow > 0 ? std::max<int64_t>(kBegin, pos - slidingWindow + 1) - kBegin : 0;
            const int64_t hi = pos - kBegin + 1;
            const int64_t keyQ = std::clamp<int64_t>(kvq.quantizedKeyEnd(pos) - kBegin, 0, hi);
            const int64_t valueQ = std::clamp<int64_t>(kvq.quantizedValueEnd(pos) - kBegin, 0, hi);
            float* row = s + i * ld;
            float* rowQ = pq + i * ld;
            std::copy(sq + i * ld, sq + i * ld + keyQ, row);
            rowSum[i] = softmaxNumerators(row, lo, hi, scale);
            std::fill(row, row + lo, 0.0f);
            std::fill(row + hi, row + ld, 0.0f);
            // Probabilities of the quantized values in rowQ, of the full ones in row.
            std::fill(rowQ, rowQ + ld, 0.0f);
            std::copy(row, row + valueQ, rowQ);
            std::fill(row, row + valueQ, 0.0f);
        }
        float* o = out + r0 * outStride;
        gemmAB(s, ld, v.data + kBegin * v.stride, v.stride, o, outStride, rows, headDim, len);
        gemmAB(pq, ld, vq.data + kBegin * vq.stride, vq.stride, part.data(), headDim, rows, headDim, len);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t d = 0; d < headDim; ++d)
                o[i * outStride + d] = (o[i * outStride + d] + part[i * headDim + d]) / rowSum[i];
    }
}

void attendOneHeadQuantizedKvRef(const KvCacheQuantization& kvq, HeadView q, HeadView k, HeadView kq, HeadView v,
                                 HeadView vq, float* out, int64_t outStride, int64_t n, int64_t pos0,
                                 int64_t headDim, float scale, int64_t slidingWindow)
{
    std::vector<double> p;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = pos0 + i;
        const int64_t lo = slidingWindow > 0 ? std::max<int64_t>(0, pos - slidingWindow + 1) : 0;
        p.assign(static_cast<size_t>(pos + 1), 0.0);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = lo; j <= pos; ++j) {
            const HeadView& key = j < kvq.quantizedKeyEnd(pos) ? kq : k;
            double dot = 0.0;
            for (int64_t d = 0; d < headDim; ++d)
                dot += static_cast<double>(q.data[i * q.stride + d]) * key.data[j * key.stride + d];
            p[static_cast<size_t>(j)] = dot * scale;
            mx = std::max(mx, dot * scale);
        }
        double sum = 0.0;
        for (int64_t j = lo; j <= pos; ++j)
            sum += p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - mx);
        for (int64_t d = 0; d < headDim; ++d) {
            double acc = 0.0;
            for (int64_t j = lo; j <= pos; ++j) {
                const HeadView& value = j < kvq.quantizedValueEnd(pos) ? vq : v;
                acc += p[static_cast<size_t>(j)] * value.data[j * value.stride + d];
            }
            out[i * outStride + d] = static_cast<float>(acc / sum);
        }
    }
}

double kvCacheBytes(const ModelConfig& config, const KvCacheQuantization& q, int64_t positions)
{
    const double perPosition = static_cast<double>(config.kvHeads * config.headDim); // per layer, K or V
    const double L = static_cast<double>(positions);
    const double layers = static_cast<double>(config.layers);
    if (!q.active())
        return layers * 2.0 * L * perPosition * kF16Bytes;
    const double zeroBytes = q.symmetric ? 0.0 : kF16Bytes;
    const double g = static_cast<double>(channelGroup(q, config.headDim));
    // After `positions` tokens (the cache as it stands between steps): keys flushed
    // in whole windows of R, values all but the last R.
    const double R = static_cast<double>(q.residual);
    const double keysQ = q.keyBits <= 0 ? 0.0 : R > 0 ? std::floor(L / R) * R : L;
    const double valuesQ = q.valueBits <= 0 ? 0.0 : std::max(0.0, L - R);
    const double keyGroups = q.keysPerChannel ? keysQ / static_cast<double>(q.group) * perPosition
                                              : keysQ * perPosition / g;
    const double keyBytes = keysQ * perPosition * q.keyBits / 8.0 + keyGroups * (kF16Bytes + zeroBytes)
                            + (L - keysQ) * perPosition * kF16Bytes;
    const double valueBytes = valuesQ * perPosition * q.valueBits / 8.0
                              + valuesQ * perPosition / g * (kF16Bytes + zeroBytes)
                              + (L - valuesQ) * perPosition * kF16Bytes;
    return layers * (keyBytes + valueBytes);
}

} // namespace ll
