// layerlab-cli logits: a model's logits for given token ids, as a safetensors file.
#include "args.h"
#include "commands.h"

#include "formats/open_model.h"
#include "util/threads.h"
#include "engine/transformer.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace ll::cli {

namespace {

// `input_ids`: int64 (or int32), one sequence: shape (T) or (1, T).
std::vector<int32_t> readIds(const std::string& path)
{
    const SafetensorsFile f = readSafetensors(path);
    for (const TensorRef& t : f.tensors) {
        if (t.name != "input_ids")
            continue;
        const bool oneRow = t.shape.size() == 1 || (t.shape.size() == 2 && t.shape[0] == 1);
        if (!oneRow || t.elements() < 1)
            fail(ErrorCode::InvalidArgument, path, "input_ids must be one sequence: shape (T) or (1, T)");
        std::vector<int32_t> ids(static_cast<size_t>(t.elements()));
        for (size_t i = 0; i < ids.size(); ++i) {
            int64_t v = 0;
            if (t.dtype == DType::I64) {
                std::memcpy(&v, t.data + 8 * i, 8);
            } else if (t.dtype == DType::I32) {
                int32_t v32 = 0;
                std::memcpy(&v32, t.data + 4 * i, 4);
                v = v32;
            } else {
                fail(ErrorCode::UnsupportedDType, path, "input_ids must be I64 or I32, not " + t.dtypeLabel);
            }
            if (v < 0 || v > INT32_MAX)
                fail(ErrorCode::OutOfRange, path, "token id " + std::to_string(v) + " at index " + std::to_string(i));
            ids[i] = static_cast<int32_t>(v);
        }
        return ids;
    }
    fail(ErrorCode::NotFound, path, "no tensor named input_ids");
}

// A safetensors file with one F32 tensor, written beside `path` and renamed
// over it, so a reader never sees half a file.
void writeLogits(const std::string& path, const MatrixRM& logits)
{
    const uint64_t bytes = static_cast<uint64_t>(logits.size()) * sizeof(float);
    const nlohmann::json header{{"logits",
                                 {{"dtype", "F32"},
                                  {"shape", {logits.rows(), logits.cols()}},
                                  {"data_offsets", {0, bytes}}}}};
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' '); // data starts 8-byte aligned
    const uint64_t headerLen = text.size();
    char lenBytes[8];
    for (int i = 0; i < 8; ++i)
        lenBytes[i] = static_cast<char>((headerLen >> (8 * i)) & 0xff);

    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out)
            fail(ErrorCode::Io, tmp, "cannot create the output file");
        out.write(lenBytes, 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(bytes));
        out.close();
        if (!out) {
            std::error_code ec;
            std::filesystem::remove(tmp, ec);
            fail(ErrorCode::Io, path, "writing the logits failed (disk full?)");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        fail(ErrorCode::Io, path, "cannot move the finished file into place: " + ec.message());
    }
}

} // namespace

int cmdLogits(const std::vector<std::string>& argv)
{
    const Args a(argv, {"ids", "out", "threads"}, {});
    const std::string modelPath = a.positionalAt(0, "MODEL");
    const auto idsPath = a.value("ids");
    const auto outPath = a.value("out");
    if (!idsPath || !outPath)
        throw UsageError("usage: layerlab-cli logits MODEL --ids IDS.safetensors --out OUT.safetensors");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));
    const std::vector<int32_t> ids = readIds(*idsPath);
    const auto model = openModel(modelPath);
    const Transformer t(*model);
    const MatrixRM logits = t.logitsBatch(ids, static_cast<int64_t>(ids.size()));
    writeLogits(*outPath, logits);
    std::printf("wrote %lld x %lld logits to %s\n", static_cast<long long>(logits.rows()),
                static_cast<long long>(logits.cols()), outPath->c_str());
    return 0;
}

} // namespace ll::cli
