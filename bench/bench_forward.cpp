// layerlab-bench forward: perplexity-evaluation throughput of a generated
// LLaMA model with SmolLM-135M's shapes, against the FLOP rate of plain Eigen
// GEMMs of the same shapes measured in the same run, and the peak RSS.
//
//   layerlab-bench forward [--ctx 512] [--threads 2] [--windows 8] [--layers 30]
//                          [--write-gguf FILE [--gguf-type f32|f16]] [--gguf FILE]
// Also times KV-cache decoding (ms per generated token).
//
// --write-gguf FILE  also writes the generated model as a GGUF (exportGguf; llama
//                    names, F32 by default or F16) before timing it. The model has no
//                    tokenizer, so the file carries tokenizer.ggml.model "none"
//                    (exportGguf's own rule for tokenizer-less sources): LayerLab and
//                    llama.cpp load it, only text cannot be tokenized, which the
//                    benchmark does not need (it scores random token ids).
// --gguf FILE        times a GGUF (or any model openModel reads) instead of the
//                    generated weights: the same measurement, on the file's shapes.
#include "bench.h"

#include "engine/session.h"
#include "formats/open_model.h"
#include "util/threads.h"
#include "engine/transformer.h"
#include "kernels/matmul.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "model/model.h"
#include "model/naming.h"

#include <Eigen/Core>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <memory>
#include <string>
#include <vector>

namespace ll::bench {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double>(b - a).count();
}

double peakRssMiB()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string stringOption(const std::vector<std::string>& args, const std::string& name, const std::string& fallback)
{
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "--" + name)
            return args[i + 1];
    return fallback;
}

// Uniform values of standard deviation `std` from splitmix64: fast, and the
// weights' values do not matter for speed (only that activations stay finite).
struct Filler {
    uint64_t state = 0x9e3779b97f4a7c15ull;
    float next(float std)
    {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        const float u = static_cast<float>(z >> 40) * 0x1.0p-24f; // [0, 1)
        return (2.0f * u - 1.0f) * std * 1.7320508f;
    }
    MatrixRM matrix(int64_t rows, int64_t cols, float std)
    {
        MatrixRM m(rows, cols);
        for (int64_t i = 0; i < m.size(); ++i)
            m.data()[i] = next(std);
        return m;
    }
};

ModelConfig smolLmShapes(int64_t layers)
{
    ModelConfig c;
    c.family = Family::Llama;
    c.modelType = "llama";
    c.hidden = 576;
    c.intermediate = 1536;
    c.layers = layers;
    c.heads = 9;
    c.kvHeads = 3;
    c.headDim = 64;
    c.vocab = 49152;
    c.maxPositions = 8192;
    c.normEps = 1e-5;
    c.ropeTheta = 100000.0;
    c.synthetic = true;
    return c;
}

TransformerWeights generateWeights(const ModelConfig& c)
{
    Filler f;
    const float std = 0.02f;
    TransformerWeights w;
    w.embed = StoredMatrix::fromMatrix(f.matrix(c.vocab, c.hidden, 1.0f));
    w.head.W = StoredMatrix::fromMatrix(f.matrix(c.vocab, c.hidden, std));
    w.finalNorm.w = Eigen::VectorXf::Ones(c.hidden);
    for (int64_t l = 0; l < c.layers; ++l) {
        BlockWeights b;
        b.attnNorm.w = Eigen::VectorXf::Ones(c.hidden);
        b.mlpNorm.w = Eigen::VectorXf::Ones(c.hidden);
        b.q.W = StoredMatrix::fromMatrix(f.matrix(c.heads * c.headDim, c.hidden, std));
        b.k.W = StoredMatrix::fromMatrix(f.matrix(c.kvHeads * c.headDim, c.hidden, std));
        b.v.W = StoredMatrix::fromMatrix(f.matrix(c.kvHeads * c.headDim, c.hidden, std));
        b.o.W = StoredMatrix::fromMatrix(f.matrix(c.hidden, c.heads * c.headDim, std));
        b.gate.W = StoredMatrix::fromMatrix(f.matrix(c.intermediate, c.hidden, std));
        b.up.W = StoredMatrix::fromMatrix(f.matrix(c.intermediate, c.hidden, std));
        b.down.W = StoredMatrix::fromMatrix(f.matrix(c.hidden, c.intermediate, std));
        w.blocks.push_back(std::move(b));
    }
    return w;
}

