"""Library facade: what the CLI calls and what Python users import. No printing, no exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import numpy as np

from planner.domain import (
    PRECISIONS,
    Catalog,
    Deployment,
    Efficiency,
    EngineSpec,
    GpuSpec,
    MemoryFit,
    ModelSpec,
    Precision,
    ServingMeasurement,
    StepEstimate,
    Workload,
)
from planner.errors import InfeasibleError, InputError
from planner.io.catalog import IdIndex, load_catalog, select_engine
from planner.perf.memory import check_tp, require_fit
from planner.perf.roofline import Hardware, decode_step, peak_flop_per_s, prefill_step
from planner.perf.transfer import intra_node_bandwidth_bytes_per_s

if TYPE_CHECKING:
    from planner.calibrate.engine_fit import ServeCase, ServeError
    from planner.calibrate.stepfit import GpuFit
    from planner.check.runner import CheckResult
    from planner.io.proposal import ProposalSpec
    from planner.io.workload import WorkloadSpec
    from planner.optimize.sizing import SizeResult
    from planner.perf.evaluate import Evaluation
    from planner.perf.serve import ServePoint
    from planner.perf.serving import Replica
    from planner.sim import SimOptions, Simulation

__all__ = ["EstimateResult", "estimate", "hardware", "load_catalog", "resolve_gpu", "resolve_model"]


def resolve_gpu(catalog: Catalog, raw_id: str, where: str = "--gpu") -> GpuSpec:
    return catalog.gpus[IdIndex("GPU", catalog.gpus).resolve(raw_id, where)]


def resolve_model(catalog: Catalog, raw_id: str, where: str = "--model") -> ModelSpec:
    """A catalog model by its id, Hugging Face id or alias (any case), e.g. ``meta-llama/Llama-3.1-70B``."""
    return catalog.models[IdIndex.models(catalog.models).resolve(raw_id, where)]


def hardware(catalog: Catalog, gpu: GpuSpec, tp: int) -> Hardware:
    return Hardware(gpu, catalog.efficiency[gpu.id], intra_node_bandwidth_bytes_per_s(gpu, catalog, tp))


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimateResult:
    model: ModelSpec
    gpu: GpuSpec
    tp: int
    precision: Precision
    step: StepEstimate
    memory: MemoryFit
    context_tokens: float  # tokens of KV cache per sequence the step needs
    efficiency: Efficiency  # the GPU's entry; the step used ``efficiency.for_precision(precision)``
    engine: EngineSpec  # the serving engine whose factors and memory use the step was computed with

    @property
    def factors(self) -> Efficiency:
        """The factor set the step was computed with."""
        return self.efficiency.for_precision(self.precision)

    @property
    def fits(self) -> bool:
        """Weights fit (checked before) and the KV cache of every sequence of the step fits."""
        return self.memory.kv_capacity_bytes >= self.memory.kv_bytes_per_token * self.context_tokens * self.step.batch

    @property
    def max_batch(self) -> int:
        return self.memory.max_batch(self.context_tokens)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InputError(f"{name}: must be a positive number, got {value}")


def estimate(
    phase: Literal["prefill", "decode"],
    *,
    model: str,
    gpu: str,
    tp: int,
    precision: Precision = "bf16",
    tokens: int | None = None,
    batch: int = 1,
    context: int | None = None,
    catalog: Catalog | None = None,
    catalog_dirs: Sequence[Path] = (),
    engine: str | None = None,
) -> EstimateResult:
    """Latency of one prefill step (``batch`` prompts of ``tokens``) or one decode step (``batch``
    sequences at ``context`` tokens), with the bound, MFU/MBU and memory fit, under ``engine``
    (``NAME`` or ``NAME@VERSION``; None: the catalog's selected engine)."""
    cat = select_engine(catalog if catalog is not None else load_catalog(catalog_dirs), engine)
    m = resolve_model(cat, model)
    g = resolve_gpu(cat, gpu)
    _positive("--batch", batch)
    for flag, value in (("--tokens", tokens), ("--context", context)):
        if value is not None:
            _positive(flag, value)
    check_tp(m, g, tp)
    peak_flop_per_s(g, precision)
    fit = require_fit(m, g, cat.engine, tp, precision)
    hw = hardware(cat, g, tp)
    if phase == "prefill":
        if tokens is None:
            raise InputError("--tokens is required for a prefill estimate")
        _positive("--tokens", tokens)
        _check_context(m, tokens, "--tokens")
        step = prefill_step(m, hw, tp=tp, precision=precision, prompt_tokens=tokens, batch=batch)
        ctx = float(tokens)
    else:
        if context is None:
            raise InputError("--context is required for a decode estimate")
        _positive("--context", context)
        _check_context(m, context, "--context")
        step = decode_step(m, hw, tp=tp, precision=precision, batch=batch, context_tokens=float(context))
        ctx = float(context)
    return EstimateResult(
        model=m,
        gpu=g,
        tp=tp,
        precision=precision,
        step=step,
        memory=fit,
        context_tokens=ctx,
        efficiency=hw.efficiency,
        engine=cat.engine,
    )


def _check_context(model: ModelSpec, tokens: int, flag: str) -> None:
    if tokens > model.max_context_tokens:
        raise InputError(f"{flag} {tokens}: longer than {model.id}'s context window of {model.max_context_tokens} tokens")


# --------------------------------------------------------------------------------- estimate serve


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeRequest:
    """One fixed-concurrency benchmark point to predict (``estimate serve``, one ``--grid`` row)."""

    model: str
    isl: int
    osl: int
    concurrency: int
    gpu: str | None = None  # aggregated mode
    tp: int = 1
    replicas: int = 1
    engine: str | None = None
    precision: Precision = "bf16"
    mode: Literal["aggregated", "disaggregated"] = "aggregated"
    prefill_gpu: str | None = None
    prefill_tp: int = 1
    prefill_workers: int = 1
    decode_gpu: str | None = None
    decode_tp: int = 1
    decode_workers: int = 1
    link: str | None = None  # disaggregated: the link the KV cache crosses (None: not modelled)
    where: str = ""  # prefix of error messages (a grid file line)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeResult:
    request: ServeRequest
    model: ModelSpec
    engine: EngineSpec
    point: ServePoint
    replicas: tuple[tuple[str, GpuSpec, int, Efficiency], ...]  # (role, GPU, TP, factors) of each worker type


def serve_replica(catalog: Catalog, model: ModelSpec, gpu: GpuSpec, tp: int, precision: Precision, where: str = "") -> Replica:
    """The replica the serving model runs (weights must fit; raises InputError otherwise)."""
    from planner.perf.serving import Replica

    check_tp(model, gpu, tp)
    peak_flop_per_s(gpu, precision)
    fit = require_fit(model, gpu, catalog.engine, tp, precision)
    return Replica(model=model, hw=hardware(catalog, gpu, tp), tp=tp, precision=precision, memory=fit, engine=catalog.engine)


def estimate_serve(req: ServeRequest, catalog: Catalog | None = None, catalog_dirs: Sequence[Path] = ()) -> ServeResult:
    """What a fixed-concurrency benchmark of the deployment measures (:mod:`planner.perf.serve`)."""
    from planner.io.catalog import select_engine
    from planner.perf.serve import serve_colocated, serve_disaggregated

    pre = f"{req.where}: " if req.where else ""
    cat = select_engine(catalog if catalog is not None else load_catalog(catalog_dirs), req.engine, f"{pre}--engine".lstrip())
    m = resolve_model(cat, req.model, f"{pre}--model")
    for flag, value in (
        ("--isl", req.isl),
        ("--osl", req.osl),
        ("--concurrency", req.concurrency),
        ("--tp", req.tp),
        ("--replicas", req.replicas),
        ("--prefill-tp", req.prefill_tp),
        ("--prefill-workers", req.prefill_workers),
        ("--decode-tp", req.decode_tp),
        ("--decode-workers", req.decode_workers),
    ):
        if not (isinstance(value, int) and value >= 1):
            raise InputError(f"{pre}{flag}: must be a whole number >= 1, got {value}")
    _check_context(m, req.isl + req.osl, f"{pre}--isl + --osl")
    if req.mode == "aggregated":
        if req.gpu is None:
            raise InputError(f"{pre}--gpu is required in aggregated mode")
        g = resolve_gpu(cat, req.gpu, f"{pre}--gpu")
        rep = serve_replica(cat, m, g, req.tp, req.precision, pre)
        if req.isl + req.osl > rep.memory.max_kv_tokens:
            raise InputError(
                f"{pre}one request of {req.isl + req.osl} tokens needs more KV cache than {req.tp}x {g.id} holds "
                f"({rep.memory.max_kv_tokens} tokens)",
                hint="raise --tp or shorten --isl/--osl",
            )
        point = serve_colocated(rep, isl=req.isl, osl=req.osl, concurrency=req.concurrency, replicas=req.replicas)
        workers: tuple[tuple[str, GpuSpec, int, Efficiency], ...] = (("colocated", g, req.tp, rep.hw.efficiency),)
    else:
        if req.prefill_gpu is None or req.decode_gpu is None:
            raise InputError(f"{pre}--prefill-gpu and --decode-gpu are required in disaggregated mode")
        gp = resolve_gpu(cat, req.prefill_gpu, f"{pre}--prefill-gpu")
        gd = resolve_gpu(cat, req.decode_gpu, f"{pre}--decode-gpu")
        pre_rep = serve_replica(cat, m, gp, req.prefill_tp, req.precision, pre)
        dec_rep = serve_replica(cat, m, gd, req.decode_tp, req.precision, pre)
        if req.isl + req.osl > dec_rep.memory.max_kv_tokens:
            raise InputError(f"{pre}one request of {req.isl + req.osl} tokens does not fit the decode worker's KV cache")
        link = None
        if req.link is not None:
            link = cat.links[IdIndex("link", cat.links).resolve(req.link, f"{pre}--link")]
        point = serve_disaggregated(
            pre_rep,
            req.prefill_workers,
            dec_rep,
            req.decode_workers,
            isl=req.isl,
            osl=req.osl,
            concurrency=req.concurrency,
            link=link,
        )
        workers = (
            ("prefill", gp, req.prefill_tp, pre_rep.hw.efficiency),
            ("decode", gd, req.decode_tp, dec_rep.hw.efficiency),
        )
    return ServeResult(request=req, model=m, engine=cat.engine, point=point, replicas=workers)


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
        elif r.pp > 1 or r.attention_dp > 1 or r.moe_ep > 1:
            reason = "pipeline, attention-data or expert parallelism is not modelled"
        if reason is None:
            assert r.model is not None and r.gpu is not None
            precision = cast(Precision, r.precision)  # one of PRECISIONS, checked above
            try:
                rep = serve_replica(cat, cat.models[r.model], cat.gpus[r.gpu], r.tp, precision)
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
) -> ServingCalibration:
    """Fit ``engine``'s overheads (one set over every GPU and precision) on the rows of ``fit_models``
    (the training split), each row keeping its GPU's kernel factors, and report the other models' rows apart."""
    from planner.calibrate.engine_fit import errors, fit_serving, set_overheads
    from planner.io.catalog import select_engine
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
    overheads, train_errors = fit_serving(train)
    files = sorted({_shown_path(c.measurement.origin.rsplit(":", 1)[0]) for c in train})
    by_set = sorted({(c.measurement.gpu or "", c.replica.precision) for c in train})
    fitted_on = (
        f"{', '.join(files)}: {len(train)} {cat.engine.id} rows of {', '.join(sorted({c.measurement.raw_model for c in train}))} "
        f"({', '.join(f'{g} {p}' for g, p in by_set)}; TP {'/'.join(str(t) for t in sorted({c.measurement.tp for c in train}))})"
    )
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


