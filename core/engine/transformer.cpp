#include "engine/transformer.h"

#include "engine/attention.h"
#include "util/threads.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

namespace ll {

namespace {

// Reads the F32 copies of a model's logical tensors, reporting progress per tensor.
class WeightLoader {
public:
    WeightLoader(const Model& m, Progress* progress) : m_(m), progress_(progress) {}

    const LogicalTensor* find(int block, Role role, bool bias) const { return m_.find(block, role, bias); }

    MatrixRM matrix(int block, Role role, bool required = true)
    {
        const LogicalTensor* t = m_.find(block, role, false);
        if (!t) {
            if (required)
                fail(ErrorCode::Malformed, m_.path, "the model has no tensor " + logicalName(block, role, false));
            return {};
        }
        return read(*t);
    }

    Eigen::VectorXf vector(int block, Role role, bool bias, bool required)
    {
        const LogicalTensor* t = m_.find(block, role, bias);
        if (!t) {
            if (required)
                fail(ErrorCode::Malformed, m_.path, "the model has no tensor " + logicalName(block, role, bias));
            return {};
        }
        const MatrixRM v = read(*t);
        if (v.rows() != 1)
            fail(ErrorCode::Malformed, m_.path, "tensor " + t->logicalName + " should be one-dimensional");
        return v.row(0).transpose();
    }

    // A linear as the model holds it: a view of its stored bytes, its factors,
    // or (layouts the kernels cannot read in place) an F32 copy.
    LinearWeights linear(int block, Role role, bool required = true)
    {
        LinearWeights lw;
        const LogicalTensor* t = m_.find(block, role, false);
        if (!t) {
            if (required)
                fail(ErrorCode::Malformed, m_.path, "the model has no tensor " + logicalName(block, role, false));
            return lw;
        }
        step(*t);
        lw = loadLinearWeights(m_, *t);
        if (!lw.empty())
            lw.b = vector(block, role, true, false);
        return lw;
    }

    StoredMatrix table(int block, Role role)
    {
        const LogicalTensor* t = m_.find(block, role, false);
        if (!t)
            fail(ErrorCode::Malformed, m_.path, "the model has no tensor " + logicalName(block, role, false));
        step(*t);
        LinearWeights lw = loadLinearWeights(m_, *t);
        return lw.hasFactors() ? StoredMatrix::fromMatrix(lw.dense()) : std::move(lw.W); // a lookup reads rows of W
    }

    NormWeights norm(int block, Role role, bool required = true)
    {
        NormWeights n;
        n.w = vector(block, role, false, required);
        if (!n.empty())
            n.b = vector(block, role, true, false);
        return n;
    }

private:
    static std::string logicalName(int block, Role role, bool bias)
    {
        return (block >= 0 ? "blocks." + std::to_string(block) + " " : std::string()) + std::string(roleName(role))
               + (bias ? " bias" : " weight");
    }

    void step(const LogicalTensor& t)
    {
        throwIfCancelled(progress_);
        if (progress_)
            progress_->report(static_cast<double>(done_) / static_cast<double>(std::max<size_t>(1, m_.tensors.size())),
                              "loading " + t.logicalName);
        ++done_;
    }

    MatrixRM read(const LogicalTensor& t)
    {
        step(t);
        return readMatrix(m_, t);
    }

