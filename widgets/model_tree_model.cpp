#include "model_tree_model.h"

#include "format.h"
#include "model_document.h"

#include "analysis/model_size.h"

#include <QColor>
#include <QFont>

#include <cmath>
#include <functional>

#include <map>

namespace ll::gui {

struct ModelTreeModel::Node {
    NodeKind kind = NodeKind::Group;
    QString name;
    int tensor = -1;
    Node* parent = nullptr;
    int row = 0;
    std::vector<std::unique_ptr<Node>> children;
    int64_t params = 0;
    uint64_t bytes = 0;
    QString dtype;      // "F32", "mixed" for groups of several types
    QString shape;
    QString tooltip;
    bool tied = false;
    // Compression (tensors; groups summarise their children)
    QStringList badges;
    double bits = 0.0;        // bits per weight; 0 = not quantized
    double error = -1.0;      // relative weight error; < 0 = none
    int edited = 0;           // tensors below with a record

    Node* add(std::unique_ptr<Node> child)
    {
        child->parent = this;
        child->row = static_cast<int>(children.size());
        children.push_back(std::move(child));
        return children.back().get();
    }
    Node* group(NodeKind k, const QString& label)
    {
        for (auto& c : children)
            if (c->kind == k && c->name == label)
                return c.get();
        auto n = std::make_unique<Node>();
        n->kind = k;
        n->name = label;
        return add(std::move(n));
    }
};

namespace {

QString leafLabel(const LogicalTensor& t)
{
    QString label;
    switch (t.role) {
    case Role::Embedding: label = QStringLiteral("Embedding"); break;
    case Role::PositionEmbedding: label = QStringLiteral("Position embedding"); break;
    case Role::EmbedProjIn: label = QStringLiteral("Embedding projection in"); break;
    case Role::EmbedProjOut: label = QStringLiteral("Embedding projection out"); break;
    case Role::AttnNorm: label = QStringLiteral("Attention norm"); break;
    case Role::MlpNorm: label = QStringLiteral("MLP norm"); break;
    case Role::PostAttnNorm: label = QStringLiteral("Post-attention norm"); break;
    case Role::PostMlpNorm: label = QStringLiteral("Post-MLP norm"); break;
    case Role::FinalNorm: label = QStringLiteral("Final norm"); break;
    case Role::LmHead: label = QStringLiteral("LM head"); break;
    case Role::Other: {
        // Unknown tensors keep their own name, without the block prefix.
        QString n = QString::fromStdString(t.logicalName);
        const QString prefix = QStringLiteral("blocks.%1.").arg(t.block);
        if (t.block >= 0 && n.startsWith(prefix))
            n = n.mid(prefix.size());
        return n;
    }
    default: label = QString::fromUtf8(roleName(t.role).data(), static_cast<int>(roleName(t.role).size())); break;
    }
    if (t.isBias)
        label += QStringLiteral(" (bias)");
    if (t.tied)
        label += QStringLiteral(" (tied)");
    return label;
}

bool isAttention(Role r) { return r == Role::AttnQ || r == Role::AttnK || r == Role::AttnV || r == Role::AttnO; }
bool isMlp(Role r) { return r == Role::MlpGate || r == Role::MlpUp || r == Role::MlpDown; }

} // namespace

// Sums params and bytes bottom-up; a group shows its children's common dtype.
void ModelTreeModel::summarise(Node* n)
{
    if (n->children.empty())
        return;
    n->params = 0;
    n->bytes = 0;
    if (n->kind != NodeKind::Tensor)
        n->edited = 0;
    QString dtype;
    bool mixed = false;
    for (auto& c : n->children) {
        summarise(c.get());
        n->params += c->tied ? 0 : c->params; // a tied head is the embedding's parameters, counted there
        n->bytes += c->bytes;
        n->edited += c->kind == NodeKind::Tensor ? (c->badges.isEmpty() ? 0 : 1) : c->edited;
        if (c->tied)
            continue;
        if (dtype.isEmpty())
            dtype = c->dtype;
        else if (c->dtype != dtype && !c->dtype.isEmpty())
            mixed = true;
    }
    n->dtype = mixed ? QStringLiteral("mixed") : dtype;
}

ModelTreeModel::ModelTreeModel(ModelDocument* document, QObject* parent)
    : QAbstractItemModel(parent), document_(document), root_(std::make_unique<Node>())
{
    connect(document_, &ModelDocument::modelAboutToChange, this, [this] { beginResetModel(); });
    connect(document_, &ModelDocument::modelChanged, this, [this] {
        rebuild();
        endResetModel();
    });
    connect(document_, &ModelDocument::modelEdited, this, &ModelTreeModel::refreshInPlace);
    rebuild();
}

ModelTreeModel::~ModelTreeModel() = default;

void ModelTreeModel::rebuild()
{
    root_ = std::make_unique<Node>();
    tensorNodes_.clear();
    model_ = document_->model();
    if (!model_)
        return;
    const Model& m = *model_;
    auto top = std::make_unique<Node>();
    top->kind = NodeKind::Model;
    top->name = modelDisplayName(m);
    top->tooltip = QStringLiteral("%1\n%2, %3").arg(QString::fromStdString(m.path),
                                                    QString::fromUtf8(familyName(m.config.family).data()),
                                                    QString::fromStdString(m.format));
    Node* modelNode = root_->add(std::move(top));

    tensorNodes_.assign(m.tensors.size(), nullptr);
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        const LogicalTensor& t = m.tensors[i];
        Node* parent = modelNode;
        if (t.block >= 0) {
            parent = modelNode->group(NodeKind::Block, QStringLiteral("Block %1").arg(t.block));
            if (isAttention(t.role))
                parent = parent->group(NodeKind::Group, QStringLiteral("Attention"));
            else if (isMlp(t.role))
                parent = parent->group(NodeKind::Group, QStringLiteral("MLP"));
        }
        auto leaf = std::make_unique<Node>();
        fillLeaf(leaf.get(), m, i);
        tensorNodes_[i] = parent->add(std::move(leaf));
    }
    summarise(modelNode);
}

