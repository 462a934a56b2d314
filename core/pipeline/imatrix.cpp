#include "pipeline/imatrix.h"

#include "calib/calibration.h"
#include "engine/transformer.h"
#include "util/atomic_file.h"
#include "model/naming.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/progress.h"

#include <cmath>
#include <cstring>
#include <mutex>

namespace ll {

namespace {

// Sums of x_j² per block input (AttnQ, AttnO, MlpUp, MlpDown), and the rows seen.
class SquareSums : public LinearInputObserver {
public:
    struct Sum {
        std::vector<double> squares;
        int64_t rows = 0;
    };
    void linearInput(int block, Role role, const ConstMatrixRef& x) override
    {
        std::vector<double> local(static_cast<size_t>(x.cols()), 0.0);
        for (Eigen::Index r = 0; r < x.rows(); ++r)
            for (Eigen::Index c = 0; c < x.cols(); ++c)
                local[static_cast<size_t>(c)] += static_cast<double>(x(r, c)) * x(r, c);
        std::lock_guard<std::mutex> lock(mutex_);
        Sum& s = sums_[{block, role}];
        if (s.squares.empty())
            s.squares.assign(local.size(), 0.0);
        for (size_t c = 0; c < local.size() && c < s.squares.size(); ++c)
            s.squares[c] += local[c];
        s.rows += x.rows();
    }
    const Sum* find(int block, Role role) const
    {
        const auto it = sums_.find({block, role});
        return it == sums_.end() ? nullptr : &it->second;
    }

private:
    std::mutex mutex_;
    std::map<std::pair<int, Role>, Sum> sums_;
};

bool isBlockLinear(const LogicalTensor& t)
{
    return isLinear(t.role) && !t.isBias && t.block >= 0 && t.shape.size() == 2;
}

// A little-endian reader over the mapped file; every read is bounds-checked.
class Reader {
public:
    explicit Reader(const MappedFile& f) : f_(f) {}
    int32_t i32(const char* what)
    {
        int32_t v;
        std::memcpy(&v, f_.bytes(pos_, 4, what).data(), 4);
        pos_ += 4;
        return v;
    }
    std::string text(int32_t n, const char* what)
    {
        const auto b = f_.bytes(pos_, static_cast<uint64_t>(n), what);
        pos_ += static_cast<uint64_t>(n);
        return {reinterpret_cast<const char*>(b.data()), b.size()};
    }
    std::vector<float> floats(int32_t n, const char* what)
    {
        // The bytes first: a count the file cannot hold allocates nothing.
        const auto b = f_.bytes(pos_, 4ull * static_cast<uint64_t>(n), what);
        std::vector<float> v(static_cast<size_t>(n));
        std::memcpy(v.data(), b.data(), b.size());
        pos_ += b.size();
        return v;
    }
    bool atEnd() const { return pos_ >= f_.size(); }
    uint64_t left() const { return f_.size() - pos_; }

private:
    const MappedFile& f_;
    uint64_t pos_ = 0;
};

} // namespace

const std::vector<float>* Imatrix::find(const std::string& ggufName) const
{
    const auto it = entries.find(ggufName);
    return it == entries.end() ? nullptr : &it->second.meanSquare;
}

Imatrix computeImatrix(const Model& model, std::span<const int32_t> tokens, const ImatrixOptions& o,
                       const std::string& dataset, Progress* progress)
{
    // llama-imatrix ignores products of fewer than 16 tokens.
    if (o.context < 16)
        fail(ErrorCode::InvalidArgument, dataset, "imatrix chunks need at least 16 tokens, not " + std::to_string(o.context));
    int64_t chunks = static_cast<int64_t>(tokens.size()) / o.context;
    if (o.chunks > 0)
        chunks = std::min(chunks, o.chunks);
    if (chunks < 1)
        fail(ErrorCode::InvalidArgument, dataset,
             "the text is " + std::to_string(tokens.size()) + " tokens long, shorter than one chunk of "
                 + std::to_string(o.context));
    const int32_t bos = loadTokenizer(model)->bosId();
    SubProgress loading(progress, 0.0, 0.05);
    const Transformer engine(model, &loading);
    SquareSums sums;
    constexpr int64_t kChunksPerPass = 4; // windows of a pass run in parallel
    for (int64_t c0 = 0; c0 < chunks; c0 += kChunksPerPass) {
        throwIfCancelled(progress);
        const int64_t n = std::min(kChunksPerPass, chunks - c0);
        std::vector<int32_t> ids(tokens.begin() + c0 * o.context, tokens.begin() + (c0 + n) * o.context);
        if (bos >= 0)
            for (int64_t c = 0; c < n; ++c)
                ids[static_cast<size_t>(c * o.context)] = bos; // as llama-imatrix: every chunk starts with BOS
        (void)engine.hiddenBatch(ids, o.context, &sums);
        if (progress)
            progress->report(0.05 + 0.95 * static_cast<double>(c0 + n) / static_cast<double>(chunks),
                             "chunk " + std::to_string(c0 + n) + " of " + std::to_string(chunks));
    }
    Imatrix m;
    m.chunks = static_cast<int32_t>(chunks);
    m.dataset = dataset;
    for (const LogicalTensor& t : model.tensors) {
        if (!isBlockLinear(t))
            continue;
        const SquareSums::Sum* s = sums.find(t.block, inputRoleOf(t.role));
        const std::string name = ggufNameOf(t);
        if (!s || s->rows == 0 || name.empty())
            continue;
        ImatrixEntry e;
        e.calls = static_cast<int32_t>(chunks);
        e.meanSquare.resize(s->squares.size());
        for (size_t j = 0; j < s->squares.size(); ++j)
            e.meanSquare[j] = static_cast<float>(s->squares[j] / static_cast<double>(s->rows));
        m.entries[name] = std::move(e);
    }
    return m;
}

void saveImatrix(const Imatrix& m, const std::string& path, bool overwrite)
{
    AtomicFile file(path, overwrite);
    FileWriter& out = file.out();
    const auto i32 = [&](int64_t v) {
        const int32_t x = static_cast<int32_t>(v);
        out.write(&x, 4);
    };
    i32(static_cast<int64_t>(m.entries.size()));
    for (const auto& [name, e] : m.entries) {
        i32(static_cast<int64_t>(name.size()));
        out.write(name.data(), name.size());
        i32(e.calls);
        i32(static_cast<int64_t>(e.meanSquare.size()));
        std::vector<float> scaled(e.meanSquare.size());
        for (size_t j = 0; j < scaled.size(); ++j)
            scaled[j] = e.meanSquare[j] * static_cast<float>(e.calls); // llama.cpp stores mean · ncall
        out.write(scaled.data(), 4 * scaled.size());
    }
    i32(m.chunks);
    i32(static_cast<int64_t>(m.dataset.size()));
    out.write(m.dataset.data(), m.dataset.size());
    file.commit();
}

Imatrix loadImatrix(const std::string& path)
{
    const auto file = MappedFile::open(path);
    Reader in(*file);
    const auto bad = [&](const std::string& problem) { fail(ErrorCode::Malformed, path, "not an imatrix file: " + problem); };
    const int32_t n = in.i32("the entry count");
    // Each entry takes at least 16 bytes: a larger count cannot be true.
    if (n < 1 || static_cast<uint64_t>(n) > in.left() / 16)
        bad("it announces " + std::to_string(n) + " entries");
    Imatrix m;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t len = in.i32("an entry's name length");
        if (len < 1 || len > 1024)
            bad("entry " + std::to_string(i + 1) + " has a name of " + std::to_string(len) + " bytes");
        std::string name = in.text(len, "an entry's name");
        ImatrixEntry e;
        e.calls = in.i32("an entry's call count");
        const int32_t nval = in.i32("an entry's value count");
        if (e.calls < 0 || nval < 1)
            bad("entry '" + name + "' has " + std::to_string(nval) + " values over " + std::to_string(e.calls) + " calls");
        e.meanSquare = in.floats(nval, "an entry's values");
        for (float& v : e.meanSquare) {
            if (!std::isfinite(v) || v < 0.0f)
                bad("entry '" + name + "' has a value that is negative, infinite or NaN");
            if (e.calls > 0)
                v /= static_cast<float>(e.calls); // as llama-quantize's load_imatrix
        }
        if (!m.entries.emplace(std::move(name), std::move(e)).second)
            bad("entry " + std::to_string(i + 1) + " repeats a name");
    }
    if (!in.atEnd()) { // the trailer: chunks and the dataset's name
        m.chunks = in.i32("the chunk count");
        const int32_t len = in.i32("the dataset name's length");
        if (len < 0 || static_cast<uint64_t>(len) > in.left())
            bad("the dataset name is " + std::to_string(len) + " bytes long");
        m.dataset = in.text(len, "the dataset name");
    }
    return m;
}

