#include "method_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QSpinBox>

#include <algorithm>
#include <climits>
#include <cmath>

namespace ll::gui {

namespace {

enum class Kind { Spin, Real, Check, Combo };

Kind kindOf(const ParamSpec& p)
{
    if (p.type == ParamType::Flag)
        return Kind::Check;
    if (p.type == ParamType::Choice || p.type == ParamType::Text || !p.presets.empty())
        return Kind::Combo;
    return p.type == ParamType::Int ? Kind::Spin : Kind::Real;
}

Kind kindOf(const QWidget* w)
{
    if (qobject_cast<const QCheckBox*>(w))
        return Kind::Check;
    if (qobject_cast<const QComboBox*>(w))
        return Kind::Combo;
    return qobject_cast<const QSpinBox*>(w) ? Kind::Spin : Kind::Real;
}

// A number with no default that need not be given (energy, the alternative to rank-ratio): off at its minimum.
bool optional(const ParamSpec& p)
{
    return (p.type == ParamType::Int || p.type == ParamType::Real) && p.presets.empty() && p.defaultValue.empty()
           && p.suggested.empty() && !p.required;
}

// The value a fresh field starts with: the default, else the suggestion.
std::string startValue(const ParamSpec& p)
{
    return p.defaultValue.empty() ? p.suggested : p.defaultValue;
}

int clampInt(double x) { return static_cast<int>(std::clamp(x, static_cast<double>(INT_MIN), static_cast<double>(INT_MAX))); }

QString text(const std::string& s) { return QString::fromStdString(s); }

} // namespace

MethodForm::MethodForm(QWidget* parent) : QWidget(parent), form_(new QFormLayout(this))
{
    form_->setContentsMargins(0, 0, 0, 0);
    form_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
}

MethodForm::Row& MethodForm::rowFor(const ParamSpec& p)
{
    auto it = rows_.find(p.key);
    if (it != rows_.end() && kindOf(it->second.field) == kindOf(p))
        return it->second;
    if (it != rows_.end()) { // another method declares the key with another kind of field
        delete it->second.label;
        delete it->second.field;
        rows_.erase(it);
    }
    Row row;
    row.label = new QLabel(this);
    switch (kindOf(p)) {
    case Kind::Check: {
        auto* box = new QCheckBox(this);
        connect(box, &QCheckBox::toggled, this, &MethodForm::edited);
        row.field = box;
        break;
    }
    case Kind::Combo: {
        auto* box = new QComboBox(this);
        connect(box, &QComboBox::currentIndexChanged, this, [this] {
            updateVisibility();
            emit edited();
        });
        row.field = box;
        break;
    }
    case Kind::Spin: {
        auto* box = new QSpinBox(this);
        connect(box, &QSpinBox::valueChanged, this, &MethodForm::edited);
        row.field = box;
        break;
    }
    case Kind::Real: {
        auto* box = new QDoubleSpinBox(this);
        connect(box, &QDoubleSpinBox::valueChanged, this, &MethodForm::edited);
        row.field = box;
        break;
    }
    }
    row.field->setObjectName(QStringLiteral("param_") + text(p.key));
    return rows_[p.key] = row;
}

void MethodForm::configure(Row& row, const ParamSpec& p)
{
    const bool fresh = row.spec == nullptr;
    row.spec = &p;
    row.label->setText(p.type == ParamType::Flag ? QString() : text(p.label));
    row.field->setToolTip(text(p.help));
    const QSignalBlocker block(row.field);
    if (auto* box = qobject_cast<QCheckBox*>(row.field)) {
        box->setText(text(p.label));
        if (fresh)
            box->setChecked(p.defaultValue == "true");
    } else if (auto* box = qobject_cast<QSpinBox*>(row.field)) {
        box->setRange(clampInt(p.min), clampInt(p.max));
        // 0 means off for the counts (LoRC rank, outlier columns); an optional number is off at its minimum.
        box->setSpecialValueText((p.defaultValue == "0" && !p.zeroIsValue) || optional(p) ? tr("off") : QString());
        if (fresh)
            box->setValue(optional(p)              ? clampInt(p.min)
                          : startValue(p).empty() ? clampInt(std::max(p.min, std::min(p.max, 4.0)))
                                                  : std::stoi(startValue(p)));
    } else if (auto* box = qobject_cast<QDoubleSpinBox*>(row.field)) {
        const double scale = p.percent ? 100.0 : 1.0;
        box->setDecimals(p.percent ? 1 : 3);
        box->setRange(p.min * scale, p.max * scale);
        box->setSingleStep(p.percent ? 5.0 : p.max - p.min <= 1.0 ? 0.05 : 0.5);
        box->setSuffix(p.percent ? QStringLiteral(" %") : QString());
        box->setSpecialValueText(optional(p) ? tr("off") : QString());
        if (fresh)
            box->setValue((startValue(p).empty() ? p.min : std::stod(startValue(p))) * scale);
    } else if (auto* box = qobject_cast<QComboBox*>(row.field)) {
        const QVariant before = fresh ? QVariant() : box->currentData();
        box->clear();
        if (!p.presets.empty())
            for (const auto& [value, label] : p.presets)
                box->addItem(text(label), text(value));
        else
            for (const std::string& c : p.choices)
                box->addItem(text(c), text(c));
        int index = before.isValid() ? box->findData(before) : -1;
        if (index < 0)
            index = box->findData(text(p.defaultValue));
        box->setCurrentIndex(std::max(0, index));
    }
}

void MethodForm::setMethod(const MethodSpec* spec)
{
    spec_ = spec;
    while (form_->rowCount() > 0) {
        // The widgets stay ours (rows_); the layout items wrapping them are the caller's to delete
        // (LeakSanitizer found 328 of them in the registry's GUI test).
        const QFormLayout::TakeRowResult taken = form_->takeRow(0);
        delete taken.labelItem;
        delete taken.fieldItem;
    }
    for (auto& [key, row] : rows_) {
        if (!spec || !spec->takes(key))
            row.spec = nullptr; // back to its default when a method shows it again
        row.label->hide();
        row.field->hide();
    }
    if (spec) {
        // Main parameters first, then the advanced ones.
        for (const bool advanced : {false, true})
            for (const ParamSpec& p : spec->params) {
                if (p.advanced != advanced)
                    continue;
                Row& row = rowFor(p); // row.spec set: the previous method had it too, its value stays
                configure(row, p);
                form_->addRow(row.label, row.field);
            }
    }
    updateVisibility();
}

bool MethodForm::applies(const ParamSpec& p) const
{
    if (p.type == ParamType::Int && p.min == p.max)
        return false; // fixed: nothing to choose (NF4's 4 bits)
    if (!p.onlyWith.empty() && !given(p.onlyWith))
        return false;
    return std::none_of(p.notWith.begin(), p.notWith.end(), [this](const std::string& k) { return given(k); });
}

bool MethodForm::given(const std::string& key) const
{
    const auto it = rows_.find(key);
    if (it == rows_.end() || !it->second.spec || !spec_ || !spec_->takes(key))
        return false;
    return valueOf(it->second).has_value();
}

std::optional<nlohmann::json> MethodForm::valueOf(const Row& row) const
{
    const ParamSpec& p = *row.spec;
    if (auto* box = qobject_cast<QCheckBox*>(row.field))
        return box->isChecked() ? std::optional<nlohmann::json>(true) : std::nullopt;
    if (auto* box = qobject_cast<QSpinBox*>(row.field)) {
        if (optional(p) && box->value() == box->minimum())
            return std::nullopt;
        return nlohmann::json(box->value());
    }
    if (auto* box = qobject_cast<QDoubleSpinBox*>(row.field)) {
        if (optional(p) && box->value() == box->minimum())
            return std::nullopt;
        const double v = box->value() / (p.percent ? 100.0 : 1.0);
        return nlohmann::json(std::round(v * 1e6) / 1e6); // the spin box's decimals, not binary noise
    }
    if (auto* box = qobject_cast<QComboBox*>(row.field)) {
        const std::string v = box->currentData().toString().toStdString();
        if (v.empty())
            return std::nullopt;
        if (p.type == ParamType::Int)
            return nlohmann::json(std::stoll(v));
        return nlohmann::json(v);
    }
    return std::nullopt;
}

void MethodForm::updateVisibility()
{
    if (!spec_)
        return;
    for (const ParamSpec& p : spec_->params) {
        const auto it = rows_.find(p.key);
        if (it == rows_.end())
            continue;
        const bool shown = applies(p);
        it->second.label->setVisible(shown);
        it->second.field->setVisible(shown);
    }
}

nlohmann::json MethodForm::params() const
{
    nlohmann::json out = nlohmann::json::object();
    if (!spec_)
        return out;
    for (const ParamSpec& p : spec_->params) {
        const auto it = rows_.find(p.key);
        if (it == rows_.end() || !it->second.spec || !applies(p))
            continue;
        const auto v = valueOf(it->second);
        if (!v)
            continue;
        if (p.advanced && !p.defaultValue.empty()) {
            const std::string asText = v->is_string() ? v->get<std::string>() : v->dump();
            if (asText == p.defaultValue || (v->is_number() && v->get<double>() == std::stod(p.defaultValue)))
                continue;
        }
        // LoRC / outlier counts at 0 mean off: nothing to write.
        if (p.type == ParamType::Int && v->is_number() && v->get<long long>() == 0 && p.defaultValue == "0"
            && p.presets.empty())
            continue;
        out[p.key] = *v;
    }
    return out;
}

void MethodForm::setValue(const std::string& key, const nlohmann::json& value)
{
    const auto it = rows_.find(key);
    if (it == rows_.end() || !it->second.spec)
        return;
    const ParamSpec& p = *it->second.spec;
    QWidget* w = it->second.field;
    if (auto* box = qobject_cast<QCheckBox*>(w)) {
        box->setChecked(value.is_boolean() ? value.get<bool>() : false);
    } else if (auto* box = qobject_cast<QSpinBox*>(w)) {
        if (value.is_number())
            box->setValue(clampInt(value.get<double>()));
    } else if (auto* box = qobject_cast<QDoubleSpinBox*>(w)) {
        if (value.is_number())
            box->setValue(value.get<double>() * (p.percent ? 100.0 : 1.0));
    } else if (auto* box = qobject_cast<QComboBox*>(w)) {
        const QString v = value.is_string() ? text(value.get<std::string>())
                          : value.is_number_integer() ? QString::number(value.get<long long>())
                                                      : QString();
        int index = box->findData(v, Qt::UserRole, Qt::MatchFixedString); // case-insensitive (e4m3)
        if (index < 0 && !v.isEmpty() && (p.type == ParamType::Int || p.type == ParamType::Text)) {
            // A value off the list (group 256), labelled as its parameter says.
            box->addItem(p.presetLabel.empty() ? v : QString::fromStdString(p.presetLabel).replace(QStringLiteral("{}"), v), v);
            index = box->count() - 1;
        }
        if (index >= 0)
            box->setCurrentIndex(index);
    }
    updateVisibility();
}

QWidget* MethodForm::field(const std::string& key) const
{
    const auto it = rows_.find(key);
    return it == rows_.end() ? nullptr : it->second.field;
}

std::vector<std::string> MethodForm::shownKeys() const
{
    std::vector<std::string> keys;
    if (!spec_)
        return keys;
    for (const ParamSpec& p : spec_->params)
        if (rows_.count(p.key) && rows_.at(p.key).spec && applies(p))
            keys.push_back(p.key);
    return keys;
}

} // namespace ll::gui
