// The engine's kernels against their scalar references (as ggml's
// test-backend-ops compares fast kernels with the CPU reference):
//   - row decoders, fast vs reference: bit-identical, for every type, on
//     llama.cpp's own quantized tensors and on random matrices;
//   - fused dot products and matmulStored (decoding and GEMM paths, threaded)
//     against a double-precision product of the reference-decoded weights;
//   - whole models run from their stored weights against the same models with
//     every matrix converted to F32 first.
#include "test_support.h"

#include "engine/transformer.h"
#include "formats/open_model.h"
#include "kernels/cpu_features.h"
#include "kernels/grid_kernels.h"
#include "kernels/int8_dot.h"
#include "kernels/matmul.h"
#include "kernels/row_kernels.h"
#include "kernels/sparse_kernels.h"
#include "kernels/stored_matrix.h"
#include "model/model.h"
#include "quant/ggml_quantize.h"
#include "util/error.h"
#include "util/half.h"
#include "util/threads.h"

#include <QScopeGuard>
#include <QtTest>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

using namespace ll;

namespace {

// A fused dot product sums in float, in another order than the reference's
// double sum: its error is bounded by n * eps * sum |w_i x_i|; measured below
// 2e-7 relative for n = 4096, so 1e-5 leaves room for other CPUs' orders.
constexpr double kDotRelTol = 1e-5;
// matmulStored against the double product: F32 GEMM rounding over k <= 1024.
constexpr double kMatmulRelTol = 1e-5;
// BF16 weights with Bf16Products::Native: x is rounded to BF16 (relative error
// 2^-9 per value), so each sum is off by at most 2^-9 of sum |x w| (+ F32 rounding).
constexpr double kBf16ProductsRelTol = 1.0 / 256;
// Logits from stored weights vs the same weights converted to F32 beforehand:
// identical decoded values, products blocked differently (panels) -> float
// rounding only. Relative to max |logit|.
constexpr double kLogitsRelTol = 1e-5;
// BF16 weights with BF16 products (x rounded to BF16 in every linear of the
// prefill): measured 2.8e-3 on tiny-llama256; transformers running a BF16
// model rounds far more (every activation, every output).
constexpr double kBf16LogitsRelTol = 1e-2;
// Decoding with integer products (int8_dot.h): x rounded to 8 bits per 256
// values in every linear (about 0.4 % of max |x| per value); measured 0.9 % to
// 2.2 % of max |logit| on tiny-llama256's Q4_K_S, Q5_K_S, Q6_K and Q8_0 files
// (random weights, 4 blocks). llama.cpp rounds x the same way for these types.
constexpr double kInt8LogitsRelTol = 3e-2;
// F16 weights decoded with x rounded to F16 (F16Products::HalfX): each product
// off by at most 2^-11 of its size (the rounding of x), plus F32 sums.
constexpr double kHalfProductsRelTol = 1.0 / 2048 + 1e-5;
// ... and the logits after a whole model of such products (x rounded 8x more
// finely than BF16's: within BF16's bound).
constexpr double kHalfLogitsRelTol = kBf16LogitsRelTol;

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                           DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                           DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};

// One packed grid row of layout L with random scales, zero points (0 with a
// codebook) and codes, or random alphas for binary coding; with exceptions,
// random dense columns' values and up to outlierSlots outliers, the codes
// under them set to the zero point (as quant/packed_storage.cpp packs them).
std::vector<uint8_t> randomGridRow(const GridLayout& L, std::mt19937& rng)
{
    std::vector<float> scales(static_cast<size_t>(L.groups) * (L.binaryCoding ? static_cast<size_t>(L.bits) : 1));
    std::vector<uint8_t> zeros(static_cast<size_t>(L.groups)), codes(static_cast<size_t>(L.cols));
    for (float& s : scales)
        s = static_cast<float>(rng() % 10000 + 1) * 1e-5f;
    for (uint8_t& z : zeros)
        z = L.codebook.empty() ? static_cast<uint8_t>(rng() % (1u << L.bits)) : 0;
    for (uint8_t& c : codes)
        c = static_cast<uint8_t>(rng() % (1u << L.bits));
    std::vector<float> dense(L.denseColumns.size());
    for (size_t k = 0; k < dense.size(); ++k) {
        dense[k] = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 100.0f;
        codes[static_cast<size_t>(L.denseColumns[k])] = zeros[static_cast<size_t>(L.groupOf(L.denseColumns[k]))];
    }
    std::vector<int32_t> outlierCols;
    std::vector<float> outlierValues;
    const int64_t outliers = L.outlierSlots > 0 ? static_cast<int64_t>(rng() % static_cast<uint32_t>(L.outlierSlots + 1)) : 0;
    for (int64_t k = 0; k < outliers; ++k) {
        const auto c = static_cast<int32_t>(rng() % static_cast<uint32_t>(L.cols));
        if (std::find(outlierCols.begin(), outlierCols.end(), c) != outlierCols.end()
            || std::binary_search(L.denseColumns.begin(), L.denseColumns.end(), c))
            continue; // each position an exception once (model/packed_grid.h)
        outlierCols.push_back(c);
        outlierValues.push_back(static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 100.0f);
        codes[static_cast<size_t>(c)] = zeros[static_cast<size_t>(L.groupOf(c))];
    }
    std::vector<uint8_t> row(L.rowBytes());
    encodeGridRow(L, scales.data(), zeros.data(), codes.data(), row.data());
    writeGridExceptions(L, dense.data(), outlierCols.data(), outlierValues.data(), static_cast<int64_t>(outlierCols.size()),
                        row.data());
    return row;
}

// Up to n ascending distinct columns of [0, cols), and outlierSlots = n: a layout's exceptions.
void addRandomExceptions(GridLayout& L, int64_t n, std::mt19937& rng)
{
    for (int64_t k = 0; k < n; ++k)
        L.denseColumns.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(L.cols)));
    std::sort(L.denseColumns.begin(), L.denseColumns.end());
    L.denseColumns.erase(std::unique(L.denseColumns.begin(), L.denseColumns.end()), L.denseColumns.end());
    L.outlierSlots = n;
}

