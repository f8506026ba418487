#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test kiln has:
#   1. the release build with gcc, all ctest tests;
#   2. the same tests built with clang under AddressSanitizer + UBSan
#      (also proves the clang build is warning-free);
#   3. the parser fuzzer (libFuzzer) for a bounded time, seeded with models/
#      and the malformed-file corpus;
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
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== fuzz the parser and elaborator (${KILN_FUZZ_SECONDS:-60} s)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DKILN_FUZZ=ON >/dev/null
cmake --build build-fuzz --target fuzz_parse -j"$jobs"
corpus=$(mktemp -d)
cp models/*.kiln tests/errors/*.kiln "$corpus"/
./build-fuzz/tests/fuzz_parse -max_total_time="${KILN_FUZZ_SECONDS:-60}" -max_len=8192 \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>fuzz-parse.log ||
  { tail -n 60 fuzz-parse.log; echo "fuzzer found a failure"; exit 1; }
grep -E "stat::number_of_executed_units|Done" fuzz-parse.log | tail -n 2
rm -rf "$corpus"

echo "== clang-format"
files=$(git ls-files '*.c' '*.h')
clang-format --dry-run -Werror $files

echo "== all tests passed"
