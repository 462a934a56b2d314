#pragma once
// Progress and cancellation for long operations. The core never blocks on a
// GUI: callers pass an implementation (a Qt bridge, a CLI bar, or nothing).
#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>

namespace ll {

class Progress {
public:
    virtual ~Progress() = default;
    // fraction in [0, 1]; `what` names the current step.
    virtual void report(double fraction, std::string_view what) { (void)fraction; (void)what; }
    virtual bool cancelled() const { return false; }
};

// A progress sink that only carries a cancel flag, settable from any thread.
class CancelFlag : public Progress {
public:
    void cancel() { flag_.store(true); }
    bool cancelled() const override { return flag_.load(); }

private:
    std::atomic<bool> flag_{false};
};

// Progress of one step of a longer operation: maps the step's [0, 1] onto
// [from, to] of the parent and forwards cancellation. With `what`, the parent
// is told that instead of the step's own description.
class SubProgress : public Progress {
public:
    SubProgress(Progress* parent, double from, double to, std::string what = {})
        : parent_(parent), from_(from), to_(to), what_(std::move(what))
    {
    }
    void report(double fraction, std::string_view what) override
    {
        if (parent_)
            parent_->report(from_ + (to_ - from_) * std::clamp(fraction, 0.0, 1.0), what_.empty() ? what : what_);
    }
    bool cancelled() const override { return parent_ && parent_->cancelled(); }

private:
    Progress* parent_;
    double from_, to_;
    std::string what_;
};

// Throws Error(Cancelled) when the user asked to stop.
void throwIfCancelled(const Progress* progress);

} // namespace ll
