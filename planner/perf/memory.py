"""Memory fit of a model on a replica of ``tp`` GPUs.

``t·HBM·usable_frac ≥ N·s_w + reserve + kv_tok·Σcontext`` (docs/design.md §3). ``usable_frac`` is the
engine's share of HBM (vLLM's ``gpu_memory_utilization``, default 0.9); the KV cache gets what is
left after the weights and the reserve.
"""

from __future__ import annotations

from planner.domain import EngineSpec, GpuSpec, MemoryFit, ModelSpec, Precision, Speculative
from planner.errors import DoesNotFitError, InputError
from planner.perf.roofline import kv_replication as kv_replication  # re-exported: memory's own name since issue 13
from planner.perf.roofline import moe_split
from planner.units import GIB, KV_BYTES, PRECISION_BYTES

TP_DEGREES = (1, 2, 4, 8)


def kv_bytes_per_token(model: ModelSpec, precision: Precision) -> float:
    """``2·n_L·n_kv·d_h·s_kv``: keys and values of every layer (Llama-3.1-70B bf16: 327,680 B); under
    multi-head latent attention ``n_L·(r_kv + d_rope)·s_kv``, one compressed vector shared by all heads
    (DeepSeek-V3 fp8: 61·(512 + 64) = 35,136 B). What one request's KV cache holds, and what a KV transfer carries.

    The KV cache is stored at the serving precision (fp8 runs use an fp8 KV cache). Sliding-window layers are
    counted like full ones (an upper bound: engines with a hybrid allocator keep only the window of those layers).
    """
    if model.is_mla and model.kv_lora_rank is not None and model.qk_rope_head_dim is not None:
        return float(model.num_layers * (model.kv_lora_rank + model.qk_rope_head_dim)) * KV_BYTES[precision]
    return 2.0 * model.num_layers * model.num_kv_heads * model.head_dim * KV_BYTES[precision]


def weight_bytes(model: ModelSpec, precision: Precision) -> float:
    """All parameters (every expert of an MoE model) at the serving precision."""
    return model.num_params * PRECISION_BYTES[precision]


def max_tp(gpu: GpuSpec) -> int:
    """The widest tensor-parallel group: a node, or an NVLink domain larger than one (GB200 NVL72's trays)."""
    return max(gpu.gpus_per_node, gpu.nvlink_domain_gpus)


def check_layout(
    model: ModelSpec,
    tp: int,
    attention_dp: int,
    moe_ep: int,
    *,
    names: tuple[str, str, str] = ("attention_dp", "moe_ep", "tp"),
    prefix: str = "",
) -> None:
    """A replica of ``tp`` GPUs splits into ``attention_dp`` attention groups and ``moe_ep`` expert groups that
    each divide it; expert parallelism is for MoE models. ``names``: how the caller spells the three (fields of a
    proposal, or flags), in errors after ``prefix``."""
    dp_name, ep_name, tp_name = names
    for name, value in ((dp_name, attention_dp), (ep_name, moe_ep)):
        if value < 1 or tp % value:
            raise InputError(f"{prefix}{name} {value}: must divide the replica's {tp} GPUs ({tp_name})")
    if moe_ep > 1 and not model.is_moe:
        raise InputError(f"{prefix}{ep_name} {moe_ep}: {model.id} is not a mixture-of-experts model")


def check_tp(model: ModelSpec, gpu: GpuSpec, tp: int) -> None:
    """TP must be a power of two within one node (or one NVLink domain) that divides the attention heads."""
    if tp not in TP_DEGREES:
        raise InputError(f"--tp {tp}: tensor-parallel degree must be one of {', '.join(map(str, TP_DEGREES))}")
    if tp > max_tp(gpu):
        raise InputError(f"--tp {tp}: {gpu.id} has {gpu.gpus_per_node} GPUs per node; tensor parallelism stays within a node")
    if model.num_attention_heads % tp:
        raise InputError(f"--tp {tp}: {model.id} has {model.num_attention_heads} attention heads, not divisible by {tp}")


def draft_weight_frac(spec: Speculative | None, model: ModelSpec) -> float:
    """A speculative drafter's weights as a share of the model's: ``draft_layers / num_layers`` (the assumption the
    drafting cost makes, :func:`planner.perf.serving.draft_cost_frac`; DeepSeek-V3's MTP module is 14B parameters
    against the 11B this gives). 0 without speculation or for a lookup drafter."""
    return 0.0 if spec is None else spec.draft_layers / model.num_layers


def memory_fit(
    model: ModelSpec,
    gpu: GpuSpec,
    engine: EngineSpec,
    tp: int,
    precision: Precision,
    attention_dp: int = 1,
    draft_frac: float = 0.0,
) -> MemoryFit:
    """Weights, reserve and KV capacity of one replica (``fits`` is False when weights do not fit). Under
    data-parallel attention each of the ``attention_dp`` groups holds its own copy of the shared (non-expert)
    weights, and the KV replication is that of the group's tensor-parallel degree. ``draft_frac``: a speculative
    drafter's weights as that share of the model's (:func:`draft_weight_frac`)."""
    usable = tp * gpu.hbm_capacity_bytes * engine.gpu_memory_utilization_frac
    weights = weight_bytes(model, precision)
    if draft_frac > 0:
        weights += draft_frac * weight_bytes(model, precision)
    if attention_dp > 1:
        weights += (attention_dp - 1) * moe_split(model)[0] * PRECISION_BYTES[precision]
    reserve = tp * engine.activation_reserve_bytes
    return MemoryFit(
        tp=tp,
        usable_bytes=usable,
        weight_bytes=weights,
        reserve_bytes=reserve,
        kv_capacity_bytes=usable - weights - reserve,
        kv_bytes_per_token=kv_bytes_per_token(model, precision) * kv_replication(model, tp // max(attention_dp, 1)),
    )


def require_fit(
    model: ModelSpec,
    gpu: GpuSpec,
    engine: EngineSpec,
    tp: int,
    precision: Precision,
    attention_dp: int = 1,
    draft_frac: float = 0.0,
) -> MemoryFit:
    """:func:`memory_fit`, raising :class:`DoesNotFitError` (with the TPs that do fit) when it does not."""
    fit = memory_fit(model, gpu, engine, tp, precision, attention_dp, draft_frac)
    if fit.fits:
        return fit
    fitting = [
        t for t in TP_DEGREES if t <= max_tp(gpu) and memory_fit(model, gpu, engine, t, precision, draft_frac=draft_frac).fits
    ]
    need_gib = (fit.weight_bytes + fit.reserve_bytes) / GIB
    have_gib = fit.usable_bytes / GIB
    hint = (
        f"it fits at --tp {' or '.join(map(str, fitting))}"
        if fitting
        else f"{model.id} fits on no {gpu.id} node at {precision}; use a larger GPU or fp8"
    )
    raise DoesNotFitError(
        f"{model.id} ({precision}) does not fit on {tp}x {gpu.id}: weights need {need_gib:.1f} GiB, {have_gib:.1f} GiB usable",
        hint=hint,
    )
