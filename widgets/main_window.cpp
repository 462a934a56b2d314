#include "main_window.h"

#include "analysis/model_warnings.h"

#include "activation_view.h"
#include "compare_panel.h"
#include "compression_panel.h"
#include "export_dialog.h"
#include "recipe_panel.h"
#include "sensitivity_panel.h"
#include "analysis/engine_cache.h"
#include "format.h"
#include "generate_panel.h"
#include "guided_tour.h"
#include "memory_status.h"
#include "model_browser.h"
#include "history_panel.h"
#include "job_runner.h"
#include "model_document.h"
#include "perplexity_panel.h"
#include "speed_panel.h"
#include "task_panel.h"
#include "quick_compress.h"
#include "session.h"
#include "tensor_inspector.h"
#include "zoom.h"

#include "analysis/model_size.h"
#include "analysis/sensitivity.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QTabWidget>
#include <QVBoxLayout>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QGuiApplication>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QMimeData>
#include <QScreen>
#include <QScrollArea>
#include <QShowEvent>
#include <QToolBar>
#include <QSettings>
#include <QStatusBar>
#include <QTreeView>
#include <QUndoStack>
#include <QUndoView>
#include <QItemSelectionModel>

#include <algorithm>

static void initLayerLabResources()
{
    Q_INIT_RESOURCE(layerlab);
}

