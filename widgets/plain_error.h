#pragma once
// A model file's error in words a person understands ("model.safetensors
// looks truncated: it holds 5 KB, less than its header describes"), with the
// core's precise line kept as the details one click away.
#include "util/error.h"

#include <QString>

namespace ll::gui {

struct PlainError {
    QString summary; // one or two sentences, naming the file
    QString details; // the core's message, as the CLI prints it
};

// `path`: what the user opened (a file or a folder).
PlainError plainOpenError(const Error& e, const QString& path);

} // namespace ll::gui
