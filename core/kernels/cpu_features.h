#pragma once
// What the CPU running LayerLab can do, read once at run time. The fast
// kernels (kernels/*_avx512.cpp) are compiled for AVX-512 whatever the build
// flags say and are only called when the CPU has it, so one binary runs on any
// x86-64 and uses the wide instructions where they exist.
namespace ll {

struct CpuFeatures {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
    bool avx512bf16 = false, avx512vnni = false;

    // F, BW, VL, DQ with FMA and F16C: what the AVX-512 kernels need.
    bool avx512() const { return avx512f && avx512bw && avx512vl && avx512dq && fma && f16c; }
};

// The host CPU's features.
const CpuFeatures& hostCpu();

// Which kernels the process uses. Tests and benchmarks switch to Portable to
// compare the fast paths with the scalar references on the same machine;
// LAYERLAB_KERNELS=portable in the environment does the same at start-up.
enum class KernelLevel { Portable, Avx512, Avx512Bf16 };
KernelLevel kernelLevel();
// Clamped to what the CPU has; returns the level now in force.
KernelLevel setKernelLevel(KernelLevel wanted);
const char* kernelLevelName(KernelLevel level);

} // namespace ll
