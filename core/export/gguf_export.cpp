#include "export/gguf_export.h"

#include "util/atomic_file.h"
#include "export/export_common.h"
#include "export/gguf_vocab.h"
#include "export/gguf_writer.h"
#include "export/tensor_stream.h"
#include "pipeline/imatrix.h"
#include "model/naming.h"
#include "model/tensor_data.h"
#include "quant/ggml_quantize.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>

namespace ll {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kArch = "llama";

struct Item {
    PlannedTensor tensor;
    DType type = DType::F32;
    std::string rule;                      // a preset's reason for this type (empty: its base type, or no preset)
    const LogicalTensor* source = nullptr; // null for tensors the export computes (rope_freqs.weight)
    const float* importance = nullptr;     // the imatrix's entry for it (quantized types only)
    bool copied = false;                   // written as the stored bytes, no second rounding
};

std::string modelName(const Model& m, const std::string& requested)
{
    if (!requested.empty())
        return requested;
    if (m.metadata.is_object() && m.metadata.contains("general.name") && m.metadata["general.name"].is_string())
        return m.metadata["general.name"].get<std::string>();
    fs::path p = fs::path(m.path).lexically_normal();
    if (p.filename().empty())
        p = p.parent_path();
    std::error_code ec;
    return fs::is_directory(p, ec) ? p.filename().string() : p.stem().string();
}

// The rotary scaling block of a Hugging Face config: transformers 5
// "rope_parameters", 4.x "rope_scaling"; null when there is none.
const json* hfRopeScaling(const Model& m)
{
    if (m.format != "safetensors" || !m.metadata.is_object())
        return nullptr;
    for (const char* key : {"rope_parameters", "rope_scaling"})
        if (m.metadata.contains(key) && m.metadata[key].is_object())
            return &m.metadata[key];
    return nullptr;
}

std::string ropeTypeOf(const json& rope)
{
    for (const char* key : {"rope_type", "type"})
        if (rope.contains(key) && rope[key].is_string())
            return rope[key].get<std::string>();
    return "default";
}

double ropeNumber(const json& rope, const char* key, double fallback, const std::string& path)
{
    if (!rope.contains(key) || rope[key].is_null())
        return fallback;
    if (!rope[key].is_number())
        fail(ErrorCode::Malformed, path, std::string("rope scaling '") + key + "' is not a number");
    return rope[key].get<double>();
}

// Rope scaling of a Hugging Face config, as llama.cpp's convert_hf_to_gguf.py
// writes it for llama: "linear" as two keys, "llama3" as the rope_freqs.weight
// tensor (no key); the rest refused. Returns rope_freqs' values, if any.
std::optional<std::vector<float>> setRopeScaling(GgufWriter& w, const Model& m, int64_t ropeDims)
{
    const json* rope = hfRopeScaling(m);
    if (!rope)
        return std::nullopt;
    const std::string type = ropeTypeOf(*rope);
    if (type == "default")
        return std::nullopt;
    if (type == "linear" && rope->contains("factor") && (*rope)["factor"].is_number()) {
        w.setString(kArch + ".rope.scaling.type", "linear");
        w.setF32(kArch + ".rope.scaling.factor", (*rope)["factor"].get<float>());
        return std::nullopt;
    }
    if (type == "llama3") {
        Llama3RopeScaling s;
        s.factor = ropeNumber(*rope, "factor", s.factor, m.path);
        s.lowFreqFactor = ropeNumber(*rope, "low_freq_factor", s.lowFreqFactor, m.path);
        s.highFreqFactor = ropeNumber(*rope, "high_freq_factor", s.highFreqFactor, m.path);
        s.originalContext = ropeNumber(*rope, "original_max_position_embeddings", s.originalContext, m.path);
        try {
            return llama3RopeFreqFactors(ropeDims, m.config.ropeTheta, s);
        } catch (const Error& e) {
            fail(e.code(), m.path, e.problem());
        }
    }
    fail(ErrorCode::UnsupportedArch, m.path, "uses rope scaling '" + type + "', which the GGUF export does not write yet");
}

// llama.cpp's llama graph takes one FFN width and head count for all blocks
// (per-block arrays exist for other architectures only), and so does LayerLab's reader.
int64_t uniformValue(const std::vector<int64_t>& perBlock, int64_t fallback, const char* what, const std::string& path)
{
    for (int64_t v : perBlock)
        if (v != perBlock[0]) {
            std::string list;
            for (int64_t x : perBlock)
                list += (list.empty() ? "" : ", ") + std::to_string(x);
            fail(ErrorCode::InvalidArgument, path,
                 std::string("blocks now have different ") + what + " (" + list
                     + "); a llama GGUF describes one value for all blocks");
        }
    return perBlock.empty() ? fallback : perBlock[0];
}

void setHyperParameters(GgufWriter& w, const Model& m, const CurrentDims& d, std::vector<std::string>& notes)
{
    const ModelConfig& c = m.config;
    const std::string p = kArch + ".";
    w.setU32(p + "context_length", static_cast<uint32_t>(c.maxPositions));
    w.setU32(p + "embedding_length", static_cast<uint32_t>(d.hidden));
    w.setU32(p + "block_count", static_cast<uint32_t>(c.layers));
    const int64_t ffn = uniformValue(d.ffn, c.intermediate, "FFN widths", m.path);
    const int64_t heads = uniformValue(d.heads, c.heads, "attention head counts", m.path);
    const int64_t kvHeads = uniformValue(d.kvHeads, c.kvHeads, "key/value head counts", m.path);
    w.setU32(p + "feed_forward_length", static_cast<uint32_t>(ffn));
    w.setU32(p + "rope.dimension_count", static_cast<uint32_t>(std::lround(static_cast<double>(c.headDim) * c.partialRotary)));
    w.setU32(p + "attention.head_count", static_cast<uint32_t>(heads));
    w.setU32(p + "attention.head_count_kv", static_cast<uint32_t>(kvHeads));
    if (heads * c.headDim != d.hidden) { // llama.cpp assumes head size = embedding / heads unless told
        w.setU32(p + "attention.key_length", static_cast<uint32_t>(c.headDim));
        w.setU32(p + "attention.value_length", static_cast<uint32_t>(c.headDim));
    }
    w.setF32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(c.normEps));
    w.setF32(p + "rope.freq_base", static_cast<float>(c.ropeTheta));
    w.setU32(p + "vocab_size", static_cast<uint32_t>(d.vocab));
    auto changed = [&](const char* key, int64_t before, int64_t now) {
        if (before != now)
            notes.push_back(p + key + " " + std::to_string(before) + " -> " + std::to_string(now)
                            + " (derived from the current tensor shapes)");
    };
    changed("feed_forward_length", c.intermediate, ffn);
    changed("attention.head_count", c.heads, heads);
    changed("attention.head_count_kv", c.kvHeads, kvHeads);
    changed("embedding_length", c.hidden, d.hidden);
    changed("vocab_size", c.vocab, d.vocab);
}

