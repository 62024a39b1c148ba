"""``planner estimate serve``: what a fixed-concurrency benchmark measures (TTFT/TPOT at a concurrency)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from planner.api.inputs import check_context, hardware, resolve_gpu, resolve_model
from planner.domain import (
    Catalog,
    Efficiency,
    EngineSpec,
    GpuSpec,
    ModelSpec,
    Precision,
)
from planner.errors import InputError
from planner.io.catalog import IdIndex, load_catalog, select_engine
from planner.perf.memory import check_tp, require_fit
from planner.perf.roofline import peak_flop_per_s

if TYPE_CHECKING:
    from planner.perf.serve import ServePoint
    from planner.perf.serving import Replica


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
