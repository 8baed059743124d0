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


def test_using_the_estimator_adds_nothing_beyond_scikit_learn_and_its_compiled_loops():
    """scikit-learn itself imports pandas when it is installed; gaussmix adds nothing to that but numba.

    numba is the optional ``fast`` extra: where it is installed, a fit on
    small data runs its E-steps in a compiled loop; ``GAUSSMIX_NUMBA=0``
    leaves it unused.
    """
    baseline = set(loaded_after("import sklearn.base, sklearn.utils.validation, scipy.linalg"))
    fit = (
        "import numpy as np, gaussmix\n"
        "from gaussmix.datasets import load_faithful, make_mixture\n"
        "X = load_faithful().data\n"
        "gaussmix.GaussianMixture(2, random_state=0).fit(X).predict(X)"
    )
    used = set(loaded_after(fit))
    assert used - baseline <= {"numba"}
    assert not used & {"torch", "dask", "distributed", "matplotlib", "click", "typer"}
    assert set(loaded_after("import os; os.environ['GAUSSMIX_NUMBA'] = '0'\n" + fit)) - baseline == set()
