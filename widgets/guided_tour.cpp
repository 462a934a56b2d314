#include "guided_tour.h"

#include "main_window.h"

#include <QDockWidget>
#include <QEvent>
#include <QGraphicsDropShadowEffect>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenuBar>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>

namespace ll::gui {

namespace {
constexpr int kBubbleWidth = 340;
constexpr int kGap = 14;

QRect fileMenuArea(MainWindow* window)
{
    QMenuBar* bar = window->menuBar();
    for (QAction* a : bar->actions())
        if (a->menu() && a->text().remove(QLatin1Char('&')) == QLatin1String("File"))
            return bar->actionGeometry(a);
    return {};
}
} // namespace

std::vector<GuidedTour::Step> GuidedTour::compressYourFirstModel(MainWindow* w)
{
    auto dock = [w](QDockWidget* (MainWindow::*get)() const, const char* name) {
        Step s;
        s.target = [w, get] { return static_cast<QWidget*>((w->*get)()); };
        s.prepare = [w, name] { w->raiseDock(QLatin1String(name)); };
        return s;
    };
    std::vector<Step> steps;
    Step s = dock(&MainWindow::treeDock, "model");
    s.title = tr("1. Your model, layer by layer");
    s.text = tr("Every tensor of the checkpoint, grouped by block. Select the linear layers you want to "
                "compress (Ctrl-click for several, Ctrl+F to filter, e.g. <i>attn</i>).");
    steps.push_back(s);
    s = dock(&MainWindow::inspectorDock, "inspector");
    s.title = tr("2. Look before you cut");
    s.text = tr("The inspector shows the selected tensor: shape, statistics, the value histogram and outliers. "
                "Heavy tails are what makes a layer hard to quantize.");
    steps.push_back(s);
    s = dock(&MainWindow::compressDock, "compress");
    s.title = tr("3. Compress");
    s.text = tr("Pick a method — quantize (GPTQ 4-bit is a good start), prune or factorize — press "
                "<b>Preview</b> to see the error, then <b>Apply</b>. Every step can be undone (Ctrl+Z).");
    steps.push_back(s);
    s = dock(&MainWindow::recipeDock, "recipe");
    s.title = tr("4. The recipe");
    s.text = tr("The steps applied so far, in order. Save them as YAML and replay them on any machine with "
                "<tt>layerlab-cli apply</tt>, or load an example recipe.");
    steps.push_back(s);
    s = dock(&MainWindow::evaluateDock, "evaluate");
    s.title = tr("5. What did it cost?");
    s.text = tr("Run a perplexity evaluation on the compressed model and compare it with the original: "
                "lower is better, a few percent more is usually fine.");
    steps.push_back(s);
    s = Step{};
    s.title = tr("6. Take it with you");
    s.text = tr("<b>File › Export…</b> (Ctrl+Shift+E) writes the compressed model as GGUF or a Hugging Face "
                "folder, with a report and the recipe. <b>File › Save Session…</b> keeps your work.");
    s.target = [w] { return static_cast<QWidget*>(w->menuBar()); };
    s.area = [w] { return fileMenuArea(w); };
    steps.push_back(s);
    return steps;
}

GuidedTour::GuidedTour(MainWindow* window)
    : QFrame(window), window_(window), steps_(compressYourFirstModel(window)), outline_(new QFrame(window))
{
    setObjectName(QStringLiteral("guidedTour"));
    // The outline only draws: clicks go through to the dock under it.
    outline_->setObjectName(QStringLiteral("guidedTourOutline"));
    outline_->setAttribute(Qt::WA_TransparentForMouseEvents);
    outline_->setStyleSheet(QStringLiteral(
        "#guidedTourOutline { border: 3px solid #f08c00; border-radius: 6px; background: rgba(240,140,0,18); }"));
    outline_->hide();

    setStyleSheet(QStringLiteral("#guidedTour { background: #fffdf4; border: 1px solid #e0a800; border-radius: 8px; }"
                                 "#guidedTour QLabel { background: transparent; color: #222; }"));
    auto* shadow = new QGraphicsDropShadowEffect(this);
    shadow->setBlurRadius(18);
    shadow->setOffset(0, 3);
    shadow->setColor(QColor(0, 0, 0, 90));
    setGraphicsEffect(shadow);

    counter_ = new QLabel(this);
    counter_->setStyleSheet(QStringLiteral("color: #8a6d00; font-size: 11px;"));
    title_ = new QLabel(this);
    QFont f = title_->font();
    f.setBold(true);
    f.setPointSizeF(f.pointSizeF() * 1.15);
    title_->setFont(f);
    title_->setWordWrap(true);
    text_ = new QLabel(this);
    text_->setWordWrap(true);
    text_->setTextFormat(Qt::RichText);
    back_ = new QPushButton(tr("Back"), this);
    next_ = new QPushButton(tr("Next"), this);
    next_->setDefault(true);
    close_ = new QPushButton(tr("Close"), this);
    connect(back_, &QPushButton::clicked, this, &GuidedTour::back);
    connect(next_, &QPushButton::clicked, this, &GuidedTour::next);
    connect(close_, &QPushButton::clicked, this, &GuidedTour::finish);

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(close_);
    buttons->addStretch(1);
    buttons->addWidget(back_);
    buttons->addWidget(next_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(16, 12, 16, 12);
    layout->setSpacing(8);
    layout->addWidget(counter_);
    layout->addWidget(title_);
    layout->addWidget(text_);
    layout->addLayout(buttons);
    setFixedWidth(kBubbleWidth);
    hide();
    window_->installEventFilter(this);
}

GuidedTour* GuidedTour::start(MainWindow* window, int step)
{
    auto* tour = window->findChild<GuidedTour*>(QString(), Qt::FindDirectChildrenOnly);
    if (!tour)
        tour = new GuidedTour(window);
    tour->showStep(std::clamp(step, 0, tour->count() - 1));
    return tour;
}

void GuidedTour::showStep(int index)
{
    if (index < 0 || index >= count())
        return;
    if (QWidget* old = currentTarget())
        old->removeEventFilter(this);
    current_ = index;
    const Step& s = steps_[static_cast<size_t>(index)];
    if (s.prepare)
        s.prepare();
    if (QWidget* t = currentTarget())
        t->installEventFilter(this); // follow the dock when it is resized or moved
    counter_->setText(tr("Compress your first model · step %1 of %2").arg(index + 1).arg(count()));
    title_->setText(s.title);
    text_->setText(s.text);
    back_->setEnabled(index > 0);
    next_->setText(index + 1 == count() ? tr("Done") : tr("Next"));
    show();
    place();
    // Raising a tabbed dock settles its geometry on the next layout pass.
    QTimer::singleShot(0, this, &GuidedTour::place);
    emit stepChanged(index);
}

void GuidedTour::next()
{
    if (current_ + 1 >= count())
        finish();
    else
        showStep(current_ + 1);
}

void GuidedTour::back()
{
    if (current_ > 0)
        showStep(current_ - 1);
}

void GuidedTour::finish()
{
    if (QWidget* t = currentTarget())
        t->removeEventFilter(this);
    current_ = -1;
    outline_->hide();
    hide();
    emit finished();
}

QWidget* GuidedTour::currentTarget() const
{
    if (current_ < 0)
        return nullptr;
    const Step& s = steps_[static_cast<size_t>(current_)];
    return s.target ? s.target() : nullptr;
}

QRect GuidedTour::highlightRect() const
{
    QWidget* t = currentTarget();
    if (!t)
        return {};
    const Step& s = steps_[static_cast<size_t>(current_)];
    QRect area = s.area ? s.area() : QRect();
    if (area.isEmpty())
        area = t->rect();
    return QRect(t->mapTo(window_, area.topLeft()), area.size());
}

void GuidedTour::place()
{
    if (current_ < 0)
        return;
    const QRect target = highlightRect();
    outline_->setGeometry(target.adjusted(-3, -3, 3, 3));
    outline_->setVisible(!target.isEmpty());
    outline_->raise();

    adjustSize();
    const QSize size(kBubbleWidth, heightForWidth(kBubbleWidth) > 0 ? heightForWidth(kBubbleWidth) : sizeHint().height());
    const QRect bounds = window_->rect().adjusted(8, 8, -8, -8);
    // Beside the target where there is room (right, left, below, above); else inside it.
    const int y = std::clamp(target.top() + 24, bounds.top(), bounds.bottom() - size.height());
    const int x = std::clamp(target.left() + 24, bounds.left(), bounds.right() - size.width());
    const QRect candidates[] = {
        QRect(QPoint(target.right() + kGap, y), size),
        QRect(QPoint(target.left() - kGap - size.width(), y), size),
        QRect(QPoint(x, target.bottom() + kGap), size),
        QRect(QPoint(x, target.top() - kGap - size.height()), size),
    };
    QRect chosen;
    for (const QRect& c : candidates)
        if (bounds.contains(c)) {
            chosen = c;
            break;
        }
    if (chosen.isNull()) {
        const QRect inside = target.intersected(bounds);
        chosen = QRect(QPoint(inside.center().x() - size.width() / 2, inside.center().y() - size.height() / 2), size);
        chosen.moveLeft(std::clamp(chosen.left(), bounds.left(), bounds.right() - size.width()));
        chosen.moveTop(std::clamp(chosen.top(), bounds.top(), bounds.bottom() - size.height()));
    }
    setGeometry(chosen);
    raise();
}

bool GuidedTour::eventFilter(QObject* watched, QEvent* event)
{
    if (current_ >= 0 && (event->type() == QEvent::Resize || event->type() == QEvent::Move))
        QTimer::singleShot(0, this, &GuidedTour::place);
    return QFrame::eventFilter(watched, event);
}

} // namespace ll::gui
