#pragma once
// The parameter form of one compression method, built from its schema in the
// registry (core/methods/method_spec.h): one row per parameter the method
// declares, shown only where it applies (ratio only with structured, sparsity
// not with an N:M pattern), with the schema's range, choices and default. The
// Compress and Sensitivity panels both use it, so a new method's parameters
// appear in both without an edit here.
#include "methods/method_spec.h"

#include <QWidget>

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

class QFormLayout;
class QLabel;

namespace ll::gui {

class MethodForm : public QWidget {
    Q_OBJECT
public:
    explicit MethodForm(QWidget* parent = nullptr);

    // Shows `spec`'s parameters (nullptr: none); values the user chose are kept where they fit.
    void setMethod(const MethodSpec* spec);
    const MethodSpec* method() const { return spec_; }
    // The parameters the form says, as recipe keys (no "method"): the shown
    // ones, flags only when set, advanced ones only when not at their default.
    nlohmann::json params() const;
    // Sets one parameter by recipe key (a fraction for percentages); unknown keys are ignored.
    void setValue(const std::string& key, const nlohmann::json& value);
    // The field of a parameter (tests), or nullptr.
    QWidget* field(const std::string& key) const;
    // Keys of the rows shown now.
    std::vector<std::string> shownKeys() const;

signals:
    void edited();

private:
    struct Row {
        const ParamSpec* spec = nullptr; // the current method's declaration
        QLabel* label = nullptr;
        QWidget* field = nullptr;
    };

    Row& rowFor(const ParamSpec& p);
    void configure(Row& row, const ParamSpec& p);
    bool applies(const ParamSpec& p) const;
    bool given(const std::string& key) const;                    // shown and not "absent"
    std::optional<nlohmann::json> valueOf(const Row& row) const; // nullopt: absent
    void updateVisibility();

    const MethodSpec* spec_ = nullptr;
    QFormLayout* form_;
    std::map<std::string, Row> rows_;
};

} // namespace ll::gui
