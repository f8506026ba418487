#!/usr/bin/env python3
"""Checks kiln's learning-curve SVG (runtime/train/train_curve.c) with an
independent reader: Python's xml.etree.

    test_curve_svg.py PATH/TO/train_tool

train_tool curve writes the SVG of points given here. The checks: the file
is well-formed SVG of the documented size with the model name as title and
a legend; each of the two panels (loss, accuracy) holds one train and one
validation polyline with one vertex per point; its tick labels lie on
1, 2 or 5 x 10^k steps and on a linear pixel scale; and through that
scale, read from the tick labels alone, every vertex (and the test
marker) maps back to its data point within 1 px.

Prints "N passed, N failed" and exits non-zero on any failure.
"""
import math
import os
import subprocess
import sys
import tempfile
import traceback
import xml.etree.ElementTree as ET

from harness import report, stop, summary

SVG = "{http://www.w3.org/2000/svg}"


def points():
    """A run of 3 epochs of 100 steps: train points every 10 steps, one
    validation point per epoch, the test point at the end."""
    train = [(s, 2.3 * math.exp(-s / 90) + 0.25, 100 - 88 * math.exp(-s / 70))
             for s in [1] + list(range(10, 301, 10))]
    val = [(s, 2.3 * math.exp(-s / 90) + 0.35, 97 - 88 * math.exp(-s / 70))
           for s in (100, 200, 300)]
    test = (300, 0.47, 91.5)
    return train, val, test


def write_svg(tool, path, train, val, test):
    lines = ["title mlp"]
    lines += [f"train {s} {l!r} {a!r}" for s, l, a in train]
    lines += [f"val {s} {l!r} {a!r}" for s, l, a in val]
    lines.append(f"test {test[0]} {test[1]!r} {test[2]!r}")
    r = subprocess.run([tool, "curve", path], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"train_tool curve failed: {r.stderr}")


def is_nice(step):
    """step = 1, 2 or 5 x 10^k."""
    k = math.floor(math.log10(step))
    m = step / 10 ** k
    return any(abs(m - n) < 1e-9 for n in (1, 2, 5, 10))


def scale(panel, kind, attr):
    """The linear map value -> pixel that the panel's tick marks define:
    (value, pixel) pairs from each <g class=kind>'s label and line."""
    ticks = []
    for g in panel.iter(SVG + "g"):
        if g.get("class") != kind:
            continue
        line, text = g.find(SVG + "line"), g.find(SVG + "text")
        ticks.append((float(text.text), float(line.get(attr))))
    ticks.sort()
    name = f"{panel.get('id')} {kind}"
    report(f"{name}: 3 to 7 ticks", 3 <= len(ticks) <= 7, f"{len(ticks)}")
    steps = [b[0] - a[0] for a, b in zip(ticks, ticks[1:])]
    report(f"{name}: evenly spaced nice steps",
           steps and all(abs(s - steps[0]) < 1e-9 * max(1, steps[0])
                         for s in steps) and is_nice(steps[0]), f"{steps}")
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    k = (p1 - p0) / (v1 - v0)
    off = [abs(p0 + (v - v0) * k - p) for v, p in ticks]
    report(f"{name}: ticks on a linear scale", max(off) < 0.02, f"{off}")
    return lambda v: p0 + (v - v0) * k


def vertices(polyline):
    return [tuple(float(c) for c in pair.split(","))
            for pair in polyline.get("points").split()]


def check_panel(panel, col, train, val, test):
    name = panel.get("id")
    lines = {}
    for pl in panel.iter(SVG + "polyline"):
        lines.setdefault(pl.get("class"), []).append(pl)
    report(f"{name}: two polylines, train and val",
           sorted(lines) == ["train", "val"] and
           all(len(v) == 1 for v in lines.values()), f"{sorted(lines)}")
    fx, fy = scale(panel, "xtick", "x1"), scale(panel, "ytick", "y1")
    rect = panel.find(SVG + "rect")
    x0, y0 = float(rect.get("x")), float(rect.get("y"))
    x1, y1 = x0 + float(rect.get("width")), y0 + float(rect.get("height"))
    for cls, data in (("train", train), ("val", val)):
        got = vertices(lines[cls][0])
        report(f"{name} {cls}: one vertex per point", len(got) == len(data),
               f"{len(got)} vs {len(data)}")
        err = max(max(abs(fx(d[0]) - px), abs(fy(d[col]) - py))
                  for d, (px, py) in zip(data, got))
        report(f"{name} {cls}: vertices map back to the data within 1 px",
               err <= 1.0, f"worst {err:.3f} px")
        ends = [got[0], got[-1]]
        report(f"{name} {cls}: first and last point within 1 px",
               all(abs(fx(d[0]) - px) <= 1 and abs(fy(d[col]) - py) <= 1
                   for d, (px, py) in zip([data[0], data[-1]], ends)))
        report(f"{name} {cls}: inside the plot area",
               all(x0 - 0.01 <= px <= x1 + 0.01 and y0 - 0.01 <= py <= y1 + 0.01
                   for px, py in got))
    marks = [c for c in panel.iter(SVG + "circle") if c.get("class") == "test"]
    report(f"{name}: one test marker", len(marks) == 1)
    if marks:
        cx, cy = float(marks[0].get("cx")), float(marks[0].get("cy"))
        report(f"{name}: test marker at the test point",
               abs(cx - fx(test[0])) <= 1 and abs(cy - fy(test[col])) <= 1,
               f"({cx}, {cy})")


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        stop("usage: test_curve_svg.py PATH/TO/train_tool (built by cmake)")
    tool = sys.argv[1]
    train, val, test = points()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "curve.svg")
        write_svg(tool, path, train, val, test)
        report("no temporary file left", os.listdir(tmp) == ["curve.svg"],
               f"{os.listdir(tmp)}")
        root = ET.parse(path).getroot()  # raises on malformed XML
    report("root is <svg> in the SVG namespace", root.tag == SVG + "svg",
           root.tag)
    report("size 960 x 420",
           (root.get("width"), root.get("height")) == ("960", "420"))
    titles = [t for t in root.iter(SVG + "text") if t.get("class") == "title"]
    report("title is the model name",
           len(titles) == 1 and titles[0].text == "mlp")
    legend = [g for g in root.iter(SVG + "g") if g.get("class") == "legend"]
    report("legend names the three series",
           len(legend) == 1 and [t.text for t in legend[0].iter(SVG + "text")]
           == ["train", "validation", "test"])
    panels = [g for g in root.iter(SVG + "g") if g.get("class") == "panel"]
    report("two panels: loss, accuracy",
           [p.get("id") for p in panels] == ["loss", "accuracy"])
    labels = [t.text for t in root.iter(SVG + "text")
              if t.get("class") == "ylabel"]
    report("axis labels", labels == ["loss", "accuracy (%)"], f"{labels}")
    for panel, col in zip(panels, (1, 2)):
        check_panel(panel, col, train, val, test)
    # The accuracy panel sits to the right of the loss panel.
    xs = [float(p.find(SVG + "rect").get("x")) for p in panels]
    report("panels side by side", len(xs) == 2 and xs[1] >= xs[0] + 400,
           f"{xs}")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        report("no exception", False, traceback.format_exc())
    sys.exit(summary())
