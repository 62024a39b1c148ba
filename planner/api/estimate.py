"""``planner estimate prefill|decode``: one step's latency, throughput, bound and memory fit."""

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
    MemoryFit,
    ModelSpec,
    Precision,
    StepEstimate,
)
from planner.errors import InputError
from planner.io.catalog import load_catalog, select_engine
from planner.perf.memory import check_tp, require_fit
from planner.perf.roofline import decode_step, peak_flop_per_s, prefill_step

if TYPE_CHECKING:
    pass


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
        check_context(m, tokens, "--tokens")
        step = prefill_step(m, hw, tp=tp, precision=precision, prompt_tokens=tokens, batch=batch)
        ctx = float(tokens)
    else:
        if context is None:
            raise InputError("--context is required for a decode estimate")
        _positive("--context", context)
        check_context(m, context, "--context")
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
