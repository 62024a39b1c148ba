"""Pydantic models of the catalog files, field for field, in the units their keys name.

Unknown keys are rejected (``extra="forbid"``); duplicate keys are rejected by the YAML loader.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.domain import LinkKind, LinkScope

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def _as_of(value: str | _dt.date) -> str:
    text = value.isoformat() if isinstance(value, _dt.date) else str(value)
    if not _DATE.match(text):
        raise ValueError("as_of must be a date: YYYY, YYYY-MM or YYYY-MM-DD")
    return text


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


AsOf = Annotated[str | _dt.date, AfterValidator(_as_of)]
Positive = Annotated[float, Field(gt=0), AfterValidator(_finite)]
NonNegative = Annotated[float, Field(ge=0), AfterValidator(_finite)]
Fraction = Annotated[float, Field(gt=0, le=1), AfterValidator(_finite)]
SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
HfId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")]
"""A Hugging Face repository id, ``owner/name``."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SourceEntry(Strict):
    title: str
    url: str | None = None
    as_of: AsOf
    note: str | None = None


class SourcesFile(Strict):
    schema_version: Literal[1]
    sources: dict[SourceId, SourceEntry]


class Sourced(Strict):
    """An entry whose figures come from ``source`` unless ``field_sources`` names another."""

    source: SourceId
    field_sources: dict[str, SourceId] = Field(default_factory=dict)
    note: str | None = None

    @model_validator(mode="after")
    def _field_sources_name_fields(self) -> Sourced:
        unknown = sorted(set(self.field_sources) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"field_sources names unknown fields: {', '.join(unknown)}")
        return self

    def source_of(self, name: str) -> str:
        return self.field_sources.get(name, self.source)


class GpuEntry(Sourced):
    name: str
    bf16_dense_tflop_per_s: Positive
    fp16_dense_tflop_per_s: Positive
    fp8_dense_tflop_per_s: Positive | None
    fp4_dense_tflop_per_s: Positive | None = None
    """Dense FP4 tensor-core peak (Blackwell and later); absent where the GPU has no FP4 units."""
    hbm_capacity_gib: Positive
    hbm_bandwidth_gbyte_per_s: Positive
    tdp_w: Positive
    idle_w: Positive | None = None
    decode_busy_w: Positive | None = None
    nvlink_gbyte_per_s: NonNegative
    pcie_generation: Annotated[int, Field(ge=3, le=6)]
    gpus_per_node: Annotated[int, Field(ge=1, le=72)]
    nvlink_domain_gpus: Annotated[int, Field(ge=1, le=72)] | None = None
    """GPUs joined by NVLink (default: the whole node; 2 for PCIe cards with a bridge)."""


class GpusFile(Strict):
    schema_version: Literal[1]
    gpus: dict[str, GpuEntry]


