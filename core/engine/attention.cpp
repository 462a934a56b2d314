#include "engine/attention.h"

#include "kernels/gemm.h"

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace ll {

namespace {

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int64_t kLanes = sizeof(Packet) / sizeof(float);
constexpr float kMasked = -std::numeric_limits<float>::infinity();
constexpr int64_t kPad = kScoreRowPad;
static_assert(kPad % kLanes == 0);

int64_t roundUp(int64_t x, int64_t to)
{
    return (x + to - 1) / to * to;
}

// x[i] <- exp((x[i] - m) * scale) over n floats (whole vectors, x aligned);
// returns their sum. One pass instead of Eigen's exp, then sum.
float expInPlaceAndSum(float* x, int64_t n, float m, float scale)
{
    using namespace Eigen::internal;
    const Packet pm = pset1<Packet>(m), ps = pset1<Packet>(scale);
    Packet acc = pset1<Packet>(0.0f);
    for (int64_t i = 0; i < n; i += kLanes) {
        const Packet e = pexp(pmul(psub(pload<Packet>(x + i), pm), ps));
        pstore(x + i, e);
        acc = padd(acc, e);
    }
    return predux(acc);
}

} // namespace

float softmaxNumerators(float* row, int64_t lo, int64_t hi, float scale)
{
    using namespace Eigen::internal;
    const int64_t begin = lo / kLanes * kLanes, end = roundUp(hi, kLanes);
    std::fill(row + begin, row + lo, kMasked);
    std::fill(row + hi, row + end, kMasked);
    Packet mx = pset1<Packet>(kMasked);
    for (int64_t j = begin; j < end; j += kLanes)
        mx = pmax(mx, pload<Packet>(row + j));
    // Eigen's exp(-inf) saturates near 1e-38: the masked entries add nothing
    // measurable to the sum and are zeroed afterwards.
    const float sum = expInPlaceAndSum(row + begin, end - begin, predux_max(mx), scale);
    std::fill(row + begin, row + lo, 0.0f);
    std::fill(row + hi, row + end, 0.0f);
    return sum;
}

namespace {

// Head sizes up to 16: one query at a time against transposed keys/values, the
// head dimension unrolled into registers and the keys along the SIMD lanes.
// Eigen's GEMM would spend more on packing and on zeroing / reloading the
// score matrix than on the hd-deep products themselves.
template <int HD>
void attendSmallHead(HeadView q, HeadView k, HeadView v, float* out, int64_t outStride, int64_t n, int64_t pos0,
                     float scale, int64_t slidingWindow)
{
    using namespace Eigen::internal;
    const int64_t keys = pos0 + n;
    const int64_t ld = roundUp(keys, kPad);
    thread_local Eigen::VectorXf kt, vt, scores; // Eigen aligns its heap buffers
    if (kt.size() < HD * ld) {
        kt.resize(HD * ld);
        vt.resize(HD * ld);
    }
    if (scores.size() < ld)
        scores.resize(ld);
    // K^T, V^T (HD, ld): row d holds dimension d of every key, zero padded.
    for (int64_t j = 0; j < keys; ++j)
        for (int d = 0; d < HD; ++d) {
            kt[d * ld + j] = k.data[j * k.stride + d];
            vt[d * ld + j] = v.data[j * v.stride + d];
        }
    for (int d = 0; d < HD; ++d) {
        std::fill(kt.data() + d * ld + keys, kt.data() + (d + 1) * ld, 0.0f);
        std::fill(vt.data() + d * ld + keys, vt.data() + (d + 1) * ld, 0.0f);
    }
    float* s = scores.data();
    const Packet minusInf = pset1<Packet>(kMasked), zero = pset1<Packet>(0.0f), ps = pset1<Packet>(scale);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = pos0 + i;
        const int64_t lo = slidingWindow > 0 ? std::max<int64_t>(0, pos - slidingWindow + 1) : 0, hi = pos + 1;
        const int64_t begin = lo / kLanes * kLanes, end = roundUp(hi, kLanes);
        // Lanes of the vector at key j that are keys of this query (only the first and last vectors have others).
        const Packet loP = pset1<Packet>(static_cast<float>(lo)), hiP = pset1<Packet>(static_cast<float>(hi));
        const auto partial = [&](int64_t j) { return j < lo || j + kLanes > hi; };
        const auto valid = [&](int64_t j) {
            const Packet idx = plset<Packet>(static_cast<float>(j));
            return pand(pcmp_le(loP, idx), pcmp_lt(idx, hiP));
        };
        // scores[j] = q . k_j (-inf outside the keys), and their maximum
        Packet qd[HD];
        for (int d = 0; d < HD; ++d)
            qd[d] = pset1<Packet>(q.data[i * q.stride + d]);
        Packet mx = minusInf;
        for (int64_t j = begin; j < end; j += kLanes) {
            Packet acc = pmul(qd[0], pload<Packet>(kt.data() + j));
            for (int d = 1; d < HD; ++d)
                acc = pmadd(qd[d], pload<Packet>(kt.data() + d * ld + j), acc);
            if (partial(j))
                acc = pselect(valid(j), acc, minusInf);
            pstore(s + j, acc);
            mx = pmax(mx, acc);
        }
        // softmax numerators exp((s - max) * scale), exactly 0 outside the keys
        const Packet pm = pset1<Packet>(predux_max(mx));
        Packet sum = zero;
        for (int64_t j = begin; j < end; j += kLanes) {
            Packet e = pexp(pmul(psub(pload<Packet>(s + j), pm), ps));
            if (partial(j))
                e = pselect(valid(j), e, zero);
            pstore(s + j, e);
            sum = padd(sum, e);
        }
        const float inv = 1.0f / predux(sum);
        // out[d] = sum_j p_j v_j[d]
        Packet acc[HD];
        for (int d = 0; d < HD; ++d)
            acc[d] = zero;
        for (int64_t j = begin; j < end; j += kLanes) {
            const Packet p = pload<Packet>(s + j);
            for (int d = 0; d < HD; ++d)
                acc[d] = pmadd(p, pload<Packet>(vt.data() + d * ld + j), acc[d]);
        }
        for (int d = 0; d < HD; ++d)
            out[i * outStride + d] = predux(acc[d]) * inv;
    }
}

// Larger heads: blocks of 64 queries, scores and outputs as GEMMs. Each block
// sees only the keys up to its last position, so the masked upper triangle
// costs at most one block's worth of work.
void attendBlocked(HeadView q, HeadView k, HeadView v, float* out, int64_t outStride, int64_t n, int64_t pos0,
                   int64_t headDim, float scale, int64_t slidingWindow)
{
    constexpr int64_t kBlock = 64;
    thread_local Eigen::VectorXf buffer;
    float rowSum[kBlock];
    for (int64_t r0 = 0; r0 < n; r0 += kBlock) {
        const int64_t rows = std::min(kBlock, n - r0);
        const int64_t kEnd = pos0 + r0 + rows;
        const int64_t kBegin = slidingWindow > 0 ? std::max<int64_t>(0, pos0 + r0 - slidingWindow + 1) : 0;
        const int64_t len = kEnd - kBegin;
        const int64_t ld = roundUp(len, kPad);
        if (buffer.size() < rows * ld)
            buffer.resize(rows * ld);
        // Q block (rows, hd) @ K^T (hd, len) -> scores (rows, len)
        gemmABt(q.data + r0 * q.stride, q.stride, k.data + kBegin * k.stride, k.stride, buffer.data(), ld, rows, len,
                headDim);
        for (int64_t i = 0; i < rows; ++i) {
            const int64_t pos = pos0 + r0 + i;
            // Keys [lo, hi) of this query, relative to kBegin.
            const int64_t lo = slidingWindow > 0 ? std::max<int64_t>(kBegin, pos - slidingWindow + 1) - kBegin : 0;
            const int64_t hi = pos - kBegin + 1;
            float* row = buffer.data() + i * ld;
            rowSum[i] = softmaxNumerators(row, lo, hi, scale);
            std::fill(row, row + lo, 0.0f);
            std::fill(row + hi, row + ld, 0.0f);
        }
        // unnormalised probabilities (rows, len) @ V (len, hd) -> out (rows, hd), then / row sums
        float* o = out + r0 * outStride;
        gemmAB(buffer.data(), ld, v.data + kBegin * v.stride, v.stride, o, outStride, rows, headDim, len);
        for (int64_t i = 0; i < rows; ++i)
            Eigen::Map<Eigen::RowVectorXf>(o + i * outStride, headDim) *= 1.0f / rowSum[i];
    }
}

} // namespace

void attendOneHead(HeadView q, HeadView k, HeadView v, float* out, int64_t outStride, int64_t n, int64_t pos0,
                   int64_t headDim, float scale, int64_t slidingWindow)
{
    switch (headDim) {
    case 4: return attendSmallHead<4>(q, k, v, out, outStride, n, pos0, scale, slidingWindow);
    case 8: return attendSmallHead<8>(q, k, v, out, outStride, n, pos0, scale, slidingWindow);
    case 16: return attendSmallHead<16>(q, k, v, out, outStride, n, pos0, scale, slidingWindow);
    default: return attendBlocked(q, k, v, out, outStride, n, pos0, headDim, scale, slidingWindow);
    }
}

} // namespace ll
