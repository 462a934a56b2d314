#pragma once
// What the libFuzzer harnesses share. The loaders take paths (they map the
// file, as a user's model is mapped), so each input is written to a scratch
// file in a per-process folder under $TMPDIR (tmpfs in CI) and opened from
// there. Only ll::Error is an expected outcome: any other exception, a crash,
// a leak or undefined behaviour is a finding.
#include "engine/transformer.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace ll::fuzz {

// A folder of this process's own, removed at exit. The path lives on the heap
// and is never destroyed: a static std::filesystem::path would be destroyed
// before the atexit handler registered while constructing it runs (exit
// handlers and static destructors run in reverse order of registration), and
// the handler would read freed memory (ASan found it when a run ended by exit()).
inline const std::filesystem::path& scratchDir()
{
    static const std::filesystem::path* dir = [] {
        const char* tmp = std::getenv("TMPDIR");
        auto* d = new std::filesystem::path(std::filesystem::path(tmp && *tmp ? tmp : "/tmp")
                                            / ("layerlab-fuzz-" + std::to_string(::getpid())));
        std::filesystem::remove_all(*d);
        std::filesystem::create_directories(*d);
        std::atexit([] { std::error_code ec; std::filesystem::remove_all(scratchDir(), ec); });
        return d;
    }();
    return *dir;
}

inline std::string writeScratch(const std::string& name, const uint8_t* data, size_t size)
{
    const std::filesystem::path p = scratchDir() / name;
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                               static_cast<std::streamsize>(size));
    return p.string();
}

inline std::string writeScratch(const std::string& name, std::string_view text)
{
    return writeScratch(name, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

// A valid safetensors file of F32 tensors (values 0.5), for the folders the
// config and index harnesses put around their input.
inline std::string safetensorsBytes(const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors)
{
    std::string header = "{";
    size_t offset = 0;
    for (const auto& [name, shape] : tensors) {
        size_t n = 1;
        std::string dims;
        for (int64_t d : shape) {
            n *= static_cast<size_t>(d);
            dims += (dims.empty() ? "" : ",") + std::to_string(d);
        }
        header += (header.size() > 1 ? "," : "") + std::string("\"") + name + "\":{\"dtype\":\"F32\",\"shape\":[" + dims
                  + "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + 4 * n) + "]}";
        offset += 4 * n;
    }
    header += "}";
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i)
        out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    out += header;
    const float half = 0.5f;
    for (size_t i = 0; i < offset / 4; ++i)
        out.append(reinterpret_cast<const char*>(&half), 4);
    return out;
}

// What a user does right after opening: the values of the small tensors
// (every decoder runs, bounds checks included) and the tokenizer round trip.
inline void exerciseModel(const Model& model)
{
    for (const LogicalTensor& t : model.tensors)
        if (t.elements() <= (int64_t{1} << 16)) {
            const std::vector<float> v = readLogical(model, t);
            volatile float sink = v.empty() ? 0.0f : v[v.size() / 2];
            (void)sink;
        }
}

// A forward pass of three tokens: every hyperparameter the engine reads
// (rope, norms, heads) meets the checks that guard it.
inline void exerciseForward(const Model& model)
{
    const Transformer t(model);
    const int32_t ids[] = {1, 2, 3};
    (void)t.logits(ids);
}

inline void exerciseTokenizer(const Tokenizer& tok)
{
    static const std::string_view kTexts[] = {"Once upon a time, there was a little dog.", " Hello\n\nworld  123 ",
                                              "na\xC3\xAFve caf\xC3\xA9 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC", "\xFF\xFE bad bytes"};
    for (std::string_view text : kTexts) {
        const std::vector<int32_t> ids = tok.encode(text);
        (void)tok.decode(ids);
        for (int32_t id : ids)
            (void)tok.tokenText(id);
    }
}

template <class F>
void expectOnlyErrors(F&& f)
{
    try {
        f();
    } catch (const Error& e) {
        // A typed error naming the file: the expected answer to bad input.
        // LAYERLAB_FUZZ_VERBOSE=1 prints it (replaying seeds: is the harness getting anywhere?).
        static const bool verbose = std::getenv("LAYERLAB_FUZZ_VERBOSE") != nullptr;
        if (verbose)
            std::fprintf(stderr, "  error: %s\n", e.what());
    }
}

} // namespace ll::fuzz
