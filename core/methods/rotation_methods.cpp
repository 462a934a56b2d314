// The rotate action's registry entries. The model-level folding is
// pipeline/rotate_model (a rotation changes every tensor of the model at once,
// not one layer at a time); recipe/apply.cpp runs it.
#include "methods/method_spec.h"

namespace ll {

const MethodSpec& quarotMethod()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Rotate;
        m.id = "quarot";
        m.name = "QuaRot (random Hadamard rotation)";
        m.teaching = {"Rotates the residual stream, each value head and (optionally) down_proj's input by random "
                      "Hadamard matrices folded into the weights. The model computes the same function, but the "
                      "outliers of its weights and activations are spread over every channel, so RTN and GPTQ "
                      "round them better — at 4-bit activations especially. No calibration data.",
                      "W ← W diag(g) Q for the linears after a norm (g ← 1), W ← Qᵀ W for the ones writing the "
                      "residual stream, E ← E Q; Q = D (R ⊗ H) / √k is orthogonal, so x Q Qᵀ Wᵀ = x Wᵀ.",
                      "before RTN or GPTQ at 4 bits or less, and before 4-bit activations (ZeroQuant's per-token "
                      "A4). Apply it first. The online rotation of down_proj's input runs in LayerLab's engine only: "
                      "such a model cannot be exported.",
                      "Ashkboos et al., 2024, QuaRot (arXiv:2404.00456)"};
        ParamSpec seed{"seed", ParamType::Int, "Seed", "the random signs and the odd factor's rotation are drawn from it",
                       0, 2147483647};
        seed.defaultValue = "0";
        seed.advanced = true;
        seed.zeroIsValue = true;
        ParamSpec online{"online", ParamType::Flag, "Rotate down_proj's input online",
                         "also rotate down_proj's input, at run time (needed for 4-bit activations; not exportable)"};
        m.params = {online, seed};
        m.badge = [](const ParamValues& v) {
            return std::string(v.contains("online") && v.flag("online") ? "QuaRot +online" : "QuaRot");
        };
        return m;
    }();
    return spec;
}

} // namespace ll
