#include "pipeline/layer_driver.h"

#include "engine/transformer.h"
#include "engine/weights.h"
#include "model/tensor_data.h"
#include "util/progress.h"

#include <map>
#include <set>

namespace ll {

namespace {

// The block's targets grouped by the input they read, inputs in the block's order.
std::vector<InputGroup> groupsOfBlock(const std::vector<const LogicalTensor*>& targets, int block)
{
    std::vector<InputGroup> groups;
    for (const Role input : {Role::AttnQ, Role::AttnO, Role::MlpUp, Role::MlpDown}) {
        InputGroup g;
        g.block = block;
        g.inputRole = input;
        for (const LogicalTensor* t : targets)
            if (t->block == block && inputRoleOf(t->role) == input)
                g.tensors.push_back(t);
        if (!g.tensors.empty())
            groups.push_back(std::move(g));
    }
    return groups;
}

} // namespace

CalibrationMode resolveStatsMode(StatsMode mode, CalibrationMode methodDefault)
{
    switch (mode) {
    case StatsMode::OneShot: return CalibrationMode::OneShot;
    case StatsMode::Sequential: return CalibrationMode::Sequential;
    case StatsMode::Auto: break;
    }
    return methodDefault;
}

void compressTargets(const Model& source, const std::vector<const LogicalTensor*>& targets,
                     std::span<const int32_t> calibrationTokens, const LayerDriverOptions& options,
                     ModelCompressionResult& r, const GroupCompressor& compress, Progress* progress)
{
    std::map<const LogicalTensor*, LayerOutcome> outcomes;
    const auto keep = [&](const InputGroup& g, std::vector<LayerOutcome> done) {
        if (done.size() != g.tensors.size())
            fail(ErrorCode::InvalidArgument, source.path, "a method returned " + std::to_string(done.size()) + " results for "
                                                       + std::to_string(g.tensors.size()) + " linears");
        for (size_t i = 0; i < done.size(); ++i)
            outcomes[g.tensors[i]] = std::move(done[i]);
    };

    if (calibrationTokens.empty()) {
        r.statsMode = "none";
        for (size_t i = 0; i < targets.size(); ++i) {
            throwIfCancelled(progress);
            const LogicalTensor& t = *targets[i];
            InputGroup g;
            g.block = t.block;
            g.inputRole = inputRoleOf(t.role);
            g.tensors = {&t};
            g.weights.push_back(readMatrix(source, t));
            SubProgress sub(progress, static_cast<double>(i) / static_cast<double>(targets.size()),
                            static_cast<double>(i + 1) / static_cast<double>(targets.size()));
            keep(g, compress(g, &sub));
        }
    } else {
        r.statsMode = calibrationModeName(options.mode);
        const std::vector<int32_t> windows = calibrationWindows(calibrationTokens, options.calibration);
        r.calibrationTokens = static_cast<int64_t>(windows.size());
        SubProgress loading(progress, 0.0, 0.05);
        Transformer engine(source, &loading);
        if (options.beforePasses)
            options.beforePasses(engine, windows);

        std::set<int> blockSet;
        for (const LogicalTensor* t : targets)
            blockSet.insert(t->block);
        const std::vector<int> blocks(blockSet.begin(), blockSet.end());
        BlockStatsOptions bo;
        bo.calibration = options.calibration;
        bo.mode = options.mode;
        bo.gram = options.gram;
        bo.times = &r.times;
        bo.asymmetric = options.asymmetric;
        SubProgress passes(progress, 0.05, 1.0);
        forEachBlockStats(
            engine, windows, blocks, bo,
            [&](int block, std::vector<InputStats>& stats, Progress* blockProgress) {
                std::vector<InputGroup> groups = groupsOfBlock(targets, block);
                for (size_t gi = 0; gi < groups.size(); ++gi) {
                    InputGroup& g = groups[gi];
                    for (InputStats& s : stats)
                        if (s.role == g.inputRole && s.tokens > 0)
                            g.stats = &s;
                    if (options.requireStats && !g.stats)
                        fail(ErrorCode::InvalidArgument, source.path,
                             "no calibration statistics reached " + g.tensors.front()->logicalName);
                    g.engine = &engine;
                    for (const LogicalTensor* t : g.tensors)
                        g.weights.push_back(engine.linear(block, t->role).dense());
                    SubProgress sub(blockProgress, static_cast<double>(gi) / static_cast<double>(groups.size()),
                                    static_cast<double>(gi + 1) / static_cast<double>(groups.size()));
                    keep(g, compress(g, &sub));
                }
                // Only now: every linear of the block saw the block's uncompressed inputs.
                // The engine computes with what the model now stores (no F32 copy kept).
                if (options.mode == CalibrationMode::Sequential)
                    for (const InputGroup& g : groups)
                        for (const LogicalTensor* t : g.tensors)
                            engine.setLinear(block, t->role,
                                             loadLinearWeights(*r.model, *r.model->findLogical(t->logicalName)));
            },
            &passes);
    }
    for (const LogicalTensor* t : targets)
        if (auto it = outcomes.find(t); it != outcomes.end())
            r.layers.push_back(std::move(it->second));
}

} // namespace ll
