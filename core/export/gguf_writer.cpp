#include "export/gguf_writer.h"

#include "util/atomic_file.h"
#include "util/error.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace ll {

namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

constexpr uint32_t kVersion = 3;

template <class T>
void put(std::string& out, T v)
{
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
}

void putString(std::string& out, const std::string& s)
{
    put<uint64_t>(out, s.size());
    out += s;
}

[[noreturn]] void badValue(const std::string& key, const std::string& why)
{
    fail(ErrorCode::InvalidArgument, "", "GGUF metadata '" + key + "': " + why);
}

template <class T>
void putInteger(std::string& out, const nlohmann::json& v, const std::string& key)
{
    if (v.is_boolean()) {
        put<T>(out, static_cast<T>(v.get<bool>()));
        return;
    }
    if (!v.is_number_integer())
        badValue(key, "expected an integer, got " + std::string(v.type_name()));
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
            badValue(key, std::to_string(u) + " does not fit the value type");
        put<T>(out, static_cast<T>(u));
        return;
    }
    const int64_t s = v.get<int64_t>();
    if (s < static_cast<int64_t>(std::numeric_limits<T>::min())
        || (s > 0 && static_cast<uint64_t>(s) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
        badValue(key, std::to_string(s) + " does not fit the value type");
    put<T>(out, static_cast<T>(s));
}

void putValue(std::string& out, GgufType type, const nlohmann::json& v, const std::string& key)
{
    switch (type) {
    case GgufType::U8: putInteger<uint8_t>(out, v, key); break;
    case GgufType::I8: putInteger<int8_t>(out, v, key); break;
    case GgufType::U16: putInteger<uint16_t>(out, v, key); break;
    case GgufType::I16: putInteger<int16_t>(out, v, key); break;
    case GgufType::U32: putInteger<uint32_t>(out, v, key); break;
    case GgufType::I32: putInteger<int32_t>(out, v, key); break;
    case GgufType::U64: putInteger<uint64_t>(out, v, key); break;
    case GgufType::I64: putInteger<int64_t>(out, v, key); break;
    case GgufType::F32:
    case GgufType::F64:
        if (!v.is_number())
            badValue(key, "expected a number, got " + std::string(v.type_name()));
        if (type == GgufType::F32)
            put<float>(out, v.get<float>());
        else
            put<double>(out, v.get<double>());
        break;
    case GgufType::Bool:
        if (!v.is_boolean())
            badValue(key, "expected a boolean, got " + std::string(v.type_name()));
        put<uint8_t>(out, v.get<bool>() ? 1 : 0);
        break;
    case GgufType::String:
        if (!v.is_string())
            badValue(key, "expected a string, got " + std::string(v.type_name()));
        putString(out, v.get_ref<const std::string&>()); // raw bytes, as the GGUF reader keeps them
        break;
    case GgufType::Array:
        badValue(key, "nested arrays are not supported");
    }
}

GgufType scalarTypeOf(const nlohmann::json& v)
{
    if (v.is_boolean()) return GgufType::Bool;
    if (v.is_string()) return GgufType::String;
    if (v.is_number_unsigned())
        return v.get<uint64_t>() <= UINT32_MAX ? GgufType::U32 : GgufType::U64;
    if (v.is_number_integer()) {
        const int64_t s = v.get<int64_t>();
        if (s >= 0 && s <= static_cast<int64_t>(UINT32_MAX)) return GgufType::U32;
        return s >= INT32_MIN && s <= INT32_MAX ? GgufType::I32 : GgufType::I64;
    }
    return GgufType::F32;
}

} // namespace

GgufType inferGgufType(const nlohmann::json& v)
{
    if (!v.is_array())
        return scalarTypeOf(v);
    bool anyFloat = false, anyString = false, anyBool = false, anyNegative = false, any64 = false;
    for (const auto& e : v) {
        anyString = anyString || e.is_string();
        anyBool = anyBool || e.is_boolean();
        anyFloat = anyFloat || e.is_number_float();
        const GgufType t = scalarTypeOf(e);
        anyNegative = anyNegative || t == GgufType::I32 || t == GgufType::I64;
        any64 = any64 || t == GgufType::I64 || t == GgufType::U64;
    }
    if (anyString || v.empty()) return GgufType::String;
    if (anyBool) return GgufType::Bool;
    if (anyFloat) return GgufType::F32;
    if (any64) return anyNegative ? GgufType::I64 : GgufType::U64;
    return anyNegative ? GgufType::I32 : GgufType::U32;
}

void GgufWriter::setInferred(const std::string& key, const nlohmann::json& value)
{
    if (value.is_array())
        setArray(key, inferGgufType(value), value);
    else
        set(key, inferGgufType(value), value);
}

