// Streaming exports (export/planned_tensor, export/tensor_stream): the bytes
// are those of the whole-tensor path for every target type, however the rows
// are cut into bands; the heap an export uses stays far below one tensor's F32
// size; the vector float encoders give the scalar reference's bits; Llama 3
// rope scaling becomes llama.cpp's rope_freqs.weight.
#include "test_support.h"

#include "engine/architecture.h"
#include "engine/transformer.h"
#include "formats/open_model.h"
#include "kernels/matmul.h"
#include "util/atomic_file.h"
#include "export/float_encode.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"
#include "export/planned_tensor.h"
#include "export/safetensors_writer.h"
#include "export/tensor_stream.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "quant/ggml_quantize.h"
#include "pipeline/quantize_model.h"
#include "synthetic_checkpoint.h"
#include "util/error.h"
#include "util/half.h"
#include "util/progress.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <malloc.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <random>

using namespace ll;
namespace fs = std::filesystem;
using nlohmann::json;

// ---- heap accounting: every operator new of this program counted (live and peak bytes) ----

namespace {
std::atomic<int64_t> gLiveBytes{0};
std::atomic<int64_t> gPeakBytes{0};

void* counted(void* p)
{
    if (!p)
        throw std::bad_alloc();
    const int64_t live = gLiveBytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p))) + static_cast<int64_t>(malloc_usable_size(p));
    int64_t peak = gPeakBytes.load();
    while (live > peak && !gPeakBytes.compare_exchange_weak(peak, live)) {
    }
    return p;
}

void uncounted(void* p) noexcept
{
    if (p) {
        gLiveBytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)));
        std::free(p);
    }
}

void* alignedAlloc(size_t n, std::align_val_t a)
{
    const size_t align = static_cast<size_t>(a);
    return std::aligned_alloc(align, (n + align - 1) / align * align);
}
} // namespace

