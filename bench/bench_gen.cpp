// layerlab-bench gen: writes a synthetic Hugging Face checkpoint with a real
// model's shapes (bench/synth/synthetic_checkpoint.h), for benchmarks that need
// a 1B or 7B model where none can be downloaded, and prints the write speed.
//
//   layerlab-bench gen --shape llama2-7b|llama3-8b|llama3.2-1b|smollm-135m|tiny
//                      --dtype bf16|f16|f32 --out DIR [--seed N] [--shard-gb G]
//                      [--tokenizer PATH] [--layers N] [--hidden H] [--intermediate F] [--vocab V] [--no-rope-scaling] [--threads T] [--chunk-mb M] [--force]
//
// --shard-gb G     shard limit in GB of 10^9 bytes (transformers' max_shard_size; default 5)
// --tokenizer PATH the real pieces of the vocabulary (llama2.c tok*.bin or a SentencePiece-style
//                  tokenizer.json), padded to the shape's vocabulary; default: built-in pieces
// --layers N       fewer (or more) blocks than the real model
// --hidden, --intermediate, --vocab   other widths (head_dim and the GQA group kept)
// --no-rope-scaling plain rotary frequencies instead of the shape's rope_scaling (llama3.2-1b's
//                  "llama3" scaling, which LayerLab's GGUF export does not write yet)
// --threads T      threads generating values (default 2); --chunk-mb M: MB generated and written at a time (4)
#include "bench.h"

#include "synthetic_checkpoint.h"

#include "util/error.h"
#include "util/progress.h"

#include <cstdio>
#include <string>

namespace ll::bench {

namespace {

// Prints "  40 % writing model.layers.12..." each time another 10 % is done.
class PercentPrinter : public Progress {
public:
    void report(double fraction, std::string_view what) override
    {
        const int tenth = static_cast<int>(fraction * 10.0);
        if (tenth <= last_)
            return;
        last_ = tenth;
        std::fprintf(stderr, "  %3d %% %.*s\n", tenth * 10, static_cast<int>(what.size()), what.data());
    }

private:
    int last_ = 0;
};

DType dtypeOption(const std::string& s)
{
    if (s == "bf16") return DType::BF16;
    if (s == "f16") return DType::F16;
    if (s == "f32") return DType::F32;
    fail(ErrorCode::InvalidArgument, "", "--dtype must be bf16, f16 or f32, not '" + s + "'");
}

int benchGen(const std::vector<std::string>& args)
{
    const std::string out = option(args, "out", "");
    if (out.empty() || !flag(args, "shape")) {
        std::fprintf(stderr, "usage: layerlab-bench gen --shape NAME --dtype bf16|f16|f32 --out DIR [--seed N] [--shard-gb G]\n"
                             "                          [--tokenizer PATH] [--layers N] [--hidden H] [--intermediate F] [--vocab V] [--no-rope-scaling] [--threads T] [--chunk-mb M] [--force]\nshapes:");
        for (const auto& n : synth::synthShapeNames())
            std::fprintf(stderr, " %s", n.c_str());
        std::fprintf(stderr, "\n");
        return 64;
    }
    synth::ShapeOverrides o;
    if (flag(args, "layers"))
        o.layers = std::stoll(option(args, "layers", "0"));
    if (flag(args, "hidden"))
        o.hidden = std::stoll(option(args, "hidden", "0"));
    if (flag(args, "intermediate"))
        o.intermediate = std::stoll(option(args, "intermediate", "0"));
    if (flag(args, "vocab"))
        o.vocab = std::stoll(option(args, "vocab", "0"));
    o.dropRopeScaling = flag(args, "no-rope-scaling");
    const synth::SynthShape shape = synth::overrideShape(synth::synthShape(option(args, "shape", "")), o);
    const DType dtype = dtypeOption(option(args, "dtype", "bf16"));
    synth::SynthOptions opt;
    opt.seed = std::stoull(option(args, "seed", "1"));
    opt.maxShardBytes = static_cast<uint64_t>(std::stod(option(args, "shard-gb", "5")) * 1e9);
    opt.tokenizer = option(args, "tokenizer", "");
    opt.threads = std::stoi(option(args, "threads", "2"));
    opt.chunkBytes = static_cast<uint64_t>(std::stod(option(args, "chunk-mb", "4")) * (1 << 20));
    opt.overwrite = flag(args, "force");
    PercentPrinter progress;
    opt.progress = &progress;

    std::printf("gen %s: %lld layers, hidden %lld, vocab %lld, %lld parameters, %s -> %s\n", shape.name.c_str(),
                static_cast<long long>(shape.layers), static_cast<long long>(shape.hidden),
                static_cast<long long>(shape.vocab), static_cast<long long>(shape.parameterCount()),
                std::string(dtypeName(dtype)).c_str(), out.c_str());
    std::fflush(stdout);
    const synth::SynthResult r = synth::writeSyntheticHf(shape, dtype, out, opt);
    for (const auto& [name, bytes] : r.files)
        std::printf("  %-40s %14llu bytes\n", name.c_str(), static_cast<unsigned long long>(bytes));
    const double mb = static_cast<double>(r.totalBytes) / 1e6;
    std::printf("wrote %llu bytes (%.1f MB, %d shard%s, %lld tensors) in %.2f s: %.0f MB/s (fsync included)\n",
                static_cast<unsigned long long>(r.totalBytes), mb, r.shards, r.shards == 1 ? "" : "s",
                static_cast<long long>(r.tensors), r.seconds, r.seconds > 0 ? mb / r.seconds : 0.0);
    return 0;
}

const Registration reg("gen", "writes a synthetic HF checkpoint with a real model's shapes (llama2-7b, llama3.2-1b, ...)", benchGen);

} // namespace

} // namespace ll::bench
