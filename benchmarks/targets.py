"""The cells of a ``bench_em.py`` run that miss a target, each with what bounds it.

    python benchmarks/targets.py benchmarks/results/latest.json

For every cell it prints what the machine's floor of the cell is made of
(the products at the ceiling, the exponentials, one read of the data: the
largest part names what bounds the cell) and, for a speed-up under 3x, the
multiple of the floor gaussmix would have to reach for 3x: scikit-learn's own
multiple divided by three. A cell where scikit-learn already runs within 6x
of the floor cannot reach 3x without gaussmix within 2x of it.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_em import floor_parts

SPEEDUP_TARGET = 3.0
FLOOR_TARGET = 2.0
FLOAT32_TARGET = 1.7


def _name(cell) -> str:
    return f"{cell['structure']} n={cell['n']:,} d={cell['d']} K={cell['K']}"


def bound(cell, ceiling, floor) -> str:
    """The largest part of the cell's floor, with its share: "products 71%"."""
    dtype = np.float32 if cell["dtype"] == "float32" else np.float64
    parts = floor_parts(cell["n"], cell["d"], cell["K"], cell["structure"], dtype, ceiling, floor)
    name = max(parts, key=parts.get)
    return f"{name} {parts[name] / sum(parts.values()):.0%}"


def shortfalls(result: dict) -> str:
    """Markdown: the cells that miss each per-cell target of the run ``result`` (a results JSON)."""
    ceiling, floor, cells = result["ceiling"]["ceiling"], result["floor"], result["cells"]
    f64 = [c for c in cells if c["dtype"] == "float64"]
    out = []

    slow = sorted((c for c in f64 if c["speedup"] < SPEEDUP_TARGET), key=lambda c: c["speedup"])
    out += [f"**Below {SPEEDUP_TARGET:g}x scikit-learn's speed** ({len(slow)} of {len(f64)} float64 cells). "
            f"\"{SPEEDUP_TARGET:g}x needs\" is the multiple of the floor gaussmix would have to reach: "
            "scikit-learn's own divided by three.", "",
            "| cell | gaussmix ms | speed-up | x floor | scikit-learn x floor | 3x needs | floor is mostly |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for c in slow:
        out.append(f"| {_name(c)} | {c['gaussmix_ms']:.2f} | {c['speedup']:.2f}x | {c['of_floor']:.1f} | "
                   f"{c['sklearn_of_floor']:.1f} | {c['sklearn_of_floor'] / SPEEDUP_TARGET:.1f} | "
                   f"{bound(c, ceiling, floor)} |")

    large = [c for c in cells if c["n"] >= 100_000 and c.get("of_floor") is not None]
    far = [c for c in large if c["of_floor"] > FLOOR_TARGET]
    groups = defaultdict(list)
    for c in far:
        groups[(c["dtype"], c["structure"], bound(c, ceiling, floor).split()[0])].append(c)
    out += ["", f"**More than {FLOOR_TARGET:g}x the floor at n >= 1e5** ({len(far)} of {len(large)} cells), by "
            "dtype, structure and the largest part of the floor:", "",
            "| dtype | structure | floor is mostly | cells | x floor: median | largest (cell) | "
            "scikit-learn x floor: median |", "|---|---|---|---:|---:|---|---:|"]
    for (dtype, structure, part), members in sorted(groups.items()):
        worst = max(members, key=lambda c: c["of_floor"])
        out.append(f"| {dtype} | {structure} | {part} | {len(members)} | "
                   f"{statistics.median(c['of_floor'] for c in members):.1f} | {worst['of_floor']:.1f} "
                   f"({_name(worst)}) | {statistics.median(c['sklearn_of_floor'] for c in members):.1f} |")

    f32 = {(c["n"], c["d"], c["K"], c["structure"]): c for c in cells if c["dtype"] == "float32"}
    pairs = [(a, f32[key]) for a in f64 if (key := (a["n"], a["d"], a["K"], a["structure"])) in f32
             and a["structure"] in ("full", "tied") and a["K"] * a["d"] >= 256 and not f32[key].get("float64_moments")]
    if pairs:
        out += _float32_groups(pairs, ceiling, floor)
    ran = [c for c in cells for peer in ("gmmx", "pomegranate") if c.get(f"{peer}_ms") is not None]
    behind = [(peer, c) for c in cells for peer in ("gmmx", "pomegranate")
              if c.get(f"{peer}_ms") is not None and c[f"{peer}_ms"] <= c["gaussmix_ms"]]
    if ran:
        out += ["", "**Peers ahead**: " + ("none" if not behind else ", ".join(
            f"{peer} in {c['dtype']} {_name(c)} ({c[f'{peer}_ms']:.2f} against {c['gaussmix_ms']:.2f} ms)"
            for peer, c in behind)) + "."]
    return "\n".join(out) + "\n"


def _float32_groups(pairs, ceiling, floor) -> list[str]:
    """Markdown lines: float32's gain over float64 on the ``pairs`` of cells, grouped."""
    gains = [(a["gaussmix_ms"] / b["gaussmix_ms"], a, b) for a, b in pairs]
    groups = defaultdict(list)
    for gain, a, b in gains:
        groups[(a["structure"], bound(a, ceiling, floor).split()[0], a["n"] >= 100_000 and a["d"] >= 32)].append(
            (gain, a))
    out = ["", f"**float32 over float64** ({sum(g >= FLOAT32_TARGET for g, _, _ in gains)} of {len(pairs)} "
            f"compute-bound full and tied cells computed in float32 at {FLOAT32_TARGET:g}x or more), by structure, "
            "the largest part of the float64 floor, and whether n >= 1e5 with d >= 32:", "",
            "| structure | float64 floor is mostly | n >= 1e5, d >= 32 | cells | gain: median | smallest (cell) | "
            f"at >= {FLOAT32_TARGET:g}x |", "|---|---|---|---:|---:|---|---:|"]
    for (structure, part, large_cell), members in sorted(groups.items()):
        gain, worst = min(members, key=lambda t: t[0])
        out.append(f"| {structure} | {part} | {'yes' if large_cell else 'no'} | {len(members)} | "
                   f"{statistics.median(g for g, _ in members):.2f}x | {gain:.2f}x ({_name(worst)}) | "
                   f"{sum(g >= FLOAT32_TARGET for g, _ in members)} |")
    return out


if __name__ == "__main__":
    print(shortfalls(json.loads(Path(sys.argv[1]).read_text())))
