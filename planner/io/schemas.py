"""Pydantic models of the catalog files, field for field, in the units their keys name.

Unknown keys are rejected (``extra="forbid"``); duplicate keys are rejected by the YAML loader.

Numbers are strict: a field that holds a number takes a YAML/JSON integer or float, never a boolean
(``true``) or a string (``"20"``), and a whole-number field takes an integer (or a float with no fraction,
``1e3``). Every numeric catalog field has a sane range, documented at the field (:func:`within`, ``Field(ge, le)``): a
value outside it (``1e300`` GiB of HBM, ``1e-300`` GB/s, ``2**63`` layers) is an error naming the field
rather than a NaN or an overflow later on. Catalog ids (the keys of gpus, models, links, engines,
efficiency and power entries) match :data:`CATALOG_ID`: a letter or digit, then letters, digits and
``. _ + -``, at most 64 characters; entry names are one printable line of at most 200 characters.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

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


MAX_MAGNITUDE = 1e15
"""No number of any planner document is larger (in absolute value): larger is a mistake (or an overflow)."""


def _not_text(value: Any, what: str) -> None:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, not the boolean {str(value).lower()}")
    if isinstance(value, (str, bytes)):
        shown = repr(value) if len(value) <= 40 else f"{value[:40]!r}..."
        raise ValueError(f"expected {what}, not the string {shown}")


def _number(value: Any) -> Any:
    """Before float validation: an int or a float only (an int of any size becomes a float or an error)."""
    _not_text(value, "a number")
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:
            raise ValueError(f"number too large (a {len(str(abs(value)))}-digit integer; at most {MAX_MAGNITUDE:g})")
        return float(value)
    return value


def _whole(value: Any) -> Any:
    """Before int validation: an int, or a float without a fraction (``1e3``); never a boolean or a string."""
    _not_text(value, "a whole number")
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_MAGNITUDE:
        return int(value)
    return value


def _magnitude(value: float) -> float:
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{value:g} is too large (at most {MAX_MAGNITUDE:g})")
    return value


def within(lo: float, hi: float, *, zero: bool = False) -> AfterValidator:
    """After float validation: finite and in the sane range ``[lo, hi]`` (with ``zero``: 0, or in the range)."""

    def check(value: float) -> float:
        _finite(value)
        if not (lo <= value <= hi or (zero and value == 0)):
            also = "0 or " if zero and lo > 0 else ""
            raise ValueError(f"{value:g} is out of range (a sane value is {also}between {lo:g} and {hi:g})")
        return value

    return AfterValidator(check)


NUMBER = BeforeValidator(_number)
"""Before float validation: a number, never a boolean or a string."""
WHOLE = BeforeValidator(_whole)
"""Before int validation: a whole number, never a boolean, a string or a fraction."""


AsOf = Annotated[str | _dt.date, AfterValidator(_as_of)]
Number = Annotated[float, NUMBER, AfterValidator(_finite), AfterValidator(_magnitude)]
"""Any finite number (at most :data:`MAX_MAGNITUDE` in absolute value), strict."""
Positive = Annotated[float, Field(gt=0), NUMBER, AfterValidator(_finite), AfterValidator(_magnitude)]
NonNegative = Annotated[float, Field(ge=0), NUMBER, AfterValidator(_finite), AfterValidator(_magnitude)]
Fraction = Annotated[float, Field(gt=0, le=1), NUMBER, AfterValidator(_finite)]
Share = Annotated[float, Field(ge=0, le=1), NUMBER, AfterValidator(_finite)]
"""A fraction that may be 0."""
Whole = Annotated[int, WHOLE]
CATALOG_ID = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
CatalogId = Annotated[str, Field(pattern=CATALOG_ID)]
"""A catalog id: a letter or digit, then letters, digits and ``. _ + -``; at most 64 characters."""
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A display name: one line of printable text, at most 200 characters."""
FRAC_MIN = 1e-6  # efficiency shares below this are no measurement (and make times overflow)
SECONDS_MAX = 60.0  # a fixed per-step, per-request or all-reduce time above a minute is no serving engine
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


