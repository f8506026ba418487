#!/usr/bin/env python3
"""CPU baselines for kiln's compiled CPU backend: the same models, batch and
data, run by JAX (XLA on the CPU, a whole training step) and by ONNX Runtime
(inference). Prints one JSON object per measurement on stdout.

The networks are written out here by hand to match models/lenet5.kiln and
models/resnet_small.kiln layer for layer (PyTorch layouts: NCHW, OIHW, linear
weights [out, in]); the training step is SGD with Nesterov momentum and
weight decay as in lenet5.kiln's train section, BatchNorm in train mode
(batch statistics), cross-entropy, mean over the batch.

    python3 bench/cpu_baselines.py --model lenet5 --batch 128 --steps 30

Needs jax, onnx and onnxruntime (bench/run-cpu.sh installs them into a
virtual environment under bench/.venv)."""
import argparse
import gzip
import json
import os
import time

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
MEAN, STD = 0.2860, 0.3530


def load_images(n):
    with gzip.open(DATA, "rb") as f:
        raw = f.read()
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    return ((x.astype(np.float32) / 255.0) - MEAN) / STD


# ---- the two networks as layer lists: (kind, name, attrs) ----

def lenet5():
    return [("conv", "c1", dict(cin=1, cout=6, k=5, s=1, p=2, bias=True)),
            ("bn", "b1", dict(c=6)), ("relu",), ("maxpool", 2),
            ("conv", "c3", dict(cin=6, cout=16, k=5, s=1, p=0, bias=True)),
            ("bn", "b3", dict(c=16)), ("relu",), ("maxpool", 2),
            ("flatten",),
            ("linear", "f5", dict(cin=400, cout=120)), ("relu",),
            ("linear", "f6", dict(cin=120, cout=84)), ("relu",),
            ("linear", "logits", dict(cin=84, cout=10))]


def resnet_small():
    layers = [("conv", "conv1", dict(cin=1, cout=16, k=3, s=1, p=1, bias=False)),
              ("bn", "bn1", dict(c=16)), ("relu",)]
    cin = 16
    for stage, c in enumerate([16, 32, 64]):
        for i in range(3):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(("block", f"layer{stage + 1}.{i}",
                           dict(cin=cin, c=c, s=stride)))
            cin = c
    layers += [("gap",), ("linear", "fc", dict(cin=64, cout=10))]
    return layers


MODELS = {"lenet5": lenet5, "resnet_small": resnet_small}


