#pragma once
// The process's memory and the machine's, read from /proc (Linux), for the
// status bar and for the check before a job starts. Parsing is separate from
// reading so that tests can feed sample texts.
#include <QByteArray>

#include <optional>

namespace ll::gui {

// From /proc/self/status, in bytes (the file gives kB).
struct ProcessMemory {
    double rss = 0.0;        // VmRSS: resident, the mapped model's pages included
    double rssAnon = 0.0;    // RssAnon: the process's own memory (heap, activations, edited layers)
    double rssFile = 0.0;    // RssFile: resident pages of mapped files (the model)
    double peakRss = 0.0;    // VmHWM
    bool valid = false;      // VmRSS was found
};
ProcessMemory parseProcStatus(const QByteArray& text);
// MemAvailable from /proc/meminfo, in bytes; nothing when absent.
std::optional<double> parseMemAvailable(const QByteArray& meminfo);

ProcessMemory readProcessMemory();
// MemAvailable now, or the test override; nothing where /proc cannot be read.
std::optional<double> availableMemory();
// Tests: pretend the machine has this much available (nothing: read /proc again).
void setAvailableMemoryOverride(std::optional<double> bytes);

// The machine's throughput for time estimates: the last one measured (an
// evaluation's FLOPs over its seconds), else core's kAssumedGflops.
double machineGflops();
void recordThroughput(double flops, double seconds);
// Tests: sets the measured rate (0: back to the assumed one).
void setMeasuredGflops(double gflops);

} // namespace ll::gui