// An in-memory Model holding `w` under Hugging Face llama names (copies), for exportGguf.
std::unique_ptr<Model> modelOf(const ModelConfig& c, const TransformerWeights& w)
{
    auto m = std::make_unique<Model>();
    m->path = "generated SmolLM-135M-shaped model";
    m->format = "synthetic";
    m->config = c;
    const auto add = [&](const std::string& name, const float* data, std::vector<int64_t> shape) {
        int64_t n = 1;
        for (int64_t d : shape)
            n *= d;
        auto buffer = std::make_shared<std::vector<float>>(data, data + n);
        TensorRef t;
        t.name = name;
        t.shape = std::move(shape);
        t.dtype = DType::F32;
        t.dtypeLabel = "F32";
        t.nbytes = static_cast<uint64_t>(n) * sizeof(float);
        t.data = reinterpret_cast<const uint8_t*>(buffer->data());
        t.keepAlive = buffer;
        m->stored.push_back(std::move(t));
    };
    const auto matrix = [&](const std::string& name, const StoredMatrix& x) {
        add(name, reinterpret_cast<const float*>(x.data), {x.rows, x.cols}); // F32: built by generateWeights
    };
    const auto vector = [&](const std::string& name, const Eigen::VectorXf& x) { add(name, x.data(), {x.size()}); };
    matrix("model.embed_tokens.weight", w.embed);
    for (int64_t l = 0; l < c.layers; ++l) {
        const BlockWeights& b = w.blocks[static_cast<size_t>(l)];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        vector(p + "input_layernorm.weight", b.attnNorm.w);
        matrix(p + "self_attn.q_proj.weight", b.q.W);
        matrix(p + "self_attn.k_proj.weight", b.k.W);
        matrix(p + "self_attn.v_proj.weight", b.v.W);
        matrix(p + "self_attn.o_proj.weight", b.o.W);
        vector(p + "post_attention_layernorm.weight", b.mlpNorm.w);
        matrix(p + "mlp.gate_proj.weight", b.gate.W);
        matrix(p + "mlp.up_proj.weight", b.up.W);
        matrix(p + "mlp.down_proj.weight", b.down.W);
    }
    vector("model.norm.weight", w.finalNorm.w);
    matrix("lm_head.weight", w.head.W);
    m->metadata = {
        {"model_type", c.modelType},
        {"architectures", {"LlamaForCausalLM"}},
        {"hidden_size", c.hidden},
        {"intermediate_size", c.intermediate},
        {"num_hidden_layers", c.layers},
        {"num_attention_heads", c.heads},
        {"num_key_value_heads", c.kvHeads},
        {"head_dim", c.headDim},
        {"vocab_size", c.vocab},
        {"max_position_embeddings", c.maxPositions},
        {"rms_norm_eps", c.normEps},
        {"rope_theta", c.ropeTheta},
        {"tie_word_embeddings", false},
    };
    mapHfNames(*m);
    return m;
}

// Seconds per call of X (rows, in) @ W^T (in, out), as the forward pass calls it.
double gemmSeconds(int64_t rows, int64_t out, int64_t in)
{
    Filler f;
    const MatrixRM x = f.matrix(rows, in, 1.0f);
    const MatrixRM w = f.matrix(out, in, 0.02f);
    MatrixRM y(rows, out);
    y.noalias() = x * w.transpose(); // warm-up
    int calls = 0;
    const auto t0 = Clock::now();
    double elapsed = 0;
    while (elapsed < 0.3 || calls < 3) {
        y.noalias() = x * w.transpose();
        ++calls;
        elapsed = seconds(t0, Clock::now());
    }
    if (!std::isfinite(y(0, 0)))
        std::printf("(non-finite GEMM output)\n");
    return elapsed / calls;
}

struct GemmMix {
    double flops = 0, seconds = 0;
    double rate() const { return flops / seconds; }
};