// general.* and llama.* keys of a GGUF source that the export does not set itself (rope scaling, license...).
void copySourceKeys(GgufWriter& w, const Model& m, const std::string& prefix)
{
    if (m.format != "gguf" || !m.metadata.is_object())
        return;
    static const char* const kOwn[] = {"general.architecture", "general.name", "general.file_type",
                                       "general.quantization_version", "general.alignment"};
    for (const auto& [key, value] : m.metadata.items()) {
        if (key.rfind(prefix, 0) != 0 || w.has(key))
            continue;
        bool own = false;
        for (const char* k : kOwn)
            own = own || key == k;
        bool nested = false;
        if (value.is_array())
            for (const auto& e : value)
                nested = nested || e.is_array() || e.is_object();
        if (!own && !nested && !value.is_null() && !value.is_object())
            w.setInferred(key, value);
    }
}

// Every tensor's type: the requested one for each 2-D weight, or the preset's choice
// per tensor; both with llama-quantize's fallback for rows that do not fill its blocks.
// As llama-quantize: each quantized tensor the imatrix has an entry for is
// rounded with it; an entry of the wrong length is an error (except for the
// embedding, which llama.cpp skips with a warning).
void useImatrix(std::vector<Item>& items, const Imatrix& imatrix, const std::string& file, ExportResult& result)
{
    int used = 0;
    for (Item& it : items) {
        if (!isQuantized(it.type))
            continue;
        const std::vector<float>* v = imatrix.find(it.tensor.name);
        if (!v)
            continue;
        if (static_cast<int64_t>(v->size()) != it.tensor.rowLength()) {
            if (it.tensor.name == "token_embd.weight")
                continue;
            fail(ErrorCode::InvalidArgument, file,
                 "the imatrix has " + std::to_string(v->size()) + " values for " + it.tensor.name + ", whose rows have "
                     + std::to_string(it.tensor.rowLength()) + ": it was computed for another model");
        }
        it.importance = v->data();
        ++used;
    }
    result.notes.push_back("imatrix " + file + ": " + std::to_string(used) + " quantized tensors rounded with its importance");
}

