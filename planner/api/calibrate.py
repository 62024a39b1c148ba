"""``planner calibrate fit``: the fits of :mod:`planner.calibrate` over measurement files, op tables and served benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from planner.api.inputs import resolve_gpu, resolve_model
from planner.api.serve import serve_replica
from planner.domain import (
    PRECISIONS,
    Catalog,
    EngineSpec,
    InputSource,
    Precision,
    ServingMeasurement,
)
from planner.errors import InputError
from planner.io.catalog import IdIndex, load_catalog, select_engine
from planner.io.sources import read_source, reading_once
from planner.perf.roofline import peak_flop_per_s
from planner.perf.transfer import intra_node_bandwidth_bytes_per_s

if TYPE_CHECKING:
    from planner.calibrate.engine_fit import ServeCase, ServeError
    from planner.calibrate.microbench import Row
    from planner.calibrate.moe_fit import DisaggCase
    from planner.calibrate.stepfit import GpuFit

__all__ = [
    "OP_TABLES_SOURCE",
    "TRAINING_MODELS",
    "CalibrateFitOptions",
    "CalibrateFitRun",
    "CalibrateRunOptions",
    "CalibrateRunResult",
    "CalibrationResult",
    "FitMode",
    "ServingCalibration",
    "calibrate",
    "calibrate_serving",
    "fit_op_tables",
    "moe_serving_cases",
    "run_fit",
    "run_microbench",
    "serving_cases",
    "write_efficiency_overlay",
]


TRAINING_MODELS = ("llama-3.1-8b", "qwen3-32b")
"""The models whose serving measurements the engine overheads are fitted on (the training split);
every other model's rows are held out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingCalibration:
    """An engine's overheads fitted on the training split of its serving measurements."""

    engine: EngineSpec
    overheads: dict[str, float]  # SERVE_PARAMS -> value, one set for the engine
    fitted_on: str
    train: tuple[ServeError, ...]
    held_out: tuple[ServeError, ...]
    skipped: tuple[tuple[ServingMeasurement, str], ...]  # rows the serving model cannot represent, and why

    def uncertainty_doc(self, source: str, as_of: str) -> dict[str, Any] | None:
        """The ``uncertainty`` block of an efficiency file: the spread on the TRAINING rows (what the study draws
        from) and, as a check, on the held-out rows (:func:`planner.calibrate.engine_fit.spread`)."""
        from planner.calibrate.engine_fit import SPREAD_METHOD, spread

        train = spread(self.train)
        if train is None:
            return None
        doc: dict[str, Any] = {
            "ttft_log_sigma": float(f"{train.ttft_log_sigma:.4g}"),
            "tpot_log_sigma": float(f"{train.tpot_log_sigma:.4g}"),
            "correlation": float(f"{train.correlation:.4g}"),
            "rows": train.rows,
            "gpus": sorted({e.measurement.gpu for e in self.train if e.measurement.gpu}),
            "fitted_on": f"training split: {self.fitted_on}",
            "method": SPREAD_METHOD,
            "source": source,
            "as_of": as_of,
        }
        held = spread(self.held_out)
        if held is not None:
            models = sorted({e.measurement.raw_model for e in self.held_out})
            doc["held_out"] = {
                "rows": held.rows,
                "ttft_log_sigma": float(f"{held.ttft_log_sigma:.4g}"),
                "tpot_log_sigma": float(f"{held.tpot_log_sigma:.4g}"),
                "checked_on": f"{held.rows} held-out {self.engine.id} rows of {', '.join(models)} (not fitted on)",
            }
        return doc


