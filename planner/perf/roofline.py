"""Step times of one replica: a roofline with fitted efficiencies, TP communication and overhead.

A step that processes ``T`` new tokens (prefill prompts and/or one token for each of ``b`` decode
sequences) on ``t`` GPUs takes (docs/design.md §3)::

    time = overlap(F / (t·η_c·P), bytes / (t·η_m·BW)) + T_comm + T_fixed

``overlap`` is the roofline's ``max`` or, where the engine's GEMM tables were fitted, the ``q``-norm
``(c^q + m^q)^(1/q)`` they show (fp8 kernels overlap their compute and memory time poorly: q ≈ 1.1–1.7);
``η_c`` is the FLOP-weighted share a model's GEMMs reach at their per-GPU shapes
(:func:`gemm_compute_frac`).

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
  cost in decode steps (``b/dp`` sequences per data-parallel attention group, whose schedulers run side by side);
  fitted, never assumed zero (Splitwise's measured H100 decode step is ~30 ms
  where the bandwidth bound is 5–10 ms).

The efficiencies come from :class:`planner.domain.Efficiency`, fitted by :mod:`planner.perf.fit`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from planner.domain import Bound, Efficiency, GpuSpec, ModelSpec, Phase, Precision, StepEstimate
from planner.errors import UnsupportedPrecisionError
from planner.units import KV_BYTES, PRECISION_BYTES

ACTIVATION_BYTES = 2.0  # activations travel in bf16 in the all-reduces, also in fp8 runs


@dataclass(frozen=True, slots=True)
class Hardware:
    """What a step needs to know about the replica: the GPU, its efficiencies, its TP link and how the replica's
    ``tp`` GPUs split the model (plain tensor parallelism unless ``attention_dp`` or ``moe_ep`` say)."""

    gpu: GpuSpec
    efficiency: Efficiency
    intra_node_bytes_per_s: float  # per-direction bandwidth of the link TP all-reduces run over
    attention_dp: int = 1  # data-parallel attention: the GPUs form this many attention groups of tp/attention_dp
    moe_ep: int = 1  # expert parallelism: the routed experts split over this many GPUs (each expert sharded tp/moe_ep)
    # the per-GPU link the MoE all-to-all (and a DP-attention replica's FFN reduction) crosses when the replica
    # spans more GPUs than an NVLink domain (multi-node expert parallelism); None: intra_node_bytes_per_s
    expert_link_bytes_per_s: float | None = None
    # Pipeline parallelism: the replica's GPUs form ``pp`` stages of ``tp/pp`` (each stage a tensor-parallel group
    # holding n_L/pp layers); activations hop between stages over ``pipeline_link_bytes_per_s`` per GPU (the node's
    # NICs when the stages sit on different nodes) with ``pipeline_hop_latency_s`` per hop. 1: no pipeline.
    pp: int = 1
    pipeline_link_bytes_per_s: float = 0.0
    pipeline_hop_latency_s: float = 0.0
    # Multipliers on every prefill-phase / decode-phase step time (1: the fitted model). ``planner study robust``
    # draws them from the engine's measured spread (:class:`planner.domain.TimeUncertainty`); nothing else sets them.
    prefill_time_scale: float = 1.0
    decode_time_scale: float = 1.0

    def for_model(self, model: ModelSpec) -> Hardware:
        """This hardware computing ``model`` (:meth:`planner.domain.Efficiency.for_model`: MoE serving factors)."""
        eff = self.efficiency.for_model(model)
        return self if eff is self.efficiency else replace(self, efficiency=eff)

    def replica_wide(self) -> Hardware:
        """The hardware of communication among all the replica's GPUs (the expert link where it spans nodes)."""
        if self.expert_link_bytes_per_s is None:
            return self
        return replace(self, intra_node_bytes_per_s=self.expert_link_bytes_per_s)


def compute_precision(gpu: GpuSpec, precision: Precision) -> Precision:
    """The precision the tensor cores compute in: ``precision``, except FP4 weights on a GPU without FP4 tensor
    cores (Hopper, Ampere), which the engines serve weight-only (vLLM's Marlin/Triton MXFP4 kernels dequantize to
    bf16 in the GEMM): bf16 compute and factors, FP4 bytes."""
    if precision == "fp4" and gpu.fp4_flop_per_s is None:
        return "bf16"
    return precision


