"""``planner estimate prefill|decode``: one step's latency, throughput, bound and memory fit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from planner.api.inputs import check_context, hardware, resolve_gpu, resolve_model
from planner.domain import (
    Catalog,
    Efficiency,
    EngineSpec,
    GpuSpec,
    InputSource,
    MemoryFit,
    ModelSpec,
    Phase,
    Precision,
    StepEstimate,
)
from planner.errors import InputError
from planner.io.catalog import load_catalog, select_engine
from planner.io.sources import reading_once
from planner.perf.memory import check_tp, require_fit
from planner.perf.roofline import decode_step, peak_flop_per_s, prefill_step

__all__ = ["EstimateOptions", "EstimateResult", "EstimateRun", "estimate", "run_estimate"]


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
    hw = hardware(cat, g, tp).for_model(m)
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


# ------------------------------------------------------------------------- the command's one door


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimateOptions:
    """Everything ``planner estimate prefill|decode`` takes but the output format and destination."""

    phase: Phase
    model: str
    gpu: str
    tp: int
    precision: Precision = "bf16"
    tokens: int | None = None  # prefill: prompt length
    batch: int = 1
    context: int | None = None  # decode: context length of each sequence
    engine: str | None = None  # NAME or NAME@VERSION; None: the catalog's selected engine
    catalog_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimateRun:
    """:func:`run_estimate`: the estimate and what its report needs (the envelope's ``inputs`` and warnings)."""

    options: EstimateOptions
    result: EstimateResult
    inputs: dict[str, Any]
    warnings: tuple[str, ...]
    sources: tuple[InputSource, ...] = ()  # files read (an estimate reads none but the catalogs)

    @property
    def command(self) -> str:
        """The envelope's ``command``: ``estimate prefill`` or ``estimate decode``."""
        return f"estimate {self.options.phase}"


def run_estimate(options: EstimateOptions, catalog: Catalog | None = None) -> EstimateRun:
    """``planner estimate prefill|decode`` as a library call: :func:`estimate` of ``options`` (under
    ``catalog`` when given, else the built-in catalogs and ``options.catalog_dirs``), with the
    envelope's ``inputs`` and the warnings the command prints."""
    from planner import api  # the package's names: what callers (and tests) may replace
    from planner.report.estimate import estimate_inputs, estimate_warnings

    with reading_once():
        result = api.estimate(
            options.phase,
            model=options.model,
            gpu=options.gpu,
            tp=options.tp,
            precision=options.precision,
            tokens=options.tokens,
            batch=options.batch,
            context=options.context,
            catalog=catalog,
            catalog_dirs=options.catalog_dirs,
            engine=options.engine,
        )
    return EstimateRun(
        options=options,
        result=result,
        inputs=estimate_inputs(result),
        warnings=tuple(estimate_warnings(result)),
    )