    const Model& m_;
    Progress* progress_;
    size_t done_ = 0;
};

void expectShape(const std::string& src, const std::string& what, int64_t rows, int64_t cols, int64_t wantRows,
                 int64_t wantCols)
{
    if (rows != wantRows || cols != wantCols)
        fail(ErrorCode::Malformed, src,
             what + " is " + std::to_string(rows) + " x " + std::to_string(cols) + ", the configuration implies "
                 + std::to_string(wantRows) + " x " + std::to_string(wantCols));
}

void expectLinear(const std::string& src, const std::string& what, const LinearWeights& lw, int64_t out, int64_t in)
{
    expectShape(src, what, lw.outFeatures(), lw.inFeatures(), out, in);
    if (lw.hasFactors() && (lw.B.rows != lw.rank() || lw.A.rows != out || lw.B.cols != in))
        fail(ErrorCode::Malformed, src, what + " has factors A (" + std::to_string(lw.A.rows) + " x " + std::to_string(lw.A.cols)
                                            + ") and B (" + std::to_string(lw.B.rows) + " x " + std::to_string(lw.B.cols)
                                            + ") that do not chain");
    if (lw.hasBias() && lw.b.size() != out)
        fail(ErrorCode::Malformed, src, what + " bias has " + std::to_string(lw.b.size()) + " values, expected " + std::to_string(out));
}

void expectNorm(const std::string& src, const std::string& what, const NormWeights& n, int64_t d)
{
    if (n.w.size() != d || (n.b.size() != 0 && n.b.size() != d))
        fail(ErrorCode::Malformed, src, what + " has " + std::to_string(n.w.size()) + " values, expected " + std::to_string(d));
}

} // namespace

Transformer::Transformer(const Model& model, Progress* progress) : config_(model.config), source_(model.path)
{
    arch_ = architectureOf(config_, model.metadata, model.path);
    if (const LogicalTensor* f = model.findLogical("rope_freqs.weight"); f && arch_.rotary.dims > 0)
        applyRopeFreqFactors(arch_.rotary, readLogical(model, *f), model.path);
    WeightLoader load(model, progress);
    const LogicalTensor* head = load.find(-1, Role::LmHead, false);
    if (!head)
        fail(ErrorCode::Malformed, model.path, "the model has neither an LM head nor an embedding to tie it to");
    // An edited side unties them: the head and the embedding are read separately.
    const LogicalTensor* embedding = load.find(-1, Role::Embedding, false);
    w_.headTied = head->tied && !head->edited() && !(embedding && embedding->edited());
    if (!w_.headTied)
        w_.embed = load.table(-1, Role::Embedding);
    if (arch_.learnedPositions)
        w_.positions = load.matrix(-1, Role::PositionEmbedding);
    w_.projectIn = load.linear(-1, Role::EmbedProjIn, false);
    w_.projectOut = load.linear(-1, Role::EmbedProjOut, false);
    w_.blocks.resize(static_cast<size_t>(config_.layers));
    for (int l = 0; l < config_.layers; ++l) {
        BlockWeights& b = w_.blocks[static_cast<size_t>(l)];
        b.attnNorm = load.norm(l, Role::AttnNorm);
        b.q = load.linear(l, Role::AttnQ);
        b.k = load.linear(l, Role::AttnK);
        b.v = load.linear(l, Role::AttnV);
        b.o = load.linear(l, Role::AttnO);
        b.mlpNorm = load.norm(l, Role::MlpNorm);
        if (arch_.gatedMlp)
            b.gate = load.linear(l, Role::MlpGate);
        b.up = load.linear(l, Role::MlpUp);
        b.down = load.linear(l, Role::MlpDown);
        if (load.find(l, Role::PostAttnNorm, false) || load.find(l, Role::PostMlpNorm, false))
            fail(ErrorCode::UnsupportedArch, model.path, "post-attention / post-MLP norms (Gemma 2 style) are not supported");
    }
    w_.finalNorm = load.norm(-1, Role::FinalNorm, false);
    w_.head = load.linear(-1, Role::LmHead);
    validate(model.path);
    setUpDownRotation(model.path);
}

Transformer::Transformer(const ModelConfig& config, TransformerWeights weights, const nlohmann::json& metadata)
    : config_(config), w_(std::move(weights))
{
    arch_ = architectureOf(config_, metadata, "generated model");
    validate("generated model");
    setUpDownRotation("generated model");
}

void Transformer::setUpDownRotation(const std::string& src)
{
    if (!config_.onlineDownRotation)
        return;
    for (const BlockWeights& b : w_.blocks)
        if (b.down.inFeatures() != config_.intermediate)
            fail(ErrorCode::Malformed, src, "down_proj's input is not the rotated width " + std::to_string(config_.intermediate));
    downRotation_ = std::make_shared<RandomHadamard>(config_.intermediate, *config_.onlineDownRotation);
}

void Transformer::validate(const std::string& src) const
{
    const ModelConfig& c = config_;
    const int64_t d = c.hidden, qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim;
    const int64_t embedDim = w_.projectIn.empty() ? d : w_.projectIn.inFeatures();
    if (static_cast<int64_t>(w_.blocks.size()) != c.layers || c.layers <= 0)
        fail(ErrorCode::Malformed, src, "the model has " + std::to_string(w_.blocks.size()) + " blocks, its configuration "
                                            + std::to_string(c.layers));
    const StoredMatrix& table = w_.embeddingTable();
    expectShape(src, "the embedding", table.rows, table.cols, table.rows, embedDim);
    if (table.rows <= 0)
        fail(ErrorCode::Malformed, src, "the embedding table is empty");
    // The configuration must agree with the tensors it describes (issue 16: a
    // vocab_size of 1e9 was shown as true and silently ignored).
    if (c.vocab > 0 && c.vocab != table.rows)
        fail(ErrorCode::Malformed, src, "the configuration says the vocabulary has " + std::to_string(c.vocab)
                                            + " tokens, the embedding has " + std::to_string(table.rows) + " rows");
    expectLinear(src, "the LM head", w_.head, table.rows, embedDim);
    if (!w_.projectIn.empty())
        expectLinear(src, "project_in", w_.projectIn, d, embedDim);
    if (!w_.projectOut.empty())
        expectLinear(src, "project_out", w_.projectOut, embedDim, d);
    if (w_.projectIn.empty() != w_.projectOut.empty())
        fail(ErrorCode::Malformed, src, "the model has only one of project_in / project_out");
    if (arch_.learnedPositions && (w_.positions.cols() != d || w_.positions.rows() <= arch_.positionOffset))
        fail(ErrorCode::Malformed, src, "the position embedding does not match the hidden size");
    if (!w_.finalNorm.empty())
        expectNorm(src, "the final norm", w_.finalNorm, d);
    for (size_t l = 0; l < w_.blocks.size(); ++l) {
        const BlockWeights& b = w_.blocks[l];
        const std::string p = "block " + std::to_string(l) + " ";
        expectNorm(src, p + "attention norm", b.attnNorm, d);
        expectNorm(src, p + "MLP norm", b.mlpNorm, d);
        expectLinear(src, p + "q", b.q, qDim, d);
        expectLinear(src, p + "k", b.k, kvDim, d);
        expectLinear(src, p + "v", b.v, kvDim, d);
        expectLinear(src, p + "o", b.o, d, qDim);
        const int64_t ffn = b.up.outFeatures();
        if (c.intermediate > 0 && ffn != c.intermediate)
            fail(ErrorCode::Malformed, src, "the configuration says the MLP is " + std::to_string(c.intermediate) + " wide, "
                                                + p + "up has " + std::to_string(ffn) + " rows");
        expectLinear(src, p + "up", b.up, ffn, d);
        if (arch_.gatedMlp)
            expectLinear(src, p + "gate", b.gate, ffn, d);
        expectLinear(src, p + "down", b.down, d, ffn);
    }
}

const LinearWeights& Transformer::linear(int block, Role role) const
{
    return const_cast<Transformer*>(this)->linearSlot(block, role);
}

LinearWeights& Transformer::linearSlot(int block, Role role)
{
    if (block == -1 && role == Role::LmHead)
        return w_.head;
    if (block < 0 || block >= layers())
        fail(ErrorCode::OutOfRange, "", "block " + std::to_string(block) + " does not exist (the model has "
                                            + std::to_string(layers()) + ")");
    BlockWeights& b = w_.blocks[static_cast<size_t>(block)];
    switch (role) {
    case Role::AttnQ: return b.q;
    case Role::AttnK: return b.k;
    case Role::AttnV: return b.v;
    case Role::AttnO: return b.o;
    case Role::MlpUp: return b.up;
    case Role::MlpDown: return b.down;
    case Role::MlpGate:
        if (!b.gate.empty())
            return b.gate;
        break;
    default: break;
    }
    fail(ErrorCode::InvalidArgument, "", "block " + std::to_string(block) + " has no linear '" + std::string(roleName(role)) + "'");
}

void Transformer::setLinearWeight(int block, Role role, MatrixRM W)
{
    setLinearWeight(block, role, StoredMatrix::fromMatrix(std::move(W)));
}

void Transformer::setLinearWeight(int block, Role role, StoredMatrix W)
{
    LinearWeights& lw = linearSlot(block, role);
    if (W.rows != lw.outFeatures() || W.cols != lw.inFeatures())
        fail(ErrorCode::InvalidArgument, "",
             "replacement for " + std::string(roleName(role)) + " is " + std::to_string(W.rows) + " x "
                 + std::to_string(W.cols) + ", the layer is " + std::to_string(lw.outFeatures()) + " x "
                 + std::to_string(lw.inFeatures()));
    untieIfHead(lw);
    lw.W = std::move(W);
    lw.A = {};
    lw.B = {};
}

void Transformer::setLinearFactors(int block, Role role, MatrixRM A, MatrixRM B)
{
    setLinearFactors(block, role, StoredMatrix::fromMatrix(std::move(A)), StoredMatrix::fromMatrix(std::move(B)));
}

namespace {

// Factors A (out, k) and B (k, in) for `lw`'s shape, or InvalidArgument.
void expectFactorsFit(Role role, const LinearWeights& lw, const StoredMatrix& A, const StoredMatrix& B)
{
    if (A.rows != lw.outFeatures() || B.cols != lw.inFeatures() || A.cols != B.rows)
        fail(ErrorCode::InvalidArgument, "",
             "factors for " + std::string(roleName(role)) + " are " + std::to_string(A.rows) + " x " + std::to_string(A.cols)
                 + " and " + std::to_string(B.rows) + " x " + std::to_string(B.cols) + ", the layer is "
                 + std::to_string(lw.outFeatures()) + " x " + std::to_string(lw.inFeatures()));
}

} // namespace

void Transformer::setLinearFactors(int block, Role role, StoredMatrix A, StoredMatrix B)
{
    LinearWeights& lw = linearSlot(block, role);
    expectFactorsFit(role, lw, A, B);
    untieIfHead(lw);
    lw.A = std::move(A);
    lw.B = std::move(B);
    lw.W = {};
}

void Transformer::setLinear(int block, Role role, LinearWeights weights)
{
    if (weights.factored()) {
        setLinearFactors(block, role, std::move(weights.A), std::move(weights.B));
    } else {
        // A correction is checked before anything changes; setLinearWeight checks W.
        const bool corrected = weights.corrected();
        if (corrected)
            expectFactorsFit(role, linearSlot(block, role), weights.A, weights.B);
        setLinearWeight(block, role, std::move(weights.W));
        if (corrected) {
            LinearWeights& lw = linearSlot(block, role);
            lw.A = std::move(weights.A);
            lw.B = std::move(weights.B);
        }
    }
}

void Transformer::untieIfHead(const LinearWeights& lw)
{
    if (&lw == &w_.head && w_.headTied) {
        w_.embed = w_.head.W; // the embedding keeps the original values
        w_.headTied = false;
    }
}

bool Transformer::scaleNormOutput(int block, Role inputRole, const Eigen::VectorXf& s)
{
    if (block < 0 || block >= layers() || (inputRole != Role::AttnQ && inputRole != Role::MlpUp))
        return false;
    if (!arch_.normBefore && !arch_.parallelResidual)
        return false; // post-norm: the linears read the residual stream
    BlockWeights& b = w_.blocks[static_cast<size_t>(block)];
    NormWeights& nw = inputRole == Role::AttnQ ? b.attnNorm : b.mlpNorm;
    if (nw.empty() || nw.w.size() != s.size())
        return false;
    const Eigen::ArrayXf inv = s.array().inverse();
    if (arch_.norm == NormKind::RmsPlusOne)
        nw.w = ((1.0f + nw.w.array()) * inv - 1.0f).matrix();
    else
        nw.w = (nw.w.array() * inv).matrix();
    if (nw.b.size() == s.size())
        nw.b = (nw.b.array() * inv).matrix();
    return true;
}

double Transformer::flopsPerToken(int64_t context) const
{
    double macs = static_cast<double>(w_.head.parameterCount());
    for (const auto& b : w_.blocks)
        macs += static_cast<double>(b.q.parameterCount() + b.k.parameterCount() + b.v.parameterCount() + b.o.parameterCount()
                                    + b.gate.parameterCount() + b.up.parameterCount() + b.down.parameterCount());
    macs += static_cast<double>(w_.projectIn.parameterCount() + w_.projectOut.parameterCount());
    // Causal attention: on average (context + 1) / 2 keys, QK^T and PV per head.
    const double keys = static_cast<double>(context + 1) / 2.0;
    macs += static_cast<double>(layers()) * 2.0 * keys * static_cast<double>(config_.heads * config_.headDim);
    return 2.0 * macs;
}

uint64_t Transformer::weightBytes() const
{
    const auto lin = [](const LinearWeights& l) { return l.bytes() + static_cast<uint64_t>(l.b.size()) * sizeof(float); };
    const auto norm = [](const NormWeights& n) { return static_cast<uint64_t>(n.w.size() + n.b.size()) * sizeof(float); };
    uint64_t bytes = w_.embed.bytes() + static_cast<uint64_t>(w_.positions.size()) * sizeof(float) + lin(w_.projectIn)
                     + lin(w_.projectOut) + norm(w_.finalNorm) + lin(w_.head);
    for (const auto& b : w_.blocks)
        bytes += norm(b.attnNorm) + norm(b.mlpNorm) + lin(b.q) + lin(b.k) + lin(b.v) + lin(b.o) + lin(b.gate) + lin(b.up)
                 + lin(b.down);
    return bytes;
}

void Transformer::embed(std::span<const int32_t> ids, std::span<const int64_t> positions, MatrixRM& x) const
{
    const StoredMatrix& table = w_.embeddingTable();
    const int64_t n = static_cast<int64_t>(ids.size());
    MatrixRM e(n, table.cols);
    for (int64_t r = 0; r < n; ++r) {
        const int32_t id = ids[static_cast<size_t>(r)];
        if (id < 0 || id >= table.rows)
            fail(ErrorCode::OutOfRange, "", "token id " + std::to_string(id) + " is outside the vocabulary of "
                                                + std::to_string(table.rows));
        table.decodeRows(id, 1, e.row(r).data());
    }
    if (arch_.embedScale != 1.0f)
        e *= arch_.embedScale;
    if (!w_.projectIn.empty()) {
        x.resize(n, config_.hidden);
        applyLinear(w_.projectIn, e, x);
    } else {
        x = std::move(e);
    }
    if (arch_.learnedPositions) {
        for (int64_t r = 0; r < n; ++r) {
            const int64_t row = positions[static_cast<size_t>(r)] + arch_.positionOffset;
            if (row >= w_.positions.rows())
                fail(ErrorCode::OutOfRange, "", "position " + std::to_string(positions[static_cast<size_t>(r)])
                                                    + " is beyond the model's " + std::to_string(w_.positions.rows() - arch_.positionOffset)
                                                    + " learned positions");
            x.row(r) += w_.positions.row(row);
        }
    }
}

void Transformer::setKvQuantization(const KvCacheQuantization& q)
{
    if (q.active())
        q.validate(config_.headDim, source_);
    kvQuant_ = q;
}

// Every key and value the queries of this pass read, quantized as the cache
// would hold them (each (segment, kv head) on its own rows and columns).
void Transformer::quantizeKeysAndValues(const MatrixRM& keys, const MatrixRM& values, std::span<const Segment> segments,
                                        bool cached, Scratch& scratch) const
{
    const int64_t hd = config_.headDim, kvHeads = config_.kvHeads;
    scratch.kq.resize(keys.rows(), keys.cols());
    scratch.vq.resize(values.rows(), values.cols());
    const int64_t tasks = static_cast<int64_t>(segments.size()) * kvHeads;
    parallelFor(tasks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
            const Segment& s = segments[static_cast<size_t>(t / kvHeads)];
            const int64_t head = t % kvHeads;
            const int64_t row0 = cached ? 0 : s.row0, n = s.pos0 + s.rows;
            const int64_t offset = row0 * keys.cols() + head * hd;
            quantizeCachedKeys(kvQuant_, {keys.data() + offset, keys.cols()}, n, hd, scratch.kq.data() + offset,
                               keys.cols());
            quantizeCachedValues(kvQuant_, {values.data() + offset, values.cols()}, n, hd, scratch.vq.data() + offset,
                                 values.cols());
        }
    });
}

