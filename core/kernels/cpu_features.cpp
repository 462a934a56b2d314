#include "kernels/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace ll {

namespace {

CpuFeatures detect()
{
    CpuFeatures f;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    // F16C has no __builtin_cpu_supports name in GCC 12: CPUID leaf 1, ECX bit 29.
    unsigned eax = 1, ebx = 0, ecx = 0, edx = 0;
    __asm__("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "c"(0));
    f.f16c = (ecx >> 29) & 1u;
#endif
    return f;
}

KernelLevel bestLevel(const CpuFeatures& f)
{
    if (!f.avx512())
        return KernelLevel::Portable;
    return f.avx512bf16 ? KernelLevel::Avx512Bf16 : KernelLevel::Avx512;
}

KernelLevel initialLevel()
{
    const KernelLevel best = bestLevel(hostCpu());
    const char* env = std::getenv("LAYERLAB_KERNELS");
    if (env && std::strcmp(env, "portable") == 0)
        return KernelLevel::Portable;
    if (env && std::strcmp(env, "avx512") == 0 && best != KernelLevel::Portable)
        return KernelLevel::Avx512;
    return best;
}

std::atomic<int>& levelSlot()
{
    static std::atomic<int> level{static_cast<int>(initialLevel())};
    return level;
}

} // namespace

const CpuFeatures& hostCpu()
{
    static const CpuFeatures f = detect();
    return f;
}

KernelLevel kernelLevel()
{
    return static_cast<KernelLevel>(levelSlot().load(std::memory_order_relaxed));
}

KernelLevel setKernelLevel(KernelLevel wanted)
{
    const KernelLevel best = bestLevel(hostCpu());
    const KernelLevel level = static_cast<int>(wanted) > static_cast<int>(best) ? best : wanted;
    levelSlot().store(static_cast<int>(level));
    return level;
}

const char* kernelLevelName(KernelLevel level)
{
    switch (level) {
    case KernelLevel::Portable: return "portable";
    case KernelLevel::Avx512: return "avx512";
    case KernelLevel::Avx512Bf16: return "avx512-bf16";
    }
    return "?";
}

} // namespace ll