void GgufWriter::set(const std::string& key, GgufType type, const nlohmann::json& value)
{
    if (type == GgufType::Array)
        badValue(key, "use setArray for arrays");
    std::string enc;
    put<uint32_t>(enc, static_cast<uint32_t>(type));
    putValue(enc, type, value, key);
    for (auto& kv : kvs_)
        if (kv.first == key) {
            kv.second = std::move(enc);
            return;
        }
    kvs_.emplace_back(key, std::move(enc));
}

void GgufWriter::setArray(const std::string& key, GgufType elementType, const nlohmann::json& values)
{
    if (!values.is_array())
        badValue(key, "expected an array");
    std::string enc;
    put<uint32_t>(enc, static_cast<uint32_t>(GgufType::Array));
    put<uint32_t>(enc, static_cast<uint32_t>(elementType));
    put<uint64_t>(enc, values.size());
    for (const auto& v : values)
        putValue(enc, elementType, v, key);
    for (auto& kv : kvs_)
        if (kv.first == key) {
            kv.second = std::move(enc);
            return;
        }
    kvs_.emplace_back(key, std::move(enc));
}

bool GgufWriter::has(const std::string& key) const
{
    for (const auto& kv : kvs_)
        if (kv.first == key)
            return true;
    return false;
}

size_t GgufWriter::addTensor(const std::string& name, const std::vector<int64_t>& shape, DType type)
{
    const DTypeLayout layout = dtypeLayout(type);
    if (!ggmlTypeOf(type) || layout.blockElems == 0)
        fail(ErrorCode::UnsupportedDType, name, std::string(dtypeName(type)) + " is not a ggml tensor type");
    if (shape.size() > 4)
        fail(ErrorCode::InvalidArgument, name, "GGUF tensors have at most 4 dimensions");
    uint64_t elements = 1;
    for (int64_t d : shape) {
        if (d < 0)
            fail(ErrorCode::InvalidArgument, name, "negative dimension");
        elements *= static_cast<uint64_t>(d);
    }
    const int64_t row = shape.empty() ? 1 : shape.back();
    if (row % layout.blockElems != 0)
        fail(ErrorCode::InvalidArgument, name,
             "rows of " + std::to_string(row) + " values are not a whole number of " + std::string(dtypeName(type)) + " blocks ("
                 + std::to_string(layout.blockElems) + ")");
    for (const auto& t : tensors_)
        if (t.name == name)
            fail(ErrorCode::InvalidArgument, name, "two tensors with this name");
    TensorInfo t;
    t.name = name;
    t.shape = shape;
    t.type = type;
    t.offset = dataBytes_;
    t.nbytes = elements / layout.blockElems * layout.blockBytes;
    dataBytes_ += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
    tensors_.push_back(std::move(t));
    return tensors_.size() - 1;
}

std::string GgufWriter::header() const
{
    std::string h = "GGUF";
    put<uint32_t>(h, kVersion);
    put<uint64_t>(h, tensors_.size());
    put<uint64_t>(h, kvs_.size());
    for (const auto& [key, enc] : kvs_) {
        putString(h, key);
        h += enc;
    }
    for (const auto& t : tensors_) {
        putString(h, t.name);
        put<uint32_t>(h, static_cast<uint32_t>(t.shape.size()));
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) // ggml's ne: innermost first
            put<uint64_t>(h, static_cast<uint64_t>(*it));
        put<uint32_t>(h, *ggmlTypeOf(t.type));
        put<uint64_t>(h, t.offset);
    }
    h.append((alignment_ - h.size() % alignment_) % alignment_, '\0');
    return h;
}

void GgufWriter::writeHeader(FileWriter& out) const
{
    const std::string h = header();
    out.write(h.data(), h.size());
}

void GgufWriter::writeTensor(FileWriter& out, size_t index, const std::vector<uint8_t>& bytes) const
{
    writeTensor(out, index, [&bytes](FileWriter& w) { w.write(bytes.data(), bytes.size()); });
}

void GgufWriter::writeTensor(FileWriter& out, size_t index, const std::function<void(FileWriter&)>& write) const
{
    const TensorInfo& t = tensors_.at(index);
    const uint64_t start = out.written();
    write(out);
    const uint64_t n = out.written() - start;
    if (n != t.nbytes)
        fail(ErrorCode::InvalidArgument, out.displayName(),
             "tensor '" + t.name + "' has " + std::to_string(n) + " bytes, its type and shape need " + std::to_string(t.nbytes));
    out.writeZeros((alignment_ - t.nbytes % alignment_) % alignment_);
}

} // namespace ll
