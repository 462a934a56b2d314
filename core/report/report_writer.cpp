#include "report/report_writer.h"

#include "util/atomic_file.h"
#include "model/model.h"
#include "model/tensor_data.h"
#include "report/h5_writer.h"
#include "stats/tensor_stats.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/progress.h"
#include "util/json_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>

namespace ll {

namespace {

// The serial HDF5 library Debian ships is not thread-safe: one report at a time.
std::mutex gHdf5Mutex;

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL, kFnvPrime = 0x100000001b3ULL;

std::string utcNow()
{
    const std::time_t now = std::time(nullptr);
    std::tm tm {};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// HDF5 link names cannot hold '/'; "." alone is the group itself.
std::string linkName(std::string s)
{
    for (char& c : s)
        if (c == '/')
            c = '_';
    if (s.empty() || s == ".")
        s = "_" + s;
    return s;
}

// 1 bit per value, 1 = nonzero; value k is bit (k % 8) of byte k / 8 (numpy's bitorder="little").
std::vector<uint8_t> packNonzeroMask(const std::vector<float>& v)
{
    std::vector<uint8_t> bits((v.size() + 7) / 8, 0);
    for (size_t k = 0; k < v.size(); ++k)
        if (v[k] != 0.0f)
            bits[k / 8] |= static_cast<uint8_t>(1u << (k % 8));
    return bits;
}

// JSON members as HDF5: scalars become attributes, objects groups, numeric
// arrays float64 datasets, anything else an attribute holding its JSON text.
void writeJsonMembers(h5::File& f, hid_t obj, const nlohmann::json& j)
{
    for (const auto& [key, v] : j.items()) {
        const std::string name = linkName(key);
        if (name == "json")
            continue; // the whole document already sits under that name
        if (v.is_boolean())
            f.attr(obj, name, static_cast<int64_t>(v.get<bool>()));
        else if (v.is_number_integer())
            f.attr(obj, name, v.get<int64_t>());
        else if (v.is_number())
            f.attr(obj, name, v.get<double>());
        else if (v.is_string())
            f.attr(obj, name, v.get<std::string>());
        else if (v.is_object())
            writeJsonMembers(f, f.group(obj, name).get(), v);
        else if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_number(); })) {
            std::vector<double> d;
            for (const auto& e : v)
                d.push_back(e.get<double>());
            f.dataset(obj, name, d);
        } else
            f.attr(obj, name, dumpJson(v));
    }
}

void writeModelGroup(h5::File& f, const Model& m, const std::string& headerHash)
{
    const h5::Handle g = f.group(f.root(), "model");
    const hid_t id = g.get();
    f.attr(id, "source_path", m.path);
    f.attr(id, "format", m.format);
    f.attr(id, "family", std::string(familyName(m.config.family)));
    f.attr(id, "model_type", m.config.modelType);
    std::vector<std::string> paths;
    std::vector<uint64_t> sizes;
    uint64_t total = 0;
    for (const auto& file : m.files) {
        paths.push_back(file->path());
        sizes.push_back(file->size());
        total += file->size();
    }
    f.attr(id, "file_paths", paths);
    f.attr(id, "file_sizes", sizes);
    f.attr(id, "total_file_bytes", total);
    f.attr(id, "header_hash", headerHash);
    f.attr(id, "header_hash_algorithm", "fnv1a64");
    f.attr(id, "header_hash_bytes", kHeaderHashBytes);
    f.attr(id, "parameter_count", m.parameterCount());
    f.attr(id, "stored_parameter_count", m.storedParameterCount());
    f.attr(id, "tensor_count", static_cast<int64_t>(m.tensors.size()));
    const ModelConfig& c = m.config;
    f.attr(id, "hidden", c.hidden);
    f.attr(id, "intermediate", c.intermediate);
    f.attr(id, "layers", c.layers);
    f.attr(id, "heads", c.heads);
    f.attr(id, "kv_heads", c.kvHeads);
    f.attr(id, "head_dim", c.headDim);
    f.attr(id, "vocab", c.vocab);
    f.attr(id, "max_positions", c.maxPositions);
    f.attr(id, "tied_embeddings", static_cast<int64_t>(c.tiedEmbeddings));
}

void writeStats(h5::File& f, hid_t g, const TensorStats& s)
{
    f.attr(g, "count", s.count);
    f.attr(g, "nans", s.nans);
    f.attr(g, "min", s.min);
    f.attr(g, "max", s.max);
    f.attr(g, "mean", s.mean);
    f.attr(g, "std", s.std);
    f.attr(g, "kurtosis", s.kurtosis);
    f.attr(g, "abs_max", s.absMax);
    f.attr(g, "abs_max_over_std", s.absMaxOverStd);
    f.attr(g, "zeros", s.zeros);
    f.attr(g, "sparsity", s.zeroShare());
    f.attr(g, "outlier_sigma", s.outlierSigma);
    f.attr(g, "outliers", s.outliers);
    const Histogram& h = s.histogram;
    f.dataset(g, "histogram_counts", h.counts);
    std::vector<double> edges(h.counts.size() + 1);
    for (size_t i = 0; i < edges.size(); ++i)
        edges[i] = i + 1 == edges.size() ? h.hi : h.lo + static_cast<double>(i) * h.binWidth();
    f.dataset(g, "histogram_edges", edges);
}

