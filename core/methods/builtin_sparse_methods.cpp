// The registry entries of pruning (core/prune) and low-rank factorization
// (core/lowrank). Their runs stay in the model-level drivers of
// core/pipeline, which read the options step_options.cpp builds.
#include "methods/method_registry.h"

#include <cmath>

namespace ll {

namespace {

MethodTeaching teaching(const char* what, const char* formula, const char* when, const char* citation = "")
{
    return {what, formula, when, citation};
}

std::vector<ParamSpec> pruneParams(bool structured, bool obs)
{
    ParamSpec sparsity{"sparsity", ParamType::Real, "Sparsity", "share of each layer's weights set to zero", 0, 1};
    sparsity.percent = true;
    sparsity.suggested = "0.5"; // no default: how much to prune is the user's to say
    sparsity.notWith = {"nm", "structured"};
    ParamSpec nm{"nm", ParamType::Text, "Pattern", "keep N of every M consecutive weights of a row (N:M, e.g. 2:4)"};
    nm.presets = {{"", "unstructured"}, {"2:4", "2:4"}, {"4:8", "4:8"}};
    nm.notWith = {"structured"};
    std::vector<ParamSpec> params{sparsity, nm};
    if (structured) {
        ParamSpec unit{"structured", ParamType::Choice, "Remove",
                       "remove whole MLP neurons or attention KV groups, the same count in every block"};
        unit.choices = {"neurons", "heads"};
        unit.presets = {{"", "single weights"}, {"neurons", "MLP neurons"}, {"heads", "attention heads"}};
        ParamSpec ratio{"ratio", ParamType::Real, "Remove share", "share of the units removed", 0, 0.999999};
        ratio.percent = true;
        ratio.defaultValue = "0.25";
        ratio.onlyWith = "structured";
        params.push_back(unit);
        params.push_back(ratio);
    }
    if (obs) {
        ParamSpec block{"blocksize", ParamType::Int, "Block size", "columns pruned together", 1, 1 << 20};
        block.defaultValue = "128";
        block.advanced = true;
        ParamSpec damp{"damp", ParamType::Real, "Dampening", "added to the Hessian's diagonal, as a fraction of its mean",
                       0, 1e9};
        damp.defaultValue = "0.01";
        damp.advanced = true;
        params.push_back(block);
        params.push_back(damp);
    }
    return params;
}

std::vector<ParamSpec> factorizeParams(bool asvd)
{
    ParamSpec rank{"rank-ratio", ParamType::Real, "Rank", "kept rank as a share of min(out, in)", 0, 1};
    rank.percent = true;
    rank.suggested = "0.5";
    rank.notWith = {"energy"};
    ParamSpec energy{"energy", ParamType::Real, "Energy", "smallest rank keeping this share of the squared singular values",
                     0, 1};
    energy.percent = true;
    energy.notWith = {"rank-ratio"};
    energy.advanced = true;
    std::vector<ParamSpec> params{rank, energy};
    if (asvd) {
        ParamSpec alpha{"alpha", ParamType::Real, "α", "scaling strength s = mean|x|^α", 0, 1e9};
        alpha.defaultValue = "0.5";
        alpha.advanced = true;
        params.push_back(alpha);
    }
    return params;
}

const MethodSpec& specMagnitude()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Prune;
        m.id = "magnitude";
        m.name = "Magnitude";
        m.teaching = teaching("Removes the weights with the smallest absolute value.",
                              "keep the largest |w|; the rest becomes exactly 0.",
                              "a quick baseline; it ignores how strongly each input is used.",
                              "Han et al., 2015 (arXiv:1506.02626)");
        m.params = pruneParams(true, false);
        return m;
    }();
    return spec;
}

const MethodSpec& specWanda()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Prune;
        m.id = "wanda";
        m.name = "Wanda";
        m.teaching = teaching("Pruning by weights and activations, compared within each output row.",
                              "score = |W<sub>ij</sub>| · ‖X<sub>j</sub>‖₂; the lowest scores of every row go.",
                              "you want calibrated pruning without weight updates; strong at 50 % and 2:4.",
                              "Sun et al., 2023, Wanda (arXiv:2306.11695)");
        m.params = pruneParams(true, false);
        m.needs = kNeedsGram;
        m.sequentialByDefault = true; // as the pruning driver runs it (pipeline/model_compression.cpp)
        return m;
    }();
    return spec;
}

