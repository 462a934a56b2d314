// Compressed layers stay compressed: the packed Grid format against its
// definition, the stored forms of quantized layers against their dequantized
// weights (bit for bit), and a quantized model that holds and runs them.
#include "test_support.h"

#include "engine/transformer.h"
#include "export/gguf_export.h"
#include "formats/open_model.h"
#include "kernels/cpu_features.h"
#include "kernels/grid_kernels.h"
#include "kernels/int8_dot.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model/packed_grid.h"
#include "model/sparse_rows.h"
#include "model/tensor_data.h"
#include "pipeline/model_compression.h"
#include "quant/nf4.h"
#include "quant/packed_storage.h"
#include "quant/quant_method.h"
#include "pipeline/quantize_model.h"
#include "prune/prune_layer.h"
#include "pipeline/rotate_model.h"
#include "util/error.h"
#include "util/half.h"
#include "util/mapped_file.h"
#include "util/spill_buffer.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>

using namespace ll;

namespace {

MatrixRM randomMatrix(int64_t rows, int64_t cols, uint32_t seed, float scale = 0.05f)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    MatrixRM m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i)
        m.data()[i] = dist(gen);
    return m;
}

bool bitIdentical(const MatrixRM& a, const MatrixRM& b)
{
    return a.rows() == b.rows() && a.cols() == b.cols()
           && std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}

MatrixRM decodeAll(const TensorRef& t)
{
    const std::vector<float> v = decodeStored(t);
    return Eigen::Map<const MatrixRM>(v.data(), t.shape[0], t.shape[1]);
}

// The quantized model with every quantized layer as its F32 values (keepLayerWeights).
Model denseTwin(const ModelCompressionResult& r)
{
    Model dense = *r.model;
    for (const LayerOutcome& l : r.layers)
        replaceTensor(dense, l.name, std::vector<float>(l.quantized->weights.data(), l.quantized->weights.data() + l.quantized->weights.size()),
                      {l.rows, l.cols});
    return dense;
}

// m exported as an F32 GGUF into dir and opened again.
std::unique_ptr<Model> reloadedAsF32Gguf(const Model& m, const QTemporaryDir& dir)
{
    const std::string out = (dir.path() + "/model.gguf").toStdString();
    GgufExportOptions eo;
    eo.type = DType::F32;
    exportGguf(m, out, eo);
    return openModel(out);
}

// A layer's calibration statistics from its inputs X (tokens, in): the Gram matrix, mean and max |x|.
struct InputsOf {
    Eigen::MatrixXf gram;
    LayerInputs in;
    explicit InputsOf(const MatrixRM& X) : gram((X.transpose() * X).eval())
    {
        in.gram = &gram;
        in.meanAbs = X.cwiseAbs().colwise().mean().transpose();
        in.maxAbs = X.cwiseAbs().colwise().maxCoeff().transpose();
    }
    InputsOf(const InputsOf&) = delete;
    InputsOf& operator=(const InputsOf&) = delete;
};

QuantConfig gridConfig(std::string_view m, int bits, bool sym, int group)
{
    QuantConfig c;
    c.method = m;
    c.grid = {bits, sym, group};
    return c;
}

} // namespace

class TestPackedStorage : public QObject {
    Q_OBJECT

private slots:
    // The row format by its definition: x = scale * (code - zero) [/ inputScale],
    // codes at every bit width, rows whose codes straddle bytes, permuted groups.
    void gridRowsDecodeByTheirDefinition()
    {
        std::mt19937 gen(3);
        for (int bits = 1; bits <= 8; ++bits) {
            GridLayout L;
            L.bits = bits;
            L.cols = 37; // odd: codes straddle bytes at 3, 5, 6, 7 bits
            L.groupCols = 8;
            L.groups = 5;
            if (bits % 2 == 0) { // a permutation of the groups, as GPTQ act-order
                for (int64_t c = 0; c < L.cols; ++c)
                    L.groupIndex.push_back(static_cast<int32_t>((c * 7) % 5));
            }
            if (bits == 4)
                for (int64_t c = 0; c < L.cols; ++c)
                    L.columnScale.push_back(0.5f + 0.01f * static_cast<float>(c));
            L.validate();
            std::vector<float> scales(5);
            std::vector<uint8_t> zeros(5), codes(static_cast<size_t>(L.cols));
            for (int g = 0; g < 5; ++g) {
                scales[static_cast<size_t>(g)] = 0.01f * static_cast<float>(g + 1);
                zeros[static_cast<size_t>(g)] = static_cast<uint8_t>(gen() % (1u << bits));
            }
            for (auto& c : codes)
                c = static_cast<uint8_t>(gen() % (1u << bits));
            std::vector<uint8_t> row(L.rowBytes());
            QCOMPARE(L.rowBytes(), size_t{5 * 5} + (37 * static_cast<size_t>(bits) + 7) / 8);
            encodeGridRow(L, scales.data(), zeros.data(), codes.data(), row.data());
            std::vector<float> out(static_cast<size_t>(L.cols));
            decodeGridRow(L, row.data(), out.data());
            for (int64_t c = 0; c < L.cols; ++c) {
                const int64_t g = L.groupIndex.empty() ? c / 8 : L.groupIndex[static_cast<size_t>(c)];
                float x = scales[static_cast<size_t>(g)]
                          * (static_cast<float>(codes[static_cast<size_t>(c)]) - static_cast<float>(zeros[static_cast<size_t>(g)]));
                if (!L.columnScale.empty())
                    x *= L.columnScale[static_cast<size_t>(c)];
                QCOMPARE(out[static_cast<size_t>(c)], x);
            }
        }
    }

    void inconsistentLayoutsAreRefused()
    {
        GridLayout L;
        L.bits = 9;
        L.cols = 8;
        L.groupCols = 8;
        L.groups = 1;
        QVERIFY_THROWS_EXCEPTION(Error, L.validate());
        L.bits = 4;
        L.groupCols = 2; // 4 groups needed
        QVERIFY_THROWS_EXCEPTION(Error, L.validate());
        L.groups = 4;
        L.groupIndex = {0, 1, 2, 3, 4, 0, 0, 0}; // group 4 does not exist
        QVERIFY_THROWS_EXCEPTION(Error, L.validate());
    }

