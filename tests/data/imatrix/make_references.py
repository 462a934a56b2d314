#!/usr/bin/python3
"""Makes tests/data/imatrix (the references of tests/test_imatrix.cpp) with
llama.cpp built from source (commit c392e50), which the project never depends on:

    /usr/bin/python3 tests/data/imatrix/make_references.py LLAMA_CPP_DIR [SHARED_DIR] [LAYERLAB_CLI]

- llama-imatrix on two models and a text: the .imatrix.dat files (read by the
  tests as llama.cpp's files, and compared value by value with LayerLab's own);
- `layerlab-cli imatrix` on one of them: a file LayerLab wrote, which
  llama-quantize must accept;
- llama-quantize --imatrix with each file and several types: the SHA-256 of
  every tensor of its output (gguf-py reads the tensors), in references.json.
"""
import hashlib, json, os, subprocess, sys, tempfile

llama = os.path.abspath(sys.argv[1])
shared = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "../shared")
cli = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else "build/release/app/layerlab-cli")
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(llama, "gguf-py"))
from gguf import GGUFReader  # noqa: E402

bin_ = os.path.join(llama, "build", "bin")
stories = "models/stories260K-gguf/stories260K-f32.gguf"
tiny = "models/gguf-quants/tiny-llama256-F16.gguf"
text = "data/tinystories/calib.txt"
imatrices = {
    "stories260K.imatrix.dat": {"model": stories, "text": text, "ctx": 256, "chunks": 8},
    "tiny-llama256.imatrix.dat": {"model": tiny, "text": text, "ctx": 128, "chunks": 8},
}

def run(args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

refs = {"llama_cpp": "c392e50", "imatrix": {}, "quantized": []}
for name, r in imatrices.items():
    run([os.path.join(bin_, "llama-imatrix"), "-m", os.path.join(shared, r["model"]), "-f", os.path.join(shared, r["text"]),
         "-c", str(r["ctx"]), "--chunks", str(r["chunks"]), "-o", os.path.join(here, name), "-t", "2"])
    with open(os.path.join(here, name), "rb") as f:
        r["entries"] = int.from_bytes(f.read(4), "little")
    refs["imatrix"][name] = r
# A file LayerLab wrote: llama-quantize reads it as its own.
run([cli, "imatrix", os.path.join(shared, stories), "--text", os.path.join(shared, text), "--ctx", "256", "--chunks", "8",
     "--out", os.path.join(here, "stories260K.layerlab.imatrix.dat"), "--force"])

# stories260K's rows of 64 and 172 values fit no k-quant block: its presets fall back (Q4_K -> Q5_0,
# Q3_K -> IQ4_NL, 172 -> F16), and those fallbacks are rounded with the imatrix too.
jobs = [(stories, "stories260K.imatrix.dat", t, False) for t in ["Q4_K_M", "Q3_K_M", "Q2_K"]]
jobs += [(stories, "stories260K.layerlab.imatrix.dat", "Q5_K_M", False)]
jobs += [(tiny, "tiny-llama256.imatrix.dat", t, p) for t, p in
         [("Q2_K", False), ("Q3_K_M", False), ("Q4_K_M", False), ("Q5_K_M", False), ("Q6_K", False), ("IQ4_NL", False),
          ("Q4_1", True), ("Q5_0", True)]]
with tempfile.TemporaryDirectory() as tmp:
    for model, imatrix, qtype, pure in jobs:
        out = os.path.join(tmp, "out.gguf")
        run([os.path.join(bin_, "llama-quantize")] + (["--pure"] if pure else []) +
            ["--imatrix", os.path.join(here, imatrix), os.path.join(shared, model), out, qtype, "2"])
        tensors = {t.name: hashlib.sha256(t.data.tobytes()).hexdigest() for t in GGUFReader(out).tensors}
        refs["quantized"].append({"model": model, "imatrix": imatrix, "type": qtype, "pure": pure, "tensors": tensors})
        os.remove(out)
with open(os.path.join(here, "references.json"), "w") as f:
    json.dump(refs, f, indent=1)
    f.write("\n")
print("wrote", os.path.join(here, "references.json"))
