"""``planner trace synth``: seeded synthetic request traces in any supported format."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from planner.cli._common import Format, output_document

if TYPE_CHECKING:
    from planner.api.trace import TraceSynthRun

app = typer.Typer(help="Request traces: generate synthetic ones.", no_args_is_help=True)


class SummaryFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


@app.command("synth")
def synth(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write (gzip when the name ends in .gz).", dir_okay=False)
    ],
    format_out: Annotated[
        str, typer.Option("--format-out", help="azure, azure-2024, burstgpt, mooncake, vidur, csv or jsonl.")
    ] = "azure",
    requests: Annotated[int, typer.Option("--requests", "-n", help="Number of requests.")] = 1000,
    rate_rps: Annotated[float, typer.Option("--rate-rps", help="Mean arrival rate, requests/s.")] = 1.0,
    cv2: Annotated[float, typer.Option("--cv2", help="Squared CV of inter-arrival gaps (1 = Poisson, > 1 bursty Gamma).")] = 1.0,
    isl_mean: Annotated[float, typer.Option("--isl-mean", help="Mean input tokens (lognormal).")] = 1024.0,
    isl_sigma: Annotated[float, typer.Option("--isl-sigma", help="Log-space sigma of input tokens.")] = 1.0,
    isl_max: Annotated[int, typer.Option("--isl-max", help="Largest input, tokens.")] = 131_072,
    osl_mean: Annotated[float, typer.Option("--osl-mean", help="Mean output tokens (lognormal).")] = 256.0,
    osl_sigma: Annotated[float, typer.Option("--osl-sigma", help="Log-space sigma of output tokens.")] = 0.8,
    osl_max: Annotated[int, typer.Option("--osl-max", help="Largest output, tokens.")] = 16_384,
    diurnal: Annotated[bool, typer.Option("--diurnal", help="Daily cycle: the rate swings ±50% over 24 h.")] = False,
    prefix_share: Annotated[
        float, typer.Option("--prefix-share", help="Share of requests opening with a shared prefix (hash_ids).")
    ] = 0.5,
    fail_frac: Annotated[
        float, typer.Option("--fail-frac", help="Share of failed requests (0 output tokens; BurstGPT-style).")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Random seed (same seed, same file).")] = 0,
    fmt: Annotated[
        SummaryFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="Also print a summary of the trace written (table, json or yaml) on stdout; without it, "
            "nothing is printed (the trace itself goes to --output; its file format is --format-out).",
            case_sensitive=False,
        ),
    ] = None,
) -> None:
    """Write a synthetic trace: Poisson or Gamma arrivals, lognormal lengths, optional daily cycle."""
    from planner.api.trace import TraceSynthOptions, run_trace_synth

    run = run_trace_synth(
        TraceSynthOptions(
            path=output,
            file_format=format_out,
            requests=requests,
            rate_rps=rate_rps,
            cv2=cv2,
            isl_mean=isl_mean,
            isl_sigma=isl_sigma,
            isl_max=isl_max,
            osl_mean=osl_mean,
            osl_sigma=osl_sigma,
            osl_max=osl_max,
            diurnal=diurnal,
            prefix_share=prefix_share,
            fail_frac=fail_frac,
            seed=seed,
        )
    )
    if fmt is not None:
        _summary(run, Format(fmt.value))


def synth_summary(run: TraceSynthRun) -> dict[str, Any]:
    """What ``planner trace synth -f`` reports of the trace it wrote."""
    import numpy as np

    trace = run.trace
    n = len(trace)
    t = trace.arrival_s
    span = float(t.max() - t.min()) if n > 1 else 0.0
    return {
        "path": str(run.path),
        "file_format": run.file_format,
        "requests": n,
        "failed": trace.failed,
        "span_s": span,
        "mean_rate_rps": (n - 1) / span if span > 0 else None,
        "input_tokens_mean": float(np.mean(trace.input_tokens)) if n else None,
        "input_tokens_max": int(np.max(trace.input_tokens)) if n else None,
        "output_tokens_mean": float(np.mean(trace.output_tokens)) if n else None,
        "output_tokens_max": int(np.max(trace.output_tokens)) if n else None,
        "seed": run.options.seed,
    }


def _summary(run: TraceSynthRun, fmt: Format) -> None:
    from dataclasses import asdict

    from rich.table import Table

    from planner.report.envelope import envelope

    data = synth_summary(run)
    inputs = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(run.options).items()}
    table = Table(title=f"trace written: {run.path} ({run.file_format})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in data.items():
        if key in ("path", "file_format"):
            continue
        table.add_row(key, "-" if value is None else f"{value:,.2f}" if isinstance(value, float) else str(value))
    output_document(envelope("trace synth", "ok", inputs, data), fmt, None, table=table)
