#include "task_panel.h"

#include "analysis/engine_cache.h"
#include "format.h"
#include "job_failure.h"
#include "job_progress.h"
#include "job_runner.h"
#include "model_document.h"
#include "panel_util.h"

#include "tasks/task_formats.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QDateTime>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

namespace ll::gui {

namespace {

const char* kFilesKey = "tasks/files";   // "format|path" per task
const char* kShotsKey = "tasks/shots";
const char* kLimitKey = "tasks/limit";
const QString kDefinition = QStringLiteral("definition");

enum TaskColumn { TaskName, TaskFormatColumn, TaskFile, TaskColumns };
enum ResultColumn { ResultTask, ResultMetric, ResultOriginal, ResultCurrent, ResultChange, ResultChance, ResultColumns };

QString number(double v) { return std::abs(v) < 1000 ? QString::number(v, 'f', 4) : QString::number(v, 'g', 5); }

QString valueText(const MetricValue& m) { return QStringLiteral("%1 ± %2").arg(number(m.value), number(m.standardError)); }

// A tick label that leaves room for the bars: at most 14 characters.
QString shortLabel(const QString& s) { return s.size() <= 14 ? s : s.left(13) + QChar(0x2026); }

// "exact_match,flexible-extract" -> "flexible-extract", "refusal_rate" -> "refusal", "acc_norm" -> "norm".
QString shortMetric(const std::string& name)
{
    QString s = QString::fromStdString(name);
    if (const qsizetype comma = s.indexOf(QLatin1Char(',')); comma >= 0)
        s = s.mid(comma + 1);
    s.remove(QStringLiteral("_rate"));
    s.replace(QStringLiteral("acc_norm"), QStringLiteral("norm"));
    return shortLabel(s);
}

// Perplexity is better lower; every other metric higher.
bool lowerIsBetter(const std::string& metric) { return metric == "perplexity"; }

// The name a task is shown by: a definition's own name, else the file's name.
QString entryName(const TaskEntry& e) { return QFileInfo(e.path).completeBaseName(); }

} // namespace

TaskPanel::TaskPanel(ModelDocument* document, std::shared_ptr<EngineCache> engines, QWidget* parent)
    : QWidget(parent), document_(document), engines_(std::move(engines)), runner_(new JobRunner(this))
{
    setObjectName(QStringLiteral("taskPanel"));

    taskTable_ = new QTableWidget(0, TaskColumns, this);
    taskTable_->setObjectName(QStringLiteral("taskTable"));
    taskTable_->setHorizontalHeaderLabels({tr("Task"), tr("Format"), tr("File")});
    taskTable_->horizontalHeader()->setStretchLastSection(true);
    taskTable_->verticalHeader()->hide();
    taskTable_->setSelectionBehavior(QAbstractItemView::SelectRows);
    taskTable_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    taskTable_->setMinimumHeight(70);
    taskTable_->setMaximumHeight(120);
    taskTable_->verticalHeader()->setDefaultSectionSize(24);
    taskTable_->setToolTip(tr("Task files, one item per line (HellaSwag, ARC, MMLU, PIQA, WinoGrande, BoolQ, "
                              "TruthfulQA, LAMBADA, generic multiple choice) or a task definition (.yaml); "
                              "ticked tasks run"));

    addButton_ = new QPushButton(tr("Add Task Files…"), this);
    addButton_->setObjectName(QStringLiteral("addTaskButton"));
    removeButton_ = new QPushButton(tr("Remove"), this);
    shotsBox_ = new QSpinBox(this);
    shotsBox_->setObjectName(QStringLiteral("taskShotsBox"));
    shotsBox_->setRange(0, 25);
    shotsBox_->setSuffix(tr("-shot"));
    shotsBox_->setToolTip(tr("Solved examples before each item, drawn from the task's other items with a fixed seed"));
    limitBox_ = new QSpinBox(this);
    limitBox_->setObjectName(QStringLiteral("taskLimitBox"));
    limitBox_->setRange(0, 1 << 30);
    limitBox_->setSpecialValueText(tr("all items"));
    limitBox_->setSuffix(tr(" items"));
    limitBox_->setToolTip(tr("Only the first items of each task (quicker, wider error bars)"));
    runButton_ = new QPushButton(tr("Run Tasks"), this);
    runButton_->setObjectName(QStringLiteral("runTasksButton"));
    cancelButton_ = new QPushButton(tr("Cancel"), this);
    cancelButton_->setObjectName(QStringLiteral("cancelTasksButton"));

    auto* buttons = new QHBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(addButton_);
    buttons->addWidget(removeButton_);
    buttons->addSpacing(12);
    buttons->addWidget(shotsBox_);
    buttons->addWidget(limitBox_);
    buttons->addWidget(runButton_);
    buttons->addWidget(cancelButton_);

    progress_ = makeSlimProgressBar(this);
    progressText_ = new QLabel(this);
    setSecondaryText(progressText_);
    statusLabel_ = new QLabel(this);
    statusLabel_->setObjectName(QStringLiteral("taskStatus"));
    statusLabel_->setWordWrap(true);

    results_ = new QTableWidget(0, ResultColumns, this);
    results_->setObjectName(QStringLiteral("taskResults"));
    results_->setHorizontalHeaderLabels({tr("Task"), tr("Metric"), tr("Original"), tr("Current"), tr("Change"), tr("Chance")});
    results_->verticalHeader()->hide();
    results_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    results_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    results_->setMinimumHeight(120);
    results_->verticalHeader()->setDefaultSectionSize(22);

    plot_ = new QCustomPlot(this);
    plot_->setObjectName(QStringLiteral("taskPlot"));
    plot_->setMinimumSize(220, 180);
    plot_->yAxis->setLabel(tr("accuracy ± s.e."));
    // Before the first run: the axes the results will have (not QCustomPlot's default 0-5), no task names yet.
    plot_->yAxis->setRange(0, 1.05);
    plot_->xAxis->setRange(-0.7, 0.7);
    plot_->xAxis->setTicks(false);
    // The legend in a row of its own under the bars, so it never hides one.
    plot_->legend->setVisible(true);
    plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    plot_->legend->setBorderPen(Qt::NoPen);
    plot_->plotLayout()->addElement(1, 0, plot_->legend);
    plot_->plotLayout()->setRowStretchFactor(1, 0.001);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 8, 0, 0);
    layout->addLayout(buttons);
    layout->addWidget(taskTable_);
    layout->addWidget(progress_);
    layout->addWidget(progressText_);
    layout->addWidget(statusLabel_);
    // The numbers and their bars side by side.
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(results_);
    split->addWidget(plot_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    split->setSizes({500, 400});
    layout->addWidget(split, 1);

    connect(addButton_, &QPushButton::clicked, this, &TaskPanel::chooseFiles);
    connect(removeButton_, &QPushButton::clicked, this, &TaskPanel::removeSelected);
    connect(runButton_, &QPushButton::clicked, this, &TaskPanel::run);
    connect(cancelButton_, &QPushButton::clicked, this, &TaskPanel::cancel);
    connect(taskTable_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
        if (item->column() == TaskName && item->row() < static_cast<int>(tasks_.size()))
            tasks_[static_cast<size_t>(item->row())].enabled = item->checkState() == Qt::Checked;
        saveSettings();
        updateEnabled();
    });
    showJobProgress(runner_, progress_, progressText_);
    connect(runner_, &JobRunner::runningChanged, this, [this](bool running) {
        updateEnabled();
        emit runningChanged(running);
    });
    connect(runner_, &JobRunner::finished, this, [this] {
        updateEnabled();
        emit finished();
    });
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] {
        runner_->abandon(); // its results would be for the old model
        originalCache_.clear();
    });
    connect(document_, &ModelDocument::modelChanged, this, [this] {
        shown_.reset();
        results_->setRowCount(0);
        plot_->clearPlottables();
        plot_->clearItems();
        plot_->replot();
        setState(State::Idle);
    });
    connect(document_, &ModelDocument::modelEdited, this, [this] {
        if (shown_)
            showOutcome(*shown_); // marks a current column of another state
    });

    QSettings settings;
    shotsBox_->setValue(settings.value(kShotsKey, 0).toInt());
    limitBox_->setValue(settings.value(kLimitKey, 0).toInt());
    for (const QString& item : settings.value(kFilesKey).toStringList()) {
        const int bar = item.indexOf(QLatin1Char('|'));
        if (bar > 0 || item.startsWith(QLatin1Char('|')))
            if (QFileInfo(item.mid(bar + 1)).isFile())
                tasks_.push_back({item.mid(bar + 1), item.left(bar), true});
    }
    rebuildTaskTable();
    setState(State::Idle);
}