def engine_catalog(catalog_dirs: Sequence[Path] = (), engine: str | None = None, where: str = "--engine") -> Catalog:
    """The built-in catalog and ``catalog_dirs`` with ``engine`` (``NAME`` or ``NAME@VERSION``;
    None: the default engine) selected."""
    return select_engine(load_catalog(catalog_dirs), engine, where)


def _planning_catalog(spec: WorkloadSpec, written_in: Path | None, catalog_dirs: Sequence[Path]) -> Catalog:
    """The built-in catalog, ``catalog_dirs``, then the workload's ``calibration`` overlay (relative
    to ``written_in``; a workload given by flags has none); the default engine selected."""
    from planner.io.workload import calibration_dir

    extra = None if written_in is None else calibration_dir(spec, written_in.parent, str(written_in))
    return load_catalog([*catalog_dirs, *([extra] if extra is not None else [])])


def workload_catalog(
    spec: WorkloadSpec, written_in: Path, catalog_dirs: Sequence[Path] = (), engine: str | None = None, where: str = "--engine"
) -> Catalog:
    """The catalog a workload is planned with: the built-in one, ``catalog_dirs``, then the
    overlay its ``calibration`` entry names (relative to ``written_in``, the file it is written in),
    with the serving engine selected: ``engine`` (``--engine``; ``where`` names it in errors), else
    the workload's ``engine:``, else the catalog's default."""
    base = _planning_catalog(spec, written_in, catalog_dirs)
    if engine is not None:
        return select_engine(base, engine, where)
    return select_engine(base, spec.engine, f"{written_in}: engine")


