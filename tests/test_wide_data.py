"""Wide data: checks cost what the structure's parameters cost, and a long fit stays interruptible."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings

import numpy as np
import pytest
from conftest import MATRIX_STRUCTURES

from gaussmix import GaussianMixture


def wide(n, d, seed=0):
    rng = np.random.RandomState(seed)
    return np.vstack([rng.normal(0, 1, (n // 2, d)), rng.normal(3, 1, (n - n // 2, d))])


def peak_bytes(call):
    """Peak memory NumPy allocates during ``call()`` (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("structure", ["diag", "spherical"])
def test_axis_aligned_fit_on_10000_features_holds_no_square_matrix(structure):
    X = wide(20, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 rows in 10,000 dimensions: collapsed components are expected
        fitted = []
        peak = peak_bytes(lambda: fitted.append(GaussianMixture(2, covariance_type=structure, random_state=0).fit(X)))
    # One d x d matrix would be 800 MB; the data are 1.6 MB.
    assert peak < 64e6, peak
    assert sorted(np.bincount(fitted[0].predict(X))) == [10, 10]


@pytest.mark.parametrize("structure", MATRIX_STRUCTURES)
def test_matrix_fit_on_1000_features_holds_a_few_matrices(structure):
    X = wide(40, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = []
        peak = peak_bytes(lambda: fitted.append(GaussianMixture(2, covariance_type=structure, random_state=0).fit(X)))
    # A d x d matrix is 8 MB; the structure's parameters are 2 (full) or 1 (tied) of them.
    assert peak < 30 * 8e6, peak
    assert sorted(np.bincount(fitted[0].predict(X))) == [20, 20]


def test_model_checks_on_wide_data_use_the_structure(tmp_path):
    """Saving and loading a 10,000-feature diagonal model never expands its covariances."""
    import gaussmix

    X = wide(20, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    path = tmp_path / "wide.npz"
    peak = peak_bytes(lambda: (model.save(path), gaussmix.load(path)))
    assert peak < 64e6, peak


def test_a_long_fit_stops_at_ctrl_c():
    """SIGINT during EM on data that runs on worker threads ends the process within seconds."""
    script = textwrap.dedent(
        """
        import signal
        import sys
        import numpy as np
        from gaussmix import GaussianMixture

        # Python's own Ctrl-C handler, even when started with SIGINT ignored (a background job)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        X = np.random.RandomState(0).normal(size=(200_000, 8))
        def started(info):
            if info.iteration == 2:
                print("iterating", flush=True)
        try:
            GaussianMixture(16, max_iter=100_000, tol=0.0, random_state=0, callback=started).fit(X)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
        """
    )
    env = dict(os.environ, GAUSSMIX_NUM_THREADS="2")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline().strip() == "iterating"
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "interrupted" in out
    assert time.monotonic() - sent < 30, time.monotonic() - sent
