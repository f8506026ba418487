#!/usr/bin/env python3
"""Checks kiln's optimizer step (runtime/train/train_optim.c) against an
independent numpy implementation, written from the pseudo-code of the
torch.optim documentation (SGD, Adagrad, RMSprop, Adam, AdamW), in float64.

    test_optim_numpy.py PATH/TO/optim_tool

optim_tool prints, for each case, the hyperparameters, the initial weights
and, for every step, the learning rate, the gradient and the weights after
the step (floats printed exactly). This script replays the gradients and
learning rates through its own implementation and compares every step's
weights with rtol 1e-5. kiln's two extensions of PyTorch are replayed as
documented in docs/model-format.md: weight_decay_mode=decoupled for any
optimizer (theta *= 1 - lr*wd before the update, AdamW's rule) and l1
(g += l1*sign(theta), from the weights before decay).

A few deliberately wrong variants (eps inside the square root, a momentum
buffer started at zero, coupled decay for AdamW) must *disagree* with the C
trajectories: that shows the cases can tell these semantics apart.

Prints "N passed, N failed" and exits non-zero on any failure. numpy is
required (scripts/setup.sh installs it): missing, the test fails.
"""
import subprocess
import sys

from harness import report, stop, summary


try:
    import numpy as np
except ImportError as e:
    stop(f"imports: {e} (run scripts/setup.sh, which pip-installs "
         "numpy)")

RTOL = 1e-5
ATOL = 1e-7

EXPECTED_ROLES = {
    "sgd": lambda h: ["momentum"] if h["momentum"] > 0 else [],
    "adagrad": lambda h: ["sum"],
    "rmsprop": lambda h: ["square_avg"] + (["momentum"] if h["momentum"] > 0
                                           else []),
    "adam": lambda h: ["exp_avg", "exp_avg_sq"],
    "adamw": lambda h: ["exp_avg", "exp_avg_sq"],
}


def parse(text):
    """The tool's records -> list of cases (dicts)."""
    cases = []
    cur = None
    for line in text.splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "case":
            cur = {"name": tok[1], "steps": []}
            h = {}
            for kv in tok[2:]:
                k, v = kv.split("=", 1)
                h[k] = v if k in ("kind", "mode") else float(v)
            h["nesterov"] = bool(h["nesterov"])
            cur["h"] = h
        elif tok[0] == "roles":
            cur["roles"] = tok[1:]
        elif tok[0] == "p0":
            cur["p0"] = np.array([float(x) for x in tok[1:]])
        elif tok[0] == "step":
            lr = float(tok[2].split("=", 1)[1])
            gi, pi = tok.index("g"), tok.index("p")
            g = np.array([float(x) for x in tok[gi + 1:pi]])
            p = np.array([float(x) for x in tok[pi + 1:]])
            cur["steps"].append((lr, g, p))
        elif tok[0] == "end":
            cases.append(cur)
            cur = None
        else:
            raise ValueError(f"unknown record: {line}")
    return cases