def proposal_catalog(path: Path, catalog_dirs: Sequence[Path] = (), engine: str | None = None) -> Catalog:
    """:func:`workload_catalog` for the workload of a proposal (or a ``planner size`` plan). The
    engine: ``engine`` (``--engine``), else the proposal's ``engine:`` (a plan's ``inputs.engine``,
    the engine it was sized for), else its workload's ``engine:``, else the catalog's default."""
    from planner.io.proposal import read_proposal_with_origin

    spec, workload_spec, written_in = read_proposal_with_origin(path)
    base = _planning_catalog(workload_spec, written_in, catalog_dirs)
    if engine is not None:
        return select_engine(base, engine, "--engine")
    if spec.engine is not None:
        return select_engine(base, spec.engine, f"{path}: engine")
    return select_engine(base, workload_spec.engine, f"{written_in}: engine")


def load_workload_spec(path: Path) -> WorkloadSpec:
    """Read and validate a workload YAML file (ids are resolved by :func:`resolve_workload`)."""
    from planner.io.workload import read_workload_spec

    return read_workload_spec(path)


def resolve_workload(spec: WorkloadSpec, catalog: Catalog, origin: str = "workload") -> Workload:
    from planner.io.workload import to_domain

    return to_domain(spec, catalog, origin)


def workload_spec_from_flags(
    *,
    model: str,
    rate_rps: float,
    isl: float,
    osl: float,
    ttft_p99_ms: float,
    tpot_p99_ms: float,
    precision: str = "bf16",
    prefill_gpus: Sequence[str] | None = None,
    decode_gpus: Sequence[str] | None = None,
    links: Sequence[str] | None = None,
    interarrival_cv2: float = 1.0,
) -> WorkloadSpec:
    """One class from flags; lengths are fixed (every request ISL in, OSL out)."""
    from planner.io.workload import parse_workload

    def fixed(tokens: float) -> dict[str, float]:
        return {"mean": tokens, "p50": tokens, "p90": tokens, "p99": tokens}

    doc: dict[str, object] = {
        "model": model,
        "precision": precision,
        "classes": [
            {
                "name": "default",
                "rate_rps": rate_rps,
                "interarrival_cv2": interarrival_cv2,
                "input_tokens": fixed(isl),
                "output_tokens": fixed(osl),
                "slo": {"ttft_p99_ms": ttft_p99_ms, "tpot_p99_ms": tpot_p99_ms},
            }
        ],
    }
    hw = {k: list(v) for k, v in (("prefill_gpus", prefill_gpus), ("decode_gpus", decode_gpus), ("links", links)) if v}
    if hw:
        doc["hardware"] = hw
    return parse_workload(doc, "flags")


