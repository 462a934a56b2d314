// layerlab: the desktop workbench.
//   layerlab [MODEL] [--select NAME] [--filter PATTERN] [--size WxH] [--dock NAME]
//            [--evaluate FILE|sample [--ctx N] [--windows N]] [--generate PROMPT [--tokens N]]
//            [--activations [--outliers-by max|rms|contribution]] [--screenshot FILE.png]
//            [--session FILE.layerlab] [--apply-recipe FILE] [--recover yes|no|ask] [--no-autosave]
//            [--print-state] [--tour STEP] [--zoom PERCENT] [--present] [--tasks NAME=FILE,... [--shots K] [--limit N]]
// --print-state waits for every job, prints the state (recipe, weights
// checksum) as JSON on stdout and exits. Without --recover, a session left by
// a crashed run is offered in a message box (kept for later when unattended).
// Without MODEL it opens the built-in demo model. --evaluate, --tasks, --generate and
// --activations start those jobs as the buttons would. --screenshot renders
// the main window once every job has finished, saves it and exits.
#include "activation_view.h"
#include "compression_panel.h"
#include "methods/method_registry.h"
#include "generate_panel.h"
#include "main_window.h"
#include "zoom.h"
#include "model_browser.h"
#include "model_document.h"
#include "perplexity_panel.h"
#include "task_panel.h"
#include "guided_tour.h"
#include "recipe_panel.h"
#include "session.h"
#include "tensor_inspector.h"
#include "util/json_util.h"

#include <QComboBox>
#include <QLineEdit>
#include <QSpinBox>
#include <QTabWidget>

#include <QApplication>

#include <memory>
#include <string_view>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QIcon>
#include <QMessageBox>
#include <QTimer>

#include <QUndoStack>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <malloc.h>

namespace {

// Polls until every job is done, lets the plots settle, then saves the window.
// `failed` is read when saving: jobs still running may set it.
void scheduleScreenshot(ll::gui::MainWindow* window, const QString& file, const bool* failed, int timeoutMs)
{
    auto* timer = new QTimer(window);
    auto* clock = new QElapsedTimer;
    clock->start();
    QObject::connect(timer, &QTimer::timeout, window, [window, file, timer, clock, failed, timeoutMs] {
        const bool ready = !window->isBusy();
        const bool timedOut = clock->elapsed() > timeoutMs;
        if (!ready && !timedOut)
            return;
        timer->stop();
        delete clock;
        if (timedOut)
            std::fprintf(stderr, "layerlab: the jobs did not finish within %d s; saving what is shown\n", timeoutMs / 1000);
        QTimer::singleShot(300, window, [window, file, timedOut, failed] {
            const bool saved = window->grab().save(file);
            if (!saved)
                std::fprintf(stderr, "layerlab: cannot write %s\n", qPrintable(file));
            QApplication::exit(saved && !timedOut && !*failed ? 0 : 1);
        });
    });
    timer->start(50);
}

// Once every job (and a restore) has ended: the state as one JSON line on stdout.
void schedulePrintState(ll::gui::MainWindow* window, bool recoveryOffered, const QString& recoverySummary,
                        const bool* recovered, const bool* failed)
{
    auto* timer = new QTimer(window);
    QObject::connect(timer, &QTimer::timeout, window, [=] {
        if (window->isBusy() || window->session()->isRestoring())
            return;
        timer->stop();
        nlohmann::json j = {{"recovery_offered", recoveryOffered}, {"recovered", *recovered}};
        if (recoveryOffered)
            j["recovery_summary"] = recoverySummary.toStdString(); // what the question at start-up said
        const ll::gui::ModelDocument* doc = window->document();
        if (doc->hasModel()) {
            const ll::CompressionState& st = doc->state();
            j["model"] = st.source->path;
            j["recipe"] = st.recipe().toJson();
            j["undo_count"] = doc->undoStack()->count();
            j["bits_per_weight"] = st.linearBitsPerWeight();
            j["checksum"] = ll::gui::checksumHex(ll::gui::modelChecksum(*st.model)).toStdString();
        }
        const std::string line = ll::dumpJson(j) + "\n";
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fflush(stdout);
        QApplication::exit(*failed ? 1 : 0);
    });
    timer->start(50);
}

} // namespace

