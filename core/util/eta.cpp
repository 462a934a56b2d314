#include "util/eta.h"

#include <cmath>
#include <cstdio>

namespace ll {

std::optional<double> secondsLeft(double elapsedSeconds, double fraction)
{
    if (!std::isfinite(fraction) || !std::isfinite(elapsedSeconds) || fraction <= 0.0 || elapsedSeconds <= 0.0)
        return std::nullopt;
    if (fraction >= 1.0)
        return 0.0;
    return elapsedSeconds * (1.0 - fraction) / fraction;
}

std::string formatClock(double seconds)
{
    if (!std::isfinite(seconds) || seconds < 0.0)
        seconds = 0.0;
    // Rounded up: "0:01 left" until the very end, never "0:00" with work still to do.
    const long long total = static_cast<long long>(std::ceil(seconds - 1e-9));
    const long long h = total / 3600, m = (total / 60) % 60, s = total % 60;
    char buf[32];
    if (h > 0)
        std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
    else
        std::snprintf(buf, sizeof buf, "%lld:%02lld", m, s);
    return buf;
}

std::string formatTimeLeft(std::optional<double> seconds)
{
    return seconds ? formatClock(*seconds) + " left" : std::string();
}

} // namespace ll
