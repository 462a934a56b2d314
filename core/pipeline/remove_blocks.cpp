#include "pipeline/remove_blocks.h"

#include "engine/transformer.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <set>

namespace ll {

namespace {

// "blocks.7.attn.q.weight" -> 7 (-1 outside the blocks).
int blockOfName(const std::string& name)
{
    static const std::string prefix = "blocks.";
    if (name.compare(0, prefix.size(), prefix) != 0)
        return -1;
    const size_t end = name.find('.', prefix.size());
    if (end == std::string::npos)
        return -1;
    try {
        return std::stoi(name.substr(prefix.size(), end - prefix.size()));
    } catch (const std::exception&) {
        return -1;
    }
}

int newIndex(int block, const std::vector<int>& removedSorted)
{
    return block - static_cast<int>(std::lower_bound(removedSorted.begin(), removedSorted.end(), block) - removedSorted.begin());
}

// The stored name with its block number (the one dot-separated component equal
// to `from`, after a "layers" / "h" / "blk" component) replaced by `to`.
std::string renumberStored(const std::string& name, int from, int to)
{
    const std::string f = std::to_string(from);
    size_t pos = 0;
    while ((pos = name.find("." + f + ".", pos)) != std::string::npos) {
        const size_t start = name.rfind('.', pos - 1);
        const std::string before = name.substr(start == std::string::npos ? 0 : start + 1,
                                               start == std::string::npos ? pos : pos - start - 1);
        if (before == "layers" || before == "h" || before == "blk" || before == "layer")
            return name.substr(0, pos + 1) + std::to_string(to) + name.substr(pos + 1 + f.size());
        pos += 1;
    }
    if (name.compare(0, f.size() + 1, f + ".") == 0) // "7.attention.wq" style
        return std::to_string(to) + name.substr(f.size());
    return name;
}

} // namespace

std::vector<double> blockInfluence(const Transformer& t, std::span<const int32_t> windows, int64_t context,
                                   Progress* progress)
{
    if (context <= 0 || windows.empty() || static_cast<int64_t>(windows.size()) % context != 0)
        fail(ErrorCode::InvalidArgument, t.source(), "block influence needs whole windows of " + std::to_string(context) + " tokens");
    MatrixRM x = t.embedWindows(windows, context);
    MatrixRM before;
    std::vector<double> bi;
    const int64_t layers = t.layers();
    for (int b = 0; b < layers; ++b) {
        throwIfCancelled(progress);
        before = x;
        t.runBlocks(x, context, b, b);
        double sum = 0.0;
        for (int64_t r = 0; r < x.rows(); ++r) {
            const double dot = before.row(r).cast<double>().dot(x.row(r).cast<double>());
            const double norms = before.row(r).cast<double>().norm() * x.row(r).cast<double>().norm();
            sum += norms > 0.0 ? dot / norms : 1.0; // a zero state: unchanged by convention
        }
        bi.push_back(1.0 - sum / static_cast<double>(x.rows()));
        if (progress)
            progress->report(static_cast<double>(b + 1) / static_cast<double>(layers),
                             "block influence: block " + std::to_string(b + 1) + " of " + std::to_string(layers));
    }
    return bi;
}

std::string renamedAfterRemoval(const std::string& logicalName, const std::vector<int>& removedSorted)
{
    const int block = blockOfName(logicalName);
    if (block < 0)
        return logicalName;
    if (std::binary_search(removedSorted.begin(), removedSorted.end(), block))
        return {};
    const std::string from = "blocks." + std::to_string(block) + ".";
    return "blocks." + std::to_string(newIndex(block, removedSorted)) + "." + logicalName.substr(from.size());
}

std::unique_ptr<Model> removeBlocks(const Model& m, std::vector<int> blocks)
{
    std::sort(blocks.begin(), blocks.end());
    blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
    for (int b : blocks)
        if (b < 0 || b >= m.config.layers)
            fail(ErrorCode::InvalidArgument, m.path, "no block " + std::to_string(b) + " to remove (the model has "
                                                         + std::to_string(m.config.layers) + ")");
    if (static_cast<int64_t>(blocks.size()) >= m.config.layers)
        fail(ErrorCode::InvalidArgument, m.path, "removing all " + std::to_string(m.config.layers) + " blocks leaves no model");
    auto out = std::make_unique<Model>(m);
    out->tensors.clear();
    std::vector<char> renamed(m.stored.size(), 0);
    for (const LogicalTensor& t : m.tensors) {
        if (t.block >= 0 && std::binary_search(blocks.begin(), blocks.end(), t.block))
            continue;
        LogicalTensor n = t;
        if (t.block >= 0) {
            n.block = newIndex(t.block, blocks);
            n.logicalName = renamedAfterRemoval(t.logicalName, blocks);
            // Every stored tensor a block reads (its own, or an edit's buffer) carries the new number.
            for (const int64_t s : {static_cast<int64_t>(t.stored), t.replacedBy, t.factorA, t.factorB})
                if (s >= 0 && !renamed[static_cast<size_t>(s)] && n.block != t.block) {
                    renamed[static_cast<size_t>(s)] = 1;
                    out->stored[static_cast<size_t>(s)].name = renumberStored(m.stored[static_cast<size_t>(s)].name, t.block, n.block);
                }
        }
        out->tensors.push_back(std::move(n));
    }
    // Stored tensors only the removed blocks read go too (sizes and counts over
    // the stored tensors would still include them); the rest keep their order.
    std::vector<char> used(m.stored.size(), 0), readByRemoved(m.stored.size(), 0);
    const auto mark = [](std::vector<char>& v, const LogicalTensor& t) {
        for (const int64_t s : {static_cast<int64_t>(t.stored), t.replacedBy, t.factorA, t.factorB})
            if (s >= 0)
                v[static_cast<size_t>(s)] = 1;
    };
    for (const LogicalTensor& t : out->tensors)
        mark(used, t);
    for (const LogicalTensor& t : m.tensors)
        if (t.block >= 0 && std::binary_search(blocks.begin(), blocks.end(), t.block))
            mark(readByRemoved, t);
    std::vector<int64_t> index(m.stored.size(), -1);
    std::vector<TensorRef> kept;
    for (size_t s = 0; s < m.stored.size(); ++s)
        if (used[s] || !readByRemoved[s]) {
            index[s] = static_cast<int64_t>(kept.size());
            kept.push_back(std::move(out->stored[s]));
        }
    out->stored = std::move(kept);
    for (LogicalTensor& t : out->tensors) {
        t.stored = static_cast<size_t>(index[t.stored]);
        for (int64_t* s : {&t.replacedBy, &t.factorA, &t.factorB})
            if (*s >= 0)
                *s = index[static_cast<size_t>(*s)];
    }
    out->config.layers -= static_cast<int64_t>(blocks.size());
    return out;
}

nlohmann::json BlockRemovalResult::toJson() const
{
    return {{"method", "shortgpt"},
            {"block_influence", influence},
            {"removed", removed},
            {"blocks_before", static_cast<int64_t>(influence.size())},
            {"blocks_after", static_cast<int64_t>(influence.size() - removed.size())},
            {"calibration_tokens", calibrationTokens},
            {"seconds", seconds}};
}

BlockRemovalResult removeBlocksByInfluence(const Model& source, const BlockRemovalOptions& options,
                                           std::span<const int32_t> calibrationTokens, Progress* progress)
{
    const auto started = std::chrono::steady_clock::now();
    if (options.blocks < 1 || options.blocks >= source.config.layers)
        fail(ErrorCode::InvalidArgument, source.path, "ShortGPT removes 1 to " + std::to_string(source.config.layers - 1)
                                                          + " blocks of this model, not " + std::to_string(options.blocks));
    if (calibrationTokens.empty())
        fail(ErrorCode::InvalidArgument, source.path, "ShortGPT needs calibration text (block influence is measured on it)");
    const std::vector<int32_t> windows = calibrationWindows(calibrationTokens, options.calibration);
    BlockRemovalResult r;
    {
        SubProgress part(progress, 0.0, 0.95);
        const Transformer t(source);
        r.influence = blockInfluence(t, windows, options.calibration.context, &part);
    }
    std::vector<int> order(r.influence.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return r.influence[static_cast<size_t>(a)] < r.influence[static_cast<size_t>(b)]; });
    r.removed.assign(order.begin(), order.begin() + options.blocks);
    std::sort(r.removed.begin(), r.removed.end());
    r.model = removeBlocks(source, r.removed);
    r.calibrationTokens = static_cast<int64_t>(windows.size());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (progress)
        progress->report(1.0, "removed " + std::to_string(options.blocks) + " block(s)");
    return r;
}

} // namespace ll
