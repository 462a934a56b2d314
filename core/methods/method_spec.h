#pragma once
// One compression method, described once (MethodSpec): its id, its action,
// its name and teaching text, the typed schema of its parameters, what
// statistics it needs, and for quantization the per-layer run function. The
// CLI's usage and --help, recipe validation, the GUI's forms and teaching box,
// badges, the docs' method table and the tests all read these entries from
// the registry (method_registry.h); nothing else lists methods.
#include "methods/method_params.h"
#include "model/tensor_data.h"

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ll {

class Progress;
struct QuantConfig;
struct LayerInputs;
struct QuantizedLayer;

// Rotate: an orthogonal change of basis folded into the whole model (QuaRot);
// it computes the same function and prepares the weights for the others.
// KvCache: run-time quantization of the attention's key/value cache (KIVI); no weight changes.
enum class StepAction { Quantize, Prune, Factorize, Rotate, KvCache };
std::string_view actionName(StepAction a); // "quantize", "prune", "factorize", "rotate", "kv-cache"

enum class ParamType {
    Int,    // an integer in [min, max]
    Real,   // a finite number in [min, max]
    Flag,   // true / false (a CLI flag)
    Choice, // one of `choices` (case-insensitive; stored as written in `choices`)
    Text,   // free text checked by the method (nm's "2:4")
};

struct ParamSpec {
    ParamSpec() = default;
    ParamSpec(std::string key_, ParamType type_, std::string label_, std::string help_, double min_ = 0, double max_ = 0)
        : key(std::move(key_)), type(type_), label(std::move(label_)), help(std::move(help_)), min(min_), max(max_)
    {
    }

    std::string key;                  // recipe and CLI key: "bits", "act-order"
    ParamType type = ParamType::Int;
    std::string label;                // the form's label: "Bits"
    std::string help;                 // one line for --help and the form's tooltip
    double min = 0, max = 0;          // Int and Real: the accepted range, inclusive
    std::string defaultValue;         // as text; empty: absent unless given (a Flag: false)
    std::string suggested;            // a form's starting value where there is no default (sparsity 0.5)
    bool required = false;            // must be given (no default)
    std::vector<std::string> choices; // Choice: the accepted values
    // Values the GUI offers in a list (value, label), e.g. group 0 "per row";
    // empty: a spin box, a check box, or the choices.
    std::vector<std::pair<std::string, std::string>> presets;
    // The label of a value off that list ("groups of {}" for group 256); empty: the value itself.
    std::string presetLabel;
    bool percent = false;             // a fraction the GUI shows as a percentage
    std::string onlyWith;             // applies only when this key is given (ratio: structured)
    std::vector<std::string> notWith; // does not apply when one of these is given (sparsity: nm)
    bool advanced = false;            // shown after the main parameters
    bool zeroIsValue = false;         // an Int whose 0 is a value like any other (a seed), not "off"
    // What the step reads when this parameter is given and not 0 (LoRC's rank: the
    // correction is fitted to the calibration inputs), on top of the method's `needs`.
    unsigned needsWhenSet = 0;        // MethodNeeds bits
};

// Statistics of the layer's calibration inputs a method reads (LayerInputs).
enum MethodNeeds : unsigned {
    kNeedsNothing = 0,
    kNeedsGram = 1u << 0,     // X^T X
    kNeedsMeanAbs = 1u << 1,  // mean |x_j|
    kNeedsMaxAbs = 1u << 2,   // max |x_j|
    kNeedsSamples = 1u << 3,  // the captured input rows
    kNeedsAsymmetry = 1u << 4, // Σ (x̃ − x)ᵀ x against the full-precision model's inputs (GPTAQ; sequential)
    kNeedsHiddenStates = 1u << 5, // the hidden states between blocks (ShortGPT's block influence)
};

// One (out, in) layer's cost to a method, for the cost model's estimates of
// time and memory (analysis/model_cost).
struct MethodWork {
    double flops = 0.0;     // floating-point operations
    double workBytes = 0.0; // temporaries beyond the F32 copies of W (a Hessian and its inverse)
};
// A full SVD of an (out, in) matrix: about 4·out·in·min + 8·min³ flops, U, V and
// an (in, in) matrix of temporaries. What every low-rank method costs at least.
MethodWork svdWork(double out, double in);
// An OBS sweep over the columns (GPTQ's family, SparseGPT): the column-by-column
// update 2·out·in² and the Cholesky inverse of the in × in Hessian, which it
// holds twice.
MethodWork obsSweepWork(double out, double in);

struct MethodTeaching {
    std::string what;     // what it does
    std::string formula;  // the defining equation in plain words
    std::string when;     // when to use it
    std::string citation; // "Frantar et al., 2022 (arXiv:2210.17323)"; empty for folklore
};

// The linears that read one input (q, k, v / o / gate, up / down), for the
// methods whose transform belongs to that input (MethodSpec::quantizeGroup).
struct LinearGroup {
    std::vector<const MatrixRM*> weights;
    std::vector<Role> roles;          // each weight's role, in order
    // Whether a scale of the input can be divided out of the op that makes it:
    // the norm before q, k, v and gate, up (SmoothQuant, OS+ fold there only);
    // for AWQ also v before o and up before down. Otherwise the layers keep an
    // explicit input scale.
    bool scaleFoldsIntoNorm = true;
    bool scaleFolds = true;
};

struct MethodSpec {
    StepAction action = StepAction::Quantize;
    std::string id;                   // as in recipes and on the command line: "gptq", "svd-llm"
    std::string name;                 // "GPTQ"
    MethodTeaching teaching;          // rich text allowed (HTML entities, <sub>)
    std::vector<ParamSpec> params;
    unsigned needs = kNeedsNothing;   // MethodNeeds bits
    bool needsOptional = false;       // reads `needs` when calibration is given, runs without (ggml's importance)
    bool simulatesActivations = false; // W8A8: evaluation quantizes the activations as well
    bool sequentialByDefault = false; // statistics "auto": measured again after each block (the GPTQ family)
    std::vector<std::string> ignoredKeys; // older recipes wrote these; accepted and ignored (nf4's group)
    // Non-empty: the step rebuilds the whole model and takes no layer pattern;
    // what it acts on, as the recipe list says it ("whole blocks", "the hidden size").
    std::string wholeModelScope;

    // Quantization. `configure` fills QuantConfig's typed fields of a built-in
    // method from its checked parameters; a new method reads QuantConfig::params.
    QuantizedLayer (*quantize)(const MatrixRM& W, const QuantConfig& c, const LayerInputs& in, Progress* p) = nullptr;
    // Methods whose transform belongs to the input, not to one linear (SmoothQuant's
    // and OS+'s scale folded into the norm before q, k and v must be the same for
    // the three; AWQ searches one scale for them; RPTQ's clusters describe the
    // input): quantizes every linear that reads `in` together, one result per
    // weight in order. Null: `quantize` per linear. A method with only this hook
    // runs one linear alone as a group of one (roles Other, scales folding).
    std::vector<QuantizedLayer> (*quantizeGroup)(const LinearGroup& g, const QuantConfig& c, const LayerInputs& in,
                                                 Progress* p) = nullptr;
    void (*configure)(const ParamValues& p, QuantConfig& c) = nullptr;
    std::string (*label)(const QuantConfig& c) = nullptr;     // results: "gptq w4 asym g32"; default "<id> <grid>"
    std::string (*badge)(const ParamValues& p) = nullptr;     // the tree: "GPTQ 4b g32"; default per action
    double (*bitsPerWeight)(const QuantConfig& c, double cols) = nullptr; // estimate; default the grid's
    // Its work on one (out, in) layer (the step's checked parameters). Null: a
    // scale and a rounding per weight (quantizers), a score and a partial sort
    // per weight (pruning), svdWork (low rank).
    MethodWork (*work)(const ParamValues& p, double out, double in) = nullptr;

    const ParamSpec* param(const std::string& key) const;
    bool takes(const std::string& key) const { return param(key) != nullptr; }
    // Cannot run without calibration statistics.
    bool needsCalibration() const { return needs != kNeedsNothing && !needsOptional; }
    // What a step with these parameters reads: `needs`, plus the needsWhenSet of
    // every parameter given and not 0 / false (LoRC's rank, OliVe's act-bits).
    unsigned needsFor(const ParamValues& v) const;
};

} // namespace ll