std::vector<float> randomValues(int64_t n, uint32_t seed, float scale = 1.0f)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v)
        x = dist(gen);
    return v;
}

// A (rows, cols) matrix of random values stored as `t`.
struct StoredBytes {
    std::shared_ptr<std::vector<uint8_t>> bytes;
    StoredMatrix matrix;
};

StoredBytes storeAs(DType t, const std::vector<float>& values, int64_t rows, int64_t cols)
{
    auto bytes = std::make_shared<std::vector<uint8_t>>();
    if (t == DType::F32) {
        bytes->resize(values.size() * 4);
        std::memcpy(bytes->data(), values.data(), bytes->size());
    } else if (t == DType::F16 || t == DType::BF16) {
        bytes->resize(values.size() * 2);
        for (size_t i = 0; i < values.size(); ++i) {
            const uint16_t h = t == DType::F16 ? floatToFp16(values[i]) : floatToBf16(values[i]);
            std::memcpy(bytes->data() + 2 * i, &h, 2);
        }
    } else {
        *bytes = quantizeGgmlRows(t, values.data(), rows, cols);
    }
    StoredBytes s;
    s.matrix = StoredMatrix::view(t, bytes->data(), rows, cols, bytes);
    s.bytes = bytes;
    return s;
}

std::vector<float> decodeWith(const RowKernels& k, const StoredMatrix& m)
{
    std::vector<float> out(static_cast<size_t>(m.elements()));
    for (int64_t r = 0; r < m.rows; ++r)
        k.decode(m.row(r), out.data() + r * m.cols, m.cols);
    return out;
}

// Types a random matrix can be stored as here (LayerLab quantizes every block
// type but IQ4_XS; llama.cpp's files cover that one).
bool storable(DType t)
{
    return t == DType::F32 || t == DType::F16 || t == DType::BF16 || canQuantizeGgml(t);
}

bool bitIdentical(const std::vector<float>& a, const std::vector<float>& b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Restores the kernel level and thread count a test changed.
struct LevelGuard {
    KernelLevel saved = kernelLevel();
    ~LevelGuard()
    {
        setKernelLevel(saved);
        setBf16Products(Bf16Products::Native);
        setQuantProducts(QuantProducts::Int8);
        setF16Products(F16Products::HalfX);
        setComputeThreads(0);
    }
};

bool haveFastKernels()
{
    return hostCpu().avx512();
}

} // namespace

