"""``planner profile``: a request trace → its workload profile (and the workload YAML ``planner size`` reads)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli._common import CatalogDirOpt, Format, FormatOpt, err_console, output_document

if TYPE_CHECKING:
    from planner.api.profile import ProfileOptions, ProfileRun

PROGRESS_MIN_BYTES = 64 << 20


def profile(
    trace_file: Annotated[Path, typer.Argument(metavar="TRACE", help="Trace file (CSV, JSONL or Parquet; gzip allowed).")],
    trace_format: Annotated[
        str,
        typer.Option("--trace-format", "-t", help="auto, azure, burstgpt, mooncake, vidur, csv or jsonl."),
    ] = "auto",
    columns: Annotated[
        str | None,
        typer.Option("--columns", help="Column names: time=NAME,input=NAME,output=NAME[,hash_ids=NAME][,time_unit=s|ms|us|ns]."),
    ] = None,
    window_s: Annotated[float, typer.Option("--window-s", help="Sliding window of the peak rate, seconds.")] = 60.0,
    classes: Annotated[str | None, typer.Option("--classes", help="Request classes by length: a count K, or auto.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id: prefill/decode share, and needed for -o.")] = None,
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU of the prefill/decode share.")] = "h100-sxm",
    tp: Annotated[int | None, typer.Option("--tp", help="Tensor-parallel degree (default: smallest that fits).")] = None,
    precision: Annotated[str, typer.Option("--precision", help="bf16 or fp8.")] = "bf16",
    ttft_p99_ms: Annotated[float | None, typer.Option("--ttft-p99-ms", help="TTFT target at p99 for -o, ms.")] = None,
    tpot_p99_ms: Annotated[float | None, typer.Option("--tpot-p99-ms", help="TPOT target at p99 for -o, ms.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the workload YAML (what planner size reads) here.", dir_okay=False),
    ] = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Profile a request trace: rates, burstiness, length percentiles, prefix reuse, classes."""
    from planner.api.profile import ProfileOptions
    from planner.io.output import write_text_atomic
    from planner.report.envelope import envelope
    from planner.report.profile import profile_data, profile_table

    options = ProfileOptions(
        trace=trace_file,
        trace_format=trace_format,
        columns=columns,
        window_s=window_s,
        classes=classes,
        model=model,
        gpu=gpu,
        tp=tp,
        precision=precision,
        ttft_p99_ms=ttft_p99_ms,
        tpot_p99_ms=tpot_p99_ms,
        workload_file=output,
        catalog_dirs=tuple(catalog_dir or ()),
    )
    run = _run(options)
    if run.workload_text is not None and output is not None:
        write_text_atomic(output, run.workload_text, inputs=run.files_read)
    data = profile_data(run.profile, run.phase)
    env = envelope("profile", "ok", run.inputs, data, run.warnings)
    for w in run.warnings:
        err_console().print(f"warning: {w}", markup=False, soft_wrap=True)
    output_document(env, fmt, None, table=profile_table(data, str(trace_file)))


def _run(options: ProfileOptions) -> ProfileRun:
    """:func:`planner.api.profile.run_profile`, with a progress bar on stderr while a large trace is read from a terminal."""
    from planner.api.profile import run_profile

    path = options.trace
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return run_profile(options)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(f"reading {path.name}", total=size)
        return run_profile(replace(options, progress=lambda done, total: bar.update(task, completed=done)))
