#include "analysis/mixed_precision.h"

#include "eval/perplexity.h"
#include "recipe/step_options.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

namespace ll {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void bad(const std::string& problem) { fail(ErrorCode::InvalidArgument, "", problem); }

bool isInteger(const std::string& s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "3" -> 3, "0.5" -> 0.5, anything else stays text.
nlohmann::json scalar(const std::string& v)
{
    if (isInteger(v))
        return std::stoll(v);
    try {
        size_t used = 0;
        const double d = std::stod(v, &used);
        if (used == v.size())
            return d;
    } catch (const std::exception&) {
    }
    return v;
}

std::vector<std::string> split(const std::string& s, char sep)
{
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep))
        out.push_back(item);
    return out;
}

struct Table {
    size_t layers = 0, candidates = 0;
    std::vector<double> bits, loss; // [layer * candidates + c]
    double bitsAt(size_t i, size_t c) const { return bits[i * candidates + c]; }
    double lossAt(size_t i, size_t c) const { return loss[i * candidates + c]; }
};

double totalBits(const Table& t, const std::vector<size_t>& pick)
{
    double b = 0.0;
    for (size_t i = 0; i < t.layers; ++i)
        b += t.bitsAt(i, pick[i]);
    return b;
}

// One greedy move. Down: the move (to any cheaper candidate) with the smallest
// loss increase per bit saved. Up: the one with the largest loss decrease per
// bit added that still fits. False when there is none.
bool moveOnce(const Table& t, std::vector<size_t>& pick, double& total, double budget, bool down)
{
    size_t bi = 0, bc = 0;
    double bestRatio = kInf;
    for (size_t i = 0; i < t.layers; ++i)
        for (size_t c = 0; c < t.candidates; ++c) {
            const double saved = t.bitsAt(i, pick[i]) - t.bitsAt(i, c);
            const double dLoss = t.lossAt(i, c) - t.lossAt(i, pick[i]);
            if (down ? saved <= 0.0 : (saved >= 0.0 || dLoss >= 0.0 || total - saved > budget))
                continue;
            const double ratio = down ? dLoss / saved : dLoss / -saved; // up: most negative is best
            if (ratio < bestRatio) {
                bestRatio = ratio;
                bi = i;
                bc = c;
            }
        }
    if (bestRatio == kInf)
        return false;
    total += t.bitsAt(bi, bc) - t.bitsAt(bi, pick[bi]);
    pick[bi] = bc;
    return true;
}

// Multiple-choice knapsack by dynamic programming over the budget cut into
// units, costs rounded up (`slack`: by a relative tolerance, so that a cost of
// exactly k units stays k). Optimal among the assignments whose rounded costs
// fit, which include every assignment with at least one unit per layer to spare.
std::optional<std::vector<size_t>> solveExact(const Table& t, double budget, double slack)
{
    // Finer for few layers; about 4 Mi choices (8 MB) in all.
    const int64_t units = std::max<int64_t>(20000, (int64_t{1} << 22) / static_cast<int64_t>(std::max<size_t>(1, t.layers)));
    const size_t width = static_cast<size_t>(units) + 1;
    const double unit = budget / static_cast<double>(units);
    std::vector<int64_t> cost(t.bits.size());
    for (size_t k = 0; k < t.bits.size(); ++k)
        cost[k] = static_cast<int64_t>(std::ceil(t.bits[k] / unit * (1.0 - slack)));
    std::vector<double> dp(width, kInf), next(width);
    std::vector<uint16_t> choice(t.layers * width, 0);
    dp[0] = 0.0;
    for (size_t i = 0; i < t.layers; ++i) {
        std::fill(next.begin(), next.end(), kInf);
        for (size_t used = 0; used < width; ++used) {
            if (dp[used] == kInf)
                continue;
            for (size_t c = 0; c < t.candidates; ++c) {
                const int64_t to = static_cast<int64_t>(used) + cost[i * t.candidates + c];
                if (to > units)
                    continue;
                const double v = dp[used] + t.lossAt(i, c);
                if (v < next[static_cast<size_t>(to)]) {
                    next[static_cast<size_t>(to)] = v;
                    choice[i * width + static_cast<size_t>(to)] = static_cast<uint16_t>(c);
                }
            }
        }
        dp.swap(next);
    }
    const auto best = std::min_element(dp.begin(), dp.end());
    if (*best == kInf)
        return std::nullopt;
    std::vector<size_t> pick(t.layers);
    int64_t used = best - dp.begin();
    for (size_t i = t.layers; i-- > 0;) {
        pick[i] = choice[i * width + static_cast<size_t>(used)];
        used -= cost[i * t.candidates + pick[i]];
    }
    return pick;
}

