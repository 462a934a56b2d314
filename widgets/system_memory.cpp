#include "system_memory.h"

#include "analysis/model_cost.h"

#include <QFile>
#include <QList>

#include <mutex>

namespace ll::gui {

namespace {

// "VmRSS:\t  123456 kB" -> 123456 * 1024 for `key`.
std::optional<double> fieldKb(const QByteArray& text, const QByteArray& key)
{
    for (const QByteArray& line : text.split('\n')) {
        if (!line.startsWith(key) || line.size() <= key.size() || line.at(key.size()) != ':')
            continue;
        const QList<QByteArray> parts = line.mid(key.size() + 1).simplified().split(' ');
        bool ok = false;
        const double v = parts.value(0).toDouble(&ok);
        if (!ok)
            return std::nullopt;
        const QByteArray unit = parts.value(1).toLower();
        return unit == "kb" ? v * 1024.0 : unit == "mb" ? v * 1024.0 * 1024.0 : v;
    }
    return std::nullopt;
}

QByteArray readAll(const char* path)
{
    QFile f(QString::fromLatin1(path));
    // /proc files report size 0: read until the end.
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

std::mutex gMutex;
std::optional<double> gAvailableOverride;
double gMeasuredGflops = 0.0;

} // namespace

ProcessMemory parseProcStatus(const QByteArray& text)
{
    ProcessMemory m;
    if (const auto v = fieldKb(text, "VmRSS")) {
        m.rss = *v;
        m.valid = true;
    }
    m.rssAnon = fieldKb(text, "RssAnon").value_or(0.0);
    m.rssFile = fieldKb(text, "RssFile").value_or(0.0);
    m.peakRss = fieldKb(text, "VmHWM").value_or(m.rss);
    return m;
}

std::optional<double> parseMemAvailable(const QByteArray& meminfo)
{
    return fieldKb(meminfo, "MemAvailable");
}

ProcessMemory readProcessMemory()
{
    return parseProcStatus(readAll("/proc/self/status"));
}

std::optional<double> availableMemory()
{
    {
        std::lock_guard lock(gMutex);
        if (gAvailableOverride)
            return gAvailableOverride;
    }
    return parseMemAvailable(readAll("/proc/meminfo"));
}

void setAvailableMemoryOverride(std::optional<double> bytes)
{
    std::lock_guard lock(gMutex);
    gAvailableOverride = bytes;
}

double machineGflops()
{
    std::lock_guard lock(gMutex);
    return gMeasuredGflops > 0.0 ? gMeasuredGflops : kAssumedGflops;
}

void recordThroughput(double flops, double seconds)
{
    // Short runs measure start-up more than throughput.
    if (flops <= 0.0 || seconds < 0.5)
        return;
    std::lock_guard lock(gMutex);
    gMeasuredGflops = flops / seconds / 1e9;
}

void setMeasuredGflops(double gflops)
{
    std::lock_guard lock(gMutex);
    gMeasuredGflops = gflops;
}

} // namespace ll::gui
