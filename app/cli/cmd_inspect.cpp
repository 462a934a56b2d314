// layerlab-cli inspect: the model's tensors, or one tensor's statistics.
#include "args.h"
#include "commands.h"

#include "analysis/model_warnings.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "stats/tensor_stats.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

nlohmann::json shapeJson(const std::vector<int64_t>& shape)
{
    nlohmann::json a = nlohmann::json::array();
    for (int64_t d : shape)
        a.push_back(d);
    return a;
}

std::string shapeText(const std::vector<int64_t>& shape)
{
    std::string s;
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? " x " : "") + std::to_string(shape[i]);
    return s.empty() ? "scalar" : s;
}

std::string dtypeLabel(const TensorRef& t)
{
    return t.dtypeLabel.empty() ? std::string(dtypeName(t.dtype)) : t.dtypeLabel;
}

// A tensor by stored name, logical name, or (for fused tensors) stored name of its first part.
const LogicalTensor& findTensor(const Model& m, const std::string& name)
{
    if (const auto* t = m.findByStoredName(name))
        return *t;
    if (const auto* t = m.findLogical(name))
        return *t;
    fail(ErrorCode::NotFound, m.path, "no tensor named '" + name + "'");
}

int inspectTensor(const Model& m, const std::string& name, const Args& a)
{
    const LogicalTensor& t = findTensor(m, name);
    const TensorRef& ref = m.storedOf(t);
    // Stored name given: statistics of the whole stored tensor; logical name: of that part.
    const bool whole = ref.name == name;
    std::vector<float> values = whole ? decodeStored(ref) : readLogical(m, t);
    StatsOptions opt;
    opt.outlierSigma = a.doubleOr("sigma", 3.0);
    opt.bins = static_cast<int>(a.intOr("bins", 64, 1, 1 << 20));
    const TensorStats s = computeStats(values, opt);
    if (a.flag("json")) {
        nlohmann::json j{
            {"name", whole ? ref.name : t.logicalName},
            {"logical_name", t.logicalName},
            {"shape", shapeJson(whole ? ref.shape : t.shape)},
            {"dtype", dtypeLabel(ref)},
            {"stats",
             {{"count", s.count}, {"min", s.min}, {"max", s.max}, {"mean", s.mean}, {"std", s.std},
              {"kurtosis", s.kurtosis}, {"abs_max", s.absMax}, {"abs_max_over_std", s.absMaxOverStd},
              {"zeros", s.zeros}, {"non_finite", s.nans},
              {"outliers_3sigma", opt.outlierSigma == 3.0 ? s.outliers : computeStats(values, {3.0, 1, 0}).outliers},
              {"outliers", s.outliers}, {"outlier_sigma", opt.outlierSigma}}},
            {"histogram", {{"lo", s.histogram.lo}, {"hi", s.histogram.hi}, {"counts", s.histogram.counts}}},
        };
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s (%s)  %s  %s\n", ref.name.c_str(), t.logicalName.c_str(), shapeText(whole ? ref.shape : t.shape).c_str(),
                dtypeLabel(ref).c_str());
    std::printf("  count %lld  min %.6g  max %.6g  mean %.6g  std %.6g\n", static_cast<long long>(s.count), s.min, s.max,
                s.mean, s.std);
    std::printf("  kurtosis %.4g  |x|max/std %.4g  zeros %lld  outliers(>%gσ) %lld (%.3f %%)\n", s.kurtosis,
                s.absMaxOverStd, static_cast<long long>(s.zeros), s.outlierSigma, static_cast<long long>(s.outliers),
                100.0 * s.outlierShare());
    if (s.nans)
        std::printf("  WARNING: %lld NaN/Inf values\n", static_cast<long long>(s.nans));
    return 0;
}

int inspectModel(const Model& m, const Args& a)
{
    const std::vector<ModelWarning> found = modelWarnings(m);
    std::vector<std::string> warnings;
    for (const ModelWarning& w : found)
        warnings.push_back(w.blocksRunning ? w.text + "; the model cannot run until they agree" : w.text);
    if (a.flag("json")) {
        nlohmann::json tensors = nlohmann::json::array();
        for (const auto& t : m.tensors) {
            const TensorRef& ref = m.storedOf(t);
            tensors.push_back({{"name", ref.name},
                               {"logical_name", t.logicalName},
                               {"role", std::string(roleName(t.role))},
                               {"block", t.block},
                               {"shape", shapeJson(t.shape)},
                               {"stored_shape", shapeJson(ref.shape)},
                               {"dtype", dtypeLabel(ref)},
                               {"decodable", canDecode(ref.dtype)},
                               {"parameters", t.elements()},
                               {"tied", t.tied}});
        }
        nlohmann::json j{
            {"path", m.path},
            {"format", m.format},
            {"family", std::string(familyName(m.config.family))},
            {"synthetic", m.config.synthetic},
            {"parameters", m.parameterCount()},
            {"stored_parameters", m.storedParameterCount()},
            {"bytes", m.storedBytes()},
            {"config",
             {{"hidden", m.config.hidden}, {"intermediate", m.config.intermediate}, {"layers", m.config.layers},
              {"heads", m.config.heads}, {"kv_heads", m.config.kvHeads}, {"head_dim", m.config.headDim},
              {"vocab", m.config.vocab}, {"tied_embeddings", m.config.tiedEmbeddings}}},
            {"tensors", tensors},
            {"warnings", warnings},
        };
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s: %s (%s), %lld parameters, %.2f MB\n", m.path.c_str(), std::string(familyName(m.config.family)).c_str(),
                m.format.c_str(), static_cast<long long>(m.parameterCount()), static_cast<double>(m.storedBytes()) / 1e6);
    for (const std::string& w : warnings)
        std::printf("  WARNING: %s\n", oneLine(w).c_str());
    for (const auto& t : m.tensors) {
        const TensorRef& ref = m.storedOf(t);
        std::printf("  %-36s %-40s %-14s %-7s%s\n", t.logicalName.c_str(), ref.name.c_str(), shapeText(t.shape).c_str(),
                    dtypeLabel(ref).c_str(), canDecode(ref.dtype) ? "" : "  (cannot decode)");
    }
    return 0;
}

} // namespace

int cmdInspect(const std::vector<std::string>& argv)
{
    const Args a(argv, {"tensor", "sigma", "bins"}, {"json"});
    const std::string path = a.positionalAt(0, "MODEL");
    const auto model = openModel(path);
    if (auto name = a.value("tensor"))
        return inspectTensor(*model, *name, a);
    return inspectModel(*model, a);
}

} // namespace ll::cli
