#include "guided_tour.h"

#include "compare_panel.h"
#include "compression_panel.h"
#include "format.h"
#include "generate_panel.h"
#include "main_window.h"
#include "model_document.h"
#include "perplexity_panel.h"
#include "sensitivity_panel.h"

#include "analysis/model_size.h"
#include "model/model.h"

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
    ModelDocument* doc = w->document();
    std::vector<Step> steps;

    Step s = dock(&MainWindow::treeDock, "model");
    s.title = tr("1. Your model, layer by layer");
    s.text = tr("Every tensor of the checkpoint, grouped by block. Ctrl-click selects several, Ctrl+F filters "
                "(e.g. <i>attn</i>).");
    s.waitingFor = tr("Click a linear layer, for example an MLP's <i>down</i>.");
    s.await = [doc](GuidedTour* tour, QObject* context) {
        connect(doc, &ModelDocument::currentTensorChanged, context, [doc, tour](int index) {
            const auto model = doc->model();
            if (!model || index < 0 || static_cast<size_t>(index) >= model->tensors.size())
                return;
            const LogicalTensor& t = model->tensors[static_cast<size_t>(index)];
            if (!isLinear(t.role))
                return;
            tour->actionDone(tr("You picked <b>%1</b>: %2, %3 weights.")
                                 .arg(QString::fromStdString(t.logicalName).toHtmlEscaped(), formatShape(t.shape),
                                      formatExact(t.elements())));
        });
    };
    steps.push_back(s);

    s = dock(&MainWindow::inspectorDock, "inspector");
    s.title = tr("2. Look before you cut");
    s.text = tr("The inspector shows the selected tensor: statistics, the value histogram with the outliers beyond "
                "3σ in red, and the |W| map. Heavy tails are what makes a layer hard to quantize.");
    steps.push_back(s);

    CompressionPanel* compress = w->compressionPanel();
    s = dock(&MainWindow::compressDock, "compress");
    s.title = tr("3. Preview a compression");
    s.text = tr("Pick a method — quantize, prune or factorize — and its settings (RTN 4-bit is a good start).");
    s.waitingFor = tr("Press <b>Preview</b>.");
    s.await = [compress](GuidedTour* tour, QObject* context) {
        connect(compress, &CompressionPanel::previewReady, context, [compress, tour] {
            tour->actionDone(tr("The preview: %1 The histogram overlays the layer before and after; the error "
                                "curve shows what other settings would cost.")
                                 .arg(compress->statusText().toHtmlEscaped()));
        });
    };
    steps.push_back(s);

    s = dock(&MainWindow::compressDock, "compress");
    s.title = tr("4. Apply it");
    s.text = tr("Apply changes the model as one step you can undo (Ctrl+Z). Choose <i>All linear layers</i> under "
                "<i>Apply to</i> to compress the whole model.");
    s.waitingFor = tr("Press <b>Apply</b>.");
    s.await = [doc, compress](GuidedTour* tour, QObject* context) {
        connect(compress, &CompressionPanel::applied, context, [doc, tour](bool ok) {
            if (!ok)
                return;
            const CompressionState& st = doc->state();
            tour->actionDone(tr("Applied: <b>%1</b>. The model now takes %2 (it was %3). The tree marks every "
                                "compressed layer.")
                                 .arg(QString::fromStdString(st.steps.back().badge()).toHtmlEscaped(),
                                      formatBytes(modelSize(st).bytes),
                                      formatBytes(modelSize(CompressionState::initial(st.source)).bytes)));
        });
    };
    steps.push_back(s);

    PerplexityPanel* evaluate = w->perplexityPanel();
    s = dock(&MainWindow::evaluateDock, "evaluate");
    s.title = tr("5. What did it cost?");
    s.text = tr("Perplexity measures how surprised the model is by a text: lower is better; a few percent more is "
                "usually fine.");
    s.waitingFor = tr("Press <b>Run</b>.");
    s.await = [evaluate](GuidedTour* tour, QObject* context) {
        connect(evaluate, &PerplexityPanel::finished, context, [evaluate, tour] {
            if (evaluate->state() == PerplexityPanel::State::Done)
                tour->actionDone(tr("Perplexity of the compressed model: <b>%1</b>. Run it again after Undo to see "
                                    "the original's.")
                                     .arg(evaluate->resultText().toHtmlEscaped()));
        });
    };
    steps.push_back(s);

    SensitivityPanel* sensitivity = w->sensitivityPanel();
    s = dock(&MainWindow::sensitivityDock, "sensitivity");
    s.title = tr("6. Which layers mind?");
    s.text = tr("Sensitivity compresses each layer alone and measures the damage: the layers at the top deserve more "
                "bits. By default it measures against the original model.");
    s.waitingFor = tr("Press <b>Measure</b>.");
    s.await = [sensitivity](GuidedTour* tour, QObject* context) {
        connect(sensitivity, &SensitivityPanel::runFinished, context, [sensitivity, tour](bool ok) {
            if (!ok || !sensitivity->result() || sensitivity->result()->rows.empty())
                return;
            const auto& rows = sensitivity->result()->rows;
            const auto worst = std::max_element(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
                return a.deltaPpl < b.deltaPpl;
            });
            tour->actionDone(tr("The most sensitive of %1 layers is <b>%2</b>: perplexity +%3 when it alone is "
                                "compressed.")
                                 .arg(rows.size())
                                 .arg(QString::fromStdString(worst->name).toHtmlEscaped())
                                 .arg(worst->deltaPpl, 0, 'f', 3));
        });
    };
    steps.push_back(s);

    ComparePanel* compare = w->comparePanel();
    s = dock(&MainWindow::compareDock, "compare");
    s.title = tr("7. Side by side with the original");
    s.text = tr("Compare scores the original and the compressed model on the same windows: perplexity, how far "
                "their predictions drift (KL), how often they agree on the next token, and the size.");
    s.waitingFor = tr("Press <b>Compare with the original</b>.");
    s.await = [compare](GuidedTour* tour, QObject* context) {
        connect(compare, &ComparePanel::comparisonReady, context, [compare, tour](bool ok) {
            if (!ok)
                return;
            // The comparison's first rows, caption and value on one line each.
            const QStringList lines = compare->comparison().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
            QStringList rows;
            for (int i = 0; i + 1 < lines.size() && rows.size() < 3; i += 2)
                rows << lines[i] + QLatin1Char(' ') + lines[i + 1];
            tour->actionDone(tr("Measured: %1.").arg(rows.join(QStringLiteral("; ")).toHtmlEscaped()));
        });
    };
    steps.push_back(s);

    GeneratePanel* generate = w->generatePanel();
    s = dock(&MainWindow::generateDock, "generate");
    s.title = tr("8. Hear the difference");
    s.text = tr("Generate writes a continuation of your prompt with the original model and with the compressed "
                "one, from the same seed, side by side.");
    s.waitingFor = tr("Press <b>Generate</b>.");
    s.await = [generate](GuidedTour* tour, QObject* context) {
        connect(generate, &GeneratePanel::finished, context, [generate, tour] {
            if (generate->state() != GeneratePanel::State::Done)
                return;
            const size_t same = [&] {
                const auto& a = generate->originalIds();
                const auto& b = generate->generatedIds();
                size_t n = 0;
                while (n < a.size() && n < b.size() && a[n] == b[n])
                    ++n;
                return n;
            }();
            tour->actionDone(generate->besideOriginal()
                                 ? tr("Both wrote %1 tokens; they agree on the first %2.")
                                       .arg(generate->generatedIds().size())
                                       .arg(same)
                                 : tr("The model wrote %1 tokens. Apply a step first to see the original beside it.")
                                       .arg(generate->generatedIds().size()));
        });
    };
    steps.push_back(s);

    s = Step{};
    s.title = tr("9. Take it with you");
    s.text = tr("<b>Make a Smaller Model</b> on the toolbar writes a GGUF of the size you pick and checks it; "
                "<b>File › Export…</b> (Ctrl+Shift+E) writes GGUF or a Hugging Face folder with a report and the "
                "recipe. <b>File › Save Session…</b> keeps your work.");
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
    tour->results_.clear(); // a new run asks for every action again
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
    delete stepContext_; // ends the previous step's connections
    stepContext_ = new QObject(this);
    results_.resize(steps_.size());
    const QString& done = results_[static_cast<size_t>(index)];
    waiting_ = s.await && done.isEmpty(); // a step done before (the user went Back) keeps its result
    if (waiting_)
        s.await(this, stepContext_);
    if (s.prepare)
        s.prepare();
    if (QWidget* t = currentTarget())
        t->installEventFilter(this); // follow the dock when it is resized or moved
    counter_->setText(tr("Compress your first model · step %1 of %2").arg(index + 1).arg(count()));
    title_->setText(s.title);
    text_->setText(!done.isEmpty()         ? s.text + QStringLiteral("<p style='color:#1f5c1f'>%1</p>").arg(done)
                   : s.waitingFor.isEmpty() ? s.text
                                            : s.text + QStringLiteral("<p style='color:#8a4b00'><b>%1</b> %2</p>")
                                                           .arg(tr("Your turn:"), s.waitingFor));
    next_->setEnabled(!waiting_);
    next_->setToolTip(waiting_ ? tr("Do what the bubble asks first") : QString());
    back_->setEnabled(index > 0);
    next_->setText(index + 1 == count() ? tr("Done") : tr("Next"));
    show();
    place();
    // Raising a tabbed dock settles its geometry on the next layout pass.
    QTimer::singleShot(0, this, &GuidedTour::place);
    emit stepChanged(index);
}

void GuidedTour::actionDone(const QString& result)
{
    if (current_ < 0 || !waiting_)
        return;
    waiting_ = false;
    const Step& s = steps_[static_cast<size_t>(current_)];
    results_[static_cast<size_t>(current_)] = result;
    text_->setText(s.text + QStringLiteral("<p style='color:#1f5c1f'>%1</p>").arg(result));
    next_->setEnabled(true);
    next_->setToolTip(QString());
    next_->setFocus();
    place();
    emit actionCompleted(current_);
}

QString GuidedTour::bubbleText() const
{
    return text_->text();
}

void GuidedTour::next()
{
    if (waiting_)
        return;
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
    delete stepContext_;
    stepContext_ = nullptr;
    waiting_ = false;
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
