#!/usr/bin/env python3
"""Seed corpora of the fuzz harnesses: tests/fuzz/make_seeds.py OUT [SHARED].

OUT/<target>/ receives the real files of ../shared (models, tokenizers,
configs, shard index), small files written here (a GGUF holding every block
type LayerLab decodes, a byte-level BPE tokenizer.json, sessions), the
project's recipes and the regression files of tests/data/bad/. Standard
library only; without SHARED the generated and project seeds still give
every target a corpus.
"""
import hashlib
import json
import os
import random
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(out, target, data, name=None):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy(out, target, path):
    if os.path.isfile(path):
        with open(path, "rb") as f:
            put(out, target, f.read(), os.path.basename(path))


# ---- GGUF (version 3) -------------------------------------------------------
# ggml type id -> (elements per block, bytes per block)
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
        "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110),
        "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "IQ4_NL": (20, 32, 18),
        "IQ4_XS": (23, 256, 136), "BF16": (30, 1, 2)}


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gkv(key, kind, value):
    out = gstr(key)
    if kind == "u32":
        return out + struct.pack("<II", 4, value)
    if kind == "f32":
        return out + struct.pack("<If", 6, value)
    if kind == "str":
        return out + struct.pack("<I", 8) + gstr(value)
    if kind == "strs":
        return out + struct.pack("<IIQ", 9, 8, len(value)) + b"".join(gstr(v) for v in value)
    if kind == "f32s":
        return out + struct.pack("<IIQ", 9, 6, len(value)) + struct.pack("<%df" % len(value), *value)
    if kind == "i32s":
        return out + struct.pack("<IIQ", 9, 5, len(value)) + struct.pack("<%di" % len(value), *value)
    raise ValueError(kind)


def half_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def tensor_bytes(rng, kind, n):
    type_id, per_block, block_bytes = GGML[kind]
    if kind == "F32":
        return struct.pack("<%df" % n, *[rng.uniform(-1, 1) for _ in range(n)])
    if kind == "F16":
        return struct.pack("<%dH" % n, *[half_bits(rng.uniform(-1, 1)) for _ in range(n)])
    if kind == "BF16":
        return b"".join(struct.pack("<f", rng.uniform(-1, 1))[2:] for _ in range(n))
    # Block types: random codes, the leading scale a small positive half.
    out = bytearray()
    for _ in range(n // per_block):
        block = bytearray(rng.getrandbits(8) for _ in range(block_bytes))
        if kind in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "IQ4_XS"):
            block[0:2] = struct.pack("<H", half_bits(0.01))
        out += block
    return bytes(out)


def gguf(rng, hidden, ffn, vocab, types, tokenizer="llama", extra=()):
    tokens = ["<unk>", "<s>", "</s>", "<0x0A>", "\u2581", "a", "b", "\u2581a", "\u2581the", "t", "h", "e", "th", "the",
              "\u2581t", "."][:vocab]
    tokens += ["x%d" % i for i in range(len(tokens), vocab)]
    kv = [gkv("general.architecture", "str", "llama"), gkv("general.name", "str", "fuzz seed"),
          gkv("llama.context_length", "u32", 64), gkv("llama.embedding_length", "u32", hidden),
          gkv("llama.block_count", "u32", 1), gkv("llama.feed_forward_length", "u32", ffn),
          gkv("llama.attention.head_count", "u32", 2), gkv("llama.attention.head_count_kv", "u32", 2),
          gkv("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5), gkv("llama.rope.freq_base", "f32", 10000.0),
          gkv("tokenizer.ggml.model", "str", tokenizer), gkv("tokenizer.ggml.tokens", "strs", tokens),
          gkv("tokenizer.ggml.scores", "f32s", [float(-i) for i in range(vocab)]),
          gkv("tokenizer.ggml.token_type", "i32s", [2, 3, 3, 6] + [1] * (vocab - 4)),
          gkv("tokenizer.ggml.bos_token_id", "u32", 1), gkv("tokenizer.ggml.eos_token_id", "u32", 2)]
    if tokenizer == "gpt2":
        kv.append(gkv("tokenizer.ggml.merges", "strs", ["t h", "th e"]))
        kv.append(gkv("tokenizer.ggml.pre", "str", "gpt2"))
    shapes = [("token_embd.weight", (hidden, vocab)), ("output_norm.weight", (hidden,)), ("output.weight", (hidden, vocab)),
              ("blk.0.attn_norm.weight", (hidden,)), ("blk.0.ffn_norm.weight", (hidden,)),
              ("blk.0.attn_q.weight", (hidden, hidden)), ("blk.0.attn_k.weight", (hidden, hidden)),
              ("blk.0.attn_v.weight", (hidden, hidden)), ("blk.0.attn_output.weight", (hidden, hidden)),
              ("blk.0.ffn_gate.weight", (hidden, ffn)), ("blk.0.ffn_up.weight", (hidden, ffn)),
              ("blk.0.ffn_down.weight", (ffn, hidden))]
    kinds = ["F32" if len(dims) == 1 else types[i % len(types)] for i, (name, dims) in enumerate(shapes)]
    # Extra tensors (not part of the llama): one of each type, only to be decoded.
    shapes += [(name, dims) for name, dims, kind in extra]
    kinds += [kind for name, dims, kind in extra]
    infos, data = b"", b""
    for (name, dims), kind in zip(shapes, kinds):
        n = 1
        for d in dims:
            n *= d
        blob = tensor_bytes(rng, kind, n)
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", GGML[kind][0], len(data))
        data += blob + b"\0" * (-len(blob) % 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), len(kv)) + b"".join(kv) + infos
    return head + b"\0" * (-len(head) % 32) + data


