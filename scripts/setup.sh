#!/usr/bin/env bash
# Sets up a fresh Debian machine for kiln and builds it (into $KILN_BUILD,
# default build/). Idempotent: packages already present are not reinstalled,
# and the build is incremental.
#
# The CUDA 13 toolkit is expected in /usr/local/cuda (found by CMake's
# CUDAToolkit package); it is not an apt package here.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config
  clang libclang-rt-14-dev  # second compiler, libFuzzer and sanitizer runtimes
  clang-format
  llvm-dev                  # LLVM-C API and ORC JIT for the CPU backend
  zlib1g-dev                # gzip-compressed IDX datasets
  libjansson-dev            # JSON header of safetensors checkpoints
  openmpi-bin libopenmpi-dev  # multi-process training
  graphviz                  # checks the `kiln dump --dot` output
  dataset-fashion-mnist     # the default training data
  python3 python3-pip
)

missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present"
fi

# numpy and safetensors: the oracle of tests/py/test_safetensors_compat.py.
# Skipped when present (no network needed); Debian's own python3 refuses a
# plain pip install (PEP 668), hence the second form.
if ! python3 -c "import numpy, safetensors" 2>/dev/null; then
  echo "setup: pip-installing numpy safetensors"
  python3 -m pip install --quiet --disable-pip-version-check numpy safetensors ||
    python3 -m pip install --quiet --disable-pip-version-check \
      --break-system-packages numpy safetensors
fi

build=${KILN_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/kiln"
