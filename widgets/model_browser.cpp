#include "model_browser.h"

#include "model_document.h"
#include "model_tree_model.h"
#include "tensor_filter.h"

#include <QCheckBox>
#include <QClipboard>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QTreeView>
#include <QVBoxLayout>

#include <algorithm>

namespace ll::gui {

ModelBrowser::ModelBrowser(ModelDocument* document, QWidget* parent)
    : QWidget(parent), document_(document)
{
    tree_ = new ModelTreeModel(document, this);
    proxy_ = new TensorFilterProxy(this);
    proxy_->setSourceModel(tree_);

    filterEdit_ = new QLineEdit(this);
    filterEdit_->setObjectName(QStringLiteral("tensorFilter"));
    filterEdit_->setPlaceholderText(tr("Filter tensors: down, *attn.q*, /blocks\\.[0-3]\\..*/"));
    filterEdit_->setClearButtonEnabled(true);
    filterHelp_ = tr("Matches logical names (blocks.0.mlp.down.weight) and stored names "
                     "(model.layers.0.mlp.down_proj.weight).\n"
                     "Plain text: substring. * ? [ ]: glob over the whole name. /…/: regular expression.");
    filterEdit_->setToolTip(filterHelp_);
    regexBox_ = new QCheckBox(tr("Regex"), this);
    regexBox_->setToolTip(tr("Read the filter as a regular expression"));
    matchLabel_ = new QLabel(this);
    matchLabel_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("999 / 999")));
    matchLabel_->setAlignment(Qt::AlignRight | Qt::AlignVCenter);

    view_ = new QTreeView(this);
    view_->setObjectName(QStringLiteral("modelTree"));
    view_->setModel(proxy_);
    view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    view_->setUniformRowHeights(true);
    view_->setAlternatingRowColors(true);
    view_->setAllColumnsShowFocus(true);
    QHeaderView* header = view_->header();
    header->setStretchLastSection(false);
    header->setSectionResizeMode(ModelTreeModel::NameColumn, QHeaderView::Stretch);
    for (int c = ModelTreeModel::ShapeColumn; c < ModelTreeModel::ColumnCount; ++c)
        header->setSectionResizeMode(c, QHeaderView::ResizeToContents);
    header->setMinimumSectionSize(40);
    // The compression columns appear once a step is applied: until then they only take room from the names.
    auto showCompressionColumns = [this] {
        const bool edited = !document_->state().layers.empty();
        for (int c : {ModelTreeModel::CompressionColumn, ModelTreeModel::BitsColumn, ModelTreeModel::ErrorColumn})
            view_->header()->setSectionHidden(c, !edited);
        // With them, the shape, dtype and size columns matter less than what was
        // done (the inspector shows them for the current tensor); keeping them
        // squeezes the names out of a 480-pixel tree, or the new columns off it.
        for (int c : {ModelTreeModel::ShapeColumn, ModelTreeModel::DTypeColumn, ModelTreeModel::SizeColumn})
            view_->header()->setSectionHidden(c, edited);
    };
    showCompressionColumns();
    connect(document_, &ModelDocument::modelEdited, this, showCompressionColumns);
    connect(document_, &ModelDocument::modelChanged, this, showCompressionColumns);

    auto* filterRow = new QHBoxLayout;
    filterRow->setContentsMargins(0, 0, 0, 0);
    filterRow->addWidget(filterEdit_, 1);
    filterRow->addWidget(regexBox_);
    filterRow->addWidget(matchLabel_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addLayout(filterRow);
    layout->addWidget(view_, 1);

    connect(filterEdit_, &QLineEdit::textChanged, this, &ModelBrowser::applyFilter);
    connect(regexBox_, &QCheckBox::toggled, this, &ModelBrowser::applyFilter);
    connect(view_->selectionModel(), &QItemSelectionModel::currentChanged, this, &ModelBrowser::syncCurrentFromView);
    connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &ModelBrowser::syncCurrentFromView);
    connect(document_, &ModelDocument::modelChanged, this, [this] {
        applyFilter();
    });
    connect(document_, &ModelDocument::currentTensorChanged, this, &ModelBrowser::showCurrentTensor);
    view_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(view_, &QTreeView::customContextMenuRequested, this, [this](const QPoint& pos) {
        if (QMenu* menu = contextMenuFor(view_->indexAt(pos))) {
            menu->setAttribute(Qt::WA_DeleteOnClose);
            menu->popup(view_->viewport()->mapToGlobal(pos));
        }
    });
    applyFilter();
}

