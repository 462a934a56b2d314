#include "job_runner.h"

#include "util/threads.h"

#include <QMetaObject>
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <cmath>

namespace ll::gui {

QString progressText(const QString& label, const QString& what, std::optional<double> secondsLeft)
{
    QString text = label;
    if (!what.isEmpty() && what != QLatin1String("done"))
        text += (text.isEmpty() ? QString() : QStringLiteral(": ")) + what;
    if (secondsLeft)
        text += (text.isEmpty() ? QString() : QStringLiteral(" · ")) + QString::fromStdString(formatTimeLeft(secondsLeft));
    return text;
}

void JobContext::stage(double base, double span, const QString& label)
{
    {
        std::lock_guard lock(reportMutex_);
        base_ = base;
        span_ = span;
        label_ = label;
        what_.clear();
        inStage_ = 0.0;
        etaAtReport_.reset();
        stageClock_.restart();
    }
    report(0.0, {});
}

QString JobContext::textNow(int* permille) const
{
    // With the lock held. Between reports the time left counts down from the
    // last estimate; before the stage's first step, the time it has taken.
    *permille = static_cast<int>(std::lround(1000.0 * std::clamp(base_ + span_ * inStage_, 0.0, 1.0)));
    if (etaAtReport_) {
        const double left = std::max(0.0, *etaAtReport_ - sinceReport_.elapsed());
        return progressText(label_, what_, left);
    }
    QString text = progressText(label_, what_, std::nullopt);
    const double elapsed = stageClock_.elapsed();
    if (elapsed >= 2.0) {
        text += (text.isEmpty() ? QString() : QStringLiteral(" · "))
                + QObject::tr("%1 elapsed").arg(QString::fromStdString(formatClock(elapsed)));
        if (expectedSeconds_ > 0.0)
            text += QObject::tr(" of about %1").arg(QString::fromStdString(formatClock(expectedSeconds_)));
    }
    return text;
}

void JobContext::report(double fraction, std::string_view what)
{
    std::unique_lock lock(reportMutex_);
    inStage_ = std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0);
    what_ = QString::fromUtf8(what.data(), static_cast<qsizetype>(what.size()));
    // The time left of this stage at its pace so far; none before its first step.
    etaAtReport_ = inStage_ < 1.0 ? stageClock_.secondsLeft(inStage_) : std::nullopt;
    sinceReport_.restart();
    int permille = 0;
    const QString text = textNow(&permille);
    if (permille == lastPermille_ && text == lastText_)
        return; // the engine reports often; the GUI only needs changes
    // At most ten lines a second (a countdown in seconds needs no more), but every new stage at once.
    const bool newStage = !lastText_.startsWith(label_) || lastPermille_ < 0;
    if (!newStage && sinceEmit_.elapsed() < 0.1 && permille - lastPermille_ < 10)
        return;
    emitLocked(permille, text);
    lock.unlock();
}

void JobContext::emitLocked(int permille, const QString& text)
{
    sinceEmit_.restart();
    lastPermille_ = permille;
    lastText_ = text;
    JobRunner* runner = runner_;
    const uint64_t id = id_;
    QMetaObject::invokeMethod(runner, [runner, id, permille, text] {
        if (runner->current_ == id)
            emit runner->progress(permille, text);
    }, Qt::QueuedConnection);
}

void JobContext::tick()
{
    std::lock_guard lock(reportMutex_);
    int permille = 0;
    const QString text = textNow(&permille);
    if (text != lastText_)
        emitLocked(permille, text);
}

void JobContext::setExpectedSeconds(double seconds)
{
    std::lock_guard lock(reportMutex_);
    expectedSeconds_ = seconds;
}

void JobContext::post(std::function<void()> fn)
{
    JobRunner* runner = runner_;
    const uint64_t id = id_;
    QMetaObject::invokeMethod(runner, [runner, id, fn = std::move(fn)] {
        if (runner->current_ == id)
            fn();
    }, Qt::QueuedConnection);
}

namespace {
// The runners that exist (created and destroyed on the GUI thread).
std::vector<JobRunner*>& allRunners()
{
    static std::vector<JobRunner*> runners;
    return runners;
}
} // namespace

int JobRunner::runningCount()
{
    return static_cast<int>(std::count_if(allRunners().begin(), allRunners().end(), [](const JobRunner* r) { return r->isRunning(); }));
}

void JobRunner::cancelAll()
{
    for (JobRunner* r : allRunners())
        r->cancel();
}

JobRunner::JobRunner(QObject* parent) : QObject(parent), clock_(new QTimer(this))
{
    allRunners().push_back(this);
    // The time left (or elapsed) moves on between the core's reports.
    clock_->setInterval(1000);
    connect(clock_, &QTimer::timeout, this, [this] {
        for (Job& j : jobs_)
            if (j.id == current_)
                j.context->tick();
    });
}

JobRunner::~JobRunner()
{
    std::erase(allRunners(), this);
    current_ = 0;
    for (Job& j : jobs_)
        j.context->cancel_.store(true);
    for (Job& j : jobs_) {
        j.thread->wait();
        delete j.thread;
    }
    jobs_.clear();
}

uint64_t JobRunner::start(Work work)
{
    const bool wasRunning = current_ != 0;
    if (wasRunning) {
        for (Job& j : jobs_)
            if (j.id == current_)
                j.context->cancel_.store(true);
    }
    const uint64_t id = ++next_;
    std::shared_ptr<JobContext> context(new JobContext(this, id));
    JobRunner* self = this;
    QThread* thread = QThread::create([self, id, context, work = std::move(work)] {
        try {
            const ComputeShare share; // one CPU budget for the jobs that run at once
            work(*context);
        } catch (...) {
            // The work function reports its own errors; nothing may escape a thread.
        }
        // After everything the job posted: the thread is done.
        QMetaObject::invokeMethod(self, [self, id] { self->threadDone(id); }, Qt::QueuedConnection);
    });
    thread->setObjectName(QStringLiteral("layerlab-job-%1").arg(id));
    jobs_.push_back({id, context, thread});
    current_ = id;
    thread->start(QThread::LowPriority);
    clock_->start();
    if (!wasRunning)
        emit runningChanged(true);
    return id;
}

void JobRunner::setExpectedSeconds(double seconds)
{
    for (Job& j : jobs_)
        if (j.id == current_)
            j.context->setExpectedSeconds(seconds);
}

void JobRunner::cancel()
{
    for (Job& j : jobs_)
        if (j.id == current_)
            j.context->cancel_.store(true);
}

bool JobRunner::isCancelling() const
{
    for (const Job& j : jobs_)
        if (j.id == current_)
            return j.context->cancelled();
    return false;
}

void JobRunner::abandon()
{
    if (current_ == 0)
        return;
    cancel();
    current_ = 0;
    clock_->stop();
    emit runningChanged(false);
}

void JobRunner::cancelAndWait()
{
    abandon();
    for (Job& j : jobs_)
        j.context->cancel_.store(true);
    for (Job& j : jobs_)
        j.thread->wait();
    // threadDone() (queued) deletes them.
}

void JobRunner::threadDone(uint64_t id)
{
    const auto it = std::find_if(jobs_.begin(), jobs_.end(), [id](const Job& j) { return j.id == id; });
    if (it == jobs_.end())
        return;
    it->thread->wait(); // returns at once: the work is over
    delete it->thread;
    jobs_.erase(it);
    if (id == current_) {
        current_ = 0;
        clock_->stop();
        emit finished(id);
        emit runningChanged(false);
    }
}

} // namespace ll::gui