class ModelEntry(Sourced):
    name: str
    num_params: Positive
    num_active_params: Positive
    num_layers: Annotated[int, Field(ge=1)]
    hidden_size: Annotated[int, Field(ge=1)]
    intermediate_size: Annotated[int, Field(ge=1)]
    num_attention_heads: Annotated[int, Field(ge=1)]
    num_kv_heads: Annotated[int, Field(ge=1)]
    head_dim: Annotated[int, Field(ge=1)]
    vocab_size: Annotated[int, Field(ge=1)]
    max_context_tokens: Annotated[int, Field(ge=1)]
    num_experts: Annotated[int, Field(ge=2)] | None = None
    experts_per_token: Annotated[int, Field(ge=1)] | None = None
    moe_intermediate_size: Annotated[int, Field(ge=1)] | None = None
    """FFN width of one routed expert where it is not ``intermediate_size`` (DeepSeek-V3: 2048 vs 18432)."""
    num_shared_experts: Annotated[int, Field(ge=0)] = 0
    num_dense_layers: Annotated[int, Field(ge=0)] = 0
    """Leading layers with a dense FFN of ``intermediate_size`` (DeepSeek's ``first_k_dense_replace``)."""
    kv_lora_rank: Annotated[int, Field(ge=1)] | None = None
    """Multi-head latent attention: the compressed KV width (with ``qk_rope_head_dim``: the KV cache per layer)."""
    qk_rope_head_dim: Annotated[int, Field(ge=1)] | None = None
    qk_nope_head_dim: Annotated[int, Field(ge=1)] | None = None
    v_head_dim: Annotated[int, Field(ge=1)] | None = None
    q_lora_rank: Annotated[int, Field(ge=1)] | None = None
    sliding_window_tokens: Annotated[int, Field(ge=1)] | None = None
    num_sliding_layers: Annotated[int, Field(ge=0)] = 0
    hf_id: HfId | None = None
    """Hugging Face repository of the checkpoint whose config.json the figures come from (required
    for the built-in models); ``--model`` and a workload's ``model:`` accept it in place of the id."""
    hf_aliases: list[HfId] = Field(default_factory=list)
    """Other Hugging Face repositories with the same architecture (instruct, FP8, renamed), also
    accepted in place of the id."""

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        if self.hf_aliases and self.hf_id is None:
            raise ValueError("hf_aliases needs an hf_id")
        names = [n.lower() for n in ([self.hf_id] if self.hf_id else []) + self.hf_aliases]
        if len(set(names)) != len(names):
            raise ValueError("hf_id and hf_aliases repeat a Hugging Face id")
        if self.num_active_params > self.num_params:
            raise ValueError("num_active_params exceeds num_params")
        if (self.num_experts is None) != (self.experts_per_token is None):
            raise ValueError("num_experts and experts_per_token go together")
        if self.num_experts is not None and self.experts_per_token is not None:
            if self.experts_per_token >= self.num_experts:
                raise ValueError("experts_per_token must be below num_experts")
            if self.num_active_params >= self.num_params:
                raise ValueError("an MoE model has fewer active than total parameters")
        elif self.num_active_params != self.num_params:
            raise ValueError("a dense model has num_active_params == num_params")
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_kv_heads")
        mla = (self.kv_lora_rank, self.qk_rope_head_dim, self.qk_nope_head_dim, self.v_head_dim)
        if any(v is not None for v in mla) and any(v is None for v in mla):
            raise ValueError("multi-head latent attention needs kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim and v_head_dim")
        if (self.sliding_window_tokens is None) != (self.num_sliding_layers == 0):
            raise ValueError("sliding_window_tokens and num_sliding_layers go together")
        if self.num_sliding_layers >= self.num_layers:
            raise ValueError("num_sliding_layers must be below num_layers (some layer attends over the whole context)")
        if self.num_experts is None and (self.moe_intermediate_size or self.num_shared_experts or self.num_dense_layers):
            raise ValueError("moe_intermediate_size, num_shared_experts and num_dense_layers are for MoE models (num_experts)")
        if self.num_dense_layers >= self.num_layers:
            raise ValueError("num_dense_layers must be below num_layers")
        return self


class ModelsFile(Strict):
    schema_version: Literal[1]
    models: dict[str, ModelEntry]


class LinkEntry(Sourced):
    name: str
    kind: LinkKind
    scope: LinkScope
    bandwidth_gbit_per_s: Positive | None = None
    bandwidth_gbyte_per_s: Positive | None = None
    latency_us: NonNegative | None = None
    port_usd: NonNegative | None = None

    @model_validator(mode="after")
    def _one_bandwidth(self) -> LinkEntry:
        if (self.bandwidth_gbit_per_s is None) == (self.bandwidth_gbyte_per_s is None):
            raise ValueError("give exactly one of bandwidth_gbit_per_s and bandwidth_gbyte_per_s")
        return self


class LinksFile(Strict):
    schema_version: Literal[1]
    links: dict[str, LinkEntry]


class GpuPriceEntry(Strict):
    gpu: str
    provider: str
    region: str
    usd_per_gpu_hour: Positive
    as_of: AsOf
    source: SourceId
    default: bool = False
    note: str | None = None


class ElectricityEntry(Strict):
    usd_per_kwh: Positive
    as_of: AsOf
    source: SourceId
    note: str | None = None


class PueEntry(Strict):
    value: Annotated[float, Field(ge=1, le=3)]
    as_of: AsOf
    source: SourceId
    note: str | None = None