def size(workload: Workload, catalog: Catalog, *, solver: str = "highs", time_limit_s: float | None = None) -> SizeResult:
    """Optimal disaggregated plan, baselines and savings (see :mod:`planner.optimize.sizing`)."""
    from planner.optimize.sizing import size as _size

    if solver not in ("highs", "cbc"):
        raise InputError(f"--solver {solver}: use highs or cbc")
    if time_limit_s is not None and not time_limit_s > 0:
        raise InputError("--time-limit-s must be positive")
    return _size(workload, catalog, solver=solver, time_limit_s=time_limit_s)  # type: ignore[arg-type]


REFERENCE_ENGINES = ("pytorch", "splitwise")
"""Reference profiles, not engines one deploys: ``--engine auto`` leaves them out."""


def several_engines(raw: str | None) -> bool:
    """Whether ``--engine`` names several engines: ``auto`` or a comma-separated list."""
    return raw is not None and (raw.strip().lower() == "auto" or "," in raw)


def engine_list(catalog: Catalog, raw: str) -> list[str]:
    """The engines ``--engine`` names: ``auto`` (every engine of the catalog but
    :data:`REFERENCE_ENGINES`), a comma-separated list of ``NAME[@VERSION]``, or one of them."""
    text = raw.strip()
    if text.lower() == "auto":
        names = [e for e in sorted(catalog.engines) if e not in REFERENCE_ENGINES]
        if not names:
            raise InputError("--engine auto: the catalog has no engine besides the reference profiles")
        return names
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError(f"--engine {raw!r}: name at least one engine")
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSizing:
    """:func:`size` under one engine: the plan, or the infeasibility it ended in."""

    engine: EngineSpec
    catalog: Catalog  # with this engine selected
    workload: Workload
    result: SizeResult | None
    infeasible: InfeasibleError | None = None

    @property
    def feasible(self) -> bool:
        return self.result is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineComparison:
    """:func:`size_engines`: every engine's sizing, in the order asked, and the best feasible one."""

    runs: tuple[EngineSizing, ...]
    best: EngineSizing


