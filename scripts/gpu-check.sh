#!/usr/bin/env bash
# Builds kiln and runs everything that needs a GPU, for a GPU machine (CUDA
# 13, H100/H200, no network), e.g. through the lead's device tool:
#   1. the release build (into build-gpu/, or $KILN_BUILD_DIR);
#   2. every ctest test labelled "gpu" (tests/CMakeLists.txt), one by one;
#   3. the same tests under compute-sanitizer memcheck and racecheck, when
#      compute-sanitizer is installed;
#   4. every benchmark script bench/*.sh (run with the build directory as
#      $1; a script containing the line "# gpu-check: skip" is left out);
#   5. a table: name, status (PASS, FAIL, SKIP), seconds.
# Without a GPU (or driver) it says so and runs nothing but the build.
# Exit status: 1 when the build fails, 2 when a test or benchmark failed,
# 0 otherwise (no GPU included).
#
#   bash scripts/gpu-check.sh            # everything
#   bash scripts/gpu-check.sh --no-bench # tests and sanitizers only
set -uo pipefail
cd "$(dirname "$0")/.."

build=${KILN_BUILD_DIR:-build-gpu}
jobs=$(nproc)
limit=${KILN_GPU_CHECK_TIMEOUT:-900} # seconds per test or benchmark
run_bench=1
for arg in "$@"; do
  case $arg in
  --no-bench) run_bench=0 ;;
  *) echo "usage: $0 [--no-bench]" >&2; exit 2 ;;
  esac
done
logs=$(mktemp -d)
export PATH="$PATH:/usr/local/cuda/bin"

names=()
states=()
secs=()
failed=0

# run NAME COMMAND...: runs it under the time limit, records PASS, FAIL
# or SKIP (exit 77, ctest's skip code) and the time, keeps the log.
run() {
  local name=$1 start end rc log
  shift
  log="$logs/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').log"
  start=$(date +%s%N)
  timeout "$limit" "$@" >"$log" 2>&1
  rc=$?
  end=$(date +%s%N)
  names+=("$name")
  secs+=("$(awk -v a="$start" -v b="$end" 'BEGIN { print (b - a) / 1e9 }')")
  # ctest itself exits 0 for a skipped test; its log says so.
  if [ "$rc" -eq 0 ] && grep -q '\*\*\*Skipped' "$log"; then
    states+=(SKIP)
  elif [ "$rc" -eq 0 ]; then
    states+=(PASS)
  elif [ "$rc" -eq 77 ]; then
    states+=(SKIP)
  else
    states+=(FAIL)
    failed=1
    echo "---- $name failed (exit $rc); last lines of its log:"
    tail -n 40 "$log"
  fi
}

table() {
  echo
  printf '%-44s %-6s %9s\n' "test" "status" "seconds"
  printf '%-44s %-6s %9s\n' "----" "------" "-------"
  for i in "${!names[@]}"; do
    printf '%-44s %-6s %9.1f\n' "${names[$i]}" "${states[$i]}" "${secs[$i]}"
  done
  echo "(logs in $logs)"
}

echo "== build ($build)"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >"$logs/cmake.log" 2>&1 &&
  cmake --build "$build" -j"$jobs" >>"$logs/cmake.log" 2>&1; }; then
  tail -n 60 "$logs/cmake.log"
  echo "gpu-check: the build failed"
  exit 1
fi

echo "== GPU"
probe="$build/tests/test_cuda_codegen"
"$probe" --gpu >"$logs/probe.log" 2>&1
probe_rc=$?
if [ "$probe_rc" -eq 77 ]; then
  echo "gpu-check: no GPU here: $(grep -m1 SKIPPED "$logs/probe.log")"
  echo "gpu-check: built fine; nothing that needs a GPU was run"
  exit 0
fi
head -n 1 "$logs/probe.log"
nvidia-smi -L 2>/dev/null || true

# The gpu tests with their commands, as ctest knows them: "name|command".
mapfile -t gpu_tests < <(ctest --test-dir "$build" -L gpu -N -V 2>/dev/null |
  awk '/Test command:/ { sub(/.*Test command: /, ""); cmd = $0 }
       /Test +#[0-9]+:/ { sub(/.*Test +#[0-9]+: /, ""); print $0 "|" cmd }')

echo "== gpu tests (${#gpu_tests[@]})"
for t in "${gpu_tests[@]}"; do
  name=${t%%|*}
  run "$name" ctest --test-dir "$build" -R "^${name}\$" --output-on-failure
done

if command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool"
    for t in "${gpu_tests[@]}"; do
      name=${t%%|*}
      cmd=${t#*|}
      # ctest prints the command with its arguments quoted; eval splits it.
      eval "run \"$name ($tool)\" compute-sanitizer --tool $tool \
        --error-exitcode 1 $cmd"
    done
  done
else
  echo "== compute-sanitizer not found: sanitizer runs left out"
fi

if [ "$run_bench" -eq 1 ]; then
  echo "== benchmarks"
  shopt -s nullglob
  for b in bench/*.sh; do
    if grep -q '^# gpu-check: skip' "$b"; then
      continue
    fi
    run "bench/$(basename "$b")" bash "$b" "$build"
  done
fi

table
exit $((failed ? 2 : 0))