void chooseTypes(std::vector<Item>& items, const GgufExportOptions& opt, const GgufPresetModel& model, ExportResult& result)
{
    if (!opt.preset) {
        for (Item& it : items) {
            if (it.tensor.shape.size() < 2)
                continue; // F32
            std::string reason;
            it.type = ggufTypeFor(opt.type, it.tensor.rowLength(), &reason);
            if (it.type != opt.type)
                result.fallbacks.push_back({it.tensor.name, std::string(dtypeName(opt.type)), std::string(dtypeName(it.type)), reason});
        }
        return;
    }
    std::vector<GgufPresetTensor> list;
    list.reserve(items.size());
    for (const Item& it : items)
        list.push_back({it.tensor.name, it.tensor.shape});
    const std::vector<GgufTypeChoice> choices = chooseGgufPresetTypes(*opt.preset, model, list);
    for (size_t i = 0; i < items.size(); ++i) {
        const GgufTypeChoice& c = choices[i];
        if (!c.quantized)
            continue; // norms and 1-D tensors: F32, as llama-quantize copies them from an F32 GGUF
        items[i].type = c.type;
        items[i].rule = c.rule;
        if (c.type != c.chosen)
            result.fallbacks.push_back({items[i].tensor.name, std::string(dtypeName(c.chosen)), std::string(dtypeName(c.type)), c.fallback});
    }
}

} // namespace

std::vector<float> llama3RopeFreqFactors(int64_t ropeDims, double theta, const Llama3RopeScaling& s)
{
    const double lowWavelen = s.originalContext / s.lowFreqFactor;
    const double highWavelen = s.originalContext / s.highFreqFactor;
    if (!(s.factor > 0) || !(s.lowFreqFactor > 0) || !(s.highFreqFactor > 0) || !(s.originalContext > 0)
        || !(lowWavelen != highWavelen) || ropeDims <= 0 || ropeDims % 2 != 0)
        fail(ErrorCode::Malformed, "",
             "llama3 rope scaling needs positive factor, low_freq_factor, high_freq_factor and "
             "original_max_position_embeddings with low_freq_factor != high_freq_factor");
    std::vector<float> factors(static_cast<size_t>(ropeDims / 2));
    for (int64_t i = 0; i < ropeDims / 2; ++i) {
        // The base frequency in float, as torch.float32 holds it in the converter (and the engine).
        const float freq = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(ropeDims)));
        const double wavelen = 2.0 * M_PI / freq;
        double f = 1.0;
        if (wavelen < highWavelen) {
            f = 1.0;
        } else if (wavelen > lowWavelen) {
            f = s.factor;
        } else {
            const double smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
            f = 1.0 / ((1.0 - smooth) / s.factor + smooth);
        }
        factors[static_cast<size_t>(i)] = static_cast<float>(f);
    }
    return factors;
}