TFLOPS = Annotated[float, NUMBER, within(0.01, 1e5)]  # dense TFLOP/s of one GPU
WATTS = Annotated[float, NUMBER, within(1, 1e5)]  # one GPU's power draw, W


class GpuEntry(Sourced):
    """Ranges: TFLOP/s 0.01-1e5, HBM 0.1-1e4 GiB and 1-1e6 GB/s, power 1-1e5 W, NVLink 0 or 0.01-1e6 GB/s."""

    name: Name
    bf16_dense_tflop_per_s: TFLOPS
    fp16_dense_tflop_per_s: TFLOPS
    fp8_dense_tflop_per_s: TFLOPS | None
    fp4_dense_tflop_per_s: TFLOPS | None = None
    """Dense FP4 tensor-core peak (Blackwell and later); absent where the GPU has no FP4 units."""
    hbm_capacity_gib: Annotated[float, NUMBER, within(0.1, 1e4)]
    cuda_memory_gib: Annotated[float, NUMBER, within(0.1, 1e4)] | None = None
    """Memory the CUDA runtime reports for one GPU (torch's ``total_memory``), what an engine sizes its KV pool
    from; a little under the nominal capacity (H200: 139.80 GiB of "141GB"). Absent: the nominal capacity is used."""
    hbm_bandwidth_gbyte_per_s: Annotated[float, NUMBER, within(1, 1e6)]
    tdp_w: WATTS
    idle_w: WATTS | None = None
    decode_busy_w: WATTS | None = None
    nvlink_gbyte_per_s: Annotated[float, NUMBER, within(0.01, 1e6, zero=True)]
    pcie_generation: Annotated[int, Field(ge=3, le=6), WHOLE]
    gpus_per_node: Annotated[int, Field(ge=1, le=72), WHOLE]
    nvlink_domain_gpus: Annotated[int, Field(ge=1, le=72), WHOLE] | None = None
    """GPUs joined by NVLink (default: the whole node; 2 for PCIe cards with a bridge)."""
    node_compute_nics: Annotated[int, Field(ge=0, le=1024), WHOLE] | None = None
    """NICs per node on the GPU (east-west) fabric, e.g. one 400 Gb/s ConnectX-7 per GPU on an HGX H100 server."""
    node_north_south_nics: Annotated[int, Field(ge=0, le=1024), WHOLE] | None = None
    """NICs or DPUs per node for storage and north-south traffic (BlueField-3 on NVIDIA's HGX reference design)."""
    node_max_power_w: Annotated[float, NUMBER, within(1, 1e6)] | None = None
    """The node's maximum input power, W: the system's rating (GPUs, CPUs, NICs, fans), not the GPUs' TDP sum."""


class GpusFile(Strict):
    schema_version: Literal[1]
    gpus: dict[CatalogId, GpuEntry]


WIDTH = Annotated[int, Field(ge=1, le=10_000_000), WHOLE]  # a hidden, FFN, head or latent width
LAYERS = Annotated[int, Field(ge=1, le=10_000), WHOLE]
HEADS = Annotated[int, Field(ge=1, le=100_000), WHOLE]
TOKENS = Annotated[int, Field(ge=1, le=1_000_000_000), WHOLE]  # a context window, a sliding window