void Transformer::attention(int layer, const ConstMatrixRef& h, std::span<const int64_t> positions,
                            std::span<const Segment> segments, KvCache* cache, const RotaryTable* rotary,
                            LinearInputObserver* observer, Scratch& scratch, MatrixRef out) const
{
    const BlockWeights& b = w_.blocks[static_cast<size_t>(layer)];
    const int64_t n = h.rows(), hd = config_.headDim, heads = config_.heads, kvHeads = config_.kvHeads;
    if (observer)
        observer->linearInput(layer, Role::AttnQ, h);
    // The transform rewrites a copy: h may be the residual stream (post-norm OPT).
    const bool transformed = static_cast<bool>(inputTransform_);
    if (transformed) {
        scratch.in = h;
        inputTransform_(layer, Role::AttnQ, scratch.in);
    }
    const ConstMatrixRef hq = transformed ? ConstMatrixRef(scratch.in) : h;
    MatrixRM& q = scratch.q;
    MatrixRM& k = scratch.k;
    MatrixRM& v = scratch.v;
    q.resize(n, heads * hd);
    k.resize(n, kvHeads * hd);
    v.resize(n, kvHeads * hd);
    applyLinear(b.q, hq, q);
    applyLinear(b.k, hq, k);
    applyLinear(b.v, hq, v);
    if (rotary) {
        applyRotary(arch_.rotary, *rotary, positions, heads, hd, q);
        applyRotary(arch_.rotary, *rotary, positions, kvHeads, hd, k);
    }
    const MatrixRM* keys = &k;
    const MatrixRM* values = &v;
    if (cache) {
        MatrixRM& ck = cache->k[static_cast<size_t>(layer)];
        MatrixRM& cv = cache->v[static_cast<size_t>(layer)];
        ck.middleRows(cache->length, n) = k;
        cv.middleRows(cache->length, n) = v;
        keys = &ck;
        values = &cv;
    }
    float scale = arch_.attnScale;
    if (arch_.scaleAttnByLayer)
        scale /= static_cast<float>(layer + 1);

    MatrixRM& att = scratch.att;
    att.resize(n, heads * hd);
    const int64_t group = heads / kvHeads;
    const int64_t tasks = static_cast<int64_t>(segments.size()) * heads;
    const bool quantizedKv = kvQuant_.active();
    if (quantizedKv)
        quantizeKeysAndValues(*keys, *values, segments, cache != nullptr, scratch);
    // Decoding one token is too little work per head to share out.
    const bool worthThreads = tasks > 1 && n * (n + (cache ? cache->length : 0)) * config_.headDim * heads >= (int64_t{1} << 20);
    const int threads = worthThreads && !inParallelRegion()
        ? static_cast<int>(std::min<int64_t>(computeThreads(), tasks)) : 1;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
    for (int64_t t = 0; t < tasks; ++t) {
        const Segment& s = segments[static_cast<size_t>(t / heads)];
        const int64_t head = t % heads, kvHead = head / group;
        // Without a cache a window's keys are its own rows; with one they start at row 0.
        const int64_t keyRow0 = cache ? 0 : s.row0;
        if (quantizedKv) {
            const auto at = [&](const MatrixRM& m) { return HeadView{m.data() + keyRow0 * m.cols() + kvHead * hd, m.cols()}; };
            attendOneHeadQuantizedKv(kvQuant_, {q.data() + s.row0 * q.cols() + head * hd, q.cols()}, at(*keys),
                                     at(scratch.kq), at(*values), at(scratch.vq),
                                     att.data() + s.row0 * att.cols() + head * hd, att.cols(), s.rows, s.pos0, hd,
                                     scale, arch_.slidingWindow);
            continue;
        }
        attendOneHead({q.data() + s.row0 * q.cols() + head * hd, q.cols()},
                      {keys->data() + keyRow0 * keys->cols() + kvHead * hd, keys->cols()},
                      {values->data() + keyRow0 * values->cols() + kvHead * hd, values->cols()},
                      att.data() + s.row0 * att.cols() + head * hd, att.cols(), s.rows, s.pos0, hd, scale,
                      arch_.slidingWindow);
    }
    if (observer)
        observer->linearInput(layer, Role::AttnO, att);
    if (inputTransform_)
        inputTransform_(layer, Role::AttnO, att);
    applyLinear(b.o, att, out);
}

