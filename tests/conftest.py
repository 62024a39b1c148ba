"""Shared fixtures: the built-in catalog (loaded once), the Splitwise table, and an in-process CLI runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from planner.domain import Catalog
from planner.io.catalog import ENGINE_ENV_VAR, ENV_VAR, load_catalog, select_engine

REPO = Path(__file__).resolve().parent.parent
SPLITWISE_CSV = REPO / "catalogs" / "measurements" / "splitwise" / "perf_model.csv"
EFFICIENCY_YAML = REPO / "catalogs" / "efficiency" / "splitwise.yaml"

CliResult = tuple[int, str, str]


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


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``planner ARGS...`` in-process; returns (exit code, stdout, stderr)."""
    from planner.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()  # drop anything captured before
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
