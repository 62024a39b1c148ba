"""``planner report``: an HTML report of a saved ``planner size`` or ``planner sweep`` JSON result."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import ENGINE_HELP, CatalogDirOpt, Format, output_document


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


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
    fmt: Annotated[
        ReportFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="Also print what was written (table or json) on stdout; without it, nothing is printed "
            "(the report itself is the --html file).",
            case_sensitive=False,
        ),
    ] = None,
) -> None:
    """Render a saved result as one self-contained HTML page with charts (a size result also gets its
    capacity curve and the Pareto front of cost against the SLO targets, re-sized with the catalog)."""
    from planner.api.report import MALFORMED, ReportOptions, run_report
    from planner.io.output import check_output, write_text_atomic
    from planner.report.html import size_html, sweep_html

    check_output(html_file, inputs=(result_file,))  # refused before the (slow) re-sizing
    run = run_report(ReportOptions(result_file=result_file, jobs=jobs, engine=engine, catalog_dirs=tuple(catalog_dir or ())))
    try:
        page = sweep_html(run.doc) if run.sweeps is None else size_html(run.doc, run.sweeps, sweeps_engine=run.sweeps_engine)
    except MALFORMED as exc:
        raise run.malformed(exc) from None
    write_text_atomic(html_file, page, inputs=(result_file,))
    if fmt is not None:
        from rich.table import Table

        from planner.report.envelope import envelope

        data = {
            "html_file": str(html_file),
            "bytes": len(page.encode("utf-8")),
            "result_command": run.command,
            "sweeps_engine": run.sweeps_engine,
        }
        table = Table(title="report written")
        table.add_column("field")
        table.add_column("value")
        for key, value in data.items():
            table.add_row(key, "-" if value is None else str(value))
        output_document(envelope("report", "ok", {"result_file": str(result_file)}, data), Format(fmt.value), None, table=table)