std::vector<DType> ggufExportTypes()
{
    std::vector<DType> out;
    for (DType t : allDTypes())
        if (canExportGgufType(t))
            out.push_back(t);
    const auto bits = [](DType t) {
        const DTypeLayout l = dtypeLayout(t);
        return 8.0 * static_cast<double>(l.blockBytes) / static_cast<double>(l.blockElems);
    };
    std::stable_sort(out.begin(), out.end(), [&](DType a, DType b) { return bits(a) > bits(b); });
    return out;
}

std::string ggufExportTypeNames()
{
    std::string names;
    for (DType t : ggufExportTypes())
        names += (names.empty() ? "" : ", ") + std::string(dtypeName(t));
    return names;
}

bool canExportGgufType(DType t)
{
    if (t == DType::F32 || t == DType::F16 || t == DType::BF16)
        return true;
    try {
        ggufFileType(t);
    } catch (const Error&) {
        return false; // a type llama.cpp has no whole-model file type for
    }
    return canQuantizeGgml(t);
}

DType ggufTypeFor(DType requested, int64_t rowLength, std::string* reason)
{
    const DTypeLayout layout = dtypeLayout(requested);
    if (layout.blockElems <= 1 || rowLength % layout.blockElems == 0)
        return requested;
    // llama-quantize's fallbacks (quant/ggml_quantize.h: 32-value blocks, or F16
    // when the row does not hold those either); 32-value types have nothing smaller: F16.
    DType fallback = ggmlFallbackType(requested, rowLength);
    if (fallback == requested)
        fallback = DType::F16;
    if (reason)
        *reason = "rows of " + std::to_string(rowLength) + " values are not a multiple of the "
                  + std::to_string(layout.blockElems) + "-value blocks of " + std::string(dtypeName(requested));
    return fallback;
}

uint32_t ggufFileType(DType t)
{
    switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::Q2_K: return 10;
    case DType::Q3_K: return 11; // Q3_K_S: every weight Q3_K
    case DType::Q4_K: return 14; // Q4_K_S
    case DType::Q5_K: return 16; // Q5_K_S
    case DType::Q6_K: return 18;
    case DType::IQ4_NL: return 25;
    case DType::IQ4_XS: return 30;
    case DType::BF16: return 32;
    default: fail(ErrorCode::UnsupportedDType, "", std::string(dtypeName(t)) + " has no llama.cpp file type");
    }
}