void ModelTreeModel::fillLeaf(Node* leaf, const Model& m, size_t i) const
{
    const LogicalTensor& t = m.tensors[i];
    const TensorRef& ref = m.storedOf(t);
    leaf->kind = NodeKind::Tensor;
    leaf->tensor = static_cast<int>(i);
    leaf->name = leafLabel(t);
    leaf->tied = t.tied;
    // One size model (analysis/model_size.h): the form the tensor is held in now, as the status bar and Compare count it.
    const TensorSize size = tensorSize(document_->state(), t);
    leaf->params = t.tied ? t.elements() : size.parameters;
    leaf->bytes = size.bytes;
    leaf->dtype = QString::fromStdString(size.type);
    leaf->shape = formatShape(t.shape);
    QString tip = QStringLiteral("<b>%1</b><br>stored as <tt>%2</tt>").arg(
        QString::fromStdString(t.logicalName).toHtmlEscaped(), QString::fromStdString(ref.name).toHtmlEscaped());
    if (t.partLength > 0)
        tip += QStringLiteral("<br>rows %1–%2 of the fused tensor").arg(t.partOffset).arg(t.partOffset + t.partLength - 1);
    if (t.transposed)
        tip += QStringLiteral("<br>stored transposed (Conv1D)");
    if (t.tied)
        tip += QStringLiteral("<br>tied: shares the embedding's weights");
    tip += QStringLiteral("<br>%1 parameters").arg(formatExact(t.elements()));
    leaf->badges.clear();
    leaf->bits = 0.0;
    leaf->error = -1.0;
    if (const LayerRecord* r = document_->record(t.logicalName)) {
        for (const std::string& b : r->badges)
            leaf->badges << QString::fromStdString(b);
        // A method's own bits, else what the layer is held in (a pruned layer's sparse rows).
        const double held = !size.nominal && t.elements() > 0 ? 8.0 * static_cast<double>(size.bytes) / static_cast<double>(t.elements()) : 0.0;
        leaf->bits = r->bitsPerWeight.value_or(held);
        leaf->error = r->weightError.value_or(-1.0);
        tip += QStringLiteral("<br><br><b>Compressed:</b> %1").arg(leaf->badges.join(QStringLiteral(" → ")).toHtmlEscaped());
        if (r->bitsPerWeight)
            tip += QStringLiteral("<br>%1 bits per weight").arg(*r->bitsPerWeight, 0, 'f', 3);
        if (held > 0.0)
            tip += r->bitsPerWeight ? QStringLiteral("<br>held in %1 bits per weight (LayerLab keeps scales as floats)").arg(held, 0, 'f', 3)
                                    : QStringLiteral("<br>held in %1 bits per weight (%2)").arg(held, 0, 'f', 3).arg(leaf->dtype.toHtmlEscaped());
        if (size.nominal)
            tip += QStringLiteral("<br>size from its format's bits per weight (LayerLab holds these values as F32 for now)");
        if (r->weightError)
            tip += QStringLiteral("<br>weight error %1 (relative to the source)").arg(*r->weightError, 0, 'f', 4);
        if (r->outputError)
            tip += QStringLiteral("<br>output error %1 (last step, calibration text)").arg(*r->outputError, 0, 'f', 4);
        if (r->sparsity > 0.0)
            tip += QStringLiteral("<br>%1 % zeros").arg(100.0 * r->sparsity, 0, 'f', 1);
        if (r->rank > 0)
            tip += QStringLiteral("<br>rank %1").arg(r->rank);
    }
    leaf->tooltip = tip;
}

