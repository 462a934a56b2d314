#pragma once
// A job's progress as every panel and dialog shows it: the bar's position and
// the job's line of words (JobRunner's progressText: stage, what the core is
// doing, time left), in a label beside the bar (also its tooltip, for long
// lines) or, without one, in the bar's own text.
#include <QLabel>
#include <QObject>
#include <QProgressBar>
#include <QString>

namespace ll::gui {

inline void showProgressLine(QProgressBar* bar, QLabel* words, int permille, const QString& what)
{
    bar->setValue(permille);
    if (words) {
        words->setText(what);
        words->setToolTip(what);
        if (bar->isTextVisible())
            bar->setFormat(QStringLiteral("%p %"));
    } else if (bar->isTextVisible()) {
        bar->setFormat(what.isEmpty() ? QStringLiteral("%p %") : what + QStringLiteral("  %p %"));
    }
}

// Shows the progress(int permille, const QString& what) signal of a job's
// source (a JobRunner, the inspector's StatsJob) in `bar` and `words`.
template <class Source>
void showJobProgress(Source* source, QProgressBar* bar, QLabel* words = nullptr)
{
    QObject::connect(source, &Source::progress, bar, [bar, words](int permille, const QString& what) {
        showProgressLine(bar, words, permille, what);
    });
}

} // namespace ll::gui
