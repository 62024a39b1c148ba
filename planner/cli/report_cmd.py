"""``planner report``: an HTML report of a saved ``planner size`` or ``planner sweep`` JSON result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from planner.cli._common import CatalogDirOpt


def report(
    result_file: Annotated[
        Path,
        typer.Argument(metavar="RESULT.json", help="A planner size or sweep result (--format json).", dir_okay=False),
    ],
    html_file: Annotated[Path, typer.Option("--html", help="Write the self-contained HTML report here.", dir_okay=False)],
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes (default: one per core).")] = None,
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
        page = _render(doc, result_file, catalog_dir, jobs)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InputError(f"{result_file}: malformed {doc['command']} result ({type(exc).__name__}: {exc})") from None
    write_text_atomic(html_file, page, inputs=(result_file,))


def _render(doc: dict[str, Any], result_file: Path, catalog_dir: list[Path] | None, jobs: int | None) -> str:
    from planner import api
    from planner.report.html import size_html, sweep_html

    if doc["command"] == "sweep":
        return sweep_html(doc)
    from planner.io.workload import parse_workload
    from planner.sweep import report_sweeps

    workload = doc["inputs"]["workload"]
    spec = parse_workload(workload, "inputs.workload")
    catalog = api.workload_catalog(spec, result_file, catalog_dir or ())
    api.resolve_workload(spec, catalog, "inputs.workload")
    return size_html(doc, report_sweeps(workload, catalog, solver=doc["inputs"].get("solver", "highs"), jobs=jobs))
