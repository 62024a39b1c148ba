"""Shared fixtures and helpers: the built-in catalog (loaded once), the Splitwise table, the one
in-process CLI runner (:func:`cli`, and the ``run_cli`` fixture), the bad-input assertion
(:func:`assert_input_error`), the command tree (:func:`command_paths`) and :class:`Lazy`.

Test modules import the plain helpers with ``from conftest import ...``."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from planner.domain import Catalog
from planner.io.catalog import ENGINE_ENV_VAR, ENV_VAR, load_catalog, select_engine

REPO = Path(__file__).resolve().parent.parent
SPLITWISE_CSV = REPO / "catalogs" / "measurements" / "splitwise" / "perf_model.csv"

CliResult = tuple[int, str, str]
Run = Callable[..., CliResult]
V = TypeVar("V")


def _set_engine(mp: pytest.MonkeyPatch, module: object) -> None:
    engine = getattr(module, "ENGINE", None)  # a module pins an engine with ENGINE = "..."
    if engine:
        mp.setenv(ENGINE_ENV_VAR, engine)
    else:
        mp.delenv(ENGINE_ENV_VAR, raising=False)


@pytest.fixture(autouse=True, scope="module")
def _module_engine(request: pytest.FixtureRequest) -> Iterator[None]:
    """Module-scoped fixtures see the engine their module pins (or the default)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENV_VAR, raising=False)
        _set_engine(mp, request.module)
        yield


@pytest.fixture(autouse=True)
def _no_user_catalog_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Tests see only the built-in catalogs unless they set PLANNER_CATALOG_DIR themselves, and the
    default engine unless their module pins one (``ENGINE = "splitwise"``)."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    _set_engine(monkeypatch, request.module)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENV_VAR, raising=False)
        mp.delenv(ENGINE_ENV_VAR, raising=False)
        return load_catalog()


@pytest.fixture(scope="session")
def splitwise_catalog(catalog: Catalog) -> Catalog:
    """The catalog with the 2023 Splitwise engine selected: the factors the optimizer, checker and
    simulator tests were worked out on (their figures are the core's mechanics, not an engine's)."""
    return select_engine(catalog, "splitwise")


@pytest.fixture(scope="session")
def splitwise_csv() -> Path:
    assert SPLITWISE_CSV.is_file(), SPLITWISE_CSV
    return SPLITWISE_CSV


# ------------------------------------------------------------------------------ the command line


def cli(*args: str) -> CliResult:
    """Run ``planner ARGS...`` in-process; returns (exit code, stdout, stderr).

    A plain function, so module-scoped fixtures can share one run between tests; the environment
    is the one the autouse fixtures above set (no PLANNER_CATALOG_DIR, the module's engine)."""
    from planner.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run_cli() -> Run:
    """:func:`cli`, as a fixture."""
    return cli


def assert_input_error(result: CliResult, *needles: str) -> list[str]:
    """The contract for bad input: exit 2, nothing on stdout, no traceback, one ``error: `` line
    (and at most one ``hint: `` line after it), and every needle in stderr. Returns stderr's lines."""
    code, out, err = result
    assert code == 2, (code, err)
    assert out == "", out
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) in (1, 2), lines
    assert lines[0].startswith("error: "), lines
    assert len(lines) == 1 or lines[1].startswith("hint: "), lines
    for needle in needles:
        assert needle in err, (needle, err)
    return lines


def command_paths() -> list[list[str]]:
    """Every command of the typer app as its words (``[]`` for ``planner`` itself, then groups and
    their sub-commands, depth first in name order), walked from the click tree typer builds."""
    import typer.main

    from planner.cli import app

    paths: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


class Lazy(dict[str, V], Generic[V]):
    """A dict that computes a missing key with ``make(key)`` on first use and keeps it: a
    module-scoped fixture of per-example results computes only the examples its lane runs."""

    def __init__(self, make: Callable[[str], V]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: str) -> V:
        value = self._make(key)
        self[key] = value
        return value


def count_disk_reads(monkeypatch: pytest.MonkeyPatch, *targets: Path) -> dict[Path, list[str]]:
    """Every read of each of ``targets`` from disk from now on, by resolved path: a ``Path.read_bytes`` (how the CLI
    once hashed its inputs) or an ``os.open`` for reading (how :func:`planner.io.sources.read_source` opens files);
    an ``os.open`` made inside ``Path.read_bytes`` is the same read. The read-once tests of each command use it."""
    import os
    import pathlib

    calls: dict[Path, list[str]] = {t.resolve(): [] for t in targets}
    real_read_bytes, real_open = pathlib.Path.read_bytes, os.open
    inside = False

    def read_bytes(self: Path) -> bytes:
        nonlocal inside
        key = Path(self).resolve()
        if key in calls:
            calls[key].append("Path.read_bytes")
        inside = True
        try:
            return real_read_bytes(self)
        finally:
            inside = False

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        writes = flags & (os.O_WRONLY | os.O_RDWR)
        if not inside and not writes and isinstance(path, (str, os.PathLike)):
            key = Path(path).resolve()
            if key in calls:
                calls[key].append("os.open")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "open", os_open)
    return calls
