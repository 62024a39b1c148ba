"""``planner simulate``: discrete-event replay of a plan; percentiles and SLO attainment beside the
analytic prediction."""

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
    err_console,
    flat_rows,
    output_document,
    with_line,
)


def simulate(
    proposal_file: Annotated[
        Path, typer.Argument(metavar="PROPOSAL.yaml", help="Proposal, or a plan written by planner size.", dir_okay=False)
    ],
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Replay this trace (any format planner profile reads).", dir_okay=False)
    ] = None,
    trace_format: Annotated[str, typer.Option("--trace-format", help="Trace format (auto detects).")] = "auto",
    requests: Annotated[
        int | None, typer.Option("--requests", "-n", help="Requests to simulate (default 20,000; with --trace: all rows).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Random seed (arrivals, lengths, pool choice).")] = 0,
    routing: Annotated[str, typer.Option("--routing", help="Prefill routing: jsq, rr or central (one shared queue).")] = "jsq",
    prefill_token_budget: Annotated[
        int | None, typer.Option("--prefill-token-budget", help="Batch prompts up to this many tokens (default: one prompt).")
    ] = None,
    warmup_frac: Annotated[float, typer.Option("--warmup-frac", help="Share of requests left out of statistics.")] = 0.1,
    out_of_service: Annotated[
        int | None,
        typer.Option("--out-of-service", help="Replicas per pool out of service (default: the workload's redundancy)."),
    ] = None,
    length_jitter: Annotated[
        bool, typer.Option("--length-jitter", help="Interpolate lengths between the quantile grid's points.")
    ] = False,
    time_cap_s: Annotated[
        float | None, typer.Option("--time-cap-s", help="Stop at this simulated time (default 20x the arrival span + 60 s).")
    ] = None,
    queue_cap: Annotated[int, typer.Option("--queue-cap", help="Stop when a pool has this many requests waiting.")] = 100_000,
    engine: EngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Simulate a plan request by request and compare with the analytic model."""
    from planner.api.simulate import SimOptions, SimulateOptions, run_simulate
    from planner.report.engine import engine_line, with_engine_column
    from planner.report.envelope import envelope
    from planner.report.simulate import simulate_data, simulate_table
    from planner.report.speculative import with_speculative

    run = run_simulate(
        SimulateOptions(
            proposal_file=proposal_file,
            engine=engine,
            catalog_dirs=tuple(catalog_dir or ()),
            sim=SimOptions(
                requests=requests,
                seed=seed,
                routing=routing,
                prefill_token_budget=prefill_token_budget,
                warmup_frac=warmup_frac,
                out_of_service=out_of_service,
                length_jitter=length_jitter,
                trace=trace,
                trace_format=trace_format,
                time_cap_s=time_cap_s,
                queue_cap=queue_cap,
            ),
        )
    )
    data = simulate_data(run.simulation)
    doc = envelope("simulate", run.status, run.inputs, data, run.warnings)
    for w in run.warnings:
        err_console().print(f"warning: {w}", markup=False)
    output_document(
        doc,
        fmt,
        output,
        table=with_line(simulate_table(data), with_speculative(engine_line(run.catalog.engine), run.proposal.workload)),
        csv_rows=with_engine_column([flat_rows(doc["data"])], run.catalog.engine),
        inputs=(proposal_file, *((trace,) if trace else ())),
    )
