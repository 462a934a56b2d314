#pragma once
// One compression step's parameters, read the same way from the command line
// (layerlab-cli quantize / prune / factorize) and from a recipe file, so that a
// recipe replays exactly what the CLI or the GUI did. Each method's parameters
// are checked against its schema in the registry (methods/method_registry.h);
// bad values throw Error(InvalidArgument) with a message that names the key.
#include "methods/method_params.h"
#include "pipeline/model_compression.h"
#include "pipeline/quantize_model.h"
#include "pipeline/remove_blocks.h"
#include "pipeline/rotate_model.h"
#include "pipeline/flap_model.h"
#include "pipeline/slice_model.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>

namespace ll {

// Parameters some method of each action accepts (besides "method" and
// "layers"), from the registry (methods/method_registry.h).
const std::set<std::string>& quantizeKeys();
const std::set<std::string>& pruneKeys();
const std::set<std::string>& factorizeKeys();
const std::set<std::string>& rotateKeys();
const std::set<std::string>& kvCacheKeys();

// --method rtn|gptq|... and its parameters; "layers" and "stats" included.
QuantizeModelOptions quantizeOptionsFrom(const ParamSource& p);

// Pruning is unstructured / N:M (pruneModel) or structured (pruneMlpNeurons,
// pruneAttentionHeads), chosen by "structured".
struct PruneStepOptions {
    enum class Kind { Unstructured, Neurons, Heads, Blocks, Hidden, Flap } kind = Kind::Unstructured;
    ModelPruneOptions unstructured;
    StructuredMlpOptions neurons;
    StructuredAttentionOptions heads;
    BlockRemovalOptions blocks;       // ShortGPT
    SliceOptions slice;               // SliceGPT
    FlapOptions flap;                 // FLAP
    bool needsCalibration = false;
};
PruneStepOptions pruneOptionsFrom(const ParamSource& p);

ModelFactorizeOptions factorizeOptionsFrom(const ParamSource& p);

RotationOptions rotationOptionsFrom(const ParamSource& p);

// --method kivi|llm-qat and its parameters (no layers: the cache of every block).
KvCacheQuantization kvCacheOptionsFrom(const ParamSource& p);

// Calibration windows for every action: "calib-ctx" (256), "calib-windows" (64).
CalibrationOptions calibrationOptionsFrom(const ParamSource& p);
StatsMode statsModeFrom(const ParamSource& p);

} // namespace ll