void Transformer::mlp(int layer, const ConstMatrixRef& h, LinearInputObserver* observer, Scratch& scratch,
                      MatrixRef out) const
{
    const BlockWeights& b = w_.blocks[static_cast<size_t>(layer)];
    if (observer)
        observer->linearInput(layer, Role::MlpUp, h);
    const bool transformed = static_cast<bool>(inputTransform_);
    if (transformed) {
        scratch.in = h;
        inputTransform_(layer, Role::MlpUp, scratch.in);
    }
    const ConstMatrixRef hu = transformed ? ConstMatrixRef(scratch.in) : h;
    MatrixRM& up = scratch.up;
    up.resize(h.rows(), b.up.outFeatures());
    applyLinear(b.up, hu, up);
    MatrixRM* act = &up;
    if (arch_.gatedMlp) {
        MatrixRM& gate = scratch.gate;
        gate.resize(h.rows(), b.gate.outFeatures());
        applyLinear(b.gate, hu, gate);
        applyGatedActivation(arch_.activation, gate, up);
        act = &gate;
    } else {
        applyActivation(arch_.activation, up);
    }
    if (downRotation_)
        downRotation_->rotateRows(*act); // W_down holds W Qf (pipeline/rotate_model.h)
    if (observer)
        observer->linearInput(layer, Role::MlpDown, *act);
    if (inputTransform_)
        inputTransform_(layer, Role::MlpDown, *act);
    applyLinear(b.down, *act, out);
}

