#pragma once
// LayerLab's main window: the model tree, the tensor inspector, the
// evaluation (perplexity and generation) and activation views as docks;
// File menu with recent models, drag and drop, model facts and the process's
// memory in the status bar.
#include <QMainWindow>

#include <functional>
#include <QStringList>

#include <memory>

class QDockWidget;
class QLabel;
class QTabWidget;
class QMenu;

namespace ll {
class EngineCache;
} // namespace ll

namespace ll::gui {

class ActivationView;
class ComparePanel;
class CompressionPanel;
class RecipePanel;
class SensitivityPanel;
class GeneratePanel;
class MemoryStatus;
class ModelBrowser;
class ModelDocument;
class PerplexityPanel;
class ExportDialog;
class SpeedPanel;
class TaskPanel;
class SessionManager;
class TensorInspector;
class ZoomController;

// The icons live in a static library: register them once before use.
void initResources();

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    ModelDocument* document() const { return document_; }
    ModelBrowser* browser() const { return browser_; }
    TensorInspector* inspector() const { return inspector_; }
    QDockWidget* treeDock() const { return treeDock_; }
    QDockWidget* inspectorDock() const { return inspectorDock_; }
    QDockWidget* evaluateDock() const { return evaluateDock_; }
    QDockWidget* generateDock() const { return generateDock_; }
    QDockWidget* activationDock() const { return activationDock_; }
    PerplexityPanel* perplexityPanel() const { return perplexity_; }
    TaskPanel* taskPanel() const { return tasks_; }
    SpeedPanel* speedPanel() const { return speed_; }
    // File › Export's dialog for the current state (deleted on close), with the results it reports.
    ExportDialog* makeExportDialog();
    GeneratePanel* generatePanel() const { return generate_; }
    ActivationView* activationView() const { return activations_; }
    CompressionPanel* compressionPanel() const { return compression_; }
    RecipePanel* recipePanel() const { return recipe_; }
    QDockWidget* compressDock() const { return compressDock_; }
    QDockWidget* recipeDock() const { return recipeDock_; }
    QDockWidget* historyDock() const { return historyDock_; }
    SensitivityPanel* sensitivityPanel() const { return sensitivity_; }
    ZoomController* zoom() const { return zoom_; }
    // View › Presentation Mode: zoom 150 % or more, the Recipe and History docks hidden; off restores both.
    void setPresentationMode(bool on);
    bool isPresenting() const { return presenting_; }
    QDockWidget* sensitivityDock() const { return sensitivityDock_; }
    // Session files, autosave and crash recovery (session.h).
    SessionManager* session() const { return session_; }
    ComparePanel* comparePanel() const { return compare_; }
    // The status bar's memory reading (RSS and the process's own memory).
    MemoryStatus* memoryStatus() const { return memoryStatus_; }
    QDockWidget* compareDock() const { return compareDock_; }
    // Shows and raises a dock by name: "model", "inspector", "compress", "recipe", "history",
    // "evaluate", "generate", "activations", "sensitivity".
    bool raiseDock(const QString& name);
    // Any background job running (statistics, evaluation, generation, capture).
    bool isBusy() const;

    // Opens a checkpoint; on failure the message goes to a (non-blocking)
    // message box and the status bar, the previous model stays. Returns success.
    bool openPath(const QString& path);
    void openDemo();
    // File › Make a Smaller Model (toolbar too): the quick-compress dialog on the current state.
    void makeSmallerModel();
    // Opens a session file (.layerlab). When it is damaged but still names a
    // model that exists, a (non-blocking) question offers to open that model
    // alone; otherwise the error is shown. Returns the error, or empty.
    QString openSession(const QString& path);
    // Selects a tensor by logical or stored name; false (and a status message) when unknown.
    bool selectTensor(const QString& name);
    QString lastError() const { return lastError_; }
    QString lastErrorDetails() const { return lastErrorDetails_; } // the technical line behind lastError()
    // Message boxes for errors; off for unattended runs (screenshots).
    void setErrorDialogsEnabled(bool on) { errorDialogs_ = on; }

    QStringList recentModels() const;

    // Compression steps not saved in a session are not thrown away without a
    // question: closing the window, opening another model, the demo or a
    // session asks first (Save… / Discard / Cancel). Tests and scripts answer
    // through a hook instead of the message box.
    enum class UnsavedChoice { Save, Discard, Cancel };
    void setUnsavedPrompt(std::function<UnsavedChoice(const QString& question)> prompt) { unsavedPrompt_ = std::move(prompt); }
    // True when the work on screen may go (nothing unsaved, saved now, or discarded).
    bool maySetWorkAside(const QString& action);
    // File › Save Session…: asks for a path; false when cancelled or failed.
    bool saveSessionAs();

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;
    void showEvent(QShowEvent* event) override;
    void closeEvent(QCloseEvent* event) override;

private:
    void createActions();
    void sizeDocks();
    QDockWidget* dockNamed(const QString& name) const;
    void stopJobs();
    void onModelChanged();
    void syncSelection();
    void updateModelFacts();
    void showError(const QString& message, const QString& details = {});
    // The opened model's warnings (configuration vs tensors, tokenizer) in the status bar.
    void showModelWarnings();
    void addRecent(const QString& path);
    void rebuildRecentMenu();
    void chooseFile();
    void chooseFolder();

    ModelDocument* document_;
    std::shared_ptr<EngineCache> engines_;
    ModelBrowser* browser_;
    TensorInspector* inspector_;
    QDockWidget* treeDock_;
    QDockWidget* inspectorDock_;
    PerplexityPanel* perplexity_;
    TaskPanel* tasks_;
    SpeedPanel* speed_;
    QTabWidget* evaluateTabs_;
    GeneratePanel* generate_;
    ActivationView* activations_;
    QDockWidget* evaluateDock_;
    QDockWidget* generateDock_;
    QDockWidget* activationDock_;
    CompressionPanel* compression_;
    RecipePanel* recipe_;
    QDockWidget* compressDock_;
    QDockWidget* recipeDock_;
    QDockWidget* historyDock_;
    SensitivityPanel* sensitivity_ = nullptr;
    QDockWidget* sensitivityDock_ = nullptr;
    QMenu* recentMenu_ = nullptr;
    SessionManager* session_ = nullptr;
    ComparePanel* compare_ = nullptr;
    QDockWidget* compareDock_ = nullptr;
    QLabel* paramsLabel_;
    QLabel* sizeLabel_;
    QLabel* dtypeLabel_;
    QLabel* syntheticLabel_;
    QLabel* warningsLabel_ = nullptr;
    MemoryStatus* memoryStatus_ = nullptr;
    QString lastError_;
    QString lastErrorDetails_;
    ZoomController* zoom_ = nullptr;
    bool presenting_ = false;
    double zoomBeforePresenting_ = 1.0;
    QByteArray layoutBeforePresenting_;
    bool errorDialogs_ = true;
    std::function<UnsavedChoice(const QString&)> unsavedPrompt_;
    bool docksSized_ = false;
    QByteArray initialLayout_; // the docks as built: View › Reset Layout
};

} // namespace ll::gui