def size_engines(
    spec: WorkloadSpec,
    engines: str | Sequence[str],
    *,
    written_in: Path | None = None,
    catalog_dirs: Sequence[Path] = (),
    origin: str = "workload",
    solver: str = "highs",
    time_limit_s: float | None = None,
) -> EngineComparison:
    """Size the workload under each of ``engines`` (``NAME[@VERSION]`` each, or ``--engine``'s text:
    see :func:`engine_list`; an engine named twice is sized once) and
    pick the best plan by the workload's objective (cost: USD/hour; gpus, power: that, then cost;
    a tie goes to the engine named first). Raises InfeasibleError when no engine has a plan."""
    base = _planning_catalog(spec, written_in, catalog_dirs)
    runs: list[EngineSizing] = []
    seen: set[str] = set()
    for raw in engine_list(base, engines) if isinstance(engines, str) else engines:
        cat = select_engine(base, raw, "--engine")
        if cat.engine.id in seen:
            continue
        seen.add(cat.engine.id)
        workload = resolve_workload(spec, cat, origin)
        try:
            result: SizeResult | None = size(workload, cat, solver=solver, time_limit_s=time_limit_s)
            failed = None
        except InfeasibleError as exc:
            result, failed = None, exc
        runs.append(EngineSizing(engine=cat.engine, catalog=cat, workload=workload, result=result, infeasible=failed))
    feasible = [r for r in runs if r.result is not None]
    if not feasible:
        first = runs[0].infeasible
        assert first is not None
        raise InfeasibleError(
            f"no engine has a plan ({', '.join(r.engine.label for r in runs)}); {runs[0].engine.label}: {first.message}",
            hint=first.hint,
            diagnosis={
                **first.diagnosis,
                "engines": [{"engine": r.engine.label, "message": r.infeasible.message if r.infeasible else ""} for r in runs],
            },
        )

    def key(r: EngineSizing) -> tuple[float, float]:
        assert r.result is not None
        ev = r.result.plan.evaluation
        if r.workload.objective == "gpus":
            return (ev.num_gpus, ev.usd_per_hour)
        if r.workload.objective == "power":
            return (ev.power_w, ev.usd_per_hour)
        return (ev.usd_per_hour, ev.num_gpus)

    return EngineComparison(runs=tuple(runs), best=min(feasible, key=key))


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A proposal or plan read from a file: its documents and the resolved workload and deployment."""

    spec: ProposalSpec
    workload_spec: WorkloadSpec
    workload: Workload
    deployment: Deployment


def load_proposal(path: Path, catalog: Catalog) -> Proposal:
    """Read a proposal (or a ``planner size`` plan) and resolve it against the catalog."""
    from planner.io.proposal import read_proposal, to_domain

    spec, workload_spec = read_proposal(path)
    workload, deployment = to_domain(spec, workload_spec, catalog, str(path))
    return Proposal(spec=spec, workload_spec=workload_spec, workload=workload, deployment=deployment)


def evaluate(workload: Workload, deployment: Deployment, catalog: Catalog, redundancy: int | None = None) -> Evaluation:
    """Predicted percentiles, utilization, power and cost of a deployment (see :mod:`planner.perf.evaluate`)."""
    from planner.perf.evaluate import evaluate as _evaluate

    return _evaluate(deployment, workload, catalog, redundancy)


def check(
    path: Path, catalog: Catalog, *, fail_on: Literal["error", "warning"] = "error", skip: Sequence[str] = ()
) -> CheckResult:
    """Apply every ``planner check`` rule to a proposal (or a ``planner size`` plan); each finding
    carries the file and line of the offending YAML key (see :mod:`planner.check`). Thresholds come
    from the proposal's ``policy``, else from the workload's ``constraints``."""
    import os

    from planner.check.rules import DEFAULT_MAX_COST_ABOVE_OPTIMAL_FRAC, Finding, Limit, Policy, YamlPath
    from planner.check.runner import locate, run
    from planner.io.yamlio import find_line, loads, read_text
    from planner.units import HOURS_PER_MONTH, W_PER_KW

    proposal = load_proposal(path, catalog)
    spec, wl, dep = proposal.spec, proposal.workload, proposal.deployment
    for i, p in enumerate(dep.pools):
        try:
            check_tp(catalog.models[wl.model], catalog.gpus[p.gpu], p.tp)
        except InputError as exc:
            raise InputError(f"{path}: pools[{i}].tp: {exc.message}", hint=exc.hint) from None

    pol, c = spec.policy, proposal.workload_spec.constraints

    def limit(key: str, value: float | None, fallback_key: str, fallback: float | None, scale: float = 1.0) -> Limit | None:
        if value is not None:
            return Limit(value=value * scale, path=("policy", key))
        return None if fallback is None else Limit(value=fallback * scale, path=("workload", "constraints", fallback_key))

    redundancy = limit("redundancy", pol.redundancy, "redundancy", c.redundancy)
    assert redundancy is not None
    policy = Policy(
        budget_usd_per_hour=limit(
            "budget_usd_per_month", pol.budget_usd_per_month, "budget_usd_per_month", c.budget_usd_per_month, 1 / HOURS_PER_MONTH
        ),
        power_cap_w=limit("power_cap_kw", pol.power_cap_kw, "power_cap_kw", c.power_cap_kw, W_PER_KW),
        min_headroom_frac=limit("min_headroom_frac", pol.min_headroom_frac, "headroom_frac", c.headroom_frac or None),
        max_cost_above_optimal_frac=limit("max_cost_above_optimal_frac", pol.max_cost_above_optimal_frac, "", None)
        or Limit(value=DEFAULT_MAX_COST_ABOVE_OPTIMAL_FRAC, path=("policy",)),
        redundancy=redundancy,
    )
    pool_paths: dict[str, YamlPath] = {p.key: ("pools", i) for i, p in enumerate(dep.pools)}
    class_paths: dict[str, YamlPath] = {k.name: ("workload", "classes", i) for i, k in enumerate(proposal.workload_spec.classes)}
    link_paths: dict[str, YamlPath] = {}
    if spec.links is not None:
        link_paths = {use.link: ("links", j) for j, use in enumerate(dep.links)}
    for i, p in enumerate(dep.pools):
        if p.link is not None:
            link_paths.setdefault(p.link, ("pools", i, "link"))
    result = run(
        wl,
        dep,
        catalog,
        policy,
        pool_paths=pool_paths,
        class_paths=class_paths,
        link_paths=link_paths,
        fail_on=fail_on,
        skip=skip,
    )

    # Where each finding is written: in the proposal, in a plan's layout, or in the workload file it names.
    text = read_text(path)
    doc = loads(text, str(path))
    is_plan = isinstance(doc, dict) and doc.get("command") == "size" and "schema_version" in doc
    workload_file = None
    if isinstance(spec.workload, str):
        named = Path(spec.workload)
        workload_file = Path(os.path.normpath(named if named.is_absolute() else path.parent / named))
    texts: dict[Path, str] = {path: text}
    where: dict[Finding, tuple[str, int | None]] = {}
    for f in result.findings:
        file, dotted = path, f.path
        if is_plan and dotted:
            dotted = {"pools": ("data",), "links": ("data",), "workload": ("inputs",)}.get(str(dotted[0]), ()) + dotted
        elif workload_file is not None and dotted[:1] == ("workload",) and len(dotted) > 1:
            file, dotted = workload_file, dotted[1:]
            if file not in texts:
                texts[file] = read_text(file)
        where[f] = (str(file), find_line(texts[file], dotted) if dotted else None)
    return locate(result, where)


def simulate(workload: Workload, deployment: Deployment, catalog: Catalog, options: SimOptions | None = None) -> Simulation:
    """Discrete-event simulation of a deployment beside its analytic prediction (see :mod:`planner.sim`;
    ``options``: requests, seed, routing, trace, caps; the defaults of :class:`planner.sim.SimOptions`)."""
    from planner.sim import SimOptions
    from planner.sim import simulate as _simulate

    return _simulate(workload, deployment, catalog, options if options is not None else SimOptions())


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
