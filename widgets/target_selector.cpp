#include "target_selector.h"

#include "panel_util.h"

#include "pipeline/model_compression.h"
#include "recipe/recipe.h"
#include "util/error.h"

#include <QComboBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>

namespace ll::gui {

TargetSelector::TargetSelector(QWidget* parent, std::vector<Target> choices,
                               std::function<std::shared_ptr<const Model>()> model)
    : QObject(parent), box_(new QComboBox(parent)), pattern_(new QLineEdit(parent)), label_(new QLabel(parent)),
      model_(std::move(model))
{
    for (const Target t : choices) {
        const QString text = t == Target::Selection ? tr("Selected layers")
                             : t == Target::Pattern ? tr("Layers matching")
                                                    : tr("Every block linear");
        box_->addItem(text, static_cast<int>(t));
    }
    pattern_->setPlaceholderText(tr("regular expression, e.g. mlp or ^blocks\\.0\\."));
    pattern_->setVisible(target() == Target::Pattern);
    label_->setWordWrap(true);
    setSecondaryText(label_);
    connect(box_, &QComboBox::currentIndexChanged, this, [this] {
        pattern_->setVisible(target() == Target::Pattern);
        emit changed();
    });
    connect(pattern_, &QLineEdit::textChanged, this, &TargetSelector::changed);
}

void TargetSelector::addTo(QFormLayout* form, const QString& label)
{
    form->addRow(label, box_);
    form->addRow(QString(), pattern_);
    form->addRow(QString(), label_);
}

void TargetSelector::setSelectionProvider(std::function<std::vector<std::string>()> selection)
{
    selection_ = std::move(selection);
}

TargetSelector::Target TargetSelector::target() const { return static_cast<Target>(box_->currentData().toInt()); }

void TargetSelector::setTarget(Target target, const QString& pattern)
{
    if (target == Target::Pattern || !pattern.isEmpty())
        pattern_->setText(pattern);
    box_->setCurrentIndex(box_->findData(static_cast<int>(target)));
    emit changed();
}

QString TargetSelector::patternText() const { return pattern_->text(); }

std::vector<std::string> TargetSelector::names() const
{
    const std::shared_ptr<const Model> model = model_ ? model_() : nullptr;
    if (!model)
        return {};
    std::string pattern;
    switch (target()) {
    case Target::AllLinears: break;
    case Target::Pattern: pattern = pattern_->text().toStdString(); break;
    case Target::Selection: {
        const std::vector<std::string> selected = selection_ ? selection_() : std::vector<std::string>{};
        if (selected.empty())
            return {};
        pattern = exactNamesPattern(selected); // core keeps those of them that are block linears
        break;
    }
    }
    std::vector<std::string> names;
    try {
        for (const LogicalTensor* t : selectTargets(*model, pattern))
            names.push_back(t->logicalName);
    } catch (const Error&) {
        // a pattern being typed, or a choice that matches no block linear
    }
    return names;
}

std::string TargetSelector::layersPattern() const
{
    switch (target()) {
    case Target::AllLinears: return {};
    case Target::Pattern: return pattern_->text().toStdString();
    case Target::Selection: break;
    }
    return exactNamesPattern(names());
}

std::vector<std::string> TargetSelector::refreshLabel(const QString& noModel)
{
    const std::vector<std::string> n = names();
    if (model_ && !model_() && !noModel.isEmpty())
        label_->setText(noModel);
    else if (n.empty())
        label_->setText(target() == Target::Selection ? tr("Select q, k, v, o, gate, up or down weights in the tree.")
                                                      : tr("No block linear matches."));
    else if (n.size() == 1)
        label_->setText(QString::fromStdString(n.front()));
    else
        label_->setText(tr("%1 layers: %2 … %3")
                            .arg(n.size())
                            .arg(QString::fromStdString(n.front()), QString::fromStdString(n.back())));
    return n;
}

void TargetSelector::showNote(const QString& text) { label_->setText(text); }

void TargetSelector::setEnabled(bool enabled)
{
    box_->setEnabled(enabled);
    pattern_->setEnabled(enabled);
}

} // namespace ll::gui
