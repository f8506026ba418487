#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test kiln has:
#   1. the release build with gcc, all ctest tests;
#   2. the same tests built with clang under AddressSanitizer + UBSan
#      (also proves the clang build is warning-free);
#   3. the libFuzzer targets for a bounded time each: the model-file load
#      path (seeded with models/ and the malformed-file corpus) and the
#      checkpoint reader;
#   4. clang-format conformance of every C file.
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup.sh

echo "== tests (gcc, release)"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== tests (clang, ASan + UBSan)"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
# test_cuda_nvrtc (label nvrtc: every model's kernels through NVRTC) ran in
# the release pass; under ASan it would only re-time NVRTC itself.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE "nvrtc|models"

# Each fuzzer works on a copy of its seeds, so what it learns stays out of
# the tree.
fuzz() { # name seconds seed-files...
  local name=$1 seconds=$2 corpus
  shift 2
  corpus=$(mktemp -d)
  cp "$@" "$corpus"/
  echo "== fuzz $name ($seconds s)"
  cmake --build build-fuzz --target "$name" -j"$jobs"
  ./build-fuzz/tests/"$name" -max_total_time="$seconds" -max_len=8192 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>"$name.log" ||
    { tail -n 60 "$name.log"; echo "$name found a failure"; exit 1; }
  grep -E "stat::number_of_executed_units" "$name.log"
  rm -rf "$corpus"
}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DKILN_FUZZ=ON >/dev/null
fuzz fuzz_parse "${KILN_FUZZ_SECONDS:-60}" models/*.kiln tests/errors/*.kiln
fuzz fuzz_ckpt "${KILN_FUZZ_SECONDS:-60}" tests/fuzz/ckpt-seeds/*

echo "== clang-format"
files=$(git ls-files '*.c' '*.h')
clang-format --dry-run -Werror $files

echo "== all tests passed"
