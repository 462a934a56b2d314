// ShortGPT (pipeline/remove_blocks, prune method shortgpt) against its
// definition: Block Influence equals 1 − mean cos of a block's input and
// output computed independently (from truncated models whose final norm is
// made an identity up to scale); a model without block k computes what the
// original computes skipping block k; exports (Hugging Face, GGUF) reload
// with the same logits and a config that counts the blocks left; records
// follow the renumbering; a recipe replays bit-identically; refusals.
#include "test_support.h"

#include "engine/transformer.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"
#include "formats/open_model.h"
#include "model/tensor_data.h"
#include "pipeline/remove_blocks.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <QtTest>

#include <fstream>

using namespace ll;

namespace {

// BI from the two routes: float forward passes in another grouping of the same operations.
constexpr double kInfluenceTol = 1e-5;
// Logits of the shorter model against the original skipping the block.
constexpr float kLogitTol = 1e-5f;
// After export and reload: llama.cpp's and llama2.c's interleaved rotary pairs become transformers'
// halves (q and k rows permuted), so the same function rounds differently (measured 2.0e-5).
constexpr float kReloadTol = 5e-5f;
constexpr int64_t kCtx = 64;

std::vector<int32_t> calibWindows(int64_t windows)
{
    const std::vector<int32_t>& t = test::stories260KCalib();
    return std::vector<int32_t>(t.begin(), t.begin() + windows * kCtx);
}

// The hidden states after the first `blocks` blocks, each token scaled by a
// positive factor (the final RMSNorm with its weight set to ones): cosines are unchanged.
MatrixRM scaledHiddenAfter(int blocks, std::span<const int32_t> ids)
{
    Model base = *test::stories260K();
    const std::string norm = base.find(-1, Role::FinalNorm)->logicalName;
    replaceTensor(base, norm, std::vector<float>(static_cast<size_t>(base.config.hidden), 1.0f), {base.config.hidden});
    const Transformer full(base);
    if (blocks == 0)
        return full.finishHidden(full.embedWindows(ids, kCtx)); // the embeddings, normed the same way
    std::vector<int> drop;
    for (int b = blocks; b < base.config.layers; ++b)
        drop.push_back(b);
    if (drop.empty())
        return full.hiddenBatch(ids, kCtx);
    return Transformer(*removeBlocks(base, drop)).hiddenBatch(ids, kCtx);
}

Eigen::MatrixXf skipping(const Model& m, int block, std::span<const int32_t> ids)
{
    const Transformer t(m);
    MatrixRM x = t.embedWindows(ids, static_cast<int64_t>(ids.size()));
    for (int b = 0; b < t.layers(); ++b)
        if (b != block)
            t.runBlocks(x, static_cast<int64_t>(ids.size()), b, b);
    const MatrixRM h = t.finishHidden(std::move(x));
    MatrixRM logits(h.rows(), t.vocab());
    t.applyHead(h, logits);
    return logits;
}

} // namespace

class TestShortGpt : public QObject {
    Q_OBJECT
private slots:
    void influenceIsOneMinusCosine();
    void removedBlockIsSkipped();
    void exportsReload();
    void llama2cAndGguf();
    void recordsFollowTheRenumbering();
    void perplexityByRemovedBlock();
    void refusals();
};

void TestShortGpt::influenceIsOneMinusCosine()
{
    LL_REQUIRE_SHARED();
    const std::vector<int32_t> ids = calibWindows(4);
    const std::vector<double> bi = blockInfluence(Transformer(*test::stories260K()), ids, kCtx);
    QCOMPARE(static_cast<int64_t>(bi.size()), test::stories260K()->config.layers);
    for (int b = 0; b < test::stories260K()->config.layers; ++b) {
        const MatrixRM in = scaledHiddenAfter(b, ids), out = scaledHiddenAfter(b + 1, ids);
        double sum = 0.0;
        for (int64_t r = 0; r < in.rows(); ++r)
            sum += in.row(r).cast<double>().dot(out.row(r).cast<double>())
                   / (in.row(r).cast<double>().norm() * out.row(r).cast<double>().norm());
        const double want = 1.0 - sum / static_cast<double>(in.rows());
        qInfo("block %d: BI %.6f, independently %.6f", b, bi[static_cast<size_t>(b)], want);
        QVERIFY(std::fabs(bi[static_cast<size_t>(b)] - want) < kInfluenceTol);
    }
}

