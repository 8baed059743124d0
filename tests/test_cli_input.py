"""Reading data files as users write them: headers, delimiters, compression, standard input, row names."""

import gzip
import io
import subprocess
import sys

import numpy as np
import pytest

import gaussmix
from gaussmix.cli import main
from gaussmix.cli._io import DataError, ReadOptions, read_table
from gaussmix.datasets import load_faithful

X = load_faithful().data


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def lines(header, rows, delimiter=","):
    body = "\n".join(delimiter.join(str(v) for v in row) for row in rows)
    return (header + "\n" if header else "") + body + "\n"


def test_duplicate_column_names_fit_and_predict(capsys, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(lines("a,a", X))
    code, _, err = run(capsys, "fit", path, "-k", "2", "--seed", "0", "-o", tmp_path / "m.npz")
    assert code == 0 and "more than one column is named 'a'" in err
    assert not hasattr(gaussmix.load(tmp_path / "m.npz"), "feature_names_in_")
    code, out, err = run(capsys, "predict", tmp_path / "m.npz", path)
    assert code == 0 and "selected twice" not in err and len(out.splitlines()) == len(X) + 1
    code, _, err = run(capsys, "fit", path, "--columns", "a", "-o", tmp_path / "m2.npz")
    assert code == 1 and "2 columns are named 'a'" in err and "by 0-based index" in err


def test_a_numeric_header_is_detected_or_declared(capsys, tmp_path):
    path = tmp_path / "years.csv"
    path.write_text(lines("2001,2002", X))
    code, _, err = run(capsys, "fit", path, "-k", "2", "--seed", "0", "-o", tmp_path / "m.npz")
    assert code == 0 and "the first line (2001,2002) is read as data, not as column names" in err
    assert "pass --header" in err
    code, out, err = run(capsys, "fit", path, "-k", "2", "--seed", "0", "--header", "-o", tmp_path / "m.npz")
    assert code == 0 and err == "" and f"to {len(X)} rows" in out
    np.testing.assert_array_equal(gaussmix.load(tmp_path / "m.npz").feature_names_in_, ["2001", "2002"])
    named = tmp_path / "named.csv"
    named.write_text(lines("eruptions,waiting", X))
    code, out, _ = run(capsys, "fit", named, "-k", "2", "--no-header", "-o", tmp_path / "m.npz")
    assert code == 1 and "non-numeric value 'eruptions' in column 'x0' at line 1" in _


@pytest.mark.parametrize("cell", ["1_000", "0x10", "1,5", "1e", "--1"])
def test_numbers_follow_csv_conventions(tmp_path, cell):
    path = tmp_path / "c.csv"
    path.write_text(f"a;b\n1;2\n{cell};4\n3;3\n")
    with pytest.raises(DataError, match=f"non-numeric value '{cell}' in column 'a' at line 3"):
        read_table(str(path), options=ReadOptions(delimiter=";"))


def test_accepted_number_forms(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text('a,b\n"1.5", 2e3\n -.5 ,+7.\n1E-2,3\n')
    np.testing.assert_array_equal(read_table(str(path)).values, [[1.5, 2000.0], [-0.5, 7.0], [0.01, 3.0]])


def test_delimiters_gzip_and_standard_input(capsys, tmp_path):
    semi = tmp_path / "d.txt"
    semi.write_text(lines("eruptions;waiting", X, ";"))
    table = read_table(str(semi), options=ReadOptions(delimiter=";"))
    np.testing.assert_array_equal(table.values, X)
    zipped = tmp_path / "d.csv.gz"
    zipped.write_bytes(gzip.compress(lines("eruptions,waiting", X).encode()))
    np.testing.assert_array_equal(read_table(str(zipped)).values, X)
    tsv = tmp_path / "d.tsv.gz"
    tsv.write_bytes(gzip.compress(lines("eruptions\twaiting", X, "\t").encode()))
    assert read_table(str(tsv)).names == ["eruptions", "waiting"]
    model = tmp_path / "m.npz"
    assert run(capsys, "fit", zipped, "-k", "2", "--seed", "0", "-q", "-o", model)[0] == 0
    result = subprocess.run([sys.executable, "-m", "gaussmix", "score", str(model), "-"],
                            input=lines("eruptions,waiting", X), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and f"rows                  {len(X)}" in result.stdout
    result = subprocess.run([sys.executable, "-m", "gaussmix", "fit", "-", "-k", "2", "-q", "--delimiter", "tab",
                             "-o", str(tmp_path / "s.npz")],
                            input=lines("eruptions\twaiting", X, "\t"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert list(gaussmix.load(tmp_path / "s.npz").feature_names_in_) == ["eruptions", "waiting"]


def test_id_column_is_carried_to_predictions(capsys, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("name,eruptions,waiting\n" + "\n".join(f"e{i},{e},{w}" for i, (e, w) in enumerate(X)) + "\n")
    model = tmp_path / "m.npz"
    assert run(capsys, "fit", path, "--columns", "eruptions", "waiting", "-k", "2", "--seed", "0", "-q",
               "-o", model)[0] == 0
    code, out, _ = run(capsys, "predict", model, path, "--id-column", "name")
    rows = out.splitlines()
    assert code == 0 and rows[0] == "name,label,uncertainty,log_density,prob_0,prob_1"
    assert rows[1].startswith("e0,") and rows[-1].startswith(f"e{len(X) - 1},")
    uncertainty = np.array([float(r.split(",")[2]) for r in rows[1:]])
    probs = np.array([[float(v) for v in r.split(",")[4:]] for r in rows[1:]])
    np.testing.assert_allclose(uncertainty, 1 - probs.max(axis=1), atol=1e-15)


def test_r_row_names_are_not_a_feature(capsys, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('"","eruptions","waiting"\n' + "\n".join(f'"{i + 1}",{e},{w}' for i, (e, w) in enumerate(X)))
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "fit", path, "-k", "2", "--seed", "0", "-o", model)
    assert code == 0 and "the first column has no name (row names, as R writes them)" in err
    assert "x 2 features" in out
    assert list(gaussmix.load(model).feature_names_in_) == ["eruptions", "waiting"]
    code, out, _ = run(capsys, "predict", model, path)
    assert code == 0 and out.splitlines()[0].startswith("id,label,") and out.splitlines()[1].startswith("1,")


def test_the_fast_reader_agrees_with_line_by_line_reading(tmp_path):
    rng = np.random.RandomState(0)
    values = rng.standard_normal((500, 3)) * 10.0 ** rng.randint(-5, 6, size=(500, 3))
    path = tmp_path / "v.csv"
    path.write_text("a,b,c,label\n" + "\n".join(",".join(repr(float(v)) for v in row) + ",x" for row in values) + "\n")
    table = read_table(str(path), ["a", "c"])
    np.testing.assert_array_equal(table.values, values[:, [0, 2]])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(DataError, match="line 3 has 2 fields, expected 3"):
        read_table(str(ragged), ["a"])
    longer = tmp_path / "longer.csv"
    longer.write_text("a,b\n1,2\n4,5,6\n")
    with pytest.raises(DataError, match="line 3 has 3 fields, expected 2"):
        read_table(str(longer), ["a"])
    buffer = io.StringIO()
    np.savetxt(buffer, values, delimiter=",")
    whole = tmp_path / "w.csv"
    whole.write_text(buffer.getvalue())
    np.testing.assert_array_equal(read_table(str(whole)).values, values)
