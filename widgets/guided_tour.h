#pragma once
// Help › Guided tour, "Compress your first model": a few steps, each raising
// a dock of the main window, outlining it and explaining it in a floating
// bubble (Back / Next / Close) — for classroom demos. Steps that ask for an
// action (select a layer, Preview, Apply, Evaluate, Sensitivity, Compare,
// Generate beside the original) wait for it, then explain what came out. Bubble and outline are
// child widgets of the main window, so MainWindow::grab() shows them.
#include <QFrame>
#include <QPointer>
#include <QRect>
#include <QString>

#include <functional>
#include <vector>

class QLabel;
class QPushButton;

namespace ll::gui {

class MainWindow;

class GuidedTour : public QFrame {
    Q_OBJECT
public:
    struct Step {
        QString title;
        QString text;
        std::function<QWidget*()> target;   // shown and raised by prepare
        std::function<QRect()> area;        // outlined part of target (its coordinates); empty: all of it
        std::function<void()> prepare;      // raise the dock, …
        // An interactive step: what the user is asked to do. `await` connects
        // the signal that says it happened (with `context` as receiver, so the
        // connection ends with the step) and then calls tour->actionDone with
        // a sentence about the result that actually appeared. Next stays
        // disabled until then.
        QString waitingFor;                 // "Select a linear layer in the tree."
        std::function<void(GuidedTour* tour, QObject* context)> await;
    };

    explicit GuidedTour(MainWindow* window);
    // The window's tour (created once), started at `step`.
    static GuidedTour* start(MainWindow* window, int step = 0);
    static std::vector<Step> compressYourFirstModel(MainWindow* window);

    int count() const { return static_cast<int>(steps_.size()); }
    int current() const { return current_; }
    const Step& step(int i) const { return steps_[static_cast<size_t>(i)]; }
    void showStep(int index);
    void next();
    void back();
    void finish();
    // The awaited action of the current step happened: `result` is shown and Next enabled.
    void actionDone(const QString& result);
    // The current step waits for the user's action (Next is disabled).
    bool isWaiting() const { return waiting_; }
    QString bubbleText() const;

    QWidget* currentTarget() const;
    // The outlined rectangle, in the main window's coordinates.
    QRect highlightRect() const;
    QPushButton* nextButton() const { return next_; }
    QPushButton* backButton() const { return back_; }
    QPushButton* closeButton() const { return close_; }

signals:
    void stepChanged(int index);
    void actionCompleted(int index);
    void finished();

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void place();

    MainWindow* window_;
    std::vector<Step> steps_;
    int current_ = -1;
    bool waiting_ = false;
    std::vector<QString> results_;      // per step: what its action gave (empty: not done yet)
    QObject* stepContext_ = nullptr;    // receiver of the current step's connections
    QWidget* outline_;
    QLabel* counter_;
    QLabel* title_;
    QLabel* text_;
    QPushButton* back_;
    QPushButton* next_;
    QPushButton* close_;
};

} // namespace ll::gui