void* operator new(size_t n) { return counted(std::malloc(n ? n : 1)); }
void* operator new(size_t n, std::align_val_t a) { return counted(alignedAlloc(n ? n : 1, a)); }
void operator delete(void* p) noexcept { uncounted(p); }
void operator delete(void* p, size_t) noexcept { uncounted(p); }
void operator delete(void* p, std::align_val_t) noexcept { uncounted(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { uncounted(p); }

namespace {

std::string shared(const std::string& rel) { return test::sharedPath(rel); }

const DType kGgufTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                            DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<float> randomValues(size_t n, uint32_t seed, float scale = 1.0f)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A scratch folder in memory (/dev/shm) where there is one: the tests below write
// a hundred small exports, and each one's fsync on a busy disk costs more than the export.
std::string memoryScratch()
{
    static std::unique_ptr<QTemporaryDir> root;
    static int counter = 0;
    std::error_code ec;
    if (!root && fs::is_directory("/dev/shm", ec))
        root = std::make_unique<QTemporaryDir>(QStringLiteral("/dev/shm/layerlab-test-XXXXXX"));
    if (!root || !root->isValid())
        return test::scratchDir();
    const std::string dir = root->path().toStdString() + "/s" + std::to_string(counter++);
    fs::create_directories(dir);
    return dir;
}

// What the whole-tensor export wrote for a logical tensor (the code before
// streaming, restated): the tensor read whole with readLogical, its q/k rows
// permuted whole, encoded whole (scalar F16/BF16, quantizeGgmlRows); a source
// tensor already of the target block type copied as stored.
std::vector<uint8_t> wholeTensorBytes(const Model& m, const LogicalTensor& t, DType type, RotaryPermute permute)
{
    const TensorRef& src = m.storedOf(t);
    if (!t.edited() && src.dtype == type && isQuantized(type))
        return std::vector<uint8_t>(src.data, src.data + src.nbytes);
    std::vector<float> v = readLogical(m, t);
    const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
    const int64_t cols = t.shape.size() >= 2 ? t.shape[1] : 1;
    if (permute == RotaryPermute::HalvesToInterleaved)
        v = halvesToInterleaved(v, rows, cols, m.config.headDim);
    else if (permute == RotaryPermute::InterleavedToHalves)
        v = interleavedToHalves(v, rows, cols, m.config.headDim);
    if (type == DType::F32 || type == DType::F16 || type == DType::BF16) {
        std::vector<uint8_t> out(v.size() * (type == DType::F32 ? 4 : 2));
        encodeFloatsInto(v.data(), static_cast<int64_t>(v.size()), type, out.data(), EncodePath::Scalar);
        return out;
    }
    const int64_t rowLength = t.shape.empty() ? 1 : t.shape.back();
    return quantizeGgmlRows(type, v.data(), static_cast<int64_t>(v.size()) / rowLength, rowLength);
}

// Every tensor of the GGUF at `path` holds wholeTensorBytes of its source tensor, in the type it was given.
void requireWholeTensorBytes(const Model& m, const std::string& path, const std::string& what)
{
    const auto g = openModel(path);
    const RotaryPermute permute = m.config.ropeInterleaved ? RotaryPermute::None : RotaryPermute::HalvesToInterleaved;
    int compared = 0;
    for (const LogicalTensor& e : m.tensors) {
        const LogicalTensor* a = g->findLogical(e.logicalName);
        if (!a || (e.tied && a->tied))
            continue; // a tied head stays implicit
        const TensorRef& out = g->storedOf(*a);
        const bool rotary = e.role == Role::AttnQ || e.role == Role::AttnK;
        const std::vector<uint8_t> want = wholeTensorBytes(m, e, out.dtype, rotary ? permute : RotaryPermute::None);
        const std::string label = what + ": " + e.logicalName + " as " + std::string(dtypeName(out.dtype));
        QVERIFY2(out.nbytes == want.size() && std::memcmp(out.data, want.data(), want.size()) == 0, label.c_str());
        ++compared;
    }
    QVERIFY2(compared >= 5, what.c_str());
}

// As requireWholeTensorBytes for a Hugging Face export: every logical tensor of
// the source comes back with the values readLogical gives, rounded to the type
// (q/k compared in the source's rotary layout).
void requireWholeTensorValues(const Model& m, const std::string& folder, DType type, const std::string& what)
{
    const auto h = openModel(folder);
    const bool relayout = m.config.ropeInterleaved != h->config.ropeInterleaved;
    for (const LogicalTensor& e : m.tensors) {
        const LogicalTensor* a = h->findLogical(e.logicalName);
        QVERIFY2(a && a->shape == e.shape, (what + ": " + e.logicalName).c_str());
        std::vector<float> want = readLogical(m, e);
        for (float& x : want)
            x = type == DType::F16 ? fp16ToFloat(floatToFp16(x)) : type == DType::BF16 ? bf16ToFloat(floatToBf16(x)) : x;
        std::vector<float> got = readLogical(*h, *a);
        if (relayout && (e.role == Role::AttnQ || e.role == Role::AttnK)) {
            const int64_t rows = e.shape[0], cols = e.shape.size() > 1 ? e.shape[1] : 1;
            got = m.config.ropeInterleaved ? halvesToInterleaved(got, rows, cols, m.config.headDim)
                                           : interleavedToHalves(got, rows, cols, m.config.headDim);
        }
        QVERIFY2(got == want, (what + ": " + e.logicalName).c_str());
    }
}

// The bytes of every file of a folder, by name.
std::map<std::string, std::string> folderBytes(const std::string& dir)
{
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir))
        files[e.path().filename().string()] = test::readFile(e.path().string());
    return files;
}

// A small synthetic llama with Llama 3.2's rope scaling (head size 64), BF16.
const std::string& llama3Synthetic()
{
    static std::string dir;
    if (dir.empty()) {
        synth::ShapeOverrides o; // 0.7 M parameters: heads of 64 (4 q, 2 kv), vocabulary 512
        o.layers = 1;
        o.intermediate = 256;
        o.vocab = 512;
        synth::SynthShape s = synth::overrideShape(synth::synthShape("tiny"), o);
        s.ropeScaling = synth::synthShape("llama3.2-1b").ropeScaling;
        dir = test::scratchDir() + "/llama3-synth";
        synth::SynthOptions so;
        if (test::haveShared())
            so.tokenizer = shared("models/stories260K/tok512.bin");
        synth::writeSyntheticHf(s, DType::BF16, dir, so);
    }
    return dir;
}

// Edits that take every row reader: a replaced q (rotary rows from an F32
// buffer), a factored k (band products, permuted through whole heads), a
// replaced MLP weight and a factored head (untying it).
void editEveryWay(Model& m)
{
    const auto shapeOf = [&](const std::string& name) { return m.findLogical(name)->shape; };
    const auto q = shapeOf("blocks.0.attn.q.weight"), k = shapeOf("blocks.0.attn.k.weight");
    const auto up = shapeOf("blocks.0.mlp.up.weight"), head = shapeOf("lm_head.weight");
    replaceTensor(m, "blocks.0.attn.q.weight", randomValues(static_cast<size_t>(q[0] * q[1]), 3, 0.05f), q);
    replaceTensorFactored(m, "blocks.0.attn.k.weight", randomValues(static_cast<size_t>(k[0] * 8), 4, 0.3f),
                          randomValues(static_cast<size_t>(8 * k[1]), 5, 0.3f), k[0], 8, k[1]);
    replaceTensor(m, "blocks.0.mlp.up.weight", randomValues(static_cast<size_t>(up[0] * up[1]), 6, 0.05f), up);
    replaceTensorFactored(m, "lm_head.weight", randomValues(static_cast<size_t>(head[0] * 16), 7, 0.3f),
                          randomValues(static_cast<size_t>(16 * head[1]), 8, 0.3f), head[0], 16, head[1]);
}

// A Hugging Face folder with random weights (test_export.cpp has the same).
std::string writeRandomHf(const std::string& name, const json& config,
                          const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors)
{
    const std::string dir = test::scratchDir() + "/" + name;
    fs::create_directories(dir);
    test::writeFile(dir + "/config.json", config.dump(2));
    std::vector<SafetensorsTensor> st;
    uint32_t seed = 1;
    for (const auto& [tname, shape] : tensors) {
        int64_t n = 1;
        for (int64_t d : shape)
            n *= d;
        const uint32_t s = seed++;
        st.push_back({tname, DType::F32, shape, [n, s] { return encodeFloats(randomValues(static_cast<size_t>(n), s), DType::F32); }, {}});
    }
    FileWriter w(dir + "/model.safetensors", dir + "/model.safetensors");
    writeSafetensors(w, std::move(st), {{"format", "pt"}});
    w.close();
    return dir;
}

} // namespace

