#include "test_support.h"

#include "eval/perplexity.h"
#include "formats/open_model.h"
#include "formats/safetensors.h"
#include "pipeline/model_compression.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "model/tensor_data.h"
#include "util/error.h"

#include <QProcess>
#include <QStringList>
#include <QTemporaryDir>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>

namespace ll::test {

std::string sharedDir()
{
    return LAYERLAB_SHARED_DIR;
}

std::string sharedPath(const std::string& relative)
{
    return sharedDir() + "/" + relative;
}

bool haveShared()
{
    return std::filesystem::exists(sharedPath("models/stories260K-hf/config.json"));
}

static const TensorRef& findRef(const SafetensorsFile& f, const std::string& file, const std::string& tensor)
{
    for (const auto& t : f.tensors)
        if (t.name == tensor)
            return t;
    throw Error(ErrorCode::NotFound, file, "no tensor " + tensor);
}

std::vector<float> referenceFloats(const std::string& file, const std::string& tensor, std::vector<int64_t>* shape)
{
    SafetensorsFile f = readSafetensors(file);
    const TensorRef& t = findRef(f, file, tensor);
    if (shape)
        *shape = t.shape;
    return decodeStored(t);
}

std::vector<int64_t> referenceInt64(const std::string& file, const std::string& tensor)
{
    SafetensorsFile f = readSafetensors(file);
    const TensorRef& t = findRef(f, file, tensor);
    if (t.dtype != DType::I64)
        throw Error(ErrorCode::UnsupportedDType, file, tensor + " is not int64");
    std::vector<int64_t> out(static_cast<size_t>(t.elements()));
    std::memcpy(out.data(), t.data, out.size() * 8);
    return out;
}

CliResult runCli(const std::vector<std::string>& args)
{
    QProcess p;
    QStringList list;
    for (const auto& a : args)
        list << QString::fromStdString(a);
    p.start(QString::fromUtf8(LAYERLAB_CLI_PATH), list);
    CliResult r;
    if (!p.waitForStarted(10000))
        return r;
    p.waitForFinished(600000);
    r.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = p.readAllStandardOutput().toStdString();
    r.err = p.readAllStandardError().toStdString();
    return r;
}

std::string scratchDir()
{
    static std::unique_ptr<QTemporaryDir> root;
    static int counter = 0;
    if (!root)
        root = std::make_unique<QTemporaryDir>();
    const std::string dir = root->path().toStdString() + "/s" + std::to_string(counter++);
    std::filesystem::create_directories(dir);
    return dir;
}

void writeFile(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

MatrixRM heavyTailed(Eigen::Index rows, Eigen::Index cols, unsigned seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, 0.02f);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    MatrixRM W(rows, cols);
    for (Eigen::Index i = 0; i < W.size(); ++i)
        W.data()[i] = n(rng) * (u(rng) < 0.01f ? 12.0f : 1.0f);
    return W;
}

MatrixRM gaussian(Eigen::Index rows, Eigen::Index cols, unsigned seed, float scale)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, scale);
    MatrixRM X(rows, cols);
    for (Eigen::Index i = 0; i < X.size(); ++i)
        X.data()[i] = n(rng);
    return X;
}

double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b)
{
    if (a.size() != b.size())
        return std::numeric_limits<double>::infinity();
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
        if (!(d <= m)) // NaN counts as a mismatch
            m = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
    }
    return m;
}

std::shared_ptr<const Model> stories260K()
{
    static const std::shared_ptr<const Model> m = openModel(sharedPath("models/stories260K-hf"));
    return m;
}

const std::vector<int32_t>& stories260KCalib()
{
    static const std::vector<int32_t> ids = tokenizeTextFile(*stories260K(), sharedPath("data/tinystories/calib.txt"));
    return ids;
}

const std::vector<int32_t>& stories260KEval()
{
    static const std::vector<int32_t> ids = tokenizeTextFile(*stories260K(), sharedPath("data/tinystories/eval.txt"));
    return ids;
}

std::vector<int32_t> probeIds(int64_t vocab, int64_t n)
{
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < n; ++i)
        ids.push_back(static_cast<int32_t>((i * 37 + 11) % vocab));
    return ids;
}

RecipeStep recipeStep(const nlohmann::json& step)
{
    return parseRecipe(nlohmann::json{{"layerlab_recipe", 1}, {"steps", {step}}}.dump(), false).steps.front();
}

double stories260KStepPerplexity(const std::string& step, int64_t calibWindows)
{
    const std::shared_ptr<const Model> model = stories260K();
    const std::vector<int32_t>& eval = stories260KEval();
    const Recipe r = parseRecipe("layerlab_recipe: 1\ncalibration: {text: " + sharedPath("data/tinystories/calib.txt")
                                     + ", windows: " + std::to_string(calibWindows) + ", context: 256}\nsteps:\n  - " + step + "\n",
                                 true, "r.yaml");
    const StepOutcome out = applyRecipe(model, r);
    ScoringOptions so;
    so.maxWindows = 64;
    return evaluatePerplexity(*out.state.makeEngine(), eval, so).ppl;
}

} // namespace ll::test
