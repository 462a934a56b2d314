#include "quant/quant_method.h"

#include "methods/method_registry.h"
#include "quant/eora.h"
#include "quant/lorc.h"
#include "util/error.h"
#include "util/progress.h"

#include <sstream>

namespace ll {

namespace {

QuantizedLayer runMethod(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    const MethodSpec& spec = requireMethodSpec(StepAction::Quantize, c.method);
    if (spec.quantize)
        return spec.quantize(W, c, in, progress);
    if (spec.quantizeGroup) { // one linear alone: a group of one
        LinearGroup g;
        g.weights = {&W};
        g.roles = {Role::Other};
        return std::move(spec.quantizeGroup(g, c, in, progress).front());
    }
    fail(ErrorCode::InvalidArgument, "", "quantization method " + c.method + " has no run function");
}

} // namespace

bool QuantConfig::simulatesActivations() const
{
    return actBits > 0 && requireMethodSpec(StepAction::Quantize, method).simulatesActivations;
}

std::string QuantConfig::label() const
{
    const MethodSpec* spec = findMethodSpec(StepAction::Quantize, method);
    std::string s = method;
    if (spec && spec->label)
        s = spec->label(*this);
    else if (spec && spec->takes("bits"))
        s.append(" ").append(grid.label());
    // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
    if (lorcRank > 0)
        s.append(" + lorc r").append(std::to_string(lorcRank));
    if (eoraRank > 0)
        s.append(" + eora r").append(std::to_string(eoraRank));
    return s;
}

QuantizedLayer quantizeLayer(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    throwIfCancelled(progress);
    if (c.lorcRank <= 0 && c.eoraRank <= 0)
        return runMethod(W, c, in, progress);
    SubProgress base(progress, 0.0, 0.8), svd(progress, 0.8, 1.0);
    return lowRankCorrect(W, runMethod(W, c, in, &base), c, in, &svd);
}

QuantizedLayer lowRankCorrect(const MatrixRM& W, QuantizedLayer q, const QuantConfig& c, const LayerInputs& in,
                              Progress* progress)
{
    if (c.eoraRank > 0)
        return eoraCorrect(W, std::move(q), c.eoraRank, in, progress);
    if (c.lorcRank > 0)
        return lorcCorrect(W, std::move(q), c.lorcRank, in, progress);
    return q;
}

std::vector<int> defaultBitSteps() { return {2, 3, 4, 5, 6, 7, 8}; }
std::vector<int> defaultGroupSizeSteps() { return {32, 64, 128, 0}; }

namespace {

template <class Vary>
std::vector<ErrorCurvePoint> curve(const MatrixRM& W, const QuantConfig& config, const std::vector<int>& xs,
                                   const LayerInputs& in, Progress* progress, Vary vary)
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
                                              const LayerInputs& in, Progress* progress)
{
    return curve(W, config, bits, in, progress, [](QuantConfig& c, int b) { c.grid.bits = b; });
}

std::vector<ErrorCurvePoint> quantErrorVsGroupSize(const MatrixRM& W, const QuantConfig& config,
                                                   const std::vector<int>& groupSizes, const LayerInputs& in,
                                                   Progress* progress)
{
    return curve(W, config, groupSizes, in, progress, [](QuantConfig& c, int g) {
        c.grid.groupSize = g;
        if (g <= 0)
            c.staticGroups = false;
    });
}

} // namespace ll
