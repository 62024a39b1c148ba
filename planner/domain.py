"""Core value types, in SI units, shared by every layer.

Validation happens once at the boundary (``planner.io``); these types carry no I/O and no
validation logic. Ids are canonical (see :func:`canonical_id`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

Precision = Literal["bf16", "fp8", "fp4"]
PRECISIONS: tuple[Precision, ...] = ("bf16", "fp8", "fp4")
Role = Literal["prefill", "decode", "colocated"]
Phase = Literal["prefill", "decode"]
Bound = Literal["compute", "memory", "overhead"]
SolverName = Literal["highs", "cbc"]
Routing = Literal["jsq", "rr", "central"]  # the simulator's prefill routing
Severity = Literal["error", "warning", "info"]  # of a planner check finding
ServeMode = Literal["aggregated", "disaggregated"]

_ID_SEPARATORS = re.compile(r"[-_.\s]+")


def canonical_id(raw: str) -> str:
    """Canonical form of a catalog id: lower case, ``-``, ``_``, ``.`` and spaces alike.

    >>> canonical_id("Llama_3.1-70B")
    'llama-3-1-70b'
    """
    return _ID_SEPARATORS.sub("-", raw.strip().lower()).strip("-")


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuSpec:
    """Datasheet figures of one GPU (dense tensor-core peaks, no sparsity)."""

    id: str
    name: str
    bf16_flop_per_s: float
    fp16_flop_per_s: float
    fp8_flop_per_s: float | None
    hbm_capacity_bytes: float
    hbm_bandwidth_bytes_per_s: float
    tdp_w: float
    idle_w: float | None
    decode_busy_w: float | None
    nvlink_bytes_per_s: float
    pcie_generation: int
    gpus_per_node: int
    nvlink_domain_gpus: int
    sources: Mapping[str, str] = field(default_factory=dict)
    fp4_flop_per_s: float | None = None  # dense FP4 tensor-core peak (Blackwell), None without FP4 units
    node_compute_nics: int | None = None  # NICs per node on the GPU (east-west) fabric; None: not in the catalog
    node_north_south_nics: int | None = None  # NICs or DPUs per node for storage and north-south traffic
    node_max_power_w: float | None = None  # the node's maximum input power (GPUs, CPUs, NICs, fans), W
    cuda_memory_bytes: float | None = None  # what the CUDA runtime reports for one GPU; None: not in the catalog

    @property
    def engine_memory_bytes(self) -> float:
        """The memory an engine sizes its KV pool from: the CUDA runtime's figure where the catalog has it, else the
        nominal capacity (about 1 % high: H200 139.80 GiB reported of "141GB")."""
        return self.cuda_memory_bytes if self.cuda_memory_bytes is not None else self.hbm_capacity_bytes

    def peak_flop_per_s(self, precision: Precision) -> float | None:
        if precision == "fp4":
            return self.fp4_flop_per_s
        return self.fp8_flop_per_s if precision == "fp8" else self.bf16_flop_per_s


@dataclass(frozen=True, slots=True)
class PowerFactors:
    """A GPU's measured step-power model (``planner.calibrate.powerfit``, ``catalogs/power.yaml``): the board
    power of a GPU kept busy by back-to-back steps that reach ``mfu`` of the precision's peak FLOP/s
    and ``mbu`` of the HBM bandwidth is ``min(cap_w, idle_w + active_w + flop_w·mfu + hbm_w·mbu)``."""

    gpu: str
    idle_w: float  # nothing running
    active_w: float  # clocks up, a step in flight that achieves nothing
    flop_w: float  # W at 100 % of peak FLOP/s
    hbm_w: float  # W at 100 % of HBM bandwidth
    cap_w: float  # sustained draw at the power limit (the board throttles clocks above it)
    source: str = ""
    as_of: str = ""
    transferred_from: str | None = None  # set when not measured on this GPU: the factors of this other GPU


@dataclass(frozen=True, slots=True, kw_only=True)
class MoeServing:
    """What an engine's dense factors miss when it serves a mixture-of-experts model, fitted end to end on the MoE
    rows of a serving benchmark (the training split; ``fitted_on`` names the rows), one set per engine for every
    GPU and precision, applied by :meth:`Efficiency.for_model` to MoE models only:

    * ``compute_frac_scale``: the model's GEMMs reach this share of the dense op-table ``compute_frac`` (grouped
      expert GEMMs over few tokens per expert, routing, permute and un-permute kernels);
    * ``memory_frac_scale``: the same for ``memory_frac`` (expert weights read in many small GEMMs);
    * ``decode_fixed_s``: added to every decode iteration (top-k gating, dispatch/combine and their launches);
    * ``request_fixed_s``: replaces the engine's ``request_fixed_s`` (latency outside the GPU before the first
      token): the MoE rows were measured with other releases of the engine than the dense rows it was fitted on.

    ``*_sigma`` are the one-sigma uncertainties of the fitted values (from the fit's Jacobian and residual
    spread), 0 where the fit did not report one."""

    compute_frac_scale: float = 1.0
    memory_frac_scale: float = 1.0
    decode_fixed_s: float = 0.0
    request_fixed_s: float | None = None  # None: the dense factors' value
    fitted_on: str = ""
    source: str = ""
    as_of: str = ""
    sigmas: tuple[tuple[str, float], ...] = ()  # (factor, one-sigma of its fitted value)

    def apply(self, eff: Efficiency) -> Efficiency:
        """``eff`` (one fitted set) with these factors in place; ``fitted_on`` names both fits."""
        return replace(
            eff,
            compute_frac=eff.compute_frac * self.compute_frac_scale,
            memory_frac=eff.memory_frac * self.memory_frac_scale,
            decode_fixed_s=eff.decode_fixed_s + self.decode_fixed_s,
            request_fixed_s=eff.request_fixed_s if self.request_fixed_s is None else self.request_fixed_s,
            fitted_on=f"{eff.fitted_on}; moe_serving: {self.fitted_on}",
            moe_serving=None,
            fp8=None if eff.fp8 is None else self.apply(eff.fp8),
            fp4=None if eff.fp4 is None else self.apply(eff.fp4),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Efficiency:
    """Fitted factors that turn datasheet peaks into achieved step times (never 1.0).

    ``fitted_on`` names the measurements; ``transferred_from`` is set when no measurement of this
    GPU exists and the factors of a GPU of the same or nearest generation are used instead; ``fp8``
    holds a second set fitted on fp8 runs (:meth:`for_precision` picks).
    """

    gpu: str
    compute_frac: float
    attention_compute_frac: float
    memory_frac: float
    prefill_fixed_s: float
    decode_fixed_s: float
    decode_per_seq_s: float
    allreduce_latency_s: float
    allreduce_bandwidth_frac: float
    fitted_on: str
    transferred_from: str | None = None
    request_fixed_s: float = 0.0
    """Latency a request spends outside the GPU before its first token (API server, tokenization,
    scheduling, first-token detokenization): added to TTFT, never to a GPU's busy time. Fitted on
    end-to-end serving measurements (0 for kernel-level and step-level profiles)."""
    prefill_sync_frac: float = 0.0
    """Share of the other clients' prompts a prompt waits behind in a fixed-concurrency benchmark: 1 when
    every wave of requests arrives together (prefill-first engines keep equal-length requests in step),
    0 when arrivals are spread out. Fitted on end-to-end serving measurements; used by ``estimate serve``."""
    gemm_half_dim: float = 0.0
    """GEMM shape: a GEMM whose smaller weight dimension ``min(n, k)`` is ``s`` reaches
    ``compute_frac / (1 + (gemm_half_dim / s)^gemm_dim_exp)`` of peak (0: every shape reaches
    ``compute_frac``). FP8 kernels need large shapes: 0.3 of peak at ``s = 1024``, 0.7 at 8192 on H200."""
    gemm_dim_exp: float = 1.0
    overlap_q: float | None = None
    """How compute and memory time of one kernel combine: ``(c^q + m^q)^(1/q)``; None is the
    roofline's ``max(c, m)`` (q → ∞), q = 1 their sum. Fitted on the GEMM tables."""
    allreduce_curve: tuple[tuple[int, tuple[tuple[float, float], ...]], ...] = ()
    """Measured all-reduce latency by message size, per TP degree: ``((tp, ((bytes, seconds), ...)), ...)``.
    Where a TP degree has a curve the core interpolates it (log-log) instead of the two-factor formula:
    NCCL and the engines' own all-reduces change algorithm with the message size, which no
    latency-plus-bandwidth line follows from one decode token to a long prefill chunk."""
    allreduce_curve_withheld: bool = False
    """A transferred set whose donor's measured all-reduce curves were not lent (``without_allreduce_curve``)."""
    fp8: Efficiency | None = None  # factors fitted on fp8 runs of this GPU, where measured
    fp4: Efficiency | None = None  # factors fitted on fp4 (NVFP4) kernels of this GPU, where measured
    moe_serving: MoeServing | None = None
    """The engine's MoE serving factors (:class:`MoeServing`), not yet applied: :meth:`for_model` applies them."""

    def for_model(self, model: ModelSpec) -> Efficiency:
        """The factors a replica of ``model`` computes with: these, and for a mixture-of-experts model the engine's
        :class:`MoeServing` factors applied to every precision's set (a dense model's factors are unchanged)."""
        if self.moe_serving is None or not model.is_moe:
            return self
        return self.moe_serving.apply(self)

    def for_precision(self, precision: Precision) -> Efficiency:
        """The factors for a step at ``precision``: the set fitted at that precision where one was
        measured (fp8 and fp4 GEMMs reach other fractions of their higher peaks than bf16 ones); an
        fp4 step without an fp4 set takes the fp8 set (the nearer kernels), else these."""
        used = self.precision_set(precision)
        return (self.fp4 if used == "fp4" else self.fp8 if used == "fp8" else None) or self

    def precision_set(self, precision: Precision) -> Precision:
        """Which fitted set :meth:`for_precision` hands a step at ``precision``."""
        if precision == "fp4" and self.fp4 is not None:
            return "fp4"
        if precision in ("fp8", "fp4") and self.fp8 is not None:
            return "fp8"
        return "bf16"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeUncertainty:
    """How far an engine profile's predictions stray from measurements: the one-sigma of ln(predicted/measured) of
    the mean TTFT and the mean TPOT of serving-benchmark rows (a robust scale about zero, so a bias of the fit
    counts), and the correlation of the two, measured on the rows the profile was fitted on (``fitted_on``); the
    same figures on rows not fitted on (``held_out_*``) are a check, never used to draw."""

    ttft_log_sigma: float
    tpot_log_sigma: float
    correlation: float
    rows: int
    fitted_on: str
    method: str
    source: str
    as_of: str
    gpus: tuple[str, ...] = ()  # the GPUs of the rows it was measured on
    held_out_rows: int = 0
    held_out_ttft_log_sigma: float | None = None
    held_out_tpot_log_sigma: float | None = None
    checked_on: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Architecture figures of one transformer (from its published config)."""

    id: str
    name: str
    num_params: float
    num_active_params: float
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_context_tokens: int
    num_experts: int | None = None
    experts_per_token: int | None = None
    # Mixture-of-experts detail (DeepSeek, Qwen3-MoE, gpt-oss): the routed experts' FFN width when it is not
    # intermediate_size, always-on shared experts, and the leading layers that keep a dense FFN.
    moe_intermediate_size: int | None = None
    num_shared_experts: int = 0
    num_dense_layers: int = 0
    # Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2): the KV cache holds kv_lora_rank + qk_rope_head_dim
    # values per token and layer, shared by all heads; queries and keys are qk_nope_head_dim + qk_rope_head_dim wide.
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    q_lora_rank: int | None = None
    # Sliding-window attention (gpt-oss: every other layer attends over the last 128 tokens)
    sliding_window_tokens: int | None = None
    num_sliding_layers: int = 0
    hf_id: str | None = None  # Hugging Face repository of the checkpoint the figures come from
    hf_aliases: tuple[str, ...] = ()  # other repositories with the same architecture
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_moe(self) -> bool:
        return self.num_experts is not None and self.num_experts > 1

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def query_width(self) -> int:
        """``num_attention_heads·head_dim``: the width of q and of the attention output, which is
        not ``hidden_size`` when the config sets a wider ``head_dim`` (Qwen3-32B: 64·128 = 8192 vs 5120).
        Under MLA the mean of the query/key width (nope + rope) and the value width."""
        if self.is_mla and self.qk_nope_head_dim is not None and self.qk_rope_head_dim is not None:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            v = self.v_head_dim if self.v_head_dim is not None else self.qk_nope_head_dim
            return self.num_attention_heads * (qk + v) // 2
        return self.num_attention_heads * self.head_dim

    @property
    def num_full_attention_layers(self) -> int:
        """Layers that attend over the whole context (the others over a sliding window)."""
        return self.num_layers - self.num_sliding_layers

    @property
    def expert_intermediate_size(self) -> int:
        return self.moe_intermediate_size if self.moe_intermediate_size is not None else self.intermediate_size


LinkKind = Literal["nvlink", "pcie", "infiniband", "roce", "ethernet"]
LinkScope = Literal["intra_node", "inter_node"]


NetworkPart = Literal["nic", "switch", "cable"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkComponent:
    """A priced network part: a NIC (adapter), a switch or a cable (one link with both ends: a DAC, an AOC, or
    two transceivers and their fibre). ``usd`` is one unit's price (None where no public price was read);
    ``ports`` is how many ports one unit serves (a dual-port NIC 2, a 64-port switch 64, a cable 1)."""

    id: str
    name: str
    part: NetworkPart
    usd: float | None
    ports: int
    as_of: str | None
    source: str
    note: str | None = None

    @property
    def usd_per_port(self) -> float | None:
        return None if self.usd is None else self.usd / self.ports


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkPort:
    """The parts one GPU's port on a link is built from (component ids; None: the link names no such part)."""

    nic: str | None = None
    switch: str | None = None
    cable: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferPoint:
    """One measured KV transfer: ``message_bytes`` sent over one port in ``time_s``."""

    message_bytes: float
    time_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferCurve:
    """Achieved KV-transfer time of a message of S bytes over one port of a link kind:
    ``t(S) = latency_s + S / (peak_frac · line rate)``, fitted on ``points`` (measured on ports of
    ``measured_line_rate_bytes_per_s``), which it reproduces within ``max_rel_error_frac``."""

    kind: str
    latency_s: float
    peak_frac: float
    measured_line_rate_bytes_per_s: float
    points: tuple[TransferPoint, ...]
    max_rel_error_frac: float
    source: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSpec:
    """How network hardware is priced per hour: its capital cost spread over ``amortization_years`` (a
    labelled assumption, ``amortization_source``), and the fabric a GPU port sits in: a two-tier fat tree
    (non-blocking leaf/spine), so one GPU port takes ``switch_ports_per_port`` switch ports (its leaf port,
    the leaf's uplink and the spine port it reaches) and ``cables_per_port`` cables (GPU to leaf, leaf to
    spine)."""

    amortization_years: float | None = None
    amortization_source: str | None = None
    switch_ports_per_port: int = 3
    cables_per_port: int = 2
    topology_source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """A link type: per-direction bandwidth per port, latency and port price where known. ``port_usd`` is a
    user's all-in price of one GPU's port (it overrides ``port``, the parts the price is built from);
    ``transfer_curve`` is the measured transfer-time curve of its kind (None: the engine's efficiency
    assumption applies)."""

    id: str
    name: str
    kind: LinkKind
    scope: LinkScope
    bandwidth_bytes_per_s: float
    latency_s: float | None
    port_usd: float | None
    sources: Mapping[str, str] = field(default_factory=dict)
    port: LinkPort | None = None
    transfer_curve: TransferCurve | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuPrice:
    gpu: str
    provider: str
    region: str
    usd_per_gpu_hour: float
    as_of: str
    source: str
    default: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerCapex:
    gpu: str
    gpus_per_server: int
    capex_usd: float | None
    amortization_years: float | None
    as_of: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    id: str
    title: str
    url: str | None
    as_of: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineLimits:
    max_num_seqs: int
    max_num_batched_tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KvCacheRule:
    """How one engine sizes its KV cache on each GPU (issue 13 item 4; :func:`planner.perf.memory.engine_kv_tokens`).

    ``vllm``: ``memory_frac·M − weights − peak activation of the profiling forward − runtime reserve − CUDA graphs``;
    ``sglang``: ``memory_frac·M − weights − runtime reserve`` (``memory_frac`` None: SGLang's own default from its
    reserved-memory heuristic); ``trtllm``: ``memory_frac·(M − weights − activation − runtime reserve)``. M is the
    memory the CUDA runtime reports for one GPU; the pool is whole blocks of ``block_tokens``."""

    rule: str  # "vllm" | "sglang" | "trtllm"
    memory_frac: float | None
    block_tokens: int
    runtime_reserve_bytes: float = 0.0  # per GPU: non-torch memory (vLLM), CUDA context and NCCL (SGLang, TRT-LLM)
    sampler_logit_copies: float = 0.0  # fp32 copies of max_num_seqs x vocab logits in vLLM's dummy sampler run
    cuda_graph_bytes: float = 0.0  # per GPU, subtracted before the pool is sized (0 in vLLM 0.12: graphs come later)
    profile_activation: bool = True  # subtract the profiling forward's activation peak (vLLM, TRT-LLM)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSpec:
    """A serving engine at one release: the scheduling the serving model needs, the memory it may
    use and what it keeps aside. Its kernel and overhead factors are in ``Catalog.efficiency``
    (per GPU) once the engine is selected."""

    gpu_memory_utilization_frac: float
    activation_reserve_bytes: float
    net_efficiency_frac: Mapping[str, float]  # link kind -> achieved share of line rate
    source: str
    id: str = "vllm"
    name: str = "vLLM"
    version: str = ""
    max_num_seqs: int = 1024
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = True
    decode_first: bool = True
    gpu_overrides: Mapping[str, EngineLimits] = field(default_factory=dict)
    unsupported_gpus: Mapping[str, str] = field(default_factory=dict)  # GPU id -> why the engine does not run on it
    sources: Mapping[str, str] = field(default_factory=dict)  # field -> source id
    note: str | None = None
    kv_cache: KvCacheRule | None = None  # the engine's own KV-pool rule (engines.yaml kv_cache)

    @property
    def label(self) -> str:
        """``id@version``, as ``--engine`` takes it."""
        return f"{self.id}@{self.version}" if self.version else self.id

    def limits(self, gpu: str) -> EngineLimits:
        """The scheduler limits the engine picks on ``gpu`` by default."""
        over = self.gpu_overrides.get(gpu)
        return EngineLimits(
            max_num_seqs=over.max_num_seqs if over is not None else self.max_num_seqs,
            max_num_batched_tokens=over.max_num_batched_tokens if over is not None else self.max_num_batched_tokens,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    gpus: Mapping[str, GpuSpec]
    models: Mapping[str, ModelSpec]
    links: Mapping[str, LinkSpec]
    efficiency: Mapping[str, Efficiency]
    prices: tuple[GpuPrice, ...]
    servers: tuple[ServerCapex, ...]
    electricity_usd_per_kwh: float | None
    pue: float | None
    engine: EngineSpec  # the selected engine; ``efficiency`` holds its factors
    sources: Mapping[str, Source]
    origin: Mapping[str, str] = field(default_factory=dict)  # kind -> file(s) it was read from
    engines: Mapping[str, EngineSpec] = field(default_factory=dict)  # every engine of the catalogs
    engine_efficiency: Mapping[str, Mapping[str, Efficiency]] = field(default_factory=dict)  # engine -> gpu -> factors
    default_engine: str = "vllm"
    power: Mapping[str, PowerFactors] = field(default_factory=dict)  # gpu -> measured step-power model
    speculative: Mapping[str, SpeculativeDefaults] = field(default_factory=dict)  # method -> published defaults
    network_components: Mapping[str, NetworkComponent] = field(default_factory=dict)  # id -> priced part
    network: NetworkSpec = field(default_factory=NetworkSpec)
    engine_uncertainty: Mapping[str, TimeUncertainty] = field(default_factory=dict)  # engine -> measured spread
    time_scale: tuple[float, float] = (1.0, 1.0)
    """(prefill, decode) multipliers on every step time of every replica built from this catalog: 1 everywhere but in
    the draws of ``planner study robust`` (:attr:`planner.perf.roofline.Hardware.prefill_time_scale`)."""

    def default_price(self, gpu: str) -> GpuPrice | None:
        for price in self.prices:
            if price.gpu == gpu and price.default:
                return price
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEstimate:
    """One prefill or decode step on one replica (t GPUs) with its decomposition, in seconds."""

    phase: Literal["prefill", "decode"]
    latency_s: float
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float
    flops: float
    bytes_moved: float
    bound: Bound
    mfu_frac: float
    mbu_frac: float
    tokens: int
    batch: int
    throughput_tokens_per_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryFit:
    """Memory of one replica of ``tp`` GPUs: weights, what the engine keeps, and KV capacity."""

    tp: int
    usable_bytes: float
    weight_bytes: float
    reserve_bytes: float
    kv_capacity_bytes: float
    kv_bytes_per_token: float

    @property
    def fits(self) -> bool:
        return self.kv_capacity_bytes > 0

    @property
    def max_kv_tokens(self) -> int:
        return max(0, int(self.kv_capacity_bytes // self.kv_bytes_per_token))

    def max_batch(self, context_tokens: float) -> int:
        """Largest number of sequences of ``context_tokens`` each whose KV cache fits."""
        if context_tokens <= 0:
            raise ValueError("context_tokens must be positive")
        return max(0, int(self.kv_capacity_bytes // (self.kv_bytes_per_token * context_tokens)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One measured step: a prefill of ``batch`` prompts of ``tokens`` tokens, or a decode step
    of ``batch`` sequences at ``context_tokens`` mean context; or (phase ``batch``) a whole static
    batch: ``batch`` prompts of ``tokens`` tokens each generating ``output_tokens`` tokens."""

    phase: str  # "prefill" | "decode"
    model: str
    gpu: str
    tp: int
    batch: int
    tokens: int
    context_tokens: float
    precision: Precision
    latency_s: float
    origin: str  # file:line(s) the figure comes from
    output_tokens: int = 0  # phase "batch" only: tokens generated per sequence
    engine: str = ""  # the serving engine (or harness) that ran the step, where recorded


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingMeasurement:
    """One end-to-end serving benchmark point at fixed concurrency: ``concurrency`` clients in a
    closed loop, each request ``isl`` prompt and ``osl`` output tokens, on one engine; the measured
    mean TTFT and TPOT. ``model`` and ``gpu`` are catalog ids, or None where the catalog has no match
    (``raw_model``/``raw_gpu`` keep what the file says)."""

    id: str
    engine: str
    engine_version: str
    raw_model: str
    model: str | None
    raw_gpu: str
    gpu: str | None
    precision: str  # bf16 | fp8 | fp4 | ... as the file names it (only bf16/fp8 are modelled)
    mode: str  # agg | disagg
    isl: int
    osl: int
    concurrency: int
    tp: int
    pp: int
    attention_dp: int
    moe_ep: int
    prefill_tp: int
    prefill_workers: int
    decode_tp: int
    decode_workers: int
    ttft_s: float
    tpot_s: float
    origin: str  # file:line
    # MoE layouts (aiconfigurator's columns): a worker has tp*attention_dp = moe_tp*moe_ep GPUs
    moe_tp: int = 1
    workers_given: bool = False  # a disaggregated row names its prefill and decode worker counts
    prefill_pp: int = 1
    prefill_attention_dp: int = 1
    prefill_moe_tp: int = 1
    prefill_moe_ep: int = 1
    decode_pp: int = 1
    decode_attention_dp: int = 1
    decode_moe_tp: int = 1
    decode_moe_ep: int = 1

    def layout(self, role: str = "") -> tuple[int, int, int, int]:
        """``(gpus, attention_dp, moe_ep, pp)`` of a worker (``role``: "", "prefill" or "decode"): the GPUs are the
        larger of ``tp x attention_dp`` and ``moe_tp x moe_ep`` (the file leaves attention_dp blank where the MoE
        split implies it)."""
        tp, dp, mtp, ep, pp = {
            "": (self.tp, self.attention_dp, self.moe_tp, self.moe_ep, self.pp),
            "prefill": (self.prefill_tp, self.prefill_attention_dp, self.prefill_moe_tp, self.prefill_moe_ep, self.prefill_pp),
            "decode": (self.decode_tp, self.decode_attention_dp, self.decode_moe_tp, self.decode_moe_ep, self.decode_pp),
        }[role]
        gpus = max(tp * dp, mtp * ep)
        return gpus, gpus // tp, ep, pp


PricingMode = Literal["on-demand", "reserved", "capex"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pricing:
    """How a GPU-hour is priced: on-demand list price, reserved (a discount on it), or capex
    amortized over ``amortization_years`` plus power at ``pue`` and ``usd_per_kwh``."""

    mode: PricingMode = "on-demand"
    discount_frac: float = 0.0
    amortization_years: float | None = None
    usd_per_kwh: float | None = None
    pue: float | None = None
    whole_nodes: bool = False  # GPUs come in nodes: a plan pays for the GPUs it strands on a partly used node


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenDist:
    """A length distribution: summary statistics and an equal-weight quantile grid (mean-matched)."""

    mean: float
    p50: float
    p90: float
    p99: float
    grid: tuple[float, ...]

    def quantile(self, p: float) -> float:
        """Stated percentiles where given (p50/p90/p99), else from the grid."""
        stated = {0.5: self.p50, 0.9: self.p90, 0.99: self.p99}
        if p in stated:
            return stated[p]
        idx = min(len(self.grid) - 1, max(0, int(p * len(self.grid))))
        return sorted(self.grid)[idx]


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """Latency targets at a quantile (0.99 for ``ttft_p99_ms``, 0.9 for ``ttft_p90_ms``): fractions, not percents."""

    ttft_s: float
    ttft_quantile: float
    tpot_s: float
    tpot_quantile: float

    @property
    def ttft_pct(self) -> float:
        """Deprecated name of :attr:`ttft_quantile` (it held a fraction, not a percent)."""
        warnings.warn("Slo.ttft_pct is Slo.ttft_quantile", DeprecationWarning, stacklevel=2)
        return self.ttft_quantile

    @property
    def tpot_pct(self) -> float:
        """Deprecated name of :attr:`tpot_quantile`."""
        warnings.warn("Slo.tpot_pct is Slo.tpot_quantile", DeprecationWarning, stacklevel=2)
        return self.tpot_quantile


CacheLocation = Literal["prefill", "both"]
"""Where a prefix cache lives in disaggregated serving: on the prefill pool only (the decode pool receives every
prompt token's KV), or on both pools with prefix-aware routing (only the missed tokens' KV crosses the link)."""
SpeculativeMethod = Literal["mtp", "eagle", "ngram"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixCache:
    """Prefix reuse of a class: ``hit_frac`` of its prompt tokens find their KV already cached, so prefill
    computes only the rest (attending over the whole context). ``working_set_tokens``: KV tokens of cached
    prefixes each replica that holds the cache keeps resident (0: unknown, the cache uses free KV memory only)."""

    hit_frac: float
    location: CacheLocation = "prefill"
    working_set_tokens: float = 0.0


def tokens_per_step(acceptance_rate: float, draft_tokens: int) -> float:
    """Expected tokens one verify step emits when each of ``draft_tokens`` (K) drafts is accepted with probability
    ``acceptance_rate`` (A), independently, until the first rejection, plus the token the verify step samples
    itself: ``Σ_{j=0..K} A^j = (1 − A^(K+1)) / (1 − A)`` (Leviathan et al. 2023, eq. 1). K=1, A=0.85: 1.85."""
    a, k = acceptance_rate, draft_tokens
    return float(k + 1) if a >= 1.0 else (1.0 - a ** (k + 1)) / (1.0 - a)


def acceptance_for_tokens_per_step(mean_tokens: float, draft_tokens: int) -> float:
    """The per-token acceptance rate A whose :func:`tokens_per_step` at ``draft_tokens`` is ``mean_tokens`` (τ, the
    mean acceptance length papers and engines report, bonus token included): the inverse of the increasing
    polynomial ``Σ_{j=0..K} A^j`` on [0, 1), by bisection to 1e-12 and two Newton steps. ``1 <= τ < K+1``."""
    if not 1.0 <= mean_tokens < draft_tokens + 1:
        raise ValueError(f"a mean acceptance length of {mean_tokens} is outside [1, {draft_tokens + 1}) at K={draft_tokens}")
    lo, hi = 0.0, 1.0
    while hi - lo > 1e-12:
        mid = 0.5 * (lo + hi)
        if tokens_per_step(mid, draft_tokens) < mean_tokens:
            lo = mid
        else:
            hi = mid
    a = 0.5 * (lo + hi)
    for _ in range(2):  # Newton steps to the float's precision (the polynomial's slope is >= 1 on [0, 1))
        slope = sum(j * a ** (j - 1) for j in range(1, draft_tokens + 1))
        a = min(max(a - (tokens_per_step(a, draft_tokens) - mean_tokens) / slope, lo), hi)
    return a


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculativeDefaults:
    """One method's published defaults (``catalogs/speculative.yaml``): what a workload's ``speculative:`` takes for
    the figures it leaves out. ``None``: no published figure (the workload must give it). ``acceptance_rate`` is
    per token; where the source reports a mean acceptance length τ at ``draft_tokens`` instead, it is
    :func:`acceptance_for_tokens_per_step` of it and ``mean_acceptance_length`` keeps τ. ``models``: the catalog
    models known to ship the drafter the method needs (MTP: a multi-token-prediction head); empty: not recorded."""

    method: SpeculativeMethod
    draft_tokens: int | None
    acceptance_rate: float | None
    mean_acceptance_length: float | None
    draft_layers: int
    models: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)  # figure -> source id
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Speculative:
    """Speculative decoding: each decode step drafts ``draft_tokens`` (K) tokens and verifies them in one target
    step over K+1 tokens per sequence; each draft token is accepted with probability ``acceptance_rate`` (A),
    independently, until the first rejection. ``draft_layers``: transformer layers the drafter runs per draft
    token (MTP and EAGLE: one layer; n-gram lookup: none), costed as that share of a target decode step.
    ``sources``: for each figure, ``given`` or the catalog source id of the default it took (``references``: those
    sources); ``warnings``: what the resolution could not check (an MTP head the catalog does not record)."""

    method: SpeculativeMethod
    draft_tokens: int
    acceptance_rate: float
    draft_layers: int
    sources: Mapping[str, str] = field(default_factory=dict)
    references: tuple[Source, ...] = ()  # the catalog sources named in ``sources``
    warnings: tuple[str, ...] = ()

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a verify step emits (:func:`tokens_per_step`)."""
        return tokens_per_step(self.acceptance_rate, self.draft_tokens)

    @property
    def tokens_per_step_variance(self) -> float:
        """Variance of the tokens one verify step emits: ``X = 1 + min(G, K)`` with ``P(X > j) = A^j``, so
        ``E[X²] = Σ_{j=0..K} (2j+1)·A^j`` and ``Var X = E[X²] − E²``."""
        a, k = self.acceptance_rate, self.draft_tokens
        second = sum((2 * j + 1) * a**j for j in range(k + 1))
        return max(0.0, second - self.tokens_per_step**2)

    @property
    def key(self) -> tuple[str, int, float, int]:
        """The figures that change a step's cost or yield (hashable: memo keys)."""
        return (self.method, self.draft_tokens, self.acceptance_rate, self.draft_layers)


@dataclass(frozen=True, slots=True, kw_only=True)
class Growth:
    """Load growth: every class's rate grows by ``per_month_frac`` each month, over ``months`` months."""

    per_month_frac: float
    months: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestClass:
    name: str
    rate_rps: float
    interarrival_cv2: float
    input_tokens: TokenDist
    output_tokens: TokenDist
    slo: Slo
    prefix_cache: PrefixCache | None = None
    hourly_rps: tuple[float, ...] | None = None
    """The class's load over a day, 24 hourly rates: hour h is sized at ``rate_rps × hourly_rps[h] /
    max(hourly_rps)`` (the shape, scaled so the busiest hour is the peak rate ``rate_rps``)."""

    def rate_at_hour(self, hour: int) -> float:
        """The rate hour ``hour`` (0..23) is sized for: the peak rate scaled by the profile's shape."""
        if self.hourly_rps is None:
            return self.rate_rps
        top = max(self.hourly_rps)
        return self.rate_rps * self.hourly_rps[hour] / top if top > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraints:
    max_gpus: Mapping[str, int] = field(default_factory=dict)
    power_cap_w: float | None = None
    budget_usd_per_hour: float | None = None
    headroom_frac: float = 0.0
    redundancy: int = 0
    max_gpu_types_per_role: int | None = None  # GPU types in each role's pools (None: any; a workload file's default is 1)
    max_gpu_types: int | None = None  # GPU types in the whole plan
    min_pool_utilization_frac: float = 0.0  # each pool beyond a role's first carries at least this share of its capacity
    rack_power_w: float | None = None  # power budget of one rack (racks are counted only when given)
    # only replicas one node (or NVLink domain) holds: no expert parallelism across nodes, no pipelines (size --emit,
    # which writes single-node launches only)
    single_node_replicas: bool = False


Objective = Literal["cost", "gpus", "power"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    model: str
    precision: Precision
    classes: tuple[RequestClass, ...]
    prefill_gpus: tuple[str, ...]
    decode_gpus: tuple[str, ...]
    links: tuple[str, ...]
    constraints: Constraints
    pricing: Pricing
    objective: Objective = "cost"
    speculative: Speculative | None = None
    growth: Growth | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """``replicas`` replicas of ``tp`` GPUs each, serving one role. Prefill pools name the link the
    KV cache leaves on; co-located pools have a chunked-prefill ``token_budget``. ``attention_dp`` and
    ``moe_ep`` split a replica's GPUs into data-parallel attention groups and expert-parallel groups
    (``planner.perf.roofline.Hardware``); both 1 is plain tensor parallelism, and the key names them only when > 1."""

    role: Role
    gpu: str
    tp: int
    replicas: int
    max_batch: int
    token_budget: int | None = None
    link: str | None = None
    attention_dp: int = 1  # data-parallel attention groups in each replica of tp GPUs (1: plain TP attention)
    moe_ep: int = 1  # expert-parallel groups the routed experts split over (MoE models; 1: TP experts)
    # whole nodes one replica spans (1: within one node or NVLink domain); > 1 only for a multi-node expert-parallel
    # replica, where it is ``tp / gpus_per_node`` (planner.perf.memory.replica_nodes), set by whoever builds the pool
    nodes_per_replica: int = 1
    # pipeline stages: the replica's tp GPUs form pp stages of tp/pp (each a TP group in one node); 1: no pipeline
    pp: int = 1

    @property
    def layout(self) -> str:
        """How a replica splits the model beyond plain TP ("" for plain TP): ``EP 8, DP-attn 8``, for a
        multi-node replica ``EP 32, DP-attn 32, 4 nodes``, for a pipelined one ``PP 2 x TP 8, 2 nodes``."""
        parts = [f"PP {self.pp} x TP {self.tp // self.pp}"] if self.pp > 1 else []
        parts += [f"EP {self.moe_ep}"] if self.moe_ep > 1 else []
        if self.attention_dp > 1:
            parts.append(f"DP-attn {self.attention_dp}")
        if self.nodes_per_replica > 1:
            parts.append(f"{self.nodes_per_replica} nodes")
        return ", ".join(parts)

    def layout_keys(self) -> dict[str, int]:
        """The layout as output keys: ``attention_dp``, ``moe_ep``, ``nodes_per_replica`` and ``pp``, only those > 1
        (none for plain TP)."""
        keys = {
            "attention_dp": self.attention_dp,
            "moe_ep": self.moe_ep,
            "nodes_per_replica": self.nodes_per_replica,
            "pp": self.pp,
        }
        return {k: v for k, v in keys.items() if v > 1}

    @property
    def key(self) -> str:
        parts = [self.role, self.gpu, f"tp{self.tp}"]
        if self.pp > 1:
            parts.append(f"pp{self.pp}")
        if self.moe_ep > 1:
            parts.append(f"ep{self.moe_ep}")
        if self.attention_dp > 1:
            parts.append(f"dpa{self.attention_dp}")
        if self.nodes_per_replica > 1:
            parts.append(f"n{self.nodes_per_replica}")
        parts.append(f"b{self.max_batch}")
        if self.token_budget is not None:
            parts.append(f"B{self.token_budget}")
        if self.link is not None:
            parts.append(self.link)
        return "__".join(parts)

    @property
    def num_gpus(self) -> int:
        return self.replicas * self.tp


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkUse:
    link: str
    ports: int  # NIC ports on each side (prefill and decode)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A plan or a proposal: pools, the KV link, and how each class's requests are split over the
    pools of each role (``routing[class][pool key]`` = fraction; derived from capacity when absent)."""

    pools: tuple[Pool, ...]
    links: tuple[LinkUse, ...] = ()
    routing: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """Requests of a trace as parallel arrays (arrival order need not be sorted)."""

    arrival_s: npt.NDArray[np.float64]
    input_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]
    hash_values: npt.NDArray[np.int64] | None = None  # prefix block hash ids of all requests, concatenated
    hash_offsets: npt.NDArray[np.int64] | None = None  # request i owns hash_values[hash_offsets[i]:hash_offsets[i+1]]
    failed: int = 0  # rows left out as failed requests (BurstGPT: 0 response tokens)
    start: str | None = None  # wall-clock time of the first request, when the trace has one

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    def sorted(self) -> Trace:
        """The same requests in arrival order (stable; returns ``self`` when already sorted)."""
        t = self.arrival_s
        if t.size < 2 or bool(np.all(t[1:] >= t[:-1])):
            return self
        order = np.argsort(t, kind="stable")
        values, offsets = self.hash_values, self.hash_offsets
        if values is not None and offsets is not None:
            counts = np.diff(offsets)[order]
            new_offsets = np.zeros(order.size + 1, dtype=np.int64)
            np.cumsum(counts, out=new_offsets[1:])
            gather = np.repeat(offsets[:-1][order] - new_offsets[:-1], counts) + np.arange(new_offsets[-1])
            values, offsets = values[gather], new_offsets
        return Trace(
            arrival_s=t[order],
            input_tokens=self.input_tokens[order],
            output_tokens=self.output_tokens[order],
            hash_values=values,
            hash_offsets=offsets,
            failed=self.failed,
            start=self.start,
        )


@dataclass(frozen=True, slots=True)
class PowerRow:
    """One measured step with its board power (the power columns of the measurement CSV)."""

    step: Measurement
    mean_w: float
    peak_w: float
    samples: int


@dataclass(frozen=True, slots=True)
class InputSource:
    """One input file as it was read: its path as given, its text and the SHA-256 of its bytes. A command reads
    each file once (:func:`planner.io.sources.read_source`) and carries the ``InputSource`` to whatever needs it."""

    path: str
    text: str
    sha256: str
