#pragma once
// Helpers shared by the test programs: where the shared data lives, reading
// reference tensors, running the CLI, writing scratch files.
#include "model/model.h"
#include "model/tensor_data.h"
#include "util/progress.h"

#include <QString>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ll {
struct RecipeStep;
}

namespace ll::test {

// ../shared beside the project (CI clones the project next to it).
std::string sharedDir();
std::string sharedPath(const std::string& relative);
bool haveShared();

// Reads a tensor of a safetensors file as floats (F32/F16/BF16) or int64 (I64).
std::vector<float> referenceFloats(const std::string& file, const std::string& tensor,
                                   std::vector<int64_t>* shape = nullptr);
std::vector<int64_t> referenceInt64(const std::string& file, const std::string& tensor);

// Runs layerlab-cli with arguments; returns its exit code, stdout and stderr.
struct CliResult {
    int exitCode = -1;
    std::string out, err;
};
CliResult runCli(const std::vector<std::string>& args);

// A fresh scratch folder (removed when the process exits).
std::string scratchDir();
void writeFile(const std::string& path, const std::string& bytes);
std::string readFile(const std::string& path);

// A Progress that cancels once `n` reports have come (midway through a job).
class CancelAfter : public Progress {
public:
    explicit CancelAfter(int n) : left_(n) {}
    void report(double, std::string_view) override
    {
        ++reports;
        if (--left_ <= 0)
            cancel_ = true;
    }
    bool cancelled() const override { return cancel_; }
    int reports = 0;

private:
    int left_;
    bool cancel_ = false;
};

// Gaussian weights (std 0.02) with 1 % of them 12x larger, as LLM weights have; fixed by the seed.
MatrixRM heavyTailed(Eigen::Index rows, Eigen::Index cols, unsigned seed);
// Independent normal entries N(0, scale²) (std::mt19937 and std::normal_distribution), fixed by the seed.
MatrixRM gaussian(Eigen::Index rows, Eigen::Index cols, unsigned seed, float scale = 1.0f);

// max |a - b| over two equally long arrays (inf if sizes differ).
double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b);

// stories260K-hf, opened once per test program.
std::shared_ptr<const Model> stories260K();
// TinyStories' calib.txt and eval.txt as stories260K's tokens (tokenized once each).
const std::vector<int32_t>& stories260KCalib();
const std::vector<int32_t>& stories260KEval();
// n token ids spread over a vocabulary, (37 i + 11) mod vocab: a probe of the logits that needs no text.
std::vector<int32_t> probeIds(int64_t vocab, int64_t n);
// One step as a recipe file gives it: parsed and validated ({"action": .., "method": .., ...}).
RecipeStep recipeStep(const nlohmann::json& step);

// stories260K-hf after a recipe of one step (a YAML flow map, e.g. "{action:
// quantize, method: rptq}") calibrated on `calibWindows` windows of 256 of
// calib.txt, its perplexity on the first 64 windows of 256 of eval.txt with
// the state's engine (activation quantization included).
double stories260KStepPerplexity(const std::string& step, int64_t calibWindows = 16);

} // namespace ll::test

// QSKIP when ../shared is missing (the tests that need it say so).
#define LL_REQUIRE_SHARED()                                                                  \
    do {                                                                                     \
        if (!ll::test::haveShared())                                                         \
            QSKIP("../shared (test models and references) is not beside the project");      \
    } while (0)