// Down from the most bits until the budget holds.
std::optional<std::vector<size_t>> solveGreedy(const Table& t, double budget)
{
    std::vector<size_t> pick(t.layers);
    for (size_t i = 0; i < t.layers; ++i)
        for (size_t c = 1; c < t.candidates; ++c) {
            const double b = t.bitsAt(i, c), bp = t.bitsAt(i, pick[i]);
            if (b > bp || (b == bp && t.lossAt(i, c) < t.lossAt(i, pick[i])))
                pick[i] = c;
        }
    double total = totalBits(t, pick);
    while (total > budget)
        if (!moveOnce(t, pick, total, budget, true))
            return std::nullopt;
    return pick;
}

} // namespace

std::vector<RecipeStep> parseCandidates(const std::string& text)
{
    std::vector<RecipeStep> out;
    for (const std::string& item : split(text, ',')) {
        const std::vector<std::string> parts = split(item, ':');
        if (parts.empty() || parts[0].empty())
            bad("empty candidate in '" + text + "' (write METHOD[:BITS[:GROUP]][:FLAG|:KEY=VALUE...], e.g. rtn:3:32)");
        RecipeStep s;
        s.action = StepAction::Quantize;
        s.params["method"] = parts[0];
        size_t numbers = 0;
        for (size_t k = 1; k < parts.size(); ++k) {
            const std::string& p = parts[k];
            if (isInteger(p) && numbers < 2) {
                s.params[numbers++ == 0 ? "bits" : "group"] = std::stoll(p);
            } else if (const size_t eq = p.find('='); eq != std::string::npos) {
                s.params[canonicalKey(p.substr(0, eq))] = scalar(p.substr(eq + 1));
            } else if (!p.empty() && !isInteger(p)) {
                s.params[canonicalKey(p)] = true;
            } else {
                bad("candidate '" + item + "': unexpected '" + p + "'");
            }
        }
        try {
            s.validate();
        } catch (const Error& e) {
            bad("candidate '" + item + "': " + e.problem());
        }
        out.push_back(std::move(s));
    }
    if (out.empty())
        bad("no candidates");
    return out;
}

const char* mixedSolverName(MixedSolver s) { return s == MixedSolver::Exact ? "exact" : "greedy"; }