TaskPanel::~TaskPanel()
{
    disconnect(runner_, nullptr, this, nullptr);
    runner_->cancelAndWait();
}

bool TaskPanel::addTaskFile(const QString& path, const QString& format)
{
    QString chosen = format;
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (chosen.isEmpty() && suffix != QLatin1String("yaml") && suffix != QLatin1String("yml")) {
        try {
            const auto guessed = guessTaskFormat(path.toStdString());
            if (!guessed) {
                setState(State::Failed, tr("%1: cannot tell the task's format from its first line.").arg(path));
                return false;
            }
            chosen = QString::fromLatin1(taskFormatInfo(*guessed).name);
        } catch (const Error& e) {
            setState(State::Failed, QString::fromStdString(e.what()));
            return false;
        }
    }
    for (const TaskEntry& e : tasks_)
        if (e.path == path && e.format == chosen)
            return true;
    tasks_.push_back({path, chosen, true});
    rebuildTaskTable();
    saveSettings();
    return true;
}

void TaskPanel::setTaskEnabled(int row, bool enabled)
{
    if (QTableWidgetItem* item = taskTable_->item(row, TaskName))
        item->setCheckState(enabled ? Qt::Checked : Qt::Unchecked);
}

void TaskPanel::chooseFiles()
{
    const QStringList files = QFileDialog::getOpenFileNames(
        this, tr("Add Task Files"), QString(), tr("Task files (*.jsonl *.json *.csv *.yaml *.yml);;All files (*)"));
    for (const QString& f : files)
        addTaskFile(f);
}

