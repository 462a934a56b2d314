#pragma once
// The model as a tree, the same for every family: Model › Embedding,
// Block i › Attention {q, k, v, o} / MLP {gate, up, down} / norms,
// final norm, LM head. Built from LogicalTensor roles and blocks, never from
// file names. Columns: name, shape, dtype, params, size, and what compression
// did to the tensor: its badges ("GPTQ 4b g128 + wanda 50 % sparse"), bits
// per weight and relative weight error against the source model.
#include "model/model.h"

#include <QAbstractItemModel>

#include <memory>
#include <vector>

namespace ll::gui {

class ModelDocument;

class ModelTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column {
        NameColumn, ShapeColumn, DTypeColumn, ParamsColumn, SizeColumn,
        CompressionColumn, BitsColumn, ErrorColumn, ColumnCount
    };
    enum class NodeKind { Model, Block, Group, Tensor };
    enum DataRole {
        TensorIndexRole = Qt::UserRole + 1, // int, index into Model::tensors; -1 for groups
        LogicalNameRole,                     // QString, tensors only
        StoredNameRole,                      // QString, tensors only
        NodeKindRole,                        // int (NodeKind)
        ParamsRole,                          // qint64
        BytesRole,                           // quint64
        BadgesRole,                          // QStringList, tensors only (empty: untouched)
    };

    explicit ModelTreeModel(ModelDocument* document, QObject* parent = nullptr);
    ~ModelTreeModel() override;

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;

    // The row of a tensor (column 0), invalid when the tensor is not in the tree.
    QModelIndex indexOfTensor(int tensorIndex) const;

private:
    struct Node;
    void rebuild();
    // After an edit: the same tensors with new shapes and records; the tree keeps its rows.
    void refreshInPlace();
    void fillLeaf(Node* leaf, const Model& m, size_t i) const;
    static void summarise(Node* n);
    Node* nodeOf(const QModelIndex& index) const;

    ModelDocument* document_;
    std::shared_ptr<const Model> model_; // the model the tree was built from
    std::unique_ptr<Node> root_;         // invisible root; its one child is the model
    std::vector<Node*> tensorNodes_;     // by tensor index
};

} // namespace ll::gui
