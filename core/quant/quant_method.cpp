#include "quant/quant_method.h"

#include "prune/sub_progress.h"
#include "quant/awq.h"
#include "quant/bcq.h"
#include "quant/fp4.h"
#include "quant/fp8.h"
#include "quant/minifloat.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/gptq.h"
#include "quant/int8_outlier.h"
#include "quant/lorc.h"
#include "quant/nf4.h"
#include "quant/outlier_aware.h"
#include "quant/rtn.h"
#include "quant/smoothquant.h"
#include "util/error.h"
#include "util/half.h"
#include "util/progress.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace ll {

namespace {

struct MethodName {
    QuantMethod method;
    const char* name;
};
constexpr MethodName kNames[] = {
    {QuantMethod::Rtn, "rtn"},   {QuantMethod::Gptq, "gptq"}, {QuantMethod::Awq, "awq"},
    {QuantMethod::SmoothQuant, "smoothquant"}, {QuantMethod::Int8, "int8"}, {QuantMethod::Owq, "owq"},
    {QuantMethod::Spqr, "spqr"}, {QuantMethod::Bcq, "bcq"},   {QuantMethod::Nf4, "nf4"},
    {QuantMethod::Fp8, "fp8"},   {QuantMethod::Fp4, "fp4"},   {QuantMethod::Ggml, "ggml"},
};

GptqOptions gptqOptions(const QuantConfig& c)
{
    GptqOptions g;
    g.grid = c.grid;
    g.blockSize = c.blockSize;
    g.percDamp = c.percDamp;
    g.actOrder = c.actOrder;
    g.staticGroups = c.staticGroups;
    return g;
}

QuantizedLayer fromRtn(const MatrixRM& W, const QuantGrid& grid, const QuantInputs& in)
{
    RtnResult r = rtnQuantize(W, grid);
    QuantizedLayer out;
    out.method = "rtn " + grid.label();
    out.packed.format = PackedQuant::Format::IntGrid;
    out.packed.bits = grid.bits;
    out.packed.codes = std::move(r.codes);
    out.packed.grid = std::move(r.params);
    addGridBits(out.bits, grid, W.rows(), W.cols(), W.size());
    finishQuantizedLayer(out, W, std::move(r.dequantized), in);
    return out;
}

// Formats with their own packing (codes and bits from their modules; not dequantizePacked's).
QuantizedLayer fromDense(const MatrixRM& W, MatrixRM What, std::vector<uint8_t> codes, int codeBits, double bitsPerWeight,
                         std::string method, const QuantInputs& in)
{
    QuantizedLayer out;
    out.method = std::move(method);
    out.packed.format = PackedQuant::Format::Dense;
    out.packed.bits = codeBits;
    out.packed.codes = std::move(codes);
    const double n = static_cast<double>(W.size());
    out.bits.codes = std::min(bitsPerWeight, static_cast<double>(codeBits)) * n;
    out.bits.scales = std::max(0.0, bitsPerWeight - codeBits) * n;
    finishQuantizedLayer(out, W, std::move(What), in);
    return out;
}

QuantizedLayer runMethod(const MatrixRM& W, const QuantConfig& c, const QuantInputs& in, Progress* progress)
{
    switch (c.method) {
    case QuantMethod::Rtn:
        return fromRtn(W, c.grid, in);
    case QuantMethod::Gptq:
        return gptqLayer(W, in, gptqOptions(c), progress);
    case QuantMethod::Awq: {
        AwqOptions o;
        o.grid = c.grid;
        o.searchScale = c.awqSearchScale;
        o.clip = c.awqClip;
        o.scaleGridPoints = c.awqGridPoints;
        o.clipGridPoints = c.awqGridPoints;
        return awqQuantize(W, in, o, nullptr, progress);
    }
    case QuantMethod::SmoothQuant: {
        SmoothQuantOptions o;
        o.alpha = c.smoothAlpha;
        o.foldable = c.smoothFoldable;
        o.actBits = c.actBits;
        return smoothQuantLayer(W, in, o);
    }
    case QuantMethod::Int8: {
        Int8OutlierOptions o;
        o.threshold = c.int8Threshold;
        o.topK = c.int8TopK;
        o.actBits = c.actBits;
        return int8OutlierQuantize(W, in, o);
    }
    case QuantMethod::Owq: {
        OutlierAwareOptions o;
        o.gptq = gptqOptions(c);
        o.useGptq = c.outlierBaseGptq;
        o.columns = c.owqColumns > 0 ? c.owqColumns : std::max<int64_t>(1, static_cast<int64_t>(std::llround(0.01 * static_cast<double>(W.cols()))));
        return owqQuantize(W, in, o, progress);
    }
    case QuantMethod::Spqr: {
        OutlierAwareOptions o;
        o.gptq = gptqOptions(c);
        o.useGptq = c.outlierBaseGptq;
        o.fraction = c.spqrFraction;
        return spqrQuantize(W, in, o, progress);
    }
    case QuantMethod::Bcq: {
        BcqOptions o;
        o.bits = c.grid.bits;
        o.groupSize = std::max(0, c.grid.groupSize);
        o.iterations = c.bcqIterations;
        return bcqQuantize(W, o, in);
    }
    case QuantMethod::Nf4: {
        const Nf4Options o;
        Nf4Result r = nf4Quantize(W);
        MatrixRM What = Eigen::Map<const MatrixRM>(r.dequantized.data(), W.rows(), W.cols());
        QuantizedLayer out = fromDense(W, std::move(What), std::move(r.codes), 4, r.bitsPerWeight, "nf4", in);
        // bitsandbytes' blocks run over the flattened matrix: a row of whole blocks is a grid row.
        if (W.cols() % o.blockSize == 0) {
            const int64_t groups = W.cols() / o.blockSize;
            out.packed.codebook.assign(kNf4Levels, kNf4Levels + 16);
            out.packed.grid.groupCols = o.blockSize;
            out.packed.grid.scales = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(r.absmax.data(), W.rows(), groups);
        }
        return out;
    }
    case QuantMethod::Fp8: {
        Fp8Result r = fp8Quantize(W, c.fp8Format, true);
        std::vector<float> scales = std::move(r.scales);
        QuantizedLayer out = fromDense(W, std::move(r.dequantized), std::move(r.codes), 8, r.bitsPerWeight,
                                       c.fp8Format == Fp8Format::E4M3 ? "fp8 e4m3" : "fp8 e5m2", in);
        if (static_cast<int64_t>(scales.size()) == W.rows()) { // per channel: one group per row
            for (int code = 0; code < 256; ++code)
                out.packed.codebook.push_back(fp8Decode(static_cast<uint8_t>(code), c.fp8Format));
            out.packed.grid.groupCols = W.cols();
            out.packed.grid.scales = Eigen::Map<const Eigen::MatrixXf>(scales.data(), W.rows(), 1);
        }
        return out;
    }
    case QuantMethod::Fp4: {
        Fp4Options o;
        o.groupSize = c.grid.groupSize > 0 ? c.grid.groupSize : 0;
        Fp4Result r = fp4Quantize(W, o);
        Eigen::MatrixXf fp4Scales = std::move(r.scales);
        std::string name = "fp4 e2m1 ";
        if (o.groupSize > 0) {
            name += 'g';
            name += std::to_string(o.groupSize);
        } else {
            name += "row";
        }
        QuantizedLayer out = fromDense(W, std::move(r.dequantized), std::move(r.codes), 4, r.bitsPerWeight, name, in);
        if (fp4Scales.rows() == W.rows()) {
            for (int code = 0; code < 16; ++code)
                out.packed.codebook.push_back(decodeMiniFloat(static_cast<uint8_t>(code), formatE2M1()));
            out.packed.grid.groupCols = o.groupSize > 0 ? o.groupSize : W.cols();
            out.packed.grid.scales = std::move(fp4Scales);
        }
        return out;
    }
    case QuantMethod::Ggml: {
        if (!canQuantizeGgml(c.ggmlType))
            fail(ErrorCode::InvalidArgument, "", "cannot quantize to ggml type " + std::string(dtypeName(c.ggmlType)));
        // Rows that do not fill the type's blocks take llama-quantize's fallback
        // type; the label names it so the caller can tell the user.
        const DType type = ggmlFallbackType(c.ggmlType, W.cols());
        std::string label = "ggml " + std::string(dtypeName(type));
        if (type != c.ggmlType)
            label += " (fallback for " + std::string(dtypeName(c.ggmlType)) + ": rows of " + std::to_string(W.cols()) + ")";
        if (type == DType::F16) {
            MatrixRM What(W.rows(), W.cols());
            std::vector<uint8_t> bytes(static_cast<size_t>(W.size()) * 2);
            for (Eigen::Index i = 0; i < W.size(); ++i) {
                const uint16_t h = floatToFp16(W.data()[i]);
                std::memcpy(bytes.data() + 2 * i, &h, 2);
                What.data()[i] = fp16ToFloat(h);
            }
            QuantizedLayer q = fromDense(W, std::move(What), std::move(bytes), 16, 16.0, label, in);
            q.packed.storedType = DType::F16;
            return q;
        }
        std::vector<float> importance;
        if (c.ggmlImportance && in.gram) {
            importance.resize(static_cast<size_t>(W.cols()));
            for (Eigen::Index j = 0; j < W.cols(); ++j)
                importance[static_cast<size_t>(j)] = std::max(0.0f, (*in.gram)(j, j));
        }
        std::vector<uint8_t> blocks = quantizeGgmlRows(type, W.data(), W.rows(), W.cols(),
                                                       importance.empty() ? nullptr : importance.data());
        MatrixRM What(W.rows(), W.cols());
        dequantizeGgml(type, blocks.data(), What.data(), W.size());
        QuantizedLayer q = fromDense(W, std::move(What), std::move(blocks), 8, ggmlBitsPerWeight(type), label, in);
        q.packed.storedType = type;
        return q;
    }
    }
    fail(ErrorCode::InvalidArgument, "", "unknown quantization method");
}

} // namespace