class Optim:
    """torch.optim's update rules (docs pseudo-code), one tensor, float64.
    `variant` selects a deliberately wrong rule for the negative checks."""

    def __init__(self, h, n, variant=None):
        self.h = h
        self.t = 0
        self.variant = variant
        self.buf = None            # SGD / RMSprop momentum buffer
        self.state_sum = np.zeros(n)
        self.v = np.zeros(n)       # RMSprop square_avg / Adam exp_avg_sq
        self.m = np.zeros(n)       # Adam exp_avg

    def step(self, theta, g, lr):
        h = self.h
        self.t += 1
        t = self.t
        wd, kind = h["wd"], h["kind"]
        decoupled = h["mode"] == "decoupled"
        if self.variant == "adamw_coupled" and kind == "adamw":
            decoupled = False
        theta = theta.copy()
        g = g.copy()
        if h["l1"] != 0:
            g = g + h["l1"] * np.sign(theta)
        if wd != 0:
            if decoupled:
                theta = theta - lr * wd * theta   # AdamW: theta -= gamma*lambda*theta
            else:
                g = g + wd * theta                # g += lambda*theta
        if kind == "sgd":
            mu = h["momentum"]
            if mu != 0:
                if t > 1:
                    self.buf = mu * self.buf + g  # dampening 0
                elif self.variant == "buf_zero":
                    self.buf = mu * np.zeros_like(g) + g * (1 - mu)
                else:
                    self.buf = g.copy()
                g = g + mu * self.buf if h["nesterov"] else self.buf
            return theta - lr * g
        if kind == "adagrad":
            self.state_sum = self.state_sum + g * g
            return theta - lr * g / (np.sqrt(self.state_sum) + h["eps"])
        if kind == "rmsprop":
            a, mu = h["alpha"], h["momentum"]
            self.v = a * self.v + (1 - a) * g * g
            avg = np.sqrt(self.v) + h["eps"]
            if mu > 0:
                if self.buf is None:
                    self.buf = np.zeros_like(g)
                self.buf = mu * self.buf + g / avg
                return theta - lr * self.buf
            return theta - lr * g / avg
        if kind in ("adam", "adamw"):
            b1, b2 = h["beta1"], h["beta2"]
            self.m = b1 * self.m + (1 - b1) * g
            self.v = b2 * self.v + (1 - b2) * g * g
            m_hat = self.m / (1 - b1 ** t)
            v_hat = self.v / (1 - b2 ** t)
            if self.variant == "eps_inside":
                return theta - lr * m_hat / np.sqrt(v_hat + h["eps"])
            return theta - lr * m_hat / (np.sqrt(v_hat) + h["eps"])
        raise ValueError(kind)


def replay(case, variant=None):
    """Largest violation of the tolerance over all steps (<= 1: agrees),
    and the step where it happens."""
    theta = case["p0"].copy()
    opt = Optim(case["h"], len(theta), variant)
    worst, worst_step = 0.0, -1
    for k, (lr, g, p_c) in enumerate(case["steps"]):
        theta = opt.step(theta, g, lr)
        err = np.max(np.abs(p_c - theta) / (ATOL + RTOL * np.abs(theta)))
        if err > worst:
            worst, worst_step = err, k
        # Continue from kiln's weights: each step is then checked on its
        # own, and a sign flip of l1 at a weight near zero cannot cascade.
        theta = p_c.copy()
    return worst, worst_step


def main():
    if len(sys.argv) != 2:
        stop("usage: test_optim_numpy.py PATH/TO/optim_tool")
    try:
        out = subprocess.run([sys.argv[1]], capture_output=True, text=True,
                             check=True).stdout
        cases = parse(out)
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        report("optim_tool", False, str(e))
        cases = []
    report("case count", len(cases) >= 10, f"{len(cases)} cases")
    by_name = {c["name"]: c for c in cases}
    for c in cases:
        h = c["h"]
        report(f"{c['name']} steps", len(c["steps"]) == 20,
               f"{len(c['steps'])} steps")
        report(f"{c['name']} roles", c["roles"] == EXPECTED_ROLES[h["kind"]](h),
               f"{c['roles']}")
        worst, at = replay(c)
        report(f"{c['name']} trajectory", worst <= 1.0,
               f"error {worst:.3g} x tolerance at step {at}")
        # The weights actually moved (a no-op optimizer would agree with
        # nothing, but make it explicit).
        moved = np.max(np.abs(c["steps"][-1][2] - c["p0"]))
        report(f"{c['name']} moves", moved > 1e-4, f"moved {moved:.3g}")
    # Negative checks: wrong semantics must be caught.
    for name, variant in (("adam_small_grads", "eps_inside"),
                          ("sgd_momentum", "buf_zero"),
                          ("adamw", "adamw_coupled")):
        if name in by_name:
            worst, _ = replay(by_name[name], variant)
            report(f"{name} rejects {variant}", worst > 10.0,
                   f"wrong variant agrees (error {worst:.3g} x tolerance)")
        else:
            report(f"{name} present", False)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