MixedPlan solveMixedPrecision(const std::vector<SensitivityResult>& sweeps, const MixedBudget& budget,
                              SensitivityMetric metric, MixedSolver solver)
{
    if (sweeps.empty())
        bad("no candidates");
    if (sweeps.size() > 65535)
        bad("too many candidates");
    const std::vector<LayerSensitivity>& first = sweeps.front().rows;
    Table t;
    t.layers = first.size();
    t.candidates = sweeps.size();
    t.bits.resize(t.layers * t.candidates);
    t.loss.resize(t.layers * t.candidates);
    double weights = 0.0;
    for (const LayerSensitivity& r : first)
        weights += static_cast<double>(r.weights);
    for (size_t c = 0; c < sweeps.size(); ++c) {
        const std::vector<LayerSensitivity>& rows = sweeps[c].rows;
        if (rows.size() != t.layers)
            bad("the candidates' sweeps cover different layers");
        for (size_t i = 0; i < t.layers; ++i) {
            if (rows[i].name != first[i].name)
                bad("the candidates' sweeps cover different layers");
            if (!rows[i].bitsPerWeight)
                bad("candidate " + sweeps[c].step.badge() + " reports no bits per weight (mixed precision chooses among quantizations)");
            const double loss = rows[i].value(metric);
            if (std::isnan(loss))
                bad(std::string("the sweeps have no ") + sensitivityMetricName(metric) + " values");
            t.bits[i * t.candidates + c] = *rows[i].bitsPerWeight * static_cast<double>(rows[i].weights);
            t.loss[i * t.candidates + c] = loss;
        }
    }
    double allowed = kInf;
    if (budget.bitsPerWeight)
        allowed = std::min(allowed, *budget.bitsPerWeight * weights);
    if (budget.bytes)
        allowed = std::min(allowed, *budget.bytes * 8.0);
    if (!(allowed < kInf) || !(allowed > 0.0))
        bad("give a positive budget (bits per weight or bytes)");
    double cheapest = 0.0;
    for (size_t i = 0; i < t.layers; ++i) {
        double m = kInf;
        for (size_t c = 0; c < t.candidates; ++c)
            m = std::min(m, t.bitsAt(i, c));
        cheapest += m;
    }
    if (cheapest > allowed) {
        std::ostringstream s;
        s << "the budget (" << allowed / weights << " bits per weight) is below the cheapest candidates' "
          << cheapest / weights << " bits per weight";
        bad(s.str());
    }

    std::optional<std::vector<size_t>> pick;
    if (solver == MixedSolver::Exact) {
        // Costs that are whole units up to rounding noise stay whole; if that overshoots, strictly rounded up.
        pick = solveExact(t, allowed, 1e-9);
        if (pick && totalBits(t, *pick) > allowed)
            pick = solveExact(t, allowed, 0.0);
    }
    if (!pick) // rounding the costs up can make a budget that just fits unreachable for the exact solver
        pick = solveGreedy(t, allowed);
    if (!pick)
        bad("no assignment fits the budget");
    // What the rounding (or the greedy descent) left unspent: the best loss decrease per bit that still fits.
    double total = totalBits(t, *pick);
    while (moveOnce(t, *pick, total, allowed, false)) {
    }

    MixedPlan plan;
    for (const SensitivityResult& s : sweeps)
        plan.candidates.push_back(s.step);
    plan.metric = metric;
    plan.solver = solver;
    plan.budgetBits = allowed;
    plan.weights = static_cast<int64_t>(weights);
    plan.basePpl = sweeps.front().base.ppl;
    plan.baseNll = sweeps.front().base.nllMean;
    double sumNll = 0.0;
    for (size_t i = 0; i < t.layers; ++i) {
        const size_t c = (*pick)[i];
        const LayerSensitivity& r = sweeps[c].rows[i];
        MixedLayerChoice l{r.name, r.block, r.role, r.weights, c, r.badge, *r.bitsPerWeight, t.lossAt(i, c), r.deltaPpl};
        plan.bits += t.bitsAt(i, c);
        plan.predictedDeltaPpl += r.deltaPpl;
        sumNll += r.deltaNll;
        plan.layers.push_back(std::move(l));
    }
    plan.bitsPerWeight = weights > 0.0 ? plan.bits / weights : 0.0;
    plan.predictedPpl = std::exp(plan.baseNll + sumNll);
    return plan;
}

nlohmann::json MixedPlan::toJson() const
{
    nlohmann::json cands = nlohmann::json::array(), ls = nlohmann::json::array();
    for (const RecipeStep& s : candidates)
        cands.push_back(s.toJson());
    for (const MixedLayerChoice& l : layers)
        ls.push_back({{"name", l.name}, {"block", l.block}, {"role", std::string(roleName(l.role))},
                      {"weights", l.weights}, {"candidate", l.candidate}, {"badge", l.badge},
                      {"bits_per_weight", l.bitsPerWeight}, {"loss", l.loss}, {"delta_ppl", l.deltaPpl}});
    return {{"candidates", cands},
            {"metric", sensitivityMetricName(metric)},
            {"solver", mixedSolverName(solver)},
            {"budget_bits", budgetBits},
            {"budget_bits_per_weight", weights > 0 ? budgetBits / static_cast<double>(weights) : 0.0},
            {"weights", weights},
            {"bits", bits},
            {"bits_per_weight", bitsPerWeight},
            {"base_ppl", basePpl},
            {"predicted_delta_ppl", predictedDeltaPpl},
            {"predicted_ppl", predictedPpl},
            {"layers", ls}};
}

