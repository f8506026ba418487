#!/usr/bin/env python3
"""Checks reference kernels against numpy, an independent implementation:

    test_ref_numpy.py PATH/TO/ref_tool

gelu (exact and tanh), softmax along every axis, add and mul with NumPy
broadcasting (numpy's own broadcasting gives the forward; the backward is
dy summed over the broadcast axes), and cross_entropy with label smoothing
(written as PyTorch documents it) with mean and sum reductions, forward
and backward. ref_tool (tests/ref_tool.c) runs the kernel on numbers sent
on stdin and prints the results with 17 significant digits.

Prints "N passed, N failed" and exits non-zero on any failure. numpy is
required (scripts/setup.sh installs it): missing, the test fails rather
than skips.
"""
import math
import subprocess
import sys

from harness import report, stop, summary


try:
    import numpy as np
except ImportError as e:
    stop(f"imports: {e} (run scripts/setup.sh, which pip-installs "
         "numpy)")

if len(sys.argv) != 2:
    stop("usage: test_ref_numpy.py PATH/TO/ref_tool")
TOOL = sys.argv[1]
rng = np.random.default_rng(20261)


def tool(args, numbers):
    """Runs ref_tool with the numbers on stdin; returns the printed values."""
    text = " ".join(repr(float(v)) if isinstance(v, (float, np.floating))
                    else str(int(v)) for v in numbers)
    r = subprocess.run([TOOL] + args, input=text, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"ref_tool {args} exited {r.returncode}: "
                           f"{r.stderr.strip()}")
    return [float(t) for t in r.stdout.split()]


def close(name, got, want, rtol=1e-12, atol=1e-13):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        report(name, False, f"shape {got.shape} vs {want.shape}")
        return
    ok = np.allclose(got, want, rtol=rtol, atol=atol)
    detail = "" if ok else f"max abs diff {np.max(np.abs(got - want)):.3g}"
    report(name, ok, detail)


def check(name, fn):
    try:
        fn()
    except Exception as e:  # a crash of one case is a failure, not an abort
        report(name, False, repr(e))


# ---- gelu ----
def gelu_case(mode):
    x = np.concatenate([rng.normal(0, 2, 50), [0.0, 1.0, -1.0, 6.0, -6.0]])
    dy = rng.normal(0, 1, x.size)
    out = tool(["gelu", mode], [x.size, *x, *dy])
    n = x.size
    if mode == "none":
        erf = np.vectorize(math.erf)
        cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
        y = x * cdf
        dx = dy * (cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))
    else:
        k = math.sqrt(2 / math.pi)
        t = np.tanh(k * (x + 0.044715 * x ** 3))
        y = 0.5 * x * (1 + t)
        dx = dy * (0.5 * (1 + t)
                   + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x))
    close(f"gelu {mode} forward", out[:n], y)
    close(f"gelu {mode} backward", out[n:], dx)


check("gelu none", lambda: gelu_case("none"))
check("gelu tanh", lambda: gelu_case("tanh"))


# ---- softmax ----
def softmax_case(shape, axis):
    x = rng.normal(0, 3, shape)
    x.flat[0] += 500  # large logits must not overflow
    dy = rng.normal(0, 1, shape)
    out = tool(["softmax", str(axis)],
               [len(shape), *shape, *x.ravel(), *dy.ravel()])
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    dx = y * (dy - (dy * y).sum(axis=axis, keepdims=True))
    close(f"softmax {shape} axis {axis} forward", out[:x.size], y.ravel())
    close(f"softmax {shape} axis {axis} backward", out[x.size:], dx.ravel())


for shape, axis in [((5,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1),
                    ((2, 3, 4, 5), -3)]:
    check(f"softmax {shape} {axis}",
          lambda shape=shape, axis=axis: softmax_case(shape, axis))


# ---- add / mul with broadcasting ----
def unbroadcast(g, shape):
    """Sums g down to `shape`, as the gradient of a broadcast input."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(
        shape) else g
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def binary_case(op, ashape, bshape):
    a = rng.normal(0, 1, ashape)
    b = rng.normal(0, 1, bshape)
    y = a + b if op == "add" else a * b
    dy = rng.normal(0, 1, y.shape)
    out = tool([op], [len(ashape), *ashape, len(bshape), *bshape,
                      *a.ravel(), *b.ravel(), *dy.ravel()])
    rank = int(out[0])
    shape = tuple(int(v) for v in out[1:1 + rank])
    report(f"{op} {ashape} {bshape} shape", shape == y.shape,
           f"{shape} vs {y.shape}")
    rest = out[1 + rank:]
    da = dy * (1 if op == "add" else b)
    db = dy * (1 if op == "add" else a)
    close(f"{op} {ashape} {bshape} forward", rest[:y.size], y.ravel())
    close(f"{op} {ashape} {bshape} da", rest[y.size:y.size + a.size],
          unbroadcast(da, ashape).ravel())
    close(f"{op} {ashape} {bshape} db", rest[y.size + a.size:],
          unbroadcast(db, bshape).ravel())


for op in ("add", "mul"):
    for ashape, bshape in [((2, 1, 3), (4, 1)), ((3,), (2, 4, 3)),
                           ((), (2, 3)), ((5, 1, 1, 2), (1, 3, 4, 1)),
                           ((2, 3), (2, 3))]:
        check(f"{op} {ashape} {bshape}",
              lambda op=op, a=ashape, b=bshape: binary_case(op, a, b))


# ---- cross_entropy with label smoothing ----
def cross_entropy_case(n, k, eps, red):
    z = rng.normal(0, 3, (n, k))
    labels = rng.integers(0, k, n)
    dloss = 0.75
    out = tool(["cross_entropy", repr(eps), red],
               [n, k, *z.ravel(), *labels, dloss])
    report(f"cross_entropy {n}x{k} eps {eps} {red} status", out[0] == 0)
    logp = z - z.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    # PyTorch: (1 - eps) * nll + eps * mean over classes of -log p.
    rows = (1 - eps) * -logp[np.arange(n), labels] + eps * -logp.mean(axis=1)
    loss = rows.mean() if red == "mean" else rows.sum()
    target = np.full((n, k), eps / k)
    target[np.arange(n), labels] += 1 - eps
    dz = (np.exp(logp) - target) * dloss / (n if red == "mean" else 1)
    close(f"cross_entropy {n}x{k} eps {eps} {red} loss", out[1:2], [loss])
    close(f"cross_entropy {n}x{k} eps {eps} {red} dlogits", out[2:],
          dz.ravel())


for eps in (0.0, 0.1, 1.0):
    for red in ("mean", "sum"):
        check(f"cross_entropy {eps} {red}",
              lambda eps=eps, red=red: cross_entropy_case(6, 5, eps, red))


def cross_entropy_bad_label():
    out = tool(["cross_entropy", "0.1", "mean"], [2, 3, 1, 2, 3, 1, 1, 1,
                                                  0, 3, 1.0])
    report("cross_entropy label out of range", out == [-1.0], str(out))


check("cross_entropy bad label", cross_entropy_bad_label)

sys.exit(summary())
