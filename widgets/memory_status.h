#pragma once
// The status bar's memory reading: the process's resident memory and its own
// (anonymous) part, refreshed every 1.5 s from /proc/self/status; the tooltip
// adds the peak and what the machine has available. Reading /proc costs
// microseconds, so the timer runs on the GUI thread.
#include "system_memory.h"

#include <QLabel>

class QTimer;

namespace ll::gui {

class MemoryStatus : public QLabel {
    Q_OBJECT
public:
    static constexpr int kIntervalMs = 1500;
    explicit MemoryStatus(QWidget* parent = nullptr);

    // Shows a reading (the timer calls it with /proc's; tests with theirs).
    void showReading(const ProcessMemory& process, std::optional<double> available);
    // "RSS 1.23 GB · own 0.41 GB"
    static QString format(const ProcessMemory& process);
    void refresh();

private:
    QTimer* timer_;
};

} // namespace ll::gui
