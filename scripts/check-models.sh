#!/usr/bin/env bash
# The main job for now: build kiln (incrementally, configuring the build
# directory first if it is new), check every model in models/ -- printing
# each one's layer table -- and end with a summary table of the models, their
# parameters, MACs per example and status.
#
#   KILN_BUILD   build directory (default: build, as scripts/setup.sh uses)
#
# Exits non-zero if any model fails to load.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${KILN_BUILD:-build}
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target kiln -j"$(nproc)" >/dev/null
kiln=$build/kiln

shopt -s nullglob
models=(models/*.kiln)
if ((${#models[@]} == 0)); then
  echo "check-models: no models in models/" >&2
  exit 1
fi

rows=()
failed=0
for f in "${models[@]}"; do
  echo "== $f"
  status=ok
  "$kiln" check "$f" || status=FAILED
  params=- macs=-
  # The one-line form: "models/x.kiln: ok (x, 61,750 params, 0.42 M MACs)".
  line=$("$kiln" check --quiet "$f" 2>/dev/null || true)
  if [[ $status == ok && $line =~ \((.*),\ (.*)\ params,\ (.*)\ MACs\)$ ]]; then
    params=${BASH_REMATCH[2]}
    macs=${BASH_REMATCH[3]}
  fi
  [[ $status == ok ]] || failed=$((failed + 1))
  rows+=("$(basename "$f" .kiln)|$params|$macs|$status")
  echo
done

echo "== summary ($build/kiln $("$kiln" --version | cut -d' ' -f2))"
printf '%-16s %14s %12s  %s\n' model params MACs status
for r in "${rows[@]}"; do
  IFS='|' read -r name params macs status <<<"$r"
  printf '%-16s %14s %12s  %s\n' "$name" "$params" "$macs" "$status"
done
echo "${#models[@]} models, $((${#models[@]} - failed)) ok, $failed failed"
((failed == 0))
