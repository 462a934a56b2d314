#include "eval_text.h"

#include "eval/sample_text.h"
#include "util/error.h"
#include "util/input_file.h"

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
    std::string text = readInputFile(name, kMaxTextFileBytes, "the text file");
    if (QByteArray::fromRawData(text.data(), static_cast<qsizetype>(text.size())).trimmed().isEmpty())
        fail(ErrorCode::InvalidArgument, name, "the text file is empty");
    return text;
}

std::string_view builtinSampleText()
{
    return ll::builtinSampleText();
}

} // namespace ll::gui