void ModelTreeModel::refreshInPlace()
{
    const auto m = document_->model();
    if (!m || !model_ || m->tensors.size() != tensorNodes_.size()) {
        beginResetModel();
        rebuild();
        endResetModel();
        return;
    }
    model_ = m;
    for (size_t i = 0; i < tensorNodes_.size(); ++i)
        if (tensorNodes_[i])
            fillLeaf(tensorNodes_[i], *m, i);
    if (!root_->children.empty())
        summarise(root_->children.front().get());
    // Every row may have changed (group totals too): one signal per level is enough for the views.
    std::function<void(const QModelIndex&)> touch = [&](const QModelIndex& parent) {
        const int rows = rowCount(parent);
        if (rows == 0)
            return;
        emit dataChanged(index(0, 0, parent), index(rows - 1, ColumnCount - 1, parent));
        for (int r = 0; r < rows; ++r)
            touch(index(r, 0, parent));
    };
    touch({});
}

ModelTreeModel::Node* ModelTreeModel::nodeOf(const QModelIndex& index) const
{
    return index.isValid() ? static_cast<Node*>(index.internalPointer()) : root_.get();
}

QModelIndex ModelTreeModel::index(int row, int column, const QModelIndex& parent) const
{
    if (column < 0 || column >= ColumnCount || row < 0)
        return {};
    const Node* p = nodeOf(parent);
    if (row >= static_cast<int>(p->children.size()))
        return {};
    return createIndex(row, column, p->children[static_cast<size_t>(row)].get());
}

QModelIndex ModelTreeModel::parent(const QModelIndex& child) const
{
    if (!child.isValid())
        return {};
    const Node* p = nodeOf(child)->parent;
    if (!p || p == root_.get())
        return {};
    return createIndex(p->row, 0, const_cast<Node*>(p));
}

int ModelTreeModel::rowCount(const QModelIndex& parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return 0;
    return static_cast<int>(nodeOf(parent)->children.size());
}

int ModelTreeModel::columnCount(const QModelIndex&) const
{
    return ColumnCount;
}