namespace ll::gui {

namespace {
// A panel in a scroll area: the dock may then be narrower (or shorter) than
// the panel's own minimum, which scrolls instead of widening the window (at
// 150 % zoom the tabbed panels' minimums alone exceeded a 1280-pixel screen).
QScrollArea* scrollable(QWidget* panel)
{
    auto* scroll = new QScrollArea;
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setWidgetResizable(true);
    scroll->setWidget(panel);
    return scroll;
}
} // namespace


namespace {
constexpr int kMaxRecent = 10;
const char* kRecentKey = "recentModels";

QString localPathOf(const QMimeData* mime)
{
    if (!mime || !mime->hasUrls())
        return {};
    for (const QUrl& url : mime->urls())
        if (url.isLocalFile())
            return url.toLocalFile();
    return {};
}
} // namespace

void initResources()
{
    static bool done = false;
    if (!done) {
        initLayerLabResources();
        done = true;
    }
}

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent), document_(new ModelDocument(this)), engines_(std::make_shared<EngineCache>())
{
    initResources();
    setObjectName(QStringLiteral("mainWindow"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/layerlab.svg")));
    setAcceptDrops(true);
    setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowNestedDocks | QMainWindow::AllowTabbedDocks);

    browser_ = new ModelBrowser(document_, this);
    treeDock_ = new QDockWidget(tr("Model"), this);
    treeDock_->setObjectName(QStringLiteral("modelDock"));
    treeDock_->setWidget(browser_);
    treeDock_->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    addDockWidget(Qt::LeftDockWidgetArea, treeDock_);

    inspector_ = new TensorInspector(document_, this);
    inspectorDock_ = new QDockWidget(tr("Tensor inspector"), this);
    inspectorDock_->setObjectName(QStringLiteral("inspectorDock"));
    inspectorDock_->setWidget(inspector_);
    inspectorDock_->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    addDockWidget(Qt::RightDockWidgetArea, inspectorDock_);

    // Evaluate (perplexity), Generate and Activations: tabs under the inspector.
    auto wrap = [this](std::initializer_list<QWidget*> panels) {
        auto* page = new QWidget(this);
        auto* l = new QVBoxLayout(page);
        l->setContentsMargins(8, 6, 8, 6);
        for (QWidget* panel : panels)
            l->addWidget(panel);
        return scrollable(page);
    };
    perplexity_ = new PerplexityPanel(document_, engines_, this);
    // Perplexity and task accuracy: two tabs of one dock that answers "what did compression cost me?".
    tasks_ = new TaskPanel(document_, engines_, this);
    evaluateTabs_ = new QTabWidget(this);
    evaluateTabs_->setObjectName(QStringLiteral("evaluateTabs"));
    evaluateTabs_->setDocumentMode(true);
    evaluateTabs_->addTab(wrap({perplexity_}), tr("Perplexity"));
    evaluateTabs_->addTab(wrap({tasks_}), tr("Tasks"));
    // ... and speed and memory, the third dimension of that question.
    speed_ = new SpeedPanel(document_, engines_, this);
    evaluateTabs_->addTab(wrap({speed_}), tr("Speed"));
    evaluateDock_ = new QDockWidget(tr("Evaluate"), this);
    evaluateDock_->setObjectName(QStringLiteral("evaluateDock"));
    evaluateDock_->setWidget(evaluateTabs_);
    generate_ = new GeneratePanel(document_, engines_, this);
    generateDock_ = new QDockWidget(tr("Generate"), this);
    generateDock_->setObjectName(QStringLiteral("generateDock"));
    generateDock_->setWidget(wrap({generate_}));
    activations_ = new ActivationView(document_, engines_, this);
    activations_->setEvaluationTextProvider([p = perplexity_] { return p->textSource(); });
    connect(perplexity_, &PerplexityPanel::textSourceChanged, activations_, &ActivationView::evaluationTextChanged);
    activationDock_ = new QDockWidget(tr("Activations"), this);
    activationDock_->setObjectName(QStringLiteral("activationDock"));
    activationDock_->setWidget(scrollable(activations_));
    compression_ = new CompressionPanel(document_, this);
    compressDock_ = new QDockWidget(tr("Compress"), this);
    compressDock_->setObjectName(QStringLiteral("compressDock"));
    compressDock_->setWidget(compression_);
    // Below the inspector, as tabs: the tree keeps the full height on the left.
    splitDockWidget(inspectorDock_, compressDock_, Qt::Vertical);
    tabifyDockWidget(compressDock_, evaluateDock_);
    tabifyDockWidget(evaluateDock_, generateDock_);
    tabifyDockWidget(generateDock_, activationDock_);
    // Layer sensitivity and mixed precision: another tab beside Activations.
    sensitivity_ = new SensitivityPanel(document_, this);
    sensitivity_->setSelectionProvider([this] {
        std::vector<std::string> names;
        if (const auto model = document_->model())
            for (int i : browser_->selectedTensors())
                names.push_back(model->tensors[static_cast<size_t>(i)].logicalName);
        return names;
    });
    // One evaluation text for every panel: Evaluate (and Compare, which takes its results) and Sensitivity.
    sensitivity_->setEvalFile(perplexity_->textSource().path);
    connect(perplexity_, &PerplexityPanel::textSourceChanged, this,
            [this] { sensitivity_->setEvalFile(perplexity_->textSource().path); });
    connect(sensitivity_, &SensitivityPanel::evalTextChanged, this,
            [this](const QString& path) { perplexity_->setTextSource(TextSource{path}); });
    sensitivityDock_ = new QDockWidget(tr("Sensitivity"), this);
    sensitivityDock_->setObjectName(QStringLiteral("sensitivityDock"));
    sensitivityDock_->setWidget(scrollable(sensitivity_));
    tabifyDockWidget(activationDock_, sensitivityDock_);
    compressDock_->raise();

    // The recipe and the undo history under the tree.
    recipe_ = new RecipePanel(document_, this);
    recipeDock_ = new QDockWidget(tr("Recipe"), this);
    recipeDock_->setObjectName(QStringLiteral("recipeDock"));
    recipeDock_->setWidget(recipe_);
    auto* history = new HistoryPanel(document_, this);
    historyDock_ = new QDockWidget(tr("History"), this);
    historyDock_->setObjectName(QStringLiteral("historyDock"));
    historyDock_->setWidget(history);
    // Steps leaving the history are never silent.
    connect(document_, &ModelDocument::historyTrimmed, this,
            [this](int, const QString& message) { statusBar()->showMessage(message, 30000); });
    splitDockWidget(treeDock_, recipeDock_, Qt::Vertical);
    tabifyDockWidget(recipeDock_, historyDock_);
    recipeDock_->raise();
    // Compare: every evaluated configuration, a tab beside Evaluate.
    compare_ = new ComparePanel(document_, perplexity_, recipe_, this);
    compareDock_ = new QDockWidget(tr("Compare"), this);
    compareDock_->setObjectName(QStringLiteral("compareDock"));
    compareDock_->setWidget(scrollable(compare_));
    // Task results land beside the perplexities of the same configurations.
    connect(tasks_, &TaskPanel::finished, this, [this] {
        if (tasks_->state() != TaskPanel::State::Done || !tasks_->shownResult())
            return;
        const TaskOutcome& o = *tasks_->shownResult();
        compare_->addTaskResults({}, o.original);
        if (!o.current.empty())
            compare_->addTaskResults(o.steps, o.current);
    });
    tabifyDockWidget(evaluateDock_, compareDock_);
    compressDock_->raise();
    // The tree's selection is what the compression panel applies to.
    connect(browser_->view()->selectionModel(), &QItemSelectionModel::selectionChanged, this, &MainWindow::syncSelection);
    // The tree's context menu.
    connect(browser_, &ModelBrowser::inspectRequested, this, [this] { raiseDock(QStringLiteral("inspector")); });
    connect(browser_, &ModelBrowser::compressRequested, this, [this](const std::vector<std::string>& names) {
        compression_->setSelection(names);
        compression_->setTarget(CompressionPanel::Target::Selection);
        raiseDock(QStringLiteral("compress"));
        compression_->setFocus(Qt::ShortcutFocusReason);
    });
    connect(browser_, &ModelBrowser::sensitivityRequested, this, [this](const std::string& name) {
        sensitivity_->setTarget(SensitivityPanel::Target::Pattern, QString::fromStdString(exactNamesPattern({name})));
        raiseDock(QStringLiteral("sensitivity"));
    });
    connect(document_, &ModelDocument::modelChanged, this, &MainWindow::syncSelection);

    paramsLabel_ = new QLabel(this);
    sizeLabel_ = new QLabel(this);
    dtypeLabel_ = new QLabel(this);
    syntheticLabel_ = new QLabel(tr("synthetic"), this);
    syntheticLabel_->setToolTip(tr("A generated demo model, not a real checkpoint"));
    syntheticLabel_->setStyleSheet(QStringLiteral(
        "QLabel { background: #fff3cd; color: #6b4f00; border: 1px solid #e0c060; border-radius: 3px; padding: 0 6px; }"));
    for (QLabel* l : {paramsLabel_, sizeLabel_, dtypeLabel_})
        l->setContentsMargins(8, 0, 8, 0);
    // What is wrong with a model that still opens (core/analysis/model_warnings.h).
    warningsLabel_ = new QLabel(this);
    warningsLabel_->setObjectName(QStringLiteral("modelWarnings"));
    warningsLabel_->setStyleSheet(syntheticLabel_->styleSheet());
    warningsLabel_->hide();
    statusBar()->addPermanentWidget(warningsLabel_);
    statusBar()->addPermanentWidget(syntheticLabel_);
    statusBar()->addPermanentWidget(paramsLabel_);
    statusBar()->addPermanentWidget(sizeLabel_);
    statusBar()->addPermanentWidget(dtypeLabel_);
    memoryStatus_ = new MemoryStatus(this);
    statusBar()->addPermanentWidget(memoryStatus_);

    session_ = new SessionManager(this);
    // Sessions keep the sensitivity results with the recipe (reopened as data; rerun to see them live).
    session_->setSectionProvider("sensitivity", [this]() -> nlohmann::json {
        return sensitivity_ && sensitivity_->result() ? sensitivity_->result()->toJson() : nlohmann::json();
    });
    // ... and the task results (shown again as saved, marked when they belong to another state).
    session_->setSectionProvider("tasks", [this]() -> nlohmann::json { return tasks_->sessionJson(); });
    session_->setSectionProvider("speed", [this]() -> nlohmann::json { return speed_->sessionJson(); });
    connect(session_, &SessionManager::sectionLoaded, this, [this](const QString& key, const QString& json) {
        if (key == QLatin1String("tasks"))
            tasks_->restoreSession(nlohmann::json::parse(json.toStdString(), nullptr, false));
        if (key == QLatin1String("speed"))
            speed_->restoreSession(nlohmann::json::parse(json.toStdString(), nullptr, false));
    });
    zoom_ = new ZoomController(this); // after every plot exists: a remembered zoom applies to them
    createActions();
    // The engine cache follows the document; the jobs of the old model keep their own engine until they end.
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] { engines_->setModel(nullptr); });
    connect(document_, &ModelDocument::modelChanged, this, [this] { engines_->setModel(document_->model()); });
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        engines_->setModel(document_->model(), document_->state().activations);
        updateModelFacts();
    });
    connect(document_, &ModelDocument::modelChanged, this, &MainWindow::onModelChanged);
    onModelChanged();
    initialLayout_ = saveState();

    // A sensible first size: most of the screen, tree about a third of the width.
    if (const QScreen* screen = QGuiApplication::primaryScreen()) {
        const QSize avail = screen->availableSize();
        resize(std::min(1600, avail.width() * 9 / 10), std::min(1000, avail.height() * 9 / 10));
    }
}

