#pragma once
// Saving a plot to a file and the right-click "Export plot…" menu every plot
// carries. The format follows the file's suffix: .png (raster), .svg and .pdf
// (vector for QCustomPlot plots; a custom-painted widget is rendered into them).
#include <QString>

class QCustomPlot;
class QMenu;
class QWidget;

namespace ll::gui {

// Writes `plot` to `path` at `width` × `height` pixels (0 = its current size).
// Returns false and sets *error (one readable line) on an unknown suffix or a write failure.
bool exportPlot(QCustomPlot* plot, const QString& path, QString* error = nullptr, int width = 0, int height = 0);

// Any widget (the sparsity mask view): PNG through grab(), SVG / PDF through render().
// A QCustomPlot is handed to exportPlot().
bool exportWidget(QWidget* widget, const QString& path, QString* error = nullptr);

// "PNG image (*.png);;SVG vector image (*.svg);;PDF document (*.pdf)".
QString exportFileFilter();

// Asks for a file name (QFileDialog) and exports; a failure is shown in a message box.
void exportWithDialog(QWidget* plot);

// Gives `plot` a right-click menu with "Export plot…". Safe to call twice.
// Widgets that have their own context menu call addExportAction() instead.
void installExportMenu(QWidget* plot);
// Adds the "Export plot…" action (objectName "exportPlotAction") to `menu`.
void addExportAction(QMenu* menu, QWidget* plot);

// Moves the plot's legend into a row of its own at `row` of the plot layout,
// centred at its natural width, as the histogram has it: never over the data.
void placeLegendInRow(QCustomPlot* plot, int row);
// Sizes that legend to its current entries (call after adding or removing some).
void fitLegendInRow(QCustomPlot* plot);

} // namespace ll::gui
