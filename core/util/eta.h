#pragma once
// Time left of a long operation, from the time it has taken so far and the
// share of it that is done: elapsed × (1 − f) / f. Shared by the CLI's
// terminal progress line and the GUI's job progress ("window 12 of 40,
// 1:23 left"). No estimate before the first step has finished (f = 0): the
// first batch includes start-up costs, and a guess from nothing is noise.
#include <chrono>
#include <optional>
#include <string>

namespace ll {

// Seconds left, or nothing while `fraction` is 0 (or not finite) or no time has passed.
std::optional<double> secondsLeft(double elapsedSeconds, double fraction);

// "0:07", "1:23", "12:05", "1:02:03" (hours only when needed); negative or
// non-finite values read as 0:00.
std::string formatClock(double seconds);
// "1:23 left", or "" when there is no estimate.
std::string formatTimeLeft(std::optional<double> seconds);

// The clock of one operation: started on construction (or restart()).
class EtaClock {
public:
    using Clock = std::chrono::steady_clock;
    EtaClock() : start_(Clock::now()) {}
    void restart() { start_ = Clock::now(); }
    double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
    std::optional<double> secondsLeft(double fraction) const { return ll::secondsLeft(elapsed(), fraction); }

private:
    Clock::time_point start_;
};

} // namespace ll
