#!/usr/bin/env bash
# Installs the Debian 12 packages LayerLab needs to build, test and run.
# Only calls apt-get when something is actually missing, so repeated runs are fast.
# --fuzz: also clang's libFuzzer and OpenMP runtimes (tests/fuzz/run.sh).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  qt6-base-dev qt6-base-dev-tools qt6-svg-dev libgl-dev
  libqcustomplot-dev
  libeigen3-dev nlohmann-json3-dev libhdf5-dev libyaml-cpp-dev
  xvfb xauth
  dpkg-dev file   # cpack's .deb: dpkg-shlibdeps computes Depends, file finds the binaries
  python3-h5py    # tests read the HDF5 report with h5py
)
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES+=(clang libfuzzer-14-dev libomp-14-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "layerlab: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
