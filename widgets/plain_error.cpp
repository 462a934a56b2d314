#include "plain_error.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QLocale>

namespace ll::gui {

namespace {

QString tr(const char* text) { return QCoreApplication::translate("PlainError", text); }

// What kind of file the user meant, from its name.
QString formatOf(const QString& file)
{
    const QString suffix = QFileInfo(file).suffix().toLower();
    if (suffix == QLatin1String("gguf"))
        return QStringLiteral("GGUF");
    if (suffix == QLatin1String("safetensors"))
        return QStringLiteral("safetensors");
    if (suffix == QLatin1String("bin"))
        return tr("llama2.c checkpoint");
    if (suffix == QLatin1String("json"))
        return QStringLiteral("JSON");
    return {};
}

} // namespace

PlainError plainOpenError(const Error& e, const QString& path)
{
    PlainError out;
    out.details = QString::fromStdString(e.what());
    // The file the problem is in: the one the core names (a shard, config.json), else what was opened.
    const QString file = e.file().empty() ? path : QString::fromStdString(e.file());
    const QFileInfo info(file);
    const QString name = info.fileName().isEmpty() ? file : info.fileName();
    const QString format = formatOf(file);
    const QString problem = QString::fromStdString(e.problem());

    if (!QFileInfo::exists(path)) {
        out.summary = tr("%1 does not exist (moved, renamed or on a drive that is not connected?).").arg(QFileInfo(path).fileName());
    } else if (QFileInfo(path).isDir() && e.code() == ErrorCode::NotFound && file == path) {
        out.summary = tr("The folder %1 holds no model LayerLab can read: a Hugging Face model folder has a config.json "
                         "and .safetensors files.").arg(name);
    } else if (problem.startsWith(QLatin1String("not a recognised model"))) {
        out.summary = !format.isEmpty() && format != QLatin1String("JSON")
                          ? tr("%1 is not a valid %2 file: its first bytes are not those of a %2 file. It may be "
                               "damaged, or be another kind of file renamed.").arg(name, format)
                          : tr("%1 is not a model LayerLab can open: choose a Hugging Face model folder, a .safetensors, "
                               ".gguf or llama2.c .bin file.").arg(name);
    } else {
        switch (e.code()) {
        case ErrorCode::Truncated:
            out.summary = tr("%1 looks truncated: it holds %2, less than its header describes. The download or copy "
                             "may have been interrupted.")
                              .arg(name, QLocale().formattedDataSize(info.size()));
            break;
        case ErrorCode::Malformed:
        case ErrorCode::OutOfRange:
        case ErrorCode::Overflow:
            out.summary = format.isEmpty()
                              ? tr("%1 is damaged or not in the format its name says.").arg(name)
                              : tr("%1's %2 header is not valid; the file may be damaged or incomplete.").arg(name, format);
            break;
        case ErrorCode::UnsupportedDType:
            out.summary = tr("%1 stores some tensors in a type LayerLab cannot read yet.").arg(name);
            break;
        case ErrorCode::UnsupportedArch:
            out.summary = tr("LayerLab does not support the architecture of %1 yet.").arg(name);
            break;
        case ErrorCode::NotFound:
            out.summary = tr("Part of the model is missing: %1.").arg(problem);
            break;
        case ErrorCode::Io:
            out.summary = tr("%1 cannot be read: %2.").arg(name, problem);
            break;
        default:
            out.summary = out.details;
            break;
        }
    }
    return out;
}

} // namespace ll::gui
