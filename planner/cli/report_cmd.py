"""``planner report``: an HTML report of a saved ``planner size`` or ``planner sweep`` JSON result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from planner.cli._common import ENGINE_HELP, CatalogDirOpt


def report(
    result_file: Annotated[
        Path,
        typer.Argument(metavar="RESULT.json", help="A planner size or sweep result (--format json).", dir_okay=False),
    ],
    html_file: Annotated[Path, typer.Option("--html", help="Write the self-contained HTML report here.", dir_okay=False)],
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes (default: one per core).")] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help=ENGINE_HELP + " Re-sizes a size result's curves under it (default: the engine the result was sized for).",
            metavar="NAME[@VERSION]",
        ),
    ] = None,
    catalog_dir: CatalogDirOpt = None,
) -> None:
    """Render a saved result as one self-contained HTML page with charts (a size result also gets its
    capacity curve and the Pareto front of cost against the SLO targets, re-sized with the catalog)."""
    from planner.errors import InputError
    from planner.io.output import write_text_atomic
    from planner.io.yamlio import read_text

    text = read_text(result_file)
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{result_file}: not JSON ({exc.msg} at line {exc.lineno})", hint="save a result with --format json"
        ) from None
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or doc.get("command") not in ("size", "sweep"):
        raise InputError(
            f"{result_file}: not a planner size or planner sweep result (schema_version 1)",
            hint="save one with planner size WORKLOAD.yaml --format json -o RESULT.json",
        )
    if doc.get("status") != "ok" or not isinstance(doc.get("data"), dict) or not isinstance(doc.get("inputs"), dict):
        raise InputError(f"{result_file}: status {doc.get('status')!r}: only a successful result has a report")
    try:
        page = _render(doc, result_file, catalog_dir, jobs, engine)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InputError(f"{result_file}: malformed {doc['command']} result ({type(exc).__name__}: {exc})") from None
    write_text_atomic(html_file, page, inputs=(result_file,))


def _render(doc: dict[str, Any], result_file: Path, catalog_dir: list[Path] | None, jobs: int | None, engine: str | None) -> str:
    from planner import api
    from planner.errors import InputError
    from planner.report.engine import label_of
    from planner.report.html import size_html, sweep_html

    saved = label_of(doc["inputs"].get("engine"))
    if doc["command"] == "sweep":
        if engine is not None:
            raise InputError(
                f"--engine {engine}: a sweep result is rendered as it was computed (engine {saved or 'not recorded'})",
                hint="re-run planner sweep --engine to sweep under another engine",
            )
        return sweep_html(doc)
    from planner.api.sweep import report_sweeps
    from planner.io.workload import parse_workload

    workload = doc["inputs"]["workload"]
    spec = parse_workload(workload, "inputs.workload")
    # --engine, else the engine the result was sized for, else the workload's engine: (and the default)
    if engine is not None:
        catalog = api.workload_catalog(spec, result_file, catalog_dir or (), engine)
    else:
        catalog = api.workload_catalog(spec, result_file, catalog_dir or (), saved, f"{result_file}: inputs.engine")
    api.resolve_workload(spec, catalog, "inputs.workload")
    sweeps = report_sweeps(workload, catalog, solver=doc["inputs"].get("solver", "highs"), jobs=jobs)
    return size_html(doc, sweeps, sweeps_engine=catalog.engine.label)