    // Every integer-grid method: its packed form decodes to its weights bit for bit.
    void gridMethodsPackExactly()
    {
        const MatrixRM W = randomMatrix(48, 96, 7);
        const InputsOf stats(randomMatrix(256, 96, 8, 1.0f));
        const LayerInputs& in = stats.in;
        struct Case {
            QuantConfig c;
            const char* what;
        };
        std::vector<Case> cases = {
            {gridConfig(QuantMethod::Rtn, 4, false, 32), "rtn w4 g32"},
            {gridConfig(QuantMethod::Rtn, 3, true, 0), "rtn w3 sym row"},
            {gridConfig(QuantMethod::Rtn, 8, false, -1), "rtn w8 per tensor"},
            {gridConfig(QuantMethod::Rtn, 2, false, 32), "rtn w2 g32"},
            {gridConfig(QuantMethod::Gptq, 4, false, 32), "gptq w4 g32"},
            {gridConfig(QuantMethod::Awq, 4, false, 32), "awq w4 g32"},
        };
        QuantConfig actOrder = gridConfig(QuantMethod::Gptq, 4, false, 32);
        actOrder.actOrder = true;
        cases.push_back({actOrder, "gptq act-order g32"});
        for (Case& cs : cases) {
            QuantizedLayer q = quantizeLayer(W, cs.c, in);
            const MatrixRM expected = q.weights;
            const std::optional<TensorRef> t = takePackedTensor(q);
            QVERIFY2(t.has_value(), cs.what);
            QCOMPARE(t->dtype, DType::Grid);
            QVERIFY2(bitIdentical(decodeAll(*t), expected), cs.what);
            // Codes at their bits plus 5 bytes per group of a row.
            const double bitsPerWeight = 8.0 * static_cast<double>(t->nbytes) / static_cast<double>(W.size());
            QVERIFY2(bitsPerWeight <= cs.c.grid.bits + 40.0 * 3.0 / 96.0 + 0.1, cs.what);
        }
    }

    void ggmlMethodsKeepTheirBlocks()
    {
        const MatrixRM W = randomMatrix(8, 512, 9);
        for (DType type : {DType::Q4_K, DType::Q8_0, DType::Q6_K, DType::Q4_0}) {
            QuantConfig c;
            c.method = QuantMethod::Ggml;
            c.ggmlType = type;
            QuantizedLayer q = quantizeLayer(W, c);
            const MatrixRM expected = q.weights;
            const std::optional<TensorRef> t = takePackedTensor(q);
            QVERIFY(t.has_value());
            QCOMPARE(t->dtype, type);
            QCOMPARE(t->nbytes, uint64_t{8} * 512 / dtypeLayout(type).blockElems * dtypeLayout(type).blockBytes);
            QVERIFY(bitIdentical(decodeAll(*t), expected));
        }
    }

    // NF4, FP8 and FP4 keep their codes: a Grid whose codes index the format's
    // values, times the method's scale per group, decoding bit for bit.
    void codebookFormatsPackExactly()
    {
        const MatrixRM W = randomMatrix(16, 128, 12);
        struct Case {
            QuantConfig c;
            const char* label;
            double bitsPerWeight; // codes + 5 bytes (scale, unused zero) per group of a row
        };
        QuantConfig e5m2 = gridConfig(QuantMethod::Fp8, 8, false, 0);
        e5m2.fp8Format = Fp8Format::E5M2;
        const std::vector<Case> cases = {
            {gridConfig(QuantMethod::Nf4, 4, false, 0), "nf4", 4.0 + 40.0 / 64.0},
            {gridConfig(QuantMethod::Fp8, 8, false, 0), "fp8 e4m3", 8.0 + 40.0 / 128.0},
            {e5m2, "fp8 e5m2", 8.0 + 40.0 / 128.0},
            {gridConfig(QuantMethod::Fp4, 4, false, 32), "fp4 e2m1 g32", 4.0 + 40.0 / 32.0},
            {gridConfig(QuantMethod::Fp4, 4, false, 0), "fp4 e2m1 row", 4.0 + 40.0 / 128.0},
        };
        for (const Case& cs : cases) {
            QuantizedLayer q = quantizeLayer(W, cs.c);
            const MatrixRM expected = q.weights;
            const std::optional<TensorRef> t = takePackedTensor(q);
            QVERIFY2(t.has_value(), cs.label);
            QCOMPARE(t->dtype, DType::Grid);
            QCOMPARE(t->dtypeLabel, std::string(cs.label));
            QVERIFY2(bitIdentical(decodeAll(*t), expected), cs.label);
            QCOMPARE(8.0 * static_cast<double>(t->nbytes) / static_cast<double>(W.size()), cs.bitsPerWeight);
        }
        // NF4 by its definition (bitsandbytes): level[code] * absmax of the 64-value block.
        const Nf4Result r = nf4Quantize(W);
        QuantizedLayer q = quantizeLayer(W, gridConfig(QuantMethod::Nf4, 4, false, 0));
        const std::optional<TensorRef> t = takePackedTensor(q);
        const MatrixRM decoded = decodeAll(*t);
        for (int64_t i : {0L, 63L, 64L, 1000L, 2047L})
            QCOMPARE(decoded.data()[i], kNf4Levels[r.codes[static_cast<size_t>(i)]] * r.absmax[static_cast<size_t>(i / 64)]);
    }

