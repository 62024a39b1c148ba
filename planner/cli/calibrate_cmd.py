"""``planner calibrate fit``: fit efficiency factors to measurements, write a catalog overlay."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import CatalogDirOpt, Format, FormatOpt, OutputOpt, output_document

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
    from planner import api
    from planner.errors import InputError
    from planner.report.calibration import fit_data, fit_table
    from planner.report.envelope import envelope

    if serving:
        if engine is None:
            raise InputError("--serving needs --engine (the engine whose overheads are fitted)")
        if op_tables is not None or measurements or splitwise or sglang or vllm:
            raise InputError("--serving: fits serving measurements alone; drop the other inputs")
        _fit_serving(serving, engine, fit_models, write=write, source=source, as_of=as_of, catalog_dir=catalog_dir, fmt=fmt,
                     output=output)  # fmt: skip
        return
    if op_tables is not None:
        others = {
            "a measurement CSV": measurements, "--splitwise": splitwise, "--sglang": sglang, "--vllm": vllm,
            "--model": model, "--tp": tp, "--precision": precision, "--batch-size": batch_size,
            "--input-len": input_len, "--output-len": output_len, "--merge-into": merge_into,
        }  # fmt: skip
        given = [name for name, value in others.items() if value]
        if given:
            raise InputError(f"--op-tables: fits the op tables alone; drop {', '.join(given)}")
        if engine is None:
            raise InputError("--op-tables needs --engine (vllm, sglang or trtllm): the tables hold one set per engine")
        _fit_op_tables(op_tables, engine, gpu=gpu, fp8_gemm=fp8_gemm, write=write, source=source, as_of=as_of,
                       catalog_dir=catalog_dir, fmt=fmt, output=output)  # fmt: skip
        return
    if folds == 1 or folds < 0:
        raise InputError("--folds must be 0 (skip) or at least 2")
    if not measurements and not splitwise and not sglang and not vllm:
        raise InputError("calibrate fit: give a measurement CSV, --splitwise FILE, --sglang FILE or --vllm FILE")
    result = api.calibrate(
        list(measurements or ()),
        list(splitwise or ()),
        sglang_files=list(sglang or ()),
        vllm_files=list(vllm or ()),
        model=model,
        gpu=gpu,
        tp=tp,
        precision=precision,
        batch_size=batch_size,
        input_len=input_len,
        output_len=output_len,
        source=source,
        as_of=as_of,
        catalog_dirs=catalog_dir or (),
        folds=folds,
        engine=engine,
    )
    files = [*(measurements or ()), *(splitwise or ()), *(sglang or ()), *(vllm or ())]
    if write is not None:
        api.write_efficiency_overlay(write, result, merge_into=merge_into, inputs=files)
        sys.stderr.write(f"wrote {write}\n")
    inputs: dict[str, object] = {
        "measurements": [str(p) for p in measurements or ()],
        "splitwise": [str(p) for p in splitwise or ()],
    }
    inputs |= {name: [str(p) for p in paths] for name, paths in (("sglang", sglang), ("vllm", vllm)) if paths}
    if engine is not None:
        inputs["engine"] = engine
    doc = envelope("calibrate fit", "ok", inputs, fit_data(result.fits, result.held_out))
    output_document(doc, fmt, output, table=fit_table(result.fits, result.held_out))


OP_TABLES_SOURCE = "aiconfigurator-core-0-12-0"


def _fit_op_tables(
    tables: Path, engine: str, *, gpu: str | None, fp8_gemm: str, write: Path | None, source: str, as_of: str | None,
    catalog_dir: list[Path] | None, fmt: Format, output: Path | None,
) -> None:  # fmt: skip
    """``calibrate fit --op-tables``: print (and with --write, write) the kernel factors."""
    from rich.console import Group, RenderableType
    from rich.table import Table

    from planner import api
    from planner.errors import InputError
    from planner.io.optables import write_kernel_overlay
    from planner.report.envelope import envelope

    src = OP_TABLES_SOURCE if source == "user-measurements" else source
    result = api.fit_op_tables(
        tables, engine, catalog_dirs=catalog_dir or (), gpu=gpu, fp8_gemm=fp8_gemm, source=src, as_of=as_of
    )
    if write is not None:
        if result.as_of == "unknown":
            raise InputError(
                f"--write: source {src!r} is in no sources.yaml, so the factors have no date: give --as-of YYYY-MM-DD"
            )
        write_kernel_overlay(write, engine, result.overlay_entries())
        sys.stderr.write(f"wrote {write}\n")
    fits: dict[str, object] = {}
    factors = Table(title=f"{engine} kernel factors fitted on {result.data_dir}")
    for col in ("gpu", "precision", "compute", "attention", "memory", "kv read", "allreduce bw", "allreduce lat"):
        factors.add_column(col, justify="left" if col in ("gpu", "precision") else "right")
    ops = Table(title="rows fitted per op (excluded: faster than the roofline allows), median |predicted/measured - 1|")
    for col in ("gpu", "prec", "op", "table", "rows", "excl", "median %", "rows of"):
        ops.add_column(col, justify="right" if col in ("rows", "excl", "median %") else "left")
    for key, f in result.fits.items():
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
    if result.skipped:
        parts.append("skipped: " + "; ".join(f"{k} ({v})" for k, v in result.skipped.items()))
    inputs: dict[str, object] = {"op_tables": str(tables), "engine": engine, "fp8_gemm": fp8_gemm}
    data = {"engine": engine, "tables_dir": result.data_dir, "source": result.source, "as_of": result.as_of,
            "fits": fits, "skipped": dict(result.skipped)}  # fmt: skip
    doc = envelope("calibrate fit", "ok", inputs, data)
    output_document(doc, fmt, output, table=Group(*parts))


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
    from planner import api
    from planner.calibrate import microbench, powersample
    from planner.errors import InputError
    from planner.io.output import write_text_atomic

    if device not in ("cuda", "cpu"):
        raise InputError(f"--device {device}: use cuda or cpu")
    if power and (device != "cuda" or any(t != 1 for t in tp or [1])):
        raise InputError("--power: board power is read on a CUDA GPU at TP 1 only (--device cuda, --tp 1)")
    if not power_seconds > 0:
        raise InputError(f"--power-seconds {power_seconds}: must be positive")
    catalog = api.load_catalog(catalog_dir or ())
    gpu_id = api.resolve_gpu(catalog, gpu).id
    tps, precisions = sorted(set(tp or [1])), sorted(set(precision or ["bf16"]))
    specs = [api.resolve_model(catalog, raw) for raw in model or list(microbench.DEFAULT_GRID)]
    info = microbench.device_info(device)  # refuses a machine without a CUDA GPU
    for t in tps:  # and what this one cannot run, before anything is timed
        for p in precisions:
            microbench.check_setup(device, t, p)
    rows: list[microbench.Row] = []
    timed: dict[str, int] = {}
    probe: microbench.PowerProbe | None = None
    header: dict[str, str | float] | None = None
    nv = None
    if power:
        nv = powersample.nvml_reader(0)
        probe = microbench.power_probe(nv.read_w, seconds=power_seconds)
        idle = powersample.idle(powersample.PowerSampler(nv.read_w))
        sys.stderr.write(f"idle: {idle.mean_w:.1f} W mean, {idle.peak_w:.1f} W peak\n")
        header = {
            "idle_w": idle.mean_w, "idle_peak_w": idle.peak_w, "nvml": nv.nvml_version, "nvml_driver": nv.driver,
            "field": nv.field, "power_limit_w": nv.power_limit_w, "hz": powersample.DEFAULT_HZ, "sustain_s": power_seconds,
            "settle_s": powersample.DEFAULT_SETTLE_S,
        }  # fmt: skip
    for p in precisions:
        for t in tps:
            for spec in specs:
                grid = microbench.DEFAULT_GRID.get(
                    spec.id,
                    {
                        "layers": min(8, spec.num_layers),
                        "prefill": [(1, 512), (1, 2048), (4, 512)],
                        "decode": [(1, 1024), (16, 1024), (64, 1024)],
                    },
                )
                n = layers or (min(grid["layers"], 2) if quick else grid["layers"])
                timed[spec.id] = n
                rows += microbench.measure(
                    spec,
                    layers=n,
                    prefill=grid["prefill"][:2] if quick else grid["prefill"],
                    decode=grid["decode"][:2] if quick else grid["decode"],
                    device=device,
                    tp=t,
                    precision=p,
                    progress=functools.partial(_progress, spec.id),
                    power=probe,
                )
    if nv is not None and header is not None:
        after = powersample.idle(powersample.PowerSampler(nv.read_w))
        header["idle_after_w"] = after.mean_w
    write_text_atomic(output, microbench.csv_text(rows, gpu_id, info, timed, header))
    sys.stderr.write(f"wrote {len(rows)} measurements to {output}\n")


def _progress(model: str, line: str) -> None:
    sys.stderr.write(f"{model}: {line}\n")


def _fit_serving(
    files: list[Path], engine: str, fit_models: str, *, write: Path | None, source: str, as_of: str | None,
    catalog_dir: list[Path] | None, fmt: Format, output: Path | None,
) -> None:  # fmt: skip
    """``calibrate fit --serving``: the engine's overheads on the training split, errors apart."""
    from planner import api
    from planner.errors import InputError
    from planner.io.efficiency import write_engine_overheads
    from planner.report.envelope import envelope
    from planner.report.serve import serving_fit_data, serving_fit_table

    models = [m.strip() for m in fit_models.split(",") if m.strip()]
    cal = api.calibrate_serving(files, engine=engine, catalog_dirs=catalog_dir or (), fit_models=models)
    if write is not None:
        cat = api.load_catalog(catalog_dir or ())
        if as_of is None:
            raise InputError("--write with --serving: give --as-of YYYY-MM-DD (the date of the measurements)")
        write_engine_overheads(
            write, cal.engine.id, cat.engine_efficiency[cal.engine.id], cal.overheads, cal.fitted_on,
            source=source, as_of=as_of, inputs=tuple(files),
        )  # fmt: skip
        sys.stderr.write(f"wrote {write}\n")
    inputs = {"serving": [str(f) for f in files], "engine": cal.engine.id, "fit_models": models}
    doc = envelope("calibrate fit", "ok", inputs, serving_fit_data(cal), [])
    output_document(doc, fmt, output, table=serving_fit_table(cal), inputs=tuple(files))
