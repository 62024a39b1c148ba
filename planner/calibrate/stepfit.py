"""Fit the performance core's efficiency factors to measured step times.

Least squares on the log of predicted/measured latency (a relative error that treats a 20 ms decode
step and a 3 s prefill alike), one parameter set per GPU, over the physics of
:mod:`planner.perf.roofline`. Eight parameters per GPU: GEMM, attention and memory efficiency, prefill and
decode fixed cost, per-sequence decode cost, all-reduce latency and all-reduce bandwidth efficiency.
Measurements faster than the compute floor (100 % of peak FLOP/s) are physically impossible and are
excluded, with the reason kept.

This is the one code path that produces ``catalogs/efficiency.yaml`` (``planner calibrate fit``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from planner.domain import Catalog, Efficiency, Measurement, ModelSpec, Precision
from planner.errors import InputError
from planner.perf.roofline import Hardware, decode_step, peak_flop_per_s, prefill_step, step
from planner.perf.transfer import intra_node_bandwidth_bytes_per_s

PARAMS = (
    "compute_frac",
    "attention_compute_frac",
    "memory_frac",
    "prefill_fixed_s",
    "decode_fixed_s",
    "decode_per_seq_s",
    "allreduce_latency_s",
    "allreduce_bandwidth_frac",
)
_X0 = (0.6, 0.4, 0.7, 5e-3, 5e-3, 2e-4, 1e-5, 0.3)
# Fractions of peak stay below 0.9 (a plain PyTorch H100 run reaches 70-86 %, docs/design.md §3).
_LOWER = (0.05, 0.02, 0.05, 1e-6, 1e-6, 1e-8, 1e-8, 0.01)
_UPPER = (0.9, 0.9, 0.9, 1.0, 1.0, 1e-2, 1e-2, 0.9)


@dataclass(frozen=True, slots=True, kw_only=True)
class PointError:
    measurement: Measurement
    predicted_s: float
    excluded: str | None  # reason, when the point is not used in the fit or error figures

    @property
    def rel_error(self) -> float:
        return self.predicted_s / self.measurement.latency_s - 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuFit:
    gpu: str
    precision: Precision  # the runs it was fitted on (fp8 runs get their own set)
    efficiency: Efficiency
    rel_uncertainty: dict[str, float]  # one-sigma relative uncertainty of each parameter
    points: tuple[PointError, ...]

    def abs_errors(self, phase: str | None = None) -> np.ndarray:
        return np.array(
            [abs(p.rel_error) for p in self.points if p.excluded is None and (phase is None or p.measurement.phase == phase)]
        )


def decode_runs(m: Measurement, model: ModelSpec, hw: Hardware) -> list[tuple[int, float]]:
    """The decode steps of a ``batch`` measurement (a static batch: ``batch`` prompts of ``tokens``
    tokens generating ``output_tokens`` tokens each) as runs of (steps, mean context).

    After the prefill, which yields the first token, decode step ``k`` (1 to ``output - 1``) runs over
    ``tokens + k`` tokens of context. Within a run one roofline bound holds, so every term of the
    step time is affine in the context and the run's sum is exactly ``steps`` times the step at its
    mean context. ``compute_s - memory_s`` is affine in the context too, so the bound changes at most
    once: at most two runs, split where that difference changes sign."""
    n = m.output_tokens - 1
    if n <= 0:
        return []
    first, last = m.tokens + 1, m.tokens + n

    def gap(context: int) -> float:
        est = decode_step(model, hw, tp=m.tp, precision=m.precision, batch=m.batch, context_tokens=float(context))
        return est.compute_s - est.memory_s

    g_first, g_last = gap(first), gap(last)
    if n == 1 or (g_first >= 0) == (g_last >= 0):
        return [(n, (first + last) / 2)]
    split = min(max(math.floor(first + g_first * (last - first) / (g_first - g_last)), first), last - 1)
    return [(split - first + 1, (first + split) / 2), (last - split, (split + 1 + last) / 2)]


def predict_s(m: Measurement, model: ModelSpec, hw: Hardware) -> float:
    if m.phase == "prefill":
        return prefill_step(model, hw, tp=m.tp, precision=m.precision, prompt_tokens=m.tokens, batch=m.batch).latency_s
    if m.phase == "batch":  # a whole static batch: one prefill step, then output - 1 decode steps
        prefill = prefill_step(model, hw, tp=m.tp, precision=m.precision, prompt_tokens=m.tokens, batch=m.batch).latency_s
        return prefill + sum(
            steps * decode_step(model, hw, tp=m.tp, precision=m.precision, batch=m.batch, context_tokens=context).latency_s
            for steps, context in decode_runs(m, model, hw)
        )
    return decode_step(model, hw, tp=m.tp, precision=m.precision, batch=m.batch, context_tokens=m.context_tokens).latency_s


def compute_floor_s(m: Measurement, model: ModelSpec, hw: Hardware) -> float:
    """Time at 100 % of peak FLOP/s with no overhead: nothing real runs faster."""
    ideal = replace(
        hw.efficiency,
        compute_frac=1.0,
        attention_compute_frac=1.0,
        memory_frac=1.0,
        prefill_fixed_s=0.0,
        decode_fixed_s=0.0,
        decode_per_seq_s=0.0,
        allreduce_latency_s=0.0,
        allreduce_bandwidth_frac=1.0,
    )
    hw1 = Hardware(hw.gpu, ideal, hw.intra_node_bytes_per_s)
    if m.phase in ("prefill", "batch"):
        est = step(
            model,
            hw1,
            tp=m.tp,
            precision=m.precision,
            prefill_tokens=float(m.tokens * m.batch),
            prefill_sq_tokens=float(m.batch) * m.tokens**2,
        )
        flops = est.flops
        if m.phase == "batch":  # FLOPs are affine in the context: the decode steps at their mean context
            for steps, context in decode_runs(m, model, hw1):
                flops += (
                    steps * decode_step(model, hw1, tp=m.tp, precision=m.precision, batch=m.batch, context_tokens=context).flops
                )
    else:
        flops = decode_step(model, hw1, tp=m.tp, precision=m.precision, batch=m.batch, context_tokens=m.context_tokens).flops
    return flops / (m.tp * peak_flop_per_s(hw.gpu, m.precision))


def _efficiency(gpu: str, x: Sequence[float], fitted_on: str) -> Efficiency:
    values = dict(zip(PARAMS, (float(v) for v in x), strict=True))
    return Efficiency(gpu=gpu, fitted_on=fitted_on, **values)  # type: ignore[arg-type]


def fit_key(gpu: str, precision: Precision) -> str:
    """The name of one fitted set: the GPU id for bf16 runs, ``gpu/fp8`` for fp8 runs."""
    return gpu if precision == "bf16" else f"{gpu}/{precision}"


def fit_gpu(
    gpu_id: str, measurements: Sequence[Measurement], catalog: Catalog, fitted_on: str, precision: Precision = "bf16"
) -> GpuFit:
    """Fit the eight factors of one GPU from its runs at ``precision``; raises :class:`InputError`
    with too few valid points."""
    gpu = catalog.gpus[gpu_id]
    mine = [m for m in measurements if m.gpu == gpu_id and m.precision == precision]
    intra = {tp: intra_node_bandwidth_bytes_per_s(gpu, catalog, tp) for tp in sorted({m.tp for m in mine})}
    excluded: list[str | None] = []
    for m in mine:
        floor = compute_floor_s(m, catalog.models[m.model], Hardware(gpu, _efficiency(gpu_id, _X0, fitted_on), intra[m.tp]))
        excluded.append(
            f"faster than the compute floor ({m.latency_s * 1e3:.1f} ms < {floor * 1e3:.1f} ms at 100 % of peak)"
            if m.latency_s < floor
            else None
        )
    broken = {m.origin for m, why in zip(mine, excluded, strict=True) if why is not None}
    excluded = [
        why if why is not None else ("from the same run as an impossible prefill" if m.origin in broken else None)
        for m, why in zip(mine, excluded, strict=True)
    ]
    used = [m for m, why in zip(mine, excluded, strict=True) if why is None]
    # Single-GPU measurements carry no all-reduce: those two factors keep the catalog's values.
    fixed: dict[str, float] = {}
    if all(m.tp == 1 for m in used):
        known = catalog.efficiency.get(gpu_id)
        base = known.for_precision(precision) if known is not None else None
        fixed = {p: (getattr(base, p) if base is not None else _X0[PARAMS.index(p)]) for p in PARAMS if p.startswith("allreduce")}
        if base is not None:
            fitted_on += f" (all-reduce factors kept from: {base.fitted_on})"
    free = [i for i, p in enumerate(PARAMS) if p not in fixed]
    if len(used) < len(free) + 1:
        raise InputError(
            f"{fit_key(gpu_id, precision)}: {len(used)} valid measurements; "
            f"at least {len(free) + 1} are needed to fit {len(free)} factors"
        )

    def full(x: np.ndarray) -> list[float]:
        values = [fixed.get(p, 0.0) for p in PARAMS]
        for i, v in zip(free, x, strict=True):
            values[i] = float(v)
        return values

    def residuals(logx: np.ndarray) -> np.ndarray:
        eff = _efficiency(gpu_id, full(np.exp(logx)), fitted_on)
        return np.array(
            [math.log(predict_s(m, catalog.models[m.model], Hardware(gpu, eff, intra[m.tp])) / m.latency_s) for m in used]
        )

    lower, upper, start = (np.log([bound[i] for i in free]) for bound in (_LOWER, _UPPER, _X0))
    result = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac")
    eff = _efficiency(gpu_id, full(np.exp(result.x)), fitted_on)
    dof = max(1, len(used) - len(free))
    s2 = float(result.fun @ result.fun) / dof
    cov = np.linalg.pinv(result.jac.T @ result.jac) * s2
    sigma_free = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    sigma = np.zeros(len(PARAMS))
    sigma[free] = sigma_free
    points = tuple(
        PointError(
            measurement=m, predicted_s=predict_s(m, catalog.models[m.model], Hardware(gpu, eff, intra[m.tp])), excluded=why
        )
        for m, why in zip(mine, excluded, strict=True)
    )
    return GpuFit(
        gpu=gpu_id,
        precision=precision,
        efficiency=eff,
        rel_uncertainty=dict(zip(PARAMS, (float(s) for s in sigma), strict=True)),
        points=points,
    )


def describe(measurements: Sequence[Measurement], gpu: str, precision: Precision, files: str) -> str:
    """``fitted_on`` text: the files, model(s) and TP degrees the set of ``gpu`` at ``precision`` comes from."""
    mine = [m for m in measurements if m.gpu == gpu and m.precision == precision]
    models = ", ".join(sorted({m.model for m in mine}))
    tps = "/".join(str(t) for t in sorted({m.tp for m in mine}))
    return f"{files}: {models} on {gpu}, TP {tps}{', fp8' if precision == 'fp8' else ''}"


def fit(measurements: Sequence[Measurement], catalog: Catalog, files: str) -> dict[str, GpuFit]:
    """Fit one set per GPU and precision that has measurements (keys from :func:`fit_key`, in
    order); ``files`` names the measurement files. fp8 runs get their own set: the fp8 GEMMs reach
    a different fraction of their doubled peak (on the H100, bf16-fitted factors predict fp8 steps
    18 % too fast on median)."""
    for m in measurements:
        if m.gpu not in catalog.gpus:
            raise InputError(f"{m.origin}: unknown GPU {m.gpu!r}")
        if m.model not in catalog.models:
            raise InputError(f"{m.origin}: unknown model {m.model!r}")
    sets = sorted({(m.gpu, m.precision) for m in measurements})
    return {
        fit_key(gpu, precision): fit_gpu(gpu, measurements, catalog, describe(measurements, gpu, precision, files), precision)
        for gpu, precision in sets
    }


def held_out_errors(full: GpuFit, catalog: Catalog, folds: int = 5) -> np.ndarray:
    """|relative error| of each valid measurement of the fitted set ``full`` predicted by factors
    fitted without it: k-fold cross-validation with a deterministic split (every ``folds``-th
    configuration), so the user sees whether the physics generalizes or the fit memorizes."""
    gpu_id, precision = full.gpu, full.precision
    valid = [p.measurement for p in full.points if p.excluded is None]
    gpu = catalog.gpus[gpu_id]
    errors = []
    for fold in range(folds):
        test = valid[fold::folds]
        train = [m for i, m in enumerate(valid) if i % folds != fold]
        if not test or len(train) < len(PARAMS) + 1:
            continue
        eff = fit_gpu(gpu_id, train, catalog, "cross-validation", precision).efficiency
        for m in test:
            hw = Hardware(gpu, eff, intra_node_bandwidth_bytes_per_s(gpu, catalog, m.tp))
            errors.append(abs(predict_s(m, catalog.models[m.model], hw) / m.latency_s - 1.0))
    return np.array(errors)
