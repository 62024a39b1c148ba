"""``planner report``: what an HTML report of a saved ``planner size`` or ``planner sweep`` JSON result charts.

:func:`run_report` reads the result (:func:`planner.io.envelope.read_envelope`) and, for a size result, re-sizes
its capacity curve and SLO grid with the catalog; the CLI renders the :class:`ReportRun` with
:mod:`planner.report.html` and writes the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.domain import InputSource
from planner.errors import InputError
from planner.io.sources import reading_once

__all__ = ["MALFORMED", "REPORTED_COMMANDS", "ReportOptions", "ReportRun", "run_report"]

REPORTED_COMMANDS = ("size", "sweep")
MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError)
"""What reading a saved result's keys raises where the result is malformed (see :meth:`ReportRun.malformed`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportOptions:
    """Everything ``planner report`` computes from: the saved result, the worker processes of the re-sizing
    (``jobs``, None: one per core) and the catalog a size result is re-sized with (``catalog_dirs``, ``engine``:
    ``NAME`` or ``NAME@VERSION``, None for the engine the result was sized for)."""

    result_file: Path
    jobs: int | None = None
    engine: str | None = None
    catalog_dirs: Sequence[Path] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRun:
    """A saved result to render: the envelope as read, and for a size result the sweeps its charts need
    (:func:`planner.api.sweep.report_sweeps`) and the engine they were computed under."""

    options: ReportOptions
    doc: dict[str, Any]
    sweeps: dict[str, Any] | None  # None for a sweep result (rendered as it was computed)
    sweeps_engine: str | None
    sources: tuple[InputSource, ...]

    @property
    def command(self) -> str:
        """``size`` or ``sweep``."""
        return str(self.doc["command"])

    def malformed(self, exc: Exception) -> InputError:
        """The one error for a saved result whose keys are not what its command writes."""
        return InputError(f"{self.options.result_file}: malformed {self.command} result ({type(exc).__name__}: {exc})")


def run_report(options: ReportOptions) -> ReportRun:
    """``planner report``: read the saved result and compute what its page charts."""
    from planner.io.envelope import read_envelope

    path = options.result_file
    with reading_once():
        doc, source = read_envelope(
            path, REPORTED_COMMANDS, hint="save one with planner size WORKLOAD.yaml --format json -o RESULT.json"
        )
        if doc.get("status") != "ok" or not isinstance(doc.get("data"), dict) or not isinstance(doc.get("inputs"), dict):
            raise InputError(f"{path}: status {doc.get('status')!r}: only a successful result has a report")
        run = ReportRun(options=options, doc=doc, sweeps=None, sweeps_engine=None, sources=(source,))
        try:
            return _sweeps(run)
        except MALFORMED as exc:
            raise run.malformed(exc) from None


def _sweeps(run: ReportRun) -> ReportRun:
    from dataclasses import replace

    from planner.api.inputs import resolve_workload, workload_catalog
    from planner.api.sweep import report_sweeps
    from planner.io.workload import parse_workload
    from planner.report.engine import label_of

    doc, path, engine = run.doc, run.options.result_file, run.options.engine
    saved = label_of(doc["inputs"].get("engine"))
    if doc["command"] == "sweep":
        if engine is not None:
            raise InputError(
                f"--engine {engine}: a sweep result is rendered as it was computed (engine {saved or 'not recorded'})",
                hint="re-run planner sweep --engine to sweep under another engine",
            )
        return run
    workload = doc["inputs"]["workload"]
    spec = parse_workload(workload, "inputs.workload")
    # --engine, else the engine the result was sized for, else the workload's engine: (and the default)
    dirs = run.options.catalog_dirs
    if engine is not None:
        catalog = workload_catalog(spec, path, dirs, engine)
    else:
        catalog = workload_catalog(spec, path, dirs, saved, f"{path}: inputs.engine")
    resolve_workload(spec, catalog, "inputs.workload")
    sweeps = report_sweeps(workload, catalog, solver=doc["inputs"].get("solver", "highs"), jobs=run.options.jobs)
    return replace(run, sweeps=sweeps, sweeps_engine=catalog.engine.label)
