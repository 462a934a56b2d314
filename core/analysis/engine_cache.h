#pragma once
// The F32 engine (ll::Transformer) of the open model, built once by whichever
// job needs it first and shared, read-only, by later jobs: evaluating,
// generating and calibrating the same model do not copy its weights again.
// Thread-safe. The GUI thread says which model is open; an engine built for
// a model that is no longer open is used by its job and then dropped.
#include "engine/transformer.h"
#include "model/model.h"
#include "pipeline/quantize_model.h"

#include <memory>
#include <mutex>

namespace ll {
class Progress;
}

namespace ll {

class EngineCache {
public:
    // GUI thread, on every model change (nullptr: no model); drops the engine.
    // `activations`: the W8A8 simulation engines of this model run (SmoothQuant, LLM.int8).
    void setModel(const std::shared_ptr<const Model>& model, const ActivationQuantization& activations = {});
    // Worker threads: the engine of `model`, built now (progress, cancellable:
    // throws Error(Cancelled)) unless cached. Throws what Transformer throws.
    std::shared_ptr<const Transformer> get(const std::shared_ptr<const Model>& model, Progress* progress);
    bool has(const std::shared_ptr<const Model>& model) const;

private:
    mutable std::mutex mutex_;
    bool isCurrent(const std::shared_ptr<const Model>& model) const; // with the lock held

    std::weak_ptr<const Model> model_;
    ActivationQuantization activations_;
    std::shared_ptr<const Transformer> engine_;
};

} // namespace ll
