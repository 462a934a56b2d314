#!/usr/bin/env python3
"""Dumps a LayerLab HDF5 report as JSON on stdout, read with h5py alone (an
independent reader for tests/test_report.cpp).

{"/path": {"kind": "group"|"dataset", "attrs": {...}, "keys": [...] (groups, in
h5py's iteration order), "value": ... (datasets; NaN -> null)}}. A sparsity
mask also gets "bits": a string of rows*cols '0'/'1' characters, unpacked with
numpy's bitorder from its bit_order attribute."""
import json
import math
import sys

import h5py
import numpy as np


def plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def entry(obj):
    e = {"attrs": {k: plain(v) for k, v in obj.attrs.items()}}
    if isinstance(obj, h5py.Group):
        e["kind"] = "group"
        e["keys"] = list(obj.keys())
    else:
        e["kind"] = "dataset"
        e["value"] = plain(obj[()])
        if obj.name.endswith("/sparsity_mask"):
            rows, cols = int(obj.attrs["rows"]), int(obj.attrs["cols"])
            bits = np.unpackbits(obj[()], bitorder=obj.attrs["bit_order"])[: rows * cols]
            e["bits"] = "".join("1" if b else "0" for b in bits)
            del e["value"]
    return e


def main():
    out = {}
    with h5py.File(sys.argv[1], "r") as f:
        out["/"] = entry(f)
        f.visititems(lambda name, obj: out.__setitem__("/" + name, entry(obj)))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
