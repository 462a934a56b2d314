#pragma once
// log P(continuation | context) under a model, summed over the continuation's
// tokens, as lm-evaluation-harness's `loglikelihood` request computes it:
// the tokens are context + continuation, cut from the left to the model's
// length + 1 when longer; the logits at every position before the last
// predict the next token, and the continuation's tokens are scored.
#include "engine/transformer.h"

#include <cstdint>
#include <span>
#include <vector>

namespace ll {

class Progress;

struct LoglikelihoodRequest {
    std::vector<int32_t> context;       // at least one token (BOS, or the harness's prefix token)
    std::vector<int32_t> continuation;  // at least one token
};

struct LoglikelihoodResult {
    double logLikelihood = 0;   // sum of log-softmax over the continuation's tokens (nats)
    bool greedy = false;        // every continuation token is the argmax of its position's logits
    int64_t tokens = 0;         // continuation tokens scored
};

// Requests that share a prefix (the choices of one item): the longest prefix
// common to all of them goes through the model once, with a KV cache, and each
// request runs only its remainder after it. Equal to scoring each request alone
// up to float rounding (the cached and the whole-window attention sum in other orders).
// maxLength: the most positions one pass may hold (the model's context).
// positionsRun (optional): adds the positions that went through the model.
std::vector<LoglikelihoodResult> scoreSharedPrefix(const Transformer& model, std::span<const LoglikelihoodRequest> requests,
                                                   int64_t maxLength, int64_t* positionsRun = nullptr);

// One request by a whole forward pass without a cache (the reference the
// shared-prefix scoring is tested against).
LoglikelihoodResult scoreAlone(const Transformer& model, const LoglikelihoodRequest& request, int64_t maxLength);

// log-softmax of `logits` at `target`, in double, and whether target is the argmax (first on ties).
struct TokenScore {
    double logProb;
    bool argmax;
};
TokenScore scoreToken(std::span<const float> logits, int32_t target);

} // namespace ll
