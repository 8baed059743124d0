"""The benchmark's account of the cells that miss a target (benchmarks/targets.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

targets = pytest.importorskip("targets")

CEILING = {"ceiling": 50.0}
FLOOR = {"float32_gflops": 100.0, "exp_ns_per_thread": 2.5, "threads": 2, "read_gb_per_s": 20.0}


def cell(structure, n, d, K, dtype, gaussmix_ms, sklearn_ms, floor_ms, **extra):
    return {"structure": structure, "n": n, "d": d, "K": K, "dtype": dtype, "gaussmix_ms": gaussmix_ms,
            "sklearn_ms": sklearn_ms, "speedup": sklearn_ms / gaussmix_ms, "floor_ms": floor_ms,
            "of_floor": gaussmix_ms / floor_ms, "sklearn_of_floor": sklearn_ms / floor_ms, **extra}


def test_each_missed_target_lists_its_cells_and_what_bounds_them():
    cells = [
        cell("full", 10_000, 128, 16, "float64", 100.0, 250.0, 40.0),  # 2.5x: listed
        cell("diag", 100_000, 8, 4, "float64", 10.0, 100.0, 2.0),  # 10x, but 5x its floor
        cell("full", 100_000, 32, 16, "float64", 50.0, 500.0, 30.0, gmmx_ms=40.0),  # gmmx ahead
        cell("full", 100_000, 32, 16, "float32", 40.0, 500.0, 15.0),  # float32 1.25x
    ]
    text = targets.shortfalls({"ceiling": CEILING, "floor": FLOOR, "cells": cells})
    below = text.split("**More than")[0]
    assert "(1 of 3 float64 cells)" in below
    assert "| full n=10,000 d=128 K=16 | 100.00 | 2.50x | 2.5 | 6.2 | 2.1 | products" in below
    assert "diag" not in below
    far = text.split("**More than")[1].split("**float32")[0]
    assert "(2 of 3 cells)" in far  # the float64 full cell is within 2x its floor (1.7x)
    assert "| float64 | diag | exponentials | 1 | 5.0 |" in far
    assert "0 of 1 compute-bound" in text and "| 1.25x |" in text
    assert "gmmx in float64 full n=100,000 d=32 K=16 (40.00 against 50.00 ms)" in text


def test_floor_parts_add_up_to_the_floor():
    from bench_em import floor_parts, floor_seconds

    parts = floor_parts(100_000, 32, 16, "full", "float64", 50.0, FLOOR)
    assert set(parts) == {"products", "exponentials", "data"}
    assert parts["products"] == pytest.approx(2 * 100_000 * 16 * 32**2 / 50e9)
    assert sum(parts.values()) == pytest.approx(floor_seconds(100_000, 32, 16, "full", "float64", 50.0, FLOOR))