# ---- safetensors, llama2.c ------------------------------------------------------
def safetensors(tensors):
    header, blobs, offset = {}, b"", 0
    for name, shape, blob in tensors:
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        blobs += blob
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blobs


def floats(rng, n):
    return struct.pack("<%df" % n, *[rng.uniform(-0.5, 0.5) for _ in range(n)])


def llama2c(rng, dim=8, hidden=16, layers=1, heads=2, kv=2, vocab=16, seq=8):
    head = dim // heads
    # embedding; per layer: attention norm, wq, wk, wv, wo, ffn norm, w1, w2, w3; final norm; rope tables
    per_layer = dim + dim * dim + 2 * dim * kv * head + dim * dim + dim + 3 * dim * hidden
    n = vocab * dim + layers * per_layer + dim + seq * head
    return struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) + floats(rng, n)


def llama2c_tokenizer(pieces):
    out = struct.pack("<i", max(len(p.encode()) for p in pieces))
    for i, p in enumerate(pieces):
        b = p.encode()
        out += struct.pack("<fi", float(-i), len(b)) + b
    return out


# ---- tokenizer.json, configs, index, recipes, sessions ------------------------
def byte_level_tokenizer():
    # GPT-2's byte-to-unicode table: printable bytes stand for themselves.
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    vocab = {table[b]: b for b in range(256)}
    merges = [("t", "h"), ("h", "e"), ("th", "e"), ("\u0120", "t"), ("\u0120t", "he"), ("c", "a")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    return {"version": "1.0", "added_tokens": [{"id": len(vocab), "content": "<|endoftext|>", "special": True}],
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Replace",
                                                                               "pattern": {"String": "\t"}, "content": " "}]},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": {"type": "ByteLevel", "trim_offsets": False}, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": [a + " " + b for a, b in merges], "unk_token": None}}


TINY_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
               "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 2, "num_hidden_layers": 1,
               "vocab_size": 16, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 32,
               "tie_word_embeddings": False, "rope_scaling": {"rope_type": "linear", "factor": 2.0}}

# The tensors of tests/fuzz/hf_folder_support.h, by shard.
SHARDS = [["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.weight",
           "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight",
           "model.layers.0.self_attn.o_proj.weight"],
          ["model.layers.0.post_attention_layernorm.weight", "model.layers.0.mlp.gate_proj.weight",
           "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.norm.weight",
           "lm_head.weight"]]


