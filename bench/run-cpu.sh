#!/usr/bin/env bash
# gpu-check: skip (installs JAX/ONNX Runtime from PyPI; the device machines have no network)
# CPU benchmark of issue 4, in one run: images/s of a training step and of
# an inference step of LeNet-5 and the small ResNet, on kiln's compiled CPU
# backend and on the reference executor (bench/step_bench.c), next to JAX
# (XLA on the CPU, a training step) and ONNX Runtime (inference) on the
# same model, batch and data (bench/cpu_baselines.py).
#
#   bash bench/run-cpu.sh [BATCH]        (default 128)
#
# Prints the JSON lines as they come and a markdown table last. JAX, onnx
# and onnxruntime are installed into bench/.venv on first use (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-128}
build=${KILN_BUILD:-build}

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target step_bench -j"$(nproc)" >/dev/null

venv=bench/.venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q jax onnx onnxruntime numpy
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { "$@" | tee -a "$out"; }
for model in lenet5 resnet_small; do
  # The reference executor is ~100x slower: fewer steps keep it bounded.
  ref_steps=3
  [[ $model == resnet_small ]] && ref_steps=1
  run "$build/bench/step_bench" "models/$model.kiln" cpu "$batch" 20
  run "$build/bench/step_bench" "models/$model.kiln" reference "$batch" "$ref_steps"
  run "$venv/bin/python" bench/cpu_baselines.py --model "$model" --batch "$batch" --steps 20
done

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
"$venv/bin/python" - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| model | backend | mode | batch | img/s | vs kiln reference |")
print("| --- | --- | --- | --- | --- | --- |")
ref = {(r["model"], r["mode"]): r["img_per_s"] for r in rows
       if r.get("backend") == "kiln reference"}
for r in rows:
    who = r.get("backend") or r.get("framework")
    base = ref.get((r["model"], r["mode"]))
    ratio = f'{r["img_per_s"] / base:.1f}x' if base else "-"
    print(f'| {r["model"]} | {who} | {r["mode"]} | {r["batch"]} | '
          f'{r["img_per_s"]:.0f} | {ratio} |')
EOF
