"""``planner sweep``: re-size a workload across a range of one input."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

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
    time_limit_s: Annotated[float | None, typer.Option("--time-limit-s", help="Solver time limit per solve, seconds.")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes (default: one per local core).")] = None,
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
    from planner import api
    from planner.api.sweep import parse_vary
    from planner.api.sweep import sweep as run_sweep
    from planner.io.output import check_output, write_text_atomic
    from planner.report.engine import engine_doc, engine_line, with_engine_column
    from planner.report.envelope import envelope, to_json
    from planner.report.sweep import csv_rows, sweep_markdown, sweep_table

    spec = api.load_workload_spec(workload_file)
    catalog = api.workload_catalog(spec, workload_file, catalog_dir or (), engine)
    api.resolve_workload(spec, catalog, str(workload_file))  # the unchanged document must resolve
    v = parse_vary(vary, catalog)
    doc = spec.model_dump(mode="json", exclude_none=True)
    data = run_sweep(doc, catalog, v, solver=solver, time_limit_s=time_limit_s, jobs=jobs, origin=str(workload_file))
    inputs: dict[str, Any] = {
        "workload_file": str(workload_file),
        "workload_sha256": hashlib.sha256(workload_file.read_bytes()).hexdigest(),
        "workload": doc,
        "vary": {"variable": v.name, "values": list(v.values), "unit": v.unit},
        "solver": solver,
        "engine": engine_doc(catalog.engine),
    }
    result = envelope("sweep", "ok", inputs, data)
    if html_file is not None:  # refused before anything is printed or written
        check_output(html_file, inputs=(workload_file,))
    line = engine_line(catalog.engine)
    output_document(
        result,
        fmt,
        output,
        table=with_line(sweep_table(data), line),
        markdown=sweep_markdown(data, line),
        csv_rows=with_engine_column(csv_rows(data), catalog.engine),
        inputs=(workload_file,),
    )
    if html_file is not None:
        import json

        from planner.report.html import sweep_html

        # Round-trip through the JSON text so the page embeds exactly what --format json prints.

        write_text_atomic(html_file, sweep_html(json.loads(to_json(result))), inputs=(workload_file,))
