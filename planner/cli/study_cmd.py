"""``planner study robust``: cost and SLO attainment under uncertain performance factors and forecasts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import (
    CatalogDirOpt,
    EngineOpt,
    Format,
    FormatOpt,
    OutputOpt,
    output_document,
    study_progress,
    with_line,
)

app = typer.Typer(help="Studies over many sizings or evaluations of a workload.", no_args_is_help=True)


@app.command("robust")
def robust(
    workload_file: Annotated[Path, typer.Argument(metavar="WORKLOAD.yaml", help="Workload document.", dir_okay=False)],
    draws: Annotated[int, typer.Option("--draws", help="Number of draws (1 to 10,000).")] = 200,
    mode: Annotated[
        str,
        typer.Option(
            "--mode", help="evaluate: size once at the nominal inputs, evaluate that plan per draw; size: re-size per draw."
        ),
    ] = "evaluate",
    rate_error_frac: Annotated[
        float,
        typer.Option(
            "--rate-error-frac", help="Forecast error: one-sigma of each class's log rate (lognormal, median = forecast)."
        ),
    ] = 0.0,
    rate_correlation: Annotated[
        float,
        typer.Option(
            "--rate-correlation", help="Correlation of the classes' forecast errors: 1 one shared error, 0 independent."
        ),
    ] = 1.0,
    factor_sigma_scale: Annotated[
        float,
        typer.Option(
            "--factor-sigma-scale",
            help="Times the engine profile's measured spread (catalog uncertainty block); 0: no factor uncertainty.",
        ),
    ] = 1.0,
    confidence: Annotated[
        float,
        typer.Option(
            "--confidence", help="Share of draws in which the SLOs must hold for the headroom search (strictly 0 to 1)."
        ),
    ] = 0.95,
    headroom: Annotated[
        str,
        typer.Option(
            "--headroom",
            help="Headroom searches: rate (size for h x the rates), slo (size for every target / h) or rate,slo.",
        ),
    ] = "rate",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws (the same seed gives the same study).")] = 20,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="Worker processes (default: one per usable CPU; capped at the CPU count)."),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="Where the draws run: local (worker processes) or ray (Ray tasks; planner[ray]).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster address for --backend ray (default: a local Ray instance of --jobs CPUs)."),
    ] = None,
    solver: Annotated[str, typer.Option("--solver", help="MIP solver: highs or cbc.")] = "highs",
    time_limit_s: Annotated[
        float | None, typer.Option("--time-limit-s", help="Time limit of each sizing run (all its solves), seconds.")
    ] = None,
    engine: EngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Draw the engine's performance factors from their measured spread and the rates from a forecast error;
    evaluate (or re-size) the plan per draw: SLO attainment, latency and cost distributions, and the headroom that
    holds the SLOs at a confidence."""
    from planner.api.study import StudyOptions, run_study
    from planner.report.engine import engine_line, with_engine_column
    from planner.report.envelope import envelope
    from planner.report.study import csv_rows, study_markdown, study_table

    with study_progress("study robust") as progress:
        run = run_study(
            StudyOptions(
                workload_file=workload_file,
                draws=draws,
                mode=mode,
                rate_error_frac=rate_error_frac,
                rate_correlation=rate_correlation,
                factor_sigma_scale=factor_sigma_scale,
                confidence=confidence,
                headroom=headroom,
                seed=seed,
                jobs=jobs,
                backend=backend,
                address=address,
                progress=progress,
                solver=solver,
                time_limit_s=time_limit_s,
                engine=engine,
                catalog_dirs=tuple(catalog_dir or ()),
            )
        )
    result = envelope("study robust", "ok", run.inputs, run.data, run.warnings)
    line = engine_line(run.catalog.engine)
    output_document(
        result,
        fmt,
        output,
        table=with_line(study_table(run.data, run.inputs), line),
        markdown=study_markdown(run.data, run.inputs, line),
        csv_rows=with_engine_column(csv_rows(run.data), run.catalog.engine),
        inputs=run.files_read,
    )
