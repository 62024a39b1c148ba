"""Fit what per-op tables lack, an engine's per-iteration overheads and how its clients fall into
step, on end-to-end serving measurements at fixed concurrency (:mod:`planner.perf.serve`).

Five parameters per engine, one set over every GPU and precision measured (they are the engine's
costs, not a GPU's: docs/design.md §3), each GPU and precision keeping its own op-table kernel factors:
``prefill_fixed_s`` (per prefill iteration), ``decode_fixed_s`` and ``decode_per_seq_s`` (per decode
iteration and per running sequence: scheduling, sampling, detokenization) and ``prefill_sync_frac``
(the share of the other clients' prompts a prompt waits behind) and ``request_fixed_s`` (latency
before the first token outside the GPU: API server, tokenization). Least squares on the log of
predicted/measured mean TTFT and TPOT, both weighted alike. Points the replica cannot hold (the
model does not fit) are reported and left out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from planner.domain import Efficiency, ServingMeasurement
from planner.perf.serve import ServePoint, serve_colocated
from planner.perf.serving import Replica

SERVE_PARAMS = ("prefill_fixed_s", "decode_fixed_s", "decode_per_seq_s", "prefill_sync_frac", "request_fixed_s")
_X0 = (5e-3, 3e-3, 2e-5, 0.3, 0.03)
_LOWER = (1e-6, 1e-6, 0.0, 0.0, 0.0)
_UPPER = (0.5, 0.1, 1e-3, 1.0, 1.0)
_SCALE = (1e-2, 1e-2, 1e-4, 1.0, 1e-2)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeCase:
    """One measurement and the replica that serves it (built with the set's kernel factors)."""

    measurement: ServingMeasurement
    replica: Replica


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeError:
    measurement: ServingMeasurement
    ttft_rel_error: float  # predicted/measured − 1 of the mean TTFT
    tpot_rel_error: float


MAD_TO_SIGMA = 1.4826
"""median |x| × this is the standard deviation of a normal distribution centred at zero (the robust scale)."""

SPREAD_METHOD = (
    "one-sigma of ln(predicted/measured) of each row's mean TTFT and mean TPOT, robust and about zero "
    "(1.4826 x median |ln ratio|: a bias of the fit counts as spread); correlation: Pearson's of the two log ratios"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """:func:`spread` of a set of rows (:data:`SPREAD_METHOD`)."""

    rows: int
    ttft_log_sigma: float
    tpot_log_sigma: float
    correlation: float


def spread(errs: Sequence[ServeError]) -> Spread | None:
    """The robust one-sigma of ln(predicted/measured) of the mean TTFT and of the mean TPOT over ``errs``, and the
    correlation of the two log ratios (None without rows)."""
    if not errs:
        return None
    a = np.log1p(np.array([e.ttft_rel_error for e in errs]))
    b = np.log1p(np.array([e.tpot_rel_error for e in errs]))
    corr = 0.0
    if len(errs) > 2 and float(np.std(a)) > 0 and float(np.std(b)) > 0:
        corr = float(np.corrcoef(a, b)[0, 1])
    return Spread(
        rows=len(errs),
        ttft_log_sigma=MAD_TO_SIGMA * float(np.median(np.abs(a))),
        tpot_log_sigma=MAD_TO_SIGMA * float(np.median(np.abs(b))),
        correlation=corr,
    )


def median_abs(values: Sequence[float]) -> float:
    return statistics.median(abs(v) for v in values) if values else math.nan


def with_factors(rep: Replica, eff: Efficiency) -> Replica:
    """``rep`` computing with ``eff`` (a fresh memo: cached step times belong to the old factors)."""
    return replace(rep, hw=replace(rep.hw, efficiency=eff), memo={})


def predict(case: ServeCase, eff: Efficiency | None = None) -> ServePoint:
    m = case.measurement
    rep = case.replica if eff is None else with_factors(case.replica, eff)
    return serve_colocated(rep, isl=m.isl, osl=m.osl, concurrency=m.concurrency)


def errors(cases: Sequence[ServeCase], eff: Efficiency | None = None) -> tuple[ServeError, ...]:
    out = []
    for case in cases:
        p = predict(case, eff)
        out.append(
            ServeError(
                measurement=case.measurement,
                ttft_rel_error=p.ttft.mean_s / case.measurement.ttft_s - 1.0,
                tpot_rel_error=p.tpot.mean_s / case.measurement.tpot_s - 1.0,
            )
        )
    return tuple(out)


def set_overheads(eff: Efficiency, overheads: dict[str, float], fitted_on: str | None = None) -> Efficiency:
    """``eff`` (one set, no fp8 sub-set) with the engine's overheads in place."""
    out = replace(eff, fp8=None, **overheads)  # type: ignore[arg-type]
    return out if fitted_on is None else replace(out, fitted_on=fitted_on)


def fit_serving(cases: Sequence[ServeCase]) -> tuple[dict[str, float], tuple[ServeError, ...]]:
    """The engine's overheads (one value of each of :data:`SERVE_PARAMS` for every case, each case
    keeping the kernel factors of its own GPU and precision) that best predict ``cases``, and the
    errors of the fitted model on them. The overheads are the engine's (scheduling, sampling, the API
    server), not a GPU's, so one set is fitted over every GPU and precision measured."""
    if not cases:
        raise ValueError("no serving measurements to fit")
    kernels = [replace(c.replica.hw.efficiency.for_precision(c.replica.precision), fp8=None) for c in cases]
    # An engine that runs prefill chunks inside decode iterations never runs a prefill-only step, so
    # its measurements cannot tell prefill_fixed_s: it is the same iteration overhead, decode_fixed_s.
    tied = all(c.replica.engine.decode_first for c in cases)
    free = [i for i, name in enumerate(SERVE_PARAMS) if not (tied and name == "prefill_fixed_s")]

    def overheads(x: np.ndarray) -> dict[str, float]:
        out = {SERVE_PARAMS[i]: float(v) for i, v in zip(free, x, strict=True)}
        if tied:
            out["prefill_fixed_s"] = out["decode_fixed_s"]
        return {name: out[name] for name in SERVE_PARAMS}

    def residuals(x: np.ndarray) -> np.ndarray:
        o = overheads(x)
        res = []
        for case, k in zip(cases, kernels, strict=True):
            p = predict(case, set_overheads(k, o))
            res.append(math.log(p.ttft.mean_s / case.measurement.ttft_s))
            res.append(math.log(p.tpot.mean_s / case.measurement.tpot_s))
        return np.array(res)

    pick = np.array(free)
    sol = least_squares(
        residuals,
        np.array(_X0)[pick],
        bounds=(np.array(_LOWER)[pick], np.array(_UPPER)[pick]),
        x_scale=np.array(_SCALE)[pick],
        diff_step=1e-3,
    )
    o = overheads(sol.x)
    errs: list[ServeError] = []
    for case, k in zip(cases, kernels, strict=True):
        errs.extend(errors([case], set_overheads(k, o)))
    return o, tuple(errs)