class ModelEntry(Sourced):
    """Ranges: parameters 1-1e15, layers 1-10,000, widths 1-1e7, heads 1-100,000, vocabulary 1-1e9,
    context 1-1e9 tokens, experts 2-100,000."""

    name: Name
    num_params: Annotated[float, NUMBER, within(1, 1e15)]
    num_active_params: Annotated[float, NUMBER, within(1, 1e15)]
    num_layers: LAYERS
    hidden_size: WIDTH
    intermediate_size: WIDTH
    num_attention_heads: HEADS
    num_kv_heads: HEADS
    head_dim: WIDTH
    vocab_size: Annotated[int, Field(ge=1, le=1_000_000_000), WHOLE]
    max_context_tokens: TOKENS
    num_experts: Annotated[int, Field(ge=2, le=100_000), WHOLE] | None = None
    experts_per_token: Annotated[int, Field(ge=1, le=100_000), WHOLE] | None = None
    moe_intermediate_size: WIDTH | None = None
    """FFN width of one routed expert where it is not ``intermediate_size`` (DeepSeek-V3: 2048 vs 18432)."""
    num_shared_experts: Annotated[int, Field(ge=0, le=100_000), WHOLE] = 0
    num_dense_layers: Annotated[int, Field(ge=0, le=10_000), WHOLE] = 0
    """Leading layers with a dense FFN of ``intermediate_size`` (DeepSeek's ``first_k_dense_replace``)."""
    kv_lora_rank: WIDTH | None = None
    """Multi-head latent attention: the compressed KV width (with ``qk_rope_head_dim``: the KV cache per layer)."""
    qk_rope_head_dim: WIDTH | None = None
    qk_nope_head_dim: WIDTH | None = None
    v_head_dim: WIDTH | None = None
    q_lora_rank: WIDTH | None = None
    sliding_window_tokens: TOKENS | None = None
    num_sliding_layers: Annotated[int, Field(ge=0, le=10_000), WHOLE] = 0
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
    models: dict[CatalogId, ModelEntry]


class LinkPortEntry(Strict):
    """The network components (ids under ``components``) one GPU's port on the link is built from."""

    nic: CatalogId | None = None
    switch: CatalogId | None = None
    cable: CatalogId | None = None


class LinkEntry(Sourced):
    """Ranges: bandwidth 0.01-1e6 Gbit/s (or GB/s), latency 0-1e6 us, port price 0-1e9 USD."""

    name: Name
    kind: LinkKind
    scope: LinkScope
    bandwidth_gbit_per_s: Annotated[float, NUMBER, within(0.01, 1e6)] | None = None
    bandwidth_gbyte_per_s: Annotated[float, NUMBER, within(0.01, 1e6)] | None = None
    latency_us: Annotated[float, NUMBER, within(0, 1e6, zero=True)] | None = None
    port_usd: Annotated[float, NUMBER, within(0, 1e9, zero=True)] | None = None
    """All-in price of one GPU's port (NIC, switch ports and cables), USD; overrides ``port``."""
    port: LinkPortEntry | None = None
    """The components one GPU's port is priced from (see ``components``)."""

    @model_validator(mode="after")
    def _one_bandwidth(self) -> LinkEntry:
        if (self.bandwidth_gbit_per_s is None) == (self.bandwidth_gbyte_per_s is None):
            raise ValueError("give exactly one of bandwidth_gbit_per_s and bandwidth_gbyte_per_s")
        return self


class ComponentEntry(Strict):
    """A priced network part. Ranges: price 0-1e8 USD per unit, 1-100,000 ports per unit."""

    name: Name
    part: Literal["nic", "switch", "cable"]
    usd: Annotated[float, NUMBER, within(0, 1e8, zero=True)] | None
    """Price of one unit (adapter, switch, cable with both ends), USD; null where no public price was read."""
    ports: Annotated[int, Field(ge=1, le=100_000), WHOLE] = 1
    """Ports one unit serves: its price is shared by them."""
    as_of: AsOf | None = None
    source: SourceId
    note: str | None = None

    @model_validator(mode="after")
    def _unknown_says_why(self) -> ComponentEntry:
        if self.usd is None and not self.note:
            raise ValueError("a component without a price (usd: null) needs a note saying why and how to fill it in")
        if self.usd is not None and self.as_of is None:
            raise ValueError("a priced component needs as_of (the date of the price)")
        return self


class TransferPointEntry(Strict):
    """One measured transfer: ``total_bytes`` over the measurement's ports in ``transfer_ms``."""

    total_bytes: Annotated[float, NUMBER, within(1, 1e15)]
    transfer_ms: Annotated[float, NUMBER, within(1e-6, 1e7)]


