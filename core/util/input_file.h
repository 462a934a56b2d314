#pragma once
// Files a user names by path (texts, recipes, configs, tokenizers, sessions)
// read whole, with the checks a hostile path needs: a regular file (a FIFO
// would block forever, /dev/zero never ends, a folder is not a text), no
// larger than a cap that says what such a file can reasonably be.
#include <cstdint>
#include <string>

namespace ll {

constexpr uint64_t kMaxTextFileBytes = uint64_t{1} << 30;   // evaluation and calibration texts
constexpr uint64_t kMaxConfigFileBytes = uint64_t{64} << 20; // JSON configs and tokenizer.json (Gemma's: 17 MB)
constexpr uint64_t kMaxRecipeFileBytes = uint64_t{16} << 20; // recipes and sessions

// Throws Io (names the file) when `path` is not a regular file, and
// OutOfRange when it is larger than maxBytes. `what` names the contents in
// messages ("the text file", "the recipe").
void requireRegularFile(const std::string& path, uint64_t maxBytes, const std::string& what);

// The whole file, after requireRegularFile.
std::string readInputFile(const std::string& path, uint64_t maxBytes, const std::string& what);

} // namespace ll