class TestExportStreaming : public QObject {
    Q_OBJECT

private slots:
    void chunkRowsHoldWholeAlignedGroups();
    void vectorEncodersGiveTheScalarBits();
    void ggufEveryTypeEqualsWholeTensorPath();
    void ggufEditedAndFactoredEqualWholeTensorPath();
    void packedLayersExportAsTheirValues();
    void hfEqualsWholeTensorPathAtEveryBandSize();
    void heapStaysFarBelowOneTensor();
    void cancelAndWriteFailureMidTensorLeaveNothing();
    void llama3RopeFactorsByHand();
    void llama3RopeScalingInGguf();
};

void TestExportStreaming::chunkRowsHoldWholeAlignedGroups()
{
    // 4 MiB of F32 = 2^20 values: 512 rows of 2048; rotary alignment 64 keeps multiples of 64.
    QCOMPARE(chunkRows(2048, 1, 100000, size_t{4} << 20), int64_t{512});
    QCOMPARE(chunkRows(2048, 64, 100000, size_t{4} << 20), int64_t{512});
    QCOMPARE(chunkRows(2048, 96, 100000, size_t{4} << 20), int64_t{480});
    // A budget below one group still takes one group; never more rows than there are.
    QCOMPARE(chunkRows(2048, 64, 100000, 1), int64_t{64});
    QCOMPARE(chunkRows(2048, 1, 100000, 1), int64_t{1});
    QCOMPARE(chunkRows(2048, 1, 7, size_t{4} << 20), int64_t{7});
    QCOMPARE(chunkRows(2048, 1, 0, size_t{4} << 20), int64_t{0});
    // A row longer than the budget (a 1-D tensor is one row).
    QCOMPARE(chunkRows(int64_t{1} << 24, 1, 1, size_t{4} << 20), int64_t{1});
}