class TransferCurveEntry(Strict):
    """``t(S) = latency + S / (peak_frac · line rate)`` per port, fitted on ``points`` measured over
    ``ports`` ports of ``measured_port_gbit_per_s`` each (each port carrying ``total_bytes / ports``)."""

    source: SourceId
    latency_us: Annotated[float, NUMBER, within(0, 1e6, zero=True)]
    peak_frac: Fraction
    measured_port_gbit_per_s: Annotated[float, NUMBER, within(0.01, 1e6)]
    ports: Annotated[int, Field(ge=1, le=100_000), WHOLE] = 1
    points: Annotated[list[TransferPointEntry], Field(min_length=2, max_length=10_000)]
    max_rel_error_frac: Annotated[float, NUMBER, within(0, 10, zero=True)]
    """The largest relative error of the curve's time on its points (checked when the catalog loads)."""
    note: str | None = None


class NetworkEntry(Strict):
    """How network hardware is amortized and how many switch ports and cables one GPU port takes."""

    amortization_years: Annotated[float, NUMBER, within(0.1, 50)]
    amortization_source: SourceId
    switch_ports_per_port: Annotated[int, Field(ge=0, le=16), WHOLE] = 3
    cables_per_port: Annotated[int, Field(ge=0, le=16), WHOLE] = 2
    topology_source: SourceId | None = None
    note: str | None = None


class LinksFile(Strict):
    schema_version: Literal[1]
    links: dict[CatalogId, LinkEntry] = Field(default_factory=dict)
    components: dict[CatalogId, ComponentEntry] = Field(default_factory=dict)
    """Priced network parts (NICs, switches, cables) the links' ``port`` entries name."""
    transfer_curves: dict[LinkKind, TransferCurveEntry] = Field(default_factory=dict)
    """Measured KV-transfer curves per link kind; a kind without one uses the engines' ``net_efficiency_frac``."""
    network: NetworkEntry | None = None


class GpuPriceEntry(Strict):
    gpu: str
    provider: str
    region: str
    usd_per_gpu_hour: Annotated[float, NUMBER, within(1e-4, 1e4)]
    """0.0001-10,000 USD per GPU-hour."""
    as_of: AsOf
    source: SourceId
    default: bool = False
    note: str | None = None


class ElectricityEntry(Strict):
    usd_per_kwh: Annotated[float, NUMBER, within(1e-4, 100)]
    """0.0001-100 USD per kWh."""
    as_of: AsOf
    source: SourceId
    note: str | None = None


class PueEntry(Strict):
    value: Annotated[float, Field(ge=1, le=3), NUMBER]
    as_of: AsOf
    source: SourceId
    note: str | None = None


class ServerEntry(Strict):
    gpu: str
    gpus_per_server: Annotated[int, Field(ge=1, le=1024), WHOLE]
    capex_usd: Annotated[float, NUMBER, within(1, 1e10)] | None = None
    """1-1e10 USD per server."""
    amortization_years: Annotated[float, NUMBER, within(0.1, 100)] | None = None
    """0.1-100 years."""
    as_of: AsOf
    source: SourceId
    note: str | None = None


class PricesFile(Strict):
    schema_version: Literal[1]
    gpu_prices: list[GpuPriceEntry] = Field(default_factory=list)
    electricity: ElectricityEntry | None = None
    pue: PueEntry | None = None
    servers: list[ServerEntry] = Field(default_factory=list)


EffFrac = Annotated[float, NUMBER, within(FRAC_MIN, 1)]
EffSeconds = Annotated[float, NUMBER, within(0, SECONDS_MAX, zero=True)]