MainWindow::~MainWindow()
{
    // Stop every job before the views go: their destructors wait for the threads.
    stopJobs();
}

void MainWindow::showEvent(QShowEvent* event)
{
    QMainWindow::showEvent(event);
    if (!docksSized_)
        sizeDocks();
}

void MainWindow::sizeDocks()
{
    // Once, at the size the window opens with (and on View › Reset Layout): the tree gets
    // about a third of the width, the evaluation / generation / activation tabs about a third of the height.
    {
        docksSized_ = true;
        const int tree = std::clamp(width() * 30 / 100, 340, 600);
        resizeDocks({treeDock_, inspectorDock_}, {tree, width() - tree}, Qt::Horizontal);
        const int bottom = std::clamp(height() * 50 / 100, 300, 560);
        resizeDocks({inspectorDock_, compressDock_}, {height() - bottom, bottom}, Qt::Vertical);
        const int recipe = std::clamp(height() * 28 / 100, 160, 320);
        resizeDocks({treeDock_, recipeDock_}, {height() - recipe, recipe}, Qt::Vertical);
    }
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    if (!maySetWorkAside(tr("quitting"))) {
        event->ignore();
        return;
    }
    stopJobs();
    QMainWindow::closeEvent(event);
}

bool MainWindow::maySetWorkAside(const QString& action)
{
    const int steps = static_cast<int>(document_->state().steps.size());
    if (!document_->hasModel() || steps == 0 || document_->undoStack()->isClean())
        return true; // nothing applied, or saved as it is
    const QString question = tr("%n compression step(s) applied to %1 are not saved in a session. Save them before %2?",
                                nullptr, steps)
                                 .arg(QFileInfo(QString::fromStdString(document_->state().source->path)).fileName(), action);
    UnsavedChoice choice = UnsavedChoice::Discard;
    if (unsavedPrompt_) {
        choice = unsavedPrompt_(question);
    } else if (errorDialogs_) { // an unattended run (screenshots, --print-state) asks nobody
        QMessageBox box(QMessageBox::Question, tr("Unsaved compression steps"), question, QMessageBox::NoButton, this);
        QPushButton* save = box.addButton(tr("Save Session…"), QMessageBox::AcceptRole);
        QPushButton* discard = box.addButton(tr("Discard"), QMessageBox::DestructiveRole);
        box.addButton(QMessageBox::Cancel);
        box.setDefaultButton(save);
        box.exec();
        choice = box.clickedButton() == save ? UnsavedChoice::Save
                 : box.clickedButton() == discard ? UnsavedChoice::Discard
                                                  : UnsavedChoice::Cancel;
    }
    if (choice == UnsavedChoice::Save)
        return saveSessionAs();
    return choice == UnsavedChoice::Discard;
}