Recipe mixedRecipe(const CompressionState& base, const MixedPlan& plan, const RecipeCalibration& calibration)
{
    Recipe r;
    r.calibration = calibration;
    r.model = base.source ? base.source->path : std::string();
    std::ostringstream d;
    d << "mixed precision: " << plan.bitsPerWeight << " bits per weight predicted (" << sensitivityMetricName(plan.metric)
      << ", " << mixedSolverName(plan.solver) << ")";
    r.description = d.str();
    r.steps = base.steps;
    for (size_t c = 0; c < plan.candidates.size(); ++c) {
        std::vector<std::string> names;
        for (const MixedLayerChoice& l : plan.layers)
            if (l.candidate == c)
                names.push_back(l.name);
        if (names.empty())
            continue;
        RecipeStep s = plan.candidates[c];
        s.layers = exactNamesPattern(names);
        r.steps.push_back(std::move(s));
    }
    return r;
}

nlohmann::json MixedPrecisionResult::toJson(bool withSweeps) const
{
    nlohmann::json j{{"plan", plan.toJson()}, {"recipe", recipe.toJson()}, {"seconds", seconds}};
    j["measured_ppl"] = measuredPpl ? nlohmann::json(*measuredPpl) : nlohmann::json(nullptr);
    j["measured_bits_per_weight"] = measuredBitsPerWeight ? nlohmann::json(*measuredBitsPerWeight) : nlohmann::json(nullptr);
    if (withSweeps) {
        j["sweeps"] = nlohmann::json::array();
        for (const SensitivityResult& s : sweeps)
            j["sweeps"].push_back(s.toJson());
    }
    return j;
}

MixedPrecisionResult planMixedPrecision(const CompressionState& base, const MixedPrecisionOptions& options,
                                        std::span<const int32_t> evalTokens, const CalibrationText& calibration,
                                        const RecipeCalibration& recipeCalibration, const SensitivitySweepCallback& onRow,
                                        Progress* progress)
{
    const auto t0 = Clock::now();
    if (options.candidates.empty())
        bad("no candidates");
    for (const RecipeStep& c : options.candidates)
        if (c.action != StepAction::Quantize)
            bad("mixed precision chooses among quantizations; candidate " + c.badge() + " is a " + std::string(actionName(c.action)));
    MixedPrecisionResult r;
    const double sweepShare = options.measure ? 0.9 : 1.0;
    SensitivityOptions so;
    so.layers = options.layers;
    so.scoring = options.scoring;
    so.compareLogits = options.compareLogits;
    {
        SubProgress sub(progress, 0.0, sweepShare);
        r.sweeps = measureSensitivities(base, options.candidates, so, evalTokens, calibration, onRow, &sub);
    }
    r.plan = solveMixedPrecision(r.sweeps, options.budget, options.metric, options.solver);
    r.recipe = mixedRecipe(base, r.plan, recipeCalibration);
    if (options.measure) {
        SubProgress sub(progress, sweepShare, 1.0);
        CompressionState s = base;
        const CalibrationText none;
        const size_t first = base.steps.size(), steps = r.recipe.steps.size() - first;
        for (size_t k = first; k < r.recipe.steps.size(); ++k) {
            SubProgress stepProgress(&sub, 0.8 * static_cast<double>(k - first) / static_cast<double>(steps),
                                     0.8 * static_cast<double>(k - first + 1) / static_cast<double>(steps));
            const RecipeStep& step = r.recipe.steps[k];
            // Statistics only where they change the weights: the same model as a replay, sooner.
            s = applyStep(s, step, step.usesCalibration() ? calibration : none, &stepProgress).state;
        }
        SubProgress evalProgress(&sub, 0.8, 1.0);
        const std::unique_ptr<Transformer> engine = s.makeEngine(&evalProgress);
        r.measuredPpl = evaluatePerplexity(*engine, evalTokens, options.scoring, &evalProgress).ppl;
        r.measuredBitsPerWeight = s.linearBitsPerWeight();
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (progress)
        progress->report(1.0, "done");
    return r;
}

} // namespace ll
