#pragma once
// The one-line progress of a long command on stderr: "35 %  window 14 of 40,
// 1:23 left". On a terminal the line is rewritten in place; elsewhere it is
// silent unless asked for (--progress: one line per update, for logs and tests).
// A fraction that goes back starts a new phase with its own clock.
// It is a CancelFlag, so a Ctrl-C handler can stop the operation cleanly.
#include "util/eta.h"
#include "util/progress.h"

#include <string>
#include <string_view>

namespace ll::cli {

class TerminalProgress : public CancelFlag {
public:
    enum class Mode { Auto, Lines, Off };
    explicit TerminalProgress(Mode mode = Mode::Auto);
    ~TerminalProgress() override { clear(); }
    // Erases the progress line (before printing results).
    void clear();
    void report(double fraction, std::string_view what) override;

    // The text of one update: "35 %  window 14 of 40, 1:23 left".
    static std::string line(double fraction, std::string_view what, std::optional<double> secondsLeft);

private:
    bool inPlace_ = false;   // a terminal: rewrite the line
    bool lines_ = false;     // not a terminal but asked for: one line each
    bool shown_ = false;
    int lastPermille_ = -1;
    std::string lastWhat_;
    EtaClock clock_;
};

} // namespace ll::cli
