"""Step times of one replica: a roofline with fitted efficiencies, TP communication and overhead.

A step that processes ``T`` new tokens (prefill prompts and/or one token for each of ``b`` decode
sequences) on ``t`` GPUs takes (DESIGN.md §3)::

    time = max(F / (t·η_c·P), bytes / (t·η_m·BW)) + T_comm + T_fixed

* ``F = 2·N_active·T + 2·n_L·d_q·ΣL_i² + 4·n_L·d_q·Σc_j`` (prefill prompts ``L_i``, decode contexts ``c_j``);
  ``d_q = n_heads·head_dim`` is the query width, which the QKᵀ and PV products scale with. It equals the
  hidden size ``d`` for Llama, Mixtral and Qwen2.5 but not where the config sets a wider ``head_dim``
  (Qwen3-32B: 64·128 = 8192 vs ``d`` = 5120). The dense GEMMs run at ``η_c`` and attention at its own
  ``η_attn`` (attention kernels reach a lower share of peak, which the Splitwise 8K-token prefills show)
* ``bytes = weights touched + kv_tok·Σc_j`` (an MoE step reads only the experts its tokens route to)
* ``T_comm``: two all-reduces of ``T·d·s_act`` bytes per layer (the hidden size: o and down projections
  output ``d`` wide), ring algorithm:
  ``2(t−1)/t · size / (η_ar·B_intra) + α·log2(t)`` (latency grows with the tree depth of NCCL's
  small-message algorithms; α and η_ar are fitted)
* ``T_fixed``: the engine's per-step cost (kernel launches, scheduling, sampling), plus a per-sequence
  cost in decode steps; fitted, never assumed zero (Splitwise's measured H100 decode step is ~30 ms
  where the bandwidth bound is 5–10 ms).

The efficiencies come from :class:`planner.domain.Efficiency`, fitted by :mod:`planner.perf.fit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from planner.domain import Bound, Efficiency, GpuSpec, ModelSpec, Precision, StepEstimate
from planner.errors import UnsupportedPrecisionError
from planner.units import PRECISION_BYTES

ACTIVATION_BYTES = 2.0  # activations travel in bf16 in the all-reduces, also in fp8 runs


@dataclass(frozen=True, slots=True)
class Hardware:
    """What a step needs to know about the replica: the GPU, its efficiencies and its TP link."""

    gpu: GpuSpec
    efficiency: Efficiency
    intra_node_bytes_per_s: float  # per-direction bandwidth of the link TP all-reduces run over


def peak_flop_per_s(gpu: GpuSpec, precision: Precision) -> float:
    peak = gpu.peak_flop_per_s(precision)
    if peak is None:
        raise UnsupportedPrecisionError(f"{gpu.id} has no {precision} tensor cores", hint="use --precision bf16 on this GPU")
    return float(peak)


def expert_weight_bytes_touched(model: ModelSpec, precision: Precision, tokens: float) -> float:
    """Weights one step reads: everything for a dense model; for MoE the shared part plus the
    experts that ``tokens`` tokens route to, ``E·(1−(1−k/E)^T)`` of them in expectation under
    uniform routing."""
    s_w = PRECISION_BYTES[precision]
    if not model.is_moe or model.num_experts is None or model.experts_per_token is None:
        return model.num_params * s_w
    e, k = model.num_experts, model.experts_per_token
    per_expert = (model.num_params - model.num_active_params) / (e - k)
    shared = model.num_params - e * per_expert
    touched: float = e * (1.0 - (1.0 - k / e) ** max(tokens, 0.0))
    return (shared + per_expert * touched) * s_w


def allreduce_s(size_bytes: float, tp: int, hw: Hardware, precision: Precision = "bf16") -> float:
    """One ring all-reduce of ``size_bytes`` among ``tp`` GPUs (0 at tp=1), with the factors of
    ``precision`` runs (the activations travel in bf16 either way)."""
    if tp <= 1:
        return 0.0
    eff = hw.efficiency.for_precision(precision)
    volume = 2.0 * (tp - 1) / tp * size_bytes
    return volume / (eff.allreduce_bandwidth_frac * hw.intra_node_bytes_per_s) + eff.allreduce_latency_s * math.log2(tp)


def step(
    model: ModelSpec,
    hw: Hardware,
    *,
    tp: int,
    precision: Precision,
    prefill_tokens: float = 0.0,
    prefill_sq_tokens: float = 0.0,
    decode_batch: int = 0,
    decode_context_tokens: float = 0.0,
    num_prompts: int = 0,
) -> StepEstimate:
    """One engine iteration: ``prefill_tokens`` prompt tokens (``prefill_sq_tokens`` = ΣL_i², the
    causal attention work) plus one token for each of ``decode_batch`` sequences whose contexts sum
    to ``decode_context_tokens``. Pure prefill, pure decode and mixed (chunked-prefill) steps all
    use this one formula."""
    gpu, eff = hw.gpu, hw.efficiency.for_precision(precision)
    peak = peak_flop_per_s(gpu, precision)
    s_kv = PRECISION_BYTES[precision]
    d, n_layers = model.hidden_size, model.num_layers
    kv_tok = 2.0 * n_layers * model.num_kv_heads * model.head_dim * s_kv
    tokens = prefill_tokens + decode_batch

    gemm_flops = 2.0 * model.num_active_params * tokens
    d_q = model.query_width  # num_attention_heads·head_dim: QKᵀ and PV scale with it, not with d
    attention_flops = 2.0 * n_layers * d_q * prefill_sq_tokens + 4.0 * n_layers * d_q * decode_context_tokens
    flops = gemm_flops + attention_flops
    bytes_moved = expert_weight_bytes_touched(model, precision, tokens) + kv_tok * decode_context_tokens

    compute_s = (gemm_flops / eff.compute_frac + attention_flops / eff.attention_compute_frac) / (tp * peak)
    memory_s = bytes_moved / (tp * eff.memory_frac * gpu.hbm_bandwidth_bytes_per_s)
    comm_s = 2 * n_layers * allreduce_s(tokens * d * ACTIVATION_BYTES, tp, hw, precision)
    if decode_batch > 0:
        overhead_s = eff.decode_fixed_s + eff.decode_per_seq_s * decode_batch
    else:
        overhead_s = eff.prefill_fixed_s
    latency_s = max(compute_s, memory_s) + comm_s + overhead_s

    parts: dict[Bound, float] = {"compute": compute_s, "memory": memory_s, "overhead": comm_s + overhead_s}
    bound: Bound = max(parts, key=lambda name: parts[name])
    phase: Literal["prefill", "decode"] = "decode" if decode_batch > 0 else "prefill"
    return StepEstimate(
        phase=phase,
        latency_s=latency_s,
        compute_s=compute_s,
        memory_s=memory_s,
        comm_s=comm_s,
        overhead_s=overhead_s,
        flops=flops,
        bytes_moved=bytes_moved,
        bound=bound,
        mfu_frac=flops / (latency_s * tp * peak),
        mbu_frac=bytes_moved / (latency_s * tp * gpu.hbm_bandwidth_bytes_per_s),
        tokens=round(tokens),
        batch=decode_batch if decode_batch > 0 else num_prompts,
        throughput_tokens_per_s=(decode_batch if decode_batch > 0 else prefill_tokens) / latency_s,
    )


def prefill_step(
    model: ModelSpec, hw: Hardware, *, tp: int, precision: Precision, prompt_tokens: int, batch: int = 1
) -> StepEstimate:
    """A batch of ``batch`` prompts of ``prompt_tokens`` tokens each, processed in one step."""
    return step(
        model,
        hw,
        tp=tp,
        precision=precision,
        prefill_tokens=float(prompt_tokens * batch),
        prefill_sq_tokens=float(batch) * float(prompt_tokens) ** 2,
        num_prompts=batch,
    )


def decode_step(
    model: ModelSpec, hw: Hardware, *, tp: int, precision: Precision, batch: int, context_tokens: float
) -> StepEstimate:
    """One decode step for ``batch`` sequences of ``context_tokens`` tokens of context each."""
    return step(
        model,
        hw,
        tp=tp,
        precision=precision,
        decode_batch=batch,
        decode_context_tokens=float(batch) * context_tokens,
    )
