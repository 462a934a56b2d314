#include "analysis/kv_preview.h"

#include "engine/session.h"
#include "recipe/step_options.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <cstdio>

namespace ll {

namespace {

// The quantized copy of every head of `x` (positions × kvHeads·headDim).
MatrixRM quantizedCopy(const MatrixRM& x, const KvCacheQuantization& q, int64_t headDim, bool keys)
{
    MatrixRM out(x.rows(), x.cols());
    for (int64_t c = 0; c < x.cols(); c += headDim) {
        const HeadView in{x.data() + c, x.cols()};
        if (keys)
            quantizeCachedKeys(q, in, x.rows(), headDim, out.data() + c, out.cols());
        else
            quantizeCachedValues(q, in, x.rows(), headDim, out.data() + c, out.cols());
    }
    return out;
}

double relativeError(const MatrixRM& a, const MatrixRM& b, int64_t rows)
{
    if (rows <= 0)
        return 0.0;
    const double ref = a.topRows(rows).cast<double>().norm();
    const double diff = (a.topRows(rows) - b.topRows(rows)).cast<double>().norm();
    return ref > 0.0 ? diff / ref : 0.0;
}

std::string mib(double bytes)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, bytes >= 1024.0 * 1024.0 * 1024.0 ? "%.2f GiB" : "%.1f MiB",
                  bytes >= 1024.0 * 1024.0 * 1024.0 ? bytes / (1024.0 * 1024.0 * 1024.0) : bytes / (1024.0 * 1024.0));
    return buf;
}

} // namespace

CachedKv cachedKeysAndValues(const Transformer& engine, std::span<const int32_t> tokens, int block)
{
    if (block < 0 || block >= engine.layers())
        fail(ErrorCode::InvalidArgument, engine.source(), "no block " + std::to_string(block));
    Session session(engine);
    session.append(tokens);
    const KvCache& cache = session.cache();
    const auto n = static_cast<int64_t>(tokens.size());
    return {cache.k[static_cast<size_t>(block)].topRows(n), cache.v[static_cast<size_t>(block)].topRows(n)};
}

KvError kvQuantizationError(const CachedKv& kv, const KvCacheQuantization& q, int64_t headDim)
{
    const int64_t n = kv.keys.rows();
    // Per-channel keys quantize whole groups only; the rest stays in the residual window.
    const int64_t keyRows = q.keysPerChannel && q.group > 0 ? n / q.group * q.group : n;
    KvError e;
    if (q.keyBits > 0)
        e.keys = relativeError(kv.keys, quantizedCopy(kv.keys, q, headDim, true), keyRows);
    if (q.valueBits > 0)
        e.values = relativeError(kv.values, quantizedCopy(kv.values, q, headDim, false), n);
    return e;
}

PreviewResult previewKvCache(const CompressionState& state, const RecipeStep& step, const LogicalTensor& t,
                             const CalibrationText& calibration, Progress* progress)
{
    const KvCacheQuantization q = kvCacheOptionsFrom(JsonParams(step.params));
    const ModelConfig& config = state.model->config;
    q.validate(config.headDim, state.model->path);
    // The first positions of the calibration text, or a fixed token sequence for a model without a tokenizer.
    std::vector<int32_t> tokens(calibration.tokens.begin(),
                                calibration.tokens.begin()
                                    + std::min<int64_t>(static_cast<int64_t>(calibration.tokens.size()), kKvPreviewPositions));
    const bool sampleText = !tokens.empty();
    if (!sampleText)
        for (int64_t i = 0; i < std::min<int64_t>(kKvPreviewPositions, 128); ++i)
            tokens.push_back(static_cast<int32_t>((i * 7919 + 13) % std::max<int64_t>(1, config.vocab)));
    const auto engine = state.makeEngine();
    const CachedKv kv = cachedKeysAndValues(*engine, tokens, t.block);
    throwIfCancelled(progress);

    PreviewResult r;
    r.tensor = t.logicalName;
    r.action = step.action;
    r.badge = step.badge();
    r.rows = r.rowsAfter = kv.keys.rows();
    r.cols = r.colsAfter = kv.keys.cols();
    r.before.assign(kv.keys.data(), kv.keys.data() + kv.keys.size());
    const MatrixRM kq = quantizedCopy(kv.keys, q, config.headDim, true);
    r.after.assign(kq.data(), kq.data() + kq.size());
    r.record.shape = {kv.keys.rows(), kv.keys.cols()};
    // Errors against bits, the scheme otherwise as chosen.
    for (const int bits : {2, 3, 4, 5, 6, 8}) {
        KvCacheQuantization at = q;
        at.keyBits = at.valueBits = bits;
        const KvError e = kvQuantizationError(kv, at, config.headDim);
        ErrorCurvePoint p;
        p.x = bits;
        p.weightError = e.keys;
        p.outputError = e.values;
        r.curve.push_back(p);
        throwIfCancelled(progress);
    }
    r.curveLabel = "bits";
    r.curveSeries = {"key error", "value error"};
    r.curveCurrent = q.keyBits;
    const KvError now = kvQuantizationError(kv, q, config.headDim);
    r.record.weightError = now.keys;
    constexpr int64_t kAt = 4096;
    const double bytes = kvCacheBytes(config, q, kAt), f16 = kvCacheBytes(config, {}, kAt);
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "Block %d's keys on %lld positions of %s. Relative error: keys %.4f, values %.4f. "
                  "KV cache at %lld positions: %s (F16: %s, %.1f×%s).",
                  t.block, static_cast<long long>(kv.keys.rows()), sampleText ? "the calibration text" : "fixed tokens",
                  now.keys, now.values, static_cast<long long>(kAt), mib(bytes).c_str(), mib(f16).c_str(),
                  bytes > 0.0 ? f16 / bytes : 0.0, "");
    r.note = buf;
    if (q.keysPerChannel && q.keyBits > 0) {
        // KIVI's point, on this model: per-token keys at the same bits.
        KvCacheQuantization perToken = q;
        perToken.keysPerChannel = false;
        std::snprintf(buf, sizeof buf, " Keys per token instead: %.4f.", kvQuantizationError(kv, perToken, config.headDim).keys);
        r.note += buf;
    }
    return r;
}

} // namespace ll
