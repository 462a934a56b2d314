#include "model_document.h"

#include "model/demo_model.h"
#include "util/error.h"

#include <QUndoCommand>
#include <QUndoStack>

#include <exception>

namespace ll::gui {

namespace {

// Moving between two compression states; both kept, so undo is exact.
class ApplyStepCommand : public QUndoCommand {
public:
    ApplyStepCommand(ModelDocument* doc, CompressionState before, CompressionState after, const QString& text,
                     QStringList touched)
        : QUndoCommand(text), doc_(doc), before_(std::move(before)), after_(std::move(after)), touched_(std::move(touched))
    {
    }
    void redo() override { doc_->setState(after_, touched_); }
    void undo() override { doc_->setState(before_, touched_); }

private:
    ModelDocument* doc_;
    CompressionState before_, after_;
    QStringList touched_;
};

} // namespace

ModelDocument::ModelDocument(QObject* parent) : QObject(parent), undo_(new QUndoStack(this)) {}

QString ModelDocument::open(const QString& path)
{
    if (path.trimmed().isEmpty())
        return tr("No file or folder given.");
    std::shared_ptr<const Model> opened;
    try {
        opened = openModel(path.toStdString());
    } catch (const Error& e) {
        return QString::fromStdString(e.what());
    } catch (const std::bad_alloc&) {
        return tr("%1: not enough memory to open this model.").arg(path);
    } catch (const std::exception& e) {
        return tr("%1: %2").arg(path, QString::fromStdString(e.what()));
    }
    setModel(std::move(opened));
    return {};
}

void ModelDocument::openDemo()
{
    setModel(makeDemoModel());
}

void ModelDocument::setModel(std::shared_ptr<const Model> model)
{
    emit modelAboutToChange();
    undo_->clear(); // the commands refer to the previous model's states
    model_ = std::move(model);
    state_ = model_ ? CompressionState::initial(model_) : CompressionState{};
    current_ = -1;
    currentIsDefault_ = false;
    emit modelChanged();
    // A listener may already have chosen a tensor for the new model.
    if (current_ == -1)
        emit currentTensorChanged(-1);
}

void ModelDocument::close()
{
    setModel(nullptr);
}

const LayerRecord* ModelDocument::record(const std::string& logicalName) const
{
    const auto it = state_.layers.find(logicalName);
    return it == state_.layers.end() ? nullptr : &it->second;
}

void ModelDocument::pushState(CompressionState next, const QString& text, const QStringList& touched)
{
    if (!model_ || next.source != state_.source)
        return; // computed for a model that is no longer open
    undo_->push(new ApplyStepCommand(this, state_, std::move(next), text, touched));
}

void ModelDocument::setState(const CompressionState& state, const QStringList& touched)
{
    state_ = state;
    model_ = state_.model;
    emit modelEdited(touched);
}

const LogicalTensor* ModelDocument::currentLogical() const
{
    if (!model_ || current_ < 0 || current_ >= static_cast<int>(model_->tensors.size()))
        return nullptr;
    return &model_->tensors[static_cast<size_t>(current_)];
}

void ModelDocument::setCurrentTensor(int index)
{
    if (!model_ || index < 0 || index >= static_cast<int>(model_->tensors.size()))
        index = -1;
    if (index == current_) {
        if (currentIsDefault_ && index >= 0) {
            currentIsDefault_ = false; // the user picked what was shown: now it is their choice
            emit currentTensorChanged(index);
        }
        return;
    }
    current_ = index;
    currentIsDefault_ = false;
    emit currentTensorChanged(index);
}

void ModelDocument::selectDefaultTensor()
{
    const int index = defaultTensor();
    if (index == current_)
        return;
    current_ = index;
    currentIsDefault_ = true;
    emit currentTensorChanged(index);
    currentIsDefault_ = current_ == index; // a listener may have moved on already
}

int ModelDocument::findTensor(const QString& name) const
{
    if (!model_)
        return -1;
    const std::string n = name.toStdString();
    const LogicalTensor* t = model_->findLogical(n);
    if (!t)
        t = model_->findByStoredName(n);
    return t ? static_cast<int>(t - model_->tensors.data()) : -1;
}

int ModelDocument::defaultTensor() const
{
    if (!model_)
        return -1;
    for (size_t i = 0; i < model_->tensors.size(); ++i)
        if (isLinear(model_->tensors[i].role) && !model_->tensors[i].isBias)
            return static_cast<int>(i);
    return model_->tensors.empty() ? -1 : 0;
}

} // namespace ll::gui
