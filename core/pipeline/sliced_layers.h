#pragma once
// Pieces the structured drivers share (neurons, heads: model_compression.cpp;
// FLAP: flap_model.cpp).
#include "pipeline/model_compression.h"
#include "pipeline/store_values.h"

#include <string>
#include <vector>

namespace ll {

// Structured pruning of one matrix of block b: W lost the rows (or columns)
// whose isKept is 0 and became slicedW. Its outcome (errors measured with
// those rows / columns as zeros; the output error when `in` has a Gram
// matrix) joins r, and r's model takes slicedW.
void recordSlicedLayer(ModelCompressionResult& r, const LogicalTensor& t, int64_t b, const MatrixRM& W,
                       const MatrixRM& slicedW, bool rows, const std::vector<char>& isKept, const LayerInputs& in);

} // namespace ll
