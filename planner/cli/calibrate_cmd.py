"""``planner calibrate fit`` and ``planner calibrate run``: flags to options, :mod:`planner.api.calibrate`, the renderers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli._common import CatalogDirOpt, Format, FormatOpt, OutputOpt, output_document

if TYPE_CHECKING:
    from rich.console import RenderableType

    from planner.api.calibrate import CalibrateFitRun

app = typer.Typer(help="Fit the performance core to measurements of your engine and GPUs.", no_args_is_help=True)


@app.command()
def fit(
    measurements: Annotated[
        list[Path] | None, typer.Argument(help="Measurement CSV file(s) (docs/calibration.md).", dir_okay=False)
    ] = None,
    splitwise: Annotated[
        list[Path] | None, typer.Option("--splitwise", help="A Splitwise perf_model.csv to fit on (repeatable).", dir_okay=False)
    ] = None,
    sglang: Annotated[
        list[Path] | None,
        typer.Option(
            "--sglang",
            help="An SGLang bench_one_batch result JSONL to fit on (repeatable; needs --model --gpu --tp --precision).",
            dir_okay=False,
        ),
    ] = None,
    vllm: Annotated[
        list[Path] | None,
        typer.Option(
            "--vllm",
            help="A vLLM bench latency --output-json or .pytorch.json file (repeatable; needs --model --gpu --precision).",
            dir_okay=False,
        ),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Catalog model of the --sglang/--vllm runs.")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", "-g", help="Catalog GPU of the --sglang/--vllm runs.")] = None,
    tp: Annotated[int | None, typer.Option("--tp", help="Tensor-parallel degree of the --sglang/--vllm runs.")] = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="bf16 or fp8: precision of the --sglang/--vllm runs.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="--vllm: the run's --batch-size (when the file does not record it).")
    ] = None,
    input_len: Annotated[
        int | None, typer.Option("--input-len", help="--vllm: the run's --input-len (when the file does not record it).")
    ] = None,
    output_len: Annotated[
        int | None, typer.Option("--output-len", help="--vllm: the run's --output-len (when the file does not record it).")
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option("--write", "-w", help="Write the fitted factors as an efficiency.yaml catalog overlay.", dir_okay=False),
    ] = None,
    merge_into: Annotated[
        Path | None,
        typer.Option("--merge-into", help="Keep the entries of this efficiency.yaml that were not re-fitted.", dir_okay=False),
    ] = None,
    source: Annotated[str, typer.Option("--source", help="Source id recorded with the fitted factors.")] = "user-measurements",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Date recorded with the fitted factors (YYYY-MM-DD; default: the measurement files' source date)."
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", help="Folds of the held-out (cross-validation) error; 0 to skip.")] = 5,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Fit only the rows of this engine (the CSV's engine column; sglang, vllm, splitwise)."),
    ] = None,
    op_tables: Annotated[
        Path | None,
        typer.Option(
            "--op-tables",
            help="Fit the kernel factors of --engine (vllm, sglang, trtllm) on aiconfigurator-core's per-op latency "
            "tables in this directory (its systems/data, or a directory laid out like it).",
            file_okay=False,
        ),
    ] = None,
    fp8_gemm: Annotated[
        str,
        typer.Option("--fp8-gemm", help="--op-tables: the fp8 GEMM rows of the fp8 set: fp8 (per-tensor) or fp8_block."),
    ] = "fp8",
    serving: Annotated[
        list[Path] | None,
        typer.Option(
            "--serving",
            help="Fit --engine's overheads (prefill/decode fixed costs, per-sequence cost, client sync, request latency) "
            "on end-to-end serving measurements at fixed concurrency (aiconfigurator-core's silicon_sample.csv form), "
            "the rows of --fit-models only; the other models' rows are reported as held out. Repeatable.",
            dir_okay=False,
        ),
    ] = None,
    fit_models: Annotated[
        str,
        typer.Option("--fit-models", help="--serving: comma-separated models whose rows are the training split."),
    ] = "llama-3.1-8b,qwen3-32b",
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Least-squares fit of compute/memory efficiency, fixed costs and all-reduce factors per GPU
    and precision (fp8 runs get their own set). With --op-tables: the kernel factors only, from
    per-op latency tables."""
    from planner.api.calibrate import CalibrateFitOptions, run_fit
    from planner.report.calibration import fit_data, fit_table
    from planner.report.envelope import envelope
    from planner.report.serve import serving_fit_data, serving_fit_table

    options = CalibrateFitOptions(
        measurement_files=tuple(measurements or ()),
        splitwise_files=tuple(splitwise or ()),
        sglang_files=tuple(sglang or ()),
        vllm_files=tuple(vllm or ()),
        model=model,
        gpu=gpu,
        tp=tp,
        precision=precision,
        batch_size=batch_size,
        input_len=input_len,
        output_len=output_len,
        engine=engine,
        folds=folds,
        op_tables=op_tables,
        fp8_gemm=fp8_gemm,
        serving_files=tuple(serving or ()),
        fit_models=tuple(m.strip() for m in fit_models.split(",") if m.strip()),
        write=write,
        merge_into=merge_into,
        source=source,
        as_of=as_of,
        catalog_dirs=tuple(catalog_dir or ()),
    )
    result = run_fit(options)
    if result.written is not None:
        sys.stderr.write(f"wrote {result.written}\n")
    read = tuple(Path(s.path) for s in result.sources)
    if result.serving is not None:
        doc = envelope("calibrate fit", "ok", result.inputs, serving_fit_data(result.serving), list(result.warnings))
        output_document(doc, fmt, output, table=serving_fit_table(result.serving), inputs=read)
    elif result.op_tables is not None:
        data, table = _op_tables_report(result)
        doc = envelope("calibrate fit", "ok", result.inputs, data, list(result.warnings))
        output_document(doc, fmt, output, table=table, inputs=read)
    else:
        assert result.calibration is not None
        cal = result.calibration
        doc = envelope("calibrate fit", "ok", result.inputs, fit_data(cal.fits, cal.held_out), list(result.warnings))
        output_document(doc, fmt, output, table=fit_table(cal.fits, cal.held_out), inputs=read)


