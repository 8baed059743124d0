#!/usr/bin/env python3
"""Set up gaussmix in ./.venv and run a task. Needs only Python 3.11+.

    python3 run.py demo [ARGS...]   install gaussmix, run ``gaussmix demo ARGS``
    python3 run.py test [ARGS...]   install gaussmix with test tools, run ``pytest ARGS``
                                    (on up to 4 cores, unless ARGS choose with ``-n``)
    python3 run.py bench [--quick]  benchmark against scikit-learn (benchmarks/README.md)
    python3 run.py bench-engines [--quick]  the torch and Dask engines against NumPy

Installs are pinned by ``constraints.txt`` and repeated only when
``pyproject.toml`` or ``constraints.txt`` change. The tests render the HTML
report in headless Chromium: when ``chromium`` or ``chromedriver`` is
missing, ``test`` installs Debian's packages (as root, with apt-get).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TASKS = {
    "demo": ("plot,fast", ["-m", "gaussmix", "demo"]),
    "test": ("test", ["-m", "pytest"]),
    "bench": ("bench", ["benchmarks/bench_em.py"]),
    "bench-engines": ("torch,dask,fast", ["benchmarks/bench_engines.py"]),
}


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_environment(extras: str) -> Path:
    python = venv_python()
    if not python.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    digest.update(extras.encode())
    stamp = VENV / f".installed-{extras or 'base'}"
    if not stamp.exists() or stamp.read_text() != digest.hexdigest():
        target = f".[{extras}]" if extras else "."
        print(f"installing gaussmix{f'[{extras}]' if extras else ''} into {VENV}", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-c", str(ROOT / "constraints.txt"), "-e", target],
            cwd=ROOT,
            check=True,
        )
        stamp.write_text(digest.hexdigest())
    return python


def ensure_browser() -> None:
    """Install Debian's chromium and chromium-driver when they are missing and we can."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.environ.get("GAUSSMIX_SKIP_BROWSER_TESTS"):
        return
    if not (shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0):
        print("chromium/chromedriver are missing and cannot be installed here (needs root and apt-get); "
              "the report's browser test will fail. Set GAUSSMIX_SKIP_BROWSER_TESTS=1 to skip it.", file=sys.stderr)
        return
    print("installing chromium and chromium-driver (Debian packages) for the browser test", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print(f"'{' '.join(command)}' failed; the report's browser test will fail.", file=sys.stderr)
            return


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print(f"gaussmix needs Python 3.11 or newer; this is {sys.version.split()[0]}.", file=sys.stderr)
        return 2
    if not argv or argv[0] not in TASKS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    extras, command = TASKS[argv[0]]
    if argv[0] == "test":
        ensure_browser()
    try:
        python = ensure_environment(extras)
    except subprocess.CalledProcessError as exc:
        print(f"installation failed (exit status {exc.returncode}); see the pip output above.", file=sys.stderr)
        return exc.returncode or 1
    arguments = argv[1:]
    chosen = any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in arguments)
    if argv[0] == "test" and not chosen:
        workers = min(4, os.cpu_count() or 1)
        if workers > 1:
            arguments = ["-n", str(workers), *arguments]
    return subprocess.call([str(python), *command, *arguments], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