class TestKernels : public QObject {
    Q_OBJECT

private slots:
    // The portable half conversions (used where the compiler has no _Float16:
    // clang 14, the fuzz build) against the compiler's: every half, the floats
    // on both sides of every rounding boundary, and a sweep of all floats.
    void portableHalfConversionsMatchTheCompilers()
    {
        for (uint32_t h = 0; h < 65536; ++h) {
            const float a = fp16ToFloatPortable(static_cast<uint16_t>(h)), b = fp16ToFloat(static_cast<uint16_t>(h));
            QVERIFY(std::memcmp(&a, &b, 4) == 0);
        }
        auto same = [](uint32_t bits) {
            float f;
            std::memcpy(&f, &bits, 4);
            return floatToFp16Portable(f) == floatToFp16(f);
        };
        for (uint32_t h = 0; h < 0x7c00; ++h) {
            // a half value and its midpoint to the next, as float bits, and one ulp either side
            const float lo = fp16ToFloat(static_cast<uint16_t>(h)), hi = fp16ToFloat(static_cast<uint16_t>(h + 1));
            const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);
            for (float v : {lo, mid}) {
                uint32_t bits;
                std::memcpy(&bits, &v, 4);
                for (uint32_t b : {bits - 1, bits, bits + 1})
                    for (uint32_t sign : {0u, 0x80000000u})
                        QVERIFY2(same(b | sign), qPrintable(QString::number(b | sign, 16)));
            }
        }
        for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 997)
            QVERIFY2(same(static_cast<uint32_t>(bits)), qPrintable(QString::number(bits, 16)));
    }

    void fastDecodersAreBitIdenticalOnRandomMatrices()
    {
        if (!haveFastKernels())
            QSKIP("this CPU has no AVX-512: only the portable kernels exist");
        const int64_t rows = 7, cols = 512;
        for (DType t : kAllTypes) {
            if (!storable(t))
                continue;
            const auto values = randomValues(rows * cols, 11 + static_cast<uint32_t>(t), 0.7f);
            const StoredBytes s = storeAs(t, values, rows, cols);
            const auto ref = decodeWith(referenceRowKernels(t), s.matrix);
            LevelGuard guard;
            setKernelLevel(KernelLevel::Avx512);
            const auto fast = decodeWith(rowKernels(t), s.matrix);
            QVERIFY2(bitIdentical(fast, ref), dtypeName(t).data());
            // The decoded values are the type's: close to the originals.
            double err = 0, norm = 0;
            for (size_t i = 0; i < values.size(); ++i) {
                err += (ref[i] - values[i]) * (ref[i] - values[i]);
                norm += values[i] * values[i];
            }
            QVERIFY2(std::sqrt(err / norm) < 0.5, dtypeName(t).data());
        }
    }

    void fastDecodersAreBitIdenticalOnLlamaCppFiles()
    {
        LL_REQUIRE_SHARED();
        if (!haveFastKernels())
            QSKIP("this CPU has no AVX-512");
        const char* quants[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q4_K_S",
                                "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS", "F16", "BF16"};
        for (const char* q : quants) {
            auto m = openModel(test::sharedPath(std::string("models/gguf-quants/tiny-llama256-") + q + ".gguf"));
            int checked = 0;
            for (const TensorRef& t : m->stored) {
                if (t.shape.size() != 2 || !hasRowKernels(t.dtype))
                    continue;
                const StoredMatrix s = StoredMatrix::view(t.dtype, t.data, t.shape[0], t.shape[1], t.keepAlive);
                const auto ref = decodeWith(referenceRowKernels(t.dtype), s);
                LevelGuard guard;
                setKernelLevel(KernelLevel::Avx512);
                QVERIFY2(bitIdentical(decodeWith(rowKernels(t.dtype), s), ref), (std::string(q) + " " + t.name).c_str());
                ++checked;
            }
            QVERIFY2(checked > 0, q);
        }
    }

    void dotProductsAgreeWithTheReference()
    {
        const int64_t cols = 4096;
        const auto x = randomValues(cols, 5);
        for (KernelLevel level : {KernelLevel::Portable, KernelLevel::Avx512}) {
            LevelGuard guard;
            if (setKernelLevel(level) != level)
                continue;
            for (DType t : kAllTypes) {
                if (!storable(t))
                    continue;
                const auto values = randomValues(3 * cols, 17 + static_cast<uint32_t>(t), 0.05f);
                const StoredBytes s = storeAs(t, values, 3, cols);
                const auto decoded = decodeWith(referenceRowKernels(t), s.matrix);
                for (int64_t r = 0; r < 3; ++r) {
                    double exact = 0, magnitude = 0;
                    for (int64_t i = 0; i < cols; ++i) {
                        exact += static_cast<double>(decoded[r * cols + i]) * x[i];
                        magnitude += std::fabs(static_cast<double>(decoded[r * cols + i]) * x[i]);
                    }
                    const double fast = rowKernels(t).dot(s.matrix.row(r), x.data(), cols);
                    const double ref = referenceRowKernels(t).dot(s.matrix.row(r), x.data(), cols);
                    QVERIFY2(std::fabs(ref - exact) <= 1e-7 * magnitude, dtypeName(t).data());
                    QVERIFY2(std::fabs(fast - exact) <= kDotRelTol * magnitude,
                             (std::string(dtypeName(t)) + " at " + kernelLevelName(level)).c_str());
                }
            }
        }
    }

    // Packed grid rows (RTN/GPTQ/AWQ/HQQ/NF4 layers once applied): the fast
    // decoder against the scalar reference, bit for bit, at every bit width, with
    // and without groups, act-order group indices, AWQ column scales and
    // codebooks, on sub-ranges that start and end off the 8-column boundaries.
    void gridDecoderIsBitIdenticalWithTheReference()
    {
        std::mt19937 rng(23);
        for (KernelLevel level : {KernelLevel::Portable, KernelLevel::Avx512}) {
            LevelGuard guard;
            if (setKernelLevel(level) != level)
                continue;
            for (int bits = 1; bits <= 8; ++bits)
                for (int64_t cols : {8, 37, 256, 1000})
                    for (int variant = 0; variant < 6; ++variant) {
                        GridLayout L;
                        L.bits = bits;
                        L.cols = cols;
                        L.groupCols = variant == 0 ? cols : std::min<int64_t>(cols, bits % 2 ? 32 : 20);
                        L.groups = (cols + L.groupCols - 1) / L.groupCols;
                        if (variant == 1)
                            for (int64_t c = 0; c < cols; ++c)
                                L.groupIndex.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(L.groups)));
                        if (variant == 2)
                            for (int64_t c = 0; c < cols; ++c)
                                L.columnScale.push_back(0.5f + static_cast<float>(rng() % 1000) / 997.0f);
                        if (variant == 3)
                            for (int v = 0; v < (1 << bits); ++v)
                                L.codebook.push_back(static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 1000.0f);
                        L.binaryCoding = variant == 4; // BCQ: alphas instead of scales and zeros
                        if (variant == 5) // OWQ / SpQR: dense columns and single weights over the grid
                            addRandomExceptions(L, std::max<int64_t>(1, cols / 16), rng);
                        L.validate();
                        const std::vector<uint8_t> row = randomGridRow(L, rng);
                        const QString what = QStringLiteral("w%1 cols %2 variant %3 at %4")
                                                 .arg(bits)
                                                 .arg(cols)
                                                 .arg(variant)
                                                 .arg(kernelLevelName(level));
                        for (auto [c0, n] : std::vector<std::pair<int64_t, int64_t>>{{0, cols}, {3, cols - 3}, {0, cols - 5},
                                                                                     {cols / 2, cols / 4}}) {
                            if (n <= 0)
                                continue;
                            std::vector<float> ref(static_cast<size_t>(n)), fast(static_cast<size_t>(n), -1.0f);
                            decodeGridColumns(L, row.data(), c0, n, ref.data());
                            decodeGridColumnsFast(L, row.data(), c0, n, fast.data());
                            QVERIFY2(bitIdentical(ref, fast), qPrintable(what + " from " + QString::number(c0)));
                        }
                        const auto x = randomValues(cols, static_cast<uint32_t>(bits * 10 + variant));
                        std::vector<float> w(static_cast<size_t>(cols));
                        decodeGridRow(L, row.data(), w.data());
                        double exact = 0, magnitude = 0;
                        for (int64_t i = 0; i < cols; ++i) {
                            exact += static_cast<double>(w[i]) * x[i];
                            magnitude += std::fabs(static_cast<double>(w[i]) * x[i]);
                        }
                        QVERIFY2(std::fabs(gridDot(L, row.data(), x.data()) - exact) <= kDotRelTol * magnitude, qPrintable(what));
                    }
        }
    }

    // Sparse rows (model/sparse_rows.h) by their definition: the kept values at
    // the mask's set bits in column order, +0 elsewhere, -0 kept as a value;
    // the AVX-512 decoder bit-identical with the reference from any column,
    // the dot within its float bound, matmulStored on both paths.
    void sparseRowsAgreeWithTheReference()
    {
        std::mt19937 rng(31);
        for (DType type : {DType::F32, DType::F16, DType::BF16})
            for (int64_t cols : {16, 37, 64, 70, 256, 1000})
                for (int pattern = 0; pattern < 5; ++pattern) { // dense, 30 %, 50 %, 2:4, 90 % pruned
                    // Values already in `type`, some -0 (a value, not pruned), none +0 but the pruned.
                    std::vector<float> v = randomValues(2 * cols, rng(), 0.3f);
                    for (size_t i = 0; i < v.size(); ++i) {
                        if (type == DType::F16)
                            v[i] = fp16ToFloat(floatToFp16(v[i]));
                        if (type == DType::BF16)
                            v[i] = bf16ToFloat(floatToBf16(v[i]));
                        if (i % 97 == 5)
                            v[i] = -0.0f;
                        const double p = pattern == 1 ? 0.3 : pattern == 2 ? 0.5 : pattern == 4 ? 0.9 : 0.0;
                        if ((pattern == 3 && i % 4 < 2) || static_cast<double>(rng() % 1000) < 1000.0 * p)
                            v[i] = 0.0f;
                    }
                    SparseLayout L;
                    L.valueType = type;
                    L.cols = cols;
                    L.validate();
                    const int64_t kept = sparseKept(v.data(), 2 * cols);
                    std::vector<uint8_t> bytes(L.bytes(2, kept));
                    encodeSparseRows(L, v.data(), 2, bytes.data());
                    const QString what = QStringLiteral("%1, %2 columns, pattern %3").arg(dtypeName(type).data()).arg(cols).arg(pattern);
                    // The reference by definition (bit for bit: -0 stays -0), each row on its own.
                    for (int r = 0; r < 2; ++r) {
                        std::vector<float> ref(static_cast<size_t>(cols));
                        decodeSparseRow(L, bytes.data() + r * L.rowBytes(), ref.data());
                        QVERIFY2(bitIdentical(ref, std::vector<float>(v.begin() + r * cols, v.begin() + (r + 1) * cols)), qPrintable(what));
                    }
                    const auto x = randomValues(cols, 7);
                    for (KernelLevel level : {KernelLevel::Portable, KernelLevel::Avx512}) {
                        LevelGuard guard;
                        if (setKernelLevel(level) != level)
                            continue;
                        for (int r = 0; r < 2; ++r) {
                            const uint8_t* row = bytes.data() + r * L.rowBytes();
                            for (auto [c0, n] : std::vector<std::pair<int64_t, int64_t>>{
                                     {0, cols}, {3, cols - 3}, {0, cols - 5}, {cols / 2, cols / 4}, {48, cols - 48}}) {
                                if (n <= 0 || c0 + n > cols)
                                    continue;
                                std::vector<float> want(static_cast<size_t>(n)), fast(static_cast<size_t>(n), -1.0f);
                                decodeSparseColumns(L, row, c0, n, want.data());
                                decodeSparseColumnsFast(L, row, c0, n, fast.data());
                                QVERIFY2(bitIdentical(want, fast), qPrintable(what + " from " + QString::number(c0) + " at " + kernelLevelName(level)));
                            }
                            double exact = 0, magnitude = 0;
                            for (int64_t i = 0; i < cols; ++i) {
                                exact += static_cast<double>(v[r * cols + i]) * x[i];
                                magnitude += std::fabs(static_cast<double>(v[r * cols + i]) * x[i]);
                            }
                            QVERIFY2(std::fabs(sparseDot(L, row, x.data()) - exact) <= kDotRelTol * magnitude + 1e-30, qPrintable(what));
                        }
                    }
                }

        // matmulStored from sparse rows: the decoding path (1 row) and the GEMM path (64), on 2 threads.
        const int64_t n = 70, k = 1024;
        SparseLayout L;
        L.valueType = DType::BF16;
        L.cols = k;
        std::vector<float> w = randomValues(n * k, 41, 0.05f);
        for (int64_t i = 0; i < n * k; ++i) // rows keep 1/4 to all of their values
            w[i] = static_cast<int64_t>(i * 2654435761u % 1000) < 250 * ((i / k) % 4) ? 0.0f : bf16ToFloat(floatToBf16(w[i]));
        auto bytes = std::make_shared<std::vector<uint8_t>>(L.bytes(n, sparseKept(w.data(), n * k)));
        encodeSparseRows(L, w.data(), n, bytes->data());
        const StoredMatrix S = StoredMatrix::view(DType::Sparse, bytes->data(), n, k, bytes, nullptr,
                                                  std::make_shared<const SparseLayout>(L));
        const MatrixRM decoded = S.toMatrix();
        QVERIFY(bitIdentical(std::vector<float>(decoded.data(), decoded.data() + n * k), w));
        for (int m : {1, 64}) {
            const auto x = randomValues(m * k, 43);
            // Avx512Bf16: the prefill decodes panels back to BF16 for the BF16 GEMM, x rounded to BF16.
            for (KernelLevel level : {KernelLevel::Portable, KernelLevel::Avx512, KernelLevel::Avx512Bf16}) {
                LevelGuard guard;
                if (setKernelLevel(level) != level)
                    continue;
                setComputeThreads(2);
                setBf16Products(Bf16Products::Native);
                const double tol = level == KernelLevel::Avx512Bf16 && m > kMatmulRowsPath ? kBf16ProductsRelTol : kMatmulRelTol;
                std::vector<float> y(static_cast<size_t>(m * n));
                matmulStored(x.data(), k, S, y.data(), n, m);
                for (int64_t i = 0; i < m; ++i)
                    for (int64_t j = 0; j < n; ++j) {
                        double exact = 0, magnitude = 0;
                        for (int64_t c = 0; c < k; ++c) {
                            exact += static_cast<double>(x[i * k + c]) * w[j * k + c];
                            magnitude += std::fabs(static_cast<double>(x[i * k + c]) * w[j * k + c]);
                        }
                        if (std::fabs(y[i * n + j] - exact) > tol * magnitude)
                            QFAIL(qPrintable(QString("sparse rows, %1 rows at %2: y(%3, %4) = %5, expected %6")
                                                 .arg(m).arg(kernelLevelName(level)).arg(i).arg(j).arg(y[i * n + j]).arg(exact)));
                    }
            }
        }
        // A view of some rows finds their values; a view needs its layout, of its width.
        const StoredMatrix tail = StoredMatrix::view(DType::Sparse, bytes->data() + 5 * L.rowBytes(), 3, k, bytes, nullptr,
                                                     std::make_shared<const SparseLayout>(L));
        QVERIFY(tail.toMatrix() == decoded.middleRows(5, 3));
        QVERIFY_THROWS_EXCEPTION(Error, StoredMatrix::view(DType::Sparse, bytes->data(), n, k, bytes));
        SparseLayout narrow = L;
        narrow.cols = k / 2;
        QVERIFY_THROWS_EXCEPTION(Error, StoredMatrix::view(DType::Sparse, bytes->data(), n, k, bytes, nullptr,
                                                           std::make_shared<const SparseLayout>(narrow)));
    }

    // One CPU budget (util/threads.h): jobs holding a ComputeShare at the same
    // time split computeThreads(); alone, or without a share, they get it all.
    void jobsShareTheComputeThreads()
    {
        LevelGuard guard;
        setComputeThreads(4);
        QCOMPARE(computeThreads(), 4);
        QCOMPARE(computeShares(), 0);
        const auto sharesOf = [](int jobs) {
            std::vector<int> seen(static_cast<size_t>(jobs));
            std::barrier registered(jobs), measured(jobs);
            std::vector<std::thread> threads;
            for (int j = 0; j < jobs; ++j)
                threads.emplace_back([&, j] {
                    const ComputeShare share;
                    const ComputeShare nested; // counts once
                    registered.arrive_and_wait();
                    seen[static_cast<size_t>(j)] = computeThreads();
                    measured.arrive_and_wait();
                });
            for (auto& t : threads)
                t.join();
            return seen;
        };
        QCOMPARE(sharesOf(1), std::vector<int>({4}));
        QCOMPARE(sharesOf(2), std::vector<int>({2, 2}));
        QCOMPARE(sharesOf(3), std::vector<int>({1, 1, 1})); // 4 / 3, rounded down
        QCOMPARE(sharesOf(5), std::vector<int>({1, 1, 1, 1, 1})); // never below one
        QCOMPARE(computeShares(), 0);
        QCOMPARE(computeThreads(), 4); // this thread holds none
    }

    void matmulMatchesTheReferenceProduct_data()
    {
        QTest::addColumn<int>("m");
        QTest::addColumn<int>("threads");
        for (int m : {1, 3, 4, 5, 64, 130, 500}) // 500: two packed blocks of x
            for (int threads : {1, 2})
                QTest::newRow((std::to_string(m) + " rows, " + std::to_string(threads) + " threads").c_str()) << m << threads;
    }

    void matmulMatchesTheReferenceProduct()
    {
        QFETCH(int, m);
        QFETCH(int, threads);
        const int64_t n = 70, k = 1024; // 70: a partial 32-column tile
        const auto x = randomValues(m * k, 3);
        for (DType t : kAllTypes) {
            if (!storable(t))
                continue;
            const StoredBytes s = storeAs(t, randomValues(n * k, 23 + static_cast<uint32_t>(t), 0.05f), n, k);
            const auto w = decodeWith(referenceRowKernels(t), s.matrix);
            std::vector<double> exact(static_cast<size_t>(m * n)), magnitude(static_cast<size_t>(m * n));
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j)
                    for (int64_t c = 0; c < k; ++c) {
                        const double v = static_cast<double>(x[i * k + c]) * w[j * k + c];
                        exact[i * n + j] += v;
                        magnitude[i * n + j] += std::fabs(v);
                    }
            for (KernelLevel level : {KernelLevel::Portable, KernelLevel::Avx512, KernelLevel::Avx512Bf16})
                for (Bf16Products products : {Bf16Products::Native, Bf16Products::F32})
                for (F32Gemm f32 : {F32Gemm::Eigen, F32Gemm::Tiles}) { // F32: both prefill GEMMs
                    LevelGuard guard;
                    if (setKernelLevel(level) != level || (products == Bf16Products::F32 && t != DType::BF16)
                        || (f32 == F32Gemm::Tiles && t != DType::F32))
                        continue;
                    const F32Gemm f32Before = f32Gemm();
                    setF32Gemm(f32);
                    const auto restoreF32 = qScopeGuard([f32Before] { setF32Gemm(f32Before); });
                    setBf16Products(products);
                    setQuantProducts(QuantProducts::F32); // int8 products: int8DotsAgreeWithTheReference
                    setF16Products(F16Products::F32);     // x in F16: halfProductsRoundTheActivations
                    setComputeThreads(threads);
                    // y has a leading dimension larger than n, as a slice of a wider activation.
                    const int64_t ldy = n + 8;
                    std::vector<float> y(static_cast<size_t>(m * ldy), -7.0f);
                    matmulStored(x.data(), k, s.matrix, y.data(), ldy, m);
                    const bool bf16Rounding = t == DType::BF16 && level == KernelLevel::Avx512Bf16
                                              && products == Bf16Products::Native && m > kMatmulRowsPath;
                    const double tol = bf16Rounding ? kBf16ProductsRelTol : kMatmulRelTol;
                    for (int64_t i = 0; i < m; ++i) {
                        for (int64_t j = 0; j < n; ++j)
                            if (std::fabs(y[i * ldy + j] - exact[i * n + j]) > tol * magnitude[i * n + j])
                                QFAIL(qPrintable(QString("%1 at %2: y(%3, %4) = %5, expected %6")
                                                     .arg(dtypeName(t).data(), kernelLevelName(level))
                                                     .arg(i).arg(j).arg(y[i * ldy + j]).arg(exact[i * n + j])));
                        for (int64_t j = n; j < ldy; ++j) // the padding is untouched
                            QCOMPARE(y[i * ldy + j], -7.0f);
                    }
                }
        }
    }

    // With BF16 products the rounding of x is visible, and bounded; with F32 it is gone.
    void bf16ProductsRoundTheActivations()
    {
        LevelGuard guard;
        if (setKernelLevel(KernelLevel::Avx512Bf16) != KernelLevel::Avx512Bf16)
            QSKIP("this CPU has no AVX-512 BF16");
        const int64_t m = 64, n = 64, k = 512;
        const auto x = randomValues(m * k, 31);
        const StoredBytes s = storeAs(DType::BF16, randomValues(n * k, 32, 0.05f), n, k);
        std::vector<float> native(static_cast<size_t>(m * n)), exact(static_cast<size_t>(m * n));
        matmulStored(x.data(), k, s.matrix, native.data(), n, m);
        setBf16Products(Bf16Products::F32);
        matmulStored(x.data(), k, s.matrix, exact.data(), n, m);
        const double diff = test::maxAbsDiff(native, exact);
        QVERIFY(diff > 0.0);   // the BF16 kernel really ran
        QVERIFY(diff < 0.05);  // sums of 512 products of ~0.05: rounding of 2^-9
    }

    // F16 weights on the decoding path with x rounded to F16 (what llama.cpp
    // computes): exact against the product of the rounded x, within 2^-11 of
    // each product against the unrounded x, and the F32 path without rounding.
    void halfProductsRoundTheActivations()
    {
        LevelGuard guard;
        if (setKernelLevel(KernelLevel::Avx512) != KernelLevel::Avx512)
            QSKIP("this CPU has no AVX-512");
        const auto restore = qScopeGuard([] { setF16Products(F16Products::HalfX); });
        const int64_t n = 70, k = 1000; // k not a multiple of 64 or 16: the tails
        const StoredBytes s = storeAs(DType::F16, randomValues(n * k, 41, 0.05f), n, k);
        const auto w = decodeWith(referenceRowKernels(DType::F16), s.matrix);
        for (int64_t m : {int64_t{1}, int64_t{3}}) {
            const auto x = randomValues(m * k, 42);
            std::vector<float> xr(x.size());
            for (size_t i = 0; i < x.size(); ++i)
                xr[i] = fp16ToFloat(floatToFp16(x[i])); // round to nearest even, as vcvtps2ph
            std::vector<float> half(static_cast<size_t>(m * n)), plain(static_cast<size_t>(m * n));
            setF16Products(F16Products::HalfX);
            matmulStored(x.data(), k, s.matrix, half.data(), n, m);
            setF16Products(F16Products::F32);
            matmulStored(x.data(), k, s.matrix, plain.data(), n, m);
            double roundedOff = 0;
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    double ofRounded = 0, ofExact = 0, magnitude = 0;
                    for (int64_t c = 0; c < k; ++c) {
                        ofRounded += static_cast<double>(xr[i * k + c]) * w[j * k + c];
                        ofExact += static_cast<double>(x[i * k + c]) * w[j * k + c];
                        magnitude += std::fabs(static_cast<double>(x[i * k + c]) * w[j * k + c]);
                    }
                    const double h = half[i * n + j], p = plain[i * n + j];
                    QVERIFY2(std::fabs(h - ofRounded) <= kMatmulRelTol * magnitude, qPrintable(QString("%1 vs %2").arg(h).arg(ofRounded)));
                    QVERIFY(std::fabs(h - ofExact) <= kHalfProductsRelTol * magnitude);
                    QVERIFY(std::fabs(p - ofExact) <= kMatmulRelTol * magnitude);
                    roundedOff = std::max(roundedOff, std::fabs(h - p));
                }
            QVERIFY(roundedOff > 0); // the rounding path really ran
        }
    }

    // Q8K quantization of x by hand: d = max|x| / 127, codes rounded to nearest,
    // sums per 16 values; a non-finite value makes the block's d NaN.
    void q8kQuantizesByItsDefinition()
    {
        std::vector<float> x(2 * kQ8Block);
        for (int64_t i = 0; i < kQ8Block; ++i)
            x[i] = static_cast<float>(i % 7 - 3) * 0.5f; // -1.5 .. 1.5
        x[kQ8Block + 5] = std::nanf("");
        std::vector<BlockQ8K> q(2);
        quantizeRowQ8K(x.data(), q.data(), 2 * kQ8Block);
        QCOMPARE(q[0].d, 1.5f / 127.0f);
        QCOMPARE(int{q[0].qs[0]}, -127);      // -1.5
        QCOMPARE(int{q[0].qs[2]}, -42);       // -0.5 * 127 / 1.5 = -42.33
        QCOMPARE(int{q[0].qs[3]}, 0);
        QCOMPARE(int{q[0].qs[5]}, 85);        // 1.0 * 127 / 1.5 = 84.67
        int sum = 0;
        for (int i = 0; i < 16; ++i)
            sum += q[0].qs[i];
        QCOMPARE(int{q[0].bsums[0]}, sum);
        QVERIFY(std::isnan(q[1].d));
        const StoredBytes s = storeAs(DType::Q8_0, randomValues(2 * kQ8Block, 3), 1, 2 * kQ8Block);
        QVERIFY(std::isnan(referenceInt8Dot(DType::Q8_0, s.matrix.row(0), q.data(), 2 * kQ8Block)));
        LevelGuard guard;
        setKernelLevel(KernelLevel::Avx512);
        if (const Int8DotFn fast = int8DotKernel(DType::Q8_0))
            QVERIFY(std::isnan(fast(s.matrix.row(0), q.data(), 2 * kQ8Block)));
    }

    // The integer dot products: the reference within its error bound of the
    // float product (x unrounded), the VNNI kernels within float rounding of the
    // reference, on random matrices and on llama.cpp's own quantized tensors.
    void int8DotsAgreeWithTheReference()
    {
        struct Case {
            std::string name;
            StoredMatrix matrix;
        };
        std::vector<Case> cases;
        std::vector<StoredBytes> keep;
        const int64_t cols = 2048;
        for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0}) {
            QVERIFY(hasInt8Dot(t));
            keep.push_back(storeAs(t, randomValues(4 * cols, 43 + static_cast<uint32_t>(t), 0.05f), 4, cols));
            cases.push_back({std::string("random ") + std::string(dtypeName(t)), keep.back().matrix});
        }
        std::vector<std::unique_ptr<Model>> files;
        if (test::haveShared())
            for (const char* q : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K_S", "Q5_K_S", "Q6_K", "Q8_0"}) {
                files.push_back(openModel(test::sharedPath(std::string("models/gguf-quants/tiny-llama256-") + q + ".gguf")));
                for (const TensorRef& t : files.back()->stored)
                    if (t.shape.size() == 2 && hasInt8Dot(t.dtype) && t.shape[1] % kQ8Block == 0)
                        cases.push_back({std::string(q) + " " + t.name,
                                         StoredMatrix::view(t.dtype, t.data, std::min<int64_t>(t.shape[0], 8), t.shape[1], t.keepAlive)});
            }
        LevelGuard guard;
        setKernelLevel(KernelLevel::Avx512);
        int fastChecked = 0;
        for (const Case& c : cases) {
            const int64_t k = c.matrix.cols;
            auto x = randomValues(k, 41);
            x[100] = 8.0f; // an outlier, as activations have: coarser codes in its block
            std::vector<BlockQ8K> xq(static_cast<size_t>(k / kQ8Block));
            quantizeRowQ8K(x.data(), xq.data(), k);
            const auto w = decodeWith(referenceRowKernels(c.matrix.type), c.matrix);
            const Int8DotFn fast = int8DotKernel(c.matrix.type);
            for (int64_t r = 0; r < c.matrix.rows; ++r) {
                double exact = 0, magnitude = 0;
                for (int64_t i = 0; i < k; ++i) {
                    exact += static_cast<double>(w[r * k + i]) * x[i];
                    magnitude += std::fabs(static_cast<double>(w[r * k + i]) * x[i]);
                }
                const double ref = referenceInt8Dot(c.matrix.type, c.matrix.row(r), xq.data(), k);
                const double bound = int8DotErrorBound(w.data() + r * k, xq.data(), k);
                QVERIFY2(std::fabs(ref - exact) <= bound + 1e-6 * magnitude, c.name.c_str());
                if (!fast)
                    continue;
                const double got = fast(c.matrix.row(r), xq.data(), k);
                QVERIFY2(std::fabs(got - ref) <= kDotRelTol * magnitude,
                         qPrintable(QString("%1 row %2: %3, reference %4").arg(c.name.c_str()).arg(r).arg(got).arg(ref)));
                ++fastChecked;
            }
        }
        if (!hostCpu().avx512vnni)
            QSKIP("this CPU has no AVX-512 VNNI: the references were checked, the fast kernels do not run here");
        QVERIFY(fastChecked >= 32);
    }

    // Integer dots of packed grid rows (int8_dot.h): at every bit width, with
    // groups of 32, 64, 96, 256 and a whole row, with and without AWQ's column
    // scales: the reference within its bound of the float product of the
    // decoded row and x, the VNNI kernel within float rounding of the reference.
    // Layouts the kernel cannot take (act-order, codebook, groups of 20) have none.
    void gridInt8DotsAgreeWithTheReference()
    {
        std::mt19937 rng(29);
        const int64_t cols = 768;
        LevelGuard guard;
        setKernelLevel(KernelLevel::Avx512);
        int fastChecked = 0;
        for (int bits = 1; bits <= 8; ++bits)
            for (int64_t group : {int64_t{32}, int64_t{64}, int64_t{96}, int64_t{256}, cols})
                for (int variant = 0; variant < 3; ++variant) {
                    const bool columnScales = variant == 1, exceptions = variant == 2;
                    GridLayout L;
                    L.bits = bits;
                    L.cols = cols;
                    L.groupCols = group;
                    L.groups = cols / group;
                    if (columnScales)
                        for (int64_t c = 0; c < cols; ++c)
                            L.columnScale.push_back(0.5f + static_cast<float>(rng() % 1000) / 997.0f);
                    if (exceptions) // OWQ's columns and SpQR's weights: their products added to the grid's
                        addRandomExceptions(L, 12, rng);
                    L.validate();
                    QVERIFY(gridHasInt8Dot(L));
                    const std::vector<uint8_t> row = randomGridRow(L, rng);
                    auto x = randomValues(cols, static_cast<uint32_t>(bits * 7 + group));
                    x[300] = 6.0f; // an outlier
                    std::vector<BlockQ8K> xq(static_cast<size_t>(cols / kQ8Block));
                    gridInt8Input(L, x.data(), xq.data());
                    std::vector<float> w(static_cast<size_t>(cols));
                    decodeGridRow(L, row.data(), w.data()); // column scales included
                    GridLayout plain = L;
                    plain.columnScale.clear();
                    std::vector<float> wPlain(static_cast<size_t>(cols));
                    decodeGridRow(plain, row.data(), wPlain.data());
                    double exact = 0, magnitude = 0;
                    for (int64_t i = 0; i < cols; ++i) {
                        exact += static_cast<double>(w[i]) * x[i];
                        magnitude += std::fabs(static_cast<double>(w[i]) * x[i]);
                    }
                    const QString what = QStringLiteral("w%1 g%2%3")
                                             .arg(bits)
                                             .arg(group)
                                             .arg(columnScales ? " column scales" : exceptions ? " exceptions" : "");
                    const double ref = referenceGridInt8Dot(L, row.data(), xq.data());
                    const double bound = int8DotErrorBound(wPlain.data(), xq.data(), cols);
                    QVERIFY2(std::fabs(ref - exact) <= bound + 1e-6 * magnitude, qPrintable(what));
                    QVERIFY2(bound < 0.1 * magnitude, qPrintable(what)); // the bound says something
                    if (const GridInt8DotFn fast = gridInt8DotKernel(L)) {
                        const double got = fast(L, row.data(), xq.data());
                        QVERIFY2(std::fabs(got - ref) <= kDotRelTol * magnitude,
                                 qPrintable(what + QString(": %1, reference %2").arg(got).arg(ref)));
                        ++fastChecked;
                    }
                }
        GridLayout odd;
        odd.bits = 4;
        odd.cols = 256;
        odd.groupCols = 32;
        odd.groups = 8;
        QVERIFY(gridHasInt8Dot(odd));
        GridLayout actOrder = odd, book = odd, twenty = odd;
        actOrder.groupIndex.assign(256, 0);
        book.codebook.assign(16, 0.5f);
        twenty.groupCols = 20;
        twenty.groups = 13;
        QVERIFY(!gridHasInt8Dot(actOrder) && !gridHasInt8Dot(book) && !gridHasInt8Dot(twenty));
        // Binary coding has no integer grid; exceptions are not scaled by column scales.
        GridLayout binary = odd, scaledExceptions = odd;
        binary.binaryCoding = true;
        scaledExceptions.columnScale.assign(256, 2.0f);
        scaledExceptions.denseColumns = {3};
        QVERIFY(!gridHasInt8Dot(binary) && !gridHasInt8Dot(scaledExceptions));
        if (!hostCpu().avx512vnni)
            QSKIP("this CPU has no AVX-512 VNNI: the references were checked, the fast kernels do not run here");
        QCOMPARE(fastChecked, 120);
    }

    void badLayoutsAreRefused()
    {
        std::vector<uint8_t> bytes(1024);
        // 100 values are not a whole number of 32-value Q8_0 blocks.
        QVERIFY_THROWS_EXCEPTION(Error, StoredMatrix::view(DType::Q8_0, bytes.data(), 1, 100, nullptr));
        QVERIFY_THROWS_EXCEPTION(Error, StoredMatrix::view(DType::IQ2_XXS, bytes.data(), 1, 256, nullptr));
        QVERIFY(!hasRowKernels(DType::I32));
    }

    // Every quantized type llama.cpp wrote: the model run from its packed
    // weights gives the logits of the same model converted to F32 first.
    void storedWeightsGiveTheLogitsOfTheirF32Conversion()
    {
        LL_REQUIRE_SHARED();
        const char* quants[] = {"f32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S",
                                "Q4_K_S", "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS"};
        const std::vector<int32_t> ids{1, 17, 200, 3, 99, 250, 0, 42, 7, 7, 120};
        for (const char* q : quants) {
            auto m = openModel(test::sharedPath(std::string("models/gguf-quants/tiny-llama256-") + q + ".gguf"));
            Transformer stored(*m);
            Transformer converted(*m);
            int packed = 0;
            for (int b = 0; b < converted.layers(); ++b)
                for (Role r : {Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnO, Role::MlpGate, Role::MlpUp, Role::MlpDown}) {
                    packed += stored.linear(b, r).W.type != DType::F32 ? 1 : 0;
                    converted.setLinearWeight(b, r, stored.linear(b, r).dense());
                }
            converted.setLinearWeight(-1, Role::LmHead, stored.linear(-1, Role::LmHead).dense());
            QVERIFY2(std::string(q) == "f32" || packed > 0, q); // computed from the packed bytes
            for (Bf16Products products : {Bf16Products::Native, Bf16Products::F32})
                for (int64_t rows : {int64_t{1}, int64_t{11}}) { // the decoding and the GEMM path
                    LevelGuard guard;
                    setBf16Products(products);
                    setQuantProducts(products == Bf16Products::Native ? QuantProducts::Int8 : QuantProducts::F32);
                    setF16Products(products == Bf16Products::Native ? F16Products::HalfX : F16Products::F32);
                    const auto restoreHalf = qScopeGuard([] { setF16Products(F16Products::HalfX); });
                    const std::span<const int32_t> part(ids.data(), static_cast<size_t>(rows));
                    const Eigen::MatrixXf a = stored.logits(part), b = converted.logits(part);
                    const double diff = (a - b).cwiseAbs().maxCoeff(), scale = b.cwiseAbs().maxCoeff();
                    const bool bf16Rounding = std::string(q) == "BF16" && products == Bf16Products::Native
                                              && rows > kMatmulRowsPath && kernelLevel() == KernelLevel::Avx512Bf16;
                    const bool int8Rounding = rows <= kMatmulRowsPath && quantProducts() == QuantProducts::Int8
                                              && stored.linear(0, Role::AttnQ).W.cols % kQ8Block == 0
                                              && int8DotKernel(stored.linear(0, Role::AttnQ).W.type) != nullptr;
                    const bool halfRounding = std::string(q) == "F16" && rows <= kMatmulRowsPath && f16Products() == F16Products::HalfX
                                              && kernelLevel() != KernelLevel::Portable;
                    const double tol = bf16Rounding ? kBf16LogitsRelTol
                                       : int8Rounding ? kInt8LogitsRelTol
                                       : halfRounding ? kHalfLogitsRelTol
                                                      : kLogitsRelTol;
                    if (int8Rounding)
                        qInfo("%s decoding with int8 products: max logit diff %.3g of %.3g", q, diff, scale);
                    QVERIFY2(diff <= tol * scale,
                             qPrintable(QString("%1, %2 rows: max diff %3 of %4").arg(q).arg(rows).arg(diff).arg(scale)));
                }
        }
    }

    // The engine holds views of the mapped file: its own weight memory is the
    // stored bytes, not an F32 copy.
    void engineHoldsTheStoredBytes()
    {
        LL_REQUIRE_SHARED();
        auto m = openModel(test::sharedPath("models/gguf-quants/tiny-llama256-Q4_0.gguf"));
        Transformer t(*m);
        const LinearWeights& q = t.linear(0, Role::AttnQ);
        QCOMPARE(q.W.type, DType::Q4_0);
        const TensorRef& ref = m->storedOf(*m->find(0, Role::AttnQ));
        QCOMPARE(static_cast<const void*>(q.W.data), static_cast<const void*>(ref.data)); // in place, no copy
        QVERIFY(t.weightBytes() < static_cast<uint64_t>(m->parameterCount()) * 2); // far below 4 bytes per weight
    }
};

QTEST_GUILESS_MAIN(TestKernels)
#include "test_kernels.moc"
