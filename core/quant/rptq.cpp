// RPTQ's clustered activation ranges (quant/rptq.h) and its registry entry.
#include "quant/rptq.h"

#include "methods/method_registry.h"
#include "quant/int8_outlier.h"
#include "quant/quant_method.h"
#include "quant/smoothquant.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace ll {

RptqClusters rptqClusters(const MatrixRM& X, int clusters, int actBits)
{
    if (X.rows() == 0 || X.cols() == 0 || !X.allFinite())
        fail(ErrorCode::InvalidArgument, "", "RPTQ needs finite calibration samples of the input");
    if (clusters < 1)
        fail(ErrorCode::InvalidArgument, "", "RPTQ needs at least one cluster");
    if (actBits < 2 || actBits > 16)
        fail(ErrorCode::InvalidArgument, "", "activation bits must be 2..16, not " + std::to_string(actBits));
    const Eigen::Index n = X.cols();
    const Eigen::VectorXf lo = X.colwise().minCoeff().transpose(), hi = X.colwise().maxCoeff().transpose();
    const int k = static_cast<int>(std::min<Eigen::Index>(clusters, n));
    // Start: centres at the channels spread evenly in the order of their max.
    std::vector<Eigen::Index> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    std::stable_sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) { return hi[a] < hi[b]; });
    std::vector<double> cLo(static_cast<size_t>(k)), cHi(static_cast<size_t>(k));
    for (int c = 0; c < k; ++c) {
        const Eigen::Index j = order[static_cast<size_t>((2 * c + 1) * n / (2 * k))];
        cLo[static_cast<size_t>(c)] = lo[j];
        cHi[static_cast<size_t>(c)] = hi[j];
    }
    RptqClusters r;
    r.cluster.assign(static_cast<size_t>(n), 0);
    for (int it = 0; it < 50; ++it) {
        bool moved = false;
        for (Eigen::Index j = 0; j < n; ++j) {
            int best = 0;
            double bestD = std::numeric_limits<double>::infinity();
            for (int c = 0; c < k; ++c) {
                const double a = lo[j] - cLo[static_cast<size_t>(c)], b = hi[j] - cHi[static_cast<size_t>(c)];
                if (a * a + b * b < bestD) {
                    bestD = a * a + b * b;
                    best = c;
                }
            }
            moved = moved || r.cluster[static_cast<size_t>(j)] != best;
            r.cluster[static_cast<size_t>(j)] = best;
        }
        std::vector<double> sLo(static_cast<size_t>(k), 0.0), sHi(static_cast<size_t>(k), 0.0);
        std::vector<int64_t> count(static_cast<size_t>(k), 0);
        for (Eigen::Index j = 0; j < n; ++j) {
            const size_t c = static_cast<size_t>(r.cluster[static_cast<size_t>(j)]);
            sLo[c] += lo[j];
            sHi[c] += hi[j];
            ++count[c];
        }
        for (size_t c = 0; c < static_cast<size_t>(k); ++c)
            if (count[c] > 0) {
                cLo[c] = sLo[c] / static_cast<double>(count[c]);
                cHi[c] = sHi[c] / static_cast<double>(count[c]);
            }
        if (!moved && it > 0)
            break;
    }
    // Each cluster's range: the union of its channels' ranges.
    std::vector<float> rLo(static_cast<size_t>(k), std::numeric_limits<float>::infinity());
    std::vector<float> rHi(static_cast<size_t>(k), -std::numeric_limits<float>::infinity());
    for (Eigen::Index j = 0; j < n; ++j) {
        const size_t c = static_cast<size_t>(r.cluster[static_cast<size_t>(j)]);
        rLo[c] = std::min(rLo[c], lo[j]);
        rHi[c] = std::max(rHi[c], hi[j]);
    }
    const float levels = static_cast<float>((1 << actBits) - 1);
    r.low.resize(n);
    r.step.resize(n);
    std::vector<char> used(static_cast<size_t>(k), 0);
    for (Eigen::Index j = 0; j < n; ++j) {
        const size_t c = static_cast<size_t>(r.cluster[static_cast<size_t>(j)]);
        used[c] = 1;
        r.low[j] = rLo[c];
        r.step[j] = (rHi[c] - rLo[c]) / levels;
    }
    r.clusters = static_cast<int>(std::count(used.begin(), used.end(), 1));
    return r;
}