bool MainWindow::saveSessionAs()
{
    if (!document_->hasModel())
        return false;
    QString path = QFileDialog::getSaveFileName(this, tr("Save Session"), QString(), tr("LayerLab sessions (*.layerlab)"));
    if (path.isEmpty())
        return false;
    if (!path.endsWith(QLatin1String(".layerlab")))
        path += QLatin1String(".layerlab");
    if (const QString error = session_->save(path); !error.isEmpty()) {
        showError(error);
        return false;
    }
    statusBar()->showMessage(tr("Session saved to %1").arg(QDir::toNativeSeparators(path)), 5000);
    return true;
}

void MainWindow::syncSelection()
{
    std::vector<std::string> names;
    if (const auto model = document_->model())
        for (int i : browser_->selectedTensors())
            names.push_back(model->tensors[static_cast<size_t>(i)].logicalName);
    compression_->setSelection(names);
}

void MainWindow::stopJobs()
{
    // Ask every job to stop now; the views wait for their threads when they are destroyed.
    compression_->cancel(); // also a pending preview
    generate_->stop();      // shows "Stopping…"
    JobRunner::cancelAll();
}

void MainWindow::setPresentationMode(bool on)
{
    if (on == presenting_)
        return;
    presenting_ = on;
    if (on) {
        zoomBeforePresenting_ = zoom_->factor();
        layoutBeforePresenting_ = saveState();
        zoom_->setFactor(std::max(1.5, zoomBeforePresenting_), false);
        zoom_->setLineScale(2.0); // plot lines a projector shows from the back of the room
        recipeDock_->hide();
        historyDock_->hide();
        statusBar()->showMessage(tr("Presentation mode: Ctrl+Shift+P to leave"), 5000);
    } else {
        zoom_->setFactor(zoomBeforePresenting_, false);
        zoom_->setLineScale(1.0);
        restoreState(layoutBeforePresenting_);
    }
    if (auto* action = findChild<QAction*>(QStringLiteral("presentationMode")); action && action->isChecked() != on)
        action->setChecked(on);
}