def session(model_path, recipe):
    return {"layerlab_session": 1, "version": "0.1.0", "saved": "2026-12-05T10:00:00",
            "model": {"path": model_path, "format": "safetensors", "demo": model_path == ""},
            "recipe": recipe,
            "evaluation": {"ppl": 4.397, "ppl_stderr": 0.05, "nll_mean": 1.481, "nll_stderr": 0.01,
                           "tokens_scored": 2048, "windows": 8, "context": 256, "max_windows": 8, "protocol": "full",
                           "text": "builtin", "text_tokens": 4096, "seconds": 1.5, "scoring_seconds": 1.2},
            "compare": [{"label": "GPTQ 4b", "ppl": 4.7, "ppl_stderr": 0.05, "bits_per_weight": 4.25, "size_mib": 0.4,
                         "parameters": 260000, "text": "builtin", "context": 256, "recipe": recipe}],
            "sensitivity": {"metric": "dppl", "rows": [{"layer": "blocks.0.attn.q.weight", "value": 0.01}]}}


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_seeds.py OUT [SHARED]")
    out = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "..", "shared")
    rng = random.Random(1)
    shutil.rmtree(out, ignore_errors=True)

    # GGUF: every block type, small; then the real files when they are here.
    # Small inputs fuzz fast: a runnable llama of hidden 32, and every 256-block type as a 256 x 2 extra tensor.
    k_types = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS", "BF16", "F16"]
    put(out, "gguf", gguf(rng, 32, 64, 16, ["Q8_0", "F16"], extra=[("extra.%s.weight" % k.lower(), (256, 2), k) for k in k_types]),
        "k-quants.gguf")
    put(out, "gguf", gguf(rng, 32, 64, 16, ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "F32"]), "legacy.gguf")
    put(out, "gguf", gguf(rng, 32, 32, 16, ["Q8_0"], tokenizer="gpt2"), "gpt2-vocab.gguf")
    models = os.path.join(shared, "models")
    for f in ["stories260K-gguf/stories260K-Q4_K_M.gguf", "gguf-quants/tiny-llama256-Q2_K.gguf",
              "gguf-quants/tiny-llama256-IQ4_XS.gguf"]:
        copy(out, "gguf", os.path.join(models, f))

    tiny = [(n, s, floats(rng, s[0] * (s[1] if len(s) > 1 else 1))) for n, s in
            [("a.weight", (4, 8)), ("b.bias", (8,))]]
    put(out, "safetensors", safetensors(tiny), "tiny.safetensors")
    for f in ["tiny-llama-fp16-sharded/model-00001-of-00004.safetensors", "tiny-llama/model.safetensors"]:
        copy(out, "safetensors", os.path.join(models, f))

    put(out, "llama2c", llama2c(rng), "tiny.bin")
    put(out, "llama2c", llama2c(rng, layers=2, kv=1), "gqa.bin")
    copy(out, "llama2c", os.path.join(models, "stories260K/stories260K.bin"))

    byte_tokens = ["<0x%02X>" % b for b in range(256)]
    put(out, "llama2c_tokenizer", llama2c_tokenizer(["<unk>", "<s>", "</s>"] + byte_tokens + [" ", "a", " a", "the", " the"]),
        "tiny-tok.bin")
    copy(out, "llama2c_tokenizer", os.path.join(models, "stories260K/tok512.bin"))

    # Importance matrices: the ones llama-imatrix and LayerLab wrote (tests/data/imatrix).
    imatrices = os.path.join(ROOT, "tests", "data", "imatrix")
    for f in sorted(os.listdir(imatrices)) if os.path.isdir(imatrices) else []:
        if f.endswith(".dat"):
            copy(out, "imatrix", os.path.join(imatrices, f))

    put(out, "tokenizer_json", json.dumps(byte_level_tokenizer()), "byte-level.json")
    copy(out, "tokenizer_json", os.path.join(models, "stories260K-hf/tokenizer.json"))

    put(out, "hf_config", json.dumps(TINY_CONFIG), "tiny-config.json")
    for m in ["tiny-llama", "tiny-gpt2", "tiny-opt", "stories260K-hf"]:
        p = os.path.join(models, m, "config.json")
        if os.path.isfile(p):
            put(out, "hf_config", open(p, "rb").read(), m + "-config.json")

    weight_map = {n: "model-%05d-of-00002.safetensors" % (i + 1) for i, names in enumerate(SHARDS) for n in names}
    put(out, "hf_index", json.dumps({"metadata": {"total_size": 2048}, "weight_map": weight_map}), "two-shards.json")
    copy(out, "hf_index", os.path.join(models, "tiny-llama-fp16-sharded/model.safetensors.index.json"))

    recipes = os.path.join(ROOT, "resources", "recipes")
    for f in sorted(os.listdir(recipes)) if os.path.isdir(recipes) else []:
        text = open(os.path.join(recipes, f), "rb").read()
        put(out, "recipe", b"\0" + text, f)  # first byte even: YAML
    step = {"action": "quantize", "method": "gptq", "bits": 4, "group": 32, "layers": "attn"}
    recipe = {"layerlab_recipe": 1, "calibration": {"text": "builtin", "context": 64, "windows": 4},
              "steps": [step, {"action": "prune", "method": "wanda", "sparsity": 0.5},
                        {"action": "factorize", "method": "svd", "rank_ratio": 0.5}]}
    put(out, "recipe", b"\1" + json.dumps(recipe).encode(), "three-steps.json")

    put(out, "session", json.dumps(session(os.path.join(models, "stories260K-hf"), recipe)), "full.layerlab")
    put(out, "session", json.dumps(session("", {"layerlab_recipe": 1, "steps": []})), "demo.layerlab")

    # The regression files: every input that once crashed stays in the corpus.
    bad = os.path.join(ROOT, "tests", "data", "bad")
    for target in os.listdir(bad) if os.path.isdir(bad) else []:
        d = os.path.join(bad, target)
        for f in sorted(os.listdir(d)):
            if os.path.isfile(os.path.join(d, f)):
                copy(out, target, os.path.join(d, f))
    for target in sorted(os.listdir(out)):
        print("%-18s %3d seeds" % (target, len(os.listdir(os.path.join(out, target)))))


if __name__ == "__main__":
    main()
