// ZeroQuant's fine-grained scheme (Yao et al., 2022, arXiv:2206.01861):
// symmetric group-wise weights and token-wise dynamic activations. The weights
// are RTN's symmetric grid per group of input columns; the activations of every
// linear are quantized per token (absmax of the token's row) at run time by the
// engine's input hook (pipeline/quantize_model: ActivationQuantization), so a
// perplexity measured after this step is W<bits>A<act-bits>.
#include "methods/method_registry.h"
#include "quant/quant_method.h"

namespace ll {

namespace {

QuantizedLayer runZeroQuant(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* progress)
{
    QuantizedLayer out = requireMethodSpec(StepAction::Quantize, std::string(QuantMethod::Rtn)).quantize(W, c, in, progress);
    out.method = "zeroquant " + c.grid.label() + " a" + std::to_string(c.actBits);
    return out;
}

} // namespace

const MethodSpec& zeroQuantMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.id = "zeroquant";
        m.name = "ZeroQuant (W·A per token)";
        m.teaching = {"Quantizes the weights on a symmetric grid per group of input columns and, at run time, every "
                      "linear's input per token, each token with its own scale: a perplexity measured afterwards "
                      "is the W·A model's (W4A8, W4A4, W8A8).",
                      "w&#770; = s<sub>g</sub> · round(w / s<sub>g</sub>), s<sub>g</sub> = max<sub>g</sub>|w| / "
                      "(2<sup>b−1</sup> − 1); x&#770; = s<sub>t</sub> · round(x / s<sub>t</sub>), s<sub>t</sub> = "
                      "max|x<sub>t</sub>| / (2<sup>a−1</sup> − 1) for each token t.",
                      "you want to see what integer activations cost; 8-bit activations are nearly free, 4-bit "
                      "ones need a rotation first (QuaRot).",
                      "Yao et al., 2022, ZeroQuant (arXiv:2206.01861)"};
        ParamSpec bits{"bits", ParamType::Int, "Bits", "bits per weight", 2, 8};
        bits.defaultValue = "8";
        ParamSpec group{"group", ParamType::Int, "Groups", "input columns per scale (0: per row)", 0, 1 << 20};
        group.defaultValue = "128";
        group.presets = {{"0", "per row"}, {"64", "groups of 64"}, {"128", "groups of 128"}};
        group.presetLabel = "groups of {}";
        ParamSpec act{"act-bits", ParamType::Int, "Activation bits", "bits per activation, one scale per token", 2, 16};
        act.defaultValue = "8";
        m.params = {bits, group, act};
        m.simulatesActivations = true;
        m.quantize = runZeroQuant;
        m.configure = [](const ParamValues& p, QuantConfig& c) {
            c.grid.symmetric = true;
            c.actBits = static_cast<int>(p.integer("act-bits"));
        };
        m.label = [](const QuantConfig& c) { return "zeroquant " + c.grid.label() + " a" + std::to_string(c.actBits); };
        m.badge = [](const ParamValues& v) {
            return "ZeroQuant W" + v.text("bits") + "A" + v.text("act-bits")
                   + (v.text("group") == "0" ? std::string(" row") : " g" + v.text("group"));
        };
        return m;
    }();
    return spec;
}

} // namespace ll
