#pragma once
// The one model-level driver of the per-layer methods (quantization in
// quantize_model.cpp; pruning and low rank in model_compression.cpp). It walks
// the target linears, hands each method the linears that read one block input
// together with that input's calibration statistics, keeps the outcomes in the
// model's order, and in sequential mode loads each block's new weights into
// the calibration engine before the next block's statistics are gathered.
//
//   without calibration tokens   every target alone, its weights read from the
//                                source, no statistics
//   with them                    block by block (calib/forEachBlockStats): the
//                                block's targets grouped by input (q, k, v / o /
//                                gate, up / down), each group with its InputStats
#include "pipeline/compression_result.h"
#include "pipeline/model_compression.h"
#include "util/error.h"

#include <functional>
#include <span>
#include <vector>

namespace ll {

class Progress;
class Transformer;

// The targets of one block that read one input, as a method receives them.
struct InputGroup {
    int block = -1;
    Role inputRole = Role::Other;              // AttnQ (q, k, v), AttnO, MlpUp (gate, up), MlpDown
    std::vector<const LogicalTensor*> tensors; // in the model's order
    std::vector<MatrixRM> weights;             // each one's weights as the method starts from them (F32)
    InputStats* stats = nullptr;               // the input's statistics; null without calibration tokens
    const Transformer* engine = nullptr;       // the calibration engine; null without calibration tokens
};

struct LayerDriverOptions {
    CalibrationOptions calibration;
    CalibrationMode mode = CalibrationMode::OneShot;
    bool gram = true;          // gather XᵀX (second-order methods, and every output error)
    bool asymmetric = false;   // GPTAQ's second stream of full-precision inputs (sequential)
    bool requireStats = false; // a group whose input saw no calibration token is an error
    // With calibration tokens: called once with the engine and the windows,
    // before the statistics passes (W8A8's capture of input samples).
    std::function<void(Transformer& engine, std::span<const int32_t> windows)> beforePasses;
};

// The statistics mode a step asked for, or the method's default for "auto".
CalibrationMode resolveStatsMode(StatsMode mode, CalibrationMode methodDefault);

// Compresses one group: stores the new weights in the result's model and
// returns one outcome per tensor of the group, in order.
using GroupCompressor = std::function<std::vector<LayerOutcome>(InputGroup& group, Progress* progress)>;

// Runs `compress` over `targets` (selectTargets) and appends the outcomes to
// r.layers in the targets' order; sets r.statsMode ("none", "one-shot",
// "sequential"), r.calibrationTokens and r.times. `calibrationTokens`: the
// whole tokenized text (its first windows are used) or empty. Cancellable.
void compressTargets(const Model& source, const std::vector<const LogicalTensor*>& targets,
                     std::span<const int32_t> calibrationTokens, const LayerDriverOptions& options,
                     ModelCompressionResult& r, const GroupCompressor& compress, Progress* progress);

// Runs f; an InvalidArgument it throws names the layer.
template <class F>
auto namingLayer(const std::string& name, F f)
{
    try {
        return f();
    } catch (const Error& e) {
        if (e.code() != ErrorCode::InvalidArgument)
            throw;
        fail(ErrorCode::InvalidArgument, e.file(), name + ": " + e.problem());
    }
}

} // namespace ll
