"""``planner estimate serve``: what a fixed-concurrency benchmark measures (TTFT/TPOT at a concurrency)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from planner.api.inputs import check_context, hardware, resolve_gpu, resolve_model
from planner.domain import (
    Catalog,
    Efficiency,
    EngineSpec,
    GpuSpec,
    InputSource,
    ModelSpec,
    Precision,
    ServeMode,
    Speculative,
)
from planner.errors import InputError
from planner.io.catalog import IdIndex, load_catalog, select_engine
from planner.io.sources import read_source, reading_once
from planner.io.speculative import parse_speculative_flag
from planner.perf.memory import MAX_EP_GPUS, check_layout, check_tp, require_fit
from planner.perf.roofline import peak_flop_per_s

if TYPE_CHECKING:
    from planner.perf.serve import ServePoint
    from planner.perf.serving import Replica

__all__ = ["ServeOptions", "ServeRequest", "ServeResult", "ServeRun", "estimate_serve", "run_serve", "serve_replica"]

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
    attention_dp: int = 1  # data-parallel attention groups in a replica of tp GPUs
    moe_ep: int = 1  # expert-parallel groups (MoE models)
    replicas: int = 1
    engine: str | None = None
    precision: Precision = "bf16"
    mode: Literal["aggregated", "disaggregated"] = "aggregated"
    prefill_gpu: str | None = None
    prefill_tp: int = 1
    prefill_attention_dp: int = 1
    prefill_moe_ep: int = 1
    prefill_workers: int = 1
    decode_gpu: str | None = None
    decode_tp: int = 1
    decode_attention_dp: int = 1
    decode_moe_ep: int = 1
    decode_workers: int = 1
    link: str | None = None  # disaggregated: the link the KV cache crosses (None: not modelled)
    speculative: str | None = None  # METHOD[:K[:A]] (--speculative): speculative decoding, defaults for what it omits
    where: str = ""  # prefix of error messages (a grid file line)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeResult:
    request: ServeRequest
    model: ModelSpec
    engine: EngineSpec
    point: ServePoint
    replicas: tuple[tuple[str, GpuSpec, int, Efficiency], ...]  # (role, GPU, TP, factors) of each worker type
    speculative: Speculative | None = None  # the resolved --speculative (defaults and their sources filled in)


def serve_replica(
    catalog: Catalog,
    model: ModelSpec,
    gpu: GpuSpec,
    tp: int,
    precision: Precision,
    where: str = "",
    *,
    attention_dp: int = 1,
    moe_ep: int = 1,
    speculative: Speculative | None = None,
) -> Replica:
    """The replica the serving model runs (weights must fit; raises InputError otherwise): ``tp`` GPUs, split into
    ``attention_dp`` data-parallel attention groups and, for an MoE model, ``moe_ep`` expert-parallel groups,
    decoding with ``speculative`` (None: plain decoding)."""
    from planner.perf.memory import draft_weight_frac
    from planner.perf.serving import Replica

    pre = f"{where}: " if where else ""
    check_layout(model, tp, attention_dp, moe_ep, names=("--attention-dp", "--moe-ep", "--tp"), prefix=pre)
    if attention_dp > 1 or moe_ep > 1:
        # expert-parallel replicas may span nodes (up to MAX_EP_GPUS); each attention group stays in one node
        if tp > MAX_EP_GPUS:
            raise InputError(f"{pre}--tp {tp}: an expert-parallel replica has at most {MAX_EP_GPUS} GPUs")
        check_tp(model, gpu, tp // attention_dp)
    else:
        check_tp(model, gpu, tp)
    peak_flop_per_s(gpu, precision)
    fit = require_fit(model, gpu, catalog.engine, tp, precision, attention_dp, draft_weight_frac(speculative, model))
    hw = hardware(catalog, gpu, tp, attention_dp, moe_ep).for_model(model)
    return Replica(model=model, hw=hw, tp=tp, precision=precision, memory=fit, engine=catalog.engine, speculative=speculative)


def estimate_serve(req: ServeRequest, catalog: Catalog | None = None, catalog_dirs: Sequence[Path] = ()) -> ServeResult:
    """What a fixed-concurrency benchmark of the deployment measures (:mod:`planner.perf.serve`)."""
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
    check_context(m, req.isl + req.osl, f"{pre}--isl + --osl")
    spec = None if req.speculative is None else parse_speculative_flag(req.speculative, cat, m.id, f"{pre}--speculative")
    need = req.isl + req.osl + (0 if spec is None else spec.draft_tokens)  # KV tokens of one request (+ K drafts)
    if req.mode == "aggregated":
        if req.gpu is None:
            raise InputError(f"{pre}--gpu is required in aggregated mode")
        g = resolve_gpu(cat, req.gpu, f"{pre}--gpu")
        rep = serve_replica(
            cat, m, g, req.tp, req.precision, pre, attention_dp=req.attention_dp, moe_ep=req.moe_ep, speculative=spec
        )
        if need > rep.memory.max_kv_tokens:
            raise InputError(
                f"{pre}one request of {need} tokens needs more KV cache than {req.tp}x {g.id} holds "
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
        pre_rep = serve_replica(
            cat, m, gp, req.prefill_tp, req.precision, pre, attention_dp=req.prefill_attention_dp, moe_ep=req.prefill_moe_ep
        )
        dec_rep = serve_replica(
            cat,
            m,
            gd,
            req.decode_tp,
            req.precision,
            pre,
            attention_dp=req.decode_attention_dp,
            moe_ep=req.decode_moe_ep,
            speculative=spec,
        )
        if need > dec_rep.memory.max_kv_tokens:
            raise InputError(f"{pre}one request of {need} tokens does not fit the decode worker's KV cache")
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
    return ServeResult(request=req, model=m, engine=cat.engine, point=point, replicas=workers, speculative=spec)


# ------------------------------------------------------------------------- the command's one door


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    """Everything ``planner estimate serve`` takes but the output format and destination: one point
    (:class:`ServeRequest`'s fields), or a ``grid`` CSV of points whose blank cells take these fields."""

    model: str
    isl: int | None = None  # required without a grid
    osl: int | None = None
    concurrency: int | None = None
    gpu: str | None = None  # aggregated mode
    tp: int = 1
    attention_dp: int = 1  # data-parallel attention groups in a replica of tp GPUs
    moe_ep: int = 1  # expert-parallel groups (MoE models)
    replicas: int = 1
    engine: str | None = None
    precision: Precision = "bf16"
    mode: ServeMode = "aggregated"
    prefill_gpu: str | None = None
    prefill_tp: int = 1
    prefill_attention_dp: int = 1
    prefill_moe_ep: int = 1
    prefill_workers: int = 1
    decode_gpu: str | None = None
    decode_tp: int = 1
    decode_attention_dp: int = 1
    decode_moe_ep: int = 1
    decode_workers: int = 1
    link: str | None = None
    speculative: str | None = None  # METHOD[:K[:A]]
    grid: Path | None = None  # CSV of points, columns named as these fields (planner.io.grid)
    catalog_dirs: tuple[Path, ...] = ()

    def point_fields(self) -> dict[str, Any]:
        """The fields a :class:`ServeRequest` (and a grid row's blank cells) take from these options."""
        fields = asdict(self)
        del fields["grid"], fields["catalog_dirs"]
        return fields


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeRun:
    """:func:`run_serve`: every point's result (one without a grid) and what the report needs."""

    options: ServeOptions
    results: tuple[ServeResult, ...]
    inputs: dict[str, Any]
    warnings: tuple[str, ...]
    sources: tuple[InputSource, ...] = ()  # the grid file, when one was read

    @property
    def result(self) -> ServeResult:
        """The one point's result (a run without a grid)."""
        if self.options.grid is not None:
            raise ValueError("a grid run has one result per point: use .results")
        return self.results[0]

    @property
    def input_paths(self) -> tuple[Path, ...]:
        """The files read, which no output may replace."""
        return tuple(Path(s.path) for s in self.sources)


def run_serve(options: ServeOptions, catalog: Catalog | None = None) -> ServeRun:
    """``planner estimate serve`` as a library call: :func:`estimate_serve` of the one point of
    ``options``, or of every row of ``options.grid`` (under ``catalog`` when given, else the built-in
    catalogs and ``options.catalog_dirs``), with the envelope's ``inputs`` and warnings."""
    from planner import api  # the package's names: what callers (and tests) may replace
    from planner.io.grid import read_grid
    from planner.report.serve import serve_inputs, serve_warnings

    with reading_once():
        cat = catalog if catalog is not None else load_catalog(options.catalog_dirs)
        fields = options.point_fields()
        if options.grid is None:
            for name in ("isl", "osl", "concurrency"):
                if fields[name] is None:
                    raise InputError(f"--{name} is required (or give a --grid file)")
            result = api.estimate_serve(ServeRequest(**fields), cat)
            return ServeRun(
                options=options, results=(result,), inputs=serve_inputs(result), warnings=tuple(serve_warnings(result))
            )
        points = read_grid(options.grid, fields)
        source = read_source(options.grid, "CSV")  # the read read_grid made
        results = tuple(api.estimate_serve(ServeRequest(**point, where=where), cat) for where, point in points)
    return ServeRun(
        options=options,
        results=results,
        inputs={"grid": str(options.grid), "points": len(results)},
        warnings=tuple(sorted({w for r in results for w in serve_warnings(r)})),
        sources=(source,),
    )
