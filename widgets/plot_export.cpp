#include "plot_export.h"

#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QMessageBox>
#include <QPainter>
#include <QPdfWriter>
#include <QStandardPaths>
#include <QSvgGenerator>
#include <qcustomplot.h>

namespace ll::gui {

namespace {

enum class Format { Png, Svg, Pdf, Unknown };

Format formatOf(const QString& path)
{
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix == QLatin1String("png"))
        return Format::Png;
    if (suffix == QLatin1String("svg"))
        return Format::Svg;
    if (suffix == QLatin1String("pdf"))
        return Format::Pdf;
    return Format::Unknown;
}

bool failWith(QString* error, const QString& message)
{
    if (error)
        *error = message;
    return false;
}

// A writer can "succeed" and leave nothing behind (a full disk, a vanished folder).
bool checkWritten(const QString& path, QString* error)
{
    const QFileInfo info(path);
    if (!info.exists() || info.size() == 0)
        return failWith(error, QObject::tr("%1: the file could not be written").arg(path));
    return true;
}

// The SVG in the widget's own pixels: at the generator's default 72 dpi point-sized
// fonts would come out smaller relative to the plot than on screen.
void setupSvg(QSvgGenerator& svg, const QString& path, QSize size, int dpi, const QString& title)
{
    svg.setFileName(path);
    svg.setSize(size);
    svg.setViewBox(QRect(QPoint(0, 0), size));
    svg.setResolution(dpi);
    svg.setTitle(title);
    svg.setDescription(QObject::tr("Exported by LayerLab"));
}

// A PDF page exactly the widget's size, no margins, at the screen's resolution.
void setupPdf(QPdfWriter& pdf, QSize size, int dpi, const QString& title)
{
    pdf.setResolution(dpi);
    pdf.setPageSize(QPageSize(QSizeF(size) * 72.0 / dpi, QPageSize::Point, QString(), QPageSize::ExactMatch));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    pdf.setTitle(title);
    pdf.setCreator(QStringLiteral("LayerLab"));
}

} // namespace

QString exportFileFilter()
{
    return QObject::tr("PNG image (*.png);;SVG vector image (*.svg);;PDF document (*.pdf)");
}

bool exportPlot(QCustomPlot* plot, const QString& path, QString* error, int width, int height)
{
    if (!plot)
        return failWith(error, QObject::tr("no plot to export"));
    const int w = width > 0 ? width : plot->width();
    const int h = height > 0 ? height : plot->height();
    if (w <= 0 || h <= 0)
        return failWith(error, QObject::tr("%1: the plot has no size").arg(path));
    QFile::remove(path); // so that checkWritten() never sees an older file
    bool ok = false;
    switch (formatOf(path)) {
    case Format::Png:
        ok = plot->savePng(path, w, h);
        break;
    case Format::Pdf:
        ok = plot->savePdf(path, w, h, QCP::epAllowCosmetic, QStringLiteral("LayerLab"), plot->objectName());
        break;
    case Format::Svg: {
        QSvgGenerator svg;
        setupSvg(svg, path, QSize(w, h), plot->logicalDpiX(), plot->objectName());
        QCPPainter painter;
        if (painter.begin(&svg)) {
            // Vector mode: no pixel-alignment tweaks and no cached layers (raster) in the file.
            painter.setMode(QCPPainter::pmVectorized);
            painter.setMode(QCPPainter::pmNoCaching);
            plot->toPainter(&painter, w, h);
            ok = painter.end();
        }
        break;
    }
    case Format::Unknown:
        return failWith(error, QObject::tr("%1: choose a .png, .svg or .pdf file name").arg(path));
    }
    if (!ok)
        return failWith(error, QObject::tr("%1: the file could not be written").arg(path));
    return checkWritten(path, error);
}