class ServerEntry(Strict):
    gpu: str
    gpus_per_server: Annotated[int, Field(ge=1)]
    capex_usd: Positive | None = None
    amortization_years: Positive | None = None
    as_of: AsOf
    source: SourceId
    note: str | None = None


class PricesFile(Strict):
    schema_version: Literal[1]
    gpu_prices: list[GpuPriceEntry] = Field(default_factory=list)
    electricity: ElectricityEntry | None = None
    pue: PueEntry | None = None
    servers: list[ServerEntry] = Field(default_factory=list)


class EfficiencyEntry(Strict):
    """Fitted factors of one GPU, or ``transferred_from`` another GPU's when none were measured."""

    compute_frac: Fraction | None = None
    attention_compute_frac: Fraction | None = None
    memory_frac: Fraction | None = None
    prefill_fixed_s: NonNegative | None = None
    decode_fixed_s: NonNegative | None = None
    decode_per_seq_s: NonNegative | None = None
    allreduce_latency_s: NonNegative | None = None
    allreduce_bandwidth_frac: Fraction | None = None
    request_fixed_s: NonNegative | None = None
    """Latency before the first token outside the GPU (API server, tokenization); added to TTFT."""
    prefill_sync_frac: Annotated[float, Field(ge=0, le=1)] | None = None
    """Fixed-concurrency benchmarks: share of the other clients' prompts a prompt waits behind."""
    gemm_half_dim: NonNegative | None = None
    """GEMM shape: ``min(n, k)`` at which a GEMM reaches half of ``compute_frac`` (0 or absent: every shape reaches it)."""
    gemm_dim_exp: Positive | None = None
    overlap_q: Annotated[float, Field(ge=1, le=64)] | None = None
    """Compute and memory time of a kernel combine as ``(c^q + m^q)^(1/q)``; absent: ``max``."""
    allreduce_curve: dict[Annotated[int, Field(ge=2)], list[tuple[Positive, Positive]]] | None = None
    """Measured all-reduce latency: TP degree -> [[message bytes, seconds], ...], sizes increasing."""

    @field_validator("allreduce_curve")
    @classmethod
    def _curve_sorted(cls, v: dict[int, list[tuple[float, float]]] | None) -> dict[int, list[tuple[float, float]]] | None:
        for tp, points in (v or {}).items():
            sizes = [b for b, _ in points]
            if len(points) < 2 or sizes != sorted(set(sizes)):
                raise ValueError(f"allreduce_curve[{tp}]: at least two points with message sizes strictly increasing")
        return v

    fitted_on: str | None = None
    source: SourceId | None = None
    as_of: AsOf | None = None
    median_abs_error_frac: NonNegative | None = None
    worst_abs_error_frac: NonNegative | None = None
    transferred_from: str | None = None
    note: str | None = None
    fp8: EfficiencyEntry | None = None  # a second set, fitted on fp8 runs; fp8 steps use it
    fp4: EfficiencyEntry | None = None  # a third, fitted on fp4 (NVFP4) kernels; fp4 steps use it

    @model_validator(mode="after")
    def _fitted_or_transferred(self) -> EfficiencyEntry:
        for name, block in (("fp8", self.fp8), ("fp4", self.fp4)):
            if block is not None and (block.fp8 is not None or block.fp4 is not None or block.transferred_from is not None):
                raise ValueError(f"the {name} block is one fitted set: no fp8, fp4 or transferred_from inside it")
            if block is not None and self.transferred_from is not None:
                raise ValueError(f"a transferred entry carries no factors of its own (also no {name} block)")
        factors = [
            self.compute_frac,
            self.attention_compute_frac,
            self.memory_frac,
            self.prefill_fixed_s,
            self.decode_fixed_s,
            self.decode_per_seq_s,
            self.allreduce_latency_s,
            self.allreduce_bandwidth_frac,
        ]
        if self.transferred_from is not None:
            if any(f is not None for f in factors):
                raise ValueError("a transferred entry carries no factors of its own")
            if not self.note:
                raise ValueError("a transferred entry needs a note saying why")
        elif any(f is None for f in factors) or not self.fitted_on or not self.source or not self.as_of:
            raise ValueError("a fitted entry needs all eight factors, fitted_on, source and as_of")
        return self