void TaskPanel::removeSelected()
{
    const QModelIndexList rows = taskTable_->selectionModel()->selectedRows();
    std::vector<int> remove;
    for (const QModelIndex& i : rows)
        remove.push_back(i.row());
    std::sort(remove.rbegin(), remove.rend());
    for (const int r : remove)
        tasks_.erase(tasks_.begin() + r);
    rebuildTaskTable();
    saveSettings();
}

void TaskPanel::rebuildTaskTable()
{
    const QSignalBlocker block(taskTable_);
    taskTable_->setRowCount(static_cast<int>(tasks_.size()));
    for (int r = 0; r < static_cast<int>(tasks_.size()); ++r) {
        const TaskEntry& e = tasks_[static_cast<size_t>(r)];
        auto* name = new QTableWidgetItem(entryName(e));
        name->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsUserCheckable);
        name->setCheckState(e.enabled ? Qt::Checked : Qt::Unchecked);
        taskTable_->setItem(r, TaskName, name);
        auto* format = new QComboBox(taskTable_);
        for (const TaskFormatInfo& f : taskFormats())
            format->addItem(QString::fromLatin1(f.name), QString::fromLatin1(f.name));
        format->addItem(tr("task definition"), kDefinition);
        const int at = format->findData(e.format.isEmpty() ? kDefinition : e.format);
        format->setCurrentIndex(std::max(0, at));
        connect(format, &QComboBox::activated, this, [this, format, r] {
            if (r < static_cast<int>(tasks_.size())) {
                const QString f = format->currentData().toString();
                tasks_[static_cast<size_t>(r)].format = f == kDefinition ? QString() : f;
                saveSettings();
            }
        });
        taskTable_->setCellWidget(r, TaskFormatColumn, format);
        auto* file = new QTableWidgetItem(e.path);
        file->setToolTip(e.path);
        taskTable_->setItem(r, TaskFile, file);
    }
    taskTable_->resizeColumnToContents(TaskName);
    updateEnabled();
}

void TaskPanel::saveSettings() const
{
    QStringList files;
    for (const TaskEntry& e : tasks_)
        files << e.format + QLatin1Char('|') + e.path;
    QSettings settings;
    settings.setValue(kFilesKey, files);
    settings.setValue(kShotsKey, shotsBox_->value());
    settings.setValue(kLimitKey, limitBox_->value());
}

QString TaskPanel::cacheKey(const TaskEntry& entry, int shots, int64_t limit) const
{
    // The file's time: an edited task file is scored again.
    return entry.format + QLatin1Char('|') + entry.path + QLatin1Char('|') + QString::number(shots) + QLatin1Char('|')
           + QString::number(limit) + QLatin1Char('|') + QString::number(QFileInfo(entry.path).lastModified().toMSecsSinceEpoch());
}

bool TaskPanel::isRunning() const { return runner_->isRunning(); }

