"""Optional and heavy libraries are imported only when used."""

import json
import subprocess
import sys

OPTIONAL = ("torch", "dask", "distributed", "matplotlib", "pandas", "click", "typer", "sklearn", "scipy", "numba")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in {OPTIONAL!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_gaussmix_loads_nothing_heavy():
    assert loaded_after("import gaussmix") == []


def test_cli_help_loads_nothing_heavy():
    assert loaded_after("from gaussmix.cli import build_parser; build_parser()") == []


def test_using_the_estimator_adds_nothing_beyond_scikit_learn():
    """scikit-learn itself imports pandas when it is installed; gaussmix adds nothing to that."""
    baseline = set(loaded_after("import sklearn.base, sklearn.utils.validation, scipy.linalg"))
    used = set(loaded_after(
        "import numpy as np, gaussmix\n"
        "from gaussmix.datasets import load_faithful, make_mixture\n"
        "X = load_faithful().data\n"
        "gaussmix.GaussianMixture(2, random_state=0).fit(X).predict(X)"
    ))
    assert used - baseline == set()
    assert not used & {"torch", "dask", "distributed", "matplotlib", "click", "typer", "numba"}