class EfficiencyFile(Strict):
    schema_version: Literal[1]
    engine: str | None = None
    """The serving engine these factors describe (an id of engines.yaml); without it, an overlay
    applies to whichever engine is selected (a user's own measurements of their deployment)."""
    efficiency: dict[str, EfficiencyEntry]


class EngineLimits(Strict):
    """Scheduler limits that an engine sets differently on some GPUs."""

    max_num_seqs: Annotated[int, Field(ge=1)] | None = None
    max_num_batched_tokens: Annotated[int, Field(ge=1)] | None = None


class EngineEntry(Sourced):
    """One serving engine: its release, the scheduling the serving model needs, and the memory it uses."""

    name: str
    version: str
    max_num_seqs: Annotated[int, Field(ge=1)]
    """Most sequences the scheduler runs at once (its default)."""
    max_num_batched_tokens: Annotated[int, Field(ge=1)]
    """Token budget of one iteration: prefill chunk tokens plus one per decoding sequence."""
    chunked_prefill: bool
    """Long prompts are split into chunks of the token budget (else a prompt is prefilled whole)."""
    decode_first: bool
    """Running decodes are scheduled before prefill chunks in every iteration (vLLM, TRT-LLM); if
    false, waiting prompts are prefilled in iterations of their own that stall decodes (SGLang)."""
    gpu_memory_utilization_frac: Fraction
    activation_reserve_gib: NonNegative
    gpu_overrides: dict[str, EngineLimits] = Field(default_factory=dict)
    """Per-GPU scheduler defaults where the engine picks them by device (e.g. vLLM on A100)."""


class EnginesFile(Strict):
    schema_version: Literal[1]
    default: str
    """The engine used when none is named (``--engine``, ``engine:``)."""
    net_efficiency_frac: dict[LinkKind, Fraction]
    """Achieved share of line rate of a KV transfer per link kind, shared by every engine."""
    net_efficiency_source: SourceId
    engines: dict[str, EngineEntry]

    @model_validator(mode="after")
    def _consistent(self) -> EnginesFile:
        missing = {"nvlink", "pcie", "infiniband", "roce", "ethernet"} - set(self.net_efficiency_frac)
        if missing:
            raise ValueError(f"net_efficiency_frac lacks {', '.join(sorted(missing))}")
        if self.default not in self.engines:
            raise ValueError(f"default engine {self.default!r} is not in engines")
        return self


class PowerEntry(Strict):
    """One GPU's measured step-power factors (``power.yaml``; ``planner.calibrate.powerfit`` fits them), or
    ``transferred_from`` another GPU's when this one was not measured (with a ``note`` saying why)."""

    idle_w: Positive | None = None
    active_w: Annotated[float, AfterValidator(_finite)] | None = None
    flop_w: Annotated[float, AfterValidator(_finite)] | None = None
    hbm_w: Annotated[float, AfterValidator(_finite)] | None = None
    cap_w: Positive | None = None
    source: SourceId | None = None
    as_of: AsOf | None = None
    measured_on: str | None = None
    transferred_from: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _fitted_or_transferred(self) -> PowerEntry:
        factors = (self.idle_w, self.active_w, self.flop_w, self.hbm_w, self.cap_w)
        if self.transferred_from is not None:
            if any(f is not None for f in factors) or self.measured_on is not None:
                raise ValueError("a transferred entry carries no factors of its own (no idle_w ... cap_w, no measured_on)")
            if not self.note.strip():
                raise ValueError("a transferred entry needs a note saying why")
            return self
        if any(f is None for f in factors) or not self.source or self.as_of is None or not self.measured_on:
            raise ValueError("a fitted entry needs idle_w, active_w, flop_w, hbm_w, cap_w, source, as_of and measured_on")
        if self.cap_w is not None and self.idle_w is not None and self.cap_w <= self.idle_w:
            raise ValueError("cap_w must be above idle_w")
        return self


class PowerFile(Strict):
    schema_version: Literal[1]
    gpus: dict[str, PowerEntry]
    fit_error: dict[str, dict[str, NonNegative]] = Field(default_factory=dict)