def serving_cases(
    rows: Sequence[ServingMeasurement], cat: Catalog
) -> tuple[dict[tuple[str, Precision], list[ServeCase]], list[tuple[ServingMeasurement, str]]]:
    """The rows of ``cat``'s selected engine that the co-located serving model represents, by
    (GPU, precision), each with the replica built from the catalog's factors; and the others, with why."""
    from planner.calibrate.engine_fit import ServeCase

    cases: dict[tuple[str, Precision], list[ServeCase]] = {}
    skipped: list[tuple[ServingMeasurement, str]] = []
    for r in rows:
        if r.engine != cat.engine.id:
            continue
        reason = None
        if r.mode != "agg":
            reason = "disaggregated row (the fit uses aggregated rows)"
        elif r.model is None:
            reason = f"model {r.raw_model} is not in the catalog"
        elif r.gpu is None or r.gpu not in cat.gpus:
            reason = f"system {r.raw_gpu} is not in the catalog"
        elif r.precision not in PRECISIONS:
            reason = f"precision {r.precision} is not modelled"
        elif r.pp > 1:
            reason = "pipeline parallelism is not modelled"
        if reason is None:
            assert r.model is not None and r.gpu is not None
            precision = cast(Precision, r.precision)  # one of PRECISIONS, checked above
            gpus, dp, ep, _pp = r.layout()
            try:
                rep = serve_replica(cat, cat.models[r.model], cat.gpus[r.gpu], gpus, precision, attention_dp=dp, moe_ep=ep)
            except InputError as exc:
                reason = exc.message
            else:
                if r.isl + r.osl > rep.memory.max_kv_tokens:
                    reason = "one request does not fit the KV cache"
                else:
                    cases.setdefault((r.gpu, precision), []).append(ServeCase(measurement=r, replica=rep))
                    continue
        skipped.append((r, reason))
    return cases, skipped


def disaggregated_case(r: ServingMeasurement, cat: Catalog) -> DisaggCase | str:
    """The prefill and decode workers of a disaggregated row of ``cat``'s selected engine, as ``estimate serve
    --mode disaggregated`` builds them from the row's worker counts and layouts, or why the row cannot be
    represented."""
    from planner.calibrate.moe_fit import DisaggCase

    if r.model is None:
        return f"model {r.raw_model} is not in the catalog"
    if r.gpu is None or r.gpu not in cat.gpus:
        return f"system {r.raw_gpu} is not in the catalog"
    if r.precision not in PRECISIONS:
        return f"precision {r.precision} is not modelled"
    if not r.workers_given:
        return "disaggregated row without its prefill and decode worker counts (the file leaves them blank)"
    pg, pdp, pep, ppp = r.layout("prefill")
    dg, ddp, dep, dpp = r.layout("decode")
    if ppp > 1 or dpp > 1:
        return "pipeline parallelism is not modelled"
    precision = r.precision
    model, gpu = cat.models[r.model], cat.gpus[r.gpu]
    try:
        pre = serve_replica(cat, model, gpu, pg, precision, attention_dp=pdp, moe_ep=pep)
        dec = serve_replica(cat, model, gpu, dg, precision, attention_dp=ddp, moe_ep=dep)
    except InputError as exc:
        return exc.message.split(": ", 1)[-1] if exc.message.startswith("--") else exc.message
    if r.isl + r.osl > dec.memory.max_kv_tokens:
        return "one request does not fit the decode worker's KV cache"
    return DisaggCase(measurement=r, prefill=pre, decode=dec)