def init_params(layers, rng):
    """He-normal convolutions and linears, BN gamma 1 beta 0."""
    p = {}

    def conv(name, cin, cout, k, bias):
        p[name + ".weight"] = rng.normal(
            0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
        if bias:
            p[name + ".bias"] = np.zeros(cout, np.float32)

    def bn(name, c):
        p[name + ".weight"] = np.ones(c, np.float32)
        p[name + ".bias"] = np.zeros(c, np.float32)

    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            a = layer[2]
            conv(layer[1], a["cin"], a["cout"], a["k"], a["bias"])
        elif kind == "bn":
            bn(layer[1], layer[2]["c"])
        elif kind == "linear":
            a = layer[2]
            p[layer[1] + ".weight"] = rng.normal(
                0, np.sqrt(2.0 / a["cin"]), (a["cout"], a["cin"])).astype(np.float32)
            p[layer[1] + ".bias"] = np.zeros(a["cout"], np.float32)
        elif kind == "block":
            n, a = layer[1], layer[2]
            conv(n + ".conv1", a["cin"], a["c"], 3, False)
            bn(n + ".bn1", a["c"])
            conv(n + ".conv2", a["c"], a["c"], 3, False)
            bn(n + ".bn2", a["c"])
            if a["s"] != 1 or a["cin"] != a["c"]:
                conv(n + ".downsample.0", a["cin"], a["c"], 1, False)
                bn(n + ".downsample.1", a["c"])
    return p


# ---- JAX: a whole training step, jit-compiled by XLA for the CPU ----

def jax_train(layers, params, x, y, steps, lr=0.05, momentum=0.9, wd=5e-4):
    import jax
    import jax.numpy as jnp

    def conv(p, name, h, s, pad):
        out = jax.lax.conv_general_dilated(
            h, p[name + ".weight"], (s, s), [(pad, pad), (pad, pad)],
            dimension_numbers=("NCHW", "OIHW", "NCHW"))
        if name + ".bias" in p:
            out = out + p[name + ".bias"][None, :, None, None]
        return out

    def bn(p, name, h):
        mean = h.mean(axis=(0, 2, 3), keepdims=True)
        var = h.var(axis=(0, 2, 3), keepdims=True)
        h = (h - mean) * jax.lax.rsqrt(var + 1e-5)
        return h * p[name + ".weight"][None, :, None, None] + \
            p[name + ".bias"][None, :, None, None]

    def forward(p, h):
        for layer in layers:
            kind = layer[0]
            if kind == "conv":
                h = conv(p, layer[1], h, layer[2]["s"], layer[2]["p"])
            elif kind == "bn":
                h = bn(p, layer[1], h)
            elif kind == "relu":
                h = jax.nn.relu(h)
            elif kind == "maxpool":
                k = layer[1]
                h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max,
                                          (1, 1, k, k), (1, 1, k, k), "VALID")
            elif kind == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif kind == "gap":
                h = h.mean(axis=(2, 3))
            elif kind == "linear":
                h = h @ p[layer[1] + ".weight"].T + p[layer[1] + ".bias"]
            elif kind == "block":
                n, a = layer[1], layer[2]
                r = jax.nn.relu(bn(p, n + ".bn1", conv(p, n + ".conv1", h, a["s"], 1)))
                r = bn(p, n + ".bn2", conv(p, n + ".conv2", r, 1, 1))
                if n + ".downsample.0.weight" in p:
                    h = bn(p, n + ".downsample.1",
                           conv(p, n + ".downsample.0", h, a["s"], 0))
                h = jax.nn.relu(r + h)
        return h

    def loss_fn(p, xb, yb):
        logits = forward(p, xb)
        return -jnp.mean(jnp.take_along_axis(
            jax.nn.log_softmax(logits), yb[:, None], axis=1))

    @jax.jit
    def step(p, v, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        g = jax.tree_util.tree_map(lambda gi, pi: gi + wd * pi, g, p)
        v = jax.tree_util.tree_map(lambda vi, gi: momentum * vi + gi, v, g)
        p = jax.tree_util.tree_map(
            lambda pi, gi, vi: pi - lr * (gi + momentum * vi), p, g, v)
        return p, v, loss

    p = {k: jnp.asarray(val) for k, val in params.items()}
    v = jax.tree_util.tree_map(jnp.zeros_like, p)
    xb, yb = jnp.asarray(x), jnp.asarray(y)
    t0 = time.perf_counter()
    p, v, loss = step(p, v, xb, yb)
    loss.block_until_ready()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        p, v, loss = step(p, v, xb, yb)
    loss.block_until_ready()
    dt = time.perf_counter() - t0
    return dict(framework="jax " + jax.__version__, mode="train",
                img_per_s=steps * x.shape[0] / dt, compile_s=compile_s,
                final_loss=float(loss))


# ---- ONNX Runtime: inference (BatchNorm in eval mode) ----

def onnx_infer(layers, params, x, steps):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = [0]

    def fresh():
        counter[0] += 1
        return f"t{counter[0]}"

    def init(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def conv(name, h, s, pad):
        ins = [h, name + ".weight"] + ([name + ".bias"] if name + ".bias" in params else [])
        out = fresh()
        nodes.append(helper.make_node("Conv", ins, [out], strides=[s, s],
                                      pads=[pad] * 4))
        return out

    def bn(name, h):
        c = params[name + ".weight"].shape[0]
        init(name + ".running_mean", np.zeros(c, np.float32))
        init(name + ".running_var", np.ones(c, np.float32))
        out = fresh()
        nodes.append(helper.make_node(
            "BatchNormalization",
            [h, name + ".weight", name + ".bias", name + ".running_mean",
             name + ".running_var"], [out], epsilon=1e-5))
        return out

    def op(kind, ins, **attrs):
        out = fresh()
        nodes.append(helper.make_node(kind, ins, [out], **attrs))
        return out

    for name, arr in params.items():
        init(name, arr)
    h = "image"
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            h = conv(layer[1], h, layer[2]["s"], layer[2]["p"])
        elif kind == "bn":
            h = bn(layer[1], h)
        elif kind == "relu":
            h = op("Relu", [h])
        elif kind == "maxpool":
            k = layer[1]
            h = op("MaxPool", [h], kernel_shape=[k, k], strides=[k, k])
        elif kind == "flatten":
            h = op("Flatten", [h], axis=1)
        elif kind == "gap":
            h = op("Flatten", [op("GlobalAveragePool", [h])], axis=1)
        elif kind == "linear":
            n = layer[1]
            h = op("Gemm", [h, n + ".weight", n + ".bias"], transB=1)
        elif kind == "block":
            n, a = layer[1], layer[2]
            r = op("Relu", [bn(n + ".bn1", conv(n + ".conv1", h, a["s"], 1))])
            r = bn(n + ".bn2", conv(n + ".conv2", r, 1, 1))
            if n + ".downsample.0.weight" in params:
                h = bn(n + ".downsample.1", conv(n + ".downsample.0", h, a["s"], 0))
            h = op("Relu", [op("Add", [r, h])])
    graph = helper.make_graph(
        nodes, "bench",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, [x.shape[0], 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    sess.run(None, {"image": x})
    t0 = time.perf_counter()
    for _ in range(steps):
        sess.run(None, {"image": x})
    dt = time.perf_counter() - t0
    return dict(framework="onnxruntime " + ort.__version__, mode="inference",
                img_per_s=steps * x.shape[0] / dt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="lenet5")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--only", choices=["jax", "onnxruntime"])
    a = ap.parse_args()
    layers = MODELS[a.model]()
    rng = np.random.default_rng(1)
    params = init_params(layers, rng)
    x = load_images(a.batch)
    y = rng.integers(0, 10, a.batch).astype(np.int32)
    common = dict(model=a.model, batch=a.batch, steps=a.steps,
                  cpus=os.cpu_count())
    if a.only in (None, "jax"):
        print(json.dumps({**common, **jax_train(layers, params, x, y, a.steps)}),
              flush=True)
    if a.only in (None, "onnxruntime"):
        print(json.dumps({**common, **onnx_infer(layers, params, x, a.steps)}),
              flush=True)


if __name__ == "__main__":
    main()