QVariant ModelTreeModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid())
        return {};
    const Node* n = nodeOf(index);
    const bool leaf = n->kind == NodeKind::Tensor;
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case NameColumn: return n->name;
        case ShapeColumn: return n->shape;
        case DTypeColumn: return n->dtype;
        case ParamsColumn: return formatCount(n->params);
        case SizeColumn:
            if (n->tied)
                return tr("(tied)");
            return formatBytes(n->bytes);
        case CompressionColumn:
            if (leaf)
                return n->badges.join(QStringLiteral(" → "));
            return n->edited > 0 ? tr("%n compressed", nullptr, n->edited) : QString(); // short: the tree is narrow
        case BitsColumn:
            return leaf && n->bits > 0.0 ? QString::number(n->bits, 'f', 2) : QString();
        case ErrorColumn:
            return leaf && n->error >= 0.0 ? QString::number(n->error, 'f', 4) : QString();
        }
        return {};
    case Qt::ForegroundRole:
        if (index.column() == CompressionColumn && leaf && !n->badges.isEmpty())
            return QColor(0x1f, 0x6f, 0xb4);
        return {};
    case Qt::ToolTipRole:
        if (leaf)
            return n->tooltip;
        if (n->kind == NodeKind::Model)
            return n->tooltip;
        return tr("%1: %2 parameters, %3").arg(n->name, formatExact(n->params), formatBytes(n->bytes));
    case Qt::TextAlignmentRole:
        if (index.column() == ParamsColumn || index.column() == SizeColumn || index.column() == BitsColumn
            || index.column() == ErrorColumn)
            return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
        return QVariant::fromValue(Qt::AlignLeft | Qt::AlignVCenter);
    case Qt::FontRole:
        if (n->kind == NodeKind::Model) {
            QFont f;
            f.setBold(true);
            return f;
        }
        return {};
    case TensorIndexRole: return n->tensor;
    case LogicalNameRole:
        return leaf ? QString::fromStdString(model_->tensors[static_cast<size_t>(n->tensor)].logicalName) : QString();
    case StoredNameRole:
        return leaf ? QString::fromStdString(model_->storedOf(model_->tensors[static_cast<size_t>(n->tensor)]).name)
                    : QString();
    case NodeKindRole: return static_cast<int>(n->kind);
    case ParamsRole: return QVariant::fromValue<qint64>(n->params);
    case BytesRole: return QVariant::fromValue<quint64>(n->bytes);
    case BadgesRole: return n->badges;
    }
    return {};
}

QVariant ModelTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case NameColumn: return tr("Name");
        case ShapeColumn: return tr("Shape");
        case DTypeColumn: return tr("Type");
        case ParamsColumn: return tr("Params");
        case SizeColumn: return tr("Size");
        case CompressionColumn: return tr("Compression");
        case BitsColumn: return tr("Bits/w");
        case ErrorColumn: return tr("Error");
        }
    }
    if (role == Qt::ToolTipRole && section == ErrorColumn)
        return tr("Relative weight error ||W0 - W|| / ||W0|| against the source model");
    if (role == Qt::ToolTipRole && section == BitsColumn)
        return tr("Bits per weight of the last quantization, scales, zeros and outliers included");
    if (role == Qt::TextAlignmentRole
        && (section == ParamsColumn || section == SizeColumn || section == BitsColumn || section == ErrorColumn))
        return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

Qt::ItemFlags ModelTreeModel::flags(const QModelIndex& index) const
{
    if (!index.isValid())
        return Qt::NoItemFlags;
    return Qt::ItemIsEnabled | Qt::ItemIsSelectable;
}

QModelIndex ModelTreeModel::indexOfTensor(int tensorIndex) const
{
    if (tensorIndex < 0 || tensorIndex >= static_cast<int>(tensorNodes_.size()) || !tensorNodes_[static_cast<size_t>(tensorIndex)])
        return {};
    Node* n = tensorNodes_[static_cast<size_t>(tensorIndex)];
    return createIndex(n->row, 0, n);
}

} // namespace ll::gui
