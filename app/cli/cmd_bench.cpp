// layerlab-cli bench: figures for the closing notes, never a timed test.
//   open   time to open a generated ~2 GB safetensors model (headers only)
//   stats  statistics + histogram throughput on an 11008x4096 F32 tensor
//          against a plain read of the same bytes, in the same run
#include "args.h"
#include "commands.h"

#include "formats/open_model.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "stats/tensor_stats.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

namespace ll::cli {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Writes a LLaMA-shaped HF folder whose model.safetensors has a real header
// and a sparse data section of the announced size (opening reads headers only).
uint64_t writeSparseModel(const std::string& dir, int layers, int hidden, int ffn, int vocab)
{
    namespace fs = std::filesystem;
    fs::create_directories(dir);
    nlohmann::json header = nlohmann::json::object();
    uint64_t offset = 0;
    auto add = [&](const std::string& name, std::vector<int64_t> shape) {
        uint64_t n = 2; // F16
        for (auto d : shape)
            n *= static_cast<uint64_t>(d);
        header[name] = {{"dtype", "F16"}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
        offset += n;
    };
    add("model.embed_tokens.weight", {vocab, hidden});
    for (int l = 0; l < layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", {hidden});
        for (const char* n : {"q_proj", "k_proj", "v_proj", "o_proj"})
            add(p + "self_attn." + n + ".weight", {hidden, hidden});
        add(p + "post_attention_layernorm.weight", {hidden});
        add(p + "mlp.gate_proj.weight", {ffn, hidden});
        add(p + "mlp.up_proj.weight", {ffn, hidden});
        add(p + "mlp.down_proj.weight", {hidden, ffn});
    }
    add("model.norm.weight", {hidden});
    add("lm_head.weight", {vocab, hidden});
    const std::string text = header.dump();
    const std::string file = dir + "/model.safetensors";
    {
        std::ofstream out(file, std::ios::binary);
        uint64_t len = text.size();
        for (int i = 0; i < 8; ++i)
            out.put(static_cast<char>((len >> (8 * i)) & 0xff));
        out << text;
    }
    std::filesystem::resize_file(file, 8 + text.size() + offset);
    nlohmann::json config{{"model_type", "llama"}, {"hidden_size", hidden}, {"intermediate_size", ffn},
                          {"num_hidden_layers", layers}, {"num_attention_heads", hidden / 64},
                          {"vocab_size", vocab}, {"torch_dtype", "float16"}};
    std::ofstream(dir + "/config.json") << config.dump(1);
    return 8 + text.size() + offset;
}

int benchOpen(const Args& a)
{
    const std::string dir = a.valueOr("dir", (std::filesystem::temp_directory_path() / "layerlab-bench-open").string());
    const uint64_t bytes = writeSparseModel(dir, 22, 2048, 5632, 32000); // TinyLlama-1.1B shapes, F16: ~2.2 GB
    const int reps = 20;
    double best = 1e9, total = 0;
    int64_t params = 0;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = Clock::now();
        auto m = openModel(dir);
        const double s = secondsSince(t0);
        params = m->parameterCount();
        best = std::min(best, s);
        total += s;
    }
    std::filesystem::remove_all(dir);
    std::printf("open: %.2f GB safetensors (%lld parameters, 22 layers): best %.2f ms, mean %.2f ms over %d opens\n",
                static_cast<double>(bytes) / 1e9, static_cast<long long>(params), best * 1e3, total / reps * 1e3, reps);
    return 0;
}

// The baseline: a plain summing read of the same floats, 16 lanes so the compiler vectorises it.
float plainRead(const float* x, size_t n)
{
    float lanes[16] = {};
    const size_t full = n - n % 16;
    for (size_t i = 0; i < full; i += 16)
        for (int l = 0; l < 16; ++l)
            lanes[l] += x[i + l];
    float s = 0;
    for (float v : lanes)
        s += v;
    for (size_t i = full; i < n; ++i)
        s += x[i];
    return s;
}

int benchStats(const Args& a)
{
    const int64_t rows = 11008, cols = 4096;
    const size_t n = static_cast<size_t>(rows * cols);
    std::vector<float> w(n);
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; ++i) { // heavy-ish tails: sum of uniforms cubed
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const float u = static_cast<float>(static_cast<int32_t>(state >> 32)) * (1.0f / 2147483648.0f);
        w[i] = 0.02f * u * u * u + 0.01f * u;
    }
    const int reps = static_cast<int>(a.intOr("reps", 5, 1, 1000));
    const double gb = static_cast<double>(n) * 4 / 1e9;
    auto best = [&](auto&& fn) {
        double b = 1e9;
        for (int r = 0; r < reps; ++r) {
            const auto t0 = Clock::now();
            fn();
            b = std::min(b, secondsSince(t0));
        }
        return b;
    };
    volatile float sink = 0;
    const double tRead = best([&] { sink = sink + plainRead(w.data(), n); });
    StatsOptions one;
    one.threads = 1;
    one.bins = 128;
    StatsOptions all = one;
    all.threads = 0;
    // Diagnostic only: the same read split over all threads (the memory bandwidth the threaded stats can reach).
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    const double tReadN = best([&] {
        std::vector<float> parts(hw);
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < hw; ++t)
            pool.emplace_back([&, t] { parts[t] = plainRead(w.data() + n * t / hw, n * (t + 1) / hw - n * t / hw); });
        for (auto& th : pool)
            th.join();
        for (float p : parts)
            sink = sink + p;
    });
    const double tStats1 = best([&] { sink = sink + static_cast<float>(computeStats(w, one).mean); });
    const double tStatsN = best([&] { sink = sink + static_cast<float>(computeStats(w, all).mean); });
    std::printf("stats: %lldx%lld F32 (%.2f GB), best of %d\n", static_cast<long long>(rows), static_cast<long long>(cols), gb, reps);
    std::printf("  plain read (1 thread)        %7.1f ms  %6.2f GB/s  (baseline)\n", tRead * 1e3, gb / tRead);
    std::printf("  plain read (%u threads)       %7.1f ms  %6.2f GB/s  (diagnostic)\n", hw, tReadN * 1e3, gb / tReadN);
    std::printf("  stats+histogram (1 thread)   %7.1f ms  %6.2f GB/s  ratio %.2f\n", tStats1 * 1e3, gb / tStats1, tRead / tStats1);
    std::printf("  stats+histogram (%u threads)  %7.1f ms  %6.2f GB/s  ratio %.2f\n", std::thread::hardware_concurrency(),
                tStatsN * 1e3, gb / tStatsN, tRead / tStatsN);
    return 0;
}

} // namespace

int cmdBench(const std::vector<std::string>& argv)
{
    const Args a(argv, {"dir", "reps"}, {});
    const std::string what = a.positionalAt(0, "benchmark name (open | stats)");
    if (what == "open")
        return benchOpen(a);
    if (what == "stats")
        return benchStats(a);
    throw UsageError("unknown benchmark '" + what + "' (open | stats)");
}

} // namespace ll::cli
