#include "engine/kernels.h"

#include "kernels/matmul.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ll {

namespace {
// Rows per chunk for elementwise loops: about a million values (~0.3 ms) per
// thread, or the fork/join costs more than it saves; on a busy machine a
// join can wait milliseconds for a descheduled thread.
int64_t rowGrain(int64_t cols)
{
    return std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(cols, 1));
}
} // namespace

void applyLinear(const LinearWeights& lw, const ConstMatrixRef& x, MatrixRef y)
{
    if (!lw.W.empty())
        matmulStored(x.data(), x.outerStride(), lw.W, y.data(), y.outerStride(), x.rows());
    else
        y.setZero();
    if (lw.rank() > 0) {
        // x (n, in) @ B^T (in, k) -> t (n, k);  t @ A^T (k, out) -> y (n, out), or
        // added to x @ W^T for a corrected layer. One buffer per thread, reused:
        // a fresh one per layer costs page faults.
        thread_local MatrixRM t, u;
        t.resize(x.rows(), lw.rank());
        matmulStored(x.data(), x.outerStride(), lw.B, t.data(), t.outerStride(), x.rows());
        if (lw.factored()) {
            matmulStored(t.data(), t.outerStride(), lw.A, y.data(), y.outerStride(), x.rows());
        } else {
            u.resize(x.rows(), lw.outFeatures());
            matmulStored(t.data(), t.outerStride(), lw.A, u.data(), u.outerStride(), x.rows());
            y += u;
        }
    }
    if (lw.hasBias())
        y.rowwise() += lw.b.transpose();
}

void applyNorm(NormKind kind, const NormWeights& nw, float eps, const ConstMatrixRef& x, MatrixRef out)
{
    const int64_t d = x.cols();
    parallelFor(x.rows(), rowGrain(d), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            auto xr = x.row(r).array();
            auto o = out.row(r).array();
            if (kind == NormKind::Layer) {
                const float mean = xr.sum() / static_cast<float>(d);
                const float var = (xr - mean).square().sum() / static_cast<float>(d);
                const float inv = 1.0f / std::sqrt(var + eps);
                o = (xr - mean) * inv * nw.w.transpose().array();
                if (nw.b.size())
                    o += nw.b.transpose().array();
            } else {
                const float inv = 1.0f / std::sqrt(xr.square().sum() / static_cast<float>(d) + eps);
                if (kind == NormKind::RmsPlusOne)
                    o = (xr * inv) * (1.0f + nw.w.transpose().array());
                else
                    o = (xr * inv) * nw.w.transpose().array();
            }
        }
    });
}

namespace {
template <class A>
auto activated(Activation act, const A& x)
{
    using Arr = Eigen::Array<float, 1, Eigen::Dynamic>;
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    constexpr float kInvSqrt2 = 0.7071067811865476f;
    switch (act) {
    case Activation::Silu: return Arr(x / (1.0f + (-x).exp()));
    case Activation::GeluTanh: return Arr(0.5f * x * (1.0f + (kSqrt2OverPi * (x + 0.044715f * x.cube())).tanh()));
    case Activation::Gelu: return Arr(0.5f * x * (1.0f + (x * kInvSqrt2).unaryExpr([](float v) { return std::erf(v); })));
    case Activation::Relu: return Arr(x.max(0.0f));
    }
    return Arr(x);
}
} // namespace

void applyActivation(Activation act, MatrixRef x)
{
    parallelFor(x.rows(), rowGrain(x.cols()), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            x.row(r).array() = activated(act, x.row(r).array());
    });
}

void applyGatedActivation(Activation act, MatrixRef gate, const ConstMatrixRef& up)
{
    parallelFor(gate.rows(), rowGrain(gate.cols()), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            gate.row(r).array() = activated(act, gate.row(r).array()) * up.row(r).array();
    });
}

RotaryTable::RotaryTable(const RotarySpec& spec, int64_t firstPos, int64_t count)
    : first(firstPos), half(spec.dims / 2)
{
    cos.resize(static_cast<size_t>(count * half));
    sin.resize(cos.size());
    for (int64_t p = 0; p < count; ++p) {
        for (int64_t i = 0; i < half; ++i) {
            // The angle is a float product as in the references; its cos/sin are exact.
            const float angle = static_cast<float>(firstPos + p) * spec.invFreq[static_cast<size_t>(i)];
            cos[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(static_cast<double>(angle)));
            sin[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(static_cast<double>(angle)));
        }
    }
}

void applyRotary(const RotarySpec& spec, const RotaryTable& table, std::span<const int64_t> positions, int64_t heads,
                 int64_t headDim, MatrixRef x)
{
    const int64_t half = spec.dims / 2;
    parallelFor(x.rows(), rowGrain(x.cols()), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* c = table.cosAt(positions[static_cast<size_t>(r)]);
            const float* s = table.sinAt(positions[static_cast<size_t>(r)]);
            for (int64_t h = 0; h < heads; ++h) {
                float* v = x.row(r).data() + h * headDim;
                if (spec.interleaved) {
                    // Meta layout: pairs (2i, 2i+1).
                    for (int64_t i = 0; i < half; ++i) {
                        const float a = v[2 * i], b = v[2 * i + 1];
                        v[2 * i] = a * c[i] - b * s[i];
                        v[2 * i + 1] = a * s[i] + b * c[i];
                    }
                } else {
                    // HF rotate_half: pairs (i, i + half).
                    for (int64_t i = 0; i < half; ++i) {
                        const float a = v[i], b = v[i + half];
                        v[i] = a * c[i] - b * s[i];
                        v[i + half] = b * c[i] + a * s[i];
                    }
                }
            }
        }
    });
}

RowLogSoftmax rowLogSoftmax(const float* row, int64_t n)
{
    const Eigen::Map<const Eigen::ArrayXf> x(row, n);
    RowLogSoftmax r;
    r.max = x.maxCoeff();
    r.logSumExp = static_cast<double>(r.max) + std::log(static_cast<double>((x - r.max).exp().sum()));
    return r;
}

} // namespace ll