void quantizeClusteredRows(Eigen::Ref<MatrixRM> X, const Eigen::VectorXf& low, const Eigen::VectorXf& step, int bits)
{
    if (low.size() != X.cols() || step.size() != X.cols())
        fail(ErrorCode::InvalidArgument, "", "the RPTQ ranges do not fit the input");
    const float levels = static_cast<float>((1 << bits) - 1);
    for (Eigen::Index t = 0; t < X.rows(); ++t) {
        float* x = X.data() + t * X.outerStride();
        for (Eigen::Index j = 0; j < X.cols(); ++j) {
            const float d = step[j];
            x[j] = d > 0.0f ? low[j] + d * std::clamp(std::nearbyint((x[j] - low[j]) / d), 0.0f, levels) : low[j];
        }
    }
}

namespace {

// The clusters describe the input: found once for every linear that reads it.
std::vector<QuantizedLayer> rptqGroup(const LinearGroup& g, const QuantConfig& c, const LayerInputs& in, Progress*)
{
    if (!in.samples)
        fail(ErrorCode::InvalidArgument, "", "RPTQ needs calibration samples of the layer's inputs");
    const RptqClusters r = rptqClusters(*in.samples, static_cast<int>(c.params.integer("clusters")), c.actBits);
    MatrixRM Xq = *in.samples;
    quantizeClusteredRows(Xq, r.low, r.step, c.actBits);
    SmoothQuantOptions o;
    o.actBits = c.actBits;
    o.weightBits = c.grid.bits;
    std::vector<QuantizedLayer> out;
    for (const MatrixRM* W : g.weights) {
        const Eigen::VectorXf ones = Eigen::VectorXf::Ones(W->cols());
        QuantizedLayer q = smoothQuantLayer(*W, in, o, &ones); // symmetric weights per row, no smoothing
        q.packed.inputScale.resize(0);
        q.packed.inputLow = r.low;
        q.packed.inputStep = r.step;
        q.method = c.label();
        q.info.erase("alpha");
        q.info["clusters"] = r.clusters;
        // The product with the clustered activations on the samples.
        q.info["w8a8_output_error"] = quantizedProductError(*in.samples, Xq, *W, q.weights);
        out.push_back(std::move(q));
    }
    return out;
}

} // namespace

const MethodSpec& rptqMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.id = "rptq";
        m.name = "RPTQ (W8A8 / W4A8, clustered activation ranges)";
        m.teaching = {"Groups the channels of every linear input into clusters of similar range on the calibration "
                      "text and quantizes each cluster with its own static range, so that a few wide channels no "
                      "longer waste the codes of all the others; the paper reorders the channels so each cluster "
                      "is contiguous for the integer kernels.",
                      "k-means on the points (min x<sub>j</sub>, max x<sub>j</sub>); cluster c's range "
                      "[lo<sub>c</sub>, hi<sub>c</sub>], Δ<sub>c</sub> = (hi<sub>c</sub> − lo<sub>c</sub>) / "
                      "(2<sup>a</sup> − 1), x̂<sub>j</sub> = lo<sub>c</sub> + Δ<sub>c</sub> round((x<sub>j</sub> − "
                      "lo<sub>c</sub>) / Δ<sub>c</sub>).",
                      "static (calibrated) activation quantization at 8 bits or fewer, where one range per tensor "
                      "loses too much; more clusters approach per-channel ranges.",
                      "Yuan et al., 2023, RPTQ (arXiv:2304.01089)"};
        ParamSpec bits{"bits", ParamType::Int, "Bits", "bits per weight, symmetric per output row", 4, 8};
        bits.defaultValue = "8";
        ParamSpec act{"act-bits", ParamType::Int, "Activation bits", "bits per activation, static range per cluster", 2, 16};
        act.defaultValue = "8";
        ParamSpec clusters{"clusters", ParamType::Int, "Clusters", "channel clusters per input, each with its own range", 1, 4096};
        clusters.defaultValue = "8";
        m.params = {bits, act, clusters};
        m.needs = kNeedsSamples;
        m.simulatesActivations = true;
        m.quantizeGroup = rptqGroup;
        m.configure = [](const ParamValues& p, QuantConfig& c) { c.actBits = static_cast<int>(p.integer("act-bits")); };
        m.label = [](const QuantConfig& c) {
            return "rptq w" + std::to_string(c.grid.bits) + "a" + std::to_string(c.actBits) + " k" + c.params.text("clusters");
        };
        m.badge = [](const ParamValues& v) { return "RPTQ W" + v.text("bits") + "A" + v.text("act-bits") + " k" + v.text("clusters"); };
        m.bitsPerWeight = [](const QuantConfig& c, double cols) { return c.grid.bits + 16.0 / cols; };
        return m;
    }();
    return spec;
}

} // namespace ll