class EfficiencyEntry(Strict):
    """Fitted factors of one GPU, or ``transferred_from`` another GPU's when none were measured.

    Ranges: the fractions 1e-6-1, the fixed times 0-60 s, an all-reduce curve's points 1-1e15 bytes and
    1e-9-60 s, ``gemm_half_dim`` 0-1e6, ``gemm_dim_exp`` 0.01-100."""

    compute_frac: EffFrac | None = None
    attention_compute_frac: EffFrac | None = None
    memory_frac: EffFrac | None = None
    prefill_fixed_s: EffSeconds | None = None
    decode_fixed_s: EffSeconds | None = None
    decode_per_seq_s: EffSeconds | None = None
    allreduce_latency_s: EffSeconds | None = None
    allreduce_bandwidth_frac: EffFrac | None = None
    request_fixed_s: EffSeconds | None = None
    """Latency before the first token outside the GPU (API server, tokenization); added to TTFT."""
    prefill_sync_frac: Share | None = None
    """Fixed-concurrency benchmarks: share of the other clients' prompts a prompt waits behind."""
    gemm_half_dim: Annotated[float, NUMBER, within(0, 1e6, zero=True)] | None = None
    """GEMM shape: ``min(n, k)`` at which a GEMM reaches half of ``compute_frac`` (0 or absent: every shape reaches it)."""
    gemm_dim_exp: Annotated[float, NUMBER, within(0.01, 100)] | None = None
    overlap_q: Annotated[float, Field(ge=1, le=64), NUMBER] | None = None
    """Compute and memory time of a kernel combine as ``(c^q + m^q)^(1/q)``; absent: ``max``."""
    allreduce_curve: (
        dict[
            Annotated[int, Field(ge=2, le=1024), WHOLE],
            list[tuple[Annotated[float, NUMBER, within(1, 1e15)], Annotated[float, NUMBER, within(1e-9, SECONDS_MAX)]]],
        ]
        | None
    ) = None
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
    median_abs_error_frac: Annotated[float, NUMBER, within(0, 1e3, zero=True)] | None = None
    worst_abs_error_frac: Annotated[float, NUMBER, within(0, 1e3, zero=True)] | None = None
    transferred_from: str | None = None
    without_allreduce_curve: bool | None = None
    """With ``transferred_from``: leave out the donor's measured all-reduce curves (measured on the donor's links),
    so this GPU's all-reduces take the ring formula on its own NVLink with the donor's fitted bandwidth share and
    latency (the H800's NVLink is less than half the H100's)."""
    note: str | None = None
    fp8: EfficiencyEntry | None = None  # a second set, fitted on fp8 runs; fp8 steps use it
    fp4: EfficiencyEntry | None = None  # a third, fitted on fp4 (NVFP4) kernels; fp4 steps use it

    @model_validator(mode="after")
    def _fitted_or_transferred(self) -> EfficiencyEntry:
        if self.without_allreduce_curve is not None and self.transferred_from is None:
            raise ValueError("without_allreduce_curve applies to an entry with transferred_from only")
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


LogSigma = Annotated[float, NUMBER, within(0, 10, zero=True)]


class HeldOutSpread(Strict):
    """The same spread on rows the factors were not fitted on: a check, never used to draw."""

    rows: Annotated[int, Field(ge=0), WHOLE]
    ttft_log_sigma: LogSigma | None = None
    tpot_log_sigma: LogSigma | None = None
    checked_on: str


class EfficiencyUncertainty(Strict):
    """Measured spread of the profile's predictions: one-sigma of ln(predicted/measured) of the mean TTFT and TPOT
    of serving-benchmark rows the profile was fitted on (``planner study robust`` draws its time multipliers from
    it), and the correlation of the two log ratios."""

    ttft_log_sigma: LogSigma
    tpot_log_sigma: LogSigma
    correlation: Annotated[float, Field(ge=-1, le=1), NUMBER]
    rows: Annotated[int, Field(ge=1), WHOLE]
    gpus: list[CatalogId] = Field(default_factory=list)
    """The GPUs of the rows it was measured on (on any other GPU of the engine it is an assumption)."""
    fitted_on: str
    method: str
    source: SourceId
    as_of: AsOf
    held_out: HeldOutSpread | None = None


MoeScale = Annotated[float, NUMBER, within(0.01, 10)]


class MoeFactorSigma(Strict):
    """One-sigma uncertainty of each fitted MoE serving factor (same units as the factor)."""

    compute_frac_scale: Annotated[float, NUMBER, within(0, 100, zero=True)] | None = None
    memory_frac_scale: Annotated[float, NUMBER, within(0, 100, zero=True)] | None = None
    decode_fixed_s: EffSeconds | None = None
    request_fixed_s: EffSeconds | None = None


