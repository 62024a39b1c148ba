"""``planner profile``: a request trace → its workload profile (and the workload YAML ``planner size`` reads)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from planner.cli._common import CatalogDirOpt, Format, FormatOpt, err_console, output_document

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
    from planner import api
    from planner.errors import InputError
    from planner.io.output import write_text_atomic
    from planner.io.traces import read_trace
    from planner.io.workload import parse_workload
    from planner.io.yamlio import dumps
    from planner.profile.analysis import phase_share_for
    from planner.profile.analysis import profile as make_profile
    from planner.report.envelope import envelope
    from planner.report.profile import profile_data, profile_table, workload_document

    k: int | str | None = None
    if classes is not None:
        if classes.strip().lower() == "auto":
            k = "auto"
        else:
            try:
                k = int(classes)
            except ValueError:
                raise InputError(f"--classes {classes}: give a number of classes or auto") from None
    if precision not in ("bf16", "fp8"):
        raise InputError(f"--precision {precision}: use bf16 or fp8")
    if output is not None and model is None:
        raise InputError("-o writes a workload for planner size, which needs the model: add --model")
    slo_flags = {"--ttft-p99-ms": ttft_p99_ms, "--tpot-p99-ms": tpot_p99_ms}
    for flag, value in slo_flags.items():
        if value is not None and not value > 0:
            raise InputError(f"{flag} {value}: must be a positive number of milliseconds")
    catalog = api.load_catalog(catalog_dir or ()) if model is not None else None

    tf = _read(read_trace, trace_file, trace_format, columns)
    trace = tf.trace
    prof = make_profile(trace, window_s=window_s, classes=k, origin=str(trace_file))  # type: ignore[arg-type]
    phase = None
    if model is not None and catalog is not None:
        m = api.resolve_model(catalog, model)
        g = api.resolve_gpu(catalog, gpu)
        phase = phase_share_for(
            trace,
            m,
            g,
            catalog.engine,
            lambda t: api.hardware(catalog, g, t),
            tp=tp,
            precision=precision,  # type: ignore[arg-type]
        )
    warnings: list[str] = []
    if tf.trace.failed:
        warnings.append(f"{trace_file}: {tf.trace.failed:,} of {tf.rows:,} requests failed (0 response tokens) and are left out")
    if prof.out_of_order_requests:
        warnings.append(
            f"{trace_file}: timestamps are not sorted ({prof.out_of_order_requests:,} requests arrive before the one logged "
            "above them); the trace was sorted by arrival time before profiling"
        )
    data = profile_data(prof, phase)
    inputs: dict[str, Any] = {
        "trace": str(trace_file),
        "trace_format": tf.format,
        "container": tf.container,
        "compressed": tf.compressed,
        "rows_read": tf.rows,
        "window_s": window_s,
        "classes": classes,
        "model": None if phase is None else phase.model,
        "gpu": None if phase is None else phase.gpu,
        "tp": None if phase is None else phase.tp,
        "precision": precision,
        "ttft_p99_ms": ttft_p99_ms,
        "tpot_p99_ms": tpot_p99_ms,
    }
    if output is not None and phase is not None:
        missing = [f for f, v in slo_flags.items() if v is None]
        slo = None if missing else {"ttft_p99_ms": ttft_p99_ms, "tpot_p99_ms": tpot_p99_ms}
        doc, doc_warnings = workload_document(prof, model=phase.model, precision=precision, slo=slo)  # type: ignore[arg-type]
        warnings += doc_warnings
        # Validate what planner size will read (with a stand-in SLO when none was given).
        check = doc if slo else {**doc, "classes": [{**c, "slo": {"ttft_p99_ms": 1, "tpot_p99_ms": 1}} for c in doc["classes"]]}
        parse_workload(check, str(output))
        header = f"# workload profiled from {trace_file} by planner profile\n"
        if missing:
            header += (
                f"# no slo: planner size needs one per class; rerun with {' and '.join(missing)} "
                "or add slo: {ttft_p99_ms: ..., tpot_p99_ms: ...} to each class\n"
            )
            warnings.append(
                f"{output}: written without slo (missing {', '.join(missing)}); planner size needs "
                "--ttft-p99-ms and --tpot-p99-ms given here, or an slo added to each class"
            )
        write_text_atomic(output, header + dumps(doc), inputs=(trace_file,))
        inputs["workload_file"] = str(output)
    env = envelope("profile", "ok", inputs, data, warnings)
    for w in warnings:
        err_console().print(f"warning: {w}", markup=False, soft_wrap=True)
    output_document(env, fmt, None, table=profile_table(data, str(trace_file)))


def _read(read_trace: Any, path: Path, fmt: str, columns: str | None) -> Any:
    """Read the trace, with a progress bar on stderr for large files read from a terminal."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return read_trace(path, fmt, columns)
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
        return read_trace(path, fmt, columns, progress=lambda done, total: bar.update(task, completed=done))