def moe_serving_cases(
    rows: Sequence[ServingMeasurement], cat: Catalog
) -> tuple[list[ServeCase | DisaggCase], list[tuple[ServingMeasurement, str]]]:
    """The aggregated and disaggregated rows of ``cat``'s selected engine that the serving model represents, in row
    order, each with its replicas built from ``cat``'s factors; and the others, with why."""
    cases: list[ServeCase | DisaggCase] = []
    skipped: list[tuple[ServingMeasurement, str]] = []
    agg, skip = serving_cases([r for r in rows if r.mode == "agg"], cat)
    by_id = {id(c.measurement): c for group in agg.values() for c in group}
    reasons = {id(r): why for r, why in skip}
    for r in rows:
        if r.engine != cat.engine.id:
            continue
        if r.mode == "agg":
            if id(r) in by_id:
                cases.append(by_id[id(r)])
            else:
                why = reasons[id(r)]
                skipped.append((r, why.split(": ", 1)[-1] if why.startswith("--") else why))
            continue
        got = disaggregated_case(r, cat)
        if isinstance(got, str):
            skipped.append((r, got))
        else:
            cases.append(got)
    return cases, skipped


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory where it lies below it (no machine's root in a catalog)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return p.name


def calibrate_serving(
    silicon_files: Sequence[Path],
    *,
    engine: str,
    catalog: Catalog | None = None,
    catalog_dirs: Sequence[Path] = (),
    fit_models: Sequence[str] = TRAINING_MODELS,
    refit: bool = True,
) -> ServingCalibration:
    """Fit ``engine``'s overheads (one set over every GPU and precision) on the rows of ``fit_models``
    (the training split), each row keeping its GPU's kernel factors, and report the other models' rows apart.
    ``refit=False`` fits nothing: the catalog's profile as it is, with its errors on both splits."""
    from planner.calibrate.engine_fit import errors, fit_serving, set_overheads
    from planner.io.silicon import read_silicon

    cat = select_engine(catalog if catalog is not None else load_catalog(catalog_dirs), engine)
    train_ids = {resolve_model(cat, m, "--fit-models").id for m in fit_models}
    rows = [r for path in silicon_files for r in read_silicon(path, cat.models)]
    if not any(r.engine == cat.engine.id for r in rows):
        raise InputError(f"{', '.join(map(str, silicon_files))}: no rows of engine {cat.engine.id}")
    cases, skipped = serving_cases(rows, cat)
    flat = [c for group in cases.values() for c in group]
    train = [c for c in flat if c.measurement.model in train_ids]
    held = [c for c in flat if c.measurement.model not in train_ids]
    if not train:
        raise InputError(f"no {cat.engine.id} rows of {', '.join(sorted(train_ids))} that the serving model represents")
    if refit is False:  # the profile as it is: its error on the rows (profile_spread)
        return ServingCalibration(
            engine=cat.engine,
            overheads={},
            fitted_on=_rows_text(train, cat),
            train=errors(train),
            held_out=errors(held),
            skipped=tuple(skipped),
        )
    overheads, train_errors = fit_serving(train)
    fitted_on = _rows_text(train, cat)
    held_errors = tuple(
        e for c in held for e in errors([c], set_overheads(c.replica.hw.efficiency.for_precision(c.replica.precision), overheads))
    )
    return ServingCalibration(
        engine=cat.engine,
        overheads=overheads,
        fitted_on=fitted_on,
        train=train_errors,
        held_out=held_errors,
        skipped=tuple(skipped),
    )


def _rows_text(train: Sequence[ServeCase], cat: Catalog) -> str:
    files = sorted({_shown_path(c.measurement.origin.rsplit(":", 1)[0]) for c in train})
    by_set = sorted({(c.measurement.gpu or "", c.replica.precision) for c in train})
    return (
        f"{', '.join(files)}: {len(train)} {cat.engine.id} rows of {', '.join(sorted({c.measurement.raw_model for c in train}))} "
        f"({', '.join(f'{g} {p}' for g, p in by_set)}; TP {'/'.join(str(t) for t in sorted({c.measurement.tp for c in train}))})"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationResult:
    fits: dict[str, GpuFit]
    source: str
    as_of: str
    held_out: dict[str, np.ndarray] = field(default_factory=dict)  # gpu -> k-fold |relative errors|


def calibrate(
    measurement_files: Sequence[Path],
    splitwise_files: Sequence[Path],
    *,
    sglang_files: Sequence[Path] = (),
    vllm_files: Sequence[Path] = (),
    model: str | None = None,
    gpu: str | None = None,
    tp: int | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
    input_len: int | None = None,
    output_len: int | None = None,
    source: str = "user-measurements",
    as_of: str | None = None,
    catalog_dirs: Sequence[Path] = (),
    folds: int = 5,
    engine: str | None = None,
) -> CalibrationResult:
    """Fit each measured GPU's efficiency factors (see :mod:`planner.calibrate.stepfit`). SGLang and vLLM
    benchmark files (:mod:`planner.io.engine_bench`) do not record the model, GPU and precision of
    the run (SGLang's not the TP degree either): ``model``, ``gpu``, ``tp`` and ``precision`` give
    them, and ``batch_size``/``input_len``/``output_len`` the shape of a plain vLLM file's batch.
    ``engine`` fits only the rows of that engine (the CSV's ``engine`` column; ``sglang``, ``vllm``
    and ``splitwise`` for those files): one factor set per engine, written to one overlay each."""
    from planner.calibrate.stepfit import fit, held_out_errors
    from planner.io.engine_bench import read_sglang_one_batch, read_vllm_latency
    from planner.io.measurements import read_measurements, read_splitwise

    cat = load_catalog(catalog_dirs, require_efficiency=False)
    engine_flags = {"--model": model, "--gpu": gpu, "--tp": tp, "--precision": precision}
    shape_flags = {"--batch-size": batch_size, "--input-len": input_len, "--output-len": output_len}
    if not sglang_files and not vllm_files:
        given = [flag for flag, value in {**engine_flags, **shape_flags}.items() if value is not None]
        if given:
            raise InputError(f"{', '.join(given)}: these describe --sglang/--vllm benchmark files; none was given")
    else:
        needed = ["--model", "--gpu", "--precision"] + (["--tp"] if sglang_files else [])
        missing = [flag for flag in needed if engine_flags[flag] is None]
        if missing:
            raise InputError(
                f"--sglang/--vllm: the benchmark files do not record the run's {', '.join(f[2:] for f in missing)}: "
                f"give {', '.join(missing)}"
            )
    if sglang_files and any(v is not None for v in shape_flags.values()):
        raise InputError("--batch-size/--input-len/--output-len describe --vllm files; SGLang lines record their own shape")
    for flag, value in {"--tp": tp, **shape_flags}.items():
        if value is not None and value < 1:
            raise InputError(f"{flag} must be 1 or more, got {value}")
    if precision is not None and precision not in ("bf16", "fp8"):
        raise InputError(f"--precision {precision}: use bf16 or fp8")
    rows = []
    for path in splitwise_files:
        rows += read_splitwise(path)[0]
    for path in measurement_files:
        rows += read_measurements(path)
    if sglang_files or vllm_files:
        assert model is not None and gpu is not None and precision is not None  # checked above
        model_id = IdIndex.models(cat.models).resolve(model, "--model")
        gpu_id = IdIndex("GPU", cat.gpus).resolve(gpu, "--gpu")
        prec: Precision = "fp8" if precision == "fp8" else "bf16"
        for path in sglang_files:
            assert tp is not None  # checked above
            rows += read_sglang_one_batch(path, model=model_id, gpu=gpu_id, tp=tp, precision=prec)
        for path in vllm_files:
            rows += read_vllm_latency(
                path,
                model=model_id,
                gpu=gpu_id,
                precision=prec,
                tp=tp,
                batch_size=batch_size,
                input_len=input_len,
                output_len=output_len,
            )
    resolved = [
        replace(
            m,
            gpu=IdIndex("GPU", cat.gpus).resolve(m.gpu, m.origin),
            model=IdIndex.models(cat.models).resolve(m.model, m.origin),
        )
        for m in rows
    ]
    if engine is not None:
        present = sorted({m.engine or "(none)" for m in resolved})
        resolved = [m for m in resolved if m.engine == engine]
        if not resolved:
            raise InputError(f"--engine {engine}: no measurement of that engine; the files have {', '.join(present)}")
    names = ", ".join(p.name for p in (*splitwise_files, *measurement_files, *sglang_files, *vllm_files))
    if engine is not None:
        names += f" (engine {engine})"
    fits = fit(resolved, cat, names)
    date = as_of or (cat.sources[source].as_of if source in cat.sources else "unknown")
    held_out = {key: held_out_errors(f, cat, folds) for key, f in fits.items()} if folds > 1 else {}
    return CalibrationResult(fits=fits, source=source, as_of=date, held_out=held_out)


def write_efficiency_overlay(
    path: Path, result: CalibrationResult, *, merge_into: Path | None = None, inputs: Sequence[Path] = ()
) -> None:
    from planner.calibrate.stepfit import PARAMS
    from planner.io.efficiency import write_efficiency

    if result.as_of == "unknown":
        raise InputError(
            f"--write: source {result.source!r} is in no sources.yaml, so the factors have no date: give --as-of YYYY-MM-DD"
        )
    entries: dict[str, dict[str, object]] = {}
    for f in result.fits.values():  # in key order: a GPU's bf16 set before its fp8 set
        errs = f.abs_errors()
        entry: dict[str, object] = {p: float(f"{getattr(f.efficiency, p):.6g}") for p in PARAMS}
        entry.update(
            fitted_on=f"{f.efficiency.fitted_on} ({len(errs)} points used, {sum(1 for p in f.points if p.excluded)} excluded)",
            source=result.source,
            as_of=result.as_of,
            median_abs_error_frac=round(float(np.median(errs)), 4),
            worst_abs_error_frac=round(float(errs.max()), 4),
        )
        if f.precision == "fp8":  # the GPU's entry nests its fp8 set
            entries.setdefault(f.gpu, {})["fp8"] = entry
        else:
            entries[f.gpu] = entry
    write_efficiency(path, entries, merge_into=merge_into, inputs=inputs)


# --------------------------------------------------------------------------- kernel factors from op tables

if TYPE_CHECKING:
    from planner.calibrate.opfit import OpTablesResult


def fit_op_tables(
    tables_dir: Path,
    engine: str,
    *,
    catalog_dirs: Sequence[Path] = (),
    gpu: str | None = None,
    fp8_gemm: str = "fp8",
    source: str = "aiconfigurator-core-0-12-0",
    as_of: str | None = None,
) -> OpTablesResult:
    """Fit the kernel factors (compute, attention, memory, all-reduce) of ``engine`` (vllm, sglang
    or trtllm) on every catalog GPU that aiconfigurator-core's per-op latency tables under
    ``tables_dir`` cover (:mod:`planner.io.optables`, :mod:`planner.calibrate.opfit`); ``gpu`` fits only that
    catalog GPU. bf16 and, on GPUs with fp8 tensor cores, fp8 (``fp8_gemm``: ``fp8`` per-tensor or
    ``fp8_block`` GEMMs) sets. The per-step overheads are not in the tables and are not fitted."""
    from planner.calibrate.opfit import FP8_GEMM_CHOICES, KernelFit, OpTablesResult, fit_engine
    from planner.io import optables

    if engine not in ("vllm", "sglang", "trtllm"):
        raise InputError(f"--engine {engine}: the op tables are of vllm, sglang or trtllm", hint="--op-tables needs --engine")
    if fp8_gemm not in FP8_GEMM_CHOICES:
        raise InputError(f"--fp8-gemm {fp8_gemm}: use {' or '.join(FP8_GEMM_CHOICES)}")
    cat = load_catalog(catalog_dirs, require_efficiency=False)
    only = IdIndex("GPU", cat.gpus).resolve(gpu, "--gpu") if gpu is not None else None
    data_dir = optables.find_data_dir(tables_dir)
    fits: dict[str, KernelFit] = {}
    skipped: dict[str, str] = {}
    for system in optables.systems(data_dir):
        gpu_id = optables.SYSTEM_GPU.get(system)
        if gpu_id is None or gpu_id not in cat.gpus:
            skipped[system] = "not a catalog GPU"
            continue
        if only is not None and gpu_id != only:
            continue
        spec = cat.gpus[gpu_id]
        tables = optables.engine_tables(data_dir, system, engine)
        missing = [n for n, t in (("gemm", tables.gemm), ("context attention", tables.context),
                                  ("generation attention", tables.generation)) if t is None]  # fmt: skip
        if missing:
            skipped[system] = f"no {engine} {', '.join(missing)} table"
            continue
        links = {tp: intra_node_bandwidth_bytes_per_s(spec, cat, tp) for tp in (2, 4, 8) if tp <= spec.gpus_per_node}
        precisions = [p for p in PRECISIONS if spec.peak_flop_per_s(p) is not None]
        for prec in precisions:
            try:
                fit = fit_engine(
                    tables,
                    gpu=gpu_id,
                    engine=engine,
                    precision=prec,
                    peak_flop_per_s=peak_flop_per_s(spec, prec),
                    hbm_bytes_per_s=spec.hbm_bandwidth_bytes_per_s,
                    link_bytes_per_s=links,
                    fp8_gemm=fp8_gemm,
                )
            except InputError as exc:
                skipped[f"{gpu_id}/{prec}"] = exc.message
                continue
            fits[gpu_id if prec == "bf16" else f"{gpu_id}/{prec}"] = fit
    for key in [k for k in fits if "/" in k and k.split("/")[0] not in fits]:
        skipped[key] = f"no bf16 fit to nest this {key.split('/')[1]} set under"
        del fits[key]
    if not fits:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no system directories"
        raise InputError(f"--op-tables {tables_dir}: nothing to fit for engine {engine} ({why})")
    date = as_of or (cat.sources[source].as_of if source in cat.sources else "unknown")
    return OpTablesResult(engine=engine, data_dir=str(data_dir), fits=fits, skipped=skipped, source=source, as_of=date)


# --------------------------------------------------------------------------- the commands' doors: options in, result out

OP_TABLES_SOURCE = "aiconfigurator-core-0-12-0"
"""The source id recorded with kernel factors fitted on op tables when none other is given."""

_DEFAULT_SOURCE = "user-measurements"

FitMode = Literal["measurements", "op_tables", "serving"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrateFitOptions:
    """Everything ``planner calibrate fit`` takes, in one of three modes chosen by what is given:
    ``serving_files`` (the engine overheads, :func:`calibrate_serving`), ``op_tables`` (the kernel
    factors, :func:`fit_op_tables`), else measurement files (:func:`calibrate`). Error messages name
    the command's flags (``--write``, ``--engine``, ...)."""

    measurement_files: tuple[Path, ...] = ()  # planner measurement CSVs (docs/calibration.md)
    splitwise_files: tuple[Path, ...] = ()  # Splitwise perf_model.csv tables
    sglang_files: tuple[Path, ...] = ()  # SGLang bench_one_batch JSONL (needs model, gpu, tp, precision)
    vllm_files: tuple[Path, ...] = ()  # vLLM bench latency JSON (needs model, gpu, precision)
    model: str | None = None  # of the SGLang/vLLM runs
    gpu: str | None = None  # of the SGLang/vLLM runs; with op_tables: fit only this GPU
    tp: int | None = None
    precision: str | None = None  # bf16 or fp8
    batch_size: int | None = None  # vLLM files that do not record their shape
    input_len: int | None = None
    output_len: int | None = None
    engine: str | None = None  # fit only this engine's rows; the engine of op_tables / serving_files
    folds: int = 5  # of the held-out (cross-validation) error; 0 skips it
    op_tables: Path | None = None  # aiconfigurator-core's per-op latency tables
    fp8_gemm: str = "fp8"  # op_tables: the fp8 GEMM rows, fp8 (per-tensor) or fp8_block
    serving_files: tuple[Path, ...] = ()  # end-to-end serving measurements (silicon_sample.csv form)
    fit_models: tuple[str, ...] = TRAINING_MODELS  # serving_files: the models of the training split
    write: Path | None = None  # write the fitted factors as an efficiency.yaml overlay here
    merge_into: Path | None = None  # keep this efficiency.yaml's entries that were not re-fitted
    source: str = _DEFAULT_SOURCE  # recorded with the factors (op tables: OP_TABLES_SOURCE unless given)
    as_of: str | None = None  # YYYY-MM-DD recorded with the factors (default: the source's date)
    catalog_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrateFitRun:
    """What ``planner calibrate fit`` found: the result of its mode (the other two are None), the
    envelope's ``inputs`` and ``warnings``, the overlay written (``written``, with ``write``) and the
    text inputs read (``sources``; op tables are Parquet and are not among them)."""

    mode: FitMode
    calibration: CalibrationResult | None = None  # mode "measurements"
    op_tables: OpTablesResult | None = None  # mode "op_tables"
    serving: ServingCalibration | None = None  # mode "serving"
    inputs: dict[str, object]
    warnings: tuple[str, ...] = ()
    written: Path | None = None
    sources: tuple[InputSource, ...] = ()


def run_fit(options: CalibrateFitOptions) -> CalibrateFitRun:
    """``planner calibrate fit``: check the options, choose the mode, fit, and with ``options.write``
    write the overlay (:func:`write_efficiency_overlay`; op tables: the kernel factors only; serving:
    the engine's factor sets with the fitted overheads). Each input file is read once."""
    with reading_once():
        if options.serving_files:
            return _fit_serving(options)
        if options.op_tables is not None:
            return _fit_op_tables(options, options.op_tables)
        return _fit_measurements(options)


def _sources(paths: Sequence[Path]) -> tuple[InputSource, ...]:
    """The text of files already read in this :func:`reading_once` block (no second read from disk)."""
    return tuple(read_source(p) for p in dict.fromkeys(paths))


def _fit_measurements(o: CalibrateFitOptions) -> CalibrateFitRun:
    if o.folds == 1 or o.folds < 0:
        raise InputError("--folds must be 0 (skip) or at least 2")
    if not o.measurement_files and not o.splitwise_files and not o.sglang_files and not o.vllm_files:
        raise InputError("calibrate fit: give a measurement CSV, --splitwise FILE, --sglang FILE or --vllm FILE")
    result = calibrate(
        list(o.measurement_files),
        list(o.splitwise_files),
        sglang_files=list(o.sglang_files),
        vllm_files=list(o.vllm_files),
        model=o.model,
        gpu=o.gpu,
        tp=o.tp,
        precision=o.precision,
        batch_size=o.batch_size,
        input_len=o.input_len,
        output_len=o.output_len,
        source=o.source,
        as_of=o.as_of,
        catalog_dirs=o.catalog_dirs,
        folds=o.folds,
        engine=o.engine,
    )
    files = [*o.measurement_files, *o.splitwise_files, *o.sglang_files, *o.vllm_files]
    read = list(files)
    if o.write is not None:
        write_efficiency_overlay(o.write, result, merge_into=o.merge_into, inputs=files)
        if o.merge_into is not None and o.merge_into.exists():
            read.append(o.merge_into)  # read before the write replaced it (when it is the --write file)
    inputs: dict[str, object] = {
        "measurements": [str(p) for p in o.measurement_files],
        "splitwise": [str(p) for p in o.splitwise_files],
    }
    inputs |= {name: [str(p) for p in paths] for name, paths in (("sglang", o.sglang_files), ("vllm", o.vllm_files)) if paths}
    if o.engine is not None:
        inputs["engine"] = o.engine
    return CalibrateFitRun(mode="measurements", calibration=result, inputs=inputs, written=o.write, sources=_sources(read))


def _fit_op_tables(o: CalibrateFitOptions, tables: Path) -> CalibrateFitRun:
    from planner.io.optables import write_kernel_overlay

    others = {
        "a measurement CSV": o.measurement_files, "--splitwise": o.splitwise_files, "--sglang": o.sglang_files,
        "--vllm": o.vllm_files, "--model": o.model, "--tp": o.tp, "--precision": o.precision,
        "--batch-size": o.batch_size, "--input-len": o.input_len, "--output-len": o.output_len,
        "--merge-into": o.merge_into,
    }  # fmt: skip
    given = [name for name, value in others.items() if value]
    if given:
        raise InputError(f"--op-tables: fits the op tables alone; drop {', '.join(given)}")
    if o.engine is None:
        raise InputError("--op-tables needs --engine (vllm, sglang or trtllm): the tables hold one set per engine")
    src = OP_TABLES_SOURCE if o.source == _DEFAULT_SOURCE else o.source
    result = fit_op_tables(
        tables, o.engine, catalog_dirs=o.catalog_dirs, gpu=o.gpu, fp8_gemm=o.fp8_gemm, source=src, as_of=o.as_of
    )
    if o.write is not None:
        if result.as_of == "unknown":
            raise InputError(
                f"--write: source {src!r} is in no sources.yaml, so the factors have no date: give --as-of YYYY-MM-DD"
            )
        write_kernel_overlay(o.write, o.engine, result.overlay_entries())
    inputs: dict[str, object] = {"op_tables": str(tables), "engine": o.engine, "fp8_gemm": o.fp8_gemm}
    return CalibrateFitRun(mode="op_tables", op_tables=result, inputs=inputs, written=o.write)


def _fit_serving(o: CalibrateFitOptions) -> CalibrateFitRun:
    from planner.io.efficiency import write_engine_overheads

    if o.engine is None:
        raise InputError("--serving needs --engine (the engine whose overheads are fitted)")
    if o.op_tables is not None or o.measurement_files or o.splitwise_files or o.sglang_files or o.vllm_files:
        raise InputError("--serving: fits serving measurements alone; drop the other inputs")
    files = list(o.serving_files)
    models = list(o.fit_models)
    cal = calibrate_serving(files, engine=o.engine, catalog_dirs=o.catalog_dirs, fit_models=models)
    if o.write is not None:
        cat = load_catalog(o.catalog_dirs)
        if o.as_of is None:
            raise InputError("--write with --serving: give --as-of YYYY-MM-DD (the date of the measurements)")
        write_engine_overheads(
            o.write, cal.engine.id, cat.engine_efficiency[cal.engine.id], cal.overheads, cal.fitted_on,
            source=o.source, as_of=o.as_of, inputs=tuple(files), uncertainty=cal.uncertainty_doc(o.source, o.as_of),
        )  # fmt: skip
    inputs: dict[str, object] = {"serving": [str(f) for f in files], "engine": cal.engine.id, "fit_models": models}
    return CalibrateFitRun(mode="serving", serving=cal, inputs=inputs, written=o.write, sources=_sources(files))


# --------------------------------------------------------------------------- planner calibrate run


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrateRunOptions:
    """Everything ``planner calibrate run`` takes (GPU microbenchmarks, :mod:`planner.calibrate.microbench`)."""

    gpu: str  # catalog id of the local GPU, recorded in each row
    models: tuple[str, ...] = ()  # models to time; () = the default grid's (llama-3.1-8b, llama-3.1-70b)
    layers: int | None = None  # layers timed per model (default: the grid's; 2 with quick)
    quick: bool = False  # two prefill and two decode points per model (a code-path check)
    device: str = "cuda"  # cuda (a real calibration) or cpu (the code path only)
    tp: tuple[int, ...] = (1,)  # tensor-parallel degrees, one process per GPU
    precisions: tuple[str, ...] = ("bf16",)  # bf16 and/or fp8 projection weights
    power: bool = False  # also sample board power (NVML) per step and idle; TP 1 on cuda only
    power_seconds: float = 2.0  # power: seconds of back-to-back replay per step
    catalog_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrateRunResult:
    """The measured steps and the measurement CSV that ``planner calibrate fit`` takes (``csv_text``)."""

    gpu: str  # catalog id recorded in each row
    rows: tuple[Row, ...]
    csv_text: str
    device: dict[str, str]  # GPU name, driver, torch, CUDA, NCCL versions
    layers: dict[str, int]  # model -> layers timed
    power: dict[str, str | float] | None = None  # the ``# power:`` header (idle watts, NVML, sampling) with power
    sources: tuple[InputSource, ...] = ()  # none: the run reads only catalogs


def run_microbench(options: CalibrateRunOptions, progress: Callable[[str], None] | None = None) -> CalibrateRunResult:
    """``planner calibrate run``: time model-shaped decoder stacks on the local GPU (random weights, CUDA
    graphs) for every precision, TP degree and model. Refuses a machine without PyTorch or a CUDA GPU
    (``device="cuda"``), and what this one cannot run, before anything is timed. ``progress`` gets one
    line per step timed (``"<model>: ..."``) and, with ``power``, the idle readings."""
    from planner.calibrate import microbench, powersample

    o = options
    if o.device not in ("cuda", "cpu"):
        raise InputError(f"--device {o.device}: use cuda or cpu")
    tps, precisions = sorted(set(o.tp or (1,))), sorted(set(o.precisions or ("bf16",)))
    if o.power and (o.device != "cuda" or any(t != 1 for t in tps)):
        raise InputError("--power: board power is read on a CUDA GPU at TP 1 only (--device cuda, --tp 1)")
    if not o.power_seconds > 0:
        raise InputError(f"--power-seconds {o.power_seconds}: must be positive")
    with reading_once():
        catalog = load_catalog(o.catalog_dirs)
        gpu_id = resolve_gpu(catalog, o.gpu).id
        specs = [resolve_model(catalog, raw) for raw in o.models or list(microbench.DEFAULT_GRID)]
    info = microbench.device_info(o.device)  # refuses a machine without a CUDA GPU
    for t in tps:  # and what this one cannot run, before anything is timed
        for p in precisions:
            microbench.check_setup(o.device, t, p)
    rows: list[microbench.Row] = []
    timed: dict[str, int] = {}
    probe: microbench.PowerProbe | None = None
    header: dict[str, str | float] | None = None
    nv = None
    if o.power:
        nv = powersample.nvml_reader(0)
        probe = microbench.power_probe(nv.read_w, seconds=o.power_seconds)
        idle = powersample.idle(powersample.PowerSampler(nv.read_w))
        if progress is not None:
            progress(f"idle: {idle.mean_w:.1f} W mean, {idle.peak_w:.1f} W peak")
        header = {
            "idle_w": idle.mean_w, "idle_peak_w": idle.peak_w, "nvml": nv.nvml_version, "nvml_driver": nv.driver,
            "field": nv.field, "power_limit_w": nv.power_limit_w, "hz": powersample.DEFAULT_HZ, "sustain_s": o.power_seconds,
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
                n = o.layers or (min(grid["layers"], 2) if o.quick else grid["layers"])
                timed[spec.id] = n
                rows += microbench.measure(
                    spec,
                    layers=n,
                    prefill=grid["prefill"][:2] if o.quick else grid["prefill"],
                    decode=grid["decode"][:2] if o.quick else grid["decode"],
                    device=o.device,
                    tp=t,
                    precision=p,
                    progress=None if progress is None else _model_progress(progress, spec.id),
                    power=probe,
                )
    if nv is not None and header is not None:
        after = powersample.idle(powersample.PowerSampler(nv.read_w))
        header["idle_after_w"] = after.mean_w
    text = microbench.csv_text(rows, gpu_id, info, timed, header)
    return CalibrateRunResult(gpu=gpu_id, rows=tuple(rows), csv_text=text, device=info, layers=timed, power=header)


def _model_progress(progress: Callable[[str], None], model: str) -> Callable[[str], None]:
    def line(text: str) -> None:
        progress(f"{model}: {text}")

    return line
