#include "calib/calibration.h"

#include "util/threads.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/spill_buffer.h"

#include <algorithm>
#include <chrono>
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
    Eigen::MatrixXf tile;          // one column tile of a window's X^T X (rows j0..in-1)
    Eigen::VectorXd sumAbs, sumSquares;
    Eigen::VectorXf maxAbs;

    void compute(const ConstMatrixRef& x)
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
    }
};

// Columns of X^T X per tile: a thread's float partial is (in - j0) x 256, not
// in x in (485 MB at a 7B's down_proj input of 11008).
constexpr Eigen::Index kGramTile = 256;

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

namespace {

template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> unpackGram(const std::vector<double>& lower, int64_t n)
{
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> g(n, n);
    for (int64_t j = 0; j < n; ++j) {
        const double* col = lower.data() + gramLowerIndex(n, j, j);
        for (int64_t i = j; i < n; ++i)
            g(i, j) = g(j, i) = static_cast<Scalar>(col[i - j]);
    }
    return g;
}

} // namespace

Eigen::MatrixXd InputStats::gram() const
{
    return hasGram() ? unpackGram<double>(gramLower, features()) : Eigen::MatrixXd();
}

Eigen::MatrixXf InputStats::gramFloat() const
{
    return hasGram() ? unpackGram<float>(gramLower, features()) : Eigen::MatrixXf();
}

void InputStats::releaseGram()
{
    std::vector<double>().swap(gramLower);
}

uint64_t InputStats::bytes() const
{
    return static_cast<uint64_t>(gramLower.size()) * 8 + static_cast<uint64_t>(features()) * 20
           + static_cast<uint64_t>(asymmetry.size()) * 4;
}

