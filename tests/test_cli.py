import subprocess
import sys

import pytest

from gaussmix.__main__ import build_parser, main


def test_demo_prints_the_fit_and_bic(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "full-covariance fit" in out
    lines = [line for line in out.splitlines() if "<- lowest" in line]
    assert len(lines) == 1 and lines[0].split(":")[0].strip() == "3"
    assert "mclust EEE,3" in out


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "gaussmix", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demo" in result.stdout


def test_every_command_has_help_and_is_in_the_readme(readme):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices)
    for name, sub in subparsers.choices.items():
        assert sub.description or any(a.help for a in subparsers._choices_actions if a.dest == name)
        assert f"gaussmix {name}" in readme


def test_unknown_command_fails_with_one_line():
    result = subprocess.run([sys.executable, "-m", "gaussmix", "nope"], capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr


@pytest.fixture
def readme():
    from pathlib import Path

    return (Path(__file__).parents[1] / "README.md").read_text()