// The linears of one batch of the forward pass (every layer and the head on
// the scored rows), each GEMM timed on its own. `threads` independent GEMMs of
// rows/threads each run side by side, as the engine runs window groups.
GemmMix timeGemmMix(const ModelConfig& c, int64_t rows, int64_t headRows, int64_t headChunk, int threads)
{
    struct Shape {
        int64_t out, in, perLayer;
    };
    const Shape layerShapes[] = {
        {c.heads * c.headDim, c.hidden, 1}, {c.kvHeads * c.headDim, c.hidden, 2}, {c.hidden, c.heads * c.headDim, 1},
        {c.intermediate, c.hidden, 2},      {c.hidden, c.intermediate, 1},
    };
    GemmMix mix;
    const int64_t groupRows = rows / threads;
    const auto timeSideBySide = [&](int64_t r, int64_t out, int64_t in) {
        // Each thread times its own GEMM; the slowest sets the pace.
        double worst = 0;
#pragma omp parallel for num_threads(threads) reduction(max : worst)
        for (int t = 0; t < threads; ++t)
            worst = std::max(worst, gemmSeconds(r, out, in));
        return worst;
    };
    for (const Shape& s : layerShapes) {
        const double t = timeSideBySide(groupRows, s.out, s.in);
        mix.seconds += t * static_cast<double>(s.perLayer * c.layers);
        mix.flops += 2.0 * static_cast<double>(rows * s.out * s.in * s.perLayer * c.layers);
    }
    const int64_t chunks = (headRows / threads + headChunk - 1) / headChunk;
    mix.seconds += timeSideBySide(headChunk, c.vocab, c.hidden) * static_cast<double>(chunks);
    mix.flops += 2.0 * static_cast<double>(chunks * threads * headChunk * c.vocab * c.hidden);
    return mix;
}

int measure(const Transformer& model, int64_t ctx, int threads, int64_t windows);

int benchForward(const std::vector<std::string>& args)
{
    const int64_t ctx = intOption(args, "ctx", 512);
    const int threads = static_cast<int>(intOption(args, "threads", 2));
    const int64_t windows = intOption(args, "windows", 8);
    const int64_t layers = intOption(args, "layers", 30);
    const std::string ggufIn = stringOption(args, "gguf", "");
    const std::string ggufOut = stringOption(args, "write-gguf", "");
    const std::string ggufType = stringOption(args, "gguf-type", "f32");
    if (ggufType != "f32" && ggufType != "f16")
        throw std::invalid_argument("--gguf-type must be f32 or f16");
    if (!ggufIn.empty() && !ggufOut.empty())
        throw std::invalid_argument("give --gguf FILE (time a file) or --write-gguf FILE (write the generated model), not both");
    setComputeThreads(threads);

    if (!ggufIn.empty()) {
        auto t0 = Clock::now();
        const auto m = openModel(ggufIn);
        const Transformer model(*m);
        const ModelConfig& c = model.config();
        std::printf("model: %s (%s, %s), hidden %lld, %lld layers, %lld heads / %lld KV heads, FFN %lld, vocab %lld\n",
                    ggufIn.c_str(), m->format.c_str(), c.modelType.c_str(), static_cast<long long>(c.hidden),
                    static_cast<long long>(c.layers), static_cast<long long>(c.heads), static_cast<long long>(c.kvHeads),
                    static_cast<long long>(c.intermediate), static_cast<long long>(c.vocab));
        std::printf("loaded in %.2f s, peak RSS %.0f MiB\n", seconds(t0, Clock::now()), peakRssMiB());
        return measure(model, ctx, threads, windows);
    }

    const ModelConfig config = smolLmShapes(layers);
    std::printf("model: LLaMA with SmolLM-135M shapes (hidden 576, %lld layers, 9 heads / 3 KV heads, FFN 1536, "
                "vocab 49152, untied head), random F32 weights\n",
                static_cast<long long>(layers));
    auto t0 = Clock::now();
    TransformerWeights weights = generateWeights(config);
    std::printf("generated in %.2f s, peak RSS %.0f MiB\n", seconds(t0, Clock::now()), peakRssMiB());
    if (!ggufOut.empty()) {
        t0 = Clock::now();
        GgufExportOptions o;
        o.type = ggufType == "f16" ? DType::F16 : DType::F32;
        o.overwrite = true;
        o.name = "SmolLM-135M-shaped (random weights)";
        const ExportResult r = exportGguf(*modelOf(config, weights), ggufOut, o);
        std::printf("wrote %s (%s, %.1f MiB) in %.2f s\n", r.path.c_str(), ggufType.c_str(),
                    static_cast<double>(r.totalBytes) / (1024.0 * 1024.0), seconds(t0, Clock::now()));
        for (const std::string& n : r.notes)
            std::printf("  note: %s\n", n.c_str());
    }
    const Transformer model(config, std::move(weights));
    return measure(model, ctx, threads, windows);
}

