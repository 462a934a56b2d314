#pragma once
// Sessions: the workbench state as a JSON file (.layerlab) — the model path,
// the recipe (steps + calibration), the evaluation shown, the Compare
// panel's entries, a "sensitivity" slot other panels fill, the LayerLab
// version. Opening one opens the model and replays the recipe (one undo
// command), so weights are bit-identical; the Compare entries and then the
// evaluation come back as saved (not re-run).
//
// Autosave: after every document change (debounced) the session goes to a
// recovery file in AppDataLocation (temporary file + rename). A QLockFile
// marks the running instance; a normal exit removes both. On start, a
// recovery file beside a stale lock means the last run crashed or was killed.
//
//   {"layerlab_session": 1, "version": "0.6.0", "saved": "2025-…",
//    "model": {"path": "/m/stories260K-hf", "format": "safetensors", "demo": false},
//    "recipe": {…docs/recipes.md…}, "evaluation": {…} | null, "compare": […],
//    "sensitivity": null}
#include "model/model.h"
#include "recipe/recipe.h"
#include "recipe/session_file.h"

#include <nlohmann/json.hpp>

#include <QObject>
#include <QString>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

class QLockFile;
class QTimer;

namespace ll::gui {

class MainWindow;

// FNV-1a over every tensor's name, shape and float values: "same weights" in one number.
uint64_t modelChecksum(const Model& model);
QString checksumHex(uint64_t sum);

// Writes a temporary file beside `path`, then renames it over `path`; an error message or empty.
QString writeFileAtomic(const QString& path, const QByteArray& bytes);

class SessionManager : public QObject {
    Q_OBJECT
public:
    static constexpr int kFormatVersion = kSessionFormatVersion;

    explicit SessionManager(MainWindow* window);
    ~SessionManager() override;

    // The session of what the window shows now.
    nlohmann::json toJson() const;
    // Writes toJson(); an error message or empty.
    QString save(const QString& path) const;
    // Reads a session file and restores it (asynchronous: restored() follows);
    // an error message (nothing changed) or empty.
    QString open(const QString& path);
    // After open() failed on a damaged session: the model it names, when that
    // much could be read and the model exists (the GUI offers to open it alone).
    QString damagedSessionModel() const { return damagedModel_; }
    // Opens the model and replays the recipe; emits restored() when done.
    QString restore(const SessionFile& session);
    bool isRestoring() const { return restoring_; }

    // Extra sections ("sensitivity", …): a provider fills it when saving; the
    // section is handed back through sectionLoaded() when a session is opened.
    void setSectionProvider(const std::string& key, std::function<nlohmann::json()> provider);

    // Autosave and crash recovery. Takes the instance lock; false (and no
    // autosave) when another LayerLab holds it.
    bool startAutosave();
    bool isAutosaving() const { return autosaving_; }
    // A recovery file left by a run that did not exit normally (after startAutosave()).
    bool recoveryAvailable() const { return recoveryPending_; }
    nlohmann::json recoveryJson() const;
    // What the recovery file holds, in words for the question at start-up:
    // the model, the steps (their badges) and when it was last saved.
    QString recoverySummary() const;
    // Restores the recovery file, or discards it.
    QString recover();
    void discardRecovery();
    // Writes the recovery file now (the debounce timer calls it).
    void autosaveNow();
    // The clean-exit path: removes the recovery file and the lock.
    void finishAutosave();

    static QString recoveryDirectory();
    static QString recoveryPath();
    static QString lockPath();

signals:
    void restored(bool ok, const QString& message);
    void sectionLoaded(const QString& key, const QString& json);
    void autosaved(const QString& path);

private:
    void scheduleAutosave();

    MainWindow* window_;
    QTimer* debounce_;
    std::unique_ptr<QLockFile> lock_;
    std::map<std::string, std::function<nlohmann::json()>> providers_;
    bool autosaving_ = false;
    bool recoveryPending_ = false;
    bool restoring_ = false;
    QString damagedModel_;
};

} // namespace ll::gui
