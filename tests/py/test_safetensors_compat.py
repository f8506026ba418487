#!/usr/bin/env python3
"""Checks kiln's safetensors reader and writer against the safetensors
library (the format's reference implementation) and numpy.

    test_safetensors_compat.py PATH/TO/ckpt_tool

(a) files written by kiln (ckpt_tool write) load in safetensors with the
    same names, dtypes, shapes, values and metadata;
(b) files written by safetensors (numpy's save_file, and serialize_file for
    bfloat16, which numpy lacks) read back identically in kiln (ckpt_tool
    read prints each tensor's dtype, shape, sum and a hash of its bytes);
(c) malformed files that safetensors rejects, kiln rejects too.

Prints "N passed, N failed" and exits non-zero on any failure. numpy and
safetensors are required (scripts/setup.sh installs them): missing, the
test fails rather than skips, so CI cannot pass without the oracle.
"""
import json
import os
import struct
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

DTYPE_NAMES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
               np.dtype(np.float16): "F16", np.dtype(np.int32): "I32",
               np.dtype(np.int64): "I64"}


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def expected_tensors():
    """The checkpoint ckpt_tool writes (keep in step with cmd_write). BF16
    is given as uint16 bit patterns."""
    i = np.arange(6, dtype=np.float32)
    return {
        "layer.w_f32": ((i - np.float32(2.5)) * np.float32(0.75)).reshape(2, 3),
        "layer.w_f64": 1.0 / (np.arange(4, dtype=np.float64) + 1),
        "layer.w_f16": (0x3c00 + 0x0123 * np.arange(6)).astype(np.uint16)
                       .view(np.float16).reshape(3, 2),
        "counts.i32": (np.arange(5) * 1000003 - 2000000).astype(np.int32),
        "counts.i64": (np.arange(3, dtype=np.int64) - 1) * 0x123456789ab,
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float16),
    }


EXPECTED_BF16 = ("embed.bf16", (0xbf80 + 0x0041 * np.arange(4))
                 .astype(np.uint16).reshape(2, 2))
EXPECTED_META = {"format": "pt", "producer": "kiln ckpt_tool"}


def run_tool(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True,
                          timeout=60)


def kiln_read(tool, path):
    """ckpt_tool read -> ({name: (dtype, shape, sum, hash)}, {key: value})."""
    r = run_tool(tool, "read", path)
    if r.returncode != 0:
        raise AssertionError(f"ckpt_tool read {path} failed: {r.stderr}")
    tensors, meta = {}, {}
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if f[0] == "tensor":
            shape = tuple(int(d) for d in f[3].split(",")) if f[3] else ()
            tensors[f[1]] = (f[2], shape, float(f[4]), int(f[5], 16))
        elif f[0] == "meta":
            meta[f[1]] = f[2]
    return tensors, meta


def check_kiln_sees(name, got, arrays, bf16=()):
    """got (from kiln_read) against numpy arrays, plus BF16 tensors given
    as (name, uint16 bits) pairs."""
    want = {k: (DTYPE_NAMES[a.dtype], a.shape,
                float(np.sum(a.astype(np.float64))), fnv1a64(a.tobytes()))
            for k, a in arrays.items()}
    for k, bits in bf16:
        want[k] = ("BF16", bits.shape,
                   float(np.sum(bf16_to_f32(bits).astype(np.float64))),
                   fnv1a64(bits.tobytes()))
    report(f"{name}: names", sorted(got) == sorted(want),
           f"{sorted(got)} vs {sorted(want)}")
    for k in sorted(set(got) & set(want)):
        g, w = got[k], want[k]
        ok = (g[0] == w[0] and g[1] == w[1] and g[3] == w[3] and
              abs(g[2] - w[2]) <= 1e-9 * max(1.0, abs(w[2])))
        report(f"{name}: tensor {k}", ok, f"kiln {g} vs expected {w}")


def test_kiln_file_in_numpy(tool, tmp):
    """(a) safetensors.numpy.load_file reads kiln's file exactly."""
    path = os.path.join(tmp, "kiln_numpy.safetensors")
    r = run_tool(tool, "write", path, "numpy")
    report("ckpt_tool write numpy", r.returncode == 0, r.stderr)
    loaded = safetensors.numpy.load_file(path)
    want = expected_tensors()
    report("load_file: names", sorted(loaded) == sorted(want),
           f"{sorted(loaded)}")
    for k, w in want.items():
        g = loaded.get(k)
        ok = (g is not None and g.dtype == w.dtype and g.shape == w.shape and
              g.tobytes() == w.tobytes())
        report(f"load_file: tensor {k}", ok, f"{g!r} vs {w!r}")
    with safetensors.safe_open(path, framework="np") as f:
        report("load_file: metadata", f.metadata() == EXPECTED_META,
               f"{f.metadata()}")


def test_kiln_file_deserialized(tool, tmp):
    """(a) every tensor, BF16 included, through the Rust parser, which
    validates the header and the tiling as strictly as kiln does."""
    path = os.path.join(tmp, "kiln_full.safetensors")
    r = run_tool(tool, "write", path)
    report("ckpt_tool write", r.returncode == 0, r.stderr)
    with open(path, "rb") as f:
        raw = f.read()
    got = {name: t for name, t in safetensors.deserialize(raw)}
    want = {k: (DTYPE_NAMES[a.dtype], a) for k, a in expected_tensors().items()}
    want[EXPECTED_BF16[0]] = ("BF16", EXPECTED_BF16[1])
    report("deserialize: names", sorted(got) == sorted(want), f"{sorted(got)}")
    for k, (dtype, a) in want.items():
        g = got.get(k)
        ok = (g is not None and g["dtype"] == dtype and
              tuple(g["shape"]) == a.shape and bytes(g["data"]) == a.tobytes())
        report(f"deserialize: tensor {k}", ok, f"{g}")
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    report("header: padded to 8", hlen % 8 == 0, str(hlen))
    report("header: metadata", header.get("__metadata__") == EXPECTED_META,
           str(header.get("__metadata__")))
    # kiln's reader reads its own file back as numpy computes it.
    got_kiln, meta = kiln_read(tool, path)
    check_kiln_sees("kiln reads kiln", got_kiln, expected_tensors(),
                    [EXPECTED_BF16])
    report("kiln reads kiln: metadata", meta == EXPECTED_META, str(meta))


