// The undo history's memory budget (issue 13): ModelDocument counts the bytes
// of edited tensors that only earlier states keep alive, drops the oldest
// steps past its budget with a message (never silently), keeps the newest
// step undoable, and the History dock shows the figure.
#include "test_support.h"

#include "history_panel.h"
#include "model_document.h"

#include "formats/open_model.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"

#include <QSignalSpy>
#include <QUndoStack>
#include <QUndoView>
#include <QtTest>

#include <set>

using namespace ll;
using namespace ll::gui;

namespace {

RecipeStep rtn(int bits)
{
    RecipeStep s;
    s.action = StepAction::Quantize;
    s.params = {{"method", "rtn"}, {"bits", bits}, {"group", 32}};
    return s;
}

// The bytes of a state's edited tensors, each buffer once.
uint64_t editedBytes(const CompressionState& s)
{
    std::set<const void*> seen;
    uint64_t bytes = 0;
    for (const TensorRef& t : s.model->stored)
        if (t.edited && seen.insert(t.keepAlive.get()).second)
            bytes += t.nbytes;
    return bytes;
}

QStringList names(const std::vector<std::string>& v)
{
    QStringList out;
    for (const auto& n : v)
        out << QString::fromStdString(n);
    return out;
}

} // namespace

class TestGuiHistory : public QObject {
    Q_OBJECT
private slots:
    void budgetDropsOldestStepsWithAMessage();
    void withinBudgetNothingIsDropped();
};

void TestGuiHistory::budgetDropsOldestStepsWithAMessage()
{
    LL_REQUIRE_SHARED();
    const std::shared_ptr<const Model> source = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
    // Three steps, each re-quantizing every linear: each state holds its own edits.
    const CompressionState s0 = CompressionState::initial(source);
    const StepOutcome a = applyStep(s0, rtn(8), {});
    const StepOutcome b = applyStep(a.state, rtn(4), {});
    const StepOutcome c = applyStep(b.state, rtn(3), {});
    const uint64_t e1 = editedBytes(a.state), e2 = editedBytes(b.state);
    QVERIFY(e1 > 0 && e2 > 0 && e2 < e1); // 4-bit codes take less than 8-bit ones
    // Packed, not F32: RTN 8-bit g32 keeps about a byte a weight plus 5 bytes a group of 32.
    uint64_t linearWeights = 0;
    for (const std::string& n : a.touched)
        linearWeights += static_cast<uint64_t>(source->findLogical(n)->elements());
    QVERIFY2(e1 < linearWeights * 2, qPrintable(QString("%1 bytes for %2 weights").arg(e1).arg(linearWeights)));

    ModelDocument doc;
    doc.setModel(source);
    HistoryPanel panel(&doc);
    QSignalSpy trimmed(&doc, &ModelDocument::historyTrimmed);
    // Between the newest step's own need (e2: the state before it) and the whole history (e1 + e2).
    doc.setHistoryBudget(e2 + e1 / 2);
    doc.pushState(a.state, QStringLiteral("RTN 8b"), names(a.touched));
    QCOMPARE(doc.historyBytes(), uint64_t{0}); // the state as opened holds no edits
    doc.pushState(b.state, QStringLiteral("RTN 4b"), names(b.touched));
    QCOMPARE(doc.historyBytes(), e1);
    QCOMPARE(trimmed.count(), 0);
    doc.pushState(c.state, QStringLiteral("RTN 3b"), names(c.touched));
    // e1 + e2 exceeded the budget: RTN 8b and RTN 4b leave (RTN 4b's command holds state a as its "before").
    QCOMPARE(trimmed.count(), 1);
    QCOMPARE(trimmed.at(0).at(0).toInt(), 2);
    const QString message = trimmed.at(0).at(1).toString();
    QVERIFY2(message.contains(QStringLiteral("the 2 oldest steps (RTN 8b, RTN 4b)")), qPrintable(message));
    QCOMPARE(doc.undoStack()->count(), 1);
    QCOMPARE(doc.droppedSteps(), 2);
    QCOMPARE(doc.historyBytes(), e2);
    QVERIFY(doc.historyBytes() <= doc.historyBudget());
    QVERIFY(panel.memoryText().contains(QStringLiteral("2 oldest steps dropped")));
    QCOMPARE(panel.view()->emptyLabel(), QStringLiteral("<earlier steps dropped>"));

    // The document did not move; the kept step undoes and redoes exactly.
    QVERIFY(doc.model() == c.state.model);
    QVERIFY(doc.undoStack()->canUndo());
    doc.undoStack()->undo();
    QVERIFY(doc.model() == b.state.model);
    QVERIFY(!doc.undoStack()->canUndo());
    doc.undoStack()->redo();
    QVERIFY(doc.model() == c.state.model);

    // Opening again starts a fresh history.
    doc.setModel(source);
    QCOMPARE(doc.droppedSteps(), 0);
    QCOMPARE(panel.view()->emptyLabel(), QStringLiteral("<model as opened>"));
}

void TestGuiHistory::withinBudgetNothingIsDropped()
{
    LL_REQUIRE_SHARED();
    const std::shared_ptr<const Model> source = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
    const StepOutcome a = applyStep(CompressionState::initial(source), rtn(8), {});
    const StepOutcome b = applyStep(a.state, rtn(4), {});
    ModelDocument doc;
    QCOMPARE(doc.historyBudget(), uint64_t{4} << 30); // the default (LAYERLAB_UNDO_MEMORY_MB unset)
    doc.setModel(source);
    QSignalSpy trimmed(&doc, &ModelDocument::historyTrimmed);
    doc.pushState(a.state, QStringLiteral("RTN 8b"), names(a.touched));
    doc.pushState(b.state, QStringLiteral("RTN 4b"), names(b.touched));
    QCOMPARE(trimmed.count(), 0);
    QCOMPARE(doc.undoStack()->count(), 2);
    // After undoing one step, the undone state is what the history keeps (redo).
    doc.undoStack()->undo();
    QCOMPARE(doc.historyBytes(), editedBytes(b.state));
    doc.undoStack()->undo();
    QVERIFY(doc.model() == source);
}

QTEST_MAIN(TestGuiHistory)
#include "test_gui_history.moc"