namespace {

// Everything an export decides before it writes a byte: the tensors, their
// types and fallbacks, the header. Reads no tensor data, so it is also the
// size estimate (estimateGgufExport). `path` names errors.
struct GgufPlan {
    ExportResult result;
    std::vector<Item> items;
    GgufWriter writer;
};

GgufPlan planGguf(const Model& m, const std::string& path, const GgufExportOptions& opt)
{
    if (!opt.preset && !canExportGgufType(opt.type))
        fail(ErrorCode::InvalidArgument, path,
             "GGUF export writes " + ggufExportTypeNames() + ", not " + std::string(dtypeName(opt.type)));
    const ModelConfig& c = m.config;
    if (c.family != Family::Llama && c.family != Family::Mistral)
        fail(ErrorCode::UnsupportedArch, m.path,
             "GGUF export supports llama-family models (llama, mistral) for now, not " + std::string(familyName(c.family)));
    GgufPlan plan;
    ExportResult& result = plan.result;
    std::vector<Item>& items = plan.items;
    GgufWriter& w = plan.writer;
    result.format = "gguf";
    const bool fromGguf = m.format == "gguf";
    const RotaryPermute permute = c.ropeInterleaved ? RotaryPermute::None : RotaryPermute::HalvesToInterleaved;
    if (permute != RotaryPermute::None)
        result.notes.push_back("q and k rows permuted from Hugging Face's rotate_half layout to llama.cpp's interleaved layout");

    // A tied head stays implicit (llama.cpp falls back to token_embd) unless one side was edited.
    const LogicalTensor* head = m.find(-1, Role::LmHead);
    const LogicalTensor* embed = m.find(-1, Role::Embedding);
    const bool keepTied = head && head->tied && !head->edited() && (!embed || !embed->edited());
    if (keepTied)
        result.notes.push_back("the LM head is tied to the embedding: output.weight is left out and llama.cpp uses token_embd.weight");

    std::vector<std::string> skipped;
    int64_t zeroBiases = 0;
    for (const LogicalTensor& t : m.tensors) {
        if (t.tied && keepTied)
            continue;
        // An all-zero bias computes as none, and llama.cpp takes a q bias to be
        // n_embd long, which it is not after heads were pruned (FLAP's zero q,
        // k, v, gate and up biases are there for transformers' configs).
        if (t.isBias && t.shape.size() == 1) {
            const std::vector<float> v = readLogical(m, t);
            if (std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; })) {
                ++zeroBiases;
                continue;
            }
        }
        std::string name = ggufNameOf(t);
        if (name.empty() && fromGguf && t.role == Role::Other)
            name = m.storedOf(t).name; // a tensor llama.cpp knows by this name (rope_freqs.weight ...)
        if (name.empty()) {
            skipped.push_back(t.logicalName);
            continue;
        }
        const bool rotary = t.role == Role::AttnQ || t.role == Role::AttnK;
        Item it;
        it.source = &t;
        it.tensor = logicalAsIs(m, t, name, rotary ? permute : RotaryPermute::None, c.headDim);
        items.push_back(std::move(it));
    }
    if (zeroBiases > 0)
        result.notes.push_back(std::to_string(zeroBiases) + " all-zero bias tensors left out (llama.cpp reads a missing bias as zero)");
    if (!skipped.empty()) {
        std::string list;
        for (const auto& s : skipped)
            list += (list.empty() ? "" : ", ") + s;
        result.notes.push_back("no llama.cpp name for these tensors, left out: " + list);
    }

    const CurrentDims dims = currentDims(m);
    // What the file's hyper-parameters will say (llama-quantize reads them there).
    const GgufPresetModel presetModel{c.layers, uniformValue(dims.heads, c.heads, "attention head counts", m.path),
                                      uniformValue(dims.kvHeads, c.kvHeads, "key/value head counts", m.path),
                                      opt.imatrix != nullptr};
    chooseTypes(items, opt, presetModel, result);
    if (opt.imatrix)
        useImatrix(items, *opt.imatrix, opt.imatrixFile, result);
    if (opt.preset)
        result.preset = ggufPresetInfo(*opt.preset).name;
    w.setString("general.architecture", kArch);
    w.setString("general.name", modelName(m, opt.name));
    copySourceKeys(w, m, "general.");
    setHyperParameters(w, m, dims, result.notes);
    const int64_t ropeDims = std::lround(static_cast<double>(c.headDim) * c.partialRotary);
    if (auto factors = setRopeScaling(w, m, ropeDims)) {
        // First, as convert_hf_to_gguf.py writes its generated tensors before the model's.
        Item rope;
        rope.tensor = computedTensor("rope_freqs.weight", std::move(*factors));
        items.insert(items.begin(), std::move(rope));
        result.notes.push_back("Llama 3 rope scaling written as rope_freqs.weight (per-dimension frequency divisors), "
                               "as llama.cpp's converter does");
    }
    copySourceKeys(w, m, kArch + ".");
    w.setU32("general.file_type", opt.preset ? ggufPresetInfo(*opt.preset).fileType : ggufFileType(opt.type));
    bool quantized = false;
    for (const auto& it : items)
        quantized = quantized || isQuantized(it.type);
    if (quantized)
        w.setU32("general.quantization_version", 2); // GGML_QNT_VERSION
    if (opt.imatrix) { // the keys llama-quantize --imatrix writes
        w.setString("quantize.imatrix.file", opt.imatrixFile);
        if (!opt.imatrix->dataset.empty())
            w.setString("quantize.imatrix.dataset", opt.imatrix->dataset);
        w.set("quantize.imatrix.entries_count", GgufType::I32, static_cast<int32_t>(opt.imatrix->entries.size()));
        if (opt.imatrix->chunks > 0)
            w.set("quantize.imatrix.chunks_count", GgufType::I32, opt.imatrix->chunks);
    }
    writeTokenizerKeys(w, m, dims.vocab, result.notes);
    for (const auto& it : items)
        w.addTensor(it.tensor.name, it.tensor.shape, it.type);
    return plan;
}

} // namespace