class MoeSplitErrors(Strict):
    """Median |error| of the fitted factors' mean TTFT and TPOT on the rows of one split."""

    rows: Annotated[int, Field(ge=0), WHOLE]
    ttft_median_abs_error_frac: Annotated[float, NUMBER, within(0, 1e3, zero=True)] | None = None
    tpot_median_abs_error_frac: Annotated[float, NUMBER, within(0, 1e3, zero=True)] | None = None


class MoeFitErrors(Strict):
    train: MoeSplitErrors
    held_out: MoeSplitErrors | None = None


class MoeServingEntry(Strict):
    """An engine's MoE serving factors (:class:`planner.domain.MoeServing`), applied to mixture-of-experts models
    only, with the rows they were fitted on (file, split, row count, date) and their uncertainty."""

    compute_frac_scale: MoeScale
    memory_frac_scale: MoeScale
    decode_fixed_s: EffSeconds
    request_fixed_s: EffSeconds | None = None
    fitted_on: Annotated[str, Field(min_length=1)]
    sigma: MoeFactorSigma | None = None
    errors: MoeFitErrors | None = None
    """What the fit reported of the written factors (the test re-evaluates them)."""
    source: SourceId
    as_of: AsOf
    note: str | None = None


class EfficiencyFile(Strict):
    schema_version: Literal[1]
    engine: str | None = None
    """The serving engine these factors describe (an id of engines.yaml); without it, an overlay
    applies to whichever engine is selected (a user's own measurements of their deployment)."""
    efficiency: dict[CatalogId, EfficiencyEntry]
    uncertainty: EfficiencyUncertainty | None = None
    """The measured spread of the engine's predictions (from the fit of its overheads); the last file that gives one
    for an engine wins."""
    moe_serving: MoeServingEntry | None = None
    """The engine's MoE serving factors (needs ``engine``); the last file of the engine that gives them wins."""

    @model_validator(mode="after")
    def _moe_needs_engine(self) -> EfficiencyFile:
        if self.moe_serving is not None and self.engine is None:
            raise ValueError("moe_serving: the factors are an engine's: give the file's engine")
        return self


class EngineLimits(Strict):
    """Scheduler limits that an engine sets differently on some GPUs."""

    max_num_seqs: Annotated[int, Field(ge=1, le=1_000_000), WHOLE] | None = None
    max_num_batched_tokens: Annotated[int, Field(ge=1, le=1_000_000_000), WHOLE] | None = None


class EngineKvCache(Sourced):
    """How the engine sizes its KV pool on each GPU (:class:`planner.domain.KvCacheRule`). ``memory_frac`` absent:
    the engine's own default (SGLang derives mem_fraction_static from the GPU's memory)."""

    rule: Literal["vllm", "sglang", "trtllm"]
    memory_frac: Fraction | None = None
    block_tokens: Annotated[int, Field(ge=1, le=4096), WHOLE]
    runtime_reserve_gib: Annotated[float, NUMBER, within(0, 1e3, zero=True)] = 0.0
    sampler_logit_copies: Annotated[float, NUMBER, within(0, 100, zero=True)] = 0.0
    cuda_graph_gib: Annotated[float, NUMBER, within(0, 1e3, zero=True)] = 0.0
    profile_activation: bool = True


class EngineEntry(Sourced):
    """One serving engine: its release, the scheduling the serving model needs, and the memory it uses."""

    name: Name
    version: str
    max_num_seqs: Annotated[int, Field(ge=1, le=1_000_000), WHOLE]
    """Most sequences the scheduler runs at once (its default)."""
    max_num_batched_tokens: Annotated[int, Field(ge=1, le=1_000_000_000), WHOLE]
    """Token budget of one iteration: prefill chunk tokens plus one per decoding sequence."""
    chunked_prefill: bool
    """Long prompts are split into chunks of the token budget (else a prompt is prefilled whole)."""
    decode_first: bool
    """Running decodes are scheduled before prefill chunks in every iteration (vLLM, TRT-LLM); if
    false, waiting prompts are prefilled in iterations of their own that stall decodes (SGLang)."""
    gpu_memory_utilization_frac: Fraction
    activation_reserve_gib: Annotated[float, NUMBER, within(0, 1e4, zero=True)]
    gpu_overrides: dict[str, EngineLimits] = Field(default_factory=dict)
    """Per-GPU scheduler defaults where the engine picks them by device (e.g. vLLM on A100)."""
    unsupported_gpus: dict[str, Annotated[str, Field(min_length=1, max_length=300)]] = Field(default_factory=dict)
    """GPUs the engine does not run on (GPU id -> why, e.g. TensorRT-LLM on AMD GPUs): they need no factor set under
    it, the default hardware leaves them out and naming one under this engine is an error."""
    kv_cache: EngineKvCache | None = None
    """The engine's own KV-pool rule (not yet used by the memory fit, which applies gpu_memory_utilization_frac)."""