Transformer::Layout Transformer::layoutOf(std::span<const Segment> segments, int64_t rows) const
{
    Layout L;
    L.segments.assign(segments.begin(), segments.end());
    L.positions.resize(static_cast<size_t>(rows));
    int64_t firstPos = INT64_MAX, endPos = 0;
    for (const Segment& s : segments) {
        for (int64_t i = 0; i < s.rows; ++i)
            L.positions[static_cast<size_t>(s.row0 + i)] = s.pos0 + i;
        firstPos = std::min(firstPos, s.pos0);
        endPos = std::max(endPos, s.pos0 + s.rows);
    }
    if (arch_.rotary.dims > 0 && rows > 0)
        L.rotary.emplace(arch_.rotary, firstPos, endPos - firstPos);
    return L;
}

void Transformer::runBlock(int l, MatrixRef x, const Layout& L, KvCache* cache, LinearInputObserver* observer,
                           Scratch& scratch) const
{
    const int64_t n = x.rows();
    const float eps = static_cast<float>(config_.normEps);
    const NormKind nk = arch_.norm;
    const RotaryTable* rot = L.rotary ? &*L.rotary : nullptr;
    MatrixRM& h = scratch.h;
    MatrixRM& branch = scratch.branch;
    h.resize(n, config_.hidden);
    branch.resize(n, config_.hidden);
    const BlockWeights& b = w_.blocks[static_cast<size_t>(l)];
    if (arch_.parallelResidual) {
        // gpt_neox: x + attn(ln1 x) + mlp(ln2 x)
        applyNorm(nk, b.attnNorm, eps, x, h);
        attention(l, h, L.positions, L.segments, cache, rot, observer, scratch, branch);
        applyNorm(nk, b.mlpNorm, eps, x, h);
        x += branch;
        mlp(l, h, observer, scratch, branch);
        x += branch;
    } else if (arch_.normBefore) {
        applyNorm(nk, b.attnNorm, eps, x, h);
        attention(l, h, L.positions, L.segments, cache, rot, observer, scratch, branch);
        x += branch;
        applyNorm(nk, b.mlpNorm, eps, x, h);
        mlp(l, h, observer, scratch, branch);
        x += branch;
    } else {
        // Post-norm OPT: norm(x + attn(x)), norm(x + mlp(x)).
        attention(l, x, L.positions, L.segments, cache, rot, observer, scratch, branch);
        h = x + branch;
        applyNorm(nk, b.attnNorm, eps, h, x);
        mlp(l, x, observer, scratch, branch);
        h = x + branch;
        applyNorm(nk, b.mlpNorm, eps, h, x);
    }
}