bool MainWindow::raiseDock(const QString& name)
{
    QDockWidget* dock = dockNamed(name);
    if (!dock)
        return false;
    if (name == QLatin1String("tasks") || name == QLatin1String("evaluate") || name == QLatin1String("speed"))
        evaluateTabs_->setCurrentIndex(name == QLatin1String("tasks") ? 1 : name == QLatin1String("speed") ? 2 : 0);
    dock->show();
    dock->raise();
    return true;
}

QDockWidget* MainWindow::dockNamed(const QString& name) const
{
    return name == QLatin1String("model")         ? treeDock_
           : name == QLatin1String("inspector")   ? inspectorDock_
           : name == QLatin1String("evaluate")    ? evaluateDock_
           : name == QLatin1String("tasks")       ? evaluateDock_
           : name == QLatin1String("speed")       ? evaluateDock_
           : name == QLatin1String("generate")    ? generateDock_
           : name == QLatin1String("activations") ? activationDock_
           : name == QLatin1String("compress")    ? compressDock_
           : name == QLatin1String("recipe")      ? recipeDock_
           : name == QLatin1String("history")     ? historyDock_
           : name == QLatin1String("compare")     ? compareDock_
           : name == QLatin1String("sensitivity") ? sensitivityDock_
                                                  : nullptr;
}

