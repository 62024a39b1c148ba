"""``planner sweep``: re-size a workload across a range of one input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import CatalogDirOpt, EngineOpt, Format, FormatOpt, OutputOpt, output_document, with_line

VARY_HELP = (
    "NAME=START:STOP:STEPS (STEPS evenly spaced points) or NAME=v1,v2,...; NAME: rate_rps (total, classes scaled "
    "alike), ttft_p99_ms, tpot_p99_ms (every class's target), isl (mean input tokens), price:GPU (USD/GPU-hour)."
)


def sweep(
    workload_file: Annotated[Path, typer.Argument(metavar="WORKLOAD.yaml", help="Workload document.", dir_okay=False)],
    vary: Annotated[str, typer.Option("--vary", help=VARY_HELP)],
    solver: Annotated[str, typer.Option("--solver", help="MIP solver: highs or cbc.")] = "highs",
    time_limit_s: Annotated[
        float | None, typer.Option("--time-limit-s", help="Time limit of each point's sizing run (all its solves), seconds.")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", help="Worker processes (default: one per usable CPU; capped at the CPU count; at most 1024)."
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="Where the points run: local (worker processes) or ray (Ray tasks; planner[ray]).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster address for --backend ray (default: a local Ray instance of --jobs CPUs)."),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(
            "--run-dir",
            help="Keep each finished point in this directory; run the same study again on it to compute only the "
            "missing points (another study's directory is refused).",
            file_okay=False,
        ),
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with charts.", dir_okay=False)
    ] = None,
    engine: EngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Re-solve across a range of arrival rate, SLO target, prompt length or GPU price: cost, GPUs,
    configuration and savings against co-located at each point."""
    from planner.api.sweep import SweepOptions, run_sweep
    from planner.cli._progress import study_progress
    from planner.io.output import check_output, write_text_atomic
    from planner.report.engine import engine_line, with_engine_column
    from planner.report.envelope import envelope, to_json
    from planner.report.sweep import csv_rows, sweep_markdown, sweep_table

    with study_progress("sweep") as progress:
        run = run_sweep(
            SweepOptions(
                workload_file=workload_file,
                vary=vary,
                solver=solver,
                time_limit_s=time_limit_s,
                jobs=jobs,
                backend=backend,
                address=address,
                run_dir=run_dir,
                progress=progress,
                engine=engine,
                catalog_dirs=tuple(catalog_dir or ()),
            )
        )
    result = envelope("sweep", "ok", run.inputs, run.data)
    if html_file is not None:  # refused before anything is printed or written
        check_output(html_file, inputs=run.files_read)
    line = engine_line(run.catalog.engine)
    output_document(
        result,
        fmt,
        output,
        table=with_line(sweep_table(run.data), line),
        markdown=sweep_markdown(run.data, line),
        csv_rows=with_engine_column(csv_rows(run.data), run.catalog.engine),
        inputs=run.files_read,
    )
    if html_file is not None:
        from planner.report.html import sweep_html

        # Round-trip through the JSON text so the page embeds exactly what --format json prints.
        write_text_atomic(html_file, sweep_html(json.loads(to_json(result))), inputs=run.files_read)
