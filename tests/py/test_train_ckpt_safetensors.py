#!/usr/bin/env python3
"""Checks kiln's training checkpoints (runtime/train/train_ckpt.c) against
the safetensors library, the format's reference implementation.

    test_train_ckpt_safetensors.py PATH/TO/train_tool

(a) a checkpoint of models/mlp.kiln with Adam state and EMA weights,
    written by kiln (train_tool ckpt), loads with safetensors.numpy with
    the PyTorch names and shapes of the model (nn.Linear: weight [out, in],
    bias [out]) plus "<param>.exp_avg", ".exp_avg_sq" and ".ema", every
    value as recomputed here, and the documented metadata;
(b) the same checkpoint written by safetensors (save_file) resumes in kiln
    (train_tool resume) with every value and the position intact;
(c) a file without one of the tensors is refused, naming it.

Prints "N passed, N failed" and exits non-zero on any failure. numpy and
safetensors are required (scripts/setup.sh installs them).
"""
import os
import re
import subprocess
import sys
import tempfile
import traceback

from harness import report, stop, summary

try:
    import numpy as np
    import safetensors
    import safetensors.numpy
except ImportError as e:
    stop(f"imports: {e} (run scripts/setup.sh, which pip-installs "
         "numpy and safetensors)")

MODEL = "models/mlp.kiln"
# nn.Linear(784, 256), (256, 128), (128, 10): PyTorch's names and shapes.
OWN = {"fc1.weight": (256, 784), "fc1.bias": (256,),
       "fc2.weight": (128, 256), "fc2.bias": (128,),
       "fc3.weight": (10, 128), "fc3.bias": (10,)}
ROLES = ("exp_avg", "exp_avg_sq", "ema")
META = {"format": "pt", "kiln.model": "mlp", "kiln.step": "1234",
        "kiln.epoch": "2", "kiln.epoch_step": "17", "kiln.batch": "128",
        "kiln.seed": "42", "kiln.best_val_loss": "0.10000000000000001",
        "kiln.best_epoch": "1", "kiln.bad_epochs": "1"}


def expected():
    shapes = dict(OWN)
    for name, shape in OWN.items():
        for role in ROLES:
            shapes[f"{name}.{role}"] = shape
    return shapes


def fnv1a32(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h


def value(name, shape):
    """train_tool's value(): ((fnv1a32(name) + i * 2654435761) mod 2^32
    mod 2001 - 1000) / 256 for element i in row-major order."""
    i = np.arange(int(np.prod(shape)), dtype=np.uint64)
    x = (np.uint64(fnv1a32(name)) + i * np.uint64(2654435761)) % np.uint64(
        1 << 32)
    v = ((x % np.uint64(2001)).astype(np.int64) - 1000).astype(np.float32)
    return (v / np.float32(256)).reshape(shape)


def run(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True,
                          timeout=120)


def check_kiln_file(tool, tmp):
    path = os.path.join(tmp, "kiln.safetensors")
    r = run(tool, "ckpt", path, MODEL)
    report("train_tool ckpt", r.returncode == 0, r.stderr)
    if r.returncode:
        return
    got = safetensors.numpy.load_file(path)
    shapes = expected()
    report("tensor names", sorted(got) == sorted(shapes),
           f"{sorted(set(got) ^ set(shapes))}")
    for name, shape in shapes.items():
        t = got.get(name)
        ok = (t is not None and t.dtype == np.float32 and t.shape == shape
              and np.array_equal(t, value(name, shape)))
        report(f"{name}: F32 {shape}, values", ok,
               "" if t is None else f"{t.dtype} {t.shape}")
    with safetensors.safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    version = meta.pop("kiln.version", "")
    report("kiln.version", re.match(r"^\d+\.\d+", version) is not None,
           version)
    report("metadata", meta == META, f"{meta}")


def check_resume(tool, tmp):
    shapes = expected()
    tensors = {n: value(n, s) for n, s in shapes.items()}
    meta = dict(META, **{"kiln.version": "0.0.0", "kiln.seed":
                         "18446744073709551615", "kiln.best_val_loss": "inf"})
    path = os.path.join(tmp, "st.safetensors")
    safetensors.numpy.save_file(tensors, path, metadata=meta)
    r = run(tool, "resume", path, MODEL)
    report("safetensors-written checkpoint resumes", r.returncode == 0,
           r.stderr)
    want = ("resumed 24 tensors: step 1234 epoch 2 epoch_step 17 batch 128 "
            "seed 18446744073709551615 best_val_loss inf best_epoch 1 "
            "bad_epochs 1 model mlp")
    report("position", r.stdout.strip() == want, r.stdout)

    del tensors["fc2.bias.exp_avg_sq"]
    path = os.path.join(tmp, "missing.safetensors")
    safetensors.numpy.save_file(tensors, path, metadata=meta)
    r = run(tool, "resume", path, MODEL)
    report("missing tensor refused, named",
           r.returncode == 1 and "missing tensor 'fc2.bias.exp_avg_sq'"
           in r.stderr and path in r.stderr, r.stderr)


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        stop("usage: test_train_ckpt_safetensors.py PATH/TO/train_tool")
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        check_kiln_file(tool, tmp)
        check_resume(tool, tmp)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        report("no exception", False, traceback.format_exc())
    sys.exit(summary())