ExportDialog* MainWindow::makeExportDialog()
{
    auto* dialog = new ExportDialog(document_, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    // The report carries the Speed tab's figures when they belong to the state exported.
    dialog->setEfficiency(speed_->reportJson());
    return dialog;
}

bool MainWindow::isBusy() const
{
    // Every job of every panel and dialog, the inspector's statistics included (JobRunner's registry), and a
    // preview about to start.
    return JobRunner::runningCount() > 0 || compression_->isPreviewPending();
}

void MainWindow::makeSmallerModel()
{
    if (!document_->hasModel())
        return;
    auto* dialog = new QuickCompressDialog(document_, perplexity_->textSource(), this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->open();
}

void MainWindow::createActions()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* openFile = file->addAction(tr("&Open File…"), this, &MainWindow::chooseFile);
    openFile->setShortcut(QKeySequence::Open);
    QAction* openFolder = file->addAction(tr("Open &Folder…"), this, &MainWindow::chooseFolder);
    openFolder->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
    recentMenu_ = file->addMenu(tr("Open &Recent"));
    file->addAction(tr("Open &Demo Model"), this, [this] {
        if (maySetWorkAside(tr("opening the demo model")))
            openDemo();
    });
    file->addSeparator();
    QAction* exportAction = file->addAction(tr("&Export…"), this, [this] {
        if (!document_->hasModel())
            return;
        makeExportDialog()->open();
    });
    exportAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_E));
    exportAction->setToolTip(tr("GGUF, Hugging Face folder, HDF5 report and the recipe, in one click"));
    QAction* smaller = file->addAction(tr("Make a &Smaller Model…"), this, &MainWindow::makeSmallerModel);
    smaller->setObjectName(QStringLiteral("makeSmallerModel"));
    smaller->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_M));
    smaller->setToolTip(tr("A GGUF file of the size you pick, with its quality checked against the original"));
    // The toolbar: the one-click path and the two things every session starts or ends with.
    QToolBar* bar = addToolBar(tr("Main"));
    bar->setObjectName(QStringLiteral("mainToolBar"));
    bar->setMovable(false);
    bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
    bar->addAction(openFile);
    bar->addAction(smaller);
    bar->addAction(exportAction);
    file->addSeparator();
    // Sessions: the model, the recipe and the results in one .layerlab file.
    file->addAction(tr("&Open Session…"), this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open Session"), QString(),
                                                          tr("LayerLab sessions (*.layerlab);;All files (*)"));
        if (!path.isEmpty() && maySetWorkAside(tr("opening the session")))
            openSession(path);
    });
    file->addAction(tr("&Save Session…"), this, [this] { saveSessionAs(); })->setShortcut(QKeySequence::Save);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), qApp, &QApplication::closeAllWindows);
    quit->setShortcut(QKeySequence::Quit);
    quit->setMenuRole(QAction::QuitRole);
    rebuildRecentMenu();

    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    QAction* undo = document_->undoStack()->createUndoAction(this, tr("&Undo"));
    undo->setShortcut(QKeySequence::Undo);
    edit->addAction(undo);
    QAction* redo = document_->undoStack()->createRedoAction(this, tr("&Redo"));
    redo->setShortcut(QKeySequence::Redo);
    edit->addAction(redo);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    // Shortcuts bring a panel forward (shown, raised, focused); the check
    // boxes below show or hide docks. A toggle as shortcut hid Generate when
    // it was a background tab.
    const auto goTo = [this, view](const QString& text, const QString& dock, const QKeySequence& key) {
        QAction* a = view->addAction(text, this, [this, dock] {
            if (raiseDock(dock) && dockNamed(dock)->widget())
                dockNamed(dock)->widget()->setFocus(Qt::ShortcutFocusReason);
        });
        a->setShortcut(key);
        a->setObjectName(QStringLiteral("goTo_") + dock);
    };
    goTo(tr("Go to &Compress"), QStringLiteral("compress"), QKeySequence(Qt::CTRL | Qt::Key_K));
    goTo(tr("Go to &Evaluate"), QStringLiteral("evaluate"), QKeySequence(Qt::CTRL | Qt::Key_E));
    goTo(tr("Go to &Generate"), QStringLiteral("generate"), QKeySequence(Qt::CTRL | Qt::Key_G));
    goTo(tr("Go to &Activations"), QStringLiteral("activations"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_A));
    goTo(tr("Go to &Sensitivity"), QStringLiteral("sensitivity"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_S));
    view->addSeparator();
    for (QDockWidget* d : {treeDock_, inspectorDock_, compressDock_, recipeDock_, historyDock_, compareDock_, evaluateDock_,
                           generateDock_, activationDock_, sensitivityDock_})
        view->addAction(d->toggleViewAction());
    view->addSeparator();
    view->addAction(tr("&Reset Layout"), this, [this] {
        restoreState(initialLayout_);
        docksSized_ = false;
        sizeDocks();
    });
    view->addSeparator();
    // Zoom: fonts and plots together, for a projector (widgets/zoom.h).
    QAction* zoomIn = view->addAction(tr("Zoom &In"), zoom_, &ZoomController::zoomIn);
    zoomIn->setObjectName(QStringLiteral("zoomIn"));
    zoomIn->setShortcuts({QKeySequence::ZoomIn, QKeySequence(Qt::CTRL | Qt::Key_Equal)});
    QAction* zoomOut = view->addAction(tr("Zoom &Out"), zoom_, &ZoomController::zoomOut);
    zoomOut->setObjectName(QStringLiteral("zoomOut"));
    zoomOut->setShortcuts(QKeySequence::ZoomOut);
    QAction* zoomReset = view->addAction(tr("&Actual Size"), zoom_, &ZoomController::reset);
    zoomReset->setObjectName(QStringLiteral("zoomReset"));
    zoomReset->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_0));
    // Presentation mode: large text for a projector, the secondary docks (Recipe, History) out of the way.
    QAction* present = view->addAction(tr("&Presentation Mode"));
    present->setObjectName(QStringLiteral("presentationMode"));
    present->setCheckable(true);
    present->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_P));
    connect(present, &QAction::toggled, this, &MainWindow::setPresentationMode);
    connect(zoom_, &ZoomController::changed, this, [this](double factor) {
        statusBar()->showMessage(tr("Zoom %1 %").arg(std::lround(100.0 * factor)), 3000);
    });
    view->addSeparator();
    QAction* find = view->addAction(tr("&Filter Tensors"), this, [this] {
        treeDock_->show();
        browser_->filterEdit()->setFocus(Qt::ShortcutFocusReason);
        browser_->filterEdit()->selectAll();
    });
    find->setShortcut(QKeySequence::Find);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Guided Tour: Compress Your First Model"), this, [this] { GuidedTour::start(this); });
    help->addAction(tr("&About LayerLab"), this, [this] {
        QMessageBox::about(this, tr("About LayerLab"),
                           tr("<b>LayerLab %1</b><p>A workbench for compressing large language models: "
                              "inspect, quantize, prune and factorise.</p>")
                               .arg(QApplication::applicationVersion()));
    });
}