int measure(const Transformer& model, int64_t ctx, int threads, int64_t windows)
{
    const ModelConfig& config = model.config();
    auto t0 = Clock::now();
    std::vector<int32_t> tokens(static_cast<size_t>(windows * ctx));
    Filler f;
    for (auto& t : tokens)
        t = static_cast<int32_t>(std::fabs(f.next(1.0f)) / 1.7320508f * static_cast<float>(config.vocab - 1));
    ScoringOptions opt;
    opt.context = ctx;
    const WindowPlan plan = planWindows(static_cast<int64_t>(tokens.size()), opt);

    // Warm-up on one batch (thread pool, first-touch allocations). Other work
    // on the machine shows up as noise: the evaluation and the GEMM mix are
    // each measured twice, interleaved, and the best of each is compared.
    ScoringOptions warm = opt;
    warm.maxWindows = std::min<int64_t>(plan.windowsPerBatch, plan.windows);
    (void)evaluatePerplexity(model, tokens, warm);

    const int64_t batchRows = plan.windowsPerBatch * ctx;
    const int64_t headRows = plan.windowsPerBatch * plan.scoredPerWindow;
    const int64_t headChunk = std::max<int64_t>(1, (int64_t{1} << 24) / config.vocab);
    double evalSeconds = 1e300, groupRate = 0, eigenRate = 0, evalRss = 0;
    PerplexityResult r;
    for (int round = 0; round < 2; ++round) {
        t0 = Clock::now();
        r = evaluatePerplexity(model, tokens, opt);
        evalSeconds = std::min(evalSeconds, seconds(t0, Clock::now()));
        if (round == 0) // before the GEMM timings allocate their own matrices
            evalRss = peakRssMiB();
        // The GEMMs alone, in the shapes the engine runs them (rows per thread group, head chunks) ...
        groupRate = std::max(groupRate, timeGemmMix(config, batchRows, headRows, headChunk, threads).rate());
        // ... and Eigen's own multi-threaded GEMM on whole batches.
        Eigen::setNbThreads(threads);
        eigenRate = std::max(eigenRate, timeGemmMix(config, batchRows, headRows, headChunk * threads, 1).rate());
        setComputeThreads(threads);
    }

    const double headFlops = 2.0 * static_cast<double>(config.vocab * config.hidden);
    const double processed = static_cast<double>(plan.windows * ctx);
    const double modelFlops = processed * (model.flopsPerToken(ctx) - headFlops) + static_cast<double>(r.tokensScored) * headFlops;
    const double modelRate = modelFlops / evalSeconds;
    std::printf("perplexity eval: %lld windows x %lld tokens, %lld windows per batch, %d threads\n",
                static_cast<long long>(plan.windows), static_cast<long long>(ctx), static_cast<long long>(plan.windowsPerBatch),
                threads);
    std::printf("  %.2f s, %.1f tokens/s (%.1f scored tokens/s), %.3f GFLOP/token, %.1f GFLOP/s  (ppl %.1f)\n", evalSeconds,
                processed / evalSeconds, static_cast<double>(r.tokensScored) / evalSeconds, modelFlops / processed * 1e-9,
                modelRate * 1e-9, r.ppl);
    std::printf("  peak RSS %.0f MiB (F32 weights %.0f MiB)\n", evalRss,
                static_cast<double>(model.weightBytes()) / (1024.0 * 1024.0));
    const double peak = std::max(groupRate, eigenRate);
    std::printf("plain Eigen GEMM, same shapes: %.1f GFLOP/s (%d side-by-side single-thread GEMMs), "
                "%.1f GFLOP/s (Eigen's %d-thread GEMM on whole batches)\n",
                groupRate * 1e-9, threads, eigenRate * 1e-9, threads);
    std::printf("forward / GEMM peak: %.2f\n", modelRate / peak);

    // Incremental decoding with the KV cache (what `generate` does): a 32-token prompt, then 64 tokens.
    Session session(model);
    t0 = Clock::now();
    session.append(std::span<const int32_t>(tokens).first(32));
    const double prefill = seconds(t0, Clock::now());
    t0 = Clock::now();
    for (int i = 0; i < 64; ++i)
        session.appendToken(tokens[static_cast<size_t>(32 + i)]);
    const double decode = seconds(t0, Clock::now()) / 64.0;
    std::printf("KV-cache decoding: 32-token prompt %.1f ms, then %.1f ms/token (%.1f tokens/s)\n", prefill * 1e3,
                decode * 1e3, 1.0 / decode);
    return 0;
}

