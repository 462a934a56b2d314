#pragma once
// What an exception out of a background job means for the user, in one
// place (it was copied into nine panels): a cancellation, or a message —
// the core's own for its typed errors (they name the file), one that names
// the job for running out of memory, what() for anything else.
#include <QString>

#include <exception>

namespace ll::gui {

struct JobFailure {
    bool cancelled = false;
    QString message; // empty when cancelled
};

// `outOfMemory`: the sentence for std::bad_alloc ("Not enough memory for the preview.").
JobFailure jobFailure(const std::exception_ptr& e, const QString& outOfMemory);

// Inside a catch block: jobFailure(std::current_exception(), outOfMemory).
inline JobFailure currentJobFailure(const QString& outOfMemory)
{
    return jobFailure(std::current_exception(), outOfMemory);
}

} // namespace ll::gui
