#!/usr/bin/env python3
"""Why a rotation does not help RTN w4 per row on stories260K (docs/methods.md).

Reads the llama2.c checkpoint with numpy and, for q, k, v, gate and up of every
block, compares round-to-nearest at 4 bits (symmetric, scale = max |w| / 7)
of W as stored against the same after QuaRot's fold (W diag(g), g the
RMSNorm weight), after the fold and a rotation Q = D H / sqrt(64) (random
signs D, Sylvester Hadamard H; numpy's draws, not LayerLab's seeds), and after
the rotation alone. Errors are measured as the model sees them, e.g.
(W - rtn(W)) diag(g) and W diag(g) - rtn(W diag(g) Q) Q^T, squared and summed.
Also prints each row's largest |w| over its norm, before and after.

  /usr/bin/python3 bench/rotation_rows.py [../shared/models/stories260K/stories260K.bin]
"""
import struct
import sys

import numpy as np


def read_llama2c(path):
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, _ = struct.unpack("7i", raw[:28])
    a = np.frombuffer(raw[28:], dtype=np.float32)
    at = [0]

    def take(*shape):
        n = int(np.prod(shape))
        r = a[at[0]:at[0] + n].reshape(shape)
        at[0] += n
        return r
    kv = dim * kv_heads // heads
    take(abs(vocab), dim)  # embedding
    att_norm = take(layers, dim)
    wq, wk, wv = take(layers, dim, dim), take(layers, kv, dim), take(layers, kv, dim)
    take(layers, dim, dim)  # o
    ffn_norm = take(layers, dim)
    w1 = take(layers, hidden, dim)
    take(layers, dim, hidden)  # down
    w3 = take(layers, hidden, dim)
    return dim, [(m[l], att_norm[l]) for l in range(layers) for m in (wq, wk, wv)] + \
                [(m[l], ffn_norm[l]) for l in range(layers) for m in (w1, w3)]


def rtn(w, bits=4, group=0):
    top = 2 ** (bits - 1) - 1
    g = w.reshape(w.shape[0], -1, group) if group else w.reshape(w.shape[0], 1, -1)
    s = np.abs(g).max(-1, keepdims=True) / top
    s[s == 0] = 1
    return (np.clip(np.round(g / s), -top - 1, top) * s).reshape(w.shape)


def hadamard(n):
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h / np.sqrt(n)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "../shared/models/stories260K/stories260K.bin"
    dim, linears = read_llama2c(path)
    peak = lambda w: np.mean(np.abs(w).max(1) / np.linalg.norm(w, axis=1))
    print("largest |w| / row norm: %.3f before, %.3f after fold and rotation (Gaussian rows of %d: about %.3f)" % (
        np.mean([peak(w) for w, _ in linears]),
        np.mean([peak((w * g) @ hadamard(dim)) for w, g in linears]), dim,
        np.mean([peak(np.random.default_rng(9).standard_normal((1000, dim)))])))
    for group in (0, 32):
        plain = sum(np.sum(((w - rtn(w, 4, group)) * g) ** 2) for w, g in linears)
        fold = sum(np.sum((w * g - rtn(w * g, 4, group)) ** 2) for w, g in linears)
        rotated, unfolded = [], []
        for seed in range(4):
            q = np.diag(np.random.default_rng(seed).choice([-1.0, 1.0], dim)) @ hadamard(dim)
            rotated.append(sum(np.sum((w * g - rtn((w * g) @ q, 4, group) @ q.T) ** 2) for w, g in linears))
            unfolded.append(sum(np.sum(((w - rtn(w @ q, 4, group) @ q.T) * g) ** 2) for w, g in linears))
        pct = lambda xs: ", ".join("%.2f (%+.0f %%)" % (x, 100 * (x / plain - 1)) for x in xs)
        print("RTN w4 %s, error: %.2f as stored; the fold alone %s; fold and rotation (QuaRot) %s; "
              "rotation without the fold %s" % ("per row" if group == 0 else "g%d" % group, plain,
                                                pct([fold]), pct(rotated), pct(unfolded)))

if __name__ == "__main__":
    main()
