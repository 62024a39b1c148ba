"""Shared fixtures: the built-in catalog (loaded once), the Splitwise table, and an in-process CLI runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from planner.domain import Catalog
from planner.io.catalog import ENV_VAR, load_catalog

REPO = Path(__file__).resolve().parent.parent
SPLITWISE_CSV = REPO / "catalogs" / "measurements" / "splitwise" / "perf_model.csv"
EFFICIENCY_YAML = REPO / "catalogs" / "efficiency.yaml"

CliResult = tuple[int, str, str]


@pytest.fixture(autouse=True)
def _no_user_catalog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the built-in catalogs unless they set PLANNER_CATALOG_DIR themselves."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENV_VAR, raising=False)
        return load_catalog()


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
