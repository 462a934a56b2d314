#pragma once
// Long computations off the GUI thread (perplexity, generation, calibration).
//
// A JobRunner runs one current job at a time on a thread of its own. The
// job's work function gets a JobContext: an ll::Progress (cancellation and a
// progress bar split into stages) and post(), which hands a function to the
// GUI thread. Everything a job posts arrives queued and in order, and only
// while the job is still current: a job replaced by start() or dropped by
// abandon() can go on computing for a moment, but nothing of it reaches the
// widgets any more. Jobs copy their inputs (shared_ptr<const Model>, the
// text), so abandoning one never waits; the runner's destructor cancels
// every job and waits for its thread.
//
// Progress reaches the widgets as one line: the stage's label, what the core
// says it is doing ("block 3 of 16: window 8 of 32") and, once the stage has
// made some progress, the time left at the stage's pace ("1:23 left"),
// counting down every second between the core's reports; before the first,
// the time elapsed (and the panel's estimate when it gave one).
#include "util/eta.h"
#include "util/progress.h"

#include <QObject>
#include <QString>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

class QThread;
class QTimer;

namespace ll::gui {

class JobRunner;

class JobContext : public Progress {
public:
    // fraction of the current stage, mapped into the stage's part of the bar;
    // `what` is shown after the stage's label.
    void report(double fraction, std::string_view what) override;
    bool cancelled() const override { return cancel_.load(std::memory_order_relaxed); }

    // Later report() calls fill [base, base + span] of the bar, labelled `label`.
    void stage(double base, double span, const QString& label);
    // Runs fn on the GUI thread unless the job is no longer current by then.
    void post(std::function<void()> fn);
    // What the job is expected to take (the panel's estimate), shown while the
    // core reports no fraction: "0:12 elapsed of about 0:30".
    void setExpectedSeconds(double seconds);
    uint64_t id() const { return id_; }

private:
    friend class JobRunner;
    JobContext(JobRunner* runner, uint64_t id) : runner_(runner), id_(id) {}
    // The progress line now (the lock held), and its bar position.
    QString textNow(int* permille) const;
    void emitLocked(int permille, const QString& text);
    // Once a second from the GUI thread: the countdown between reports.
    void tick();

    JobRunner* runner_;
    uint64_t id_;
    std::atomic<bool> cancel_{false};
    // report() state, under the mutex (the core reports from its calling thread, but need not).
    std::mutex reportMutex_;
    double base_ = 0.0, span_ = 1.0;
    QString label_;
    QString what_;               // the core's words at its last report
    double inStage_ = 0.0;       // the stage's fraction at the last report
    std::optional<double> etaAtReport_;
    double expectedSeconds_ = 0.0;
    EtaClock stageClock_;        // restarted by stage(): each stage runs at its own pace
    EtaClock sinceReport_;
    int lastPermille_ = -1;
    QString lastText_;
    EtaClock sinceEmit_;
};

// The line a progress update shows: "scoring: window 12 of 40 · 1:23 left"
// (label, the core's words, the time left; each part only when there is one).
QString progressText(const QString& label, const QString& what, std::optional<double> secondsLeft);

class JobRunner : public QObject {
    Q_OBJECT
public:
    using Work = std::function<void(JobContext&)>;

    explicit JobRunner(QObject* parent = nullptr);
    ~JobRunner() override; // cancels every job and waits for its thread

    // Abandons the current job (if any) and starts `work`; returns its id.
    // `work` should catch its own exceptions (anything escaping is dropped).
    uint64_t start(Work work);
    // Asks the current job to stop. It stays current until its work function
    // returns, so what it posts on the way out (a "cancelled" state) arrives.
    void cancel();
    // Cancels the current job and forgets it: nothing it posts arrives any more.
    void abandon();
    // The current job's expected duration (JobContext::setExpectedSeconds).
    void setExpectedSeconds(double seconds);
    // Abandons the current job and waits for every thread (closing the window).
    void cancelAndWait();

    bool isRunning() const { return current_ != 0; }
    // Every runner of the process (the GUI thread's): one place that knows
    // whether anything runs, and that can stop it all. Jobs of runners that
    // run at once share the CPU (ll::ComputeShare): each gets its part of the cores.
    static int runningCount();
    static void cancelAll();
    bool isCancelling() const;
    uint64_t currentJob() const { return current_; }
    // Threads still alive, abandoned ones included.
    int liveThreads() const { return static_cast<int>(jobs_.size()); }

signals:
    void progress(int permille, const QString& what); // current job only; `what`: progressText()
    void runningChanged(bool running);
    void finished(uint64_t job); // the current job's work returned, after all it posted

private:
    friend class JobContext;
    struct Job {
        uint64_t id;
        std::shared_ptr<JobContext> context;
        QThread* thread;
    };
    void threadDone(uint64_t id);

    std::vector<Job> jobs_;
    uint64_t next_ = 0;
    uint64_t current_ = 0;
    QTimer* clock_;             // ticks the current job's progress line once a second
};

} // namespace ll::gui
