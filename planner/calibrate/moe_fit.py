"""Fit an engine's MoE serving factors (:class:`planner.domain.MoeServing`) on end-to-end serving measurements of
mixture-of-experts models at fixed concurrency, aggregated and disaggregated (:mod:`planner.perf.serve`).

The dense factors (op-table kernel factors per GPU and precision, the engine's overheads fitted on dense models)
stay as they are; four factors per engine, one set over every GPU and precision, capture what they miss for MoE
serving: ``compute_frac_scale`` and ``memory_frac_scale`` (the share of the dense GEMM compute and weight-read
efficiency an MoE model's grouped expert GEMMs reach), ``decode_fixed_s`` (extra time of every decode iteration:
gating, dispatch and combine) and ``request_fixed_s`` (the latency outside the GPU before the first token, in place
of the dense fit's: the MoE rows were measured with other releases of each engine than the dense rows).

Least squares on ln(predicted/measured) of each aggregated row's mean TTFT and mean TPOT, both weighted alike, and
of each disaggregated row's mean TPOT. A disaggregated row's TTFT is not fitted on: the model predicts it 65-94 %
short on the dense disaggregated rows as well (Qwen3-32B), so what it misses there (the disaggregated first-token
path: router, KV transfer set-up, prefill batching) is no MoE effect, and a compute factor fitted to it would slow
the aggregated prefills it does not explain. The fit uses a soft-L1
loss (``f_scale`` :data:`LOSS_SCALE`: rows a factor set cannot explain, e.g. a 3x TTFT outlier, weigh less than in
plain least squares). The compute and memory scales are bounded so that no GPU's scaled fraction exceeds
:data:`FRAC_MAX` of peak. One-sigma uncertainties come from the Jacobian at the solution and the residual spread.

The split (:func:`split_of`): rows of the GPUs in :data:`HELD_OUT_GPUS` are held out, every other MoE row is
training. The dense fit splits by model (Llama-3.1-8B and Qwen3-32B training, every other model held out); the MoE
rows cannot be split that way without leaving an engine one model to train on and another to check on, so the MoE
split is by GPU: every H200 row is held out, which leaves each engine training and held-out rows of each model it has
on H200.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from planner.calibrate.engine_fit import ServeCase, median_abs, with_factors
from planner.domain import Catalog, Efficiency, MoeServing, ServingMeasurement
from planner.perf.serve import serve_colocated, serve_disaggregated
from planner.perf.serving import Replica

MOE_PARAMS = ("compute_frac_scale", "memory_frac_scale", "decode_fixed_s", "request_fixed_s")
_X0 = (1.0, 1.0, 1e-3, 0.05)
_LOWER = (0.1, 0.1, 0.0, 0.0)
_UPPER_FIXED_S = (0.2, 2.0)  # decode_fixed_s, request_fixed_s
_SCALE = (0.1, 0.1, 1e-3, 1e-2)
FRAC_MAX = 0.95
"""No scaled compute or memory fraction exceeds this share of peak (factors are never 1.0)."""
LOSS_SCALE = 0.2
"""Soft-L1 scale of the log residuals: beyond about 20 % a row's pull grows linearly, not quadratically."""
HELD_OUT_GPUS = ("h200-sxm",)
"""The MoE split: every row of these GPUs is held out (never fitted on)."""


def split_of(m: ServingMeasurement) -> str:
    """``"train"`` or ``"held-out"`` for an MoE row (:data:`HELD_OUT_GPUS`)."""
    return "held-out" if m.gpu in HELD_OUT_GPUS else "train"


@dataclass(frozen=True, slots=True, kw_only=True)
class DisaggCase:
    """One disaggregated measurement and its prefill and decode workers (built with the dense factors)."""

    measurement: ServingMeasurement
    prefill: Replica
    decode: Replica


Case = ServeCase | DisaggCase


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseError:
    measurement: ServingMeasurement
    mode: str  # "agg" | "disagg"
    ttft_rel_error: float  # predicted/measured − 1 of the mean TTFT
    tpot_rel_error: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MoeFit:
    factors: MoeServing
    sigmas: dict[str, float]
    errors: tuple[CaseError, ...]  # of the fitted factors on the training cases


def without_moe(catalog: Catalog) -> Catalog:
    """``catalog`` with every engine's MoE serving factors left out (the dense factors the fit starts from)."""

    def strip(effs: dict[str, Efficiency] | object) -> dict[str, Efficiency]:
        assert isinstance(effs, dict)
        return {g: replace(e, moe_serving=None) for g, e in effs.items()}

    engines = {k: strip(dict(v)) for k, v in catalog.engine_efficiency.items()}
    return replace(catalog, efficiency=strip(dict(catalog.efficiency)), engine_efficiency=engines)


def _with_moe(rep: Replica, moe: MoeServing | None) -> Replica:
    if moe is None or not rep.model.is_moe:
        return rep
    return with_factors(rep, moe.apply(rep.hw.efficiency))


