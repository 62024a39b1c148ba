"""Power of a GPU by phase: ``P_idle + (P_busy − P_idle)·u`` (docs/design.md §3).

Prefill runs near TDP; decode, memory-bound, well below it. ``P_busy`` is the TDP for prefill and
the GPU's measured decode power (splitwise-sim's constant power model) for decode, or the TDP where
no decode figure exists (an upper bound, flagged). An unknown idle power is taken as the TDP for the
same reason. The two terms, :func:`idle_power_w` and :func:`dynamic_power_w`, are also the
optimizer's per-replica power coefficients (power = idle + dynamic × busy fraction).

Measured (issue 19): where the catalog has :class:`PowerFactors` for a GPU (``power.yaml``, fitted
by ``planner.calibrate.powerfit`` on ``calibrate run --power`` steps), ``P_idle`` is the measured idle draw
and ``P_busy`` the board power of the steps the replica runs (:func:`busy_steps_power_w`): power
grows with the step's achieved FLOP/s and HBM bytes/s above the idle draw, up to the power cap.
GPUs without factors keep the datasheet formula above.
"""

from __future__ import annotations

from collections.abc import Iterable

from planner.domain import GpuSpec, StepEstimate
from planner.domain import PowerFactors as PowerFactors  # re-exported: the step-power model lives with its formulas

PhaseName = str  # "prefill" | "decode" | "colocated"


def busy_power_w(gpu: GpuSpec, phase: PhaseName) -> float:
    if phase == "decode" and gpu.decode_busy_w is not None:
        return gpu.decode_busy_w
    return gpu.tdp_w


def idle_power_w(gpu: GpuSpec, factors: PowerFactors | None = None) -> float:
    """Board power of an idle GPU: the measured idle draw where the GPU has step-power factors,
    else the catalog's idle figure, else the TDP."""
    if factors is not None:
        return factors.idle_w
    return gpu.idle_w if gpu.idle_w is not None else gpu.tdp_w


def dynamic_power_w(gpu: GpuSpec, phase: PhaseName) -> float:
    """``P_busy − P_idle`` (never negative): the power that scales with busy time in ``phase``."""
    return max(busy_power_w(gpu, phase) - idle_power_w(gpu), 0.0)


def gpu_power_w(gpu: GpuSpec, phase: PhaseName, utilization_frac: float) -> float:
    """Average board power of one GPU at ``utilization_frac`` busy time in ``phase``."""
    u = min(max(utilization_frac, 0.0), 1.0)
    return idle_power_w(gpu) + dynamic_power_w(gpu, phase) * u


def power_figures_known(gpu: GpuSpec, phase: PhaseName) -> bool:
    return gpu.idle_w is not None and (phase != "decode" or gpu.decode_busy_w is not None)


def step_power_w(f: PowerFactors, mfu_frac: float, mbu_frac: float) -> float:
    """Board power of one GPU busy with steps achieving ``mfu_frac`` / ``mbu_frac``."""
    mfu, mbu = max(mfu_frac, 0.0), max(mbu_frac, 0.0)
    return min(f.cap_w, f.idle_w + f.active_w + f.flop_w * mfu + f.hbm_w * mbu)


def estimate_power_w(f: PowerFactors, est: StepEstimate) -> float:
    """:func:`step_power_w` of a predicted step (its MFU and MBU, per GPU of the replica)."""
    return step_power_w(f, est.mfu_frac, est.mbu_frac)


def replica_power_w(f: PowerFactors, est: StepEstimate, busy_frac: float) -> float:
    """Average power of one GPU of a replica that runs ``est``-like steps ``busy_frac`` of the time
    and idles the rest (the measured form of :func:`gpu_power_w`)."""
    u = min(max(busy_frac, 0.0), 1.0)
    return f.idle_w + (estimate_power_w(f, est) - f.idle_w) * u


def busy_steps_power_w(f: PowerFactors, steps: Iterable[tuple[StepEstimate, float]]) -> float:
    """Board power of one GPU busy with ``steps`` (each with its share of the busy time, e.g. its
    latency): the busy-time-weighted mean of :func:`estimate_power_w`; the cap when there are none."""
    pairs = [(estimate_power_w(f, est), w) for est, w in steps if w > 0]
    total = sum(w for _, w in pairs)
    if not pairs or not total > 0:
        return f.cap_w
    return sum(p * w for p, w in pairs) / total


def measured_dynamic_w(f: PowerFactors, busy_w: float) -> float:
    """``P_busy − P_idle`` (never negative) of a GPU with measured factors busy at ``busy_w``."""
    return max(busy_w - f.idle_w, 0.0)


def measured_gpu_power_w(f: PowerFactors, busy_w: float, utilization_frac: float) -> float:
    """Average board power of one GPU busy at ``busy_w`` a fraction ``utilization_frac`` of the time
    and idle the rest (:func:`gpu_power_w` with the measured model)."""
    u = min(max(utilization_frac, 0.0), 1.0)
    return f.idle_w + measured_dynamic_w(f, busy_w) * u
