#include "terminal_progress.h"

#include <cmath>
#include <cstdio>
#include <unistd.h>

namespace ll::cli {

TerminalProgress::TerminalProgress(Mode mode)
{
    const bool terminal = ::isatty(STDERR_FILENO) != 0;
    inPlace_ = mode == Mode::Auto && terminal;
    lines_ = mode == Mode::Lines;
}

void TerminalProgress::clear()
{
    if (inPlace_ && shown_)
        std::fputs("\r\033[K", stderr);
    shown_ = false;
}

std::string TerminalProgress::line(double fraction, std::string_view what, std::optional<double> secondsLeft)
{
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f %%", 100.0 * (std::isfinite(fraction) ? fraction : 0.0));
    std::string s = pct;
    if (!what.empty())
        s.append("  ").append(what);
    if (const std::string left = formatTimeLeft(secondsLeft); !left.empty())
        s.append(what.empty() ? "  " : ", ").append(left);
    return s;
}

void TerminalProgress::report(double fraction, std::string_view what)
{
    if (!inPlace_ && !lines_)
        return;
    // The engine may report often: print changes only.
    const int permille = static_cast<int>(std::lround(1000.0 * fraction));
    if (permille == lastPermille_ && what == lastWhat_)
        return;
    if (permille < lastPermille_)
        clock_.restart(); // a new phase (a recipe applied, then the export): its own clock
    lastPermille_ = permille;
    lastWhat_.assign(what);
    const std::string text = line(fraction, what, clock_.secondsLeft(fraction));
    if (inPlace_)
        std::fprintf(stderr, "\r\033[K%s", text.c_str());
    else
        std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
    shown_ = true;
}

} // namespace ll::cli
