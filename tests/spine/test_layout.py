"""The package layout of issue 14, read from the source with ``ast`` (nothing is imported).

- one family = one package under ``families/<family>/``; no family imports another;
- the shared core (everything outside ``families/<family>/``) reaches a family only through
  ``registry.py`` (the contracts ``families/base.py``, ``families/task.py`` and
  ``families/metric_info.py`` are shared core, and families may import them);
- inside a family imports run one way: ``models/`` and ``metrics/`` never import ``tasks/``,
  ``datasets/`` or ``family.py``, and ``metrics/`` never imports ``models/``;
- the ``report/`` modules import one another without a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "replibench"
FAMILIES = sorted(p.name for p in (PACKAGE / "families").iterdir() if (p / "family.py").is_file())


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``replibench`` module ``path`` imports (at any depth: lazy imports count), with
    ``from X import name`` giving both ``X`` and ``X.name`` (``name`` may be a submodule)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "replibench" or name.startswith("replibench.")}


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _family_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) >= 3 and parts[1] == "families" and parts[2] in FAMILIES else None


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_four_families_are_packages():
    assert FAMILIES == ["crystals", "ett", "lra", "oc20"]
    for family in FAMILIES:
        for sub in ("datasets", "tasks", "models", "metrics"):
            assert (PACKAGE / "families" / family / sub / "__init__.py").is_file(), (family, sub)
    for old in ("models", "tasks", "datasets", "metrics"):
        assert not (PACKAGE / old).exists(), f"replibench/{old}/ is gone: its code lives in the families"


@pytest.mark.parametrize("family", FAMILIES)
def test_no_family_imports_another(family):
    wrong = {(module, name) for module, names in IMPORTS.items() if _family_of(module) == family
             for name in names if _family_of(name) not in (None, family)}
    assert not wrong, f"family {family!r} imports another family: {sorted(wrong)}"


def test_the_shared_core_reaches_families_only_through_the_registry():
    wrong = {(module, name) for module, names in IMPORTS.items() if _family_of(module) is None
             for name in names if _family_of(name) is not None}
    assert not wrong, f"shared-core modules import a family package directly: {sorted(wrong)}"


@pytest.mark.parametrize("family", FAMILIES)
def test_imports_inside_a_family_run_one_way(family):
    root = f"replibench.families.{family}"
    forbidden = {"models": ("tasks", "datasets", "family", "byo"),
                 "metrics": ("tasks", "datasets", "family", "byo", "models"),
                 "datasets": ("tasks", "family", "byo", "models"),
                 "types": ("tasks", "datasets", "family", "byo", "models", "metrics")}
    wrong = []
    for module, names in IMPORTS.items():
        for kind, banned in forbidden.items():
            if not _within(module, f"{root}.{kind}"):
                continue
            wrong += [(module, name) for name in names for other in banned if _within(name, f"{root}.{other}")]
    assert not wrong, f"{family}: imports against the one-way order: {sorted(wrong)}"


def test_family_modules_import_no_heavy_library_at_module_level():
    """``snakemake -n`` imports every ``family.py``: torch & co. only inside functions."""
    heavy = {"torch", "pymatgen", "ase", "e3nn", "torch_geometric", "lmdb", "matminer", "smact"}
    for family in FAMILIES:
        tree = ast.parse((PACKAGE / "families" / family / "family.py").read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
        assert not names & heavy, (family, names & heavy)


def test_report_modules_have_no_import_cycle():
    report = {m for m in MODULES if _within(m, "replibench.report")}
    graph = {m: {n for n in IMPORTS[m] if n in report and n != m} for m in report}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle in report/: {' -> '.join(path + [node, nxt])}")
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for module in sorted(report):
        if module not in state:
            visit(module, [])
    assert {"replibench.report.markdown", "replibench.report.html", "replibench.report.plots",
            "replibench.report.compare", "replibench.report.summary"} <= report
