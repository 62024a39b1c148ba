"""Power of a GPU by phase: ``P_idle + (P_busy − P_idle)·u`` (DESIGN.md §3).

Prefill runs near TDP; decode, memory-bound, well below it. ``P_busy`` is the TDP for prefill and
the GPU's measured decode power (splitwise-sim's constant power model) for decode, or the TDP where
no decode figure exists (an upper bound, flagged). An unknown idle power is taken as the TDP for the
same reason. The two terms, :func:`idle_power_w` and :func:`dynamic_power_w`, are also the
optimizer's per-replica power coefficients (power = idle + dynamic × busy fraction).
"""

from __future__ import annotations

from planner.domain import GpuSpec

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
