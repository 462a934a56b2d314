#include "util/error.h"

namespace ll {

const char* errorCodeName(ErrorCode code)
{
    switch (code) {
    case ErrorCode::Io: return "io";
    case ErrorCode::Truncated: return "truncated";
    case ErrorCode::Malformed: return "malformed";
    case ErrorCode::UnsupportedDType: return "unsupported-dtype";
    case ErrorCode::UnsupportedArch: return "unsupported-architecture";
    case ErrorCode::OutOfRange: return "out-of-range";
    case ErrorCode::Overflow: return "overflow";
    case ErrorCode::InvalidArgument: return "invalid-argument";
    case ErrorCode::NotFound: return "not-found";
    case ErrorCode::Cancelled: return "cancelled";
    }
    return "error";
}

// what() is a C string: a NUL inside a name (a hostile shard name, a path
// from a JSON string) would end the message there, so it is spelled out.
static std::string compose(const std::string& file, const std::string& problem)
{
    const std::string joined = file.empty() ? problem : file + ": " + problem;
    std::string out;
    out.reserve(joined.size());
    for (char c : joined)
        out += c == '\0' ? std::string("\\x00") : std::string(1, c);
    return out;
}

Error::Error(ErrorCode code, std::string file, const std::string& problem)
    : std::runtime_error(compose(file, problem)), code_(code), file_(std::move(file)), problem_(problem)
{
}

void fail(ErrorCode code, const std::string& file, const std::string& problem)
{
    throw Error(code, file, problem);
}

} // namespace ll