const MethodSpec& specShortGpt()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Prune;
        m.id = "shortgpt";
        m.name = "ShortGPT (remove whole blocks)";
        m.teaching = teaching("Removes whole transformer blocks: the ones whose output hidden states are most like "
                              "their input, measured on the calibration text. The model gets shallower; later "
                              "blocks move up, and exports describe the shorter model.",
                              "Block Influence BI<sub>i</sub> = 1 − mean<sub>t</sub> cos(x<sub>i,t</sub>, "
                              "x<sub>i+1,t</sub>) over the tokens t, x<sub>i</sub> block i's input; the blocks with "
                              "the lowest BI go.",
                              "you need a smaller, faster model and can afford some quality: each block removed saves "
                              "1/L of the compute and weights. The last block and the first rarely go.",
                              "Men et al., 2024, ShortGPT (arXiv:2403.03853)");
        ParamSpec blocks{"blocks", ParamType::Int, "Blocks", "how many blocks to remove", 1, 4096};
        blocks.defaultValue = "1";
        m.params = {blocks};
        m.needs = kNeedsHiddenStates;
        m.wholeModelScope = "whole blocks";
        m.badge = [](const ParamValues& v) { return "ShortGPT −" + v.text("blocks") + (v.integer("blocks") == 1 ? " block" : " blocks"); };
        return m;
    }();
    return spec;
}

const MethodSpec& specSliceGpt()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Prune;
        m.id = "slicegpt";
        m.name = "SliceGPT (smaller hidden size)";
        m.teaching = teaching("Rotates the residual stream onto its principal directions on the calibration text, "
                              "then deletes the least used ones: every matrix loses rows or columns, the embedding "
                              "gets narrower, and the model exports with a smaller hidden size.",
                              "Q = eigenvectors of Σ x̂ᵀx̂ (normalised hidden states); keep Q<sub>k</sub>: E ← E Q<sub>k</sub>, "
                              "readers W ← W diag(g) Q<sub>k</sub>, writers W ← Q<sub>k</sub>ᵀ W, k = (1 − slicing)·d.",
                              "you want fewer parameters in every matrix with a model that any tool still loads; "
                              "10–25 % slicing costs little on large models.",
                              "Ashkboos et al., 2024, SliceGPT (arXiv:2401.15024)");
        ParamSpec slicing{"slicing", ParamType::Real, "Slicing", "share of the hidden dimensions removed", 0, 0.95};
        slicing.percent = true;
        slicing.defaultValue = "0.25";
        m.params = {slicing};
        m.needs = kNeedsHiddenStates;
        m.wholeModelScope = "the hidden size";
        m.badge = [](const ParamValues& v) {
            return "SliceGPT " + std::to_string(static_cast<int>(std::lround(100.0 * v.real("slicing")))) + " %";
        };
        return m;
    }();
    return spec;
}

const MethodSpec& specFlap()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Prune;
        m.id = "flap";
        m.name = "FLAP (heads and neurons, bias compensated)";
        m.teaching = teaching("Removes whole attention KV groups and MLP neurons whose inputs to o_proj and down_proj "
                              "barely change from token to token, and moves their average contribution into a bias: "
                              "no retraining, and the model keeps a plain layout that transformers and llama.cpp load.",
                              "score<sub>j</sub> = Var<sub>t</sub>(x<sub>j</sub>) · ‖W[:, j]‖² of the output projection's "
                              "input channel j (a head: the sum over its channels); the lowest go, and "
                              "b ← b + Σ<sub>removed</sub> W[:, j] · mean<sub>t</sub>(x<sub>j</sub>). Adaptive: each "
                              "block's scores standardized, one threshold over both modules decides how many heads and "
                              "neurons go.",
                              "you want a smaller, faster dense model than unstructured sparsity gives; 10–20 % costs "
                              "less than magnitude or Wanda-style structured pruning.",
                              "An et al., 2024, FLAP (arXiv:2312.11983)");
        ParamSpec ratio{"ratio", ParamType::Real, "Remove share", "share of the attention and MLP weights removed", 0, 0.95};
        ratio.percent = true;
        ratio.defaultValue = "0.2";
        ParamSpec structure{"structure", ParamType::Choice, "Structure",
                            "adaptive: the standardized scores decide the split between heads and neurons; uniform: "
                            "the same share of each"};
        structure.choices = {"adaptive", "uniform"};
        structure.defaultValue = "adaptive";
        structure.advanced = true;
        ParamSpec noBias{"no-bias", ParamType::Flag, "No bias compensation", "remove without moving the means into biases"};
        noBias.advanced = true;
        m.params = {ratio, structure, noBias};
        m.needs = kNeedsHiddenStates;
        m.wholeModelScope = "heads and neurons of every block";
        m.badge = [](const ParamValues& v) {
            return "FLAP " + std::to_string(static_cast<int>(std::lround(100.0 * v.real("ratio")))) + " %";
        };
        return m;
    }();
    return spec;
}