void TestShortGpt::removedBlockIsSkipped()
{
    LL_REQUIRE_SHARED();
    const std::vector<int32_t> ids = test::probeIds(test::stories260K()->config.vocab, 48);
    for (int k = 0; k < test::stories260K()->config.layers; ++k) {
        const std::unique_ptr<Model> shorter = removeBlocks(*test::stories260K(), {k});
        QCOMPARE(shorter->config.layers, test::stories260K()->config.layers - 1);
        const float diff = (Transformer(*shorter).logits(ids) - skipping(*test::stories260K(), k, ids)).cwiseAbs().maxCoeff();
        QVERIFY2(diff < kLogitTol, std::to_string(diff).c_str());
        // Names moved up; nothing of the removed block is left, stored tensors included.
        QVERIFY(!shorter->findLogical("blocks.4.attn.q.weight"));
        QVERIFY(shorter->findLogical("blocks.3.attn.q.weight"));
        QCOMPARE(shorter->storedParameterCount(), shorter->parameterCount());
    }
    // The logical names of the original after removing blocks 1 and 3.
    QCOMPARE(renamedAfterRemoval("blocks.4.mlp.down.weight", {1, 3}), std::string("blocks.2.mlp.down.weight"));
    QCOMPARE(renamedAfterRemoval("blocks.3.mlp.down.weight", {1, 3}), std::string());
    QCOMPARE(renamedAfterRemoval("lm_head.weight", {1, 3}), std::string("lm_head.weight"));
}

void TestShortGpt::exportsReload()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    const std::unique_ptr<Model> shorter = removeBlocks(*test::stories260K(), {1, 3});
    const std::vector<int32_t> ids = test::probeIds(test::stories260K()->config.vocab, 48);
    const Eigen::MatrixXf want = Transformer(*shorter).logits(ids);
    exportHf(*shorter, dir + "/hf");
    const std::shared_ptr<const Model> hf = openModel(dir + "/hf");
    QCOMPARE(hf->config.layers, int64_t(3));
    QVERIFY(nlohmann::json::parse(test::readFile(dir + "/hf/config.json"))["num_hidden_layers"] == 3);
    QVERIFY(hf->findLogical("blocks.2.mlp.down.weight"));
    QVERIFY((Transformer(*hf).logits(ids) - want).cwiseAbs().maxCoeff() < kReloadTol);
    GgufExportOptions go;
    go.type = DType::F32;
    exportGguf(*shorter, dir + "/short.gguf", go);
    const std::shared_ptr<const Model> gguf = openModel(dir + "/short.gguf");
    QCOMPARE(gguf->config.layers, int64_t(3));
    const float diff = (Transformer(*gguf).logits(ids) - want).cwiseAbs().maxCoeff();
    QVERIFY2(diff < kReloadTol, std::to_string(diff).c_str());
}

// Sources whose stored names differ (llama.cpp's blk.N, llama2.c's slots) renumber too.
void TestShortGpt::llama2cAndGguf()
{
    LL_REQUIRE_SHARED();
    const std::string dir = test::scratchDir();
    const std::vector<int32_t> ids = test::probeIds(test::stories260K()->config.vocab, 32);
    for (const std::string& path : {test::sharedPath("models/stories260K/stories260K.bin"),
                                    test::sharedPath("models/stories260K-gguf/stories260K-f32.gguf")}) {
        const std::shared_ptr<const Model> m = openModel(path);
        const std::unique_ptr<Model> shorter = removeBlocks(*m, {0});
        const Eigen::MatrixXf want = Transformer(*shorter).logits(ids);
        QVERIFY((want - skipping(*m, 0, ids)).cwiseAbs().maxCoeff() < kLogitTol);
        const std::string out = dir + "/" + std::to_string(path.size());
        exportHf(*shorter, out);
        const float d = (Transformer(*openModel(out)).logits(ids) - want).cwiseAbs().maxCoeff();
        QVERIFY2(d < kReloadTol, (path + ": " + std::to_string(d)).c_str());
    }
}