QString MainWindow::openSession(const QString& path)
{
    const QString error = session_->open(path);
    if (error.isEmpty())
        return error;
    const QString model = session_->damagedSessionModel();
    if (model.isEmpty() || !errorDialogs_) {
        showError(error);
        return error;
    }
    lastError_ = error;
    statusBar()->showMessage(error, 15000);
    auto* box = new QMessageBox(QMessageBox::Warning, tr("LayerLab"),
                                tr("The session cannot be restored:\n%1\n\nOpen its model %2 alone, without the "
                                   "compression steps?")
                                    .arg(error, QDir::toNativeSeparators(model)),
                                QMessageBox::NoButton, this);
    box->setObjectName(QStringLiteral("damagedSessionBox"));
    QPushButton* openModel = box->addButton(tr("Open the Model"), QMessageBox::AcceptRole);
    box->addButton(QMessageBox::Cancel);
    box->setDefaultButton(openModel);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::buttonClicked, this, [this, openModel, model](QAbstractButton* button) {
        if (button == openModel)
            openPath(model);
    });
    box->open(); // window-modal but not blocking, as showError's
    return error;
}

bool MainWindow::openPath(const QString& path)
{
    QApplication::setOverrideCursor(Qt::WaitCursor);
    const QString error = document_->open(path);
    QApplication::restoreOverrideCursor();
    if (!error.isEmpty()) {
        showError(error, document_->lastErrorDetails());
        return false;
    }
    lastError_.clear();
    addRecent(QFileInfo(path).absoluteFilePath());
    statusBar()->showMessage(tr("Opened %1").arg(QDir::toNativeSeparators(path)), 5000);
    showModelWarnings();
    return true;
}

void MainWindow::showModelWarnings()
{
    QStringList lines;
    bool blocking = false;
    if (const auto model = document_->model())
        for (const ModelWarning& w : modelWarnings(*model)) {
            lines << QString::fromStdString(w.text);
            blocking = blocking || w.blocksRunning;
        }
    warningsLabel_->setVisible(!lines.isEmpty());
    if (lines.isEmpty())
        return;
    warningsLabel_->setText(lines.size() == 1 ? tr("\u26A0 1 warning") : tr("\u26A0 %1 warnings").arg(lines.size()));
    warningsLabel_->setToolTip(lines.join(QLatin1Char('\n'))
                               + (blocking ? tr("\n\nThe model cannot be evaluated until its configuration agrees with "
                                                "its tensors.")
                                           : QString()));
    statusBar()->showMessage(tr("Warning: %1").arg(lines.first()), 15000);
}

void MainWindow::openDemo()
{
    document_->openDemo();
    warningsLabel_->hide();
    statusBar()->showMessage(tr("Opened the built-in demo model: generated weights, not a real checkpoint"), 5000);
}

bool MainWindow::selectTensor(const QString& name)
{
    const int index = document_->findTensor(name);
    if (index < 0) {
        showError(tr("No tensor named \"%1\" in this model.").arg(name));
        return false;
    }
    document_->setCurrentTensor(index);
    return true;
}

void MainWindow::onModelChanged()
{
    updateModelFacts();
    // Show something at once: the first linear layer.
    if (document_->hasModel())
        document_->selectDefaultTensor(); // shown, but it starts no preview
}

