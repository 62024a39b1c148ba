"""``planner sweep``: re-size a workload across a grid of inputs (one axis, several, or listed scenarios)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import (
    CatalogDirOpt,
    EngineOpt,
    Format,
    OutputOpt,
    output_document,
    study_progress,
    warn_all,
    with_line,
)

VARY_HELP = (
    "NAME=START:STOP:STEPS (STEPS evenly spaced points) or NAME=v1,v2,...; repeat for several axes (their Cartesian "
    "product, at most 10,000 points). NAME: rate_rps (total, classes scaled alike), ttft_p99_ms, tpot_p99_ms (every "
    "class's target), isl (mean input tokens), price:GPU (USD/GPU-hour), or a dotted path into the workload: "
    "classes.chat.rate_rps, classes[0].slo.ttft_p99_ms, constraints.max_gpus.h100-sxm, pricing.discount_frac, "
    "engine=vllm,sglang, hardware.decode_gpus=h100-sxm|a100-sxm-80gb,h100-sxm (ids of a list joined by |)."
)
SCENARIOS_HELP = (
    "A YAML or CSV file of named scenarios, each setting some variables (the names of --vary); with --vary, every "
    "scenario is swept over the --vary grid."
)


class SweepFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    markdown = "markdown"
    parquet = "parquet"


def sweep(
    workload_file: Annotated[Path, typer.Argument(metavar="WORKLOAD.yaml", help="Workload document.", dir_okay=False)],
    vary: Annotated[list[str] | None, typer.Option("--vary", help=VARY_HELP, metavar="NAME=VALUES")] = None,
    scenarios: Annotated[
        Path | None, typer.Option("--scenarios", help=SCENARIOS_HELP, dir_okay=False, metavar="FILE.yaml|FILE.csv")
    ] = None,
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
    fmt: Annotated[
        SweepFormat,
        typer.Option("--format", "-f", help="Output format (parquet: one row per point, needs -o FILE).", case_sensitive=False),
    ] = SweepFormat.table,
    output: OutputOpt = None,
) -> None:
    """Re-solve across a grid of arrival rates, SLO targets, lengths, prices, inventory, engines or any workload
    field: cost, GPUs, configuration and savings against co-located at each point, and where the configuration
    changes."""
    from planner.api.sweep import SweepOptions, run_sweep
    from planner.errors import InputError
    from planner.io.output import atomic_binary, check_output, write_text_atomic
    from planner.report.engine import engine_line
    from planner.report.envelope import envelope, to_json
    from planner.report.sweep import grid_markdown, grid_table, one_axis, parquet_bytes, sweep_markdown, sweep_table, table_rows

    if fmt is SweepFormat.parquet and output is None:
        raise InputError("--format parquet: give -o FILE.parquet (Parquet is not written to a terminal)")
    with study_progress("sweep") as progress:
        run = run_sweep(
            SweepOptions(
                workload_file=workload_file,
                vary=tuple(vary or ()),
                scenarios_file=scenarios,
                solver=solver,
                time_limit_s=time_limit_s,
                jobs=jobs,
                engine=engine,
                catalog_dirs=tuple(catalog_dir or ()),
                backend=backend,
                address=address,
                run_dir=run_dir,
                progress=progress,
            )
        )
    result = envelope("sweep", "ok", run.inputs, run.data, run.warnings)
    if html_file is not None:  # refused before anything is printed or written
        check_output(html_file, inputs=run.files_read)
    line = engine_line(run.catalog.engine)
    if any("engine" in p for p in run.data["points"]):
        line = "engine: swept (each point's in its engine column)"
    rows = table_rows(run.data, run.catalog.engine.label)
    if fmt is SweepFormat.parquet:
        assert output is not None
        meta = {
            "planner_version": str(result["planner_version"]),
            "command": "sweep",
            "schema_version": str(result["schema_version"]),
        }
        with atomic_binary(output, inputs=run.files_read) as fh:
            fh.write(parquet_bytes(rows, meta))
        warn_all(result.get("warnings"))
    else:
        single = one_axis(run.data)
        output_document(
            result,
            Format(fmt.value),
            output,
            table=with_line(sweep_table(run.data) if single else grid_table(run.data), line),
            markdown=sweep_markdown(run.data, line) if single else grid_markdown(run.data, line),
            csv_rows=rows,
            inputs=run.files_read,
        )
    if html_file is not None:
        from planner.report.html import sweep_html

        # Round-trip through the JSON text so the page embeds exactly what --format json prints.
        write_text_atomic(html_file, sweep_html(json.loads(to_json(result))), inputs=run.files_read)