class EnginesFile(Strict):
    schema_version: Literal[1]
    default: str
    """The engine used when none is named (``--engine``, ``engine:``)."""
    net_efficiency_frac: dict[LinkKind, Fraction]
    """Achieved share of line rate of a KV transfer per link kind, shared by every engine."""
    net_efficiency_source: SourceId
    engines: dict[CatalogId, EngineEntry]

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

    idle_w: WATTS | None = None
    active_w: Annotated[float, NUMBER, within(-1e5, 1e5)] | None = None
    flop_w: Annotated[float, NUMBER, within(-1e5, 1e5)] | None = None
    hbm_w: Annotated[float, NUMBER, within(-1e5, 1e5)] | None = None
    cap_w: WATTS | None = None
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
    gpus: dict[CatalogId, PowerEntry]
    fit_error: dict[str, dict[str, NonNegative]] = Field(default_factory=dict)


MAX_DRAFT_TOKENS = 16  # the workload's speculative.draft_tokens has the same bound


class SpeculativeEntry(Sourced):
    """One speculative-decoding method's published defaults. ``null``: no published figure, so a workload using the
    method must give it. Give the per-token ``acceptance_rate`` or, where the source reports the mean acceptance
    length τ (tokens per verify step, bonus token included) at ``draft_tokens``, ``mean_acceptance_length``: the
    loader inverts ``τ = (1 − A^(K+1))/(1 − A)`` for A. Ranges: draft_tokens 1-16, draft_layers 0-8."""

    draft_tokens: Annotated[int, Field(ge=1, le=MAX_DRAFT_TOKENS), WHOLE] | None
    """K, tokens drafted per step."""
    acceptance_rate: Annotated[float, Field(ge=0, lt=1), NUMBER] | None = None
    """A, probability each draft token is accepted (given the ones before it were)."""
    mean_acceptance_length: Annotated[float, Field(ge=1, le=MAX_DRAFT_TOKENS + 1), NUMBER] | None = None
    """τ measured at ``draft_tokens``: mean tokens a verify step emits (1 + accepted drafts per step)."""
    draft_layers: Annotated[int, Field(ge=0, le=8), WHOLE]
    """Transformer layers the drafter runs per draft token (0: a lookup, no model)."""
    models: list[CatalogId] = Field(default_factory=list)
    """Catalog models known to ship the drafter the method needs (MTP: a multi-token-prediction head)."""

    @model_validator(mode="after")
    def _one_acceptance_figure(self) -> SpeculativeEntry:
        if self.acceptance_rate is not None and self.mean_acceptance_length is not None:
            raise ValueError("give acceptance_rate or mean_acceptance_length, not both")
        if self.mean_acceptance_length is not None:
            if self.draft_tokens is None:
                raise ValueError("mean_acceptance_length is measured at some draft_tokens: give draft_tokens")
            if self.mean_acceptance_length >= self.draft_tokens + 1:
                raise ValueError(
                    f"mean_acceptance_length {self.mean_acceptance_length:g} must be below draft_tokens + 1 "
                    f"({self.draft_tokens + 1}): every draft accepted always would need no drafting"
                )
        return self


class SpeculativeFile(Strict):
    schema_version: Literal[1]
    methods: dict[Literal["mtp", "eagle", "ngram"], SpeculativeEntry]
