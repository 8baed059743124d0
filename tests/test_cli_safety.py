"""The command line never loses data: no writing over inputs or non-regular files; absurd requests refused."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gaussmix
from gaussmix.cli import main
from gaussmix.datasets import load_faithful


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv, code=1):
    status, out, err = run(capsys, *argv)
    assert status == code, (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "f.csv"
    X = load_faithful().data
    path.write_text("eruptions,waiting\n" + "\n".join(f"{e},{w}" for e, w in X) + "\n")
    return path


@pytest.fixture
def model(tmp_path, data, capsys):
    path = tmp_path / "m.npz"
    assert run(capsys, "fit", data, "-k", "2", "--seed", "5", "-q", "-o", path)[0] == 0
    return path


def test_an_output_that_is_an_input_is_refused(capsys, tmp_path, data, model):
    before_data, before_model = data.read_bytes(), model.read_bytes()
    cases = [
        ("fit", data, "-k", "2", "-o", data),
        ("fit", data, "-k", "2", "-o", tmp_path / "." / "f.csv"),  # the same file by another name
        ("predict", model, data, "-o", data),
        ("predict", model, data, "-o", model),
        ("sample", model, "5", "-o", model),
        ("plot", model, data, "-o", data),
        ("report", data, "--select", "1-2", "-q", "-o", data.with_suffix(".html")),
    ]
    os.symlink(data, data.with_suffix(".html"))
    for argv in cases:
        line = refused(capsys, *argv)
        assert "would overwrite the input" in line, (argv, line)
    assert data.read_bytes() == before_data and model.read_bytes() == before_model


def test_only_regular_files_or_new_paths_are_written(capsys, tmp_path, data, model):
    fifo = tmp_path / "n"
    os.mkfifo(fifo)
    for argv in [("fit", data, "-k", "2", "-o", fifo), ("predict", model, data, "-o", fifo),
                 ("sample", model, "3", "-o", fifo), ("plot", model, data, "-o", fifo)]:
        assert "is a FIFO (named pipe)" in refused(capsys, *argv), argv
    assert fifo.is_fifo()
    assert "is a character device" in refused(capsys, "fit", data, "-k", "2", "-o", "/dev/null")
    assert "is a directory" in refused(capsys, "predict", model, data, "-o", tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["f.csv", "m.npz", "n"]  # nothing half-written left behind


def test_absurd_requests_are_refused_before_any_work(capsys, tmp_path, data, model):
    line = refused(capsys, "fit", data, "--select", "1-1000000000", "-o", tmp_path / "x.npz", code=2)
    assert "more than 10,000 component counts" in line
    assert "at most 100,000,000" in refused(capsys, "sample", model, "1000000000000", code=2)
    assert "more than 100,000,000 values" in refused(capsys, "sample", model, "60000000", code=2)
    assert "at most 1,200" in refused(capsys, "plot", model, data, "--dpi", "100000", "-o", tmp_path / "p.png",
                                      code=2)
    assert "expected a finite number, got 'nan'" in refused(
        capsys, "plot", model, data, "--kind", "anomalies", "--threshold", "nan", "-o", tmp_path / "p.png", code=2)
    assert "expected a finite number" in refused(capsys, "fit", data, "--tol", "inf", "-o", tmp_path / "x.npz",
                                                 code=2)
    assert "seed from 0 to 2**32 - 1" in refused(capsys, "fit", data, "--seed", "-1", "-o", tmp_path / "x.npz",
                                                 code=2)
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "p.png").exists()


def test_device_errors_are_one_line(capsys, tmp_path, data):
    pytest.importorskip("torch")
    line = refused(capsys, "fit", data, "--device", "cuda:99", "-o", tmp_path / "x.npz")
    assert "device 'cuda:99' cannot be used here" in line and "=" not in line.split("error:")[1]
    line = refused(capsys, "fit", data, "--engine", "numpy", "--device", "cpu", "-o", tmp_path / "x.npz", code=2)
    assert "--device applies to the torch engine only, not --engine numpy" in line
    assert "'auto'" not in line and "device=None" not in line
    assert run(capsys, "fit", data, "--device", "cpu", "-q", "-o", tmp_path / "x.npz")[0] == 0  # torch on the CPU


def test_a_closed_pipe_ends_quietly(tmp_path, data, model):
    big = tmp_path / "big.csv"
    rows = np.tile(load_faithful().data, (200, 1))
    big.write_text("eruptions,waiting\n" + "\n".join(f"{e},{w}" for e, w in rows) + "\n")
    process = subprocess.Popen([sys.executable, "-m", "gaussmix", "predict", str(model), str(big)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    assert first.startswith(b"label,uncertainty")
    assert err == "" and process.returncode == 141


def test_sample_uses_the_models_seed(capsys, model):
    first = run(capsys, "sample", model, "20")[1]
    again = run(capsys, "sample", model, "20")[1]
    other = run(capsys, "sample", model, "20", "--seed", "6")[1]
    assert first == again != other
    X, _ = gaussmix.load(model).set_params(random_state=5).sample(20)
    assert first.splitlines()[1].split(",")[:2] == [repr(float(v)) for v in X[0]]


def test_select_says_why_candidates_were_not_fitted(capsys, tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("a,b\n" + "\n".join(f"{i % 3},{(i * 7) % 5}" for i in range(6)) + "\n")
    code, out, err = run(capsys, "fit", path, "--select", "1-8", "--structures", "diag", "--seed", "0",
                         "-o", tmp_path / "m.npz")
    assert code == 0
    assert "could not be fitted):" in out and "degenerate fit: component" in out
    assert "not fitted (7 diag, 8 diag): Expected n_samples >= n_components: more components than the 6 rows" in out