    // BCQ keeps its alphas beside its codes; OWQ's and LLM.int8's 16-bit
    // columns and SpQR's single weights ride on the grid as its exceptions.
    // Each decodes to the method's weights (dequantizePacked) bit for bit, the
    // fast decoder agrees from any column, and the integer dot adds the
    // exceptions' products (the codes under them add 0).
    void outlierAndBinaryFormsPackExactly()
    {
        const MatrixRM W = [] {
            MatrixRM w = randomMatrix(24, 512, 11);
            w.col(7) *= 40.0f; // input columns whose weights stand out
            w.col(300) *= 25.0f;
            return w;
        }();
        const MatrixRM X = [] {
            MatrixRM x = randomMatrix(300, 512, 12, 1.0f);
            x.col(7) *= 30.0f; // an outlier input channel (LLM.int8's threshold is 6)
            return x;
        }();
        const InputsOf stats(X);
        const LayerInputs& in = stats.in;
        struct Case {
            QuantConfig c;
            const char* what;
            bool binary, exceptions;
        };
        QuantConfig bcqLorc = gridConfig(QuantMethod::Bcq, 3, false, 0);
        bcqLorc.lorcRank = 2;
        const std::vector<Case> cases = {
            {gridConfig(QuantMethod::Bcq, 3, false, 0), "bcq b3 row", true, false},
            {gridConfig(QuantMethod::Bcq, 2, false, 64), "bcq b2 g64", true, false},
            {bcqLorc, "bcq b3 + lorc r2", true, false},
            {gridConfig(QuantMethod::Owq, 4, false, 128), "owq w4 g128", false, true},
            {gridConfig(QuantMethod::Spqr, 3, false, 64), "spqr w3 g64", false, true},
            {gridConfig(QuantMethod::Int8, 8, true, 0), "llm.int8", false, true},
        };
        int int8Checked = 0;
        for (const Case& cs : cases) {
            QuantizedLayer q = quantizeLayer(W, cs.c, in);
            const MatrixRM expected = q.weights;
            const MatrixRM A = q.factorA, B = q.factorB;
            const std::optional<TensorRef> t = takePackedTensor(q);
            QVERIFY2(t.has_value(), cs.what);
            QCOMPARE(t->dtype, DType::Grid);
            const GridLayout& L = *t->grid;
            QCOMPARE(L.binaryCoding, cs.binary);
            QVERIFY2(L.hasExceptions() == cs.exceptions, cs.what);
            const MatrixRM decoded = decodeAll(*t);
            QVERIFY2(bitIdentical(A.size() > 0 ? plusLowRank(decoded, A, B) : decoded, expected), cs.what);
            // Held at its bits: BCQ b codes + b float alphas per group; OWQ / SpQR / int8 under F16's 16.
            const double bitsPerWeight = 8.0 * static_cast<double>(t->nbytes) / static_cast<double>(W.size());
            if (cs.binary)
                QVERIFY2(bitsPerWeight <= cs.c.grid.bits * (1.0 + 32.0 / static_cast<double>(L.groupCols)) + 0.01, cs.what);
            else
                QVERIFY2(bitsPerWeight < 16.0, cs.what);
            for (int64_t r : {int64_t{0}, int64_t{13}})
                for (auto [c0, n] : std::vector<std::pair<int64_t, int64_t>>{{0, 512}, {5, 300}, {290, 20}}) {
                    std::vector<float> fast(static_cast<size_t>(n));
                    decodeGridColumnsFast(L, t->data + r * static_cast<int64_t>(L.rowBytes()), c0, n, fast.data());
                    QVERIFY2(std::memcmp(fast.data(), decoded.data() + r * 512 + c0, fast.size() * 4) == 0, cs.what);
                }
            if (!cs.exceptions)
                continue;
            if (!gridHasInt8Dot(L)) { // OWQ's GPTQ moves its columns last: groups follow that order
                QVERIFY2(!L.groupIndex.empty(), cs.what);
                continue;
            }
            std::vector<float> x(512);
            for (size_t i = 0; i < x.size(); ++i)
                x[i] = X(3, static_cast<Eigen::Index>(i));
            std::vector<BlockQ8K> xq(2);
            gridInt8Input(L, x.data(), xq.data());
            for (int64_t r = 0; r < W.rows(); ++r) {
                const uint8_t* row = t->data + r * static_cast<int64_t>(L.rowBytes());
                const double ref = referenceGridInt8Dot(L, row, xq.data());
                double exact = 0, magnitude = 0;
                for (int64_t c = 0; c < 512; ++c) {
                    exact += static_cast<double>(decoded(r, c)) * x[static_cast<size_t>(c)];
                    magnitude += std::fabs(static_cast<double>(decoded(r, c)) * x[static_cast<size_t>(c)]);
                }
                QVERIFY2(std::fabs(ref - exact) <= int8DotErrorBound(decoded.data() + r * 512, xq.data(), 512) + 1e-6 * magnitude,
                         cs.what);
                if (const GridInt8DotFn fast = gridInt8DotKernel(L)) {
                    QVERIFY2(std::fabs(fast(L, row, xq.data()) - ref) <= 1e-5 * magnitude, cs.what);
                    ++int8Checked;
                }
            }
        }
        // NF4's blocks of 64 run over the flattened matrix: rows of 96 split them.
        QuantizedLayer nf4 = quantizeLayer(randomMatrix(16, 96, 10), gridConfig(QuantMethod::Nf4, 4, false, 0));
        QVERIFY(!takePackedTensor(nf4).has_value());
        if (hostCpu().avx512vnni && kernelLevel() != KernelLevel::Portable)
            QCOMPARE(int8Checked, 2 * 24); // SpQR and LLM.int8
    }