void TaskPanel::updateEnabled()
{
    const bool running = runner_->isRunning();
    const bool any = std::any_of(tasks_.begin(), tasks_.end(), [](const TaskEntry& e) { return e.enabled; });
    runButton_->setEnabled(!running && any && document_->hasModel());
    cancelButton_->setEnabled(running && !runner_->isCancelling());
    addButton_->setEnabled(!running);
    removeButton_->setEnabled(!running && !tasks_.empty());
    taskTable_->setEnabled(!running);
    progress_->setVisible(running);
    progressText_->setVisible(running);
}

void TaskPanel::setState(State state, const QString& message)
{
    state_ = state;
    QString text = message;
    if (text.isEmpty() && state == State::Idle)
        text = tasks_.empty() ? tr("Add task files (JSONL as the datasets are published, MMLU's CSV, or a task definition), then Run.")
                              : tr("The original model, and the current state once a step is applied, are scored side by side.");
    statusLabel_->setText(text);
    updateEnabled();
}

QString TaskPanel::statusText() const { return statusLabel_->text(); }

nlohmann::json TaskPanel::sessionJson() const
{
    if (!shown_)
        return nullptr;
    nlohmann::json tasks = nlohmann::json::array(), original = nlohmann::json::array(), current = nlohmann::json::array();
    for (const TaskEntry& e : tasks_)
        tasks.push_back({{"path", e.path.toStdString()}, {"format", e.format.toStdString()}, {"enabled", e.enabled}});
    for (const TaskResult& r : shown_->original)
        original.push_back(taskResultToJson(r));
    for (const TaskResult& r : shown_->current)
        current.push_back(taskResultToJson(r));
    Recipe measured;
    measured.steps = shown_->steps;
    return {{"tasks", tasks}, {"shots", shown_->shots}, {"limit", shown_->limit}, {"original", original},
            {"current", current}, {"steps", measured.toJson()}};
}