bool exportWidget(QWidget* widget, const QString& path, QString* error)
{
    if (auto* plot = qobject_cast<QCustomPlot*>(widget))
        return exportPlot(plot, path, error);
    if (!widget)
        return failWith(error, QObject::tr("no plot to export"));
    const QSize size = widget->size();
    if (size.isEmpty())
        return failWith(error, QObject::tr("%1: the plot has no size").arg(path));
    QFile::remove(path);
    bool ok = false;
    switch (formatOf(path)) {
    case Format::Png:
        ok = widget->grab().save(path, "PNG");
        break;
    case Format::Svg: {
        QSvgGenerator svg;
        setupSvg(svg, path, size, widget->logicalDpiX(), widget->objectName());
        QPainter painter;
        if (painter.begin(&svg)) {
            widget->render(&painter);
            ok = painter.end();
        }
        break;
    }
    case Format::Pdf: {
        QPdfWriter pdf(path);
        setupPdf(pdf, size, widget->logicalDpiX(), widget->objectName());
        QPainter painter;
        if (painter.begin(&pdf)) {
            widget->render(&painter);
            ok = painter.end();
        }
        break;
    }
    case Format::Unknown:
        return failWith(error, QObject::tr("%1: choose a .png, .svg or .pdf file name").arg(path));
    }
    if (!ok)
        return failWith(error, QObject::tr("%1: the file could not be written").arg(path));
    return checkWritten(path, error);
}

void exportWithDialog(QWidget* plot)
{
    // The folder of the last export, for the session: plots of one study go together.
    static QString lastDir = QStandardPaths::writableLocation(QStandardPaths::PicturesLocation);
    if (lastDir.isEmpty() || !QDir(lastDir).exists())
        lastDir = QDir::homePath();
    const QString base = plot->objectName().isEmpty() ? QStringLiteral("plot") : plot->objectName();

    QFileDialog dialog(plot, QObject::tr("Export plot"), QDir(lastDir).filePath(base + QStringLiteral(".png")),
                       exportFileFilter());
    dialog.setObjectName(QStringLiteral("exportPlotDialog"));
    dialog.setAcceptMode(QFileDialog::AcceptSave);
    dialog.setFileMode(QFileDialog::AnyFile);
    dialog.setDefaultSuffix(QStringLiteral("png"));
    // A typed name without a suffix takes the chosen filter's.
    QObject::connect(&dialog, &QFileDialog::filterSelected, &dialog, [&dialog](const QString& filter) {
        dialog.setDefaultSuffix(filter.contains(QLatin1String("*.svg"))   ? QStringLiteral("svg")
                                : filter.contains(QLatin1String("*.pdf")) ? QStringLiteral("pdf")
                                                                          : QStringLiteral("png"));
    });
    if (dialog.exec() != QDialog::Accepted || dialog.selectedFiles().isEmpty())
        return;
    const QString path = dialog.selectedFiles().constFirst();
    lastDir = QFileInfo(path).absolutePath();
    QString error;
    if (!exportWidget(plot, path, &error))
        QMessageBox::warning(plot, QObject::tr("Export plot"), error);
}

void addExportAction(QMenu* menu, QWidget* plot)
{
    QAction* action = menu->addAction(QObject::tr("Export plot…"));
    action->setObjectName(QStringLiteral("exportPlotAction"));
    QObject::connect(action, &QAction::triggered, plot, [plot] { exportWithDialog(plot); });
}

void installExportMenu(QWidget* plot)
{
    if (plot->property("ll_exportMenu").toBool())
        return;
    plot->setProperty("ll_exportMenu", true);
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot](const QPoint& pos) {
        QMenu menu(plot);
        menu.setObjectName(QStringLiteral("plotContextMenu"));
        addExportAction(&menu, plot);
        menu.exec(plot->mapToGlobal(pos));
    });
}

void placeLegendInRow(QCustomPlot* plot, int row)
{
    QCPLegend* legend = plot->legend;
    legend->setVisible(true);
    legend->setFont(QFont(plot->font().family(), std::max(7, plot->font().pointSize() - 1)));
    legend->setBorderPen(Qt::NoPen);
    legend->setBrush(Qt::NoBrush);
    legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    legend->setColumnSpacing(16);
    plot->axisRect()->insetLayout()->take(legend);
    plot->plotLayout()->insertRow(row);
    auto* legendRow = new QCPLayoutGrid; // [spacer | legend | spacer]
    plot->plotLayout()->addElement(row, 0, legendRow);
    plot->plotLayout()->setRowStretchFactor(row, 0.001);
    legendRow->addElement(0, 0, new QCPLayoutElement(plot));
    legendRow->addElement(0, 1, legend);
    legendRow->addElement(0, 2, new QCPLayoutElement(plot));
    legendRow->setColumnStretchFactors({1.0, 0.001, 1.0});
    legend->setMargins(QMargins(0, 0, 0, 0));
}

void fitLegendInRow(QCustomPlot* plot)
{
    plot->legend->setSizeConstraintRect(QCPLayoutElement::scrOuterRect);
    plot->legend->setMaximumSize(plot->legend->minimumOuterSizeHint());
}

} // namespace ll::gui
