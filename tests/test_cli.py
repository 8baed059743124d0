"""The gaussmix command: every command works, every failure is one line and a non-zero exit."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gaussmix
from gaussmix.cli import build_parser, main
from gaussmix.cli._progress import TerminalProgress
from gaussmix.datasets import load_faithful

ROOT = Path(__file__).parents[1]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def faithful_csv(tmp_path):
    path = tmp_path / "faithful.csv"
    X = load_faithful().data
    rows = ["id,eruptions,waiting,site"] + [f"{i},{e},{w},yellowstone" for i, (e, w) in enumerate(X)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def model_file(tmp_path, faithful_csv, capsys):
    path = tmp_path / "model.npz"
    code, _, _ = run(capsys, "fit", faithful_csv, "--columns", "eruptions", "waiting", "-k", "3",
                     "--covariance", "tied", "--n-init", "3", "--seed", "0", "-o", path)
    assert code == 0
    return path


def test_fit_prints_a_summary_and_writes_the_model(capsys, faithful_csv, tmp_path):
    path = tmp_path / "m.npz"
    code, out, err = run(capsys, "fit", faithful_csv, "--columns", "eruptions", "waiting", "-k", "3",
                         "--covariance", "tied", "--n-init", "10", "--tol", "1e-6", "--seed", "0", "-o", path)
    assert code == 0 and err == ""
    model = gaussmix.load(path)
    X = load_faithful().data
    # the command line's default start is emem (short-EM starts refined by split-and-merge moves and random swaps)
    expected = gaussmix.GaussianMixture(3, covariance_type="tied", init_params="emem", n_init=10, tol=1e-6,
                                        random_state=0).fit(X)
    np.testing.assert_allclose(model.means_, expected.means_)
    np.testing.assert_array_equal(model.feature_names_in_, ["eruptions", "waiting"])
    for text in ("fitted 3 components (tied covariance) to 272 rows x 2 features",
                 "best of 10 short-EM starts, refined by split-and-merge moves and random swaps",
                 f"BIC {expected.bic(X):.4f}", f"AIC {expected.aic(X):.4f}", "log-likelihood -1126.3",
                 "converged after", f"{expected.weights_[0]:6.3f}", "model written to"):
        assert text in out, text


def test_predict_score_sample_plot(capsys, model_file, faithful_csv, tmp_path):
    model = gaussmix.load(model_file)
    X = load_faithful(as_frame=True).data  # named columns, like the model
    # predict picks the model's columns by name, ignoring the id and text columns
    out_csv = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", model_file, faithful_csv, "-o", out_csv)
    assert code == 0 and "272 rows written" in err
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "label,uncertainty,log_density,prob_0,prob_1,prob_2"
    table = np.loadtxt(out_csv, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], model.predict(X))
    np.testing.assert_allclose(table[:, 1], 1.0 - model.predict_proba(X).max(axis=1), rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(table[:, 2], model.score_samples(X), rtol=1e-15)
    np.testing.assert_allclose(table[:, 3:], model.predict_proba(X), rtol=1e-15)
    # to standard output when -o is missing
    code, out, _ = run(capsys, "predict", model_file, faithful_csv)
    assert code == 0 and out.splitlines() == lines

    code, out, _ = run(capsys, "score", model_file, faithful_csv)
    assert code == 0
    assert f"log-likelihood        {model.score_samples(X).sum():.6f}" in out
    assert f"BIC                   {model.bic(X):.6f}" in out

    code, out, _ = run(capsys, "sample", model_file, 50, "--seed", "3")
    assert code == 0
    rows = out.splitlines()
    assert rows[0] == "eruptions,waiting,component" and len(rows) == 51

    for kind in ("density", "ellipses", "anomalies"):
        figure = tmp_path / f"{kind}.png"
        code, _, err = run(capsys, "plot", model_file, faithful_csv, "--kind", kind, "-o", figure)
        assert code == 0 and figure.read_bytes()[:4] == b"\x89PNG", err


@pytest.mark.parametrize("suffix", [".parquet", ".npy", ".tsv"])
def test_other_formats(capsys, tmp_path, suffix):
    X = load_faithful().data
    source = tmp_path / f"data{suffix}"
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"eruptions": X[:, 0], "waiting": X[:, 1]}), source)
    elif suffix == ".npy":
        np.save(source, X)
    else:
        source.write_text("eruptions\twaiting\n" + "\n".join(f"{a}\t{b}" for a, b in X) + "\n")
    model = tmp_path / "m.npz"
    assert run(capsys, "fit", source, "-k", "2", "--seed", "0", "-q", "-o", model) == (0, "", "")
    output = tmp_path / f"pred{suffix}"
    assert run(capsys, "predict", model, source, "-o", output)[0] == 0
    expected = gaussmix.GaussianMixture(2, init_params="emem", n_init=3, random_state=0).fit(X).predict(X)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        labels = pq.read_table(output).column("label").to_numpy()
    elif suffix == ".npy":
        labels = np.load(output)[:, 0]
    else:
        labels = np.loadtxt(output, delimiter="\t", skiprows=1)[:, 0]
    np.testing.assert_array_equal(labels, expected)


def failure(capsys, *argv, code=1):
    status, out, err = run(capsys, *argv)
    assert status == code, (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_data_file_failures(capsys, tmp_path, model_file):
    def write(name, text):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    out = tmp_path / "m.npz"
    cases = {
        tmp_path / "absent.csv": "no such file",
        write("empty.csv", ""): "empty file",
        write("blank.csv", "\n\n  \n"): "empty file",
        write("header.csv", "a,b\n"): "header but no data rows",
        write("ragged.csv", "a,b\n1,2\n3\n"): "line 3 has 1 field, expected 2",
        write("text.csv", "a,b\n1,2\n3,abc\n"): "non-numeric value 'abc' in column 'b' at line 3",
        write("nan.csv", "a,b\n1,2\nnan,3\n"): "non-finite value 'nan' in column 'a' at line 3",
        write("inf.csv", "a,b\n1,2\n4,-inf\n"): "non-finite value '-inf' in column 'b' at line 3",
        write("na.csv", "a,b\n1,2\n,3\n"): "missing value in column 'a' at line 3",
        write("data.xlsx", "x"): "unsupported file type '.xlsx'",
        write("bad.parquet", "not parquet"): "not a readable Parquet file",
        write("bad.npy", "not npy"): "not a readable .npy file|not a numeric .npy",
        tmp_path: "is a directory",
    }
    for path, message in cases.items():
        line = failure(capsys, "fit", path, "-o", out)
        assert any(m in line for m in message.split("|")), (path, line)
    line = failure(capsys, "fit", write("ok.csv", "a,b\n1,2\n3,4\n5,7\n"), "--columns", "a", "zz", "-o", out)
    assert "no column 'zz' (columns: a, b)" in line
    assert not out.exists()


def test_model_file_failures(capsys, tmp_path, model_file, faithful_csv):
    (tmp_path / "junk.npz").write_text("not a model")
    (tmp_path / "cut.npz").write_bytes(model_file.read_bytes()[:200])
    assert "not a zip archive" in failure(capsys, "predict", tmp_path / "junk.npz", faithful_csv)
    assert "damaged or truncated" in failure(capsys, "score", tmp_path / "cut.npz", faithful_csv)
    assert "no such file" in failure(capsys, "sample", tmp_path / "none.npz", "3")
    three = tmp_path / "three.csv"
    three.write_text("a,b,c\n1,2,3\n4,5,6\n")
    assert "no column 'eruptions', which the model needs" in failure(capsys, "predict", model_file, three)
    assert "2 features" in failure(capsys, "predict", model_file, three, "--columns", "a")
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("1,2,3\n4,5,6\n")
    assert "3 columns selected, but the model was fitted on 2 features" in failure(
        capsys, "predict", model_file, unnamed)
    assert "unsupported figure type 'xyz'" in failure(
        capsys, "plot", model_file, faithful_csv, "-o", tmp_path / "f.xyz")


def test_fit_failures(capsys, tmp_path, faithful_csv):
    assert "n_samples >= n_components" in failure(
        capsys, "fit", faithful_csv, "--columns", "waiting", "-k", "300", "-o", tmp_path / "m.npz")
    assert "does not exist" in failure(capsys, "fit", faithful_csv, "--columns", "waiting", "-o",
                                       tmp_path / "no" / "m.npz")


def test_usage_errors_are_one_line(capsys):
    for argv in (["fit"], ["fit", "x.csv"], ["nope"], ["fit", "x.csv", "-o", "m", "-k", "0"],
                 ["fit", "x.csv", "-o", "m", "--covariance", "weird"], ["sample", "m.npz", "-1"], []):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--help" in err


def test_convergence_warning_is_one_line(capsys, faithful_csv, tmp_path):
    code, out, err = run(capsys, "fit", faithful_csv, "--columns", "eruptions", "waiting", "-k", "3",
                         "--max-iter", "1", "-o", tmp_path / "m.npz")
    assert code == 0
    assert err.startswith("gaussmix: warning: Best performing initialization did not converge")
    assert len(err.strip().splitlines()) == 1


def test_internal_errors_are_one_line(capsys, monkeypatch, faithful_csv, tmp_path):
    def explode(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("gaussmix.cli._commands.read_table", explode)
    line = failure(capsys, "fit", faithful_csv, "-o", tmp_path / "m.npz", code=3)
    assert line == ("gaussmix fit: internal error (RuntimeError: boom second line); "
                    "set GAUSSMIX_DEBUG=1 for details")


def test_real_process_exit_codes_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    result = subprocess.run([sys.executable, "-m", "gaussmix", "fit", str(bad), "-o", str(tmp_path / "m.npz")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == f"gaussmix fit: error: {bad}: non-numeric value 'x' in column 'b' at line 2\n"
    result = subprocess.run([sys.executable, "-m", "gaussmix", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"gaussmix {gaussmix.__version__}"


def test_progress_display_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    history = []
    progress = TerminalProgress(n_init=2, max_iter=100, stream=screen, rate=1e9)
    gaussmix.GaussianMixture(2, n_init=2, random_state=0,
                             callback=lambda info: (history.append(info), progress(info))).fit(load_faithful().data)
    progress.close()
    text = screen.getvalue()
    assert "\rfitting: start 1/2  iteration 0/100" in text and "start 2/2" in text
    assert f"iteration {history[-1].iteration}/100  log-likelihood/row" in text
    assert text.endswith("\r") and "\n" not in text

    pipe = io.StringIO()
    silent = TerminalProgress(n_init=1, max_iter=100, stream=pipe)
    silent(history[-1])
    silent.close()
    assert pipe.getvalue() == ""


def test_quiet_fit_prints_nothing(capsys, faithful_csv, tmp_path):
    assert run(capsys, "fit", faithful_csv, "--columns", "waiting", "-q", "-o", tmp_path / "m.npz") == (0, "", "")


def test_every_command_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if getattr(a, "choices", None))
    assert set(subparsers.choices) == {"demo", "fit", "predict", "score", "sample", "plot", "report"}
    helps = {a.dest: a.help for a in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        assert helps[name] and sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.dest} has no help"
        assert f"gaussmix {name}" in readme, f"gaussmix {name} is not in the README"
        assert sub.format_help()


def test_demo_writes_figures_and_summary(capsys, tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = run(capsys, "demo", "--out", out)
    assert code == 0
    for name in ("density_contours.png", "bic.png", "ellipses.png", "em_progress.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    summary = (out / "summary.txt").read_text()
    assert summary in stdout and str(out) in stdout
    assert "Lowest BIC: 3 components, full covariance." in summary
    # the saved model and data work with the other commands
    assert run(capsys, "score", out / "model.npz", out / "data.csv")[0] == 0


def test_fit_with_selection(capsys, faithful_csv, tmp_path):
    path = tmp_path / "m.npz"
    code, out, err = run(capsys, "fit", faithful_csv, "--columns", "eruptions", "waiting", "--select", "1-4",
                         "--n-init", "3", "--seed", "0", "-o", path)
    assert code == 0
    assert out.startswith("best of 56 candidates by BIC (0 could not be fitted):")  # mclust's fourteen models
    lines = out.splitlines()
    assert lines[2].split() == ["3", "EEE", lines[2].split()[2]]
    model = gaussmix.load(path)
    assert (model.n_components, model.covariance_type) == (3, "EEE")
    code, out, _ = run(capsys, "fit", faithful_csv, "--columns", "waiting", "--select", "1,2", "--structures",
                       "diag", "--criterion", "icl", "--seed", "0", "-o", path)
    assert code == 0 and "by ICL" in out and "diag" in out
    code, out, _ = run(capsys, "fit", faithful_csv, "--columns", "waiting", "--select", "1,2", "--seed", "0",
                       "-o", path)  # one column: mclust's E and V
    assert code == 0 and "best of 4 candidates" in out and gaussmix.load(path).covariance_type in ("E", "V")
    code, out, _ = run(capsys, "fit", faithful_csv, "--columns", "eruptions", "waiting", "--select", "2,3",
                       "--structures", "VEV", "EVE", "--seed", "0",
                       "-o", path)
    assert code == 0 and gaussmix.load(path).covariance_type in ("VEV", "EVE")
    assert "not both" in failure(capsys, "fit", faithful_csv, "--select", "1-3", "-k", "2", "-o", path, code=2)
    assert "need --select" in failure(capsys, "fit", faithful_csv, "--criterion", "aic", "-o", path, code=2)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(faithful_csv), "--select", "3-1", "-o", str(path)])
    assert exit_info.value.code == 2 and "expected component counts like 1-9" in capsys.readouterr().err


def test_report_command(capsys, faithful_csv, tmp_path):
    path = tmp_path / "r.html"
    code, out, _ = run(capsys, "report", faithful_csv, "--columns", "eruptions", "waiting", "--select", "2-3",
                       "--structures", "tied", "full", "-o", path)
    assert code == 0 and out.startswith("chose 3 components with tied covariance by BIC")
    assert path.read_text().startswith("<!doctype html>")
    assert "ending in .html" in failure(capsys, "report", faithful_csv, "-o", tmp_path / "r.pdf", code=2)


def test_the_parser_offers_every_registered_structure():
    from gaussmix.cli import _structures
    from gaussmix.covariance import available_structures, structure_aliases

    assert _structures() == [*available_structures(), *structure_aliases()]
    assert {"VVV", "EEE", "VVI", "VII", "VEV", "EII"} <= set(_structures())  # mclust's names too