MatrixRM Transformer::finish(MatrixRM x) const
{
    if (!w_.finalNorm.empty()) {
        MatrixRM h(x.rows(), x.cols());
        applyNorm(arch_.norm, w_.finalNorm, static_cast<float>(config_.normEps), x, h);
        x.swap(h);
    }
    if (!w_.projectOut.empty()) {
        MatrixRM out(x.rows(), w_.projectOut.outFeatures());
        applyLinear(w_.projectOut, x, out);
        return out;
    }
    return x;
}

MatrixRM Transformer::runHidden(std::span<const int32_t> ids, std::span<const Segment> segments, KvCache* cache,
                                LinearInputObserver* observer) const
{
    const int64_t n = static_cast<int64_t>(ids.size());
    const Layout L = layoutOf(segments, n);
    MatrixRM x;
    embed(ids, L.positions, x);
    Scratch scratch;
    for (int l = 0; l < layers(); ++l)
        runBlock(l, x, L, cache, observer, scratch);
    if (cache)
        cache->length += n;
    return finish(std::move(x));
}

namespace {
// Windows [w0, w1) of a batch as segments of their own rows, each from position 0.
std::vector<Transformer::Segment> windowSegments(int64_t w0, int64_t w1, int64_t windowLength)
{
    std::vector<Transformer::Segment> segments;
    for (int64_t w = w0; w < w1; ++w)
        segments.push_back({(w - w0) * windowLength, windowLength, 0});
    return segments;
}

int64_t wholeWindows(int64_t rows, int64_t windowLength)
{
    if (windowLength <= 0 || rows % windowLength != 0)
        fail(ErrorCode::InvalidArgument, "", std::to_string(rows) + " tokens are not whole windows of " + std::to_string(windowLength));
    return rows / windowLength;
}
} // namespace