    // LoRC / EoRA keep the base's codes and the correction's F16 factors:
    // the codes' values plus A B are the layer's weights, bit for bit.
    void correctedLayersPackTheirBase()
    {
        const MatrixRM W = randomMatrix(24, 64, 10);
        QuantConfig lorc = gridConfig(QuantMethod::Rtn, 3, false, 32);
        lorc.lorcRank = 4;
        QuantizedLayer q = quantizeLayer(W, lorc);
        QCOMPARE(q.factorA.cols(), Eigen::Index(4));
        // The factors are F16 values, as the 16 bits they are counted at.
        const TensorRef a = factorTensor(q.factorA), b = factorTensor(q.factorB);
        QCOMPARE(a.dtype, DType::F16);
        QCOMPARE(b.dtype, DType::F16);
        QVERIFY(bitIdentical(decodeAll(a), q.factorA));
        const std::optional<TensorRef> base = takePackedTensor(q);
        QVERIFY(base.has_value());
        QCOMPARE(base->dtype, DType::Grid);
        QVERIFY(bitIdentical(plusLowRank(decodeAll(*base), decodeAll(a), decodeAll(b)), q.weights));
        // The base alone is not the layer: the correction changes the values.
        QVERIFY((decodeAll(*base) - q.weights).cwiseAbs().maxCoeff() > 1e-4f);
        // Codes that do not give the weights are refused.
        QuantizedLayer bad = quantizeLayer(W, lorc);
        bad.factorB(0, 0) += 0.5f;
        QVERIFY(!takePackedTensor(bad).has_value());
    }

    // A LoRC model holds grids plus F16 factors, runs W x + A (B x), reads,
    // exports and replaces like any other.
    void correctedModelHoldsCodesAndFactors()
    {
        LL_REQUIRE_SHARED();
        const auto source = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
        QuantizeModelOptions o;
        o.config = gridConfig(QuantMethod::Rtn, 3, false, 32);
        o.config.lorcRank = 8;
        o.keepLayerWeights = true;
        const ModelCompressionResult r = quantizeModel(*source, o);
        QCOMPARE(r.layers.size(), size_t{35});
        uint64_t bytes = 0;
        int64_t weights = 0;
        for (const LayerOutcome& l : r.layers) {
            const LogicalTensor* t = r.model->findLogical(l.name);
            QVERIFY(t->corrected());
            const TensorRef& base = r.model->stored.at(static_cast<size_t>(t->replacedBy));
            const TensorRef& a = r.model->stored.at(static_cast<size_t>(t->factorA));
            const TensorRef& b = r.model->stored.at(static_cast<size_t>(t->factorB));
            QCOMPARE(base.dtype, DType::Grid);
            QCOMPARE(a.dtype, DType::F16);
            QCOMPARE(a.shape, (std::vector<int64_t>{l.rows, 8}));
            QCOMPARE(b.shape, (std::vector<int64_t>{8, l.cols}));
            QVERIFY(bitIdentical(readMatrix(*r.model, *t), l.quantized->weights));
            bytes += base.nbytes + a.nbytes + b.nbytes;
            weights += t->elements();
        }
        // 3-bit codes + 40 bits per 32, plus 16 x 8 (out + in) bits per out x in:
        // 4 bits a weight more on a 64 x 64 matrix (8 on 32 x 64). What the
        // state held before, the sum in F32, was 32.
        const double bitsPerWeight = 8.0 * static_cast<double>(bytes) / static_cast<double>(weights);
        qInfo("RTN w3 g32 + LoRC r8 on stories260K: %.2f bits a weight as stored", bitsPerWeight);
        QVERIFY2(bitsPerWeight < 12.0, qPrintable(QString::number(bitsPerWeight)));
        QCOMPARE(r.model->parameterCount(), source->parameterCount() + [&] {
            int64_t n = 0;
            for (const LayerOutcome& l : r.layers)
                n += 8 * (l.rows + l.cols);
            return n;
        }());

        // The engine keeps both forms and adds the correction's product.
        Transformer packed(*r.model);
        QVERIFY(packed.linear(0, Role::AttnQ).corrected());
        QCOMPARE(packed.linear(0, Role::AttnQ).W.type, DType::Grid);
        QCOMPARE(packed.linear(0, Role::AttnQ).A.type, DType::F16);
        const Model dense = denseTwin(r);
        Transformer f32(dense);
        const std::vector<int32_t> ids{1, 400, 20, 33, 7, 250, 3, 99};
        const Eigen::MatrixXf got = packed.logits(ids), want = f32.logits(ids);
        const float scale = want.cwiseAbs().maxCoeff();
        QVERIFY((got - want).cwiseAbs().maxCoeff() <= 1e-5f * scale);
        // Without its correction the model is another one (the check above can fail).
        Model baseOnly = *r.model;
        for (const LayerOutcome& l : r.layers) {
            LogicalTensor& t = const_cast<LogicalTensor&>(*baseOnly.findLogical(l.name));
            t.factorA = t.factorB = -1;
        }
        QVERIFY((Transformer(baseOnly).logits(ids) - want).cwiseAbs().maxCoeff() > 1e-3f * scale);

        // Exported, the tensor is its value (W^ + A B): F32 GGUF reloads bit for bit.
        QTemporaryDir dir;
        const auto back = reloadedAsF32Gguf(*r.model, dir);
        for (const LayerOutcome& l : r.layers)
            QVERIFY(bitIdentical(readMatrix(*back, *back->findLogical(l.name)), l.quantized->weights));

        // On wider layers too, whichever thread computed them (tiny-llama256:
        // rows of 256 and 512, products Eigen would split between threads).
        const auto wide = openModel(test::sharedPath("models/gguf-quants/tiny-llama256-f32.gguf"));
        o.config = gridConfig(QuantMethod::Rtn, 4, false, 64);
        o.config.lorcRank = 16;
        const ModelCompressionResult rw = quantizeModel(*wide, o);
        for (const LayerOutcome& l : rw.layers) {
            QVERIFY2(rw.model->findLogical(l.name)->corrected(), l.name.c_str());
            QVERIFY(bitIdentical(readMatrix(*rw.model, *rw.model->findLogical(l.name)), l.quantized->weights));
        }

        // New dense values drop the correction.
        Model edited = *r.model;
        const LayerOutcome& first = r.layers.front();
        replaceTensor(edited, first.name, std::vector<float>(static_cast<size_t>(first.rows * first.cols), 0.5f),
                      {first.rows, first.cols});
        const LogicalTensor* t = edited.findLogical(first.name);
        QVERIFY(!t->hasFactors());
        QCOMPARE(readMatrix(edited, *t)(0, 0), 0.5f);
        QCOMPARE(Transformer(edited).linear(first.block, first.role).rank(), int64_t{0});
    }