void TestExportStreaming::vectorEncodersGiveTheScalarBits()
{
    // Specials, both rounding boundaries of F16 and BF16, denormals of each, NaN payloads.
    std::vector<uint32_t> bits = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                  0x7f800001u, 0x7fbfffffu, 0x7f7fffffu, 0x477fe000u, 0x477fefffu, 0x477ff000u,
                                  0x477ff001u, 0xc77ff000u, 0x38800000u, 0x33800000u, 0x33000000u, 0x33000001u,
                                  0x00000001u, 0x807fffffu, 0x3f808000u, 0x3f818000u, 0x3f80c000u, 0x7f7f8000u,
                                  0x7f7f7fffu, 0xff7f8000u, 0x3c7fe000u, 0x387fc000u};
    std::mt19937 rng(5);
    for (int i = 0; i < 4000; ++i)
        bits.push_back(static_cast<uint32_t>(rng()));
    std::vector<float> v(bits.size());
    std::memcpy(v.data(), bits.data(), bits.size() * 4);
    int checked = 0;
    for (EncodePath path : {EncodePath::F16c, EncodePath::Avx512}) {
        if (!canUseEncodePath(path))
            continue;
        for (DType type : {DType::F16, DType::BF16}) {
            for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{17}, size_t{31}, v.size()}) {
                std::vector<uint8_t> want(n * 2 + 8, 0xAB), got(n * 2 + 8, 0xAB); // the guard bytes must stay
                const int64_t overWant = encodeFloatsInto(v.data(), static_cast<int64_t>(n), type, want.data(), EncodePath::Scalar);
                const int64_t overGot = encodeFloatsInto(v.data(), static_cast<int64_t>(n), type, got.data(), path);
                QVERIFY2(got == want, dtypeName(type).data());
                QCOMPARE(overGot, overWant);
            }
            ++checked;
        }
    }
    // Overflow is counted: 65520 rounds to F16 inf, 65519 does not; inf itself is no overflow.
    const std::vector<float> big = {65519.0f, 65520.0f, -1e6f, std::numeric_limits<float>::infinity(), 3.4e38f};
    std::vector<uint8_t> out(big.size() * 2);
    QCOMPARE(encodeFloatsInto(big.data(), 5, DType::F16, out.data()), int64_t{3});
    QCOMPARE(encodeFloatsInto(big.data(), 5, DType::BF16, out.data()), int64_t{1}); // 3.4e38 rounds past BF16's max
    if (checked == 0)
        qInfo("no vector encoder on this CPU: only the scalar path was checked");
}

void TestExportStreaming::ggufEveryTypeEqualsWholeTensorPath()
{
    LL_REQUIRE_SHARED();
    const std::string dir = memoryScratch();
    // Every type from two sources whose q/k rows are permuted (BF16 and F32 Hugging Face
    // folders); the types that copy or re-encode stored bytes from the others (F32, F16
    // and Q8_0 GGUFs, a Q4_K_M GGUF, llama2.c, sharded F16).
    struct Source {
        std::string path;
        std::vector<DType> types;
    };
    const std::vector<DType> all(std::begin(kGgufTypes), std::end(kGgufTypes));
    const std::vector<DType> some = {DType::F32, DType::F16, DType::Q8_0};
    const std::vector<Source> sources = {
        {llama3Synthetic(), all},
        {shared("models/stories260K-hf"), all},
        {shared("models/stories260K/stories260K.bin"), some},
        {shared("models/stories260K-gguf/stories260K-f32.gguf"), some},
        {shared("models/stories260K-gguf/stories260K-Q4_K_M.gguf"), {DType::Q4_K, DType::Q6_K, DType::F16}},
        {shared("models/tiny-llama"), some},
        {shared("models/tiny-llama-fp16-sharded"), some},
        {shared("models/gguf-quants/tiny-llama256-Q8_0.gguf"), {DType::Q8_0, DType::BF16}},
    };
    for (size_t s = 0; s < sources.size(); ++s) {
        const auto m = openModel(sources[s].path);
        for (DType type : sources[s].types) {
            // Bands of one aligned group of rows (the smallest) and of a few rows, besides the
            // default (the whole tensor for these models), on the float and the quantizing paths.
            const bool allBands = s < 2 && (type == DType::F16 || type == DType::Q8_0);
            for (size_t chunk : {size_t{0}, size_t{1}, size_t{3000}}) {
                if (chunk != 0 && !allBands)
                    continue;
                GgufExportOptions opt;
                opt.type = type;
                opt.chunkBytes = chunk;
                opt.overwrite = true;
                const std::string out = dir + "/m" + std::to_string(s) + ".gguf";
                exportGguf(*m, out, opt);
                requireWholeTensorBytes(*m, out,
                                        sources[s].path + " " + std::string(dtypeName(type)) + " chunk " + std::to_string(chunk));
            }
        }
    }
}

void TestExportStreaming::ggufEditedAndFactoredEqualWholeTensorPath()
{
    LL_REQUIRE_SHARED();
    const std::string dir = memoryScratch();
    for (const std::string& src : {shared("models/stories260K/stories260K.bin"), llama3Synthetic()}) {
        auto m = openModel(src);
        editEveryWay(*m);
        for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_K}) {
            for (size_t chunk : {size_t{1}, size_t{0}}) {
                if (type == DType::Q4_K && chunk != 0)
                    continue;
                GgufExportOptions opt;
                opt.type = type;
                opt.chunkBytes = chunk;
                opt.overwrite = true;
                exportGguf(*m, dir + "/edited.gguf", opt);
                requireWholeTensorBytes(*m, dir + "/edited.gguf", src + " edited, " + std::string(dtypeName(type)));
            }
        }
    }
}