def predict(case: Case, moe: MoeServing | None = None) -> tuple[float, float]:
    """Mean (TTFT, TPOT) in seconds of ``case`` with ``moe`` applied to its replicas (None: the dense factors)."""
    m = case.measurement
    if isinstance(case, ServeCase):
        p = serve_colocated(_with_moe(case.replica, moe), isl=m.isl, osl=m.osl, concurrency=m.concurrency)
    else:
        p = serve_disaggregated(
            _with_moe(case.prefill, moe),
            m.prefill_workers,
            _with_moe(case.decode, moe),
            m.decode_workers,
            isl=m.isl,
            osl=m.osl,
            concurrency=m.concurrency,
            link=None,
        )
    return p.ttft.mean_s, p.tpot.mean_s


def case_errors(cases: Sequence[Case], moe: MoeServing | None = None) -> tuple[CaseError, ...]:
    out = []
    for case in cases:
        ttft, tpot = predict(case, moe)
        m = case.measurement
        out.append(
            CaseError(
                measurement=m,
                mode="agg" if isinstance(case, ServeCase) else "disagg",
                ttft_rel_error=ttft / m.ttft_s - 1.0,
                tpot_rel_error=tpot / m.tpot_s - 1.0,
            )
        )
    return tuple(out)


def summary(errs: Sequence[CaseError]) -> tuple[int, float, float]:
    """(rows, median |TTFT error|, median |TPOT error|)."""
    return len(errs), median_abs([e.ttft_rel_error for e in errs]), median_abs([e.tpot_rel_error for e in errs])


def factors_of(x: Sequence[float], fitted_on: str = "", source: str = "", as_of: str = "") -> MoeServing:
    values = dict(zip(MOE_PARAMS, (float(v) for v in x), strict=True))
    return MoeServing(**values, fitted_on=fitted_on, source=source, as_of=as_of)  # type: ignore[arg-type]


def _replicas(case: Case) -> tuple[Replica, ...]:
    return (case.replica,) if isinstance(case, ServeCase) else (case.prefill, case.decode)


def scale_bounds(cases: Sequence[Case]) -> tuple[float, float]:
    """Upper bounds of (compute_frac_scale, memory_frac_scale): :data:`FRAC_MAX` over the largest fraction any
    case's factor set (any precision) has."""
    comp, mem = 0.0, 0.0
    for case in cases:
        for rep in _replicas(case):
            for eff in (rep.hw.efficiency, rep.hw.efficiency.fp8, rep.hw.efficiency.fp4):
                if eff is not None:
                    comp, mem = max(comp, eff.compute_frac), max(mem, eff.memory_frac)
    return FRAC_MAX / comp, FRAC_MAX / mem


def fit_moe(cases: Sequence[Case]) -> MoeFit:
    """The MoE serving factors (one value of each of :data:`MOE_PARAMS`) that best predict ``cases`` (MoE rows,
    each keeping the dense factors of its GPU and precision), their one-sigma uncertainties and the errors of the
    fitted factors on the cases."""
    cases = [c for c in cases if c.measurement.model is not None and all(r.model.is_moe for r in _replicas(c))]
    if not cases:
        raise ValueError("no MoE serving measurements to fit")
    comp_hi, mem_hi = scale_bounds(cases)
    lower = np.array(_LOWER)
    upper = np.array([comp_hi, mem_hi, *_UPPER_FIXED_S])
    x0 = np.minimum(np.array(_X0), upper * 0.999)

    def residuals(x: np.ndarray) -> np.ndarray:
        moe = factors_of(x.tolist())
        res = []
        for case in cases:
            ttft, tpot = predict(case, moe)
            if isinstance(case, ServeCase):
                res.append(math.log(ttft / case.measurement.ttft_s))
            res.append(math.log(tpot / case.measurement.tpot_s))
        return np.array(res)

    sol = least_squares(
        residuals, x0, bounds=(lower, upper), x_scale=np.array(_SCALE), diff_step=1e-3, loss="soft_l1", f_scale=LOSS_SCALE
    )
    x = np.array(sol.x, dtype=float)
    tol = 1e-6 * np.array(_SCALE)
    x = np.where(x - lower <= tol, lower, np.where(upper - x <= tol, upper, x))  # a value at its bound is the bound
    # One-sigma of each value: (JᵀJ)⁻¹ s², s² the plain residuals' variance; a factor at a bound gets none.
    jac = np.asarray(sol.jac, dtype=float)
    res = residuals(x)
    dof = max(1, len(res) - len(x))
    s2 = float(res @ res) / dof
    sigmas: dict[str, float] = {}
    try:
        cov = np.linalg.pinv(jac.T @ jac) * s2
        for i, name in enumerate(MOE_PARAMS):
            at_bound = x[i] == lower[i] or x[i] == upper[i]
            if not at_bound and cov[i, i] >= 0:
                sigmas[name] = float(math.sqrt(cov[i, i]))
    except np.linalg.LinAlgError:
        pass
    moe = factors_of(x.tolist())
    return MoeFit(factors=moe, sigmas=sigmas, errors=case_errors(cases, moe))
