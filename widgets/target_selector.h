#pragma once
// Which block linears a step acts on, as the Compress and Sensitivity panels
// offer it: the layers selected in the model tree, the ones a regular
// expression matches, or every block linear. Which layers a choice means is
// core's answer (selectTargets, the recipe player's own selection), so the
// label under the choice names exactly the layers that will be compressed.
#include "model/model.h"

#include <QObject>
#include <QString>

#include <functional>
#include <memory>
#include <string>
#include <vector>

class QComboBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QWidget;

namespace ll::gui {

class TargetSelector : public QObject {
    Q_OBJECT
public:
    enum class Target { Selection, Pattern, AllLinears };

    // The choices in the order given (the first one is chosen); `model` gives the current model.
    TargetSelector(QWidget* parent, std::vector<Target> choices, std::function<std::shared_ptr<const Model>()> model);

    // Adds the choice, the pattern field and the label as three rows of `form`.
    void addTo(QFormLayout* form, const QString& label);
    // Where the selected layers come from (the model tree's selection).
    void setSelectionProvider(std::function<std::vector<std::string>()> selection);

    Target target() const;
    void setTarget(Target target, const QString& pattern = QString());
    QString patternText() const;
    // The block linears the choice means, in the model's order (empty: none, or a pattern being typed).
    std::vector<std::string> names() const;
    // The step's `layers`: empty for every block linear, the regular expression,
    // or the selected layers' exact names.
    std::string layersPattern() const;
    // Shows the choice's layers ("12 layers: blocks.0.attn.q.weight … blocks.3.mlp.down.weight")
    // and returns them; `noModel` is shown while no model is open.
    std::vector<std::string> refreshLabel(const QString& noModel = QString());
    // What the label says instead, for a step that does not act on chosen layers (a rotation, SliceGPT).
    void showNote(const QString& text);
    void setEnabled(bool enabled);
    QComboBox* choiceBox() const { return box_; }

signals:
    void changed(); // the choice or the pattern changed

private:
    QComboBox* box_;
    QLineEdit* pattern_;
    QLabel* label_;
    std::function<std::shared_ptr<const Model>()> model_;
    std::function<std::vector<std::string>()> selection_;
};

} // namespace ll::gui
