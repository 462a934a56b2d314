#include "session.h"

#include "compare_panel.h"
#include "main_window.h"
#include "model_document.h"
#include "perplexity_panel.h"
#include "recipe_panel.h"

#include "model/tensor_data.h"
#include "recipe/session_file.h"
#include "util/error.h"
#include "util/input_file.h"
#include "util/json_util.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLocale>
#include <QLockFile>
#include <QSaveFile>
#include <QStandardPaths>
#include <QTimer>
#include <QUndoStack>

#include <cmath>
#include <cstring>
#include <optional>

namespace ll::gui {

namespace {
constexpr int kAutosaveDelayMs = 400; // coalesces the burst of signals one edit makes

nlohmann::json evaluationJson(const PerplexityPanel* panel)
{
    const auto& shown = panel->shownResult();
    if (!shown)
        return nullptr;
    const PerplexityOutcome& o = *shown;
    return {{"ppl", o.result.ppl},
            {"ppl_stderr", o.result.pplStderr},
            {"nll_mean", o.result.nllMean},
            {"nll_stderr", o.result.nllStderr},
            {"tokens_scored", o.result.tokensScored},
            {"windows", o.result.windows},
            {"context", o.options.context},
            {"max_windows", o.options.maxWindows},
            {"protocol", o.options.protocol == ScoringProtocol::Full ? "full" : "llama.cpp"},
            {"text", o.text.isBuiltin() ? std::string("builtin") : o.text.path.toStdString()},
            {"text_tokens", o.textTokens},
            {"seconds", o.seconds},
            {"scoring_seconds", o.scoringSeconds}};
}

// The saved evaluation, or nothing when the section is absent or malformed.
std::optional<PerplexityOutcome> evaluationFromJson(const nlohmann::json& j)
{
    if (!j.is_object())
        return std::nullopt;
    try {
        PerplexityOutcome o;
        o.result.ppl = j.at("ppl").get<double>();
        o.result.pplStderr = j.value("ppl_stderr", 0.0);
        o.result.nllMean = j.value("nll_mean", std::log(o.result.ppl));
        o.result.nllStderr = j.value("nll_stderr", 0.0);
        o.result.tokensScored = j.at("tokens_scored").get<int64_t>();
        o.result.windows = j.value("windows", int64_t{0});
        o.options.context = j.value("context", int64_t{256});
        o.options.maxWindows = j.value("max_windows", int64_t{0});
        o.options.protocol = j.value("protocol", std::string("full")) == "full" ? ScoringProtocol::Full
                                                                                : ScoringProtocol::LlamaCpp;
        const std::string text = j.value("text", std::string("builtin"));
        o.text.path = text == "builtin" ? QString() : QString::fromStdString(text);
        o.textTokens = j.value("text_tokens", int64_t{0});
        o.seconds = j.value("seconds", 0.0);
        o.scoringSeconds = j.value("scoring_seconds", 0.0);
        if (!(o.result.ppl > 0.0) || o.result.tokensScored <= 0)
            return std::nullopt;
        return o;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

nlohmann::json compareJson(const ComparePanel* panel)
{
    nlohmann::json out = nlohmann::json::array();
    if (panel)
        for (const ComparePanel::Entry& e : panel->entries())
            out.push_back({{"label", e.label.toStdString()}, {"ppl", e.ppl}, {"ppl_stderr", e.pplStderr},
                           {"bits_per_weight", e.bitsPerWeight}, {"size_mib", e.sizeMiB}, {"parameters", e.parameters},
                           {"text", e.text.toStdString()}, {"context", e.context}, {"recipe", e.recipe.toJson()},
                           {"tasks", e.tasks}});
    return out;
}

// The saved comparison entries (compareJson's); malformed ones are skipped.
std::vector<ComparePanel::Entry> compareFromJson(const nlohmann::json& j)
{
    std::vector<ComparePanel::Entry> out;
    if (!j.is_array())
        return out;
    for (const nlohmann::json& e : j) {
        try {
            ComparePanel::Entry x;
            x.recipe = Recipe::fromJson(e.at("recipe"), "session");
            x.label = QString::fromStdString(e.value("label", std::string()));
            x.ppl = e.at("ppl").get<double>();
            x.pplStderr = e.value("ppl_stderr", 0.0);
            x.bitsPerWeight = e.value("bits_per_weight", 0.0);
            x.sizeMiB = e.value("size_mib", 0.0);
            x.parameters = e.value("parameters", int64_t{0});
            x.text = QString::fromStdString(e.value("text", std::string()));
            x.context = e.value("context", int64_t{0});
            if (const auto t = e.find("tasks"); t != e.end() && t->is_object())
                for (const auto& [task, value] : t->items())
                    if (value.is_number())
                        x.tasks[task] = value.get<double>();
            out.push_back(std::move(x));
        } catch (const std::exception&) {
        }
    }
    return out;
}
} // namespace

uint64_t modelChecksum(const Model& model)
{
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* data, size_t n) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (size_t i = 0; i < n; ++i) {
            h ^= p[i];
            h *= 1099511628211ull;
        }
    };
    for (const LogicalTensor& t : model.tensors) {
        mix(t.logicalName.data(), t.logicalName.size());
        mix(t.shape.data(), t.shape.size() * sizeof(int64_t));
        const std::vector<float> v = readLogical(model, t);
        mix(v.data(), v.size() * sizeof(float));
    }
    return h;
}

QString checksumHex(uint64_t sum)
{
    return QStringLiteral("%1").arg(sum, 16, 16, QLatin1Char('0'));
}

QString writeFileAtomic(const QString& path, const QByteArray& bytes)
{
    QDir().mkpath(QFileInfo(path).absolutePath());
    QSaveFile file(path); // a temporary file renamed over `path` on commit
    if (!file.open(QIODevice::WriteOnly))
        return QCoreApplication::translate("Session", "Cannot write %1: %2").arg(path, file.errorString());
    file.write(bytes);
    if (!file.commit())
        return QCoreApplication::translate("Session", "Cannot write %1: %2").arg(path, file.errorString());
    return {};
}

SessionManager::SessionManager(MainWindow* window) : QObject(window), window_(window), debounce_(new QTimer(this))
{
    debounce_->setSingleShot(true);
    debounce_->setInterval(kAutosaveDelayMs);
    connect(debounce_, &QTimer::timeout, this, &SessionManager::autosaveNow);
    setSectionProvider("sensitivity", [] { return nlohmann::json(nullptr); });
}

SessionManager::~SessionManager()
{
    finishAutosave();
}

nlohmann::json SessionManager::toJson() const
{
    const ModelDocument* doc = window_->document();
    nlohmann::json j = {{"layerlab_session", kFormatVersion},
                        {"version", LAYERLAB_VERSION},
                        {"saved", QDateTime::currentDateTimeUtc().toString(Qt::ISODate).toStdString()}};
    if (doc->hasModel()) {
        const Model& source = *doc->state().source;
        j["model"] = {{"path", source.path}, {"format", source.format}, {"demo", source.config.synthetic}};
        j["recipe"] = doc->state().recipe().toJson();
    } else {
        j["model"] = nullptr;
        j["recipe"] = nullptr;
    }
    j["evaluation"] = evaluationJson(window_->perplexityPanel());
    j["compare"] = compareJson(window_->comparePanel());
    for (const auto& [key, provider] : providers_)
        j[key] = provider();
    return j;
}

QString SessionManager::save(const QString& path) const
{
    const QString error = writeFileAtomic(path, QByteArray::fromStdString(dumpJson(toJson(), 2) + "\n"));
    if (error.isEmpty())
        window_->document()->undoStack()->setClean(); // what is on screen is in a file now
    return error;
}

QString SessionManager::open(const QString& path)
{
    damagedModel_.clear();
    std::string bytes;
    SessionFile session;
    try {
        bytes = readInputFile(path.toStdString(), kMaxRecipeFileBytes, "the session file");
        session = parseSession(bytes, path.toStdString());
    } catch (const Error& e) {
        // What can still be read of a damaged session: the model, to open alone.
        if (const auto model = sessionModelPathHint(bytes); model && QFileInfo::exists(QString::fromStdString(*model)))
            damagedModel_ = QString::fromStdString(*model);
        return QString::fromStdString(e.what());
    }
    return restore(session);
}

QString SessionManager::restore(const SessionFile& session)
{
    const Recipe& recipe = session.recipe;
    // Checked before anything changes, so a bad session leaves the window as it was.
    const QString path = QString::fromStdString(session.modelPath);
    const bool demo = session.demo;
    if (!demo && !QFileInfo::exists(path))
        return tr("%1: the session's model %2 is missing.").arg(QString::fromStdString(session.path), path);

    restoring_ = true;
    if (demo) {
        window_->openDemo();
    } else if (!window_->openPath(path)) {
        restoring_ = false;
        return window_->lastError();
    }
    for (const auto& [key, value] : session.sections.items())
        if (providers_.count(key) && !value.is_null())
            emit sectionLoaded(QString::fromStdString(key), QString::fromStdString(dumpJson(value)));
    if (ComparePanel* compare = window_->comparePanel())
        compare->setEntries(compareFromJson(session.compare));
    // The evaluation belongs to the final state: shown once the recipe is replayed.
    const std::optional<PerplexityOutcome> evaluation = evaluationFromJson(session.evaluation);
    auto showEvaluation = [this, evaluation] {
        if (evaluation)
            window_->perplexityPanel()->restoreOutcome(*evaluation);
    };

    if (recipe.steps.empty()) {
        restoring_ = false;
        showEvaluation();
        QTimer::singleShot(0, this, [this] { emit restored(true, {}); });
        if (autosaving_)
            scheduleAutosave();
        return {};
    }
    RecipePanel* panel = window_->recipePanel();
    connect(
        panel, &RecipePanel::replayFinished, this,
        [this, panel, showEvaluation](bool ok) {
            restoring_ = false;
            if (ok) {
                showEvaluation();
                window_->document()->undoStack()->setClean(); // as the session file has it
            }
            if (autosaving_)
                scheduleAutosave();
            emit restored(ok, ok ? QString() : panel->statusText());
        },
        Qt::SingleShotConnection);
    panel->replay(recipe, tr("Restore session (%n step(s))", nullptr, static_cast<int>(recipe.steps.size())));
    return {};
}

void SessionManager::setSectionProvider(const std::string& key, std::function<nlohmann::json()> provider)
{
    providers_[key] = std::move(provider);
}

QString SessionManager::recoveryDirectory()
{
    return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
}

QString SessionManager::recoveryPath()
{
    return recoveryDirectory() + QStringLiteral("/recovery.layerlab");
}

QString SessionManager::lockPath()
{
    return recoveryDirectory() + QStringLiteral("/session.lock");
}

bool SessionManager::startAutosave()
{
    if (autosaving_)
        return true;
    QDir().mkpath(recoveryDirectory());
    lock_ = std::make_unique<QLockFile>(lockPath());
    // Stale only when its process is gone, never by age: a session may run for days.
    lock_->setStaleLockTime(0);
    if (!lock_->tryLock(200)) {
        lock_.reset(); // another LayerLab runs: the recovery file is its
        return false;
    }
    autosaving_ = true;
    // We hold the lock, so a recovery file left over was not cleaned up by a normal exit.
    recoveryPending_ = QFileInfo::exists(recoveryPath());
    ModelDocument* doc = window_->document();
    connect(doc, &ModelDocument::modelChanged, this, &SessionManager::scheduleAutosave);
    connect(doc, &ModelDocument::modelEdited, this, &SessionManager::scheduleAutosave);
    connect(window_->perplexityPanel(), &PerplexityPanel::finished, this, &SessionManager::scheduleAutosave);
    scheduleAutosave(); // what is open already
    return true;
}

nlohmann::json SessionManager::recoveryJson() const
{
    try {
        return parseJsonText(readInputFile(recoveryPath().toStdString(), kMaxRecipeFileBytes, "the recovery file"),
                             recoveryPath().toStdString(), "the recovery file");
    } catch (const Error&) {
        return nullptr;
    }
}

QString SessionManager::recoverySummary() const
{
    const QFileInfo file(recoveryPath());
    QString when;
    if (file.exists()) {
        const QDateTime saved = file.lastModified();
        const qint64 minutes = saved.secsTo(QDateTime::currentDateTime()) / 60;
        const auto ago = [](qint64 n, const QString& one, const QString& many) {
            return (n == 1 ? one : many).arg(n);
        };
        when = tr("Last saved %1 (%2).")
                   .arg(QLocale().toString(saved, QLocale::ShortFormat),
                        minutes < 1      ? tr("less than a minute ago")
                        : minutes < 120  ? ago(minutes, tr("%1 minute ago"), tr("%1 minutes ago"))
                        : minutes < 2880 ? ago(minutes / 60, tr("%1 hour ago"), tr("%1 hours ago"))
                                         : ago(minutes / 1440, tr("%1 day ago"), tr("%1 days ago")));
    }
    try {
        const SessionFile session =
            parseSession(readInputFile(recoveryPath().toStdString(), kMaxRecipeFileBytes, "the recovery file"),
                         recoveryPath().toStdString());
        const QString model = session.demo ? tr("the built-in demo model")
                                           : QFileInfo(QString::fromStdString(session.modelPath)).fileName();
        QStringList steps;
        for (const RecipeStep& step : session.recipe.steps)
            steps << QString::fromStdString(step.badge());
        QString text = tr("Model: %1").arg(model);
        text += QLatin1Char('\n');
        text += steps.isEmpty()     ? tr("No compression steps.")
                : steps.size() == 1 ? tr("1 step: %1").arg(steps.front())
                                    : tr("%1 steps: %2").arg(steps.size()).arg(steps.join(QStringLiteral(", ")));
        return when.isEmpty() ? text : text + QLatin1Char('\n') + when;
    } catch (const Error& e) {
        return tr("The recovery file cannot be read: %1").arg(QString::fromStdString(e.what()));
    }
}

QString SessionManager::recover()
{
    recoveryPending_ = false;
    // Until the restore ends the old recovery file stays: a crash now loses nothing.
    try {
        return restore(loadSession(recoveryPath().toStdString()));
    } catch (const Error& e) {
        return tr("The recovery file is unreadable: %1").arg(QString::fromStdString(e.what()));
    }
}

void SessionManager::discardRecovery()
{
    recoveryPending_ = false;
    QFile::remove(recoveryPath());
    scheduleAutosave();
}

void SessionManager::scheduleAutosave()
{
    if (autosaving_ && !restoring_)
        debounce_->start();
}

void SessionManager::autosaveNow()
{
    if (!autosaving_ || restoring_ || recoveryPending_)
        return;
    if (!window_->document()->hasModel())
        return;
    if (writeFileAtomic(recoveryPath(), QByteArray::fromStdString(dumpJson(toJson(), 2) + "\n")).isEmpty())
        emit autosaved(recoveryPath());
}

void SessionManager::finishAutosave()
{
    if (!autosaving_)
        return;
    autosaving_ = false;
    debounce_->stop();
    if (!recoveryPending_) // undecided: the next run offers it again
        QFile::remove(recoveryPath());
    lock_->unlock();
    lock_.reset();
}

} // namespace ll::gui
