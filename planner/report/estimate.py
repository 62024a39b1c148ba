"""Data and table of ``planner estimate``."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from planner.api import EstimateResult
from planner.report.engine import engine_doc, withheld_note
from planner.units import GIB, s_to_ms


def estimate_inputs(r: EstimateResult) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "model": r.model.id,
        "gpu": r.gpu.id,
        "tp": r.tp,
        "precision": r.precision,
        "batch": r.step.batch,
        "engine": engine_doc(r.engine),
    }
    if r.step.phase == "prefill":
        inputs["tokens"] = int(r.context_tokens)
    else:
        inputs["context_tokens"] = int(r.context_tokens)
    return inputs


def estimate_data(r: EstimateResult) -> dict[str, Any]:
    s, mem, eff = r.step, r.memory, r.factors
    return {
        "phase": s.phase,
        "latency_ms": s_to_ms(s.latency_s),
        "throughput_tokens_per_s": s.throughput_tokens_per_s,
        "bound": s.bound,
        "fits": r.fits,
        "breakdown_ms": {
            "compute": s_to_ms(s.compute_s),
            "memory": s_to_ms(s.memory_s),
            "tp_comm": s_to_ms(s.comm_s),
            "overhead": s_to_ms(s.overhead_s),
        },
        "mfu_frac": s.mfu_frac,
        "mbu_frac": s.mbu_frac,
        "flops": s.flops,
        "bytes_moved": s.bytes_moved,
        "memory": {
            "weight_bytes_per_gpu": mem.weight_bytes / r.tp,
            "usable_bytes_per_gpu": mem.usable_bytes / r.tp,
            "kv_capacity_bytes": mem.kv_capacity_bytes,
            "kv_bytes_per_token": mem.kv_bytes_per_token,
            "kv_bytes_needed": mem.kv_bytes_per_token * r.context_tokens * s.batch,
            "max_batch_at_context": r.max_batch,
        },
        "efficiency": {
            "compute_frac": eff.compute_frac,
            "attention_compute_frac": eff.attention_compute_frac,
            "memory_frac": eff.memory_frac,
            "prefill_fixed_ms": s_to_ms(eff.prefill_fixed_s),
            "decode_fixed_ms": s_to_ms(eff.decode_fixed_s),
            "decode_per_seq_ms": s_to_ms(eff.decode_per_seq_s),
            "allreduce_latency_ms": s_to_ms(eff.allreduce_latency_s),
            "allreduce_bandwidth_frac": eff.allreduce_bandwidth_frac,
            "fitted_on": eff.fitted_on,
            "transferred_from": eff.transferred_from,
            "precision_set": r.efficiency.precision_set(r.precision),
        },
    }


WEIGHT_ONLY_FP4 = (
    "{gpu} has no FP4 tensor cores: fp4 weights are served weight-only (dequantized to bf16 in the GEMMs, as "
    "vLLM's Marlin/Triton MXFP4 kernels do), so compute runs at the bf16 peak with the bf16 factors"
)


def estimate_warnings(r: EstimateResult) -> list[str]:
    out = []
    if not r.fits:
        out.append(
            f"the KV cache of {r.step.batch} x {int(r.context_tokens)} tokens needs "
            f"{r.memory.kv_bytes_per_token * r.context_tokens * r.step.batch / GIB:.1f} GiB; "
            f"{max(r.memory.kv_capacity_bytes, 0) / GIB:.1f} GiB is free (largest batch: {r.max_batch})"
        )
    used = r.efficiency.precision_set(r.precision)
    if r.precision == "fp4" and r.gpu.fp4_flop_per_s is None:
        out.append(WEIGHT_ONLY_FP4.format(gpu=r.gpu.id))
    elif r.precision == "fp8" and used != "fp8":
        out.append(
            f"no fp8 steps of {r.gpu.id} were measured: the factors fitted on bf16 runs are used (on the H100 "
            "they predicted fp8 steps 18 % too fast; fit fp8 measurements with planner calibrate)"
        )
    elif used != r.precision:
        out.append(f"no {r.precision} factor set for {r.gpu.id}: the {used} set is used")
    if r.efficiency.transferred_from:
        out.append(
            f"{r.gpu.id} has no {r.engine.id} measurements of its own; its efficiency factors are those of "
            f"{r.efficiency.transferred_from} ({r.factors.fitted_on}{withheld_note(r.factors)})"
        )
    return out


def estimate_table(r: EstimateResult) -> Table:
    d = estimate_data(r)
    s = r.step
    what = (
        f"{s.batch} x {int(r.context_tokens)}-token prompt(s)"
        if s.phase == "prefill"
        else f"batch {s.batch} at {int(r.context_tokens)} tokens of context"
    )
    t = Table(title=f"{s.phase} step: {r.model.id} on {r.tp}x {r.gpu.id} ({r.precision}), {what}", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("latency (ms)", f"{d['latency_ms']:.2f}"),
        ("throughput (tokens/s)", f"{d['throughput_tokens_per_s']:.1f}"),
        ("bound", s.bound),
        ("  compute (ms)", f"{d['breakdown_ms']['compute']:.2f}"),
        ("  memory (ms)", f"{d['breakdown_ms']['memory']:.2f}"),
        ("  TP all-reduce (ms)", f"{d['breakdown_ms']['tp_comm']:.2f}"),
        ("  fixed overhead (ms)", f"{d['breakdown_ms']['overhead']:.2f}"),
        ("MFU (%)", f"{100 * s.mfu_frac:.1f}"),
        ("MBU (%)", f"{100 * s.mbu_frac:.1f}"),
        ("weights per GPU (GiB)", f"{d['memory']['weight_bytes_per_gpu'] / GIB:.1f}"),
        ("KV cache free (GiB)", f"{max(d['memory']['kv_capacity_bytes'], 0) / GIB:.1f}"),
        ("KV bytes per token", f"{d['memory']['kv_bytes_per_token']:,.0f}"),
        ("largest batch at this context", f"{r.max_batch}"),
        ("fits", "yes" if r.fits else "NO"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t
