#pragma once
// Every compression method the panel offers: which action it belongs to, the
// parameters its form shows, whether it needs calibration text, and a short
// explanation for the teaching box (what it does, the formula in plain words,
// when to use it).
#include "recipe/recipe.h"

#include <QString>

#include <vector>

namespace ll::gui {

// Parameters a method's form can show (one widget each in the panel).
enum class Param {
    Bits, Group, Symmetric, ActOrder, GgmlType, Fp8Type, Alpha, LorcRank,   // quantize
    Sparsity, NM, Structured,                                                // prune
    RankRatio,                                                               // factorize
};

struct MethodInfo {
    StepAction action;
    QString id;          // as in recipes: "gptq", "wanda", "svd-llm"
    QString name;        // "GPTQ"
    std::vector<Param> params;
    bool needsCalibration = false;
    QString teaching;    // rich text
};

const std::vector<MethodInfo>& methodCatalog();
std::vector<const MethodInfo*> methodsFor(StepAction action);
const MethodInfo* findMethod(StepAction action, const QString& id);

} // namespace ll::gui
