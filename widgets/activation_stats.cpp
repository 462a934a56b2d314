#include "activation_stats.h"

#include "calib/calibration.h"
#include "engine/transformer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/progress.h"

#include <QElapsedTimer>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ll::gui {

namespace {
constexpr Role kLinearRoles[] = {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO,
                                 Role::MlpGate, Role::MlpUp, Role::MlpDown};

uint64_t splitmix64(uint64_t& state)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
} // namespace

const ChannelStats* ActivationCapture::inputOf(int block, Role linearRole) const
{
    const auto it = inputs.find({block, static_cast<int>(inputRoleOf(linearRole))});
    return it == inputs.end() ? nullptr : &it->second;
}

const std::vector<float>* ActivationCapture::columnNormsOf(int block, Role linearRole) const
{
    const auto it = columnNorms.find({block, static_cast<int>(linearRole)});
    return it == columnNorms.end() ? nullptr : &it->second;
}

std::vector<int32_t> syntheticTokens(int64_t count, int64_t vocab, uint64_t seed)
{
    std::vector<int32_t> ids(static_cast<size_t>(std::max<int64_t>(count, 0)));
    uint64_t state = seed;
    for (int32_t& id : ids)
        id = static_cast<int32_t>(splitmix64(state) % static_cast<uint64_t>(std::max<int64_t>(vocab, 1)));
    return ids;
}

ActivationCapture captureActivations(const ActivationCaptureRequest& request, const Transformer& engine,
                                     Progress* progress)
{
    QElapsedTimer clock;
    clock.start();
    ActivationCapture out;
    out.request = request;
    out.request.model.reset();
    if (request.context < 2)
        fail(ErrorCode::InvalidArgument, "", "the context must hold at least 2 tokens");
    if (request.windows < 1)
        fail(ErrorCode::InvalidArgument, "", "at least one window is needed");

    std::vector<int32_t> tokens;
    std::unique_ptr<Tokenizer> tokenizer;
    try {
        tokenizer = loadTokenizer(*request.model);
    } catch (const Error& e) {
        if (e.code() != ErrorCode::NotFound)
            throw;
    }
    if (tokenizer) {
        tokens = tokenizer->encode(loadText(request.text), true);
    } else {
        out.syntheticTokens = true;
        tokens = syntheticTokens(request.context * request.windows, engine.vocab());
    }
    throwIfCancelled(progress);
    const int64_t available = static_cast<int64_t>(tokens.size()) / request.context;
    if (available < 1)
        fail(ErrorCode::InvalidArgument, request.text.displayName().toStdString(),
             "the text has " + std::to_string(tokens.size()) + " tokens, fewer than one window of "
                 + std::to_string(request.context));
    CalibrationOptions options;
    options.context = request.context;
    options.windows = std::min(request.windows, available);
    const std::vector<int32_t> windows = calibrationWindows(tokens, options);
    out.windows = options.windows;
    out.tokens = static_cast<int64_t>(windows.size());

    const int layers = static_cast<int>(engine.layers());
    std::vector<InputStats> stats = collectInputStats(engine, windows, options, 0, layers - 1, false, progress);
    for (InputStats& s : stats) {
        ChannelStats c;
        c.tokens = s.tokens;
        c.maxAbs.assign(s.maxAbs.data(), s.maxAbs.data() + s.maxAbs.size());
        const Eigen::VectorXf rms = s.rms();
        c.rms.assign(rms.data(), rms.data() + rms.size());
        out.inputs[{s.block, static_cast<int>(s.role)}] = std::move(c);
    }
    // The weight side: column norms of every linear whose input was seen.
    for (int b = 0; b < layers; ++b) {
        for (Role role : kLinearRoles) {
            if (!out.inputOf(b, role))
                continue;
            const LinearWeights& w = engine.linear(b, role);
            if (w.empty())
                continue;
            const Eigen::VectorXf norms = w.dense().colwise().norm().transpose();
            out.columnNorms[{b, static_cast<int>(role)}].assign(norms.data(), norms.data() + norms.size());
        }
        throwIfCancelled(progress);
    }
    out.seconds = static_cast<double>(clock.nsecsElapsed()) * 1e-9;
    return out;
}

double medianOf(std::span<const float> values)
{
    std::vector<float> v;
    v.reserve(values.size());
    for (float x : values)
        if (std::isfinite(x))
            v.push_back(x);
    if (v.empty())
        return 0.0;
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    const double upper = v[mid];
    if (v.size() % 2 == 1)
        return upper;
    const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
    return 0.5 * (lower + upper);
}

OutlierChannels findOutlierChannels(std::span<const float> values, double k)
{
    OutlierChannels out;
    out.median = medianOf(values);
    out.threshold = k * out.median;
    if (!(out.median > 0))
        return out;
    double largest = -1;
    for (size_t j = 0; j < values.size(); ++j) {
        if (!std::isfinite(values[j]))
            continue;
        if (values[j] > largest) {
            largest = values[j];
            out.largestChannel = static_cast<int64_t>(j);
        }
        if (values[j] > out.threshold)
            out.channels.push_back(static_cast<int64_t>(j));
    }
    out.largestRatio = largest / out.median;
    std::stable_sort(out.channels.begin(), out.channels.end(),
                     [&](int64_t a, int64_t b) { return values[static_cast<size_t>(a)] > values[static_cast<size_t>(b)]; });
    for (int64_t c : out.channels)
        out.ratios.push_back(values[static_cast<size_t>(c)] / out.median);
    return out;
}

} // namespace ll::gui
