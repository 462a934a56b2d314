#pragma once
// The result every weight-quantization method returns for one linear layer:
// core/prune's CompressedLayer (W^, bytes before / after, the error report of
// layer/layer_error.h, low-rank factors) extended by the packed form and an
// itemised bit count.
//
// Bit accounting (BitsBreakdown, totals for the whole matrix):
//   codes        b bits per quantized weight (weights kept at 16 bits excluded)
//   scales       16 bits per (row, group) scale (FP16, as GPTQ / AWQ checkpoints)
//   zeros        b bits per (row, group) zero point of an asymmetric grid
//   groupIndex   32 bits per input column when groups follow a permutation
//                (GPTQ act-order with refit groups: its g_idx)
//   inputScales  16 bits per input channel of an explicit input scale that
//                cannot be folded into a preceding op (SmoothQuant o / down)
//   outliers     dense 16-bit columns: 16 bits per value + 32 bits per column
//                index; sparse weights: 16-bit value + 32-bit index each
//   lowRank      16 bits per factor entry (LoRC: r (out + in))
// bitsPerWeight = total / (rows * cols). Values counted as 16 bits (scales,
// outliers, factors) are kept in float32 here; the count assumes FP16 storage.
#include "model/tensor_data.h"
#include "layer/compressed_layer.h"
#include "quant/grid.h"

#include <Eigen/Core>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ll {

// Input-channel statistics straight from a Gram matrix when a method needs them and they were not given.
Eigen::VectorXf rmsFromGram(const Eigen::MatrixXf& gram, int64_t tokens);

struct BitsBreakdown {
    double codes = 0, scales = 0, zeros = 0, groupIndex = 0, inputScales = 0, outliers = 0, lowRank = 0;
    double total() const { return codes + scales + zeros + groupIndex + inputScales + outliers + lowRank; }
};

// Weights kept at 16 bits outside the quantized codes, at their original values.
struct SparseWeights {
    std::vector<int32_t> rows, cols;
    std::vector<float> values;
    size_t size() const { return values.size(); }
};

// The stored form. Dequantization (dequantizePacked) in this order:
//   int grid:  x = scale(r, g) * (code - zero(r, g)), g = groupIndex[c] or c / groupCols
//   bcq:       x = sum_i alpha(r * groups + g, i) * (bit i of code ? +1 : -1)
//   then x /= inputScale[c] (when set), dense columns and sparse outliers
//   overwrite their positions, and the low-rank product A B is added.
struct PackedQuant {
    enum class Format { IntGrid, Bcq, Dense } format = Format::IntGrid;
    int bits = 0;
    std::vector<uint8_t> codes;           // rows * cols, row-major, natural column order
    GridParams grid;                      // IntGrid: scales and zeros (rows, groups)
    std::vector<int32_t> groupIndex;      // (in,) when groups follow a permutation; empty: c / groupCols
    std::vector<int32_t> order;           // the column order a sequential method used (GPTQ act-order); empty: natural
    Eigen::MatrixXf bcqAlpha;             // Bcq: (rows * groups, bits)
    int64_t bcqGroupCols = 0;             // Bcq: columns per group
    Eigen::VectorXf inputScale;           // (in,) AWQ / SmoothQuant scale s; empty: none
    bool inputScaleFolded = true;         // folded into the preceding norm / linear: no storage
    Eigen::VectorXf inputShift;           // (in,) Outlier Suppression+'s shift z (the input is x − z); empty: none
    float inputRange = 0.0f;              // OS+'s static range of (x − z) / s, per tensor; 0: none
    Eigen::VectorXf inputLow, inputStep;  // (in,) RPTQ's static grid of each input channel: its cluster's lo and Δ; empty: none
    float inputPairScale = 0.0f;          // OliVe's static scale of the input's outlier-victim pairs, per tensor; 0: none
    std::vector<int32_t> denseColumns;    // input columns kept at 16 bits (LLM.int8, OWQ)
    MatrixRM denseValues;                 // (rows, denseColumns.size())
    SparseWeights outliers;               // single weights kept at 16 bits (SpQR)
    // Dense: the type `codes` are stored in when the engine can compute with
    // them as they are (ggml methods: the block type or F16); Unknown otherwise.
    DType storedType = DType::Unknown;
    // Dense codes that index a codebook (NF4, FP8, FP4): value = grid.scales(r, g) * codebook[code],
    // g = c / grid.groupCols; empty when the codes are not of that form. Lets the
    // edited model keep them packed (quant/packed_storage.h).
    std::vector<float> codebook;
};

MatrixRM dequantizePacked(const PackedQuant& p, int64_t rows, int64_t cols, const MatrixRM* lowRankA = nullptr,
                          const MatrixRM* lowRankB = nullptr);

struct QuantizedLayer : CompressedLayer {
    PackedQuant packed;
    BitsBreakdown bits;                   // totals over the matrix
    double bitsPerWeight = 0.0;           // bits.total() / (rows * cols)
    double loss = 0.0;                    // the method's own objective (GPTQ: sum (w - q)^2 / d^2 / 2); 0 when none
    std::map<std::string, double> info;   // method details for reports: "alpha", "outlier_columns", "rank", ...
};

// Grid overhead (scales, zeros) of `grid` for a (rows, cols) matrix into b;
// codes for `quantizedWeights` weights.
void addGridBits(BitsBreakdown& b, const QuantGrid& grid, int64_t rows, int64_t cols, int64_t quantizedWeights);

// Fills the CompressedLayer part (weights, bytes before at 32 bits per value,
// bytes after = bits / 8, the error report with the output error when
// inputs.gram is set), bitsPerWeight and paramsAfter.
void finishQuantizedLayer(QuantizedLayer& layer, const MatrixRM& W, MatrixRM What, const LayerInputs& inputs);

// Bits changed after the fact (an explicit input scale): bytesAfter and
// bitsPerWeight recomputed from bits.total().
void refreshBits(QuantizedLayer& layer);

} // namespace ll