const MethodSpec& specSparseGpt()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Prune;
        m.id = "sparsegpt";
        m.name = "SparseGPT";
        m.teaching = teaching("One-shot pruning with weight reconstruction: the weights that remain are updated to "
                              "compensate for the removed ones.",
                              "per block of 128 columns, remove the weights with the lowest w² / H⁻¹[j, j] and update "
                              "the rest by the OBS formula.",
                              "high sparsity (60 % and more) where Wanda degrades.",
                              "Frantar & Alistarh, 2023, SparseGPT (arXiv:2301.00774)");
        m.params = pruneParams(false, true);
        m.needs = kNeedsGram;
        m.sequentialByDefault = true;
        m.work = [](const ParamValues&, double out, double in) { return obsSweepWork(out, in); };
        return m;
    }();
    return spec;
}

const MethodSpec& specSvd()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Factorize;
        m.id = "svd";
        m.name = "SVD (truncated)";
        m.teaching = teaching("Replaces W by its best rank-k approximation A · B (two thin matrices).",
                              "W ≈ U<sub>k</sub> Σ<sub>k</sub> V<sub>k</sub>ᵀ; parameters drop from out·in to "
                              "k·(out + in).",
                              "the spectrum decays fast; look at the singular values first.",
                              "Eckart & Young, 1936");
        m.params = factorizeParams(false);
        return m;
    }();
    return spec;
}

const MethodSpec& specAsvd()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Factorize;
        m.id = "asvd";
        m.name = "ASVD (activation-aware)";
        m.teaching = teaching("Scales the input channels by their mean activation before the SVD.",
                              "decompose W · diag(s), s = mean|x|<sup>α</sup>, and undo the scaling in B.",
                              "activations have strong channels that a plain SVD would ignore.",
                              "Yuan et al., 2023, ASVD (arXiv:2312.05821)");
        m.params = factorizeParams(true);
        m.needs = kNeedsGram | kNeedsMeanAbs;
        m.work = [](const ParamValues&, double out, double in) {
            MethodWork w = svdWork(out, in);
            w.flops += 2.0 * in * in * in; // the whitening (scaling, Cholesky) of the in × in statistics
            return w;
        };
        return m;
    }();
    return spec;
}

const MethodSpec& specSvdLlm()
{
    static const MethodSpec spec = [] {
        MethodSpec m;
        m.action = StepAction::Factorize;
        m.id = "svd-llm";
        m.name = "SVD-LLM (whitened)";
        m.teaching = teaching("Truncation-aware whitening: the SVD of W · L, with L the Cholesky factor of XᵀX, so "
                              "that truncation directly minimises the output error.",
                              "dropping σ<sub>i</sub> costs exactly σ<sub>i</sub>² of ‖(W − W&#770;) X‖².",
                              "the best low-rank quality per parameter, given calibration text.",
                              "Wang et al., 2024, SVD-LLM (arXiv:2403.07378)");
        m.params = factorizeParams(false);
        m.needs = kNeedsGram;
        m.work = [](const ParamValues&, double out, double in) {
            MethodWork w = svdWork(out, in);
            w.flops += 2.0 * in * in * in; // the whitening (scaling, Cholesky) of the in × in statistics
            return w;
        };
        return m;
    }();
    return spec;
}

} // namespace

std::vector<const MethodSpec*> builtinPruneMethods() { return {&specMagnitude(), &specWanda(), &specSparseGpt(), &specShortGpt(), &specSliceGpt(), &specFlap()}; }

std::vector<const MethodSpec*> builtinFactorizeMethods() { return {&specSvd(), &specAsvd(), &specSvdLlm()}; }

} // namespace ll