const char* quantMethodName(QuantMethod m)
{
    for (const MethodName& n : kNames)
        if (n.method == m)
            return n.name;
    return "?";
}

std::optional<QuantMethod> parseQuantMethod(const std::string& name)
{
    for (const MethodName& n : kNames)
        if (name == n.name)
            return n.method;
    return std::nullopt;
}

bool quantMethodNeedsCalibration(QuantMethod m)
{
    switch (m) {
    case QuantMethod::Gptq:
    case QuantMethod::Awq:
    case QuantMethod::SmoothQuant:
    case QuantMethod::Int8:
    case QuantMethod::Owq:
    case QuantMethod::Spqr:
        return true;
    default:
        return false;
    }
}

std::string QuantConfig::label() const
{
    std::ostringstream s;
    s << quantMethodName(method);
    switch (method) {
    case QuantMethod::Rtn:
    case QuantMethod::Awq:
        s << ' ' << grid.label();
        break;
    case QuantMethod::Gptq:
    case QuantMethod::Owq:
    case QuantMethod::Spqr:
        s << ' ' << grid.label() << (actOrder ? " act-order" : "") << (staticGroups ? " static" : "");
        break;
    case QuantMethod::SmoothQuant:
        s << " a" << smoothAlpha << " w8a" << actBits;
        break;
    case QuantMethod::Int8:
        s << (int8TopK > 0 ? " top" + std::to_string(int8TopK) : " t" + std::to_string(int8Threshold).substr(0, 3));
        break;
    case QuantMethod::Bcq:
        s << " b" << grid.bits << (grid.groupSize > 0 ? " g" + std::to_string(grid.groupSize) : std::string(" row"));
        break;
    case QuantMethod::Fp8:
        s << (fp8Format == Fp8Format::E4M3 ? " e4m3" : " e5m2");
        break;
    case QuantMethod::Fp4:
        s << (grid.groupSize > 0 ? " g" + std::to_string(grid.groupSize) : std::string(" row"));
        break;
    case QuantMethod::Ggml:
        s << ' ' << dtypeName(ggmlType);
        break;
    case QuantMethod::Nf4:
        break;
    }
    if (lorcRank > 0)
        s << " + lorc r" << lorcRank;
    return s.str();
}

