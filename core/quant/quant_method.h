#pragma once
// One entry point for quantizing a linear layer with any method of
// core/quant, and the error curves the GUI plots (error vs bits, error vs
// group size). Every method returns a QuantizedLayer (quantized_layer.h).
#include "methods/method_params.h"
#include "model/dtype.h"
#include "layer/compressed_layer.h"
#include "quant/fp8.h"
#include "quant/grid.h"
#include "quant/quantized_layer.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ll {

class Progress;

// The ids of the built-in methods (core/quant/builtin_methods.cpp);
// every method, these and the ones added since, is an entry of the registry
// (methods/method_registry.h), found by its id.
namespace QuantMethod {
inline constexpr std::string_view Rtn = "rtn";                 // the protocol's integer grid (quant/rtn.h)
inline constexpr std::string_view Gptq = "gptq";               // quant/gptq.h; needs gram
inline constexpr std::string_view Awq = "awq";                 // quant/awq.h; needs gram and meanAbs
inline constexpr std::string_view SmoothQuant = "smoothquant"; // W8 (+ A8 simulated on samples); needs maxAbs
inline constexpr std::string_view Int8 = "int8";               // LLM.int8 (quant/int8_outlier.h); needs maxAbs
inline constexpr std::string_view Owq = "owq";                 // 16-bit sensitive columns + GPTQ (quant/outlier_aware.h)
inline constexpr std::string_view Spqr = "spqr";               // 16-bit sensitive weights + GPTQ (quant/outlier_aware.h)
inline constexpr std::string_view Bcq = "bcq";                 // binary-coding quantization (quant/bcq.h)
inline constexpr std::string_view Nf4 = "nf4";                 // NF4 with double quantization (quant/nf4.h)
inline constexpr std::string_view Fp8 = "fp8";                 // FP8 E4M3 / E5M2 with per-row scales (quant/fp8.h)
inline constexpr std::string_view Fp4 = "fp4";                 // FP4 E2M1 with per-group scales (quant/fp4.h)
inline constexpr std::string_view Ggml = "ggml";               // llama.cpp block types (quant/ggml_quantize.h); rows
                                                               // that do not fill whole blocks take the fallback type
} // namespace QuantMethod

struct QuantConfig {
    std::string method{QuantMethod::Rtn}; // a registry id
    ParamValues params;                // the step's checked parameters (what a registered method reads)
    QuantGrid grid{4, false, 0};      // rtn, gptq, awq, owq, spqr; grid.bits for bcq; grid.groupSize for bcq and fp4
    // GPTQ family
    bool actOrder = false;
    bool staticGroups = false;
    int blockSize = 128;
    double percDamp = 0.01;
    // AWQ
    bool awqSearchScale = true;
    bool awqClip = true;
    int awqGridPoints = 20;
    bool awqJointScales = true;       // one scale search per shared input (llm-awq), not one per linear
    bool awqClipQK = false;           // llm-awq skips the clip search for q and k
    // SmoothQuant
    double smoothAlpha = 0.5;
    int actBits = 8;
    // LLM.int8
    double int8Threshold = 6.0;
    int int8TopK = 0;
    // OWQ / SpQR
    int64_t owqColumns = 0;           // 0: 1 % of the columns, at least 1
    double spqrFraction = 0.01;
    bool outlierBaseGptq = true;
    // BCQ
    int bcqIterations = 10;
    // FP8 / ggml
    Fp8Format fp8Format = Fp8Format::E4M3;
    DType ggmlType = DType::Q4_K;
    bool ggmlImportance = true;       // weight the k-quant scale search by diag(X^T X) when a Gram matrix is given
    // LoRC on top of any method
    int64_t lorcRank = 0;
    int64_t eoraRank = 0;             // EoRA instead (quant/eora.h; needs gram)

    std::string label() const;        // "gptq w4 asym g32 act-order", "awq w4 asym g32", "bcq b3 row"
    // Evaluation quantizes the linears' inputs as well (W8A8, W4A4): the method
    // simulates activations and actBits is set (OliVe's act-bits 0: weights only).
    bool simulatesActivations() const;
};

// W: (out, in). Runs the registry entry of config.method. Throws
// InvalidArgument for an unknown method or when the method lacks its statistics.
// Cancellable where the method is (GPTQ between blocks, AWQ between grid points).
QuantizedLayer quantizeLayer(const MatrixRM& W, const QuantConfig& config, const LayerInputs& inputs = {},
                             Progress* progress = nullptr);

// The config's low-rank correction of q's error (LoRC or EoRA), or q unchanged.
QuantizedLayer lowRankCorrect(const MatrixRM& W, QuantizedLayer q, const QuantConfig& config, const LayerInputs& inputs,
                              Progress* progress = nullptr);

// Error curves for one layer and one method: x = the bits or the group size
// (0 = per row), one point per value, bytesAfter / paramsAfter as the layer's.
// Cancellable between points (Cancelled).
std::vector<ErrorCurvePoint> quantErrorVsBits(const MatrixRM& W, const QuantConfig& config, const std::vector<int>& bits,
                                              const LayerInputs& inputs = {}, Progress* progress = nullptr);
std::vector<ErrorCurvePoint> quantErrorVsGroupSize(const MatrixRM& W, const QuantConfig& config,
                                                   const std::vector<int>& groupSizes, const LayerInputs& inputs = {},
                                                   Progress* progress = nullptr);
std::vector<int> defaultBitSteps();        // 2, 3, 4, 5, 6, 7, 8
std::vector<int> defaultGroupSizeSteps();  // 32, 64, 128, 0 (row)

} // namespace ll
