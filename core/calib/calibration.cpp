#include "calib/calibration.h"

#include "util/threads.h"
#include "prune/sub_progress.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <string>

namespace ll {

namespace {

constexpr int64_t kTokensPerBatch = 4096;
constexpr std::array<Role, 4> kInputRoles{Role::AttnQ, Role::AttnO, Role::MlpUp, Role::MlpDown};

int inputIndex(Role role)
{
    for (size_t i = 0; i < kInputRoles.size(); ++i)
        if (kInputRoles[i] == role)
            return static_cast<int>(i);
    return -1;
}

// Thrown by the observer to end a forward pass after the last block of interest.
struct StopForward {};

// The per-window contribution of rows x (n, in): float partials, summed in double by the caller.
struct Partial {
    Eigen::MatrixXf gram;          // lower triangle of X^T X
    Eigen::VectorXd sumAbs, sumSquares;
    Eigen::VectorXf maxAbs;

    void compute(const ConstMatrixRef& x, bool withGram)
    {
        const Eigen::Index in = x.cols();
        sumAbs.setZero(in);
        sumSquares.setZero(in);
        maxAbs.setZero(in);
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
            const float* row = x.data() + r * x.outerStride();
            for (Eigen::Index j = 0; j < in; ++j) {
                const double v = row[j];
                sumAbs[j] += std::abs(v);
                sumSquares[j] += v * v;
                maxAbs[j] = std::max(maxAbs[j], std::abs(row[j]));
            }
        }
        if (withGram) {
            gram.setZero(in, in);
            gram.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
        }
    }
};

} // namespace

std::vector<int32_t> calibrationWindows(std::span<const int32_t> tokens, const CalibrationOptions& o)
{
    if (o.context < 2)
        fail(ErrorCode::InvalidArgument, "", "calibration windows must hold at least 2 tokens");
    if (o.windows < 1)
        fail(ErrorCode::InvalidArgument, "", "the calibration set needs at least one window");
    const int64_t have = static_cast<int64_t>(tokens.size()) / o.context;
    if (have < o.windows)
        fail(ErrorCode::InvalidArgument, "",
             "the calibration text has " + std::to_string(tokens.size()) + " tokens: " + std::to_string(have)
                 + " windows of " + std::to_string(o.context) + ", fewer than the " + std::to_string(o.windows)
                 + " asked for (use a longer text, fewer windows or shorter ones)");
    return {tokens.begin(), tokens.begin() + o.windows * o.context};
}

Role inputRoleOf(Role linear)
{
    switch (linear) {
    case Role::AttnQ:
    case Role::AttnK:
    case Role::AttnV: return Role::AttnQ;
    case Role::MlpGate:
    case Role::MlpUp: return Role::MlpUp;
    default: return linear;
    }
}

Eigen::VectorXf InputStats::meanAbs() const
{
    return (sumAbs / static_cast<double>(std::max<int64_t>(tokens, 1))).cast<float>();
}

Eigen::VectorXf InputStats::rms() const
{
    return (sumSquares / static_cast<double>(std::max<int64_t>(tokens, 1))).cwiseSqrt().cast<float>();
}

Eigen::VectorXf InputStats::l2Norm() const
{
    return sumSquares.cwiseSqrt().cast<float>();
}

Eigen::MatrixXf InputStats::gramFloat() const
{
    return gram.cast<float>();
}

uint64_t InputStats::bytes() const
{
    return static_cast<uint64_t>(gram.size()) * 8 + static_cast<uint64_t>(features()) * 20;
}

uint64_t blockStatsBytes(const Transformer& model, int block, bool gram)
{
    uint64_t bytes = 0;
    for (Role r : kInputRoles) {
        const auto in = static_cast<uint64_t>(model.linear(block, r).inFeatures());
        bytes += in * 20 + (gram ? in * in * 8 : 0);
    }
    return bytes;
}

struct InputStatsCollector::Impl {
    int first, last;
    int64_t windowLength;
    bool gram;
    int64_t layers;
    const Progress* progress;
    std::mutex mutex;
    std::map<std::pair<int, int>, InputStats> stats; // (block, input index)
};

InputStatsCollector::InputStatsCollector(int firstBlock, int lastBlock, int64_t windowLength, bool gram,
                                         int64_t layers, const Progress* progress)
{
    // Checked before impl_ is allocated: a throwing constructor never runs the destructor.
    if (firstBlock < 0 || lastBlock < firstBlock || lastBlock >= layers)
        fail(ErrorCode::InvalidArgument, "", "calibration blocks " + std::to_string(firstBlock) + ".."
                                                 + std::to_string(lastBlock) + " are outside the model's "
                                                 + std::to_string(layers) + " blocks");
    if (windowLength <= 0)
        fail(ErrorCode::InvalidArgument, "", "the calibration window length must be positive");
    impl_ = new Impl{firstBlock, lastBlock, windowLength, gram, layers, progress, {}, {}};
}

InputStatsCollector::~InputStatsCollector()
{
    delete impl_;
}