QMenu* ModelBrowser::contextMenuFor(const QModelIndex& index)
{
    const auto model = document_->model();
    const int tensor = index.isValid() ? index.data(ModelTreeModel::TensorIndexRole).toInt() : -1;
    if (!model || tensor < 0 || tensor >= static_cast<int>(model->tensors.size()))
        return nullptr;
    // The menu acts on what is selected; a click outside the selection selects the clicked row.
    QItemSelectionModel* sel = view_->selectionModel();
    if (!sel->isRowSelected(index.row(), index.parent()))
        sel->setCurrentIndex(index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    const LogicalTensor& t = model->tensors[static_cast<size_t>(tensor)];
    const auto isBlockLinear = [](const LogicalTensor& x) { return x.block >= 0 && isLinear(x.role) && !x.isBias; };
    std::vector<std::string> linears;
    for (int i : selectedTensors())
        if (isBlockLinear(model->tensors[static_cast<size_t>(i)]))
            linears.push_back(model->tensors[static_cast<size_t>(i)].logicalName);
    const QString name = QString::fromStdString(t.logicalName);

    auto* menu = new QMenu(view_);
    QAction* inspect = menu->addAction(tr("Inspect %1").arg(name), this, [this, tensor] {
        document_->setCurrentTensor(tensor);
        emit inspectRequested(tensor);
    });
    inspect->setObjectName(QStringLiteral("treeInspect"));
    QAction* compress = menu->addAction(linears.size() > 1 ? tr("Compress the %1 selected layers…").arg(linears.size())
                                                           : tr("Compress this layer…"),
                                        this, [this, linears] { emit compressRequested(linears); });
    compress->setObjectName(QStringLiteral("treeCompress"));
    compress->setEnabled(!linears.empty());
    QAction* sensitivity = menu->addAction(tr("Sensitivity of this layer"), this,
                                           [this, n = t.logicalName] { emit sensitivityRequested(n); });
    sensitivity->setObjectName(QStringLiteral("treeSensitivity"));
    sensitivity->setEnabled(isBlockLinear(t));
    if (!isBlockLinear(t)) {
        const QString why = tr("Only the linear layers inside the blocks (q, k, v, o, gate, up, down) are compressed.");
        compress->setToolTip(why);
        sensitivity->setToolTip(why);
        menu->setToolTipsVisible(true);
    }
    menu->addSeparator();
    QAction* copy = menu->addAction(tr("Copy name"), this, [name] { QGuiApplication::clipboard()->setText(name); });
    copy->setObjectName(QStringLiteral("treeCopyName"));
    const QString stored = QString::fromStdString(model->stored[t.stored].name);
    if (stored != name) {
        QAction* copyStored = menu->addAction(tr("Copy the file's name (%1)").arg(stored), this,
                                              [stored] { QGuiApplication::clipboard()->setText(stored); });
        copyStored->setObjectName(QStringLiteral("treeCopyStoredName"));
    }
    return menu;
}

void ModelBrowser::setFilterText(const QString& text)
{
    filterEdit_->setText(text);
}

void ModelBrowser::applyFilter()
{
    proxy_->setPattern(filterEdit_->text(), regexBox_->isChecked());
    const TensorNameFilter& f = proxy_->filter();
    filterEdit_->setStyleSheet(f.isValid() ? QString() : QStringLiteral("QLineEdit { background: #fde2e1; }"));
    filterEdit_->setToolTip(f.isValid() ? filterHelp_
                                        : tr("Invalid regular expression: %1\n\n%2").arg(f.error(), filterHelp_));
    const int total = document_->hasModel() ? static_cast<int>(document_->model()->tensors.size()) : 0;
    if (f.isEmpty()) {
        matchLabel_->setText(QString::number(total));
        matchLabel_->setToolTip(tr("%1 tensors").arg(total));
        expandDefault();
    } else {
        const int shown = proxy_->matchingTensorCount();
        matchLabel_->setText(QStringLiteral("%1 / %2").arg(shown).arg(total));
        matchLabel_->setToolTip(tr("%1 of %2 tensors match").arg(shown).arg(total));
        view_->expandAll();
    }
    showCurrentTensor(document_->currentTensor());
}

// Model and blocks open, block contents closed: the structure at a glance.
void ModelBrowser::expandDefault()
{
    view_->collapseAll();
    for (int r = 0; r < proxy_->rowCount(); ++r)
        view_->expand(proxy_->index(r, 0));
}

std::vector<int> ModelBrowser::selectedTensors() const
{
    std::vector<int> out;
    for (const QModelIndex& i : view_->selectionModel()->selectedRows()) {
        const int t = i.data(ModelTreeModel::TensorIndexRole).toInt();
        if (t >= 0)
            out.push_back(t);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The inspector follows the view: the current row when it is a selected
// tensor, otherwise the first selected tensor.
void ModelBrowser::syncCurrentFromView()
{
    if (syncing_)
        return;
    const QItemSelectionModel* sel = view_->selectionModel();
    const QModelIndex current = sel->currentIndex();
    int tensor = -1;
    if (current.isValid() && sel->isRowSelected(current.row(), current.parent()))
        tensor = current.data(ModelTreeModel::TensorIndexRole).toInt();
    if (tensor < 0) {
        const std::vector<int> selected = selectedTensors();
        if (!selected.empty())
            tensor = selected.front();
    }
    if (tensor >= 0)
        document_->setCurrentTensor(tensor);
}

void ModelBrowser::showCurrentTensor(int index)
{
    const QModelIndex source = tree_->indexOfTensor(index);
    const QModelIndex row = proxy_->mapFromSource(source);
    if (!row.isValid())
        return;
    QItemSelectionModel* sel = view_->selectionModel();
    if (sel->currentIndex() == row && sel->isRowSelected(row.row(), row.parent()))
        return;
    syncing_ = true;
    sel->setCurrentIndex(row, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    syncing_ = false;
    view_->scrollTo(row);
}

} // namespace ll::gui
