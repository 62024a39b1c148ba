"""``planner size``: the optimal disaggregated plan, baselines and savings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Group

from planner.cli._common import (
    CatalogDirOpt,
    Format,
    FormatOpt,
    OutputOpt,
    SizeEngineOpt,
    err_console,
    output_document,
    warn,
    with_line,
)

if TYPE_CHECKING:
    from planner.api.size import SizeRun


def size(
    workload_file: Annotated[
        Path | None, typer.Argument(metavar="WORKLOAD.yaml", help="Workload document.", dir_okay=False)
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id (one-class workload from flags).")] = None,
    rate_rps: Annotated[float | None, typer.Option("--rate-rps", help="Peak arrival rate, requests/s.")] = None,
    isl: Annotated[float | None, typer.Option("--isl", help="Input (prompt) tokens per request.")] = None,
    osl: Annotated[float | None, typer.Option("--osl", help="Output tokens per request.")] = None,
    ttft_p99_ms: Annotated[float | None, typer.Option("--ttft-p99-ms", help="TTFT target at p99, ms.")] = None,
    tpot_p99_ms: Annotated[float | None, typer.Option("--tpot-p99-ms", help="TPOT target at p99, ms.")] = None,
    interarrival_cv2: Annotated[float, typer.Option("--interarrival-cv2", help="Burstiness (1 = Poisson).")] = 1.0,
    precision: Annotated[str, typer.Option("--precision", help="bf16 or fp8.")] = "bf16",
    prefill_gpus: Annotated[
        list[str] | None, typer.Option("--prefill-gpus", help="Allowed prefill GPUs (repeatable or comma-separated).")
    ] = None,
    decode_gpus: Annotated[
        list[str] | None, typer.Option("--decode-gpus", help="Allowed decode GPUs (repeatable or comma-separated).")
    ] = None,
    links: Annotated[list[str] | None, typer.Option("--links", help="Allowed KV links (repeatable or comma-separated).")] = None,
    solver: Annotated[str, typer.Option("--solver", help="MIP solver: highs or cbc.")] = "highs",
    time_limit_s: Annotated[float | None, typer.Option("--time-limit-s", help="Solver time limit per solve, seconds.")] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Simulate the chosen plan (10,000 requests) and report SLO attainment.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="With --verify: exit 1 when the simulation finds a class missing its SLO (or the plan saturating).",
        ),
    ] = False,
    html_file: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a self-contained HTML report with charts and curves.", dir_okay=False),
    ] = None,
    emit: Annotated[
        tuple[str, Path] | None,
        typer.Option(
            "--emit",
            metavar="ENGINE DIR",
            help="Also write the plan's engine launch settings and Kubernetes manifest skeletons into DIR, a new or "
            "empty directory (ENGINE: vllm, sglang, dynamo, or auto: the plan's engine).",
        ),
    ] = None,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule",
            help="Plan each hour of the day (classes' rate_profile) with pools that scale on demand, against the fleet "
            "for the peak; with growth, what to buy month by month. -f csv: one row per hour and month.",
        ),
    ] = False,
    scale_up_lead_min: Annotated[
        float | None,
        typer.Option(
            "--scale-up-lead-min",
            help="With --schedule: minutes before its hour a replica added for it is paid (0-60; default 10, an assumption).",
        ),
    ] = None,
    engine: SizeEngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> int | None:
    """Size the prefill pool, decode pool and KV link for a workload at the lowest cost."""
    from planner.api import Precision, SolverName
    from planner.api.size import SizeInfeasibleError, SizeOptions, run_size
    from planner.errors import ExitCode
    from planner.report.engine import engine_line, engines_data, engines_table, with_engine_column
    from planner.report.envelope import envelope
    from planner.report.size import size_data, size_markdown, size_table, verify_failures
    from planner.report.speculative import with_speculative

    if strict and not verify:
        from planner.errors import InputError

        raise InputError("--strict: needs --verify (it fails the run on the simulation's verdict)", hint="add --verify")
    if html_file is not None and workload_file is not None:  # refused before the (slow) sizing
        from planner.io.output import check_output

        check_output(html_file, inputs=(workload_file,))
    if emit is not None:  # refused before the (slow) sizing: an unknown engine, a non-empty DIR, -o inside it
        from planner.api.emit import check_emit

        check_emit(*emit, outputs=(output, html_file), inputs=() if workload_file is None else (workload_file,))
    options = SizeOptions(
        workload_file=workload_file,
        model=model,
        rate_rps=rate_rps,
        isl=isl,
        osl=osl,
        ttft_p99_ms=ttft_p99_ms,
        tpot_p99_ms=tpot_p99_ms,
        interarrival_cv2=interarrival_cv2,
        precision=cast(Precision, precision),  # checked where the workload is read
        prefill_gpus=_split(prefill_gpus),
        decode_gpus=_split(decode_gpus),
        links=_split(links),
        engine=engine,
        catalog_dirs=tuple(catalog_dir or ()),
        solver=cast(SolverName, solver),  # checked by the library
        time_limit_s=time_limit_s,
        verify=verify,
        schedule=schedule,
        scale_up_lead_min=scale_up_lead_min,
        html_file=html_file,
        single_node=emit is not None,
    )
    try:
        run = run_size(options)
    except SizeInfeasibleError as exc:
        if fmt in (Format.json, Format.yaml):
            # Scripts get the diagnosis on stdout too; the error line still goes to stderr (exit 3).
            diag = {"message": exc.message, "hint": exc.hint, "diagnosis": exc.diagnosis}
            output_document(envelope("size", "infeasible", exc.inputs, diag), fmt, output)
        raise
    catalog = run.catalog
    data = size_data(run.result, catalog)
    emission = None
    if emit is not None:  # rendered (and refused) before anything is printed or written
        from planner.api.emit import prepare_emit

        emission = prepare_emit(run, *emit)
        data["emit"] = emission.doc()
    if run.comparison is not None:
        data["engines"] = engines_data(run.comparison)
    if run.simulation is not None:
        from planner.report.simulate import verification_data

        data["verification"] = verification_data(run.simulation)
    table: Any = size_table(run.result, catalog, data.get("verification"))
    if run.comparison is not None:
        table = Group(table, engines_table(data["engines"]))
    markdown = size_markdown(data, with_speculative(engine_line(catalog.engine), run.workload))
    csv_rows = data["line_items"]
    if run.schedule is not None:
        from planner.report.schedule import schedule_csv_rows, schedule_data, schedule_markdown, schedule_table

        data["schedule"] = schedule_data(run.schedule)
        table = Group(table, schedule_table(data["schedule"]))
        markdown += schedule_markdown(data["schedule"])
        csv_rows = schedule_csv_rows(data["schedule"])
    doc = envelope("size", "ok", run.inputs, data, run.warnings)
    if html_file is not None:  # refused before anything is printed or written
        from planner.io.output import check_output

        check_output(html_file, inputs=run.input_paths)
    if emission is not None:  # written before the report: a failed write prints nothing
        from planner.api.emit import write_emit
        from planner.io.output import check_output

        if output is not None:
            check_output(output, inputs=run.input_paths)
        write_emit(emission, inputs=run.input_paths)
        wrote = f"emit: wrote {len(emission.files)} files for {emission.rendered.label} to {emission.directory}"
        err_console().print(wrote, markup=False)
    if fmt is Format.table:
        for w in run.warnings:
            err_console().print(f"warning: {w}", markup=False)
    output_document(
        doc,
        fmt,
        output,
        table=with_line(table, with_speculative(engine_line(catalog.engine), run.workload)),
        markdown=markdown,
        csv_rows=with_engine_column(csv_rows, catalog.engine),
        inputs=run.input_paths,
    )
    if html_file is not None:
        _write_html(html_file, doc, run)
    failures = verify_failures(data.get("verification"))
    if failures:
        text = f"verify: the simulation misses the SLO ({'; '.join(failures)})"
        if strict:
            err_console().print(f"{text}; exit 1 (--strict)", markup=False)
            return int(ExitCode.CHECK_FAILED)
        warn(text)
    return None


def _write_html(path: Path, doc: dict[str, Any], run: SizeRun) -> None:
    import json

    from planner.api.size import size_sweeps
    from planner.io.output import write_text_atomic
    from planner.report.envelope import to_json
    from planner.report.html import size_html

    sweeps = size_sweeps(run, doc["inputs"]["workload"])
    page = size_html(json.loads(to_json(doc)), sweeps)
    write_text_atomic(path, page, inputs=run.input_paths)


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())