void InputStatsCollector::linearInput(int block, Role role, const ConstMatrixRef& x)
{
    Impl& s = *impl_;
    throwIfCancelled(s.progress);
    if (block > s.last)
        throw StopForward{};
    const int index = inputIndex(role);
    if (block < s.first || index < 0 || x.rows() == 0)
        return;
    // Whole windows: each one's float partial is deterministic whatever the grouping.
    thread_local Partial partial;
    const Eigen::Index in = x.cols();
    for (Eigen::Index r0 = 0; r0 < x.rows(); r0 += s.windowLength) {
        const Eigen::Index n = std::min<Eigen::Index>(s.windowLength, x.rows() - r0);
        partial.compute(x.middleRows(r0, n), s.gram);
        std::lock_guard lock(s.mutex);
        InputStats& st = s.stats[{block, index}];
        if (st.tokens == 0 && st.sumAbs.size() == 0) {
            st.block = block;
            st.role = role;
            st.sumAbs.setZero(in);
            st.sumSquares.setZero(in);
            st.maxAbs.setZero(in);
            if (s.gram)
                st.gram.setZero(in, in);
        }
        if (st.sumAbs.size() != in)
            fail(ErrorCode::InvalidArgument, "", "the input of block " + std::to_string(block) + " " + std::string(roleName(role))
                                                     + " changed width during calibration");
        st.tokens += n;
        st.sumAbs += partial.sumAbs;
        st.sumSquares += partial.sumSquares;
        for (Eigen::Index j = 0; j < in; ++j)
            st.maxAbs[j] = std::max(st.maxAbs[j], partial.maxAbs[j]);
        if (s.gram)
            for (Eigen::Index j = 0; j < in; ++j)
                for (Eigen::Index i = j; i < in; ++i)
                    st.gram(i, j) += static_cast<double>(partial.gram(i, j));
    }
}

std::vector<InputStats> InputStatsCollector::take()
{
    std::lock_guard lock(impl_->mutex);
    std::vector<InputStats> out;
    for (auto& [key, st] : impl_->stats) {
        if (st.gram.size() > 0)
            st.gram.triangularView<Eigen::StrictlyUpper>() = st.gram.transpose();
        out.push_back(std::move(st));
    }
    impl_->stats.clear();
    return out;
}

std::vector<InputStats> collectInputStats(const Transformer& model, std::span<const int32_t> windows,
                                          const CalibrationOptions& options, int firstBlock, int lastBlock, bool gram,
                                          Progress* progress)
{
    const int64_t ctx = options.context;
    if (ctx <= 0 || windows.empty() || static_cast<int64_t>(windows.size()) % ctx != 0)
        fail(ErrorCode::InvalidArgument, "", "the calibration tokens (" + std::to_string(windows.size())
                                                 + ") are not whole windows of " + std::to_string(ctx));
    const int64_t count = static_cast<int64_t>(windows.size()) / ctx;
    const int64_t perBatch = std::min<int64_t>(
        count, options.windowsPerBatch > 0 ? options.windowsPerBatch
                                           : std::max<int64_t>({1, kTokensPerBatch / ctx, computeThreads()}));
    InputStatsCollector collector(firstBlock, lastBlock, ctx, gram, model.layers(), progress);
    for (int64_t w0 = 0; w0 < count; w0 += perBatch) {
        throwIfCancelled(progress);
        const int64_t w1 = std::min(count, w0 + perBatch);
        try {
            (void)model.hiddenBatch(windows.subspan(static_cast<size_t>(w0 * ctx), static_cast<size_t>((w1 - w0) * ctx)),
                                    ctx, &collector);
        } catch (const StopForward&) {
            // Every group of windows stopped after lastBlock: its statistics are complete.
        }
        if (progress)
            progress->report(static_cast<double>(w1) / static_cast<double>(count),
                             "calibration window " + std::to_string(w1) + " of " + std::to_string(count));
    }
    return collector.take();
}

const char* calibrationModeName(CalibrationMode mode)
{
    return mode == CalibrationMode::Sequential ? "sequential" : "one-shot";
}

void forEachBlockStats(Transformer& model, std::span<const int32_t> windows, std::span<const int> blocks,
                       const BlockStatsOptions& options,
                       const std::function<void(int, std::vector<InputStats>&, Progress*)>& onBlock, Progress* progress)
{
    for (size_t i = 0; i < blocks.size(); ++i)
        if (blocks[i] < 0 || blocks[i] >= model.layers() || (i > 0 && blocks[i] <= blocks[i - 1]))
            fail(ErrorCode::InvalidArgument, "", "calibration blocks must be ascending block indices of the model");
    // Passes: runs of blocks gathered by one forward pass.
    std::vector<std::pair<size_t, size_t>> passes; // [begin, end) into blocks
    for (size_t i = 0; i < blocks.size();) {
        size_t j = i + 1;
        uint64_t bytes = blockStatsBytes(model, blocks[i], options.gram);
        if (options.mode == CalibrationMode::OneShot)
            while (j < blocks.size()) {
                const uint64_t more = blockStatsBytes(model, blocks[j], options.gram);
                if (bytes + more > options.statsBudgetBytes)
                    break;
                bytes += more;
                ++j;
            }
        passes.emplace_back(i, j);
        i = j;
    }
    // Progress weights: a pass costs its forward blocks (up to its last block) plus one unit per block compressed.
    double total = 0;
    for (const auto& [b, e] : passes)
        total += static_cast<double>(blocks[e - 1] + 1) + static_cast<double>(e - b);
    double done = 0;
    for (const auto& [b, e] : passes) {
        throwIfCancelled(progress);
        const double forward = static_cast<double>(blocks[e - 1] + 1);
        std::vector<InputStats> stats;
        {
            SubProgress sub(progress, done / total, (done + forward) / total);
            stats = collectInputStats(model, windows, options.calibration, blocks[b], blocks[e - 1], options.gram, &sub);
        }
        done += forward;
        for (size_t i = b; i < e; ++i) {
            std::vector<InputStats> mine;
            for (auto& st : stats)
                if (st.block == blocks[i])
                    mine.push_back(std::move(st));
            SubProgress sub(progress, done / total, (done + 1.0) / total);
            onBlock(blocks[i], mine, &sub);
            done += 1.0;
        }
    }
    if (progress)
        progress->report(1.0, "calibration done");
}

} // namespace ll
