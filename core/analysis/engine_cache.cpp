#include "analysis/engine_cache.h"

#include "util/progress.h"

namespace ll {

bool EngineCache::isCurrent(const std::shared_ptr<const Model>& model) const
{
    // Same control block, not just the same address (a new model may reuse a freed one's).
    return model && !model_.owner_before(model) && !model.owner_before(model_);
}

void EngineCache::setModel(const std::shared_ptr<const Model>& model, const ActivationQuantization& activations)
{
    std::shared_ptr<const Transformer> old;
    std::lock_guard lock(mutex_);
    if (isCurrent(model))
        return;
    model_ = model;
    activations_ = activations;
    old = std::move(engine_); // freed here, or by the last job still using it
}

bool EngineCache::has(const std::shared_ptr<const Model>& model) const
{
    std::lock_guard lock(mutex_);
    return isCurrent(model) && engine_;
}

std::shared_ptr<const Transformer> EngineCache::get(const std::shared_ptr<const Model>& model, Progress* progress)
{
    ActivationQuantization activations;
    {
        std::lock_guard lock(mutex_);
        if (isCurrent(model) && engine_)
            return engine_;
        if (isCurrent(model))
            activations = activations_;
    }
    // Built without the lock: a second job asking meanwhile builds its own
    // (rare: the jobs of one model usually start one after the other).
    auto engine = std::make_shared<Transformer>(*model, progress);
    throwIfCancelled(progress);
    if (!activations.empty())
        applyActivationQuantization(*engine, activations);
    std::shared_ptr<const Transformer> built = std::move(engine);
    std::lock_guard lock(mutex_);
    if (isCurrent(model) && !engine_)
        engine_ = built;
    return built;
}

} // namespace ll