uint64_t blockStatsBytes(const Transformer& model, int block, bool gram)
{
    uint64_t bytes = 0;
    for (Role r : kInputRoles) {
        const auto in = static_cast<uint64_t>(model.linear(block, r).inFeatures());
        bytes += in * 20 + (gram ? in * (in + 1) / 2 * 8 : 0);
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
    thread_local Partial partial; // the sums and one Gram tile (11 MB at in = 11008)
    const Eigen::Index in = x.cols();
    for (Eigen::Index r0 = 0; r0 < x.rows(); r0 += s.windowLength) {
        const Eigen::Index n = std::min<Eigen::Index>(s.windowLength, x.rows() - r0);
        const auto xw = x.middleRows(r0, n);
        partial.compute(xw);
        InputStats* st = nullptr;
        {
            std::lock_guard lock(s.mutex);
            st = &s.stats[{block, index}];
            if (st->tokens == 0 && st->sumAbs.size() == 0) {
                st->block = block;
                st->role = role;
                st->sumAbs.setZero(in);
                st->sumSquares.setZero(in);
                st->maxAbs.setZero(in);
                if (s.gram)
                    st->gramLower.assign(static_cast<size_t>(in * (in + 1) / 2), 0.0);
            }
            if (st->sumAbs.size() != in)
                fail(ErrorCode::InvalidArgument, "", "the input of block " + std::to_string(block) + " "
                                                         + std::string(roleName(role)) + " changed width during calibration");
            st->tokens += n;
            st->sumAbs += partial.sumAbs;
            st->sumSquares += partial.sumSquares;
            for (Eigen::Index j = 0; j < in; ++j)
                st->maxAbs[j] = std::max(st->maxAbs[j], partial.maxAbs[j]);
        }
        if (!s.gram)
            continue;
        // The lower triangle, a column tile at a time: each element is the float
        // sum over this window's rows (whatever the batching), added in double.
        for (Eigen::Index j0 = 0; j0 < in; j0 += kGramTile) {
            const Eigen::Index w = std::min(kGramTile, in - j0);
            partial.tile.noalias() = xw.rightCols(in - j0).transpose() * xw.middleCols(j0, w);
            std::lock_guard lock(s.mutex);
            for (Eigen::Index j = 0; j < w; ++j) {
                double* col = st->gramLower.data() + gramLowerIndex(in, j0 + j, j0 + j) - j; // row j0 + i at col[i]
                const float* part = partial.tile.data() + j * partial.tile.rows();
                for (Eigen::Index i = j; i < in - j0; ++i)
                    col[i] += static_cast<double>(part[i]);
            }
        }
    }
}

std::vector<InputStats> InputStatsCollector::take()
{
    std::lock_guard lock(impl_->mutex);
    std::vector<InputStats> out;
    for (auto& [key, st] : impl_->stats)
        out.push_back(std::move(st));
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

namespace {

// Windows per forward batch, as collectInputStats and the evaluation run them.
int64_t windowsPerBatch(const CalibrationOptions& o, int64_t count)
{
    return std::min<int64_t>(count, o.windowsPerBatch > 0 ? o.windowsPerBatch
                                                          : std::max<int64_t>({1, kTokensPerBatch / o.context, computeThreads()}));
}

} // namespace

namespace {

// GPTAQ's cross term, one window at a time (a window runs as one group, so the
// engine reports its inputs in order on this thread): the full-precision
// stream's run records each input, the current stream's run adds
// (x̃ − x)ᵀ x for the same rows and passes x on to the statistics collector.
class AsymmetryObserver : public LinearInputObserver {
public:
    explicit AsymmetryObserver(LinearInputObserver* collector) : collector_(collector) {}
    bool recording = true; // the full-precision run; false: the current model's
    void linearInput(int block, Role role, const ConstMatrixRef& x) override
    {
        const size_t i = slot(role);
        if (recording) {
            fp_[i] = x;
            return;
        }
        collector_->linearInput(block, role, x);
        if (fp_[i].rows() != x.rows() || fp_[i].cols() != x.cols())
            fail(ErrorCode::InvalidArgument, "", "GPTAQ: the full-precision and current inputs of block "
                                                     + std::to_string(block) + " do not match");
        Eigen::MatrixXf& acc = sums_[i];
        if (acc.size() == 0)
            acc = Eigen::MatrixXf::Zero(x.cols(), x.cols());
        fp_[i] -= x;
        acc.noalias() += fp_[i].transpose() * x;
    }
    // Moves the sums into the statistics of the same inputs.
    void moveInto(std::vector<InputStats>& stats)
    {
        for (InputStats& s : stats)
            s.asymmetry = std::move(sums_[slot(s.role)]);
    }

private:
    static size_t slot(Role r) { return static_cast<size_t>(inputIndex(r)); } // the engine reports only these four
    LinearInputObserver* collector_;
    MatrixRM fp_[4];
    Eigen::MatrixXf sums_[4];
};

} // namespace

void forEachBlockStats(Transformer& model, std::span<const int32_t> windows, std::span<const int> blocks,
                       const BlockStatsOptions& options,
                       const std::function<void(int, std::vector<InputStats>&, Progress*)>& onBlock, Progress* progress)
{
    for (size_t i = 0; i < blocks.size(); ++i)
        if (blocks[i] < 0 || blocks[i] >= model.layers() || (i > 0 && blocks[i] <= blocks[i - 1]))
            fail(ErrorCode::InvalidArgument, "", "calibration blocks must be ascending block indices of the model");
    const int64_t ctx = options.calibration.context;
    if (ctx <= 0 || windows.empty() || static_cast<int64_t>(windows.size()) % ctx != 0)
        fail(ErrorCode::InvalidArgument, "", "the calibration tokens (" + std::to_string(windows.size())
                                                 + ") are not whole windows of " + std::to_string(ctx));
    if (blocks.empty())
        return;
    const int64_t count = static_cast<int64_t>(windows.size()) / ctx;
    const int64_t perBatch = windowsPerBatch(options.calibration, count);
    const int64_t rows = count * ctx, width = model.config().hidden;
    const bool sequential = options.mode == CalibrationMode::Sequential;
    const bool asymmetric = sequential && options.asymmetric;

    // Progress: each block run over the windows is a unit (a sequential block
    // runs twice: for its statistics, then compressed for the next block),
    // each onBlock another.
    const double total = 1.0 + static_cast<double>(blocks.back() + 1)
                         + static_cast<double>(blocks.size()) * (sequential ? 2.0 : 1.0);
    double done = 0;
    const auto forBatches = [&](const std::function<void(int64_t row0, int64_t n)>& fn, const std::string& what) {
        SubProgress sub(progress, done / total, (done + 1.0) / total);
        for (int64_t w0 = 0; w0 < count; w0 += perBatch) {
            throwIfCancelled(progress);
            const int64_t w1 = std::min(count, w0 + perBatch);
            fn(w0 * ctx, (w1 - w0) * ctx);
            sub.report(static_cast<double>(w1) / static_cast<double>(count),
                       what + ": window " + std::to_string(w1) + " of " + std::to_string(count));
        }
        done += 1.0;
    };

    BlockStatsTimes unused;
    BlockStatsTimes& times = options.times ? *options.times : unused;
    using Clock = std::chrono::steady_clock;
    const auto timed = [](double& into, const std::function<void()>& fn) {
        const auto t0 = Clock::now();
        fn();
        into += std::chrono::duration<double>(Clock::now() - t0).count();
    };

    // Every window's hidden states at the input of block `next`.
    SpillBuffer buffer(static_cast<size_t>(rows * width) * sizeof(float), options.activationBudgetBytes, "calibration activations");
    Eigen::Map<MatrixRM> X(buffer.data(), rows, width);
    timed(times.embedding, [&] {
        forBatches([&](int64_t r0, int64_t n) {
            X.middleRows(r0, n) = model.embedWindows(windows.subspan(static_cast<size_t>(r0), static_cast<size_t>(n)), ctx);
        }, "embedding");
    });
    // GPTAQ: the same windows through the blocks before onBlock changed them.
    SpillBuffer fpBuffer(asymmetric ? static_cast<size_t>(rows * width) * sizeof(float) : 0,
                         options.activationBudgetBytes, "full-precision calibration activations");
    Eigen::Map<MatrixRM> Xfp(asymmetric ? fpBuffer.data() : nullptr, asymmetric ? rows : 0, width);
    if (asymmetric)
        Xfp = X;
    int next = 0;
    const auto advance = [&](int block, LinearInputObserver* observer) {
        timed(observer ? times.statistics : times.forward, [&] {
            forBatches([&](int64_t r0, int64_t n) { model.runBlocks(X.middleRows(r0, n), ctx, block, block, observer); },
                       "block " + std::to_string(block + 1) + " of " + std::to_string(model.layers()));
        });
        next = block + 1;
    };
    // Blocks nobody compresses are the same in both streams.
    const auto advanceBoth = [&](int block) {
        advance(block, nullptr);
        if (asymmetric)
            forBatches([&](int64_t r0, int64_t n) { model.runBlocks(Xfp.middleRows(r0, n), ctx, block, block, nullptr); },
                       "full-precision block " + std::to_string(block + 1));
    };
    MatrixRM copy; // sequential: a batch run for its statistics only
    for (const int block : blocks) {
        while (next < block)
            advanceBoth(next);
        InputStatsCollector collector(block, block, ctx, options.gram, model.layers(), progress);
        AsymmetryObserver asymmetry(&collector);
        if (asymmetric)
            timed(times.statistics, [&] {
                // Window by window: the full-precision stream moves on through the block as it
                // still is, then the current stream's copy runs it with the statistics.
                forBatches([&](int64_t r0, int64_t n) {
                    for (int64_t w = r0; w < r0 + n; w += ctx) {
                        asymmetry.recording = true;
                        model.runBlocks(Xfp.middleRows(w, ctx), ctx, block, block, &asymmetry);
                        asymmetry.recording = false;
                        copy = X.middleRows(w, ctx);
                        model.runBlocks(copy, ctx, block, block, &asymmetry);
                    }
                }, "statistics of block " + std::to_string(block + 1));
            });
        else if (sequential)
            timed(times.statistics, [&] {
                forBatches([&](int64_t r0, int64_t n) {
                    copy = X.middleRows(r0, n);
                    model.runBlocks(copy, ctx, block, block, &collector);
                }, "statistics of block " + std::to_string(block + 1));
            });
        else
            advance(block, &collector); // one-shot: the outputs of the unchanged block are the next input
        std::vector<InputStats> stats = collector.take();
        if (asymmetric)
            asymmetry.moveInto(stats);
        copy = MatrixRM(); // the last statistics batch, not kept while the method runs
        {
            SubProgress sub(progress, done / total, (done + 1.0) / total);
            timed(times.compress, [&] { onBlock(block, stats, &sub); });
            done += 1.0;
        }
        if (sequential)
            advance(block, nullptr); // through the block as onBlock left it
    }
    if (progress)
        progress->report(1.0, "calibration done");
}

} // namespace ll
