#include "model_document.h"

#include "plain_error.h"

#include "formats/open_model.h"
#include "model/demo_model.h"
#include "util/error.h"

#include <QUndoCommand>
#include <QUndoStack>

#include <cstdlib>
#include <exception>
#include <set>

namespace ll::gui {

namespace {

// Moving between two compression states; both kept, so undo is exact.
class ApplyStepCommand : public QUndoCommand {
public:
    ApplyStepCommand(ModelDocument* doc, CompressionState before, CompressionState after, const QString& text,
                     QStringList touched, bool applied = false)
        : QUndoCommand(text), doc_(doc), before_(std::move(before)), after_(std::move(after)),
          touched_(std::move(touched)), applied_(applied)
    {
    }
    void redo() override
    {
        if (applied_) { // re-pushed by trimHistory: the document is already in this state
            applied_ = false;
            return;
        }
        doc_->setState(after_, touched_);
    }
    void undo() override { doc_->setState(before_, touched_); }

    const CompressionState& before() const { return before_; }
    const CompressionState& after() const { return after_; }
    const QStringList& touched() const { return touched_; }

private:
    ModelDocument* doc_;
    CompressionState before_, after_;
    QStringList touched_;
    bool applied_;
};

uint64_t initialHistoryBudget()
{
    const char* env = std::getenv("LAYERLAB_UNDO_MEMORY_MB");
    if (env && *env)
        return static_cast<uint64_t>(std::strtoull(env, nullptr, 10)) << 20;
    return uint64_t{4} << 30;
}

// The edited tensors' buffers of a state (each once): what keeping it costs.
void addEdits(const CompressionState& s, std::set<const void*>& seen, uint64_t& bytes,
              const std::set<const void*>* exclude = nullptr)
{
    if (!s.model)
        return;
    for (const TensorRef& t : s.model->stored) {
        if (!t.edited)
            continue;
        const void* key = t.keepAlive ? t.keepAlive.get() : static_cast<const void*>(t.data);
        if ((exclude && exclude->count(key)) || !seen.insert(key).second)
            continue;
        bytes += t.nbytes;
    }
}

} // namespace

ModelDocument::ModelDocument(QObject* parent)
    : QObject(parent), undo_(new QUndoStack(this)), historyBudget_(initialHistoryBudget())
{
}

ModelDocument::~ModelDocument()
{
    // The stack is our child: QObject destroys it after this destructor, when this is no
    // longer a ModelDocument, and its clear() would signal views that call back into us
    // (UBSan found the History dock doing so). Views get no signal from a dying document.
    undo_->blockSignals(true);
}

QString ModelDocument::open(const QString& path)
{
    if (path.trimmed().isEmpty())
        return tr("No file or folder given.");
    std::shared_ptr<const Model> opened;
    lastErrorDetails_.clear();
    try {
        opened = openModel(path.toStdString());
    } catch (const Error& e) {
        const PlainError plain = plainOpenError(e, path);
        lastErrorDetails_ = plain.details;
        return plain.summary;
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
    droppedSteps_ = 0;
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
    trimHistory();
}

uint64_t ModelDocument::historyBytes() const
{
    return historyBytesFrom(0);
}

uint64_t ModelDocument::historyBytesFrom(int first) const
{
    std::set<const void*> current;
    uint64_t currentBytes = 0;
    addEdits(state_, current, currentBytes);
    std::set<const void*> seen;
    uint64_t bytes = 0;
    for (int i = first; i < undo_->count(); ++i)
        if (const auto* c = dynamic_cast<const ApplyStepCommand*>(undo_->command(i))) {
            addEdits(c->before(), seen, bytes, &current);
            addEdits(c->after(), seen, bytes, &current);
        }
    return bytes;
}

void ModelDocument::trimHistory()
{
    // Drops the oldest commands until the rest fits, keeping the newest (so the
    // step just applied can always be undone). QUndoStack cannot drop its oldest
    // commands, so the kept ones are pushed again onto a cleared stack, marked
    // as already applied (the document's state does not move).
    const int count = undo_->count();
    if (count < 2 || undo_->index() != count)
        return;
    const uint64_t held = historyBytes();
    if (held <= historyBudget_)
        return;
    // The fewest oldest steps whose removal brings the rest within the budget.
    int drop = 0;
    QStringList names;
    for (; drop < count - 1 && historyBytesFrom(drop) > historyBudget_; ++drop)
        names << undo_->command(drop)->text();
    if (drop == 0)
        return;
    struct Kept {
        CompressionState before, after;
        QString text;
        QStringList touched;
    };
    std::vector<Kept> kept;
    for (int i = drop; i < count; ++i) {
        const auto* c = dynamic_cast<const ApplyStepCommand*>(undo_->command(i));
        if (!c)
            return;
        kept.push_back({c->before(), c->after(), c->text(), c->touched()});
    }
    undo_->clear();
    for (Kept& k : kept)
        undo_->push(new ApplyStepCommand(this, std::move(k.before), std::move(k.after), k.text, k.touched, true));
    droppedSteps_ += drop;
    const auto gib = [](uint64_t b) { return QString::number(static_cast<double>(b) / (1 << 30), 'f', 2); };
    const QString which = drop == 1 ? tr("the oldest step") : tr("the %1 oldest steps").arg(drop);
    emit historyTrimmed(drop, tr("Undo history: dropped %1 (%2); it held %3 GiB of edits, over its budget of %4 GiB "
                                 "(LAYERLAB_UNDO_MEMORY_MB). Those steps can no longer be undone.")
                                  .arg(which, names.join(QStringLiteral(", ")), gib(held), gib(historyBudget_)));
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
