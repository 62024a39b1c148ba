"""``planner size``: the optimal disaggregated plan, baselines and savings."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

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
    with_line,
)


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
    html_file: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a self-contained HTML report with charts and curves.", dir_okay=False),
    ] = None,
    engine: SizeEngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Size the prefill pool, decode pool and KV link for a workload at the lowest cost."""
    from planner import api
    from planner.errors import InfeasibleError, InputError
    from planner.report.engine import (
        engine_doc,
        engine_line,
        engines_data,
        engines_table,
        transfer_warnings,
        with_engine_column,
    )
    from planner.report.envelope import envelope
    from planner.report.size import size_data, size_markdown, size_table

    flags = {
        "--model": model,
        "--rate-rps": rate_rps,
        "--isl": isl,
        "--osl": osl,
        "--ttft-p99-ms": ttft_p99_ms,
        "--tpot-p99-ms": tpot_p99_ms,
    }
    inputs: dict[str, Any] = {}
    several = api.several_engines(engine)
    catalog = None
    written_in: Path | None = None
    if workload_file is not None:
        given = [k for k, v in flags.items() if v is not None]
        if given or prefill_gpus or decode_gpus or links:
            raise InputError(
                f"give a workload file or flags, not both ({', '.join(given) or 'hardware flags'} with {workload_file})"
            )
        spec = api.load_workload_spec(workload_file)
        written_in = workload_file
        if not several:
            catalog = api.workload_catalog(spec, workload_file, catalog_dir or (), engine)
        inputs["workload_file"] = str(workload_file)
        inputs["workload_sha256"] = hashlib.sha256(workload_file.read_bytes()).hexdigest()
        origin = str(workload_file)
    else:
        missing = [k for k, v in flags.items() if v is None]
        if missing:
            raise InputError(
                f"size: give WORKLOAD.yaml, or all of --model --rate-rps --isl --osl --ttft-p99-ms --tpot-p99-ms "
                f"(missing {', '.join(missing)})"
            )
        if not several:
            catalog = api.engine_catalog(catalog_dir or (), engine)
        spec = api.workload_spec_from_flags(
            model=model or "",
            rate_rps=rate_rps or 0.0,
            isl=isl or 0.0,
            osl=osl or 0.0,
            ttft_p99_ms=ttft_p99_ms or 0.0,
            tpot_p99_ms=tpot_p99_ms or 0.0,
            precision=precision,
            prefill_gpus=_split(prefill_gpus),
            decode_gpus=_split(decode_gpus),
            links=_split(links),
            interarrival_cv2=interarrival_cv2,
        )
        origin = "flags"
    inputs["workload"] = spec.model_dump(mode="json", exclude_none=True)
    inputs["solver"] = solver
    comparison = None
    try:
        if catalog is None:  # --engine auto or a list: size under each, keep the best
            comparison = api.size_engines(
                spec,
                engine or "",
                written_in=written_in,
                catalog_dirs=catalog_dir or (),
                origin=origin,
                solver=solver,
                time_limit_s=time_limit_s,
            )
            catalog, workload, found = comparison.best.catalog, comparison.best.workload, comparison.best.result
            assert found is not None
            result = found
            inputs["engines"] = [r.engine.label for r in comparison.runs]
        else:
            inputs["engine"] = engine_doc(catalog.engine)
            workload = api.resolve_workload(spec, catalog, origin)
            result = api.size(workload, catalog, solver=solver, time_limit_s=time_limit_s)
    except InfeasibleError as exc:
        tried = exc.diagnosis.get("engines") if several else None
        if isinstance(tried, list):
            inputs["engines"] = [e["engine"] for e in tried]
        if fmt in (Format.json, Format.yaml):
            # Scripts get the diagnosis on stdout too; the error line still goes to stderr (exit 3).
            diag = {"message": exc.message, "hint": exc.hint, "diagnosis": exc.diagnosis}
            output_document(envelope("size", "infeasible", inputs, diag), fmt, output)
        raise
    inputs["engine"] = engine_doc(catalog.engine)
    data = size_data(result, catalog)
    warnings = list(result.warnings)
    warnings += transfer_warnings(
        catalog, (pr.pool.gpu for pr in result.plan.evaluation.pools), workload.precision, power=False
    )  # sizing's own warnings name a transferred power set
    table: Any = size_table(result, catalog)
    if comparison is not None:
        data["engines"] = engines_data(comparison)
        warnings += [
            f"engine {r.engine.label}: no plan ({r.infeasible.message})" for r in comparison.runs if r.infeasible is not None
        ]
        table = Group(table, engines_table(data["engines"]))
    if verify:
        from planner.report.simulate import verification_data
        from planner.sim import SimOptions

        sim = api.simulate(workload, result.plan.deployment, catalog, SimOptions(requests=10_000))
        data["verification"] = verification_data(sim)
        warnings += [f"verify: {w}" for w in sim.warnings]
    doc = envelope("size", "ok", inputs, data, warnings)
    if html_file is not None:  # refused before anything is printed or written
        from planner.io.output import check_output

        check_output(html_file, inputs=(workload_file,) if workload_file else ())
    if fmt is Format.table:
        for w in warnings:
            err_console().print(f"warning: {w}", markup=False)
    output_document(
        doc,
        fmt,
        output,
        table=with_line(table, engine_line(catalog.engine)),
        markdown=size_markdown(data, engine_line(catalog.engine)),
        csv_rows=with_engine_column(data["line_items"], catalog.engine),
        inputs=(workload_file,) if workload_file else (),
    )
    if html_file is not None:
        assert catalog is not None
        _write_html(html_file, doc, catalog, solver, time_limit_s, workload_file)


def _write_html(
    path: Path, doc: dict[str, Any], catalog: Any, solver: str, time_limit_s: float | None, workload_file: Path | None
) -> None:
    import json

    from planner.api.sweep import report_sweeps
    from planner.io.output import write_text_atomic
    from planner.report.envelope import to_json
    from planner.report.html import size_html

    sweeps = report_sweeps(doc["inputs"]["workload"], catalog, solver=solver, time_limit_s=time_limit_s)
    page = size_html(json.loads(to_json(doc)), sweeps)
    write_text_atomic(path, page, inputs=(workload_file,) if workload_file else ())


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]
