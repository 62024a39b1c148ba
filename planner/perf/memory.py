"""Memory fit of a model on a replica of ``tp`` GPUs.

``t·HBM·usable_frac ≥ N·s_w + reserve + kv_tok·Σcontext`` (docs/design.md §3). Under an engine with its own
KV-pool rule (vLLM, SGLang, TensorRT-LLM: ``engines.yaml`` ``kv_cache``) the KV capacity is the pool that engine
builds, computed as it does (:func:`kv_pool_bytes_per_gpu`); the reference profiles keep ``usable_frac`` (vLLM's
``gpu_memory_utilization``) less a fixed activation reserve.
"""

from __future__ import annotations

from planner.domain import EngineSpec, GpuSpec, KvCacheRule, MemoryFit, ModelSpec, Precision, Speculative
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


MAX_EP_GPUS = 256
"""The widest expert-parallel replica (DeepSeek's decode units reach 144 GPUs of EP; 256 routed experts, one per GPU)."""


def replica_nodes(gpu: GpuSpec, tp: int) -> int:
    """Whole nodes a replica of ``tp`` GPUs spans: 1 within one node or NVLink domain (:func:`max_tp`), else
    ``ceil(tp / gpus_per_node)`` (a multi-node expert-parallel replica)."""
    if tp <= max_tp(gpu):
        return 1
    return -(-tp // gpu.gpus_per_node)


def check_multi_node(model: ModelSpec, gpu: GpuSpec, tp: int, attention_dp: int, moe_ep: int, *, prefix: str = "") -> None:
    """A replica wider than one node (or NVLink domain) is expert parallel across whole nodes: an MoE model, at most
    :data:`MAX_EP_GPUS` GPUs, a whole number of nodes, the routed experts over all its GPUs (``moe_ep = tp``) and
    each data-parallel attention group inside one node (a valid TP degree there)."""
    if not model.is_moe:
        raise InputError(f"{prefix}tp {tp}: {model.id} is dense; only an expert-parallel MoE replica spans nodes")
    if tp > MAX_EP_GPUS:
        raise InputError(f"{prefix}tp {tp}: an expert-parallel replica has at most {MAX_EP_GPUS} GPUs")
    if tp % gpu.gpus_per_node:
        raise InputError(f"{prefix}tp {tp}: a multi-node replica takes whole {gpu.id} nodes of {gpu.gpus_per_node} GPUs")
    if moe_ep != tp:
        raise InputError(f"{prefix}moe_ep {moe_ep}: a replica of {tp} GPUs across nodes spreads its experts over all of them")
    if model.num_experts is not None and model.num_experts % moe_ep:
        raise InputError(f"{prefix}moe_ep {moe_ep}: {model.id}'s {model.num_experts} routed experts do not split evenly")
    check_tp(model, gpu, tp // attention_dp)


PP_DEGREES = (2, 4)
"""Pipeline stages the planner enumerates, for models no node holds at any TP."""


def check_pipeline(
    model: ModelSpec, gpu: GpuSpec, tp: int, pp: int, attention_dp: int = 1, moe_ep: int = 1, *, prefix: str = ""
) -> None:
    """A pipelined replica: ``pp`` stages of ``tp/pp`` GPUs, each stage a plain tensor-parallel group inside one node
    (:func:`check_tp`, and whole stages per node), at most as many stages as layers."""
    if pp < 1 or tp % pp:
        raise InputError(f"{prefix}pp {pp}: must divide the replica's {tp} GPUs (tp)")
    if attention_dp > 1 or moe_ep > 1:
        raise InputError(f"{prefix}pp {pp}: pipeline stages are plain tensor parallel (attention_dp and moe_ep 1)")
    if pp > model.num_layers:
        raise InputError(f"{prefix}pp {pp}: {model.id} has {model.num_layers} layers")
    stage = tp // pp
    check_tp(model, gpu, stage)
    if tp > max_tp(gpu) and gpu.gpus_per_node % stage:
        raise InputError(f"{prefix}pp {pp}: stages of {stage} GPUs do not fill {gpu.id} nodes of {gpu.gpus_per_node}")


def check_replica(model: ModelSpec, gpu: GpuSpec, tp: int, attention_dp: int = 1, moe_ep: int = 1, pp: int = 1) -> None:
    """A replica's GPUs and layout: :func:`check_pipeline` for ``pp > 1``, :func:`check_tp` within one node,
    :func:`check_multi_node` across nodes."""
    check_layout(model, tp, attention_dp, moe_ep)
    if pp > 1:
        check_pipeline(model, gpu, tp, pp, attention_dp, moe_ep)
    elif replica_nodes(gpu, tp) > 1:
        check_multi_node(model, gpu, tp, attention_dp, moe_ep)
    else:
        check_tp(model, gpu, tp)


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
    pp: int = 1,
) -> MemoryFit:
    """Weights, reserve and KV capacity of one replica (``fits`` is False when weights do not fit). Under
    data-parallel attention each of the ``attention_dp`` groups holds its own copy of the shared (non-expert)
    weights, and the KV replication is that of the group's tensor-parallel degree. ``draft_frac``: a speculative
    drafter's weights as that share of the model's (:func:`draft_weight_frac`). ``pp`` pipeline stages split the
    layers, so the weights and KV cache evenly over the replica's ``tp`` GPUs (``tp/pp`` per stage, whose degree
    sets the KV replication and the engine's activation shapes); the embedding and LM head are counted in the total,
    not placed on one stage.

    With the engine's own KV-pool rule (``engine.kv_cache``: vLLM, SGLang, TensorRT-LLM) the KV capacity is the pool
    that engine builds on each GPU (:func:`kv_pool_bytes_per_gpu`, from the memory the CUDA runtime reports,
    :attr:`GpuSpec.engine_memory_bytes`), in whole blocks; ``usable_bytes`` is what the rule lets the engine use and
    ``reserve_bytes`` what it keeps outside weights and KV (activation peak, runtime, CUDA graphs, and for
    TensorRT-LLM the free memory it leaves). Without a rule (the reference profiles): ``tp·HBM·usable_frac``, less
    the weights and ``tp`` activation reserves."""
    weights = weight_bytes(model, precision)
    if draft_frac > 0:
        weights += draft_frac * weight_bytes(model, precision)
    if attention_dp > 1:
        weights += (attention_dp - 1) * moe_split(model)[0] * PRECISION_BYTES[precision]
    stage = max(pp, 1)
    kv_token = kv_bytes_per_token(model, precision) * kv_replication(model, tp // max(attention_dp, 1) // stage)
    rule = engine.kv_cache
    if rule is None:
        usable = tp * gpu.hbm_capacity_bytes * engine.gpu_memory_utilization_frac
        reserve = tp * engine.activation_reserve_bytes
        kv_capacity = usable - weights - reserve
    else:
        memory = gpu.engine_memory_bytes
        pool = kv_pool_bytes_per_gpu(
            model,
            rule,
            memory,
            tp // stage,  # a stage's TP degree: the per-GPU shapes of the engine's profiling forward
            weights / tp,
            max_num_batched_tokens=engine.max_num_batched_tokens,
            max_num_seqs=engine.max_num_seqs,
        )
        kv_capacity = float(pool_tokens(pool, rule, kv_token / tp)) * kv_token if pool > 0 else tp * pool
        usable = tp * memory * (1.0 if rule.rule == "trtllm" else _rule_frac(rule, memory, tp))
        reserve = usable - weights - kv_capacity
    return MemoryFit(
        tp=tp,
        usable_bytes=usable,
        weight_bytes=weights,
        reserve_bytes=reserve,
        kv_capacity_bytes=kv_capacity,
        kv_bytes_per_token=kv_token,
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
    hint = f"it fits at --tp {' or '.join(map(str, fitting))}" if fitting else _no_node_hint(model, gpu, precision)
    raise DoesNotFitError(
        f"{model.id} ({precision}) does not fit on {tp}x {gpu.id}: weights need {need_gib:.1f} GiB, {have_gib:.1f} GiB usable",
        hint=hint,
    )


def _no_node_hint(model: ModelSpec, gpu: GpuSpec, precision: Precision) -> str:
    """What to try when no TP degree of one node holds the model: a smaller weight precision than ``precision``
    (fp4 only where it is stored as 4 bits), a larger GPU, or the layouts across nodes that ``planner size`` plans."""
    smaller = {"bf16": ["fp8", "fp4"], "fp8": ["fp4"], "fp4": []}[precision]
    options = [f"--precision {p}" for p in smaller] + ["a GPU with more memory"]
    across = "pipeline stages" + (" or multi-node expert parallelism" if model.is_moe else "")
    return (
        f"{model.id} fits on no {gpu.id} node at {precision}; try {' or '.join(options)}, or let planner size "
        f"plan {across} across nodes"
    )


ACTIVATION_BYTES = 2.0  # bf16 activations, whatever the weight precision
MIB = 2**20


def profile_activation_bytes(model: ModelSpec, tp: int, tokens: int, seqs: int = 0, sampler_logit_copies: float = 0.0) -> float:
    """Peak activation memory on one GPU of a profiling forward of ``tokens`` tokens (vLLM's ``profile_run`` at
    ``max_num_batched_tokens``): ``tokens·2 B·(3·d + 3·I/tp)`` for a dense FFN (gate_up output 2·I, activation I,
    three hidden-wide tensors); an MoE layer holds its ``k`` routed copies, ``3·k·I_e/tp + k·d`` per token (the fused
    kernel's intermediate caches). The term counts were chosen on vLLM's logged activation peak of Llama-3.1-8B at
    20,000 tokens (2.07 GiB, vllm-project/vllm#10517) and checked on the 29,000-token log of the same issue (2.99 GiB
    logged, 2.99 GiB here; tests/data/vllm_kv_logs). The dummy sampler run holds ``sampler_logit_copies`` fp32 copies of
    ``seqs × vocab`` logits; the peak is the larger of the two (the forward's tensors are freed before sampling)."""
    d = model.hidden_size
    if model.is_moe and model.experts_per_token:
        k = model.experts_per_token
        expert = model.moe_intermediate_size or model.intermediate_size
        per_token = 3.0 * d + k * d + 3.0 * k * expert / tp
    else:
        per_token = 3.0 * d + 3.0 * model.intermediate_size / tp
    forward = tokens * ACTIVATION_BYTES * per_token
    sampler = seqs * model.vocab_size * 4.0 * sampler_logit_copies
    return max(forward, sampler)


def sglang_mem_fraction_static(gpu_mem_mib: float, tp: int, chunked_prefill_size: int | None = None) -> float:
    """SGLang's default ``mem_fraction_static`` (python/sglang/srt/server_args.py, ``_handle_gpu_memory_settings``):
    ``round((M − reserved)/M, 3)`` with reserved = 512 MB + 1.5·max(chunk, 2048) + 2·cuda_graph_max_bs + tp/8·1024, at
    least 10 GiB on GPUs above 60 GiB. The chunk and graph batch defaults are the file's by GPU memory: < 35 GiB 2048/24
    (80 at tp >= 4), < 60 GiB 4096/32 (160), < 90 GiB and < 160 GiB 8192/256 (512), above 16384/512."""
    if gpu_mem_mib < 35 * 1024:
        chunk, graph_bs = 2048, (24 if tp < 4 else 80)
    elif gpu_mem_mib < 60 * 1024:
        chunk, graph_bs = 4096, (32 if tp < 4 else 160)
    elif gpu_mem_mib < 160 * 1024:
        chunk, graph_bs = 8192, (256 if tp < 4 else 512)
    else:
        chunk, graph_bs = 16384, 512
    chunk = chunked_prefill_size or chunk
    reserved = 512 + max(chunk, 2048) * 1.5 + graph_bs * 2 + tp / 8 * 1024
    if gpu_mem_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mem_mib - reserved) / gpu_mem_mib, 3)


def _rule_frac(rule: KvCacheRule, device_memory_bytes: float, tp: int, chunked_prefill_size: int | None = None) -> float:
    """The memory fraction of ``rule``: its own, or SGLang's default from its reserved-memory heuristic."""
    if rule.memory_frac is not None:
        return rule.memory_frac
    if rule.rule == "sglang":
        return sglang_mem_fraction_static(device_memory_bytes / MIB, tp, chunked_prefill_size)
    raise InputError(f"kv_cache.memory_frac: the {rule.rule} rule needs a memory fraction")


def kv_pool_bytes_per_gpu(
    model: ModelSpec,
    rule: KvCacheRule,
    device_memory_bytes: float,
    tp: int,
    weights_per_gpu_bytes: float,
    *,
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int = 1024,
    chunked_prefill_size: int | None = None,
) -> float:
    """The KV pool the engine of ``rule`` builds on one of ``tp`` GPUs of ``device_memory_bytes`` holding
    ``weights_per_gpu_bytes`` of weights (before rounding to blocks; <= 0 when nothing is left):

    * vLLM: ``frac·M − weights − activation peak − runtime reserve − CUDA graphs``, the peak of a profiling forward
      of ``max_num_batched_tokens`` tokens and of the dummy sampler run over ``min(max_num_seqs, tokens)`` sequences;
    * SGLang: ``frac·M − weights − runtime reserve``, ``frac`` SGLang's default where the rule has none (its chunk
      the ``chunked_prefill_size`` given, else SGLang's own by GPU memory);
    * TensorRT-LLM: ``frac·(M − weights − activation peak − runtime reserve − CUDA graphs)``, a fraction of the free
      memory."""
    reserve = rule.runtime_reserve_bytes
    frac = _rule_frac(rule, device_memory_bytes, tp, chunked_prefill_size)
    if rule.rule == "sglang":
        return frac * device_memory_bytes - weights_per_gpu_bytes - reserve
    act = 0.0
    if rule.profile_activation:
        seqs = min(max_num_seqs, max_num_batched_tokens)
        act = profile_activation_bytes(model, tp, max_num_batched_tokens, seqs, rule.sampler_logit_copies)
    if rule.rule == "vllm":
        return frac * device_memory_bytes - weights_per_gpu_bytes - act - reserve - rule.cuda_graph_bytes
    if rule.rule == "trtllm":
        return frac * (device_memory_bytes - weights_per_gpu_bytes - act - reserve - rule.cuda_graph_bytes)
    raise InputError(f"kv_cache.rule {rule.rule!r}: must be vllm, sglang or trtllm")


def engine_kv_tokens(
    model: ModelSpec,
    rule: KvCacheRule,
    device_memory_bytes: float,
    tp: int,
    precision: Precision,
    *,
    kv_precision: Precision | None = None,
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int = 1024,
) -> tuple[float, int]:
    """(KV pool bytes on one GPU, KV tokens of the replica) as the engine of ``rule`` computes them on ``tp`` GPUs of
    ``device_memory_bytes`` each: the pool in whole blocks of ``rule.block_tokens`` (the figure vLLM logs as
    "GPU KV cache size: N tokens", SGLang as "KV Cache is allocated. #tokens: N"). ``kv_precision``: the cache's own
    precision where it differs from the weights' (vLLM and SGLang keep a bf16 cache for fp8 checkpoints by default).
    SGLang's chunk for its default fraction is ``max_num_batched_tokens`` here (the logs state it)."""
    pool = kv_pool_bytes_per_gpu(
        model,
        rule,
        device_memory_bytes,
        tp,
        weight_bytes(model, precision) / tp,
        max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs,
        chunked_prefill_size=max_num_batched_tokens,
    )
    per_gpu_token = kv_bytes_per_token(model, kv_precision or precision) * kv_replication(model, tp) / tp
    return pool, pool_tokens(pool, rule, per_gpu_token)


def pool_tokens(pool_bytes_per_gpu: float, rule: KvCacheRule, kv_bytes_per_token_per_gpu: float) -> int:
    """KV tokens a pool of ``pool_bytes_per_gpu`` holds in whole blocks of ``rule.block_tokens`` (0 for no pool)."""
    if pool_bytes_per_gpu <= 0:
        return 0
    return int(pool_bytes_per_gpu // (rule.block_tokens * kv_bytes_per_token_per_gpu)) * rule.block_tokens


def max_concurrency(kv_tokens: int, max_model_len: int, block_tokens: int = 16) -> float:
    """Requests of ``max_model_len`` tokens the pool holds at once, as vLLM logs it ("Maximum concurrency for L tokens
    per request: Cx"): blocks over the blocks one such request needs."""
    per_request = -(-max_model_len // block_tokens)
    return (kv_tokens // block_tokens) / per_request
