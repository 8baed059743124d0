"""The README's Python examples run, and its first commands are the two we support."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert first_block == ["python3 run.py demo", "python3 run.py test"]


def test_ci_runs_the_readme_test_command():
    assert "python3 run.py test" in (ROOT / ".ci" / "run").read_text()


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    namespace = {}  # the examples read as one tutorial: later ones use earlier names
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "anomalies.png", "bic.png", "contours.png", "durations.png", "ellipses.png", "em.png"]