bool TaskPanel::restoreSession(const nlohmann::json& j)
{
    try {
        TaskOutcome o;
        o.shots = j.value("shots", 0);
        o.limit = j.value("limit", int64_t{0});
        for (const auto& r : j.at("original"))
            o.original.push_back(taskResultFromJson(r, "session"));
        for (const auto& r : j.value("current", nlohmann::json::array()))
            o.current.push_back(taskResultFromJson(r, "session"));
        if (!o.current.empty() && o.current.size() != o.original.size())
            return false;
        o.steps = Recipe::fromJson(j.at("steps"), "session").steps;
        for (const auto& t : j.value("tasks", nlohmann::json::array()))
            if (t.is_object() && t.contains("path") && t["path"].is_string()) {
                const QString path = QString::fromStdString(t["path"].get<std::string>());
                const QString format = QString::fromStdString(t.value("format", std::string()));
                if (std::none_of(tasks_.begin(), tasks_.end(), [&](const TaskEntry& e) { return e.path == path && e.format == format; }))
                    tasks_.push_back({path, format, t.value("enabled", true)});
            }
        rebuildTaskTable();
        showOutcome(o);
        setState(State::Done, statusLabel_->text());
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

void TaskPanel::run()
{
    const auto model = document_->model();
    if (!model) {
        setState(State::Failed, tr("No model is open."));
        return;
    }
    std::vector<TaskEntry> entries;
    for (const TaskEntry& e : tasks_)
        if (e.enabled)
            entries.push_back(e);
    if (entries.empty()) {
        setState(State::Failed, tr("Tick at least one task."));
        return;
    }
    saveSettings();
    TaskOptions options;
    options.shots = shotsBox_->value();
    options.limit = limitBox_->value();
    const std::shared_ptr<const Model> source = document_->state().source ? document_->state().source : model;
    const std::vector<RecipeStep> steps = document_->state().steps;
    const bool edited = !steps.empty();
    // Results of the original kept from earlier runs: only what is missing runs.
    std::vector<std::optional<TaskResult>> known;
    std::vector<QString> keys;
    for (const TaskEntry& e : entries) {
        keys.push_back(cacheKey(e, options.shots, options.limit));
        const auto it = originalCache_.find(keys.back());
        known.push_back(it == originalCache_.end() ? std::nullopt : std::optional<TaskResult>(it->second));
    }
    progress_->setValue(0);
    setState(State::Running, edited ? tr("Scoring %n task(s) on the original and on the current state…", nullptr, static_cast<int>(entries.size()))
                                    : tr("Scoring %n task(s)…", nullptr, static_cast<int>(entries.size())));
    const std::shared_ptr<EngineCache> engines = engines_;
    runner_->start([this, model, source, entries, options, steps, edited, known, keys, engines](JobContext& job) {
        TaskOutcome out;
        out.steps = steps;
        out.shots = options.shots;
        out.limit = options.limit;
        QString error;
        bool cancelled = false;
        try {
            job.stage(0.0, 0.02, tr("reading tasks"));
            std::vector<Task> tasks;
            for (const TaskEntry& e : entries) {
                tasks.push_back(loadTask(e.format.toStdString(), e.path.toStdString()));
                if (!e.format.isEmpty()) // a definition keeps its own name; a data file is shown by its file's
                    tasks.back().name = entryName(e).toStdString();
            }
            std::unique_ptr<Tokenizer> tokenizer;
            try {
                tokenizer = loadTokenizer(*model);
            } catch (const Error& e) {
                if (e.code() != ErrorCode::NotFound)
                    throw;
                error = tr("This model has no tokenizer, so it cannot read the tasks: put its tokenizer.json or "
                           "tokenizer.bin beside it and open it again.");
            }
            if (tokenizer) {
                const size_t missing = static_cast<size_t>(std::count(known.begin(), known.end(), std::nullopt));
                const double units = static_cast<double>(missing + (edited ? tasks.size() : 0));
                double done = 0;
                std::shared_ptr<const Transformer> originalEngine;
                for (size_t i = 0; i < tasks.size(); ++i) {
                    if (known[i]) {
                        out.original.push_back(*known[i]);
                        continue;
                    }
                    if (!originalEngine) {
                        job.stage(0.02 + 0.98 * done / units, 0.0, tr("preparing the original"));
                        originalEngine = edited ? std::make_shared<const Transformer>(*source, &job) : engines->get(model, &job);
                    }
                    job.stage(0.02 + 0.98 * done / units, 0.98 / units, edited ? tr("original") : QString());
                    out.original.push_back(evaluateTask(*originalEngine, *tokenizer, tasks[i], options, &job));
                    ++done;
                }
                originalEngine.reset();
                if (edited) {
                    const auto current = engines->get(model, &job);
                    for (const Task& task : tasks) {
                        job.stage(0.02 + 0.98 * done / units, 0.98 / units, tr("current"));
                        out.current.push_back(evaluateTask(*current, *tokenizer, task, options, &job));
                        ++done;
                    }
                }
            }
        } catch (...) {
            const JobFailure f = currentJobFailure(tr("Not enough memory for these tasks."));
            cancelled = f.cancelled;
            error = f.message;
        }
        cancelled = cancelled || job.cancelled();
        job.post([this, out, error, cancelled, keys] {
            if (cancelled) {
                setState(State::Cancelled, shown_ ? tr("Cancelled; the results shown are the previous ones.") : tr("Cancelled."));
            } else if (!error.isEmpty()) {
                setState(State::Failed, error);
            } else {
                for (size_t i = 0; i < out.original.size() && i < keys.size(); ++i)
                    originalCache_[keys[i]] = out.original[i];
                showOutcome(out);
                setState(State::Done, statusLabel_->text());
            }
        });
    });
    updateEnabled();
}

void TaskPanel::cancel()
{
    if (!runner_->isRunning())
        return;
    runner_->cancel();
    setState(State::Cancelling, tr("Cancelling…"));
}

void TaskPanel::showOutcome(const TaskOutcome& outcome)
{
    shown_ = outcome;
    const bool beside = !outcome.current.empty();
    const bool stale = document_->hasModel() && outcome.steps != document_->state().steps;
    results_->setColumnHidden(ResultCurrent, !beside);
    results_->setColumnHidden(ResultChange, !beside);
    results_->horizontalHeaderItem(ResultOriginal)->setText(beside ? tr("Original") : tr("This model"));
    results_->horizontalHeaderItem(ResultCurrent)->setText(stale ? tr("Current (earlier state)") : tr("Current"));
    results_->setRowCount(0);

    plot_->clearPlottables();
    plot_->clearItems();
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    QVector<double> x, yo, eo, yc, ec;
    double seconds = 0;
    for (size_t t = 0; t < outcome.original.size(); ++t) {
        const TaskResult& o = outcome.original[t];
        seconds += o.seconds + (beside ? outcome.current[t].seconds : 0);
        for (size_t m = 0; m < o.metrics.size(); ++m) {
            const MetricValue& mo = o.metrics[m];
            const int row = results_->rowCount();
            results_->insertRow(row);
            auto* task = new QTableWidgetItem(m == 0 ? QStringLiteral("%1 (%2)").arg(QString::fromStdString(o.task)).arg(o.items) : QString());
            task->setToolTip(QString::fromStdString(o.source));
            results_->setItem(row, ResultTask, task);
            results_->setItem(row, ResultMetric, new QTableWidgetItem(QString::fromStdString(mo.name)));
            results_->setItem(row, ResultOriginal, new QTableWidgetItem(valueText(mo)));
            const bool accuracyLike = !lowerIsBetter(mo.name);
            results_->setItem(row, ResultChance, new QTableWidgetItem(accuracyLike && o.chance > 0 ? QString::number(o.chance, 'f', 4) : QString()));
            if (beside) {
                const MetricValue& mc = outcome.current[t].metrics[m];
                results_->setItem(row, ResultCurrent, new QTableWidgetItem(valueText(mc)));
                const double delta = mc.value - mo.value;
                auto* change = new QTableWidgetItem(QStringLiteral("%1%2").arg(delta >= 0 ? "+" : "", number(delta)));
                const bool worse = lowerIsBetter(mo.name) ? delta > 0 : delta < 0;
                // Beyond two standard errors of the difference (both runs' errors, taken as independent).
                const double noise = 2 * std::hypot(mo.standardError, mc.standardError);
                if (std::abs(delta) > noise)
                    change->setForeground(worse ? QColor(180, 40, 40) : QColor(30, 130, 60));
                change->setToolTip(tr("Two standard errors of the difference: %1").arg(noise, 0, 'f', 4));
                results_->setItem(row, ResultChange, change);
            }
            if (!accuracyLike)
                continue;
            const double pos = static_cast<double>(x.size());
            x << pos;
            yo << mo.value;
            eo << mo.standardError;
            if (beside) {
                yc << outcome.current[t].metrics[m].value;
                ec << outcome.current[t].metrics[m].standardError;
            }
            ticker->addTick(pos, m == 0 ? shortLabel(QString::fromStdString(o.task)) : QStringLiteral("(%1)").arg(shortMetric(mo.name)));
            if (o.chance > 0) { // chance, as a dashed line across the task's bars
                auto* chance = new QCPItemLine(plot_);
                chance->start->setCoords(pos - 0.45, o.chance);
                chance->end->setCoords(pos + 0.45, o.chance);
                chance->setPen(QPen(Qt::gray, 1, Qt::DashLine));
            }
        }
    }
    const auto addBars = [&](const QVector<double>& y, const QVector<double>& e, double offset, const QColor& colour, const QString& name) {
        QVector<double> at;
        for (const double v : x)
            at << v + offset;
        auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
        bars->setWidth(beside ? 0.38 : 0.6);
        bars->setData(at, y);
        bars->setBrush(colour);
        bars->setPen(QPen(colour.darker(130)));
        bars->setName(name);
        auto* errors = new QCPErrorBars(plot_->xAxis, plot_->yAxis);
        errors->setDataPlottable(bars);
        errors->setData(e);
        errors->removeFromLegend();
    };
    addBars(yo, eo, beside ? -0.2 : 0.0, QColor(150, 150, 160), beside ? tr("original") : tr("this model"));
    if (beside)
        addBars(yc, ec, 0.2, QColor(60, 120, 200), tr("current"));
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setTicks(true);
    plot_->xAxis->setTickLabelRotation(x.size() > 3 ? -35 : 0); // several tasks' names side by side
    plot_->xAxis->setRange(-0.7, std::max(0.7, static_cast<double>(x.size()) - 0.3));
    plot_->yAxis->setRange(0, 1.05);
    auto ticks = QSharedPointer<QCPAxisTickerFixed>::create();
    ticks->setTickStep(0.2);
    plot_->yAxis->setTicker(ticks);
    plot_->replot(QCustomPlot::rpQueuedReplot);

    QString status = tr("%n task(s), %1-shot, %2", nullptr, static_cast<int>(outcome.original.size()))
                         .arg(outcome.shots)
                         .arg(formatSeconds(seconds));
    if (stale)
        status += QLatin1String(". ") + tr("The current column was measured on an earlier state: run again for this one.");
    statusLabel_->setText(status);
}

} // namespace ll::gui
