"""The layers of docs/architecture.md: which modules may import which, and no import cycles.

Imports are read from the source (module level and inside functions; ``if
TYPE_CHECKING`` blocks are left out, as they never run), so a lazy import
counts as much as an eager one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gaussmix"

#: Modules below the covariance structures: no estimator, engine or EM code, no scikit-learn.
FOUNDATION = {"gaussmix._errors", "gaussmix._namespace", "gaussmix._validation", "gaussmix._tables",
              "gaussmix._version", "gaussmix._files", "gaussmix._compiled", "gaussmix._threads"}
#: The estimator layer (above engines).
ESTIMATORS = {"gaussmix._base", "gaussmix._mixture", "gaussmix._state", "gaussmix._loaded_state",
              "gaussmix._gaussian_mixture", "gaussmix._selector", "gaussmix._outliers", "gaussmix._classifier"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), outside ``if TYPE_CHECKING`` blocks."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()

    def visit(node):
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # "from pkg import module"
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}
IMPORTS = {name: {m for m in imports_of(path) if m in MODULES or m.split(".")[0] != "gaussmix"}
           for name, path in MODULES.items()}


def internal(name: str) -> set[str]:
    return {m for m in IMPORTS[name] if m in MODULES and m != name}


def in_layer(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_every_module_is_read():
    assert {"gaussmix.covariance._registry", "gaussmix.em.loop", "gaussmix.engines._dask", "gaussmix._base"} <= set(
        MODULES
    )
    assert "gaussmix.em.kernels" in internal("gaussmix.em.loop") or "gaussmix.em.models" in internal("gaussmix.em.loop")


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m in FOUNDATION))
def test_foundation_imports_only_foundation(name):
    assert internal(name) <= FOUNDATION, sorted(internal(name) - FOUNDATION)
    assert not any(m.startswith("sklearn") for m in IMPORTS[name])


@pytest.mark.parametrize("name", sorted(m for m in MODULES if in_layer(m, "gaussmix.covariance")))
def test_covariance_imports_nothing_above_it(name):
    allowed = {m for m in MODULES if in_layer(m, "gaussmix.covariance")} | FOUNDATION
    assert internal(name) <= allowed, sorted(internal(name) - allowed)
    assert not any(m.startswith("sklearn") for m in IMPORTS[name])


@pytest.mark.parametrize("name", sorted(m for m in MODULES if in_layer(m, "gaussmix.em")))
def test_em_imports_no_engine_no_estimator_and_no_scikit_learn(name):
    allowed = {m for m in MODULES if in_layer(m, "gaussmix.covariance") or in_layer(m, "gaussmix.em")} | FOUNDATION
    assert internal(name) <= allowed, sorted(internal(name) - allowed)
    assert not any(m.startswith("sklearn") for m in IMPORTS[name])


@pytest.mark.parametrize("name", sorted(m for m in MODULES if in_layer(m, "gaussmix.engines")))
def test_engines_import_no_estimator(name):
    allowed = {m for m in MODULES if any(in_layer(m, f"gaussmix.{layer}") for layer in ("covariance", "em", "engines"))}
    allowed |= FOUNDATION
    assert internal(name) <= allowed, sorted(internal(name) - allowed)


def test_persistence_imports_no_estimator():
    imported = internal("gaussmix._persistence")
    assert not imported & ESTIMATORS, sorted(imported & ESTIMATORS)
    assert "gaussmix" not in imported  # not even through the package's lazy names


@pytest.mark.parametrize("name", sorted(ESTIMATORS | {"gaussmix._persistence"}))
def test_estimators_import_no_edge(name):
    edges = {m for m in MODULES
             if any(in_layer(m, f"gaussmix.{edge}") for edge in ("cli", "plot", "report", "selection", "datasets"))}
    assert not internal(name) & edges
    assert "gaussmix" not in internal(name)  # estimators import each other's modules, not the package


def test_no_estimator_module_branches_on_an_engine():
    """Only engines look at what kind of array they were given."""
    sniffers = ("is_torch_tensor", "is_dask_collection", "TorchNamespace", "DaskData", "ChunkedData")
    for name in sorted(ESTIMATORS | {"gaussmix._persistence"}):
        text = MODULES[name].read_text()
        assert not [s for s in sniffers if s in text], name


def test_no_import_cycles():
    graph = {name: internal(name) for name in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def walk(node):
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)


def test_structure_names_appear_only_in_the_registry():
    """The registry is the one list of names; code elsewhere asks it (docstrings may name structures)."""
    from gaussmix.covariance import available_structures

    names = set(available_structures())
    offenders = []
    for name, path in MODULES.items():
        if in_layer(name, "gaussmix.covariance"):  # the what-layer names its structures and layouts
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
                offenders.append(f"{name}:{node.lineno} {node.value!r}")
    # A hyper-parameter's default value is the only use outside the registry.
    defaults = [o for o in offenders if o.endswith("'full'")]
    assert [o for o in offenders if o not in defaults] == []
    for offender in defaults:
        module, line = offender.split(" ")[0].split(":")
        source = MODULES[module].read_text().splitlines()[int(line) - 1]
        assert "covariance_type" in source and ("=" in source), offender


def test_the_command_lines_parser_imports_no_numerical_code():
    """Its choices come from the registries, which read their names without importing NumPy."""
    code = ("import sys\nfrom gaussmix.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('numpy', 'sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_registry_imports_without_scikit_learn_or_numpy():
    code = ("import sys\nfrom gaussmix.covariance import available_structures\navailable_structures()\n"
            "print(sorted(m for m in ('sklearn', 'numpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = ("import sys\nfrom gaussmix.covariance import get_structure\nget_structure('full')\n"
            "import gaussmix.em.fit, gaussmix.em.init\n"
            "print(sorted(m for m in ('sklearn',) if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