void writeCurve(h5::File& f, hid_t layerGroup, const ReportErrorCurve& c)
{
    const h5::Handle curves = [&] {
        if (H5Lexists(layerGroup, "error_curves", H5P_DEFAULT) > 0)
            return h5::Handle(f.check(H5Gopen2(layerGroup, "error_curves", H5P_DEFAULT), "open 'error_curves'"),
                              H5Gclose);
        return f.group(layerGroup, "error_curves");
    }();
    const h5::Handle g = f.group(curves.get(), linkName(c.method));
    f.attr(g.get(), "method", c.method);
    f.attr(g.get(), "x_label", c.xLabel);
    f.dataset(g.get(), "x", c.x);
    f.dataset(g.get(), "weight_error", c.weightError);
    if (!c.outputError.empty())
        f.dataset(g.get(), "output_error", c.outputError);
}

void validate(const ReportInputs& in, const std::string& path)
{
    if (!in.model)
        fail(ErrorCode::InvalidArgument, path, "no model given for the report");
    if (in.options.bins < 1 || in.options.bins > (1 << 24))
        fail(ErrorCode::InvalidArgument, path, "the histogram needs between 1 and 2^24 bins");
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& c : in.errorCurves) {
        if (!in.model->findLogical(c.layer))
            fail(ErrorCode::InvalidArgument, path, "error curve for '" + c.layer + "': the model has no such tensor");
        if (c.weightError.size() != c.x.size() || (!c.outputError.empty() && c.outputError.size() != c.x.size()))
            fail(ErrorCode::InvalidArgument, path, "error curve " + c.layer + " / " + c.method + ": x and errors differ in length");
        if (!seen.insert({c.layer, linkName(c.method)}).second)
            fail(ErrorCode::InvalidArgument, path, "two error curves for " + c.layer + " / " + c.method);
    }
    if (in.evaluation && !in.evaluation->is_object())
        fail(ErrorCode::InvalidArgument, path, "the evaluation must be a JSON object");
}

} // namespace

