#pragma once
// The model tree with its filter line: what the left dock shows.
#include <QWidget>

#include <string>
#include <vector>

class QCheckBox;
class QLabel;
class QLineEdit;
class QMenu;
class QModelIndex;
class QTreeView;

namespace ll::gui {

class ModelDocument;
class ModelTreeModel;
class TensorFilterProxy;

class ModelBrowser : public QWidget {
    Q_OBJECT
public:
    explicit ModelBrowser(ModelDocument* document, QWidget* parent = nullptr);

    QTreeView* view() const { return view_; }
    ModelTreeModel* treeModel() const { return tree_; }
    TensorFilterProxy* proxy() const { return proxy_; }
    QLineEdit* filterEdit() const { return filterEdit_; }
    QCheckBox* regexBox() const { return regexBox_; }

    void setFilterText(const QString& text);
    // Tensor indices of the selected rows (groups contribute nothing), in tree order.
    std::vector<int> selectedTensors() const;

    // The context menu of a row of the view (a proxy index): Inspect, Compress
    // the selected layers, Sensitivity of this layer, Copy name. A right click
    // on a row outside the selection selects that row first. Caller owns it.
    QMenu* contextMenuFor(const QModelIndex& index);

signals:
    void inspectRequested(int tensor);
    void compressRequested(const std::vector<std::string>& logicalNames); // block linears
    void sensitivityRequested(const std::string& logicalName);

private:
    void applyFilter();
    void expandDefault();
    void syncCurrentFromView();
    void showCurrentTensor(int index);

    ModelDocument* document_;
    ModelTreeModel* tree_;
    TensorFilterProxy* proxy_;
    QLineEdit* filterEdit_;
    QCheckBox* regexBox_;
    QLabel* matchLabel_;
    QTreeView* view_;
    QString filterHelp_;
    bool syncing_ = false;
};

} // namespace ll::gui
