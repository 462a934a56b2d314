#pragma once
// Incremental decoding with a KV cache: each appended token attends to every
// position seen so far without recomputing them.
#include "engine/transformer.h"

#include <Eigen/Core>

#include <cstdint>
#include <span>

namespace ll {

class Session {
public:
    // The transformer must outlive the session; replacing its weights makes the
    // cached keys/values stale (clear() the session).
    explicit Session(const Transformer& model);

    // Appends tokens (a prompt at once, or one token) -> logits (vocab,) of the last one.
    Eigen::VectorXf append(std::span<const int32_t> ids);
    Eigen::VectorXf appendToken(int32_t id) { return append(std::span<const int32_t>(&id, 1)); }
    // Appends tokens -> the logits of every appended position (ids.size(), vocab),
    // for scoring a continuation after a cached prefix.
    MatrixRM appendAll(std::span<const int32_t> ids);

    // Keeps the first `positions` positions and forgets the rest, so several
    // continuations can be scored after one shared prefix.
    void truncate(int64_t positions);

    int64_t length() const { return cache_.length; }
    // Keys and values cached so far (full precision, after rotary), per layer.
    const KvCache& cache() const { return cache_; }
    void clear() { cache_.length = 0; }

private:
    void reserve(int64_t positions);
    // Runs ids after the cached positions -> their final hidden states.
    MatrixRM hiddenOf(std::span<const int32_t> ids);

    const Transformer& model_;
    KvCache cache_;
};

} // namespace ll
