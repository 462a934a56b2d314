#pragma once
// Small helpers shared by the panels.
#include <QColor>
#include <QLabel>
#include <QPalette>
#include <QProgressBar>
#include <QSplitter>
#include <QVBoxLayout>

namespace ll::gui {

// Secondary text (captions, hints): between the text and the background colour, in any theme.
inline void setSecondaryText(QWidget* label)
{
    QPalette p = label->palette();
    const QColor text = p.color(QPalette::WindowText), back = p.color(QPalette::Window);
    p.setColor(QPalette::WindowText, QColor((2 * text.red() + back.red()) / 3, (2 * text.green() + back.green()) / 3,
                                            (2 * text.blue() + back.blue()) / 3));
    label->setPalette(p);
}

// The slim progress bar under a panel's buttons (0..1000, no text).
inline QProgressBar* makeSlimProgressBar(QWidget* parent)
{
    auto* bar = new QProgressBar(parent);
    bar->setRange(0, 1000);
    bar->setTextVisible(false);
    bar->setMaximumHeight(10);
    return bar;
}

// The layout of the Compress and Sensitivity panels: the controls on the left,
// on the right a header line above the result tabs; a splitter between them.
inline void layOutControlsBesideResults(QWidget* panel, QWidget* controls, QWidget* header, QWidget* results,
                                        int controlsWidth, int resultsWidth)
{
    auto* right = new QWidget(panel);
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    rightLayout->addWidget(header);
    rightLayout->addWidget(results, 1);

    auto* split = new QSplitter(Qt::Horizontal, panel);
    split->addWidget(controls);
    split->addWidget(right);
    split->setStretchFactor(0, 0);
    split->setStretchFactor(1, 1);
    split->setSizes({controlsWidth, resultsWidth});
    auto* layout = new QVBoxLayout(panel);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addWidget(split);
}

} // namespace ll::gui
