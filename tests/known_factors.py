"""Efficiency factors that synthetic measurements are generated with (the fits must recover them)."""

from __future__ import annotations

from planner.domain import Efficiency

TRUE = Efficiency(
    gpu="h100-sxm",
    compute_frac=0.55,
    attention_compute_frac=0.35,
    memory_frac=0.7,
    prefill_fixed_s=4e-3,
    decode_fixed_s=6e-3,
    decode_per_seq_s=1.5e-4,
    allreduce_latency_s=2e-5,
    allreduce_bandwidth_frac=0.4,
    fitted_on="synthetic",
)
