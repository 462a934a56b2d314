#include "export/safetensors_writer.h"

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json_util.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace ll {

namespace {

constexpr uint64_t kHeaderAlignment = 8;

uint32_t elementBytes(DType t)
{
    switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    default:
        fail(ErrorCode::UnsupportedDType, "", "safetensors export supports F32, F16 and BF16, not " + std::string(dtypeName(t)));
    }
}

std::string quoted(const std::string& s)
{
    return dumpJson(nlohmann::json(s)); // JSON string escaping; never throws on non-UTF-8 names
}

} // namespace

uint64_t SafetensorsTensor::nbytes() const
{
    uint64_t n = elementBytes(dtype);
    for (int64_t d : shape)
        n *= static_cast<uint64_t>(d);
    return n;
}

std::string safetensorsHeader(const std::vector<SafetensorsTensor>& tensors, const std::map<std::string, std::string>& metadata)
{
    // Written by hand to keep the safetensors library's field order: dtype, shape, data_offsets.
    std::string h = "{";
    bool first = true;
    if (!metadata.empty()) {
        h += "\"__metadata__\":{";
        for (auto it = metadata.begin(); it != metadata.end(); ++it) {
            if (it != metadata.begin())
                h += ',';
            h += quoted(it->first);
            h += ':';
            h += quoted(it->second);
        }
        h += "}";
        first = false;
    }
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        const uint64_t end = offset + t.nbytes();
        if (!first)
            h += ',';
        h += quoted(t.name);
        h += ":{\"dtype\":";
        h += quoted(std::string(dtypeName(t.dtype)));
        h += ",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) {
            if (i)
                h += ',';
            h += std::to_string(t.shape[i]);
        }
        h += "],\"data_offsets\":[";
        h += std::to_string(offset);
        h += ',';
        h += std::to_string(end);
        h += "]}";
        offset = end;
        first = false;
    }
    h += "}";
    h.append((kHeaderAlignment - h.size() % kHeaderAlignment) % kHeaderAlignment, ' ');
    return h;
}

uint64_t writeSafetensors(FileWriter& out, std::vector<SafetensorsTensor> tensors,
                          const std::map<std::string, std::string>& metadata,
                          const std::function<void(const SafetensorsTensor&)>& beforeTensor)
{
    std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (size_t i = 1; i < tensors.size(); ++i)
        if (tensors[i].name == tensors[i - 1].name)
            fail(ErrorCode::InvalidArgument, out.displayName(), "two tensors are named '" + tensors[i].name + "'");
    const std::string header = safetensorsHeader(tensors, metadata);
    const uint64_t start = out.written();
    uint8_t len[8];
    for (int i = 0; i < 8; ++i)
        len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
    out.write(len, 8);
    out.write(header.data(), header.size());
    for (const auto& t : tensors) {
        if (beforeTensor)
            beforeTensor(t);
        const uint64_t before = out.written();
        if (t.write) {
            t.write(out);
        } else {
            const std::vector<uint8_t> bytes = t.bytes();
            out.write(bytes.data(), bytes.size());
        }
        const uint64_t n = out.written() - before;
        if (n != t.nbytes())
            fail(ErrorCode::InvalidArgument, out.displayName(),
                 "tensor '" + t.name + "' produced " + std::to_string(n) + " bytes, its shape needs " + std::to_string(t.nbytes()));
    }
    return out.written() - start;
}

} // namespace ll
