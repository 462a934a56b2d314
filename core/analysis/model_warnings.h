#pragma once
// What is wrong with a model that still opens: a configuration that
// contradicts its tensors (running it is refused, Transformer::validate), a
// tokenizer that cannot be used or whose vocabulary differs from the
// embedding. `inspect` prints them as WARNING lines; the GUI shows them in the
// status bar when the model opens.
#include <string>
#include <vector>

namespace ll {

class Model;

struct ModelWarning {
    std::string text;
    bool blocksRunning = false; // the forward pass refuses the model until this is fixed
};

std::vector<ModelWarning> modelWarnings(const Model& model);

} // namespace ll
