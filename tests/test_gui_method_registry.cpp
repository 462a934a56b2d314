// Every method of the registry (core/methods) appears everywhere a method
// appears: it validates and round-trips through a recipe, it is listed with
// its parameters by the CLI's --help, and the GUI's forms (Compress and
// Sensitivity) offer exactly the parameters its schema declares.
#include "test_support.h"

#include "export/gguf_export.h"
#include "export/gguf_presets.h"

#include "compression_panel.h"
#include "method_form.h"
#include "model_document.h"
#include "sensitivity_panel.h"

#include "methods/method_registry.h"
#include "recipe/recipe.h"
#include "util/error.h"

#include <QComboBox>
#include <QtTest>

#include <algorithm>

using namespace ll;
using namespace ll::gui;

namespace {

// The smallest valid parameters: each required one in its range.
nlohmann::json minimalParams(const MethodSpec& m)
{
    nlohmann::json params{{"method", m.id}};
    for (const ParamSpec& p : m.params)
        if (p.required)
            params[p.key] = std::clamp(4.0, p.min, p.max);
        else if (p.defaultValue.empty() && !p.suggested.empty())
            params[p.key] = std::stod(p.suggested); // sparsity, rank-ratio: no default, one is needed
    return params;
}

// The parameters a form shows with nothing chosen: fixed widths and the ones
// that apply only with another (ratio with structured) are not.
std::vector<std::string> expectedFormKeys(const MethodSpec& m)
{
    std::vector<std::string> keys;
    for (const ParamSpec& p : m.params) {
        // Set from the start: the ones with a default; a parameter not applying with one of them is hidden.
        const bool displaced = std::any_of(p.notWith.begin(), p.notWith.end(), [&](const std::string& k) {
            const ParamSpec* other = m.param(k);
            return other && !(other->defaultValue.empty() && other->suggested.empty());
        });
        if (!(p.type == ParamType::Int && p.min == p.max) && p.onlyWith.empty() && !displaced)
            keys.push_back(p.key);
    }
    return keys;
}

std::vector<std::string> sorted(std::vector<std::string> v)
{
    std::sort(v.begin(), v.end());
    return v;
}

} // namespace

class TestGuiMethodRegistry : public QObject {
    Q_OBJECT
private slots:
    void everyMethodRoundTripsThroughARecipe();
    void everyMethodIsInTheCliHelp();
    void everyCommandHasHelp();
    void formsOfferExactlyTheSchema();
    void dependentParameters();
};

void TestGuiMethodRegistry::everyMethodRoundTripsThroughARecipe()
{
    QVERIFY(methodRegistry().size() >= 18);
    for (const MethodSpec* m : methodRegistry()) {
        QVERIFY2(!m->teaching.what.empty() && !m->teaching.formula.empty() && !m->teaching.when.empty(), m->id.c_str());
        Recipe r;
        RecipeStep step;
        step.action = m->action;
        step.params = minimalParams(*m);
        step.validate();
        QVERIFY2(!step.badge().empty(), m->id.c_str());
        r.steps.push_back(step);
        const Recipe back = Recipe::fromJson(r.toJson(), "test");
        QVERIFY2(back == r, m->id.c_str());
        // A key of another method of the action is refused, naming the method's own.
        for (const std::string& key : actionParamKeys(m->action)) {
            if (m->takes(key) || commonStepKeys().count(key)
                || std::find(m->ignoredKeys.begin(), m->ignoredKeys.end(), key) != m->ignoredKeys.end())
                continue;
            RecipeStep wrong = step;
            wrong.params[key] = key == "structured" ? nlohmann::json("neurons") : nlohmann::json(1);
            try {
                wrong.validate();
                QFAIL(qPrintable(QString::fromStdString(m->id + " accepted " + key)));
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(m->id + " has no parameter " + key) != std::string::npos, e.what());
            }
            break; // one is enough per method
        }
    }
}

void TestGuiMethodRegistry::everyMethodIsInTheCliHelp()
{
    for (const StepAction action : {StepAction::Quantize, StepAction::Prune, StepAction::Factorize}) {
        const test::CliResult r = test::runCli({std::string(actionName(action)), "--help"});
        QCOMPARE(r.exitCode, 0);
        for (const MethodSpec* m : methodSpecsFor(action)) {
            QVERIFY2(r.out.find("  " + m->id + ": " + m->name) != std::string::npos, m->id.c_str());
            for (const ParamSpec& p : m->params)
                QVERIFY2(r.out.find("--" + p.key) != std::string::npos, (m->id + " --" + p.key).c_str());
        }
    }
}