def test_numpy_file_in_kiln(tool, tmp):
    """(b) a file written by safetensors.numpy.save_file reads identically."""
    rng = np.random.default_rng(20111112)
    arrays = dict(expected_tensors())
    arrays["conv.weight"] = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
    arrays["bn.running_var"] = rng.random(64)
    arrays["big_ints"] = rng.integers(-2**62, 2**62, size=(7, 9))
    arrays["half"] = rng.standard_normal(33).astype(np.float16)
    meta = {"step": "1200", "note": "caf\u00e9, {\"q\": [1]}"}
    path = os.path.join(tmp, "numpy.safetensors")
    safetensors.numpy.save_file(arrays, path, metadata=meta)
    got, got_meta = kiln_read(tool, path)
    check_kiln_sees("kiln reads save_file", got, arrays)
    report("kiln reads save_file: metadata", got_meta == meta, str(got_meta))


def test_bf16_file_in_kiln(tool, tmp):
    """(b) bfloat16, which only the framework-neutral serializer writes."""
    name, bits = EXPECTED_BF16
    more = np.arange(0x3f00, 0x3f00 + 3 * 5, dtype=np.uint16).reshape(3, 5)
    path = os.path.join(tmp, "bf16.safetensors")
    specs, keep = {}, []
    for k, b in ((name, bits), ("more.bf16", more)):
        b = np.ascontiguousarray(b)
        keep.append(b)
        if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.7
            specs[k] = safetensors.TensorSpec(dtype="bfloat16", shape=b.shape,
                                              data_ptr=b.ctypes.data,
                                              data_len=b.nbytes)
        else:
            specs[k] = {"dtype": "bfloat16", "shape": b.shape,
                        "data": b.tobytes()}
    safetensors.serialize_file(specs, path, metadata={"dtype": "bf16"})
    got, meta = kiln_read(tool, path)
    check_kiln_sees("kiln reads bfloat16", got, {},
                    [(name, bits), ("more.bf16", more)])
    report("kiln reads bfloat16: metadata", meta == {"dtype": "bf16"},
           str(meta))


def build(header, data, hlen=None):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if hlen is None else hlen) + text + data


def test_both_reject(tool, tmp):
    """(c) malformed files: the reference parser and kiln agree."""
    def f32(begin, end, shape=(2,)):
        return {"dtype": "F32", "shape": list(shape),
                "data_offsets": [begin, end]}
    good = {"a": f32(0, 8), "b": f32(8, 16)}
    cases = {
        "truncated data": build(good, bytes(12)),
        "trailing data": build(good, bytes(20)),
        "gap": build({"a": f32(0, 8), "b": f32(12, 20)}, bytes(20)),
        "overlap": build({"a": f32(0, 8), "b": f32(4, 12)}, bytes(12)),
        "offsets vs shape": build({"a": f32(0, 12)}, bytes(12)),
        "unknown dtype": build({"a": {"dtype": "Q4", "shape": [2],
                                      "data_offsets": [0, 8]}}, bytes(8)),
        "header past end": build(good, bytes(16), hlen=4096),
        "header not json": struct.pack("<Q", 8) + b"{\"a\":[  " + bytes(8),
    }
    base = build(good, bytes(16))
    cases["truncated header"] = base[:20]
    try:  # the valid base itself must pass both, or the cases prove nothing
        safetensors.deserialize(base)
        ref_ok = True
    except Exception as e:  # noqa: BLE001 - any rejection
        ref_ok = False
        report("reference accepts the base file", False, str(e))
    path = os.path.join(tmp, "base.safetensors")
    with open(path, "wb") as f:
        f.write(base)
    report("kiln accepts the base file", run_tool(tool, "read", path)
           .returncode == 0)
    for name, raw in cases.items():
        try:
            safetensors.deserialize(raw)
            ref_rejects = False
        except Exception:  # noqa: BLE001
            ref_rejects = True
        path = os.path.join(tmp, "bad.safetensors")
        with open(path, "wb") as f:
            f.write(raw)
        r = run_tool(tool, "read", path)
        kiln_rejects = (r.returncode == 1 and "bad.safetensors" in r.stderr
                        and "error: " in r.stderr)
        report(f"reject {name}", ref_ok and ref_rejects and kiln_rejects,
               f"safetensors rejects: {ref_rejects}, kiln: rc "
               f"{r.returncode} {r.stderr.strip()!r}")


def main():
    if len(sys.argv) != 2:
        stop("usage: test_safetensors_compat.py PATH/TO/ckpt_tool")
    tool = sys.argv[1]
    tests = [test_kiln_file_in_numpy, test_kiln_file_deserialized,
             test_numpy_file_in_kiln, test_bf16_file_in_kiln, test_both_reject]
    with tempfile.TemporaryDirectory(prefix="kiln-st-") as tmp:
        for t in tests:
            try:
                t(tool, tmp)
            except Exception:  # noqa: BLE001 - a crash is a failure, not a stop
                report(t.__name__, False, traceback.format_exc())
    return summary()


if __name__ == "__main__":
    sys.exit(main())