// GPTQ, then ShortGPT: the quantized layers' records move with their blocks
// and keep their errors (measured against the renumbered source).
void TestShortGpt::recordsFollowTheRenumbering()
{
    LL_REQUIRE_SHARED();
    const std::string yaml = "layerlab_recipe: 1\n"
                             "calibration: {text: " + test::sharedPath("data/tinystories/calib.txt") + ", windows: 8, context: 64}\n"
                             "steps:\n"
                             "  - {action: quantize, method: rtn, bits: 4, group: 32}\n"
                             "  - {action: prune, method: shortgpt, blocks: 2}\n";
    const StepOutcome a = applyRecipe(test::stories260K(), parseRecipe(yaml, true, "short.yaml"));
    const std::vector<int> removed = a.summary.back()["removed"].get<std::vector<int>>();
    QCOMPARE(removed.size(), size_t(2));
    QCOMPARE(a.state.model->config.layers, int64_t(3));
    const StepOutcome rtnOnly = applyRecipe(test::stories260K(), parseRecipe(yaml.substr(0, yaml.rfind("  - {action: prune")), true, "r.yaml"));
    for (int b = 0; b < 5; ++b) {
        const std::string name = "blocks." + std::to_string(b) + ".mlp.down.weight";
        const std::string now = renamedAfterRemoval(name, removed);
        if (now.empty())
            continue;
        const LayerRecord& before = rtnOnly.state.layers.at(name);
        const LayerRecord& after = a.state.layers.at(now);
        QCOMPARE(after.badges, before.badges);
        QVERIFY(after.weightError && before.weightError);
        QCOMPARE(*after.weightError, *before.weightError);
    }
    QCOMPARE(a.state.layers.count("blocks.3.mlp.down.weight"), size_t(0));
    // Replays bit-identically through its own YAML.
    const StepOutcome b = applyRecipe(test::stories260K(), parseRecipe(recipeToYaml(a.state.recipe()), true, "again.yaml"));
    const std::vector<int32_t> ids = test::probeIds(test::stories260K()->config.vocab, 32);
    QVERIFY(a.state.makeEngine()->logits(ids) == b.state.makeEngine()->logits(ids));
}

void TestShortGpt::perplexityByRemovedBlock()
{
    LL_REQUIRE_SHARED();
    const std::vector<int32_t>& eval = test::stories260KEval();
    ScoringOptions so;
    so.maxWindows = 64;
    const std::vector<double> bi = blockInfluence(Transformer(*test::stories260K()), calibWindows(64), kCtx);
    std::vector<double> ppl;
    for (int k = 0; k < 5; ++k)
        ppl.push_back(evaluatePerplexity(Transformer(*removeBlocks(*test::stories260K(), {k})), eval, so).ppl);
    const int chosen = static_cast<int>(std::min_element(bi.begin(), bi.end()) - bi.begin());
    qInfo("stories260K without one block (64 windows): %.3f %.3f %.3f %.3f %.3f; BI %.4f %.4f %.4f %.4f %.4f picks %d",
          ppl[0], ppl[1], ppl[2], ppl[3], ppl[4], bi[0], bi[1], bi[2], bi[3], bi[4], chosen);
    // Block Influence ranks the embedding-facing first block as the one that matters most.
    QVERIFY(std::max_element(bi.begin(), bi.end()) - bi.begin() == 0);
    QVERIFY(ppl[0] == *std::max_element(ppl.begin(), ppl.end()));
    // Its choice is better than removing the first block by a wide margin.
    QVERIFY(ppl[static_cast<size_t>(chosen)] < 0.5 * ppl[0]);
}

void TestShortGpt::refusals()
{
    LL_REQUIRE_SHARED();
    const auto refused = [](const std::vector<nlohmann::json>& steps, const std::string& words) {
        try {
            CompressionState s = CompressionState::initial(test::stories260K());
            const CalibrationText calib = loadCalibration(*test::stories260K(), RecipeCalibration{});
            for (const nlohmann::json& j : steps)
                s = applyStep(s, test::recipeStep(j), calib).state;
            QFAIL(("accepted: " + steps.back().dump()).c_str());
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find(words) != std::string::npos, e.what());
        }
    };
    refused({{{"action", "prune"}, {"method", "shortgpt"}, {"blocks", 5}}}, "removes 1 to 4 blocks");
    refused({{{"action", "prune"}, {"method", "shortgpt"}, {"layers", "blocks.0.*"}}}, "takes blocks N");
    refused({{{"action", "quantize"}, {"method", "zeroquant"}, {"act-bits", 8}}, {{"action", "prune"}, {"method", "shortgpt"}}},
            "remove blocks before");
    try {
        removeBlocks(*test::stories260K(), {0, 1, 2, 3, 4});
        QFAIL("removed every block");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("leaves no model") != std::string::npos, e.what());
    }
}

QTEST_GUILESS_MAIN(TestShortGpt)
#include "test_shortgpt.moc"
