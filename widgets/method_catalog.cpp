#include "method_catalog.h"

namespace ll::gui {

namespace {

QString teach(const char* what, const char* formula, const char* when)
{
    return QStringLiteral("<p>%1</p><p><b>In plain words:</b> %2</p><p><b>Use it when:</b> %3</p>")
        .arg(QString::fromUtf8(what), QString::fromUtf8(formula), QString::fromUtf8(when));
}

std::vector<MethodInfo> build()
{
    using P = Param;
    const std::vector<P> grid{P::Bits, P::Group, P::Symmetric, P::LorcRank};
    return {
        {StepAction::Quantize, "rtn", "RTN (round to nearest)", grid, false,
         teach("Rounds every weight to the nearest point of an evenly spaced integer grid, one scale (and zero point) "
               "per row or per group of input columns.",
               "w&#770; = scale · (round(w / scale + zero) − zero); the scale spans the group's min–max.",
               "you want a fast baseline. 8 and 6 bits are nearly lossless; below 4 bits the error grows quickly and "
               "calibrated methods (GPTQ, AWQ) win.")},
        {StepAction::Quantize, "gptq", "GPTQ", {P::Bits, P::Group, P::Symmetric, P::ActOrder, P::LorcRank}, true,
         teach("Quantizes one input column at a time and spreads each column's rounding error over the columns not "
               "yet quantized, using second-order information from the calibration inputs (Frantar et al., 2022).",
               "minimise ‖(W − W&#770;) X‖² with the Hessian H = 2 XᵀX: after rounding column j, the rest moves by "
               "−err · H⁻¹[j, :] / H⁻¹[j, j].",
               "you quantize to 3–4 bits and have calibration text. Act-order quantizes the columns with the "
               "largest activations first and usually helps at 3 bits.")},
        {StepAction::Quantize, "awq", "AWQ", {P::Bits, P::Group, P::Symmetric}, true,
         teach("Activation-aware weight quantization (Lin et al., 2023): scales up the input channels that see large "
               "activations before rounding, so the weights that matter most lose less precision.",
               "search s = mean|x|<sup>α</sup> over a grid of α, quantize W · diag(s) and divide the input by s; "
               "then search a clipping range per group.",
               "4-bit with groups on models whose activations have a few strong channels.")},
        {StepAction::Quantize, "nf4", "NF4 (QLoRA)", {P::Group}, false,
         teach("4-bit NormalFloat: 16 levels placed at quantiles of a normal distribution, one absmax scale per "
               "group; the scales themselves are quantized to 8 bits (double quantization).",
               "w&#770; = absmax · level[argmin |w / absmax − level|].",
               "weights look Gaussian and you want 4 bits without calibration.")},
        {StepAction::Quantize, "fp8", "FP8", {P::Fp8Type}, false,
         teach("8-bit floating point: E4M3 (more precision) or E5M2 (more range), one scale per row.",
               "each weight is scaled into the format's range and rounded to the nearest representable float.",
               "the hardware runs FP8; nearly lossless for most models.")},
        {StepAction::Quantize, "fp4", "FP4 (E2M1)", {P::Group}, false,
         teach("4-bit floating point E2M1 with a scale per group (ZeroQuant-FP).",
               "levels 0, 0.5, 1, 1.5, 2, 3, 4, 6 (and negatives), times the group's scale.",
               "comparing float and integer 4-bit grids; outliers hurt less than on an integer grid.")},
        {StepAction::Quantize, "smoothquant", "SmoothQuant (W8A8)", {P::Alpha}, true,
         teach("Moves the difficulty of quantizing activations into the weights, then quantizes both to 8 bits "
               "(Xiao et al., 2022); evaluation simulates per-token activation quantization.",
               "s<sub>j</sub> = max|X<sub>j</sub>|<sup>α</sup> / max|W<sub>j</sub>|<sup>1−α</sup>; X diag(s)⁻¹ and diag(s) W are both easier to round.",
               "you want integer matrix products (weights and activations), with α ≈ 0.5.")},
        {StepAction::Quantize, "int8", "LLM.int8()", {}, true,
         teach("8-bit weights and activations, except the input columns where activations exceed a threshold, which "
               "stay in 16 bits (Dettmers et al., 2022).",
               "columns with |x| ≥ 6 anywhere in the calibration text are kept exact; the rest is int8 × int8.",
               "large models with activation outliers.")},
        {StepAction::Quantize, "owq", "OWQ (outlier columns)", {P::Bits, P::Group, P::Symmetric}, true,
         teach("Keeps the input columns most sensitive to quantization in 16 bits and quantizes the rest with GPTQ.",
               "sensitivity of column j ∝ H[j, j] · ‖W[:, j]‖²; the top 1 % stay dense.",
               "3-bit quantization where a few columns dominate the error.")},
        {StepAction::Quantize, "spqr", "SpQR (sparse outliers)", {P::Bits, P::Group, P::Symmetric}, true,
         teach("Keeps the individual weights whose rounding would cost the most in 16 bits, stored sparse, "
               "and quantizes the rest with GPTQ (Dettmers et al., 2023).",
               "a weight is an outlier when its error (w − w&#770;)² / H⁻¹[j, j] is in the top 1 %.",
               "near-lossless 3–4 bits; the outliers cost about 1 % × 48 bits per weight.")},
        {StepAction::Quantize, "bcq", "BCQ (binary coding)", {P::Bits, P::Group}, false,
         teach("Binary-coding quantization (LUT-GEMM): each weight is a sum of ±α<sub>i</sub> over `bits` binary planes.",
               "w&#770; = Σ<sub>i</sub> α<sub>i</sub> b<sub>i</sub>, b<sub>i</sub> ∈ {−1, +1}, fitted by alternating least squares.",
               "studying non-uniform grids that run as table lookups.")},
        {StepAction::Quantize, "ggml", "ggml block type (llama.cpp)", {P::GgmlType}, false,
         teach("llama.cpp's block formats (Q8_0, Q4_K, …): what a GGUF export will store, byte for byte.",
               "blocks of 32 or 256 weights with their own scales (K-quants: scales of scales).",
               "you will run the model in llama.cpp and want to see the cost of a type before exporting.")},
        {StepAction::Prune, "magnitude", "Magnitude", {P::Sparsity, P::NM, P::Structured}, false,
         teach("Removes the weights with the smallest absolute value.",
               "keep the largest |w|; the rest becomes exactly 0.",
               "a quick baseline; it ignores how strongly each input is used.")},
        {StepAction::Prune, "wanda", "Wanda", {P::Sparsity, P::NM, P::Structured}, true,
         teach("Pruning by weights and activations (Sun et al., 2023), compared within each output row.",
               "score = |W<sub>ij</sub>| · ‖X<sub>j</sub>‖₂; the lowest scores of every row go.",
               "you want calibrated pruning without weight updates; strong at 50 % and 2:4.")},
        {StepAction::Prune, "sparsegpt", "SparseGPT", {P::Sparsity, P::NM}, true,
         teach("One-shot pruning with weight reconstruction (Frantar & Alistarh, 2023): the weights that remain are "
               "updated to compensate for the removed ones.",
               "per block of 128 columns, remove the weights with the lowest w² / H⁻¹[j, j] and update the rest "
               "by the OBS formula.",
               "high sparsity (60 % and more) where Wanda degrades.")},
        {StepAction::Factorize, "svd", "SVD (truncated)", {P::RankRatio}, false,
         teach("Replaces W by its best rank-k approximation A · B (two thin matrices).",
               "W ≈ U<sub>k</sub> Σ<sub>k</sub> V<sub>k</sub>ᵀ; parameters drop from out·in to k·(out + in).",
               "the spectrum decays fast; look at the singular values first.")},
        {StepAction::Factorize, "asvd", "ASVD (activation-aware)", {P::RankRatio}, true,
         teach("Scales the input channels by their mean activation before the SVD (Yuan et al., 2023).",
               "decompose W · diag(s), s = mean|x|<sup>α</sup>, and undo the scaling in B.",
               "activations have strong channels that a plain SVD would ignore.")},
        {StepAction::Factorize, "svd-llm", "SVD-LLM (whitened)", {P::RankRatio}, true,
         teach("Truncation-aware whitening (Wang et al., 2024): the SVD of W · L, with L the Cholesky factor of XᵀX, "
               "so that truncation directly minimises the output error.",
               "dropping σ<sub>i</sub> costs exactly σ<sub>i</sub>² of ‖(W − W&#770;) X‖².",
               "the best low-rank quality per parameter, given calibration text.")},
    };
}

} // namespace

const std::vector<MethodInfo>& methodCatalog()
{
    static const std::vector<MethodInfo> catalog = build();
    return catalog;
}

std::vector<const MethodInfo*> methodsFor(StepAction action)
{
    std::vector<const MethodInfo*> out;
    for (const MethodInfo& m : methodCatalog())
        if (m.action == action)
            out.push_back(&m);
    return out;
}

const MethodInfo* findMethod(StepAction action, const QString& id)
{
    for (const MethodInfo& m : methodCatalog())
        if (m.action == action && m.id == id)
            return &m;
    return nullptr;
}

} // namespace ll::gui
