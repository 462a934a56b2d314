#include "formats/safetensors.h"

#include "util/error.h"
#include "util/json_util.h"
#include "util/mapped_file.h"

#include <algorithm>
#include <cstring>

namespace ll {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20; // the safetensors library's own limit

uint64_t readLe64(const uint8_t* p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}

uint32_t elementSize(std::string_view dtype)
{
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
    return 0;
}

} // namespace

SafetensorsFile readSafetensors(const std::string& path)
{
    SafetensorsFile out;
    out.file = MappedFile::open(path);
    const MappedFile& f = *out.file;
    if (f.size() < 8)
        fail(ErrorCode::Truncated, path, "file is " + std::to_string(f.size()) + " bytes, too short for a safetensors header");
    const uint64_t headerLen = readLe64(f.data());
    if (headerLen > kMaxHeaderBytes)
        fail(ErrorCode::Malformed, path, "header length " + std::to_string(headerLen) + " is implausibly large (limit 100 MiB)");
    if (headerLen > f.size() - 8)
        fail(ErrorCode::Truncated, path,
             "header claims " + std::to_string(headerLen) + " bytes but the file has only " + std::to_string(f.size() - 8)
                 + " after the length field");
    const char* headerStart = reinterpret_cast<const char*>(f.data() + 8);
    const nlohmann::json header = parseJsonText(std::string_view(headerStart, headerLen), path, "the header");
    if (!header.is_object())
        fail(ErrorCode::Malformed, path, "header is not a JSON object");

    const uint64_t dataStart = 8 + headerLen;
    const uint64_t dataSize = f.size() - dataStart;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;

    for (auto it = header.begin(); it != header.end(); ++it) {
        if (it.key() == "__metadata__") {
            out.metadata = it.value();
            continue;
        }
        const std::string& name = it.key();
        const auto& info = it.value();
        auto bad = [&](const std::string& why) { fail(ErrorCode::Malformed, path, "tensor '" + name + "': " + why); };
        if (!info.is_object())
            bad("entry is not an object");
        if (!info.contains("dtype") || !info["dtype"].is_string())
            bad("missing or non-string \"dtype\"");
        if (!info.contains("shape") || !info["shape"].is_array())
            bad("missing or non-array \"shape\"");
        if (!info.contains("data_offsets") || !info["data_offsets"].is_array() || info["data_offsets"].size() != 2)
            bad("\"data_offsets\" must be a pair [begin, end]");

        TensorRef t;
        t.name = name;
        t.sourceFile = path;
        t.dtypeLabel = info["dtype"].get<std::string>();
        t.dtype = dtypeFromSafetensors(t.dtypeLabel).value_or(DType::Unknown);
        uint64_t elems = 1;
        for (const auto& d : info["shape"]) {
            if (!d.is_number_unsigned())
                bad("shape entries must be non-negative integers");
            const uint64_t v = d.get<uint64_t>();
            if (v > (uint64_t{1} << 62) || mulOverflows(elems, v, &elems))
                bad("shape's element count overflows");
            t.shape.push_back(static_cast<int64_t>(v));
        }
        for (const auto& o : info["data_offsets"])
            if (!o.is_number_unsigned())
                bad("data offsets must be non-negative integers");
        const uint64_t begin = info["data_offsets"][0].get<uint64_t>();
        const uint64_t end = info["data_offsets"][1].get<uint64_t>();
        if (begin > end)
            bad("data offsets are reversed (" + std::to_string(begin) + " > " + std::to_string(end) + ")");
        if (end > dataSize)
            fail(ErrorCode::Truncated, path,
                 "tensor '" + name + "' ends at byte " + std::to_string(end) + " of the data section, which has only "
                     + std::to_string(dataSize));
        const uint32_t esize = elementSize(t.dtypeLabel);
        uint64_t expected = 0;
        if (esize != 0) {
            if (mulOverflows(elems, esize, &expected))
                bad("byte size overflows");
            if (expected != end - begin)
                bad("holds " + std::to_string(end - begin) + " bytes, its shape and dtype need " + std::to_string(expected));
        }
        t.nbytes = end - begin;
        t.data = f.data() + dataStart + begin;
        t.keepAlive = out.file;
        ranges.emplace_back(begin, end);
        out.tensors.push_back(std::move(t));
    }

    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i)
        if (ranges[i].first < ranges[i - 1].second)
            fail(ErrorCode::Malformed, path, "two tensors overlap in the data section (at byte " + std::to_string(ranges[i].first) + ")");
    return out;
}

} // namespace ll