void TestGuiMethodRegistry::everyCommandHasHelp()
{
    for (const char* command : {"inspect", "bench", "bench-model", "tokenize", "logits", "ppl", "eval", "generate", "export", "prune",
                                "factorize", "quantize", "apply", "sensitivity", "mixed", "clean", "session", "methods"}) {
        const test::CliResult r = test::runCli({command, "--help"});
        QVERIFY2(r.exitCode == 0, command);
        QVERIFY2(r.out.rfind(std::string("usage: layerlab-cli ") + command, 0) == 0, r.out.c_str());
    }
    // export's GGUF choices come from core's tables (issue 14): every preset and every single type.
    const test::CliResult help = test::runCli({"export", "--help"});
    for (const GgufPresetInfo& p : ggufPresets())
        QVERIFY2(help.out.find(std::string(p.name)) != std::string::npos, p.name);
    QVERIFY2(help.out.find(ggufExportTypeNames()) != std::string::npos, help.out.c_str());
}

void TestGuiMethodRegistry::formsOfferExactlyTheSchema()
{
    ModelDocument doc;
    doc.openDemo();
    CompressionPanel compress(&doc);
    SensitivityPanel sensitivity(&doc);
    auto* compressForm = compress.findChild<MethodForm*>(QStringLiteral("methodForm"));
    auto* sensitivityForm = sensitivity.findChild<MethodForm*>(QStringLiteral("sensitivityMethodForm"));
    QVERIFY(compressForm && sensitivityForm);
    for (const MethodSpec* m : methodRegistry()) {
        compress.setAction(m->action);
        compress.setMethod(QString::fromStdString(m->id));
        QCOMPARE(compressForm->method(), m);
        QCOMPARE(sorted(compressForm->shownKeys()), sorted(expectedFormKeys(*m)));
        // What the form says is a valid step of that method.
        RecipeStep step = compress.currentStep();
        if (m->action == StepAction::Factorize)
            QVERIFY(step.params.contains("rank-ratio"));
        step.validate();
        if (m->action == StepAction::Rotate || m->action == StepAction::KvCache) {
            QVERIFY(step.layers.empty()); // the whole model (every block's cache): no target pattern
            continue; // not a per-layer choice: Sensitivity does not offer it
        }

        sensitivity.setMethod(QString::fromStdString(m->id), 3, 32, 0.5);
        QCOMPARE(sensitivityForm->method(), m);
        QCOMPARE(sorted(sensitivityForm->shownKeys()), sorted(expectedFormKeys(*m)));
        sensitivity.currentStep().validate();
    }
    // NF4 has no groups (blocks of 64): the form offers none and writes none.
    compress.setAction(StepAction::Quantize);
    compress.setMethod(QStringLiteral("nf4"));
    QVERIFY(!compress.currentStep().params.contains("group"));
    QCOMPARE(compress.currentStep().badge(), std::string("NF4"));
    // A group off the preset list is labelled as the registry says ("groups of {}").
    compress.setMethod(QStringLiteral("rtn"));
    compressForm->setValue("group", 256);
    auto* group = qobject_cast<QComboBox*>(compressForm->field("group"));
    QVERIFY(group);
    QCOMPARE(group->currentText(), QStringLiteral("groups of 256"));
    QCOMPARE(compress.currentStep().params.value("group", 0), 256);
}

// Parameters that apply only with another: the ratio of structured pruning, the sparsity without an N:M pattern.
void TestGuiMethodRegistry::dependentParameters()
{
    ModelDocument doc;
    doc.openDemo();
    CompressionPanel compress(&doc);
    auto* form = compress.findChild<MethodForm*>(QStringLiteral("methodForm"));
    compress.setAction(StepAction::Prune);
    compress.setMethod(QStringLiteral("wanda"));
    compress.setParam(QStringLiteral("nm"), QStringLiteral("2:4"));
    QCOMPARE(sorted(form->shownKeys()), sorted({"nm", "structured"}));
    QCOMPARE(compress.currentStep().badge(), std::string("wanda 2:4 sparse"));
    compress.setParam(QStringLiteral("nm"), QString());
    compress.setParam(QStringLiteral("structured"), QStringLiteral("heads"));
    QCOMPARE(sorted(form->shownKeys()), sorted({"structured", "ratio"}));
    const RecipeStep step = compress.currentStep();
    QVERIFY(step.layers.empty());
    QCOMPARE(step.params.value("ratio", 0.0), 0.25);
    step.validate();
}

QTEST_MAIN(TestGuiMethodRegistry)
#include "test_gui_method_registry.moc"