// A compression step reads every layer into fresh F32 buffers (64 MB for a
// 1B model's MLP matrix) from the job's thread. By default glibc gives a
// thread its own arena, whose large blocks are mmapped and unmapped each time,
// so the kernel zeroes new pages for every layer: 40 % of RTN's time on the 1B
// model. One arena, with large blocks kept in the heap and at most 256 MB
// given back at a time, reuses them: the GUI's RTN 4-bit on all 112 linears
// of the 1B model took 18-22 s instead of 36-40 s, at the same peak RSS.
static void tuneAllocator()
{
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int main(int argc, char** argv)
{
    tuneAllocator();
    // --help and --version print and exit: they must work in a terminal without a display.
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if ((a == "-h" || a == "--help" || a == "--help-all" || a == "-v" || a == "--version")
            && qEnvironmentVariableIsEmpty("DISPLAY") && qEnvironmentVariableIsEmpty("WAYLAND_DISPLAY"))
            qputenv("QT_QPA_PLATFORM", "offscreen");
    }
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("LayerLab"));
    QApplication::setApplicationName(QStringLiteral("LayerLab"));
    QApplication::setApplicationVersion(QStringLiteral(LAYERLAB_VERSION));
    ll::gui::initResources();
    QApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/layerlab.svg")));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("LayerLab: a workbench for compressing large language models."));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("model"),
                                 QStringLiteral("Hugging Face folder, .safetensors, .gguf or llama2.c .bin "
                                                "(default: the built-in demo model)"),
                                 QStringLiteral("[MODEL]"));
    const QCommandLineOption selectOption(QStringLiteral("select"),
                                          QStringLiteral("Select a tensor by logical or stored name."),
                                          QStringLiteral("NAME"));
    const QCommandLineOption screenshotOption(QStringLiteral("screenshot"),
                                              QStringLiteral("Save a PNG of the window once ready, then exit."),
                                              QStringLiteral("FILE.png"));
    const QCommandLineOption filterOption(QStringLiteral("filter"),
                                          QStringLiteral("Filter the model tree: text, glob (*down*) or /regex/."),
                                          QStringLiteral("PATTERN"));
    const QCommandLineOption sizeOption(QStringLiteral("size"), QStringLiteral("Window size, e.g. 1280x800."),
                                        QStringLiteral("WxH"));
    const QCommandLineOption dockOption(QStringLiteral("dock"),
                                        QStringLiteral("Show and raise a dock: model, inspector, evaluate, tasks, speed, generate, activations, compress, sensitivity, compare."),
                                        QStringLiteral("NAME"));
    const QCommandLineOption evaluateOption(QStringLiteral("evaluate"),
                                            QStringLiteral("Run a perplexity evaluation on a text file "
                                                           "(\"sample\": the built-in text)."),
                                            QStringLiteral("FILE"));
    const QCommandLineOption ctxOption(QStringLiteral("ctx"), QStringLiteral("Context length for --evaluate."),
                                       QStringLiteral("N"));
    const QCommandLineOption windowsOption(QStringLiteral("windows"),
                                           QStringLiteral("Windows for --evaluate (default: all) and --activations."),
                                           QStringLiteral("N"));
    const QCommandLineOption generateOption(QStringLiteral("generate"), QStringLiteral("Generate from a prompt."),
                                            QStringLiteral("PROMPT"));
    const QCommandLineOption tokensOption(QStringLiteral("tokens"), QStringLiteral("Tokens for --generate."),
                                          QStringLiteral("N"));
    const QCommandLineOption activationsOption(QStringLiteral("activations"),
                                               QStringLiteral("Capture the linear layers' input activations."));
    const QCommandLineOption outliersByOption(QStringLiteral("outliers-by"),
                                              QStringLiteral("Activation outliers by max, rms or contribution."),
                                              QStringLiteral("SERIES"));
    const QCommandLineOption sessionOption(QStringLiteral("session"), QStringLiteral("Open a session (.layerlab)."),
                                           QStringLiteral("FILE"));
    const QCommandLineOption applyRecipeOption(QStringLiteral("apply-recipe"),
                                               QStringLiteral("Apply a recipe (YAML or JSON) to the model."),
                                               QStringLiteral("FILE"));
    const QCommandLineOption recoverOption(QStringLiteral("recover"),
                                           QStringLiteral("After a crash: restore the last session (yes), discard it "
                                                          "(no) or ask (default)."),
                                           QStringLiteral("yes|no|ask"));
    const QCommandLineOption noAutosaveOption(QStringLiteral("no-autosave"),
                                              QStringLiteral("Neither autosave nor offer recovery."));
    const QCommandLineOption printStateOption(QStringLiteral("print-state"),
                                              QStringLiteral("Print the state as JSON once ready, then exit."));
    const QCommandLineOption tourOption(QStringLiteral("tour"), QStringLiteral("Start the guided tour at a step (1-9)."),
                                        QStringLiteral("STEP"));
    const QCommandLineOption zoomOption(QStringLiteral("zoom"),
                                        QStringLiteral("Zoom in percent (80-250), as View › Zoom; remembered."),
                                        QStringLiteral("PERCENT"));
    const QCommandLineOption presentOption(QStringLiteral("present"),
                                           QStringLiteral("Start in presentation mode (View › Presentation Mode)."));
    const QCommandLineOption tasksOption(QStringLiteral("tasks"),
                                         QStringLiteral("Add task files to Evaluate › Tasks and run them "
                                                        "(NAME=FILE or FILE, comma-separated; NAME: hellaswag, arc, ...)."),
                                         QStringLiteral("LIST"));
    const QCommandLineOption shotsOption(QStringLiteral("shots"), QStringLiteral("Few-shot examples for --tasks."),
                                         QStringLiteral("K"));
    const QCommandLineOption limitOption(QStringLiteral("limit"), QStringLiteral("Items per task for --tasks."),
                                         QStringLiteral("N"));
    parser.addOptions({tasksOption, shotsOption, limitOption});
    const QCommandLineOption methodOption(QStringLiteral("method"),
                                          QStringLiteral("Choose a method in the Compress dock: ACTION:ID (rotate:quarot, quantize:gptq)."),
                                          QStringLiteral("action:id"));
    parser.addOption(methodOption);
    const QCommandLineOption previewTabOption(QStringLiteral("preview-tab"),
                                              QStringLiteral("Show a tab of the Compress preview by the start of its title "
                                                             "(histogram, mask, error, kurtosis, spectrum)."),
                                              QStringLiteral("title"));
    parser.addOption(previewTabOption);
    parser.addOptions({selectOption, filterOption, screenshotOption, sizeOption, dockOption, evaluateOption, ctxOption,
                       windowsOption, generateOption, tokensOption, activationsOption, outliersByOption, sessionOption,
                       applyRecipeOption, recoverOption, noAutosaveOption, printStateOption, tourOption, zoomOption,
                       presentOption});
    parser.process(app);

    ll::gui::MainWindow window;
    const bool unattended = parser.isSet(screenshotOption) || parser.isSet(printStateOption);
    window.setErrorDialogsEnabled(!unattended);
    if (parser.isSet(zoomOption)) {
        const int percent = parser.value(zoomOption).toInt();
        if (percent >= 80 && percent <= 250)
            window.zoom()->setFactor(percent / 100.0);
        else
            std::fprintf(stderr, "layerlab: --zoom expects a percentage from 80 to 250\n");
    }
    if (parser.isSet(sizeOption)) {
        const QStringList wh = parser.value(sizeOption).split(QLatin1Char('x'));
        if (wh.size() == 2 && wh[0].toInt() > 0 && wh[1].toInt() > 0)
            window.resize(wh[0].toInt(), wh[1].toInt());
        else
            std::fprintf(stderr, "layerlab: --size expects WxH, e.g. 1280x800\n");
    }
    window.show();

    // Failures are reported and the window stays usable; an unattended run exits non-zero.
    bool failed = false;
    // Crash recovery first: a restored session replaces the model of the command line.
    bool recoveryOffered = false, recovered = false;
    QString recoverySummary;
    ll::gui::SessionManager* session = window.session();
    const QString recover = parser.value(recoverOption);
    if (!recover.isEmpty() && recover != QLatin1String("yes") && recover != QLatin1String("no")
        && recover != QLatin1String("ask")) {
        std::fprintf(stderr, "layerlab: --recover expects yes, no or ask\n");
        failed = true;
    }
    if (!parser.isSet(noAutosaveOption) && session->startAutosave() && session->recoveryAvailable()) {
        recoveryOffered = true;
        recoverySummary = session->recoverySummary();
        bool restore = recover == QLatin1String("yes");
        if (recover.isEmpty() || recover == QLatin1String("ask")) {
            if (!unattended)
                restore = QMessageBox::question(&window, QStringLiteral("LayerLab"),
                                                QObject::tr("LayerLab did not exit normally last time. Restore "
                                                            "the model and every compression step of that session?")
                                                    + QStringLiteral("\n\n") + recoverySummary)
                          == QMessageBox::Yes;
        }
        if (restore) {
            const QString error = session->recover();
            recovered = error.isEmpty();
            if (!recovered) {
                std::fprintf(stderr, "layerlab: cannot recover the last session: %s\n", qPrintable(error));
                failed = true;
            }
        } else if (recover == QLatin1String("no") || !unattended) {
            session->discardRecovery();
        }
    }
    QObject::connect(session, &ll::gui::SessionManager::restored, &window, [&failed](bool ok, const QString& message) {
        if (!ok) {
            std::fprintf(stderr, "layerlab: restoring the session failed: %s\n", qPrintable(message));
            failed = true;
        }
    });
    const QStringList args = parser.positionalArguments();
    if (recovered) {
        // the recovered session's model is open
    } else if (parser.isSet(sessionOption)) {
        if (const QString error = window.openSession(parser.value(sessionOption)); !error.isEmpty()) {
            std::fprintf(stderr, "layerlab: %s\n", qPrintable(error));
            failed = true;
        }
    } else if (args.isEmpty()) {
        window.openDemo();
    } else if (!window.openPath(args.first())) {
        std::fprintf(stderr, "layerlab: %s\n", qPrintable(window.lastError()));
        failed = true;
    }
    if (parser.isSet(applyRecipeOption)) {
        ll::gui::RecipePanel* r = window.recipePanel();
        QObject::connect(r, &ll::gui::RecipePanel::replayFinished, &window, [r, &failed](bool ok) {
            if (!ok) {
                std::fprintf(stderr, "layerlab: applying the recipe failed: %s\n", qPrintable(r->statusText()));
                failed = true;
            }
        }, Qt::SingleShotConnection);
        r->loadFrom(parser.value(applyRecipeOption));
    }
    if (parser.isSet(methodOption)) {
        const QStringList parts = parser.value(methodOption).split(QLatin1Char(':'));
        const ll::MethodSpec* spec = nullptr;
        for (const ll::StepAction a : {ll::StepAction::Quantize, ll::StepAction::Prune, ll::StepAction::Factorize, ll::StepAction::Rotate, ll::StepAction::KvCache})
            if (parts.size() == 2 && parts[0].toStdString() == ll::actionName(a))
                spec = ll::findMethodSpec(a, parts[1].toStdString());
        if (!spec) {
            std::fprintf(stderr, "layerlab: --method expects ACTION:ID of `layerlab-cli methods` (rotate:quarot, quantize:gptq)\n");
            failed = true;
        } else {
            window.compressionPanel()->setAction(spec->action);
            window.compressionPanel()->setMethod(QString::fromStdString(spec->id));
        }
    }
    if (parser.isSet(selectOption) && !window.selectTensor(parser.value(selectOption))) {
        std::fprintf(stderr, "layerlab: %s\n", qPrintable(window.lastError()));
        failed = true;
    }
    if (parser.isSet(previewTabOption)) {
        // Once the preview is in (it picks its own tab when it arrives).
        const QString title = parser.value(previewTabOption);
        auto* panel = window.compressionPanel();
        auto connection = std::make_shared<QMetaObject::Connection>();
        *connection = QObject::connect(panel, &ll::gui::CompressionPanel::previewReady, panel, [panel, title, connection] {
            QObject::disconnect(*connection);
            QTabWidget* tabs = panel->previewTabs();
            for (int i = 0; i < tabs->count(); ++i)
                if (tabs->isTabVisible(i) && tabs->tabText(i).startsWith(title, Qt::CaseInsensitive)) {
                    tabs->setCurrentIndex(i);
                    return;
                }
            std::fprintf(stderr, "layerlab: no preview tab titled %s for this method\n", qPrintable(title));
        });
    }

    if (parser.isSet(filterOption))
        window.browser()->setFilterText(parser.value(filterOption));

    const auto intValue = [&](const QCommandLineOption& o, int fallback) {
        bool ok = false;
        const int v = parser.value(o).toInt(&ok);
        if (parser.isSet(o) && (!ok || v < 0)) {
            std::fprintf(stderr, "layerlab: --%s expects a number\n", qPrintable(o.names().first()));
            failed = true;
        }
        return ok ? v : fallback;
    };
    // Evaluation and generation measure the model as the recipe leaves it: after its replay.
    const auto startJobs = [&] {
        if (parser.isSet(evaluateOption)) {
            ll::gui::PerplexityPanel* p = window.perplexityPanel();
            const QString text = parser.value(evaluateOption);
            if (text == QLatin1String("sample"))
                p->useBuiltinText();
            else
                p->setTextFile(text);
            p->contextBox()->setValue(intValue(ctxOption, p->contextBox()->value()));
            p->setScoreCount(intValue(windowsOption, 0), ll::gui::PerplexityPanel::CountUnit::Windows);
            QObject::connect(p, &ll::gui::PerplexityPanel::finished, &window, [p, &failed] {
                if (p->state() == ll::gui::PerplexityPanel::State::Failed) {
                    std::fprintf(stderr, "layerlab: evaluation failed: %s\n", qPrintable(p->statusText()));
                    failed = true;
                } else {
                    std::fprintf(stderr, "layerlab: perplexity %s\n", qPrintable(p->resultText()));
                }
            });
            p->run();
        }
        if (parser.isSet(tasksOption)) {
            ll::gui::TaskPanel* t = window.taskPanel();
            for (const QString& spec : parser.value(tasksOption).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
                const int eq = static_cast<int>(spec.indexOf(QLatin1Char('=')));
                if (!t->addTaskFile(eq < 0 ? spec : spec.mid(eq + 1), eq < 0 ? QString() : spec.left(eq))) {
                    std::fprintf(stderr, "layerlab: %s\n", qPrintable(t->statusText()));
                    failed = true;
                }
            }
            // Only the tasks named here run (the panel remembers earlier ones, unticked).
            for (int row = 0; row < static_cast<int>(t->tasks().size()); ++row) {
                bool named = false;
                for (const QString& spec : parser.value(tasksOption).split(QLatin1Char(',')))
                    named = named || spec.endsWith(t->tasks()[static_cast<size_t>(row)].path);
                t->setTaskEnabled(row, named);
            }
            t->shotsBox()->setValue(intValue(shotsOption, 0));
            t->limitBox()->setValue(intValue(limitOption, 0));
            QObject::connect(t, &ll::gui::TaskPanel::finished, &window, [t, &failed] {
                if (t->state() == ll::gui::TaskPanel::State::Failed) {
                    std::fprintf(stderr, "layerlab: tasks failed: %s\n", qPrintable(t->statusText()));
                    failed = true;
                }
            });
            t->run();
            if (!parser.isSet(dockOption)) // --dock chooses what is shown
                window.raiseDock(QStringLiteral("tasks"));
        }
        if (parser.isSet(generateOption)) {
            ll::gui::GeneratePanel* g = window.generatePanel();
            g->promptEdit()->setText(parser.value(generateOption));
            g->tokensBox()->setValue(intValue(tokensOption, g->tokensBox()->value()));
            g->generate();
        }
    };
    if (parser.isSet(applyRecipeOption))
        QObject::connect(window.recipePanel(), &ll::gui::RecipePanel::replayFinished, &window,
                         [startJobs](bool ok) { if (ok) startJobs(); }, Qt::SingleShotConnection);
    else
        startJobs();

    if (parser.isSet(outliersByOption)) {
        const QStringList names{QStringLiteral("max"), QStringLiteral("rms"), QStringLiteral("contribution")};
        const int index = static_cast<int>(names.indexOf(parser.value(outliersByOption)));
        if (index < 0) {
            std::fprintf(stderr, "layerlab: --outliers-by expects max, rms or contribution\n");
            failed = true;
        } else {
            window.activationView()->basisBox()->setCurrentIndex(index);
        }
    }
    if (parser.isSet(activationsOption)) {
        ll::gui::ActivationView* a = window.activationView();
        if (parser.isSet(windowsOption))
            a->windowsBox()->setValue(intValue(windowsOption, a->windowsBox()->value()));
        a->capture();
    }
    if (parser.isSet(dockOption) && !window.raiseDock(parser.value(dockOption))) {
        std::fprintf(stderr, "layerlab: --dock expects model, inspector, evaluate, tasks, generate, activations, compress, recipe, history, compare or sensitivity\n");
        failed = true;
    }

    if (parser.isSet(presentOption))
        window.setPresentationMode(true);
    if (parser.isSet(tourOption))
        ll::gui::GuidedTour::start(&window, intValue(tourOption, 1) - 1);

    if (parser.isSet(printStateOption)) {
        schedulePrintState(&window, recoveryOffered, recoverySummary, &recovered, &failed);
    } else if (unattended) {
        const bool longJobs = parser.isSet(evaluateOption) || parser.isSet(activationsOption) || parser.isSet(tasksOption);
        scheduleScreenshot(&window, parser.value(screenshotOption), &failed, longJobs ? 600000 : 60000);
    }
    return app.exec();
}