// Layers kept compressed in the edited model (quant/packed_storage.h): packed
// grids are decoded row by row; ggml blocks of the target type are copied.
void TestExportStreaming::packedLayersExportAsTheirValues()
{
    LL_REQUIRE_SHARED();
    const std::string dir = memoryScratch();
    QuantizeModelOptions rtn;
    rtn.config.method = QuantMethod::Rtn;
    rtn.config.grid = {4, false, 32};
    // stories260K-hf: grid rows of q and k permuted to llama.cpp's layout as they are decoded.
    const auto grids = quantizeModel(*openModel(shared("models/stories260K-hf")), rtn).model;
    QCOMPARE(grids->stored.at(static_cast<size_t>(grids->findLogical("blocks.0.attn.q.weight")->replacedBy)).dtype, DType::Grid);
    for (DType type : {DType::F32, DType::F16, DType::Q8_0})
        for (size_t chunk : {size_t{1}, size_t{0}}) {
            GgufExportOptions opt;
            opt.type = type;
            opt.chunkBytes = chunk;
            opt.overwrite = true;
            exportGguf(*grids, dir + "/grid.gguf", opt);
            requireWholeTensorBytes(*grids, dir + "/grid.gguf", "RTN grids as " + std::string(dtypeName(type)));
        }
    HfExportOptions h;
    h.chunkBytes = 1;
    exportHf(*grids, dir + "/grid-hf", h);
    requireWholeTensorValues(*grids, dir + "/grid-hf", DType::F32, "RTN grids, HF");

    // llama.cpp's Q8_0 applied in LayerLab to the attention, exported as Q8_0: the blocks themselves.
    QuantizeModelOptions q8;
    q8.config.method = QuantMethod::Ggml;
    q8.config.ggmlType = DType::Q8_0;
    q8.layers = "attn"; // rows of 64 values (the MLP's down rows of 172 hold no whole blocks)
    const auto blocks = quantizeModel(*openModel(shared("models/stories260K/stories260K.bin")), q8).model;
    GgufExportOptions opt;
    opt.type = DType::Q8_0;
    exportGguf(*blocks, dir + "/q8.gguf", opt);
    const auto g = openModel(dir + "/q8.gguf");
    int copied = 0;
    for (const LogicalTensor& t : blocks->tensors) {
        if (t.replacedBy < 0)
            continue;
        const TensorRef& edited = blocks->stored.at(static_cast<size_t>(t.replacedBy));
        QCOMPARE(edited.dtype, DType::Q8_0);
        const TensorRef& out = g->storedOf(*g->findLogical(t.logicalName));
        QVERIFY2(out.nbytes == edited.nbytes && std::memcmp(out.data, edited.data, edited.nbytes) == 0, t.logicalName.c_str());
        ++copied;
    }
    QCOMPARE(copied, 20);
}