std::string modelHeaderHash(const Model& model)
{
    uint64_t h = kFnvOffset;
    for (const auto& file : model.files) {
        const uint64_t n = std::min<uint64_t>(file->size(), kHeaderHashBytes);
        const uint8_t* p = file->data();
        for (uint64_t i = 0; i < n; ++i) {
            h ^= p[i];
            h *= kFnvPrime;
        }
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

nlohmann::json ReportResult::toJson() const
{
    return {{"path", path},       {"bytes", bytes},   {"tensors", tensors}, {"undecodable", undecodable},
            {"masks", masks},     {"header_hash", headerHash}, {"seconds", seconds}};
}

ReportResult writeReport(const std::string& path, const ReportInputs& in, Progress* progress)
{
    const auto started = std::chrono::steady_clock::now();
    validate(in, path);
    const Model& m = *in.model;
    const ReportOptions& opt = in.options;
    ReportResult r;
    r.path = path;
    r.headerHash = modelHeaderHash(m);

    std::vector<std::string> sourceFiles;
    for (const auto& file : m.files)
        sourceFiles.push_back(file->path());
    std::error_code dirEc;
    refuseSourceOverlap(sourceFiles, std::filesystem::is_directory(m.path, dirEc) ? m.path : std::string(), path, false);

    std::lock_guard lock(gHdf5Mutex);
    const h5::QuietErrors quiet;
    throwIfCancelledWriting(progress, path);
    AtomicFile out(path, opt.overwrite); // reserves the partial name; removes it unless committed
    try {
        h5::File f(path);
        f.attr(f.root(), "schema", "layerlab-report");
        f.attr(f.root(), "schema_version", kReportSchemaVersion);
        f.attr(f.root(), "layerlab_version", LAYERLAB_VERSION);
        f.attr(f.root(), "created", utcNow());
        writeModelGroup(f, m, r.headerHash);

        // Progress by elements: a 32000 x 4096 embedding weighs more than a norm.
        double total = 0.0, done = 0.0;
        for (const auto& t : m.tensors)
            total += static_cast<double>(t.elements());
        h5::Handle layers = f.group(f.root(), "layers", true);
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            const LogicalTensor& t = m.tensors[i];
            throwIfCancelledWriting(progress, path);
            // Decoding takes the first half of the tensor's share, statistics the second.
            const double lo = done / std::max(total, 1.0);
            const double share = total > 0 ? static_cast<double>(t.elements()) / total : 0.0;
            SubProgress decoding(progress, lo, lo + share / 2, "report: " + t.logicalName);
            SubProgress stats(progress, lo + share / 2, lo + share, "report: " + t.logicalName);
            done += static_cast<double>(t.elements());

            const h5::Handle g = f.group(layers.get(), linkName(t.logicalName));
            const TensorRef& ref = m.storedOf(t);
            const bool edited = t.edited() || ref.edited;
            f.attr(g.get(), "index", static_cast<int64_t>(i));
            f.attr(g.get(), "logical_name", t.logicalName);
            f.attr(g.get(), "stored_name", ref.name);
            f.attr(g.get(), "role", std::string(roleName(t.role)));
            f.attr(g.get(), "block", static_cast<int64_t>(t.block));
            f.attr(g.get(), "is_linear", static_cast<int64_t>(isLinear(t.role) && !t.isBias));
            f.attr(g.get(), "is_bias", static_cast<int64_t>(t.isBias));
            f.attr(g.get(), "tied", static_cast<int64_t>(t.tied));
            f.attr(g.get(), "edited", static_cast<int64_t>(edited));
            f.attr(g.get(), "factored", static_cast<int64_t>(t.factored()));
            f.attr(g.get(), "corrected", static_cast<int64_t>(t.corrected()));
            if (t.hasFactors())
                f.attr(g.get(), "rank", m.stored.at(static_cast<size_t>(t.factorA)).shape.at(1));
            f.attr(g.get(), "dtype", ref.dtype == DType::Unknown ? ref.dtypeLabel : std::string(dtypeName(ref.dtype)));
            f.attr(g.get(), "shape", t.shape);
            for (const auto& c : in.errorCurves)
                if (c.layer == t.logicalName)
                    writeCurve(f, g.get(), c);

            std::vector<float> values;
            try {
                values = readLogical(m, t, &decoding);
            } catch (const Error& e) {
                if (e.code() != ErrorCode::UnsupportedDType)
                    throw;
                f.attr(g.get(), "decodable", 0);
                ++r.undecodable;
                ++r.tensors;
                continue;
            }
            f.attr(g.get(), "decodable", 1);
            StatsOptions so;
            so.bins = opt.bins;
            so.outlierSigma = opt.outlierSigma;
            const TensorStats s = computeStats(values, so, &stats);
            writeStats(f, g.get(), s);
            if (s.zeros > 0 && (edited || (t.shape.size() == 2 && s.zeroShare() >= opt.maskMinSparsity))) {
                const h5::Handle d = f.dataset(g.get(), "sparsity_mask", packNonzeroMask(values));
                const int64_t rows = t.shape.empty() ? 1 : (t.shape.size() == 1 ? 1 : t.shape[0]);
                f.attr(d.get(), "rows", rows);
                f.attr(d.get(), "cols", rows > 0 ? static_cast<int64_t>(values.size()) / rows : 0);
                f.attr(d.get(), "bit_order", "little");
                f.attr(d.get(), "meaning", "1 = nonzero weight (kept), 0 = zero (pruned)");
                ++r.masks;
            }
            ++r.tensors;
        }
        layers.reset(); // closed before the file: a strong close would leave it dangling

        // A JSON document as a group: the whole in attribute `json`, its members mapped.
        const auto jsonSection = [&f](const char* name, const std::optional<nlohmann::json>& j) {
            if (!j)
                return;
            const h5::Handle g = f.group(f.root(), name);
            f.attr(g.get(), "json", j->dump());
            writeJsonMembers(f, g.get(), *j);
        };
        jsonSection("evaluation", in.evaluation);
        jsonSection("tasks", in.tasks);
        jsonSection("efficiency", in.efficiency);
        if (in.recipe && !in.recipe->is_null()) {
            const h5::Handle d = f.stringDataset(f.root(), "recipe", in.recipe->dump());
            f.attr(d.get(), "format", "json");
        }
        if (!in.sensitivity.empty()) {
            const h5::Handle g = f.group(f.root(), "sensitivity");
            std::vector<std::string> layer, method;
            std::vector<double> dppl, kl;
            const double nan = std::numeric_limits<double>::quiet_NaN();
            for (const auto& row : in.sensitivity) {
                layer.push_back(row.layer);
                method.push_back(row.method);
                dppl.push_back(row.deltaPpl.value_or(nan));
                kl.push_back(row.kl.value_or(nan));
            }
            f.attr(g.get(), "rows", static_cast<int64_t>(layer.size()));
            f.dataset(g.get(), "layer", layer);
            f.dataset(g.get(), "method", method);
            f.dataset(g.get(), "delta_ppl", dppl);
            f.dataset(g.get(), "kl", kl);
        }
        throwIfCancelledWriting(progress, path);
        const std::vector<uint8_t> image = f.finish();
        // In 64 MiB pieces so that a large (mask-heavy) report stays cancellable.
        constexpr size_t kPiece = size_t{64} << 20;
        for (size_t at = 0; at < image.size(); at += kPiece) {
            throwIfCancelledWriting(progress, path);
            out.out().write(image.data() + at, std::min(kPiece, image.size() - at));
        }
    } catch (const Error& e) {
        // Decoding and statistics cancel in their own words; the report names its file.
        if (e.code() == ErrorCode::Cancelled)
            fail(ErrorCode::Cancelled, path, "report cancelled; nothing was written");
        throw;
    }
    r.bytes = out.commit();
    if (progress)
        progress->report(1.0, "report written");
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return r;
}

} // namespace ll