def peak_flop_per_s(gpu: GpuSpec, precision: Precision) -> float:
    peak = gpu.peak_flop_per_s(compute_precision(gpu, precision))
    if peak is None:
        raise UnsupportedPrecisionError(f"{gpu.id} has no {precision} tensor cores", hint="use --precision bf16 on this GPU")
    return float(peak)


def kv_replication(model: ModelSpec, tp: int) -> int:
    """How many of a replica's ``tp`` GPUs hold a copy of each token's KV: 1 while the KV heads split over the
    GPUs; ``tp / n_kv`` when there are fewer KV heads than GPUs (each head is replicated); ``tp`` under MLA,
    whose single latent vector every tensor-parallel rank keeps whole (why engines serve DeepSeek with
    data-parallel attention)."""
    if model.is_mla:
        return tp
    return max(1, tp // model.num_kv_heads)


def moe_split(model: ModelSpec) -> tuple[float, float]:
    """``(shared, per_expert)`` parameters of an MoE model: what every token uses (attention, embeddings, dense
    layers, shared experts, routers) and one routed expert across all layers, from the total and active counts
    (``per_expert = (N − N_active)/(E − k)``). A dense model is all shared."""
    if not model.is_moe or model.num_experts is None or model.experts_per_token is None:
        return model.num_params, 0.0
    e, k = model.num_experts, model.experts_per_token
    per_expert = (model.num_params - model.num_active_params) / (e - k)
    return model.num_params - e * per_expert, per_expert


def expert_weight_bytes_touched(model: ModelSpec, precision: Precision, tokens: float, attention_dp: int = 1) -> float:
    """Weights one step reads: everything for a dense model; for MoE the shared part plus the
    experts that ``tokens`` tokens route to, ``E·(1−(1−k/E)^T)`` of them in expectation under
    uniform routing. With data-parallel attention each of the ``attention_dp`` groups reads its own copy of the
    shared part."""
    s_w = PRECISION_BYTES[precision]
    if not model.is_moe or model.num_experts is None or model.experts_per_token is None:
        return model.num_params * s_w * attention_dp
    e, k = model.num_experts, model.experts_per_token
    shared, per_expert = moe_split(model)
    touched: float = e * (1.0 - (1.0 - k / e) ** max(tokens, 0.0))
    return (shared * attention_dp + per_expert * touched) * s_w


def overlap_s(compute_s: float, memory_s: float, q: float | None) -> float:
    """Time of work that needs ``compute_s`` of compute and ``memory_s`` of memory traffic: ``max``
    (perfect overlap) when ``q`` is None, else ``(c^q + m^q)^(1/q)``."""
    if q is None:
        return max(compute_s, memory_s)
    big = max(compute_s, memory_s)
    if big <= 0.0:
        return 0.0
    return float(big * ((compute_s / big) ** q + (memory_s / big) ** q) ** (1.0 / q))


GEMM_SHAPE_MIN_DIM = 1024
"""The smallest weight dimension the GEMM shape term is fitted on (``planner.calibrate.opfit``): narrower GEMMs
(an 8B model's output projection at TP 8 is 512 wide) get this width's share, not an extrapolation."""


def gemm_dim_share(min_dim: float, half_dim: float, dim_exp: float) -> float:
    """Share of ``compute_frac`` a GEMM whose smaller weight dimension is ``min_dim`` reaches."""
    if half_dim <= 0.0:
        return 1.0
    return 1.0 / (1.0 + float((half_dim / max(min_dim, GEMM_SHAPE_MIN_DIM)) ** dim_exp))


def gemm_shapes(model: ModelSpec, tp: int, expert_tp: int | None = None) -> list[tuple[float, float]]:
    """The weight GEMMs of one token on one of ``tp`` GPUs, as (weights, smaller dimension): the fused
    QKV projection, the output projection, the fused gate/up and the down projection of each layer
    (for MoE, of each routed expert) and the LM head. ``expert_tp``: the degree the routed experts are split by
    (1 under expert parallelism, where each GPU runs whole experts; default ``tp``)."""
    d, hd = model.hidden_size, model.head_dim
    if model.is_mla:
        shapes = [(w * model.num_layers, s) for w, s in _mla_projections(model, tp)]
    else:
        q_width = model.num_attention_heads * hd
        qkv = (model.num_attention_heads + 2 * model.num_kv_heads) * hd
        shapes = [(w * model.num_layers, s) for w, s in ((d * qkv, min(d, qkv / tp)), (q_width * d, min(q_width / tp, d)))]
    inter = model.intermediate_size
    if model.is_moe and model.experts_per_token:
        n_moe = model.num_layers - model.num_dense_layers
        inter_e = model.expert_intermediate_size
        experts = model.experts_per_token + model.num_shared_experts
        e_tp = tp if expert_tp is None else expert_tp
        shapes += [
            (2.0 * d * inter_e * experts * n_moe, min(d, 2.0 * inter_e / e_tp)),
            (inter_e * d * experts * n_moe, min(inter_e / e_tp, d)),
        ]
        if model.num_dense_layers:
            n_dense = model.num_dense_layers
            shapes += [(2.0 * d * inter * n_dense, min(d, 2.0 * inter / tp)), (inter * d * n_dense, min(inter / tp, d))]
    else:
        shapes += [
            (2.0 * d * inter * model.num_layers, min(d, 2.0 * inter / tp)),
            (inter * d * model.num_layers, min(inter / tp, d)),
        ]
    shapes.append((d * model.vocab_size, min(d, model.vocab_size / tp)))
    return shapes


def _mla_projections(model: ModelSpec, tp: int) -> list[tuple[float, float]]:
    """One layer's MLA projections as (weights, smaller dimension): the query and KV down-projections (whole on
    every rank), their up-projections and the output projection (split over the heads)."""
    d, heads = model.hidden_size, model.num_attention_heads
    r, rope = model.kv_lora_rank or 0, model.qk_rope_head_dim or 0
    nope, v = model.qk_nope_head_dim or 0, model.v_head_dim or 0
    q_rank = model.q_lora_rank
    out: list[tuple[float, float]] = []
    if q_rank:
        out += [(d * q_rank, min(d, q_rank)), (q_rank * heads * (nope + rope), min(q_rank, heads * (nope + rope) / tp))]
    else:
        out.append((d * heads * (nope + rope), min(d, heads * (nope + rope) / tp)))
    out += [(d * (r + rope), min(d, r + rope)), (r * heads * (nope + v), min(r, heads * (nope + v) / tp))]
    out.append((heads * v * d, min(heads * v / tp, d)))
    return out


def gemm_compute_frac(model: ModelSpec, tp: int, eff: Efficiency, expert_tp: int | None = None) -> float:
    """The share of peak a step's GEMMs reach together: ``compute_frac`` scaled by the FLOP-weighted
    harmonic mean of each GEMM's :func:`gemm_dim_share` (their times add)."""
    if eff.gemm_half_dim <= 0.0:
        return eff.compute_frac
    shapes = gemm_shapes(model, tp, expert_tp)
    total = sum(w for w, _ in shapes)
    slow = sum(w / gemm_dim_share(s, eff.gemm_half_dim, eff.gemm_dim_exp) for w, s in shapes)
    return eff.compute_frac * total / slow


def curve_latency_s(points: tuple[tuple[float, float], ...], size_bytes: float) -> float:
    """Latency at ``size_bytes`` on a measured (bytes, seconds) curve: log-log interpolation inside it,
    the smallest message's latency below it, the last segment's bandwidth continued above it."""
    b0, t0 = points[0]
    if size_bytes <= b0:
        return t0
    for (b1, t1), (b2, t2) in itertools.pairwise(points):
        if size_bytes <= b2:
            w = math.log(size_bytes / b1) / math.log(b2 / b1)
            return math.exp((1.0 - w) * math.log(t1) + w * math.log(t2))
    (b1, t1), (b2, t2) = points[-2], points[-1]
    return t2 + (size_bytes - b2) * (t2 - t1) / (b2 - b1)


def allreduce_s(size_bytes: float, tp: int, hw: Hardware, precision: Precision = "bf16") -> float:
    """One all-reduce of ``size_bytes`` among ``tp`` GPUs (0 at tp=1), with the factors of ``precision``
    runs (the activations travel in bf16 either way): the measured curve of this TP degree where the
    engine profile has one, else the ring formula."""
    if tp <= 1:
        return 0.0
    eff = hw.efficiency.for_precision(compute_precision(hw.gpu, precision))
    for degree, points in eff.allreduce_curve:
        if degree == tp:
            return curve_latency_s(points, size_bytes)
    volume = 2.0 * (tp - 1) / tp * size_bytes
    return volume / (eff.allreduce_bandwidth_frac * hw.intra_node_bytes_per_s) + eff.allreduce_latency_s * math.log2(tp)


def _attention_mla_or_windowed(
    model: ModelSpec,
    tp: int,
    s_kv: float,
    prefill_tokens: float,
    prefill_sq_tokens: float,
    decode_batch: int,
    decode_context_tokens: float,
) -> tuple[float, float]:
    """Attention FLOPs and KV bytes read of a step for MLA and sliding-window models.

    MLA (DeepSeek-V3, Kimi-K2): prefill runs as multi-head attention over decompressed keys (QKᵀ at
    ``d_nope + d_rope``, PV at ``d_v`` per head: ``d_q`` = their mean times the heads); decode runs absorbed
    (FlashMLA, as vLLM, SGLang and TRT-LLM do): each context token costs ``2·n_h·(r_kv + d_rope)`` for QKᵀ and
    ``2·n_h·r_kv`` for PV per layer and is read once per tensor-parallel rank, since every rank keeps the latent
    cache whole (:func:`planner.perf.memory.kv_replication`).
    Sliding window ``w`` (gpt-oss): a windowed layer attends over at most ``w`` tokens, so its decode context is
    ``min(Σc, b·w)`` and its causal prefill work ``min(ΣL², 2·w·T)`` (the bound of ``Σ_i min(i, w)`` over prompts).
    """
    n_full, n_slide = model.num_full_attention_layers, model.num_sliding_layers
    w = float(model.sliding_window_tokens or 0)
    sq_slide = min(prefill_sq_tokens, 2.0 * w * prefill_tokens)
    ctx_slide = min(decode_context_tokens, decode_batch * w)
    prefill_sq = n_full * prefill_sq_tokens + n_slide * sq_slide  # Σ over layers of ΣL²
    decode_ctx = n_full * decode_context_tokens + n_slide * ctx_slide  # Σ over layers of Σc
    if model.is_mla and model.kv_lora_rank is not None and model.qk_rope_head_dim is not None:
        r, rope, heads = model.kv_lora_rank, model.qk_rope_head_dim, model.num_attention_heads
        flops = 2.0 * model.query_width * prefill_sq + 2.0 * heads * (2 * r + rope) * decode_ctx
        kv_layer_token = (r + rope) * s_kv * kv_replication(model, tp)
    else:
        flops = 2.0 * model.query_width * prefill_sq + 4.0 * model.query_width * decode_ctx
        kv_layer_token = 2.0 * model.num_kv_heads * model.head_dim * s_kv * kv_replication(model, tp)
    return flops, kv_layer_token * decode_ctx


def remote_nodes_per_token(model: ModelSpec, nodes: int) -> float:
    """Expected number of other nodes a token's ``k`` routed experts land on, when a replica's ``E`` experts are
    spread evenly over ``nodes`` nodes (``E/n`` each) and routing is uniform over experts (the balance the core
    assumes): ``(n−1)·(1 − C(E − E/n, k)/C(E, k))``, the chance that a given other node holds none of the ``k``
    distinct experts being the hypergeometric ``∏_{i<k} (E − E/n − i)/(E − i)``. 0 for one node."""
    if nodes <= 1 or not model.experts_per_token or model.num_experts is None:
        return 0.0
    e, k = model.num_experts, model.experts_per_token
    per_node = e / nodes
    none_there = 1.0
    for i in range(k):
        none_there *= max(e - per_node - i, 0.0) / (e - i)
    return (nodes - 1) * (1.0 - none_there)


def all_to_all_bytes(tokens: float, model: ModelSpec, tp: int, hw: Hardware, precision: Precision) -> tuple[float, float]:
    """Bytes one GPU sends in one MoE layer's dispatch plus combine, as (over NVLink, over its NIC).

    Each GPU sends its ``tokens/tp`` tokens to their ``k`` experts (to every GPU of an expert's shard of
    ``tp/moe_ep`` GPUs), ``(tp−1)/tp`` of them on other GPUs, hidden-size wide, and gets the results back: dispatch
    travels in fp8 in fp8/fp4 runs (as DeepEP sends it), combine in bf16. All those copies cross NVLink (inside the
    node directly; to another node as DeepEP forwards them: RDMA to the same-rank GPU there, then NVLink).
    A replica wider than its NVLink domain (``g`` GPUs, ``n = tp/g`` domains) also sends each token once to each
    other node that holds one of its experts (DeepEP's node-level deduplication): ``tokens/tp ·
    remote_nodes_per_token(n) · d · (s_dispatch + s_combine)`` bytes over the NIC."""
    if tp <= 1 or not model.experts_per_token:
        return 0.0, 0.0
    dispatch_bytes = 1.0 if precision in ("fp8", "fp4") else ACTIVATION_BYTES
    wide = model.hidden_size * (dispatch_bytes + ACTIVATION_BYTES)
    shard = tp // max(hw.moe_ep, 1)
    nvlink = tokens / tp * model.experts_per_token * shard * wide * (tp - 1) / tp
    if hw.expert_link_bytes_per_s is None:
        return nvlink, 0.0
    domain = max(hw.gpu.gpus_per_node, hw.gpu.nvlink_domain_gpus)
    return nvlink, tokens / tp * remote_nodes_per_token(model, -(-tp // domain)) * wide


def all_to_all_s(tokens: float, model: ModelSpec, tp: int, hw: Hardware, precision: Precision) -> float:
    """One MoE layer's dispatch and combine under expert parallelism over a replica of ``tp`` GPUs (``moe_ep``
    expert groups, each expert sharded over ``tp/moe_ep`` GPUs), from :func:`all_to_all_bytes`: inside one node
    ``B_nvl / (η_ar·BW_nvl) + α·log2(tp)``; across nodes the NVLink and NIC legs run at once (DeepEP overlaps its
    RDMA sends with the NVLink forwarding), ``max(B_nvl / (η_ar·BW_nvl), B_nic / (η_ar·BW_nic)) + α·log2(tp)``,
    ``BW_nic`` the per-GPU share of the node's compute NICs at the engine's InfiniBand efficiency.

    Assumptions (not measured here): the all-to-all reaches the same share of each link as the fitted all-reduce
    bandwidth (``allreduce_bandwidth_frac``), plus one all-reduce latency term; routing is balanced (no hot expert:
    the slowest GPU's share is the mean); the two legs overlap fully. Group-limited routing (DeepSeek-V3 sends each
    token to at most 4 nodes) would send fewer NIC copies than uniform routing over all experts does here.
    """
    if tp <= 1 or not model.experts_per_token:
        return 0.0
    eff = hw.efficiency.for_precision(compute_precision(hw.gpu, precision))
    nvlink_bytes, nic_bytes = all_to_all_bytes(tokens, model, tp, hw, precision)
    if hw.expert_link_bytes_per_s is None:
        wire_s = nvlink_bytes / (eff.allreduce_bandwidth_frac * hw.intra_node_bytes_per_s)
    else:
        nvlink_s = nvlink_bytes / (eff.allreduce_bandwidth_frac * hw.intra_node_bytes_per_s)
        wire_s = max(nvlink_s, nic_bytes / (eff.allreduce_bandwidth_frac * hw.expert_link_bytes_per_s))
    return wire_s + eff.allreduce_latency_s * math.log2(tp)


def _parallel_comm_s(model: ModelSpec, hw: Hardware, tp: int, t_attn: int, precision: Precision, tokens: float) -> float:
    """Communication of a step under data-parallel attention and/or expert parallelism: per layer one all-reduce
    inside each attention group (``tokens/dp`` tokens at ``t_attn``), then for the FFN either the MoE all-to-all
    (expert parallel), or one all-reduce of every token over all ``tp`` GPUs (the experts or FFN sharded over the
    whole replica, as SGLang's DP attention with tensor-parallel MoE gathers the groups' tokens); dense leading
    layers of an expert-parallel model reduce inside the attention group."""
    d, n_layers, dp = model.hidden_size, model.num_layers, tp // t_attn
    group_ar = allreduce_s(tokens / dp * d * ACTIVATION_BYTES, t_attn, hw, precision)
    if hw.moe_ep > 1 and model.is_moe:
        n_moe = n_layers - model.num_dense_layers
        ffn = n_moe * all_to_all_s(tokens, model, tp, hw, precision) + model.num_dense_layers * group_ar
    else:
        ffn = n_layers * allreduce_s(tokens * d * ACTIVATION_BYTES, tp, hw.replica_wide(), precision)
    return n_layers * group_ar + ffn


def _prefill_group_work_s(
    model: ModelSpec,
    t_attn: int,
    s_kv: float,
    prefill_tokens: float,
    prefill_sq_tokens: float,
    gemm_frac: float,
    attention_frac: float,
) -> float:
    """FLOPs over their reached fractions of the prompt tokens' non-expert work: the GEMMs of every parameter but
    the routed experts' (:func:`moe_split`) and the prompt attention, the part of a prefill its attention group does
    alone under data-parallel attention."""
    _shared, per_expert = moe_split(model)
    routed_active = per_expert * (model.experts_per_token or 0) if model.is_moe else 0.0
    gemm = 2.0 * (model.num_active_params - routed_active) * prefill_tokens
    if model.is_mla or model.num_sliding_layers:
        attention, _ = _attention_mla_or_windowed(model, t_attn, s_kv, prefill_tokens, prefill_sq_tokens, 0, 0.0)
    else:
        attention = 2.0 * model.num_layers * model.query_width * prefill_sq_tokens
    return gemm / gemm_frac + attention / attention_frac


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
    decode_query_tokens: int = 1,
    prompt_groups: int = 0,
) -> StepEstimate:
    """One engine iteration: ``prefill_tokens`` prompt tokens (``prefill_sq_tokens`` = ΣL_i², the
    causal attention work; a prompt whose first ``c`` tokens are cached contributes ``L² − c²``) plus
    ``decode_query_tokens`` tokens for each of ``decode_batch`` sequences whose contexts sum to
    ``decode_context_tokens`` (1: a decode step; K+1: a speculative verify step, each sequence's K+1
    queries attending over its context, its KV read once). Pure prefill, pure decode, verify and mixed
    (chunked-prefill) steps all use this one formula; a pipelined replica (``hw.pp > 1``) is
    :func:`pipeline_step`.

    Data-parallel attention (``hw.attention_dp`` = ``dp`` > 1): a prompt is prefilled by one attention group, so
    ``prompt_groups`` = ``g`` (1..dp) says how many groups hold the step's prompt tokens; the busiest group does
    ``dp/g`` times its even share of the prompt tokens' non-expert work (attention, dense layers, shared experts:
    :func:`moe_split`) on its ``tp/dp`` GPUs, while the routed experts take every group's tokens together. 0 (the
    default) spreads the prompt tokens evenly over the groups, the replica's throughput view."""
    if hw.pp > 1:
        return pipeline_step(
            model,
            hw,
            tp=tp,
            precision=precision,
            prefill_tokens=prefill_tokens,
            prefill_sq_tokens=prefill_sq_tokens,
            decode_batch=decode_batch,
            decode_context_tokens=decode_context_tokens,
            num_prompts=num_prompts,
            decode_query_tokens=decode_query_tokens,
        )
    gpu, eff = hw.gpu, hw.efficiency.for_precision(compute_precision(hw.gpu, precision))
    peak = peak_flop_per_s(gpu, precision)
    s_kv = KV_BYTES[precision]
    d, n_layers = model.hidden_size, model.num_layers
    q = max(1, decode_query_tokens)
    tokens = prefill_tokens + decode_batch * q

    dp, ep = hw.attention_dp, hw.moe_ep if model.is_moe else 1
    if dp < 1 or tp % dp or ep < 1 or tp % ep:
        raise ValueError(f"attention_dp {dp} and moe_ep {ep} must divide the replica's {tp} GPUs")
    t_attn = tp // dp  # the tensor-parallel degree of attention (and of everything but the routed experts)

    gemm_flops = 2.0 * model.num_active_params * tokens
    d_q = model.query_width  # num_attention_heads·head_dim: QKᵀ and PV scale with it, not with d
    if model.is_mla or model.num_sliding_layers:
        attention_flops, kv_bytes = _attention_mla_or_windowed(
            model, t_attn, s_kv, prefill_tokens, prefill_sq_tokens, decode_batch, decode_context_tokens
        )
        if q > 1:  # the extra queries of a verify step attend over the same context
            decode_flops, _ = _attention_mla_or_windowed(model, t_attn, s_kv, 0.0, 0.0, decode_batch, decode_context_tokens)
            attention_flops += (q - 1) * decode_flops
    else:
        kv_tok = 2.0 * n_layers * model.num_kv_heads * model.head_dim * s_kv * kv_replication(model, t_attn)
        attention_flops = 2.0 * n_layers * d_q * prefill_sq_tokens + 4.0 * n_layers * d_q * decode_context_tokens * q
        kv_bytes = kv_tok * decode_context_tokens
    flops = gemm_flops + attention_flops
    bytes_moved = expert_weight_bytes_touched(model, precision, tokens, dp) + kv_bytes

    gemm_frac = gemm_compute_frac(model, t_attn, eff, None if dp == 1 and ep == 1 else tp // ep)
    compute_s = (gemm_flops / gemm_frac + attention_flops / eff.attention_compute_frac) / (tp * peak)
    if dp > 1 and 0 < prompt_groups < dp and prefill_tokens > 0:
        compute_s += (
            (dp / prompt_groups - 1.0)
            * _prefill_group_work_s(model, t_attn, s_kv, prefill_tokens, prefill_sq_tokens, gemm_frac, eff.attention_compute_frac)
            / (tp * peak)
        )
    memory_s = bytes_moved / (tp * eff.memory_frac * gpu.hbm_bandwidth_bytes_per_s)
    if dp == 1 and ep == 1:
        comm_s = 2 * n_layers * allreduce_s(tokens * d * ACTIVATION_BYTES, tp, hw, precision)
    else:
        comm_s = _parallel_comm_s(model, hw, tp, t_attn, precision, tokens)
    if decode_batch > 0:
        # each data-parallel attention group runs its own scheduler (SGLang's DP ranks, vLLM's DP engine cores):
        # the per-sequence cost of its batch/dp sequences is paid by every group at once
        overhead_s = eff.decode_fixed_s + eff.decode_per_seq_s * decode_batch / dp
    else:
        overhead_s = eff.prefill_fixed_s
    # A drawn multiplier scales every part alike (overlap is homogeneous); 1.0 leaves each bit as it was. A mixed
    # (chunked-prefill) iteration carries decodes: it takes the decode multiplier.
    scale = hw.decode_time_scale if decode_batch > 0 else hw.prefill_time_scale
    if scale != 1.0:
        compute_s, memory_s, comm_s, overhead_s = (v * scale for v in (compute_s, memory_s, comm_s, overhead_s))
    latency_s = overlap_s(compute_s, memory_s, eff.overlap_q) + comm_s + overhead_s

    parts: dict[Bound, float] = {"compute": compute_s, "memory": memory_s, "overhead": comm_s + overhead_s}
    bound: Bound = max(parts, key=lambda name: parts[name])
    phase: Phase = "decode" if decode_batch > 0 else "prefill"
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


def pipeline_hop_s(tokens: float, model: ModelSpec, hw: Hardware) -> float:
    """One stage-to-stage hand-off of ``tokens`` tokens' hidden states (bf16, ``d`` wide): every GPU of a stage
    sends the whole tensor to its peer of the next stage over its own link, ``T·d·2 B / B_link + α``."""
    if hw.pipeline_link_bytes_per_s <= 0:
        return hw.pipeline_hop_latency_s
    return tokens * model.hidden_size * ACTIVATION_BYTES / hw.pipeline_link_bytes_per_s + hw.pipeline_hop_latency_s


def pipeline_step(
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
    decode_query_tokens: int = 1,
) -> StepEstimate:
    """A step of a replica of ``tp`` GPUs in ``p = hw.pp`` pipeline stages of ``t_s = tp/p`` GPUs, each stage holding
    ``n_L/p`` layers (weights and KV split evenly; the embedding and LM head are not placed on a stage of their own).

    Each stage does ``1/p`` of the work on ``t_s`` GPUs, so the stages in sequence take what the whole model takes on
    ``t_s`` GPUs: ``Σ_stages T_stage(x) = T_{t_s}(x)``, the one-stage step formula at TP ``t_s`` (its compute, weight
    and KV reads and all-reduces summed over the stages; the engine's fixed per-step cost paid once), plus ``p − 1``
    hand-offs of the hidden states (:func:`pipeline_hop_s`).

    * Decode: the batch of ``b`` runs as ``p`` micro-batches of ``⌈b/p⌉`` that rotate through the stages (vLLM's
      pipeline-parallel scheduling), so each sequence gets a token every ``T_{t_s}(⌈b/p⌉) + (p−1)·hop(⌈b/p⌉)``:
      that is this step's latency (TPOT at batch ``b``), and the replica emits ``b`` tokens per latency.
    * Prefill: one prompt's latency is ``T_{t_s}(L) + (p−1)·hop(L)``; prompts follow each other through the stages,
      so the replica takes a new one every ``1/p`` of it (pipelined throughput; :func:`planner.perf.serving.prefill_service`
      divides the busy time by ``p``).

    Co-located (mixed) steps are not pipelined by the planner; a mixed shape gets the same treatment as decode."""
    p = hw.pp
    if tp % p:
        raise ValueError(f"pp {p} must divide the replica's {tp} GPUs")
    stage_tp = tp // p
    inner_hw = replace(hw, pp=1)
    if decode_batch > 0:
        micro = max(1, math.ceil(decode_batch / p))
        inner = step(
            model,
            inner_hw,
            tp=stage_tp,
            precision=precision,
            prefill_tokens=prefill_tokens / p,
            prefill_sq_tokens=prefill_sq_tokens / p,
            decode_batch=micro,
            decode_context_tokens=decode_context_tokens * micro / decode_batch,
            num_prompts=num_prompts,
            decode_query_tokens=decode_query_tokens,
        )
        hop_tokens = micro * max(1, decode_query_tokens) + prefill_tokens / p
        emitted = float(decode_batch)
    else:
        inner = step(
            model,
            inner_hw,
            tp=stage_tp,
            precision=precision,
            prefill_tokens=prefill_tokens,
            prefill_sq_tokens=prefill_sq_tokens,
            num_prompts=num_prompts,
        )
        hop_tokens = prefill_tokens
        emitted = prefill_tokens
    hops = (p - 1) * pipeline_hop_s(hop_tokens, model, hw)
    latency = inner.latency_s + hops
    peak = peak_flop_per_s(hw.gpu, precision)
    return replace(
        inner,
        latency_s=latency,
        comm_s=inner.comm_s + hops,
        mfu_frac=inner.flops / (latency * stage_tp * peak),
        mbu_frac=inner.bytes_moved / (latency * stage_tp * hw.gpu.hbm_bandwidth_bytes_per_s),
        batch=decode_batch if decode_batch > 0 else num_prompts,
        throughput_tokens_per_s=emitted / latency,
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