    void narrowExactlyOnlyWhenLossless()
    {
        MatrixRM v(2, 3);
        v << 1.0f, -0.0f, 0.5f, bf16ToFloat(floatToBf16(0.123f)), 0.0f, -3.25f;
        const auto bf = narrowExactly(v, DType::BF16);
        QVERIFY(bf.has_value());
        QCOMPARE(bf->dtype, DType::BF16);
        QCOMPARE(bf->nbytes, uint64_t{12});
        QVERIFY(bitIdentical(decodeAll(*bf), v));
        v(0, 0) = 0.1f; // not a bfloat16
        QVERIFY(!narrowExactly(v, DType::BF16).has_value());
        QVERIFY(!narrowExactly(v, DType::F32).has_value());
    }

    // The engine multiplies by a packed grid as by its decoded values.
    void matmulReadsPackedGrids()
    {
        const MatrixRM W = randomMatrix(80, 256, 12);
        QuantizedLayer q = quantizeLayer(W, gridConfig(QuantMethod::Rtn, 4, false, 64));
        const MatrixRM What = q.weights;
        const TensorRef t = *takePackedTensor(q);
        const StoredMatrix S = StoredMatrix::view(t.dtype, t.data, 80, 256, t.keepAlive, t.grid);
        const auto restore = qScopeGuard([] { setQuantProducts(QuantProducts::Int8); });
        for (QuantProducts products : {QuantProducts::F32, QuantProducts::Int8})
            for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{40}}) {
                setQuantProducts(products);
                const MatrixRM x = randomMatrix(m, 256, 13, 1.0f);
                MatrixRM y(m, 80);
                matmulStored(x.data(), 256, S, y.data(), 80, m);
                const MatrixRM expected = (x.cast<double>() * What.cast<double>().transpose()).cast<float>();
                const float tol = 1e-5f * expected.cwiseAbs().maxCoeff();
                // Decoding rows with VNNI: x rounded to 8 bits (int8_dot.h), each
                // product within its bound; otherwise the float product.
                const bool int8 = m <= kMatmulRowsPath && gridInt8DotKernel(*t.grid) != nullptr;
                for (int64_t i = 0; i < m; ++i) {
                    std::vector<BlockQ8K> xq(1);
                    gridInt8Input(*t.grid, x.row(i).data(), xq.data());
                    for (int64_t j = 0; j < 80; ++j) {
                        const double bound = int8 ? int8DotErrorBound(What.row(j).data(), xq.data(), 256) : 0.0;
                        QVERIFY2(std::fabs(y(i, j) - expected(i, j)) <= bound + tol,
                                 qPrintable(QString("%1 rows, %2").arg(m).arg(int8 ? "int8" : "f32")));
                    }
                }
            }
    }

    // A quantized model holds its layers packed, computes with them, and its
    // stored tensors decode to the quantized values.
    void quantizedModelHoldsPackedLayers()
    {
        LL_REQUIRE_SHARED();
        const auto source = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
        QuantizeModelOptions o;
        o.config = gridConfig(QuantMethod::Rtn, 4, false, 32);
        o.keepLayerWeights = true;
        const ModelCompressionResult r = quantizeModel(*source, o);
        QCOMPARE(r.layers.size(), size_t{35});
        uint64_t packedBytes = 0;
        int64_t weights = 0;
        for (const LayerOutcome& l : r.layers) {
            const LogicalTensor* t = r.model->findLogical(l.name);
            const TensorRef& stored = r.model->stored.at(static_cast<size_t>(t->replacedBy));
            QCOMPARE(stored.dtype, DType::Grid);
            QVERIFY(bitIdentical(readMatrix(*r.model, *t), l.quantized->weights));
            packedBytes += stored.nbytes;
            weights += t->elements();
        }
        // 4-bit codes + 40 bits per group of 32: 5.25 bits a weight (F32: 32).
        QVERIFY(8.0 * static_cast<double>(packedBytes) / static_cast<double>(weights) <= 5.3);
        // The engine reads the packed bytes in place; logits match the same model stored as F32.
        Transformer packed(*r.model);
        QCOMPARE(packed.linear(0, Role::AttnQ).W.type, DType::Grid);
        const Model dense = denseTwin(r);
        Transformer f32(dense);
        const std::vector<int32_t> ids{1, 400, 20, 33, 7, 250, 3, 99};
        const Eigen::MatrixXf a = packed.logits(ids), b = f32.logits(ids);
        QVERIFY((a - b).cwiseAbs().maxCoeff() <= 1e-5f * b.cwiseAbs().maxCoeff());
        // Without keepLayerWeights the result holds figures only.
        o.keepLayerWeights = false;
        const ModelCompressionResult lean = quantizeModel(*source, o);
        QCOMPARE(lean.layers.front().quantized->weights.size(), Eigen::Index{0});
        QCOMPARE(lean.layers.front().rows, r.layers.front().rows);
        QCOMPARE(lean.bitsPerWeight(), r.bitsPerWeight());
    }

    // Decoding one token from packed grids takes the integer dots (int8_dot.h)
    // where the CPU has VNNI: tiny-llama256's block linears (rows of 256 and
    // 512 values) quantized to 3, 4 and 8 bits, g32 and per row, give the
    // logits of the same model with the grids decoded to F32, within the
    // rounding of x to 8 bits (test_kernels' kInt8LogitsRelTol); 11 rows (the
    // GEMM path) within float rounding.
    void decodingFromGridsMatchesTheirValues()
    {
        LL_REQUIRE_SHARED();
        const auto source = openModel(test::sharedPath("models/gguf-quants/tiny-llama256-f32.gguf"));
        const std::vector<int32_t> ids{1, 17, 200, 3, 99, 250, 0, 42, 7, 7, 120};
        int int8Products = 0;
        for (auto [bits, group] : std::vector<std::pair<int, int>>{{4, 32}, {3, 0}, {8, 64}}) {
            QuantizeModelOptions o;
            o.config = gridConfig(QuantMethod::Rtn, bits, false, group);
            o.keepLayerWeights = true;
            const ModelCompressionResult r = quantizeModel(*source, o);
            Transformer packed(*r.model);
            QCOMPARE(packed.linear(0, Role::MlpDown).W.type, DType::Grid);
            const Model dense = denseTwin(r);
            Transformer f32(dense);
            const bool int8 = gridInt8DotKernel(*packed.linear(0, Role::MlpDown).W.grid) != nullptr;
            int8Products += int8 ? 1 : 0;
            for (int64_t rows : {int64_t{1}, int64_t{11}}) {
                const std::span<const int32_t> part(ids.data(), static_cast<size_t>(rows));
                const Eigen::MatrixXf a = packed.logits(part), b = f32.logits(part);
                const double diff = (a - b).cwiseAbs().maxCoeff(), scale = b.cwiseAbs().maxCoeff();
                const double tol = rows <= kMatmulRowsPath && int8 ? 3e-2 : 1e-5;
                if (rows <= kMatmulRowsPath && int8)
                    qInfo("w%d g%d decoding with int8 products: max logit diff %.3g of %.3g", bits, group, diff, scale);
                QVERIFY2(diff <= tol * scale, qPrintable(QString("w%1 g%2, %3 rows: max diff %4 of %5")
                                                             .arg(bits).arg(group).arg(rows).arg(diff).arg(scale)));
            }
        }
        if (!hostCpu().avx512vnni)
            QSKIP("no AVX-512 VNNI here: decoding took the float path, checked within float rounding");
        QCOMPARE(int8Products, 3);
    }

    // OWQ, SpQR and BCQ applied to a whole model: every block linear is held
    // as a Grid (with exceptions, or binary coding), under 16 bits a weight
    // where F32 values took 32, and the engine computes from it: logits of
    // one decoded token within the int8 rounding of x (test_kernels'
    // kInt8LogitsRelTol) where the integer dots run, 11 rows (the GEMM
    // path) within float rounding of the same model with its layers as F32.
    void outlierMethodsRunFromTheirGrids()
    {
        LL_REQUIRE_SHARED();
        const auto source = openModel(test::sharedPath("models/gguf-quants/tiny-llama256-f32.gguf"));
        std::vector<int32_t> calib(2048);
        std::mt19937 gen(5);
        for (int32_t& id : calib)
            id = static_cast<int32_t>(gen() % static_cast<uint32_t>(source->config.vocab));
        const std::vector<int32_t> ids{1, 17, 200, 3, 99, 250, 0, 42, 7, 7, 120};
        QuantConfig spqr = gridConfig(QuantMethod::Spqr, 3, false, 32);
        spqr.spqrFraction = 0.02;
        for (const QuantConfig& c : {gridConfig(QuantMethod::Owq, 4, false, 64), spqr, gridConfig(QuantMethod::Bcq, 3, false, 0)}) {
            QuantizeModelOptions o;
            o.config = c;
            o.keepLayerWeights = true;
            o.calibration = {128, 16, 0};
            const bool calibrated = c.method != QuantMethod::Bcq;
            const ModelCompressionResult r =
                quantizeModel(*source, o, calibrated ? std::span<const int32_t>(calib) : std::span<const int32_t>{});
            uint64_t bytes = 0;
            int64_t weights = 0;
            for (const LayerOutcome& l : r.layers) {
                const LogicalTensor* t = r.model->findLogical(l.name);
                const TensorRef& stored = r.model->stored.at(static_cast<size_t>(t->replacedBy));
                QCOMPARE(stored.dtype, DType::Grid);
                QCOMPARE(stored.grid->binaryCoding, !calibrated);
                QCOMPARE(stored.grid->hasExceptions(), calibrated);
                QVERIFY(bitIdentical(readMatrix(*r.model, *t), l.quantized->weights));
                bytes += stored.nbytes;
                weights += t->elements();
            }
            const double heldBits = 8.0 * static_cast<double>(bytes) / static_cast<double>(weights);
            qInfo("%s: %.2f bits a weight as held", c.label().c_str(), heldBits);
            // SpQR's rows all hold as many outlier slots as its fullest row: under F16's 16.
            QVERIFY(heldBits < (c.method == QuantMethod::Spqr ? 16.0 : 6.0));
            Transformer packed(*r.model);
            const Model dense = denseTwin(r);
            Transformer f32(dense);
            const bool int8 = gridInt8DotKernel(*packed.linear(0, Role::MlpDown).W.grid) != nullptr;
            for (int64_t rows : {int64_t{1}, int64_t{11}}) {
                const std::span<const int32_t> part(ids.data(), static_cast<size_t>(rows));
                const Eigen::MatrixXf a = packed.logits(part), b = f32.logits(part);
                const double diff = (a - b).cwiseAbs().maxCoeff(), scale = b.cwiseAbs().maxCoeff();
                const double tol = rows <= kMatmulRowsPath && int8 ? 3e-2 : 1e-5;
                QVERIFY2(diff <= tol * scale, qPrintable(QString("%1, %2 rows: max diff %3 of %4")
                                                             .arg(c.label().c_str()).arg(rows).arg(diff).arg(scale)));
            }
        }
    }

    // Past the edit budget, edited tensors live in a temporary file mapping:
    // the same values, the process's own memory stays put.
    void editsPastTheBudgetSpill()
    {
        LL_REQUIRE_SHARED();
        const auto source = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
        QuantizeModelOptions o;
        o.config = gridConfig(QuantMethod::Rtn, 4, false, 32);
        const ModelCompressionResult inMemory = quantizeModel(*source, o);
        const uint64_t saved = editMemoryBudget();
        setEditMemoryBudget(0);
        const uint64_t spilledBefore = editBytesSpilled();
        const ModelCompressionResult spilled = quantizeModel(*source, o);
        setEditMemoryBudget(saved);
        QVERIFY(editBytesSpilled() > spilledBefore);
        for (const LayerOutcome& l : spilled.layers) {
            const LogicalTensor* t = spilled.model->findLogical(l.name);
            const auto* buffer = static_cast<const EditBuffer*>(spilled.model->stored.at(static_cast<size_t>(t->replacedBy)).keepAlive.get());
            QVERIFY(buffer->onDisk());
            QVERIFY(bitIdentical(readMatrix(*spilled.model, *t), readMatrix(*inMemory.model, *inMemory.model->findLogical(l.name))));
        }
        // Dropping the model releases the spilled bytes.
        const uint64_t held = editBytesSpilled();
        const_cast<ModelCompressionResult&>(spilled).model.reset();
        QVERIFY(editBytesSpilled() < held);
    }

    // Decoding reads every weight once a token; the model's mapping and the
    // edit buffers ask for 2 MiB pages (madvise MADV_HUGEPAGE: "hg" among the
    // mapping's VmFlags), small ones do not.
    void largeMappingsAskForHugePages()
    {
        if (!QFileInfo::exists("/sys/kernel/mm/transparent_hugepage/enabled"))
            QSKIP("this kernel has no transparent huge pages");
        const auto vmFlags = [](const void* address) {
            QFile smaps("/proc/self/smaps");
            if (!smaps.open(QIODevice::ReadOnly))
                return QString("(no smaps)");
            const QString start = QString::number(reinterpret_cast<quintptr>(address), 16);
            bool inside = false;
            for (const QByteArray& line : smaps.readAll().split('\n')) {
                const QByteArray first = line.left(line.indexOf(' '));
                if (!first.endsWith(':')) // a mapping's header: "start-end perms ..."
                    inside = first.startsWith(start.toLatin1() + '-');
                else if (inside && first == "VmFlags:")
                    return QString::fromLatin1(line);
            }
            return QString("(no mapping at %1)").arg(start);
        };
        QTemporaryDir dir;
        const auto write = [&](const char* name, qint64 bytes) {
            QFile f(dir.filePath(name));
            QVERIFY(f.open(QIODevice::WriteOnly));
            QVERIFY(f.write(QByteArray(bytes, 'x')) == bytes);
        };
        write("big.bin", qint64{4} << 20);
        write("small.bin", 4096);
        const auto big = MappedFile::open(dir.filePath("big.bin").toStdString());
        const auto small = MappedFile::open(dir.filePath("small.bin").toStdString());
        QVERIFY2(vmFlags(big->data()).contains(" hg"), qPrintable(vmFlags(big->data())));
        QVERIFY2(!vmFlags(small->data()).contains(" hg"), qPrintable(vmFlags(small->data())));
        SpillBuffer inMemory(size_t{4} << 20, uint64_t{1} << 30, "test");
        QVERIFY(!inMemory.onDisk());
        QVERIFY2(vmFlags(inMemory.bytes()).contains(" hg"), qPrintable(vmFlags(inMemory.bytes())));
    }

    // Values a method changed (SparseGPT's updates, a rotation) are kept in the
    // checkpoint's F16, rounded to nearest, as the reference code casts back to
    // the model's dtype, and pruned layers keep only their kept values beside a
    // mask: the edited model is smaller than the source, and the weight error
    // reported is that of the stored values.
    void changedHalfPrecisionWeightsStayHalf()
    {
        LL_REQUIRE_SHARED();
        const auto source = openModel(test::sharedPath("models/tiny-llama-fp16-sharded"));
        ModelPruneOptions o;
        o.layer.method = PruneMethod::SparseGpt;
        o.layer.sparsity = 0.5;
        o.calibration.windows = 4;
        o.calibration.context = 32;
        const std::vector<int32_t> tokens = test::probeIds(static_cast<int>(source->config.vocab), 4 * 32);
        const ModelCompressionResult r = pruneModel(*source, o, tokens);
        QVERIFY(!r.layers.empty());
        for (const LayerOutcome& l : r.layers) {
            const LogicalTensor* t = r.model->findLogical(l.name);
            const TensorRef& stored = r.model->stored.at(static_cast<size_t>(t->replacedBy));
            QCOMPARE(stored.dtype, DType::Sparse);
            QCOMPARE(stored.sparse->valueType, DType::F16);
            // About 9 bits a weight (half the values at 16, a mask bit each), not F16's 16 or F32's 32.
            QVERIFY2(static_cast<double>(stored.nbytes) < 0.65 * 2.0 * static_cast<double>(t->elements()),
                     qPrintable(QString::number(8.0 * static_cast<double>(stored.nbytes) / static_cast<double>(t->elements()))));
            const MatrixRM W0 = readMatrix(*source, *source->findLogical(l.name)), W = readMatrix(*r.model, *t);
            const double error = (W0 - W).norm() / W0.norm();
            QVERIFY2(std::fabs(l.weightError - error) <= 1e-6 * error, qPrintable(QString::fromStdString(l.name)));
            QVERIFY(std::abs(static_cast<double>((W.array() == 0.0f).count()) / static_cast<double>(W.size()) - 0.5) < 0.02);
        }

        const ModelRotationResult rotated = rotateModel(*source, {});
        const LogicalTensor* q = rotated.model->findLogical("blocks.0.attn.q.weight");
        QCOMPARE(rotated.model->stored.at(static_cast<size_t>(q->replacedBy)).dtype, DType::F16);
    }

    // Pruned layers stay sparse (model/sparse_rows.h): a mask and the kept
    // values in the checkpoint's type, which decode to the pruned weights bit
    // for bit, run in the engine without being expanded, and export as dense.
    void prunedLayersStaySparse()
    {
        LL_REQUIRE_SHARED();
        const auto source = openModel(test::sharedPath("models/stories260K/stories260K.bin"));
        const std::vector<int32_t> ids{1, 400, 20, 33, 7, 250, 3, 99};
        std::vector<int32_t> prompt; // 40 tokens: the engine's GEMM path (more than kMatmulRowsPath rows)
        for (int i = 0; i < 5; ++i)
            prompt.insert(prompt.end(), ids.begin(), ids.end());
        for (bool nm : {false, true}) {
            ModelPruneOptions o;
            o.layer.sparsity = 0.5;
            if (nm)
                o.layer.nm = NMPattern{2, 4};
            const ModelCompressionResult r = pruneModel(*source, o);
            QCOMPARE(r.layers.size(), size_t{35});
            Model dense = *r.model; // the same values as F32 (what the state held before)
            uint64_t bytes = 0;
            int64_t weights = 0;
            for (const LayerOutcome& l : r.layers) {
                const LogicalTensor* t = r.model->findLogical(l.name);
                const TensorRef& stored = r.model->stored.at(static_cast<size_t>(t->replacedBy));
                QCOMPARE(stored.dtype, DType::Sparse);
                QCOMPARE(stored.sparse->valueType, DType::F32); // stories260K is F32
                const MatrixRM W0 = readMatrix(*source, *source->findLogical(l.name)), W = readMatrix(*r.model, *t);
                // Magnitude pruning keeps values as they were: each is the source's, bit for bit, or +0.
                int64_t zeros = 0;
                for (Eigen::Index i = 0; i < W.size(); ++i) {
                    uint32_t b;
                    std::memcpy(&b, &W.data()[i], 4);
                    zeros += b == 0;
                    if (b != 0 && std::memcmp(&W.data()[i], &W0.data()[i], 4) != 0)
                        QFAIL(qPrintable(QString::fromStdString(l.name) + " changed a kept value"));
                }
                QVERIFY(std::abs(static_cast<double>(zeros) / static_cast<double>(W.size()) - 0.5) < 0.01);
                if (nm) // every row: an offset, a mask bit per column, half the values; then the zero tail
                    QCOMPARE(stored.nbytes, static_cast<uint64_t>(W.rows() * (8 + (W.cols() + 63) / 64 * 8 + W.cols() / 2 * 4))
                                                + SparseLayout::kTailBytes);
                bytes += stored.nbytes;
                weights += t->elements();
                replaceTensor(dense, l.name, std::vector<float>(W.data(), W.data() + W.size()), {W.rows(), W.cols()});
            }
            const double bitsPerWeight = 8.0 * static_cast<double>(bytes) / static_cast<double>(weights);
            qInfo("%s on stories260K: %.2f bits a weight as stored (F32 values)", nm ? "2:4" : "magnitude 50 %", bitsPerWeight);
            QVERIFY2(bitsPerWeight < 19.0, qPrintable(QString::number(bitsPerWeight))); // 16 + a mask bit + a row offset

            // The engine computes from the sparse rows, on the decoding and the GEMM paths.
            Transformer sparse(*r.model);
            QCOMPARE(sparse.linear(0, Role::AttnQ).W.type, DType::Sparse);
            Transformer f32(dense);
            QCOMPARE(f32.linear(0, Role::AttnQ).W.type, DType::F32);
            for (const auto& tokens : {ids, prompt}) {
                const Eigen::MatrixXf got = sparse.logits(tokens), want = f32.logits(tokens);
                const float scale = want.cwiseAbs().maxCoeff();
                QVERIFY((got - want).cwiseAbs().maxCoeff() <= 1e-5f * scale);
                QVERIFY((Transformer(*source).logits(tokens) - want).cwiseAbs().maxCoeff() > 1e-3f * scale); // pruning shows
            }

            // Exported, the tensor is its dense value: F32 GGUF reloads bit for bit.
            QTemporaryDir dir;
            const auto back = reloadedAsF32Gguf(*r.model, dir);
            for (const LayerOutcome& l : r.layers)
                QVERIFY(bitIdentical(readMatrix(*back, *back->findLogical(l.name)), readMatrix(dense, *dense.findLogical(l.name))));

            // A later edit reads the sparse values: RTN over the pruned layers packs its grid.
            if (nm) {
                QuantizeModelOptions q;
                q.config = gridConfig(QuantMethod::Rtn, 4, false, 32);
                const ModelCompressionResult rq = quantizeModel(*r.model, q);
                const LogicalTensor* t = rq.model->findLogical(r.layers.front().name);
                QCOMPARE(rq.model->stored.at(static_cast<size_t>(t->replacedBy)).dtype, DType::Grid);
            }
        }

        // Few zeros: dense values are smaller, and stay dense.
        ModelPruneOptions light;
        light.layer.sparsity = 0.2;
        const ModelCompressionResult r = pruneModel(*source, light);
        const LogicalTensor* t = r.model->findLogical(r.layers.front().name);
        QCOMPARE(r.model->stored.at(static_cast<size_t>(t->replacedBy)).dtype, DType::F32);

        // A half-precision checkpoint's pruned values stay half beside their mask.
        const auto half = openModel(test::sharedPath("models/tiny-llama-fp16-sharded"));
        ModelPruneOptions o;
        o.layer.sparsity = 0.5;
        const ModelCompressionResult rh = pruneModel(*half, o);
        QVERIFY(!rh.layers.empty());
        for (const LayerOutcome& l : rh.layers) {
            const LogicalTensor* th = rh.model->findLogical(l.name);
            const TensorRef& stored = rh.model->stored.at(static_cast<size_t>(th->replacedBy));
            QCOMPARE(stored.dtype, DType::Sparse);
            QCOMPARE(stored.sparse->valueType, DType::F16);
            const MatrixRM W = readMatrix(*rh.model, *th);
            QVERIFY(std::abs(static_cast<double>((W.array() == 0.0f).count()) / static_cast<double>(W.size()) - 0.5) < 0.02);
        }
        // Pruning a pruned layer again keeps its values' type (F16, not F32).
        ModelPruneOptions more;
        more.layer.sparsity = 0.7;
        const ModelCompressionResult again = pruneModel(*rh.model, more);
        const LogicalTensor* ta = again.model->findLogical(again.layers.front().name);
        QCOMPARE(again.model->stored.at(static_cast<size_t>(ta->replacedBy)).sparse->valueType, DType::F16);
    }
};

QTEST_GUILESS_MAIN(TestPackedStorage)
#include "test_packed_storage.moc"