MatrixRM Transformer::embedWindows(std::span<const int32_t> ids, int64_t windowLength) const
{
    const int64_t n = static_cast<int64_t>(ids.size());
    const int64_t windows = wholeWindows(n, windowLength);
    const auto segments = windowSegments(0, windows, windowLength);
    const Layout L = layoutOf(segments, n);
    MatrixRM x;
    embed(ids, L.positions, x);
    return x;
}

void Transformer::runBlocks(MatrixRef x, int64_t windowLength, int first, int last, LinearInputObserver* observer) const
{
    const int64_t windows = wholeWindows(x.rows(), windowLength);
    if (first < 0 || last >= layers() || first > last || x.cols() != config_.hidden)
        fail(ErrorCode::InvalidArgument, "", "blocks " + std::to_string(first) + ".." + std::to_string(last)
                                                 + " of hidden states " + std::to_string(x.cols()) + " wide do not fit the model");
    const auto runGroup = [&](int64_t w0, int64_t w1) {
        const auto segments = windowSegments(w0, w1, windowLength);
        const Layout L = layoutOf(segments, (w1 - w0) * windowLength);
        MatrixRef rows = x.middleRows(w0 * windowLength, (w1 - w0) * windowLength);
        Scratch scratch;
        for (int l = first; l <= last; ++l)
            runBlock(l, rows, L, nullptr, observer, scratch);
    };
    // As hiddenBatch: one group of windows per thread, each run without synchronisation.
    const int64_t groups = inParallelRegion() ? 1 : std::min<int64_t>(computeThreads(), windows);
    if (groups <= 1)
        return runGroup(0, windows);
    runParallel(groups, [&](int64_t g) { runGroup(windows * g / groups, windows * (g + 1) / groups); });
}

