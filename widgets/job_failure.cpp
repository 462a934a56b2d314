#include "job_failure.h"

#include "util/error.h"

#include <QObject>

#include <new>

namespace ll::gui {

JobFailure jobFailure(const std::exception_ptr& e, const QString& outOfMemory)
{
    try {
        std::rethrow_exception(e);
    } catch (const Error& err) {
        if (err.code() == ErrorCode::Cancelled)
            return {true, {}};
        return {false, QString::fromStdString(err.what())};
    } catch (const std::bad_alloc&) {
        return {false, outOfMemory};
    } catch (const std::exception& err) {
        return {false, QString::fromStdString(err.what())};
    } catch (...) {
        return {false, QObject::tr("An unexpected error ended the job.")};
    }
}

} // namespace ll::gui
