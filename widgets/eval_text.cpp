#include "eval_text.h"

#include "eval/sample_text.h"
#include "util/error.h"

#include <QFile>
#include <QFileInfo>

namespace ll::gui {

QString TextSource::displayName() const
{
    return isBuiltin() ? QString::fromLatin1(kBuiltinSampleName) : QFileInfo(path).fileName();
}

std::string loadText(const TextSource& source)
{
    if (source.isBuiltin())
        return std::string(builtinSampleText());
    const std::string name = source.path.toStdString();
    QFile file(source.path);
    if (!QFileInfo(source.path).isFile())
        fail(ErrorCode::Io, name, "no such text file");
    if (!file.open(QIODevice::ReadOnly))
        fail(ErrorCode::Io, name, "cannot open the text file: " + file.errorString().toStdString());
    const QByteArray bytes = file.readAll();
    if (file.error() != QFileDevice::NoError)
        fail(ErrorCode::Io, name, "cannot read the text file: " + file.errorString().toStdString());
    if (bytes.trimmed().isEmpty())
        fail(ErrorCode::InvalidArgument, name, "the text file is empty");
    return std::string(bytes.constData(), static_cast<size_t>(bytes.size()));
}

std::string_view builtinSampleText()
{
    return ll::builtinSampleText();
}

} // namespace ll::gui
