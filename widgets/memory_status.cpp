#include "memory_status.h"

#include "format.h"

#include "util/spill_buffer.h"

#include <QTimer>

namespace ll::gui {

MemoryStatus::MemoryStatus(QWidget* parent) : QLabel(parent), timer_(new QTimer(this))
{
    setObjectName(QStringLiteral("memoryStatus"));
    setContentsMargins(8, 0, 8, 0);
    timer_->setInterval(kIntervalMs);
    connect(timer_, &QTimer::timeout, this, &MemoryStatus::refresh);
    timer_->start();
    refresh();
}

QString MemoryStatus::format(const ProcessMemory& p)
{
    if (!p.valid)
        return QString();
    return tr("RSS %1 · own %2").arg(formatBytes(static_cast<uint64_t>(p.rss)), formatBytes(static_cast<uint64_t>(p.rssAnon)));
}

void MemoryStatus::showReading(const ProcessMemory& p, std::optional<double> available)
{
    setText(format(p));
    QString tip = tr("Memory of this process: resident %1 (the mapped model file's pages %2, LayerLab's own %3); "
                     "peak %4.")
                      .arg(formatBytes(static_cast<uint64_t>(p.rss)), formatBytes(static_cast<uint64_t>(p.rssFile)),
                           formatBytes(static_cast<uint64_t>(p.rssAnon)), formatBytes(static_cast<uint64_t>(p.peakRss)));
    // Compressed layers and the undo history: in memory up to the edit budget, then in temporary files.
    tip += tr("\nCompressed layers and undo history: %1 in memory (budget %2), %3 in temporary files.")
               .arg(formatBytes(editBytesInMemory()), formatBytes(editMemoryBudget()), formatBytes(editBytesSpilled()));
    if (available)
        tip += tr("\nAvailable on this machine: %1.").arg(formatBytes(static_cast<uint64_t>(*available)));
    setToolTip(tip);
}

void MemoryStatus::refresh()
{
    showReading(readProcessMemory(), availableMemory());
}

} // namespace ll::gui
