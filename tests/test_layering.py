"""Layering (docs/design.md §1): which package may import what."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

PLANNER = Path(__file__).resolve().parent.parent / "planner"
HEAVY = ("pulp", "rich", "typer", "yaml", "pydantic")

# top-level module -> sub-packages of planner allowed to import it
ALLOWED = {
    "typer": ("cli",),
    "pulp": ("optimize",),
    "yaml": ("io",),
    "pydantic": ("io",),
    "rich": ("cli", "report"),
}


def test_perf_core_imports_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        "import planner.perf.roofline, planner.perf.queueing, planner.perf.memory\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_subprocess_check_detects_heavy_imports() -> None:
    """The check above can fail: importing the CLI does pull typer in."""
    code = f"import json, sys\nimport planner.cli\nprint(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "typer" in json.loads(proc.stdout)


@functools.cache  # each source is parsed once for all the modules checked
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _sources() -> list[Path]:
    return sorted(PLANNER.rglob("*.py"))


def test_sources_found() -> None:
    names = {p.relative_to(PLANNER).as_posix() for p in _sources()}
    assert {"perf/roofline.py", "io/yamlio.py", "cli/__init__.py", "api/__init__.py"} <= names


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_only_allowed_packages_import(module: str) -> None:
    offenders = []
    for path in _sources():
        rel = path.relative_to(PLANNER)
        package = rel.parts[0] if len(rel.parts) > 1 else ""
        if module in _imports(path) and package not in ALLOWED[module]:
            offenders.append(rel.as_posix())
    assert offenders == [], f"{module} imported outside planner/{{{','.join(ALLOWED[module])}}}: {offenders}"


def test_import_scanner_sees_lazy_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    import yaml.constructor\n    from rich.table import Table\n    from . import sibling\n")
    assert _imports(src) == {"yaml", "rich"}


# What the command line may import from planner (issue 16): the library's door, the renderers, errors and the
# output/input helpers of a run. Everything else (io readers, perf, optimize, sim, profile, calibrate, domain) it
# reaches through planner.api.
CLI_MAY_IMPORT = ("planner.api", "planner.report", "planner.errors", "planner.io.output", "planner.io.sources", "planner.cli")


def _planner_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "planner"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "planner":
            if node.module == "planner":
                found |= {f"planner.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def test_cli_imports_only_the_api_the_renderers_and_output_helpers() -> None:
    offenders = {}
    for path in sorted((PLANNER / "cli").glob("*.py")):
        bad = sorted(m for m in _planner_imports(path) if not any(m == a or m.startswith(a + ".") for a in CLI_MAY_IMPORT))
        if bad:
            offenders[path.name] = bad
    assert offenders == {}, f"planner/cli imports past the library's door: {offenders}"


def test_cli_import_check_can_fail(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("from planner.io.workload import parse_workload\nfrom planner import api, domain\n")
    assert _planner_imports(src) == {"planner.io.workload", "planner.api", "planner.domain"}