MatrixRM Transformer::finishHidden(MatrixRM x) const
{
    return finish(std::move(x));
}

void Transformer::applyHead(const ConstMatrixRef& hidden, MatrixRef logits) const
{
    applyLinear(w_.head, hidden, logits);
}

MatrixRM Transformer::hiddenBatch(std::span<const int32_t> ids, int64_t windowLength, LinearInputObserver* observer) const
{
    const int64_t n = static_cast<int64_t>(ids.size());
    const int64_t windows = wholeWindows(n, windowLength);
    const auto runWindows = [&](int64_t w0, int64_t w1) {
        const auto segments = windowSegments(w0, w1, windowLength);
        return runHidden(ids.subspan(static_cast<size_t>(w0 * windowLength), static_cast<size_t>((w1 - w0) * windowLength)),
                         segments, nullptr, observer);
    };
    const int64_t groups = inParallelRegion() ? 1 : std::min<int64_t>(computeThreads(), windows);
    if (groups <= 1)
        return runWindows(0, windows);
    // One group of windows per thread, each a whole forward pass of its own.
    MatrixRM out(n, headInputDim());
    runParallel(groups, [&](int64_t g) {
        const int64_t w0 = windows * g / groups, w1 = windows * (g + 1) / groups;
        out.middleRows(w0 * windowLength, (w1 - w0) * windowLength) = runWindows(w0, w1);
    });
    return out;
}

MatrixRM Transformer::logitsBatch(std::span<const int32_t> ids, int64_t windowLength) const
{
    const MatrixRM hidden = hiddenBatch(ids, windowLength);
    MatrixRM out(hidden.rows(), vocab());
    applyHead(hidden, out);
    return out;
}

Eigen::MatrixXf Transformer::logits(std::span<const int32_t> ids) const
{
    if (ids.empty())
        return Eigen::MatrixXf(0, vocab());
    return logitsBatch(ids, static_cast<int64_t>(ids.size()));
}

} // namespace ll