void TestExportStreaming::hfEqualsWholeTensorPathAtEveryBandSize()
{
    LL_REQUIRE_SHARED();
    const std::string dir = memoryScratch();
    std::vector<std::pair<std::string, std::function<void(Model&)>>> cases = {
        {shared("models/stories260K/stories260K.bin"), {}},
        {shared("models/stories260K/stories260K.bin"), editEveryWay},
        {shared("models/tiny-llama-fp16-sharded"), {}},
        {llama3Synthetic(), editEveryWay},
        // GPT-2: fused, transposed c_attn; an edited part makes it be put together whole.
        {shared("models/tiny-gpt2"),
         [](Model& m) {
             replaceTensor(m, "blocks.1.attn.k.weight", randomValues(64 * 64, 11), {64, 64});
             replaceTensorFactored(m, "blocks.0.mlp.up.weight", randomValues(256 * 4, 12), randomValues(4 * 64, 13), 256, 4, 64);
         }},
    };
    // Phi-3 (contiguous fused parts) and GPT-NeoX (per-head strided parts), edited: rows gathered part by part.
    const json phi3{{"model_type", "phi3"}, {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 1},
                    {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 64},
                    {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", false}};
    cases.push_back({writeRandomHf("phi3", phi3,
                                   {{"model.embed_tokens.weight", {64, 32}}, {"model.layers.0.input_layernorm.weight", {32}},
                                    {"model.layers.0.self_attn.qkv_proj.weight", {64, 32}},
                                    {"model.layers.0.self_attn.o_proj.weight", {32, 32}},
                                    {"model.layers.0.post_attention_layernorm.weight", {32}},
                                    {"model.layers.0.mlp.gate_up_proj.weight", {96, 32}},
                                    {"model.layers.0.mlp.down_proj.weight", {32, 48}}, {"model.norm.weight", {32}},
                                    {"lm_head.weight", {64, 32}}}),
                     [](Model& m) {
                         replaceTensor(m, "blocks.0.attn.k.weight", randomValues(16 * 32, 21), {16, 32});
                         replaceTensorFactored(m, "blocks.0.mlp.up.weight", randomValues(48 * 4, 22), randomValues(4 * 32, 23), 48, 4, 32);
                     }});
    const json neox{{"model_type", "gpt_neox"}, {"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 1},
                    {"num_attention_heads", 4}, {"vocab_size", 64},  {"max_position_embeddings", 64},
                    {"layer_norm_eps", 1e-5},   {"rotary_pct", 0.25}, {"tie_word_embeddings", false}};
    cases.push_back(
        {writeRandomHf("neox", neox,
                       {{"gpt_neox.embed_in.weight", {64, 32}}, {"gpt_neox.layers.0.input_layernorm.weight", {32}},
                        {"gpt_neox.layers.0.input_layernorm.bias", {32}},
                        {"gpt_neox.layers.0.attention.query_key_value.weight", {96, 32}},
                        {"gpt_neox.layers.0.attention.query_key_value.bias", {96}},
                        {"gpt_neox.layers.0.attention.dense.weight", {32, 32}}, {"gpt_neox.layers.0.attention.dense.bias", {32}},
                        {"gpt_neox.layers.0.post_attention_layernorm.weight", {32}},
                        {"gpt_neox.layers.0.post_attention_layernorm.bias", {32}},
                        {"gpt_neox.layers.0.mlp.dense_h_to_4h.weight", {64, 32}}, {"gpt_neox.layers.0.mlp.dense_h_to_4h.bias", {64}},
                        {"gpt_neox.layers.0.mlp.dense_4h_to_h.weight", {32, 64}}, {"gpt_neox.layers.0.mlp.dense_4h_to_h.bias", {32}},
                        {"gpt_neox.final_layer_norm.weight", {32}}, {"gpt_neox.final_layer_norm.bias", {32}},
                        {"embed_out.weight", {64, 32}}}),
         [](Model& m) {
             replaceTensor(m, "blocks.0.attn.k.weight", randomValues(32 * 32, 31), {32, 32});
             replaceTensor(m, "blocks.0.attn.v.bias", randomValues(32, 32), {32});
         }});
    for (size_t c = 0; c < cases.size(); ++c) {
        auto m = openModel(cases[c].first);
        if (cases[c].second)
            cases[c].second(*m);
        for (DType type : {DType::F32, DType::F16, DType::BF16}) {
            std::map<std::string, std::string> first;
            for (size_t chunk : {size_t{0}, size_t{1}, size_t{700}}) {
                if (chunk != 0 && type != DType::F16)
                    continue; // the bands are cut the same way for every float type
                HfExportOptions opt;
                opt.dtype = type;
                opt.chunkBytes = chunk;
                opt.overwrite = true;
                opt.shardBytes = c == 0 ? 200000 : 0; // bands across shard files once
                const std::string out = dir + "/hf" + std::to_string(c);
                exportHf(*m, out, opt);
                const std::string what = cases[c].first + (cases[c].second ? " edited " : " ") + std::string(dtypeName(type));
                if (chunk == 0) {
                    requireWholeTensorValues(*m, out, type, what);
                    first = folderBytes(out);
                } else {
                    QVERIFY2(folderBytes(out) == first, (what + ", chunk " + std::to_string(chunk)).c_str());
                }
            }
        }
    }
}

void TestExportStreaming::heapStaysFarBelowOneTensor()
{
    // One block of hidden 2048 with a 8192 x 2048 embedding and head: 64 MiB each in F32, 32 MiB stored (BF16).
    synth::ShapeOverrides o;
    o.layers = 1;
    o.hidden = 2048;
    o.vocab = 8192;
    o.intermediate = 512;
    const synth::SynthShape s = synth::overrideShape(synth::synthShape("tiny"), o);
    const std::string src = test::scratchDir() + "/wide";
    synth::writeSyntheticHf(s, DType::BF16, src, {});
    const auto m = openModel(src);
    const int64_t tensorF32 = m->findLogical("embed.weight")->elements() * 4;
    QCOMPARE(tensorF32, int64_t{64} << 20);

    const auto peakOf = [&](const std::function<void()>& exportIt) {
        gPeakBytes.store(gLiveBytes.load());
        const int64_t before = gLiveBytes.load();
        exportIt();
        return gPeakBytes.load() - before;
    };
    const std::string dir = test::scratchDir();
    for (DType type : {DType::F16, DType::Q8_0, DType::BF16}) {
        GgufExportOptions g;
        g.type = type;
        g.chunkBytes = size_t{1} << 20;
        const int64_t peak = peakOf([&] { exportGguf(*m, dir + "/wide-" + std::string(dtypeName(type)) + ".gguf", g); });
        qInfo("GGUF %s: peak heap %.1f MiB during the export; one tensor in F32 is %.0f MiB", dtypeName(type).data(),
              static_cast<double>(peak) / (1 << 20), static_cast<double>(tensorF32) / (1 << 20));
        // The F32 band (1 MiB), two encoded bands, the 8 MiB O_DIRECT staging buffer, the header.
        QVERIFY2(peak < tensorF32 / 4, dtypeName(type).data());
    }
    HfExportOptions h;
    h.dtype = DType::F16;
    h.chunkBytes = size_t{1} << 20;
    const int64_t peak = peakOf([&] { exportHf(*m, dir + "/wide-hf", h); });
    qInfo("HF F16: peak heap %.1f MiB", static_cast<double>(peak) / (1 << 20));
    QVERIFY(peak < tensorF32 / 4);
}

void TestExportStreaming::cancelAndWriteFailureMidTensorLeaveNothing()
{
    const std::string src = llama3Synthetic();
    const auto m = openModel(src);
    const std::string dir = test::scratchDir();
    // Cancelled after a few bands of the first large tensor: the bands still queued are dropped.
    for (int after : {2, 5}) {
        test::CancelAfter cancel(after);
        GgufExportOptions g;
        g.type = DType::Q8_0;
        g.chunkBytes = 4096;
        g.progress = &cancel;
        QVERIFY_THROWS_EXCEPTION(Error, exportGguf(*m, dir + "/c.gguf", g));
        test::CancelAfter cancel2(after);
        HfExportOptions h;
        h.chunkBytes = 4096;
        h.progress = &cancel2;
        QVERIFY_THROWS_EXCEPTION(Error, exportHf(*m, dir + "/c-hf", h));
        QVERIFY(fs::is_empty(dir));
    }
    // A full disk while the writing thread has bands queued: the error names the file, nothing is left.
    for (uint64_t afterBytes : {uint64_t{100000}, uint64_t{900000}}) {
        testing::injectWriteFailure(afterBytes, ENOSPC);
        GgufExportOptions g;
        g.chunkBytes = 4096;
        std::string message;
        try {
            exportGguf(*m, dir + "/full.gguf", g);
        } catch (const Error& e) {
            message = e.what();
        }
        testing::injectWriteFailure(0, 0);
        QVERIFY2(contains(message, "full.gguf") && contains(message, "disk is full"), message.c_str());
        QVERIFY(fs::is_empty(dir));
    }
}

void TestExportStreaming::llama3RopeFactorsByHand()
{
    // convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors, by hand for Llama 3.2
    // (head 64, theta 5e5, factor 32, low 1, high 4, original context 8192): the
    // wavelengths 2 pi / theta^(-2i/64) pass 8192 / 4 = 2048 at i = 15 and 8192 at i = 18.
    // i = 15: f = 5e5^(-30/64) = 0.00213112, w = 2948.3, s = (8192 / w - 1) / 3 = 0.59285,
    // factor = 1 / ((1 - s) / 32 + s) = 1.65133.
    const std::vector<float> f = llama3RopeFreqFactors(64, 500000.0, {32.0, 1.0, 4.0, 8192.0});
    QCOMPARE(f.size(), size_t{32});
    for (int i = 0; i < 15; ++i)
        QCOMPARE(f[static_cast<size_t>(i)], 1.0f);
    for (int i = 18; i < 32; ++i)
        QCOMPARE(f[static_cast<size_t>(i)], 32.0f);
    const double middle[] = {1.6513291695560322, 3.2922621028899894, 9.66672972379381}; // i = 15, 16, 17
    for (int i = 0; i < 3; ++i)
        QVERIFY2(std::fabs(f[static_cast<size_t>(15 + i)] / middle[i] - 1.0) < 1e-6, std::to_string(15 + i).c_str());
    // Llama 3.1 8B (head 128, factor 8): six dimensions in the band, i = 29 .. 34.
    const std::vector<float> g = llama3RopeFreqFactors(128, 500000.0, {8.0, 1.0, 4.0, 8192.0});
    const double band[] = {1.2074838369971943, 1.5534145675928248, 2.0263131368975973,
                           2.694529687863941,  3.684252399179539,  5.257326787751527};
    QCOMPARE(g[28], 1.0f);
    QCOMPARE(g[35], 8.0f);
    for (int i = 0; i < 6; ++i)
        QVERIFY(std::fabs(g[static_cast<size_t>(29 + i)] / band[i] - 1.0) < 1e-6);
    // The converter asserts that the band exists.
    QVERIFY_THROWS_EXCEPTION(Error, llama3RopeFreqFactors(64, 500000.0, {8.0, 2.0, 2.0, 8192.0}));
}

void TestExportStreaming::llama3RopeScalingInGguf()
{
    const std::string src = llama3Synthetic();
    const auto m = openModel(src);
    const std::string out = test::scratchDir() + "/llama3.gguf";
    const ExportResult r = exportGguf(*m, out);
    const auto g = openModel(out);
    // First, F32, rope dims / 2 values: as the converter writes it; no rope scaling key.
    const TensorRef& first = g->stored.front();
    QCOMPARE(first.name, std::string("rope_freqs.weight"));
    QCOMPARE(first.dtype, DType::F32);
    QCOMPARE(first.shape, (std::vector<int64_t>{32}));
    QCOMPARE(r.tensors.front().name, std::string("rope_freqs.weight"));
    for (const auto& [key, value] : g->metadata.items())
        QVERIFY2(!contains(key, "rope.scaling"), key.c_str());
    const std::vector<float> factors = decodeStored(first);
    QVERIFY(factors == llama3RopeFreqFactors(64, m->config.ropeTheta, {32.0, 1.0, 4.0, 8192.0}));
    // The engine's own Llama 3 frequencies (from config.json) are the plain ones divided by these factors.
    const RotarySpec scaled = architectureOf(m->config, m->metadata).rotary;
    nlohmann::json plainMeta = m->metadata;
    plainMeta.erase("rope_scaling");
    plainMeta.erase("rope_parameters");
    const RotarySpec plain = architectureOf(m->config, plainMeta).rotary;
    for (size_t i = 0; i < factors.size(); ++i)
        QVERIFY2(std::fabs(plain.invFreq[i] / factors[i] / scaled.invFreq[i] - 1.0f) < 1e-6f, std::to_string(i).c_str());
    // Read back, the GGUF computes what the folder computes: the engine divides
    // the plain frequencies by rope_freqs (before: the unscaled logits).
    {
        // F32 weights and exact products on both sides: only the rotary angles may differ.
        GgufExportOptions f32;
        f32.type = DType::F32;
        const std::string exact = test::scratchDir() + "/llama3-f32.gguf";
        exportGguf(*m, exact, f32);
        setBf16Products(Bf16Products::F32);
        const Transformer fromFolder(*m), fromGguf(*openModel(exact));
        const std::vector<int32_t> ids{1, 30, 200, 7, 99, 400, 12, 3, 64, 5, 250, 17};
        const Eigen::MatrixXf a = fromFolder.logits(ids), b = fromGguf.logits(ids);
        QVERIFY((a - b).cwiseAbs().maxCoeff() <= 1e-4f * a.cwiseAbs().maxCoeff());
        auto withoutFactors = openModel(exact);
        for (LogicalTensor& t : withoutFactors->tensors)
            if (t.logicalName == "rope_freqs.weight")
                t.logicalName = "unused";
        const Eigen::MatrixXf c = Transformer(*withoutFactors).logits(ids);
        setBf16Products(Bf16Products::Native);
        QVERIFY((a - c).cwiseAbs().maxCoeff() > 10 * (a - b).cwiseAbs().maxCoeff()); // the factors matter here
    }
    // Exported again from that GGUF, the tensor travels as it is.
    const std::string again = test::scratchDir() + "/llama3-q8.gguf";
    GgufExportOptions q8;
    q8.type = DType::Q8_0;
    exportGguf(*g, again, q8);
    const auto g2 = openModel(again);
    const LogicalTensor* ropeAgain = g2->findByStoredName("rope_freqs.weight");
    QVERIFY(ropeAgain && decodeStored(g2->storedOf(*ropeAgain)) == factors);
    // Other scalings are still refused, naming the model.
    auto yarn = openModel(src);
    yarn->metadata["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    yarn->metadata.erase("rope_parameters");
    try {
        exportGguf(*yarn, test::scratchDir() + "/yarn.gguf");
        QFAIL("yarn was exported");
    } catch (const Error& e) {
        QVERIFY2(contains(e.what(), "yarn") && contains(e.what(), src), e.what());
    }
}

QTEST_APPLESS_MAIN(TestExportStreaming)
#include "test_export_streaming.moc"