QuantizedLayer quantizeLayer(const MatrixRM& W, const QuantConfig& c, const QuantInputs& in, Progress* progress)
{
    throwIfCancelled(progress);
    if (c.lorcRank <= 0)
        return runMethod(W, c, in, progress);
    SubProgress base(progress, 0.0, 0.8), svd(progress, 0.8, 1.0);
    return lorcCorrect(W, runMethod(W, c, in, &base), c.lorcRank, in, &svd);
}

std::vector<int> defaultBitSteps() { return {2, 3, 4, 5, 6, 7, 8}; }
std::vector<int> defaultGroupSizeSteps() { return {32, 64, 128, 0}; }

namespace {

template <class Vary>
std::vector<ErrorCurvePoint> curve(const MatrixRM& W, const QuantConfig& config, const std::vector<int>& xs,
                                   const QuantInputs& in, Progress* progress, Vary vary)
{
    std::vector<ErrorCurvePoint> out;
    for (size_t i = 0; i < xs.size(); ++i) {
        throwIfCancelled(progress);
        QuantConfig c = config;
        vary(c, xs[i]);
        SubProgress sub(progress, static_cast<double>(i) / static_cast<double>(xs.size()),
                        static_cast<double>(i + 1) / static_cast<double>(xs.size()));
        const QuantizedLayer q = quantizeLayer(W, c, in, &sub);
        out.push_back(curvePoint(static_cast<double>(xs[i]), q));
    }
    if (progress)
        progress->report(1.0, "error curve");
    return out;
}

} // namespace

std::vector<ErrorCurvePoint> quantErrorVsBits(const MatrixRM& W, const QuantConfig& config, const std::vector<int>& bits,
                                              const QuantInputs& in, Progress* progress)
{
    return curve(W, config, bits, in, progress, [](QuantConfig& c, int b) { c.grid.bits = b; });
}

std::vector<ErrorCurvePoint> quantErrorVsGroupSize(const MatrixRM& W, const QuantConfig& config,
                                                   const std::vector<int>& groupSizes, const QuantInputs& in,
                                                   Progress* progress)
{
    return curve(W, config, groupSizes, in, progress, [](QuantConfig& c, int g) {
        c.grid.groupSize = g;
        if (g <= 0)
            c.staticGroups = false;
    });
}

} // namespace ll
