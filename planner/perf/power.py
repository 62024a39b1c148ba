"""Power of a GPU by phase: ``P_idle + (P_busy − P_idle)·u`` (DESIGN.md §3).

Prefill runs near TDP; decode, memory-bound, well below it. ``P_busy`` is the TDP for prefill and
the GPU's measured decode power (splitwise-sim's constant power model) for decode, or the TDP where
no decode figure exists (an upper bound, flagged). An unknown idle power is taken as the TDP for the
same reason. The two terms, :func:`idle_power_w` and :func:`dynamic_power_w`, are also the
optimizer's per-replica power coefficients (power = idle + dynamic × busy fraction).

Measured alternative (issue 19): :class:`PowerFactors` and :func:`step_power_w`, fitted by
``planner.powerfit`` on ``calibrate run --power`` steps: power grows with the step's achieved
FLOP/s and HBM bytes/s above the idle draw, up to the board's power cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.domain import GpuSpec, StepEstimate

PhaseName = str  # "prefill" | "decode" | "colocated"


def busy_power_w(gpu: GpuSpec, phase: PhaseName) -> float:
    if phase == "decode" and gpu.decode_busy_w is not None:
        return gpu.decode_busy_w
    return gpu.tdp_w


def idle_power_w(gpu: GpuSpec) -> float:
    """Board power of an idle GPU (the TDP where no idle figure exists)."""
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


@dataclass(frozen=True, slots=True)
class PowerFactors:
    """A GPU's measured step-power model (``planner.powerfit``): the board power of a GPU kept busy
    by back-to-back steps that reach ``mfu`` of the precision's peak FLOP/s and ``mbu`` of the HBM
    bandwidth is ``min(cap_w, idle_w + active_w + flop_w·mfu + hbm_w·mbu)``."""

    gpu: str
    idle_w: float  # nothing running
    active_w: float  # clocks up, a step in flight that achieves nothing
    flop_w: float  # W at 100 % of peak FLOP/s
    hbm_w: float  # W at 100 % of HBM bandwidth
    cap_w: float  # sustained draw at the power limit (the board throttles clocks above it)
    source: str = ""
    as_of: str = ""


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