void MainWindow::updateModelFacts()
{
    const auto model = document_->model();
    if (!model) {
        setWindowTitle(QStringLiteral("LayerLab"));
        paramsLabel_->clear();
        sizeLabel_->clear();
        dtypeLabel_->clear();
        syntheticLabel_->hide();
        return;
    }
    setWindowTitle(tr("%1 — LayerLab").arg(modelDisplayName(*model)));
    // One size model (analysis/model_size.h): the same figures as the tree's root and Compare.
    const CompressionState& state = document_->state();
    const ModelSize size = modelSize(state);
    paramsLabel_->setText(tr("%1 parameters").arg(formatCount(size.parameters)));
    paramsLabel_->setToolTip(size.parameters == model->parameterCount()
                                 ? tr("%1 parameters").arg(formatExact(size.parameters))
                                 : tr("%1 parameters; the output layer shares the embedding's weights (%2 with it "
                                      "counted twice, as the computation uses them)")
                                       .arg(formatExact(size.parameters), formatExact(model->parameterCount())));
    sizeLabel_->setText(!state.steps.empty()       ? tr("%1 compressed").arg(formatBytes(size.bytes))
                        : model->config.synthetic ? tr("%1 in memory").arg(formatBytes(size.bytes))
                                                  : tr("%1 on disk").arg(formatBytes(size.bytes)));
    sizeLabel_->setToolTip(state.steps.empty() ? QString()
                                               : tr("%1 before compression").arg(formatBytes(modelSize(CompressionState::initial(state.source)).bytes)));
    dtypeLabel_->setText(formatDTypeMix(*model));
    dtypeLabel_->setToolTip(tr("Share of stored bytes by type"));
    syntheticLabel_->setVisible(model->config.synthetic);
    const CompressionState& st = state;
    if (!st.steps.empty()) {
        // Short: the status bar's labels set the window's minimum width (it must fit 1280 pixels).
        const double bits = st.linearBitsPerWeight();
        dtypeLabel_->setText(st.steps.size() == 1 ? tr("1 step · %1 b/w").arg(bits, 0, 'f', 2)
                                                  : tr("%1 steps · %2 b/w").arg(st.steps.size()).arg(bits, 0, 'f', 2));
        dtypeLabel_->setToolTip(tr("Compression applied (Edit › Undo to go back); %1 bits per weight over the block linears")
                                    .arg(st.linearBitsPerWeight(), 0, 'f', 3));
    }
}

void MainWindow::showError(const QString& message, const QString& details)
{
    lastError_ = message;
    lastErrorDetails_ = details;
    statusBar()->showMessage(message, 15000);
    if (!errorDialogs_)
        return;
    auto* box = new QMessageBox(QMessageBox::Warning, tr("LayerLab"), message, QMessageBox::Ok, this);
    box->setObjectName(QStringLiteral("errorBox"));
    if (!details.isEmpty() && details != message)
        box->setDetailedText(details); // the precise line, one click away ("Show Details…")
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open(); // window-modal but not blocking: the event loop (and tests) go on
}

QStringList MainWindow::recentModels() const
{
    return QSettings().value(QLatin1String(kRecentKey)).toStringList();
}

void MainWindow::addRecent(const QString& path)
{
    QStringList list = recentModels();
    list.removeAll(path);
    list.prepend(path);
    while (list.size() > kMaxRecent)
        list.removeLast();
    QSettings().setValue(QLatin1String(kRecentKey), list);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu()
{
    recentMenu_->clear();
    const QStringList list = recentModels();
    for (const QString& path : list) {
        QAction* a = recentMenu_->addAction(QDir::toNativeSeparators(path));
        connect(a, &QAction::triggered, this, [this, path] {
            if (maySetWorkAside(tr("opening another model")))
                openPath(path);
        });
    }
    if (!list.isEmpty()) {
        recentMenu_->addSeparator();
        recentMenu_->addAction(tr("Clear List"), this, [this] {
            QSettings().remove(QLatin1String(kRecentKey));
            rebuildRecentMenu();
        });
    }
    recentMenu_->setEnabled(!list.isEmpty());
}

void MainWindow::chooseFile()
{
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Open Model File"), QString(),
        tr("Models (*.safetensors *.gguf *.bin);;All files (*)"));
    if (!path.isEmpty() && maySetWorkAside(tr("opening another model")))
        openPath(path);
}

void MainWindow::chooseFolder()
{
    const QString path = QFileDialog::getExistingDirectory(this, tr("Open Hugging Face Model Folder"));
    if (!path.isEmpty() && maySetWorkAside(tr("opening another model")))
        openPath(path);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    if (!localPathOf(event->mimeData()).isEmpty())
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event)
{
    const QString path = localPathOf(event->mimeData());
    if (path.isEmpty())
        return;
    event->acceptProposedAction();
    if (maySetWorkAside(tr("opening another model")))
        openPath(path);
}

} // namespace ll::gui
