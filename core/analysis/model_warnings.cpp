#include "analysis/model_warnings.h"

#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace ll {

std::vector<ModelWarning> modelWarnings(const Model& m)
{
    std::vector<ModelWarning> out;
    const LogicalTensor* embedding = m.find(-1, Role::Embedding);
    const int64_t rows = embedding && embedding->shape.size() == 2 ? embedding->shape[0] : 0;
    if (rows > 0 && m.config.vocab > 0 && rows != m.config.vocab)
        out.push_back({"the configuration says the vocabulary has " + std::to_string(m.config.vocab)
                           + " tokens, the embedding has " + std::to_string(rows) + " rows",
                       true});
    if (const LogicalTensor* up = m.find(0, Role::MlpUp); up && up->shape.size() == 2 && m.config.intermediate > 0
                                                          && up->shape[0] != m.config.intermediate)
        out.push_back({"the configuration says the MLP is " + std::to_string(m.config.intermediate)
                           + " wide, blocks.0 up has " + std::to_string(up->shape[0]) + " rows",
                       true});
    if (const LogicalTensor* q = m.find(0, Role::AttnQ); q && q->shape.size() == 2 && m.config.heads > 0
                                                         && m.config.headDim > 0
                                                         && q->shape[0] != m.config.heads * m.config.headDim)
        out.push_back({"the configuration says " + std::to_string(m.config.heads) + " heads of "
                           + std::to_string(m.config.headDim) + ", blocks.0 q has " + std::to_string(q->shape[0]) + " rows",
                       true});

    // The tokenizer, where the model has one: ids past the embedding would
    // index outside it (loadTokenizer refuses those); fewer tokens than rows is
    // common (padded embeddings) and harmless, but worth knowing.
    const bool hasTokenizer = !m.tokenizerPath.empty()
                              || (m.metadata.is_object() && m.metadata.contains("tokenizer.ggml.tokens"));
    if (hasTokenizer && !m.config.synthetic) {
        try {
            const std::unique_ptr<Tokenizer> tok = loadTokenizer(m);
            if (rows > 0 && tok->vocabSize() < rows)
                out.push_back({"the tokenizer has " + std::to_string(tok->vocabSize()) + " tokens, the embedding "
                                   + std::to_string(rows) + " rows (the last " + std::to_string(rows - tok->vocabSize())
                                   + " are never used)",
                               false});
        } catch (const Error& e) {
            out.push_back({"the tokenizer cannot be used: " + std::string(e.what()), false});
        }
    }
    return out;
}

} // namespace ll
