#include "prune/structured.h"

#include "layer/checks.h"
#include "util/error.h"

#include <string>

namespace ll {

namespace {

std::string shapeText(const MatrixRM& m) { return std::to_string(m.rows()) + " x " + std::to_string(m.cols()); }

void checkAttention(const AttentionWeights& a)
{
    const AttentionShape& s = a.shape;
    if (s.heads < 1 || s.kvHeads < 1 || s.headDim < 1 || s.heads % s.kvHeads != 0)
        fail(ErrorCode::InvalidArgument, "",
             "attention with " + std::to_string(s.heads) + " heads, " + std::to_string(s.kvHeads) + " KV heads and head size "
                 + std::to_string(s.headDim) + " is not valid (heads must be a multiple of KV heads)");
    requireUsableWeights(a.q, "the query projection");
    requireUsableWeights(a.k, "the key projection");
    requireUsableWeights(a.v, "the value projection");
    requireUsableWeights(a.o, "the output projection");
    const int64_t qRows = s.heads * s.headDim, kvRows = s.kvHeads * s.headDim, d = a.q.cols();
    if (a.q.rows() != qRows || a.k.rows() != kvRows || a.v.rows() != kvRows || a.k.cols() != d || a.v.cols() != d
        || a.o.cols() != qRows)
        fail(ErrorCode::InvalidArgument, "",
             "projection shapes q " + shapeText(a.q) + ", k " + shapeText(a.k) + ", v " + shapeText(a.v) + ", o "
                 + shapeText(a.o) + " do not match " + std::to_string(s.heads) + " heads / " + std::to_string(s.kvHeads)
                 + " KV heads of size " + std::to_string(s.headDim));
}

double absSum(const auto& block) { return block.template cast<double>().cwiseAbs().sum(); }

} // namespace

std::vector<double> attentionGroupImportance(const AttentionWeights& attn, StructuredScore score,
                                             const Eigen::VectorXf* oInputNorm)
{
    checkAttention(attn);
    const AttentionShape& s = attn.shape;
    const int64_t hd = s.headDim, g = s.groupSize();
    if (score == StructuredScore::ActivationAware) {
        if (!oInputNorm)
            fail(ErrorCode::InvalidArgument, "", "activation-aware head scores need the output projection's input norms");
        requireChannelStat(*oInputNorm, attn.o.cols(), "the output projection's input norm");
    }
    std::vector<double> out(static_cast<size_t>(s.kvHeads), 0.0);
    for (int64_t kv = 0; kv < s.kvHeads; ++kv) {
        double sum = 0.0;
        if (score == StructuredScore::Magnitude)
            sum += absSum(attn.k.middleRows(kv * hd, hd)) + absSum(attn.v.middleRows(kv * hd, hd));
        // The group's query heads kv*g .. kv*g + g - 1 own channels [kv*g*hd, (kv+1)*g*hd).
        for (int64_t c = kv * g * hd; c < (kv + 1) * g * hd; ++c) {
            if (score == StructuredScore::Magnitude)
                sum += absSum(attn.q.row(c)) + absSum(attn.o.col(c));
            else // ||X_c|| * ||W_o[:, c]||
                sum += static_cast<double>((*oInputNorm)[c]) * attn.o.col(c).cast<double>().norm();
        }
        out[static_cast<size_t>(kv)] = sum;
    }
    return out;
}

AttentionWeights sliceAttention(const AttentionWeights& attn, const std::vector<int64_t>& keptGroups)
{
    checkAttention(attn);
    const AttentionShape& s = attn.shape;
    const int64_t hd = s.headDim, g = s.groupSize(), kept = static_cast<int64_t>(keptGroups.size());
    for (int64_t kv : keptGroups)
        if (kv < 0 || kv >= s.kvHeads)
            fail(ErrorCode::InvalidArgument, "",
                 "kept KV group " + std::to_string(kv) + " is outside 0.." + std::to_string(s.kvHeads - 1));
    AttentionWeights out;
    out.shape = {kept * g, kept, hd};
    out.q.resize(kept * g * hd, attn.q.cols());
    out.o.resize(attn.o.rows(), kept * g * hd);
    out.k.resize(kept * hd, attn.k.cols());
    out.v.resize(kept * hd, attn.v.cols());
    for (int64_t i = 0; i < kept; ++i) {
        const int64_t kv = keptGroups[static_cast<size_t>(i)];
        out.k.middleRows(i * hd, hd) = attn.k.middleRows(kv * hd, hd);
        out.v.middleRows(i * hd, hd) = attn.v.middleRows(kv * hd, hd);
        out.q.middleRows(i * g * hd, g * hd) = attn.q.middleRows(kv * g * hd, g * hd);
        out.o.middleCols(i * g * hd, g * hd) = attn.o.middleCols(kv * g * hd, g * hd);
    }
    return out;
}

} // namespace ll
