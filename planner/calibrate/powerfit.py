"""Fit a GPU's step-power model on ``calibrate run --power`` steps (issue 19). Pure: no I/O.

Each measured step gives its achieved share of peak FLOP/s (``mfu``, of the precision's peak) and
of HBM bandwidth (``mbu``), both from the performance core's FLOP and byte counts of the step over
its *measured* time, and the mean board power while it was replayed back to back. The model
(:func:`planner.perf.power.step_power_w`) is

    P = min(cap, P_idle + P_active + a·mfu + b·mbu)

with ``P_idle`` the measured idle draw, ``cap`` the sustained draw of the steps that ran into the
power limit (median of those within ``CAPPED_FRAC`` of it), and ``P_active, a, b`` a least-squares
fit that treats capped steps as censored: a capped step constrains the fit only while the line
predicts less than the cap for it (it says "at least the cap", not "exactly").
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.domain import GpuSpec, ModelSpec, PowerRow
from planner.perf.power import PowerFactors, step_power_w
from planner.perf.roofline import Hardware, step

CAPPED_FRAC = 0.97  # a step whose mean power is within 3 % of the power limit ran into it


@dataclass(frozen=True, slots=True)
class PowerPoint:
    phase: str
    model: str
    precision: str
    batch: int
    tokens: int
    context_tokens: float
    mfu: float
    mbu: float
    mean_w: float
    origin: str = ""


def achieved(row: PowerRow, model: ModelSpec, hw: Hardware) -> PowerPoint:
    """The step's achieved MFU and MBU (core FLOP/byte counts over the measured time) per GPU."""
    m = row.step
    if m.phase == "prefill":
        est = step(
            model, hw, tp=m.tp, precision=m.precision, prefill_tokens=float(m.batch * m.tokens),
            prefill_sq_tokens=float(m.batch) * float(m.tokens) ** 2, num_prompts=m.batch,
        )  # fmt: skip
    else:
        context = m.batch * m.context_tokens
        est = step(model, hw, tp=m.tp, precision=m.precision, decode_batch=m.batch, decode_context_tokens=context)
    peak = hw.gpu.peak_flop_per_s(m.precision) or hw.gpu.peak_flop_per_s("bf16") or 1.0
    mfu = est.flops / (m.latency_s * m.tp * float(peak))
    mbu = est.bytes_moved / (m.latency_s * m.tp * hw.gpu.hbm_bandwidth_bytes_per_s)
    return PowerPoint(m.phase, m.model, m.precision, m.batch, m.tokens, m.context_tokens, mfu, mbu, row.mean_w, m.origin)


@dataclass(frozen=True, slots=True)
class PowerFit:
    factors: PowerFactors
    points: int
    capped: int  # of them at the power limit
    median_abs_error_frac: float
    worst_abs_error_frac: float


def errors(factors: PowerFactors, points: Sequence[PowerPoint]) -> np.ndarray:
    """``predicted / measured − 1`` per point."""
    return np.array([step_power_w(factors, p.mfu, p.mbu) / p.mean_w - 1.0 for p in points])


def fit(
    points: Sequence[PowerPoint], *, gpu: GpuSpec, idle_w: float, power_limit_w: float | None = None,
    source: str = "", as_of: str = "", iterations: int = 50,
) -> PowerFit:  # fmt: skip
    """Fit ``P_active, a, b`` (see the module docstring) on ``points`` of one GPU."""
    limit = power_limit_w if power_limit_w is not None else gpu.tdp_w
    watts = np.array([p.mean_w for p in points])
    capped = watts >= CAPPED_FRAC * limit
    cap = float(statistics.median(watts[capped])) if capped.any() else float(limit)
    x = np.array([[1.0, p.mfu, p.mbu] for p in points])
    y = watts - idle_w
    active = ~capped
    if active.sum() < 3:
        raise ValueError(f"power fit for {gpu.id}: {int(active.sum())} steps below the power limit, need at least 3")
    coef = np.zeros(3)
    for _ in range(iterations):
        target = np.where(capped, cap - idle_w, y)
        coef, *_ = np.linalg.lstsq(x[active], target[active], rcond=None)
        below = capped & (x @ coef < cap - idle_w)  # censored rows the line under-predicts
        nxt = ~capped | below
        if (nxt == active).all():
            break
        active = nxt
    factors = PowerFactors(
        gpu=gpu.id, idle_w=float(idle_w), active_w=float(coef[0]), flop_w=float(coef[1]), hbm_w=float(coef[2]),
        cap_w=cap, source=source, as_of=as_of,
    )  # fmt: skip
    err = np.abs(errors(factors, points))
    return PowerFit(factors, len(points), int(capped.sum()), float(np.median(err)), float(err.max()))
