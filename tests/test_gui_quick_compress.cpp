// File › Make a Smaller Model (offscreen, stories260K-hf): the sizes offered
// are the files' exact sizes, a size limit picks the largest choice that fits,
// the file written reopens with LayerLab's GGUF reader, and the result card's
// perplexities are the CLI's `ppl` on the original and on the file written
// (same text, context and windows), measured by a separate process.
#include "test_support.h"

#include "eval_text.h"
#include "model_document.h"
#include "quick_compress.h"

#include "formats/open_model.h"
#include "model/model.h"

#include <QDir>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <filesystem>

using namespace ll;
using namespace ll::gui;

namespace {

// The card shows perplexities to 3 decimals; the CLI's are full precision.
constexpr double kCardPplTol = 6e-4;

double cliPpl(const std::string& model, const std::string& text)
{
    const auto r = test::runCli({"ppl", model, "--text", text, "--ctx", "256", "--windows", "16", "--json"});
    if (r.exitCode != 0)
        qFatal("ppl failed: %s", r.err.c_str());
    return nlohmann::json::parse(r.out)["ppl"].get<double>();
}

} // namespace

class TestGuiQuickCompress : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("LayerLabTest"));
        QCoreApplication::setApplicationName(QStringLiteral("test_gui_quick_compress"));
        QSettings().clear();
    }

    void sizesAreTheFilesAndTheCardTheCliFigures()
    {
        LL_REQUIRE_SHARED();
        const std::string source = test::sharedPath("models/stories260K-hf");
        const std::string text = test::sharedPath("data/tinystories/eval.txt");
        ModelDocument document;
        document.setModel(std::shared_ptr<const Model>(openModel(source)));
        QuickCompressDialog dialog(&document, TextSource{QString::fromStdString(text)});
        QTRY_VERIFY_WITH_TIMEOUT(dialog.estimatesReady(), 30000);
        QCOMPARE(dialog.selectedChoice(), QStringLiteral("Q4_K_M")); // the "4-bit GGUF" people ask for
        // Never beside the source model.
        QVERIFY(!dialog.outputPath().startsWith(QString::fromStdString(source)));

        // A size limit selects the largest file that fits.
        quint64 q4 = 0;
        for (const auto& c : dialog.choices())
            if (c.name == QLatin1String("Q4_K_M"))
                q4 = c.bytes;
        QVERIFY(q4 > 0);
        QVERIFY(dialog.fitInto(q4 + 1));
        quint64 picked = 0;
        for (const auto& c : dialog.choices())
            if (c.name == dialog.selectedChoice())
                picked = c.bytes;
        QVERIFY(picked <= q4 + 1);
        for (const auto& c : dialog.choices())
            QVERIFY2(c.bytes <= picked || c.bytes > q4 + 1, qPrintable(c.name));
        QVERIFY(!dialog.fitInto(1000)); // nothing fits in 1000 bytes: the smallest is selected

        dialog.selectChoice(QStringLiteral("Q4_K_M"));
        dialog.show();
        const QByteArray shot = qgetenv("LAYERLAB_QUICK_SCREENSHOT"); // a path ending in .png: both pages
        if (!shot.isEmpty())
            QVERIFY(dialog.grab().save(QString::fromLocal8Bit(shot)));
        const QString dir = QString::fromStdString(test::scratchDir());
        dialog.setFolder(dir);
        QSignalSpy finished(&dialog, &QuickCompressDialog::finished);
        QVERIFY(dialog.start());
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 120000);
        QCOMPARE(finished.at(0).at(0).toBool(), true);
        const auto r = dialog.result();
        QVERIFY(r.has_value());
        if (!shot.isEmpty())
            QVERIFY(dialog.grab().save(QString::fromLocal8Bit(shot).replace(QStringLiteral(".png"), QStringLiteral("-card.png"))));
        const std::string path = r->path.toStdString();
        QVERIFY(path.rfind(dir.toStdString(), 0) == 0);
        // The size offered, the size on the card and the file agree to the byte.
        QCOMPARE(static_cast<quint64>(std::filesystem::file_size(path)), r->bytesAfter);
        QCOMPARE(r->bytesAfter, q4);
        const auto back = openModel(path);
        QCOMPARE(back->format, std::string("gguf"));
        // stories260K's rows of 64 values cannot take Q4_K: the card says which type they got instead, and why.
        QVERIFY(!r->fallbacks.isEmpty());
        QVERIFY2(dialog.cardText().contains(QStringLiteral("instead of")), qPrintable(dialog.cardText()));

        const double before = cliPpl(source, text), after = cliPpl(path, text);
        qInfo("perplexity original %.6f (card %.6f), Q4_K_M file %.6f (card %.6f)", before, r->pplBefore, after, r->pplAfter);
        QVERIFY(std::fabs(r->pplBefore - before) <= 1e-9 * before + 1e-6);
        QVERIFY(std::fabs(r->pplAfter - after) <= 1e-6 * after);
        QVERIFY(after > before); // 4-bit costs something on a 260K-parameter model
        QVERIFY(r->top1 > 0.5 && r->top1 < 1.0);
        QVERIFY2(dialog.cardText().contains(QString::number(after, 'f', 3)), qPrintable(dialog.cardText()));
        QVERIFY(std::fabs(QString::number(after, 'f', 3).toDouble() - after) <= kCardPplTol);
    }
};

QTEST_MAIN(TestGuiQuickCompress)
#include "test_gui_quick_compress.moc"