// layerlab-bench decode --gguf FILE [-n 32] [--threads 2] [--reps 3]: token
// generation alone, as llama-bench -p 0 -n N measures it (tg N: N tokens from
// an empty context, one at a time through the KV cache): tokens/s as mean and
// standard deviation over --reps runs, as llama-bench reports it (5 runs there),
// after one warm-up token, as llama-bench generates one before it measures.
int benchDecode(const std::vector<std::string>& args)
{
    const std::string path = stringOption(args, "gguf", "");
    if (path.empty())
        throw std::invalid_argument("give --gguf FILE (any model openModel reads)");
    const int64_t n = intOption(args, "n", 32);
    const int threads = static_cast<int>(intOption(args, "threads", 2));
    const int64_t reps = std::max<int64_t>(1, intOption(args, "reps", 5));
    setComputeThreads(threads);
    auto t0 = Clock::now();
    const auto m = openModel(path);
    const Transformer model(*m);
    const double load = seconds(t0, Clock::now());
    std::printf("model: %s, %lld layers, hidden %lld; loaded in %.2f s\n", path.c_str(),
                static_cast<long long>(model.config().layers), static_cast<long long>(model.config().hidden), load);
    { // a warm-up token first, as llama-bench does (the first touch of the mapped weights is not decoding)
        Session warm(model);
        warm.appendToken(1 % static_cast<int32_t>(model.config().vocab));
    }
    std::vector<double> rates;
    for (int64_t r = 0; r < reps; ++r) {
        Session session(model);
        t0 = Clock::now();
        for (int64_t i = 0; i < n; ++i) // llama-bench's tg uses arbitrary token ids too
            session.appendToken(static_cast<int32_t>((i * 7919 + 1) % model.config().vocab));
        rates.push_back(static_cast<double>(n) / seconds(t0, Clock::now()));
    }
    double mean = 0, var = 0;
    for (double r : rates)
        mean += r / static_cast<double>(rates.size());
    for (double r : rates)
        var += (r - mean) * (r - mean) / static_cast<double>(std::max<size_t>(1, rates.size() - 1));
    std::printf("decode (tg%lld): %.2f ± %.2f tokens/s (%lld runs, best %.2f), %s products, peak RSS %.0f MiB\n",
                static_cast<long long>(n), mean, std::sqrt(var), static_cast<long long>(reps),
                *std::max_element(rates.begin(), rates.end()),
                quantProducts() == QuantProducts::Int8 ? "int8" : "f32", peakRssMiB());
    return 0;
}

const Registration reg("forward", "perplexity-evaluation throughput of a SmolLM-135M-shaped model vs plain GEMM",
                       benchForward);
const Registration regDecode("decode", "token generation from a file through the KV cache (llama-bench -p 0 -n N)",
                             benchDecode);

} // namespace

} // namespace ll::bench