ExportResult estimateGgufExport(const Model& m, const GgufExportOptions& opt)
{
    GgufPlan plan = planGguf(m, m.path, opt);
    for (size_t i = 0; i < plan.items.size(); ++i) {
        const Item& it = plan.items[i];
        plan.result.tensors.push_back({it.tensor.name, it.tensor.shape, std::string(dtypeName(it.type)), "",
                                       plan.writer.tensorBytes(i), it.rule});
    }
    plan.result.totalBytes = plan.writer.fileBytes();
    return std::move(plan.result);
}

ExportResult exportGguf(const Model& m, const std::string& path, const GgufExportOptions& opt)
{
    refuseUnexportable(m, path);
    refuseSourceOverlap(sourceFilesOf(m), sourceFolderOf(m), path, false);
    throwIfCancelledWriting(opt.progress, path);
    GgufPlan plan = planGguf(m, path, opt);
    ExportResult& result = plan.result;
    std::vector<Item>& items = plan.items;
    const GgufWriter& w = plan.writer;
    AtomicFile file(path, opt.overwrite);
    for (const std::string& stale : file.swept())
        result.notes.push_back("removed " + stale + ", a partial file left by an export that was killed");
    w.writeHeader(file.out());
    int64_t total = 0;
    for (const auto& it : items)
        total += it.tensor.elements();
    BandProgress progress(opt.progress, path, total);
    StreamBuffers buffers(opt.chunkBytes ? opt.chunkBytes : kDefaultExportChunkBytes);
    buffers.releaseAfterUse(m.files);
    for (size_t i = 0; i < items.size(); ++i) {
        Item& it = items[i];
        progress.startTensor("writing " + it.tensor.name + " (" + std::string(dtypeName(it.type)) + ")");
        StreamedTensor s;
        w.writeTensor(file.out(), i, [&](FileWriter& out) {
            s = streamTensor(out, it.tensor, it.type, buffers, path, [&](int64_t done) { progress.band(done); },
                             it.importance);
        });
        it.copied = s.copied;
        if (s.overflow > 0)
            result.notes.push_back(it.tensor.name + ": " + std::to_string(s.overflow) + " values beyond the range of "
                                   + std::string(dtypeName(it.type)) + " became infinite");
        result.tensors.push_back({it.tensor.name, it.tensor.shape, std::string(dtypeName(it.type)),
                                  fs::path(path).filename().string(), s.bytes, it.rule});
        progress.finishTensor(it.tensor.elements());
    }
    int copied = 0;
    for (const auto& it : items)
        copied += it.copied && isQuantized(it.type);
    const std::string requantized = quantizedSourceNote(m, [&](const LogicalTensor& t) {
        for (const auto& it : items)
            if (it.source == &t)
                return it.copied;
        return false;
    });
    if (!requantized.empty())
        result.notes.push_back(requantized);
    if (copied > 0)
        result.notes.push_back(std::to_string(copied) + " quantized tensors already had the chosen type and were copied byte for byte");
    throwIfCancelledWriting(opt.progress, path);
    const uint64_t bytes = file.commit();
    if (opt.progress)
        opt.progress->report(1.0, "done");
    result.path = path;
    result.files.push_back({path, bytes});
    result.totalBytes = bytes;
    return result;
}

} // namespace ll
