#!/usr/bin/env bash
# Builds the packages (.deb and .tar.gz) for any x86-64 machine: preset
# `package` compiles without -march=native (the AVX-512 kernels are compiled
# apart and chosen at run time, kernels/cpu_features.h), then cpack.
#   scripts/package.sh           build/package/layerlab_<version>_amd64.deb, layerlab-<version>-Linux.tar.gz
#   scripts/package.sh --check   and run the packaged CLI on an emulated CPU without AVX-512
#                                (qemu-x86_64 -cpu Haswell, from Debian's qemu-user)
set -euo pipefail
cd "$(dirname "$0")/.."
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
bash scripts/install-deps.sh
# Paths relative to the checkout in ccache's keys, so fresh clones reuse the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake --preset package >/dev/null
cmake --build --preset package
(cd build/package && cpack)
ls -l build/package/*.deb build/package/*.tar.gz
[ "$CHECK" = 1 ] || exit 0

if ! command -v qemu-x86_64 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y qemu-user >/dev/null; else sudo apt-get install -y qemu-user >/dev/null; fi
fi
# The package's own files, unpacked; the model: stories260K when ../shared has it, else a tiny synthetic one.
CHECKDIR=$(mktemp -d)
trap 'rm -rf "$CHECKDIR"' EXIT
dpkg-deb -x build/package/layerlab_*_amd64.deb "$CHECKDIR/root"
CLI="$CHECKDIR/root/usr/bin/layerlab-cli"
MODEL=../shared/models/stories260K/stories260K.bin
TEXT=../shared/data/tinystories/eval.txt
if [ ! -f "$MODEL" ]; then
  echo "package.sh: ../shared/models/stories260K is missing; checking inspect on the demo only" >&2
  MODEL=""
fi
run() { echo "+ qemu-x86_64 -cpu Haswell layerlab-cli $*" >&2; qemu-x86_64 -cpu Haswell "$CLI" "$@" 2> >(grep -v "TCG doesn't support" >&2); }
run --version
if [ -n "$MODEL" ]; then
  run inspect "$MODEL" > /dev/null
  # The forward pass, quantized weights kept packed, and a GGUF export: every dispatched kernel's portable path.
  run ppl "$MODEL" --text "$TEXT" --ctx 256 --windows 4
  run quantize "$MODEL" --method rtn --bits 4 --group 32 --eval "$TEXT" --ctx 256 > /dev/null
  run export "$MODEL" --gguf "$CHECKDIR/out.gguf" --gguf-type Q4_K_M > /dev/null
  run ppl "$CHECKDIR/out.gguf" --text "$TEXT" --ctx 256 --windows 4
fi
echo "package.sh: the packaged layerlab-cli runs on a CPU without AVX-512 (qemu Haswell)"