def _op_tables_report(result: CalibrateFitRun) -> tuple[dict[str, object], RenderableType]:
    """``calibrate fit --op-tables``: the envelope's data and the tables of the kernel factors."""
    from rich.console import Group
    from rich.table import Table

    fitted = result.op_tables
    assert fitted is not None
    engine = fitted.engine
    fits: dict[str, object] = {}
    factors = Table(title=f"{engine} kernel factors fitted on {fitted.data_dir}")
    for col in ("gpu", "precision", "compute", "attention", "memory", "kv read", "allreduce bw", "allreduce lat"):
        factors.add_column(col, justify="left" if col in ("gpu", "precision") else "right")
    ops = Table(title="rows fitted per op (excluded: faster than the roofline allows), median |predicted/measured - 1|")
    for col in ("gpu", "prec", "op", "table", "rows", "excl", "median %", "rows of"):
        ops.add_column(col, justify="right" if col in ("rows", "excl", "median %") else "left")
    for key, f in fitted.fits.items():
        fa = f.factors
        factors.add_row(
            f.gpu, f.precision, f"{fa['compute_frac']:.3f}", f"{fa['attention_compute_frac']:.3f}", f"{fa['memory_frac']:.3f}",
            f"{f.kv_read_frac:.3f}", f"{fa['allreduce_bandwidth_frac']:.3f}", f"{1e6 * fa['allreduce_latency_s']:.2f} us",
        )  # fmt: skip
        for op, use in f.ops.items():
            ops.add_row(
                f.gpu, f.precision, op.replace("_attention", ""), "/".join(use.table.split("/")[1:4]), str(use.fit.rows),
                str(use.fit.excluded), f"{100 * use.fit.median_abs_error_frac:.1f}", use.selection,
            )  # fmt: skip
        fits[key] = {
            "gpu": f.gpu,
            "system": f.system,
            "precision": f.precision,
            "factors": dict(fa),
            "kv_read_frac": f.kv_read_frac,
            "ops": {
                op: {
                    "table": use.table,
                    "version": use.version,
                    "selection": use.selection,
                    "rows": use.fit.rows,
                    "excluded": use.fit.excluded,
                    "candidates": use.fit.candidates,
                    "median_abs_error_frac": use.fit.median_abs_error_frac,
                    "worst_abs_error_frac": use.fit.worst_abs_error_frac,
                    "detail": dict(use.fit.detail),
                }
                for op, use in f.ops.items()
            },
        }
    parts: list[RenderableType] = [factors, ops]
    if fitted.skipped:
        parts.append("skipped: " + "; ".join(f"{k} ({v})" for k, v in fitted.skipped.items()))
    data: dict[str, object] = {"engine": engine, "tables_dir": fitted.data_dir, "source": fitted.source, "as_of": fitted.as_of,
            "fits": fits, "skipped": dict(fitted.skipped)}  # fmt: skip
    return data, Group(*parts)


@app.command()
def run(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="Catalog id of the local GPU, recorded in each row (e.g. h100-sxm).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Measurement CSV to write.", dir_okay=False)],
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model(s) to time (default: llama-3.1-8b and llama-3.1-70b).")
    ] = None,
    layers: Annotated[
        int | None, typer.Option("--layers", help="Layers timed per model (scaled to its depth; default: 32 for 8B, 8 for 70B).")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Two prefill and two decode points per model (a code-path check).")
    ] = False,
    device: Annotated[
        str, typer.Option("--device", help="cuda (a real calibration) or cpu (tests the code path only).")
    ] = "cuda",
    tp: Annotated[
        list[int] | None,
        typer.Option("--tp", help="Tensor-parallel degree(s) to time, one process per GPU (repeatable; default 1)."),
    ] = None,
    precision: Annotated[
        list[str] | None, typer.Option("--precision", help="bf16 and/or fp8 projection weights (repeatable; default bf16).")
    ] = None,
    power: Annotated[
        bool,
        typer.Option(
            "--power",
            help="Also sample board power (NVML, needs nvidia-ml-py) while each step is replayed back to back, and idle; "
            "TP 1 only. Adds power_mean_w, power_peak_w, power_samples columns.",
        ),
    ] = False,
    power_seconds: Annotated[
        float, typer.Option("--power-seconds", help="--power: seconds of back-to-back replay per step (after 0.5 s settling).")
    ] = 2.0,
    catalog_dir: CatalogDirOpt = None,
) -> None:
    """Time model-shaped decoder stacks on the local NVIDIA GPU (random weights, CUDA graphs) and
    write the measurement CSV that `planner calibrate fit` takes. Needs `pip install 'planner[gpu]'`."""
    from planner.api.calibrate import CalibrateRunOptions, run_microbench
    from planner.io.output import write_text_atomic

    options = CalibrateRunOptions(
        gpu=gpu,
        models=tuple(model or ()),
        layers=layers,
        quick=quick,
        device=device,
        tp=tuple(tp or (1,)),
        precisions=tuple(precision or ("bf16",)),
        power=power,
        power_seconds=power_seconds,
        catalog_dirs=tuple(catalog_dir or ()),
    )
    result = run_microbench(options, progress=_progress)
    write_text_atomic(output, result.csv_text)
    sys.stderr.write(f"wrote {len(result.rows)} measurements to {output}\n")


def _progress(line: str) -> None:
    sys.stderr.write(f"{line}\n")