void useImatrixParam(const Model& model, QuantizeModelOptions& options)
{
    const ParamValues& v = options.config.params;
    if (!v.contains("imatrix") || v.text("imatrix").empty())
        return;
    const std::string path = v.text("imatrix");
    const Imatrix m = loadImatrix(path);
    for (const LogicalTensor& t : model.tensors) {
        if (!isBlockLinear(t))
            continue;
        const std::string name = ggufNameOf(t);
        const std::vector<float>* e = m.find(name);
        if (!e)
            continue;
        if (static_cast<int64_t>(e->size()) != t.shape[1])
            fail(ErrorCode::InvalidArgument, path, "the imatrix has " + std::to_string(e->size()) + " values for " + name
                                                       + ", whose rows have " + std::to_string(t.shape[1]));
        options.importance[t.logicalName] = *e;
    }
    if (options.importance.empty())
        fail(ErrorCode::InvalidArgument, path, "the imatrix has no entry for any block linear of " + model.path);
}

std::vector<std::string> imatrixGaps(const Imatrix& m, const Model& model)
{
    std::vector<std::string> gaps;
    for (const LogicalTensor& t : model.tensors) {
        if (!isBlockLinear(t))
            continue;
        const std::string name = ggufNameOf(t);
        const std::vector<float>* v = m.find(name);
        if (!v || static_cast<int64_t>(v->size()) != t.shape[1])
            gaps.push_back(name);
    }
    return gaps;
}

} // namespace ll
