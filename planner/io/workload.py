"""The workload document (what ``planner size`` reads, ``planner profile -o`` writes).

Field names carry their units; the docs/design.md example loads exactly as written.

Token statistics are between 1 and :data:`MAX_TOKENS` tokens and must be possible for whole-token counts:
a mean at least half the p50 (a tenth of the p90, a hundredth of the p99; Markov's bound for
non-negative counts), at most the p99 (or the max, when given: the fitted distribution has no room
above it otherwise). SLO targets are at most :data:`MAX_SLO_MS`. A class's p99 prompt (and its p99
prompt plus p99 output) must fit the model's context window (:func:`to_domain`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator

from planner import domain
from planner.domain import Objective, Precision, PricingMode
from planner.errors import InputError
from planner.io.catalog import IdIndex, format_validation_error
from planner.io.schemas import MAX_DRAFT_TOKENS, NUMBER, WHOLE, Positive, Strict, _finite, within
from planner.io.sources import check_path_text, shown
from planner.io.yamlio import loads, read_text
from planner.perf.distributions import from_histogram, from_stats
from planner.units import HOURS_PER_MONTH, W_PER_KW, ms_to_s

_SLO_KEY = re.compile(r"^(ttft|tpot)_p(50|90|95|99|99\.9)_ms$")
MAX_TOKENS = 1e9  # a prompt or an output of more tokens is no request (and overflows the models)
MAX_SLO_MS = 1e9  # 11.6 days
MAX_GPUS = 10_000_000  # of one type, in constraints.max_gpus


def _at_most_gpus(value: int) -> int:
    if value > MAX_GPUS:
        raise ValueError(f"{value} GPUs is out of range (at most {MAX_GPUS:,})")
    return value


Tokens = Annotated[float, Field(gt=0), NUMBER, within(1, MAX_TOKENS)]
Weight = Annotated[float, Field(ge=0), NUMBER, within(0, 1e15, zero=True)]

EngineRef = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9][A-Za-z0-9_.+-]*)?$")
]
"""A serving engine: ``NAME`` or ``NAME@VERSION`` (one engine; ``--engine`` also takes lists)."""


class TokenStats(Strict):
    """Token counts of one class: summary statistics, or a histogram of ``[tokens, weight]`` bins."""

    mean: Tokens | None = None
    """Mean tokens per request."""
    p50: Tokens | None = None
    """Median tokens."""
    p90: Tokens | None = None
    """90th percentile, tokens."""
    p99: Tokens | None = None
    """99th percentile, tokens."""
    max: Tokens | None = None
    """Largest request, tokens (optional; clips the fitted distribution)."""
    histogram: list[tuple[Tokens, Weight]] | None = None
    """Instead of the statistics: ``[tokens, weight]`` bins (weights need not sum to 1)."""

    @model_validator(mode="after")
    def _complete(self) -> TokenStats:
        if self.histogram is not None:
            if not self.histogram or sum(w for _, w in self.histogram) <= 0:
                raise ValueError("histogram needs at least one bin with positive weight")
            return self
        missing = [k for k in ("mean", "p50", "p90", "p99") if getattr(self, k) is None]
        if missing:
            raise ValueError(f"give mean, p50, p90 and p99 (missing {', '.join(missing)}), or a histogram")
        assert self.p50 is not None and self.p90 is not None and self.p99 is not None
        if not self.p50 <= self.p90 <= self.p99:
            raise ValueError("percentiles must satisfy p50 <= p90 <= p99")
        if self.max is not None and self.max < self.p99:
            raise ValueError("max must be at least p99")
        assert self.mean is not None
        floor = max(0.5 * self.p50, 0.1 * self.p90, 0.01 * self.p99)
        if self.mean < floor:
            raise ValueError(
                f"inconsistent statistics: mean {self.mean:g} is below what p50 {self.p50:g}, p90 {self.p90:g} and "
                f"p99 {self.p99:g} allow (at least {floor:g}: half the requests have p50 tokens or more)"
            )
        top = self.max if self.max is not None else self.p99
        if self.mean > top:
            raise ValueError(
                f"inconsistent statistics: mean {self.mean:g} is above the {'max' if self.max is not None else 'p99'} "
                f"{top:g}" + ("" if self.max is not None else " (give max, or a histogram, for such a tail)")
            )
        return self

    def to_domain(self) -> domain.TokenDist:
        if self.histogram is not None:
            return from_histogram([(float(t), float(w)) for t, w in self.histogram])
        assert self.mean is not None and self.p50 is not None and self.p90 is not None and self.p99 is not None
        return from_stats(self.mean, self.p50, self.p90, self.p99, self.max)


class SloSpec(Strict):
    """Targets as ``ttft_p<N>_ms`` and ``tpot_p<N>_ms`` (N = 50, 90, 95, 99 or 99.9), one of each."""

    model_config = Strict.model_config | {"extra": "allow"}

    @model_validator(mode="after")
    def _keys(self) -> SloSpec:
        extra = dict(self.__pydantic_extra__ or {})
        for key, value in extra.items():
            if not _SLO_KEY.match(key):
                raise ValueError(f"unknown SLO key {key!r}; use ttft_p99_ms, tpot_p99_ms (p50/p90/p95/p99/p99.9)")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_SLO_MS:
                raise ValueError(f"{key} must be a positive finite number of milliseconds (at most {MAX_SLO_MS:g})")
        for metric in ("ttft", "tpot"):
            keys = [k for k in extra if k.startswith(metric)]
            if len(keys) != 1:
                raise ValueError(f"give exactly one {metric}_p<N>_ms target (found {len(keys)})")
        return self

    def to_domain(self) -> domain.Slo:
        extra = dict(self.__pydantic_extra__ or {})
        parsed = {}
        for key, value in extra.items():
            m = _SLO_KEY.match(key)
            assert m is not None
            parsed[m.group(1)] = (ms_to_s(float(value)), float(m.group(2)) / 100)
        return domain.Slo(
            ttft_s=parsed["ttft"][0], ttft_quantile=parsed["ttft"][1], tpot_s=parsed["tpot"][0], tpot_quantile=parsed["tpot"][1]
        )


Fraction = Annotated[float, Field(ge=0, le=1), NUMBER]
HOURS_PER_DAY = 24


class PrefixCacheSpec(Strict):
    """Prefix reuse of a class (``planner profile -o`` writes it from a trace's ``hash_ids``)."""

    hit_frac: Annotated[float, Field(ge=0, lt=1), NUMBER]
    """Share of the class's prompt tokens whose KV is already cached (0 <= F < 1: the last token is always computed)."""
    location: domain.CacheLocation = "prefill"
    """Disaggregated serving: prefill (the prefill pool holds the cache; the decode pool receives every prompt
    token's KV) or both (both pools cache, with prefix-aware routing; only missed tokens' KV crosses the link)."""
    working_set_tokens: Annotated[float, Field(ge=0), NUMBER, within(0, MAX_TOKENS, zero=True)] = 0.0
    """KV tokens of cached prefixes each replica holding the cache keeps resident (0: the cache lives in free KV memory)."""


class RateProfileSpec(Strict):
    """The class's load over a day (``planner profile -o`` writes it from the trace's hourly arrivals)."""

    hourly_rps: Annotated[
        list[Annotated[float, Field(ge=0), NUMBER, within(0, 1e9, zero=True)]], Field(min_length=24, max_length=24)
    ]
    """24 hourly arrival rates, hour 0 first: the day's shape. Hour h is sized at rate_rps × hourly_rps[h] /
    max(hourly_rps), so the busiest hour gets the peak rate rate_rps."""

    @model_validator(mode="after")
    def _some_load(self) -> RateProfileSpec:
        if max(self.hourly_rps) <= 0:
            raise ValueError("hourly_rps: every hour is 0; give at least one positive rate")
        return self


class ClassSpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    rate_rps: Positive
    """Peak arrival rate, requests per second."""
    interarrival_cv2: Annotated[float, Field(ge=0, le=1e4), NUMBER, AfterValidator(_finite)] = 1.0
    """Squared coefficient of variation of inter-arrival gaps: 1 = Poisson, > 1 bursty."""
    input_tokens: TokenStats
    output_tokens: TokenStats
    slo: SloSpec
    prefix_cache: PrefixCacheSpec | None = None
    """Prefix reuse: prefill computes only the prompt tokens the cache misses."""
    rate_profile: RateProfileSpec | None = None
    """Load over a day, for planner size --schedule (without it every hour is the peak)."""


class SpeculativeSpec(Strict):
    """Speculative decoding for the decode phase; draft_tokens and acceptance_rate default to the method's
    published figures (catalogs/speculative.yaml)."""

    method: domain.SpeculativeMethod
    """mtp (the model's multi-token-prediction head), eagle (an EAGLE draft head) or ngram (prompt lookup)."""
    draft_tokens: Annotated[int, Field(ge=1, le=MAX_DRAFT_TOKENS), WHOLE] | None = None
    """Tokens drafted per step (K); the verify step runs K+1 tokens per sequence."""
    acceptance_rate: Annotated[float, Field(ge=0, lt=1), NUMBER] | None = None
    """Probability each draft token is accepted (A, per token, until the first rejection)."""


class GrowthSpec(Strict):
    """Load growth for planner size --schedule: a purchase plan by month."""

    per_month_frac: Annotated[float, Field(ge=0, le=10), NUMBER]
    """Every class's rate grows by this share each month (0.05: 5 % a month, compounded)."""
    months: Annotated[int, Field(ge=1, le=60), WHOLE]
    """Months to plan purchases for (month 0 is today's load)."""


class HardwareSpec(Strict):
    prefill_gpus: list[str] | None = None
    """GPU ids allowed for the prefill pool (default: every priced GPU)."""
    decode_gpus: list[str] | None = None
    """GPU ids allowed for the decode pool (default: every priced GPU)."""
    links: list[str] | None = None
    """Inter-node link ids allowed to carry the KV cache (default: every inter-node link)."""


class ConstraintsSpec(Strict):
    max_gpus: dict[str, Annotated[int, Field(ge=0), WHOLE, AfterValidator(_at_most_gpus)]] = Field(default_factory=dict)
    """GPU inventory: most GPUs of each type the plan may use."""
    power_cap_kw: Positive | None = None
    """Most average power of all GPUs, kW."""
    budget_usd_per_month: Positive | None = None
    """Most spend, USD per month (730 hours)."""
    headroom_frac: Annotated[float, Field(ge=0, lt=1), NUMBER] = 0.0
    """Share of each replica's SLO-limited capacity kept free for bursts."""
    redundancy: Annotated[int, Field(ge=0, le=16), WHOLE] = 0
    """Spare replicas per pool: the SLOs hold with this many replicas of every pool out (N+k)."""
    max_gpu_types_per_role: Annotated[int, Field(ge=1, le=64), WHOLE] | None = 1
    """GPU types the pools of each role (prefill, decode, co-located) may use: 1 by default (one GPU type to buy,
    image and operate per role); null for any."""
    max_gpu_types: Annotated[int, Field(ge=1, le=64), WHOLE] | None = None
    """GPU types the whole plan may use (default: no limit beyond max_gpu_types_per_role)."""
    min_pool_utilization_frac: Annotated[float, Field(ge=0, lt=1), NUMBER] = 0.0
    """Every pool beyond the first of its role must carry at least this share of its SLO-limited capacity (a
    second decode pool at 4 % is not worth operating); 0: no floor."""
    rack_power_kw: Positive | None = None
    """Power budget of one rack, kW (your facility's figure; no default): the bill of materials then counts racks,
    floor(budget / a node's peak kW) nodes to a rack. Without it, nodes and their kW are reported, racks are not."""


class PricingSpec(Strict):
    mode: PricingMode = "on-demand"
    """on-demand list prices, reserved (a discount on them) or capex (amortized servers plus power)."""
    discount_frac: Annotated[float, Field(ge=0, lt=1), NUMBER] | None = None
    """Reserved only: discount on the on-demand price."""
    amortization_years: Positive | None = None
    """Capex only: years over which servers are amortized (default: the catalog's)."""
    usd_per_kwh: Positive | None = None
    """Capex only: electricity price (default: the catalog's)."""
    pue: Annotated[float, Field(ge=1, le=3), NUMBER] | None = None
    """Capex only: data-centre power usage effectiveness (default: the catalog's)."""
    whole_nodes: bool = False
    """GPUs are bought or rented as whole nodes (each GPU's gpus_per_node: HGX servers, 8-GPU instances): the plan
    pays for GPUs it leaves stranded on a partly used node, and the optimizer packs replicas to avoid them.
    Without it GPUs are priced one by one (the node count and stranded GPUs are still reported)."""
    provider: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """On-demand and reserved: take every GPU's list price from this provider's rows in prices.yaml (one price
    basis; GPUs it does not list are left out of the default hardware). Default: each GPU's default row."""

    @model_validator(mode="after")
    def _mode_fields(self) -> PricingSpec:
        if self.mode == "reserved" and self.discount_frac is None:
            raise ValueError("reserved pricing needs discount_frac")
        if self.mode != "reserved" and self.discount_frac is not None:
            raise ValueError("discount_frac applies to mode: reserved only")
        if self.mode == "capex" and self.provider is not None:
            raise ValueError("provider picks list prices: it applies to modes on-demand and reserved, not capex")
        return self


class WorkloadSpec(Strict):
    """A workload: the model, its request classes with their SLOs, and the sizing options."""

    model: str
    """Model id from the catalog (e.g. llama-3.1-70b)."""
    precision: Precision = "bf16"
    """Weights and KV-cache precision (fp4: NVFP4 weights with an fp8 KV cache, Blackwell GPUs)."""
    classes: Annotated[list[ClassSpec], Field(min_length=1, max_length=200)]
    """Request classes, each with its rate, lengths and SLOs."""
    hardware: HardwareSpec = Field(default_factory=HardwareSpec)
    constraints: ConstraintsSpec = Field(default_factory=ConstraintsSpec)
    pricing: PricingSpec = Field(default_factory=PricingSpec)
    objective: Objective = "cost"
    """What the plan minimizes: USD per hour, GPU count or average power."""
    engine: EngineRef | None = None
    """Serving engine profile the workload is planned for: ``NAME`` or ``NAME@VERSION`` (vllm, sglang,
    trtllm, pytorch, splitwise; ``planner catalog list engines``); default: the catalog's default
    engine. ``--engine`` overrides it."""
    speculative: SpeculativeSpec | None = None
    """Speculative decoding (mtp, eagle, ngram): fewer decode steps per output token, each costlier."""
    growth: GrowthSpec | None = None
    """Load growth over months, for planner size --schedule's purchase plan."""
    calibration: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    """A catalog overlay to apply: the directory that holds the efficiency.yaml ``planner calibrate
    fit --write`` wrote (or that file), relative to the file this workload is written in; applied
    after any --catalog-dir."""

    @model_validator(mode="after")
    def _unique_names(self) -> WorkloadSpec:
        names = [c.name for c in self.classes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"class names must be unique (repeated: {', '.join(dup)})")
        return self


def parse_workload(data: Any, origin: str, text: str = "") -> WorkloadSpec:
    if not isinstance(data, dict):
        raise InputError(f"{origin}: a workload is a YAML mapping with model and classes")
    try:
        return WorkloadSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "missing" and first["loc"][-1:] == ("slo",):
            raise InputError(
                format_validation_error(Path(origin), text, exc).replace("Field required", "missing (no latency targets)"),
                hint="add slo: {ttft_p99_ms: ..., tpot_p99_ms: ...} to each class "
                "(planner profile writes it when given --ttft-p99-ms and --tpot-p99-ms)",
            ) from None
        raise InputError(format_validation_error(Path(origin), text, exc)) from None


def calibration_dir(spec: WorkloadSpec, base: Path, origin: str) -> Path | None:
    """The overlay directory a workload's ``calibration`` entry names (relative to ``base``, the
    directory of the file the workload is written in); an InputError if it is not there."""
    if spec.calibration is None:
        return None
    check_path_text(spec.calibration, f"{origin}: calibration")
    path = Path(spec.calibration)
    path = path if path.is_absolute() else base / path
    try:
        if path.is_file():
            if path.name != "efficiency.yaml":
                raise InputError(
                    f"{origin}: calibration: {shown(spec.calibration)}: a file, not an efficiency.yaml",
                    hint="name the directory planner calibrate fit --write wrote, or its efficiency.yaml",
                )
            path = path.parent
        if not path.is_dir():
            raise InputError(
                f"{origin}: calibration: {shown(spec.calibration)}: no such directory or file (looked for {shown(path)})"
            )
        if not ((path / "efficiency.yaml").is_file() or (path / "efficiency").is_dir()):
            raise InputError(
                f"{origin}: calibration: {shown(spec.calibration)}: no efficiency.yaml in {shown(path)}",
                hint="name the directory planner calibrate fit --write wrote",
            )
    except OSError as exc:
        raise InputError(f"{origin}: calibration: {shown(spec.calibration)}: {exc.strerror}") from None
    return path


def _longest(stats: TokenStats) -> float:
    """The p99 length of a class (a histogram's: the smallest bin at or above 99% of the weight)."""
    if stats.histogram is None:
        assert stats.p99 is not None
        return stats.p99
    bins = sorted((float(t), float(w)) for t, w in stats.histogram)
    total = sum(w for _, w in bins)
    acc = 0.0
    for tokens, weight in bins:
        acc += weight
        if acc >= 0.99 * total:
            return tokens
    return bins[-1][0]


def read_workload_spec(path: Path) -> WorkloadSpec:
    text = read_text(path)
    return parse_workload(loads(text, str(path)), str(path), text)


def to_domain(spec: WorkloadSpec, catalog: domain.Catalog, origin: str = "workload") -> domain.Workload:
    """Resolve ids against the catalog and convert to SI. Default hardware: every priced GPU that
    runs the workload's precision (fp8 leaves out GPUs without fp8 tensor cores), every inter-node link."""
    models = IdIndex.models(catalog.models)  # ids, Hugging Face ids and aliases
    gpus = IdIndex("GPU", catalog.gpus)
    links = IdIndex("link", catalog.links)
    model = models.resolve(spec.model, f"{origin}: model")
    capex = spec.pricing.mode == "capex"

    def has_price(g: str) -> bool:
        """A price in the workload's mode: an on-demand list price, or (capex) a server's purchase price."""
        if capex:
            return any(s.gpu == g and s.capex_usd is not None for s in catalog.servers)
        return catalog.default_price(g) is not None

    unsupported = catalog.engine.unsupported_gpus  # GPUs the selected engine does not run on (TensorRT-LLM on AMD)
    priced = tuple(
        g
        for g, spec_g in catalog.gpus.items()
        if has_price(g) and spec_g.peak_flop_per_s(spec.precision) is not None and g not in unsupported
    )
    with_capex = sorted(g for g in catalog.gpus if capex and has_price(g))

    def gpu_list(raw: list[str] | None, field: str) -> tuple[str, ...]:
        if raw is None:
            if capex and not priced:
                raise InputError(
                    f"{origin}: pricing.mode capex: no GPU that runs {spec.precision} has a server price in the catalog"
                    + (f" (servers priced: {', '.join(with_capex)})" if with_capex else ""),
                    hint="add a servers row to prices.yaml (with its source), or use mode on-demand or reserved",
                )
            return priced
        if not raw:
            raise InputError(f"{origin}: hardware.{field}: empty list")
        out = tuple(sorted({gpus.resolve(g, f"{origin}: hardware.{field}") for g in raw}))
        unpriced = [g for g in out if capex and not has_price(g)]
        if unpriced:
            raise InputError(
                f"{origin}: hardware.{field}: {', '.join(unpriced)} "
                f"{'has' if len(unpriced) == 1 else 'have'} no server price in the catalog for pricing mode capex",
                hint=f"GPUs with a server price: {', '.join(with_capex) or 'none'}; add a servers row to prices.yaml "
                "(with its source), or use mode on-demand or reserved",
            )
        refused = [g for g in out if g in unsupported]
        if refused:
            raise InputError(
                f"{origin}: hardware.{field}: engine {catalog.engine.id} does not run on {', '.join(refused)} "
                f"({unsupported[refused[0]]})",
                hint="pick an engine that runs on it (engine: vllm or sglang, or --engine), or drop the GPU",
            )
        lacking = [g for g in out if catalog.gpus[g].peak_flop_per_s(spec.precision) is None]
        if lacking:
            raise InputError(
                f"{origin}: hardware.{field}: {', '.join(lacking)} has no {spec.precision} tensor cores",
                hint=f"drop it, or use precision bf16 (GPUs with {spec.precision}: "
                f"{', '.join(g for g, s in catalog.gpus.items() if s.peak_flop_per_s(spec.precision) is not None)})",
            )
        return out

    link_ids = (
        tuple(sorted({links.resolve(lk, f"{origin}: hardware.links") for lk in spec.hardware.links}))
        if spec.hardware.links is not None
        else tuple(k for k, v in catalog.links.items() if v.scope == "inter_node")
    )
    for lk in link_ids:
        if catalog.links[lk].scope != "inter_node":
            raise InputError(
                f"{origin}: hardware.links: {lk} is an intra-node link; the KV cache crosses nodes between pools",
                hint="use an InfiniBand, RoCE or Ethernet link",
            )
    if not link_ids:
        raise InputError(f"{origin}: hardware.links: no inter-node link to carry the KV cache")
    context = catalog.models[model].max_context_tokens
    for i, k in enumerate(spec.classes):
        prompt, output = _longest(k.input_tokens), _longest(k.output_tokens)
        field, tokens = ("input_tokens", prompt) if prompt > context else ("input_tokens + output_tokens", prompt + output)
        if tokens > context:
            raise InputError(
                f"{origin}: classes.{i} ({k.name}): {field}: {tokens:,.0f} tokens at the p99 is longer than "
                f"{model}'s context window of {context:,} tokens",
                hint="shorten the prompts, or pick a model with a longer context window",
            )
    c = spec.constraints
    seen: dict[str, str] = {}
    for raw in c.max_gpus:
        gpu = gpus.resolve(raw, f"{origin}: constraints.max_gpus")
        if gpu in seen:
            raise InputError(f"{origin}: constraints.max_gpus: {seen[gpu]!r} and {raw!r} are the same GPU ({gpu}) twice")
        seen[gpu] = raw
    return domain.Workload(
        model=model,
        precision=spec.precision,
        classes=tuple(
            domain.RequestClass(
                name=k.name,
                rate_rps=k.rate_rps,
                interarrival_cv2=k.interarrival_cv2,
                input_tokens=k.input_tokens.to_domain(),
                output_tokens=k.output_tokens.to_domain(),
                slo=k.slo.to_domain(),
                prefix_cache=None
                if k.prefix_cache is None
                else domain.PrefixCache(
                    hit_frac=k.prefix_cache.hit_frac,
                    location=k.prefix_cache.location,
                    working_set_tokens=k.prefix_cache.working_set_tokens,
                ),
                hourly_rps=None if k.rate_profile is None else tuple(k.rate_profile.hourly_rps),
            )
            for k in sorted(spec.classes, key=lambda k: k.name)
        ),
        prefill_gpus=gpu_list(spec.hardware.prefill_gpus, "prefill_gpus"),
        decode_gpus=gpu_list(spec.hardware.decode_gpus, "decode_gpus"),
        links=link_ids,
        constraints=domain.Constraints(
            max_gpus={gpus.resolve(g, f"{origin}: constraints.max_gpus"): v for g, v in sorted(c.max_gpus.items())},
            power_cap_w=None if c.power_cap_kw is None else c.power_cap_kw * W_PER_KW,
            budget_usd_per_hour=None if c.budget_usd_per_month is None else c.budget_usd_per_month / HOURS_PER_MONTH,
            headroom_frac=c.headroom_frac,
            redundancy=c.redundancy,
            max_gpu_types_per_role=c.max_gpu_types_per_role,
            max_gpu_types=c.max_gpu_types,
            min_pool_utilization_frac=c.min_pool_utilization_frac,
            rack_power_w=None if c.rack_power_kw is None else c.rack_power_kw * W_PER_KW,
        ),
        pricing=domain.Pricing(
            mode=spec.pricing.mode,
            discount_frac=spec.pricing.discount_frac or 0.0,
            amortization_years=spec.pricing.amortization_years,
            usd_per_kwh=spec.pricing.usd_per_kwh,
            pue=spec.pricing.pue,
            whole_nodes=spec.pricing.whole_nodes,
        ),
        objective=spec.objective,
        speculative=None if spec.speculative is None else speculative(spec.speculative, catalog, model, origin),
        growth=None
        if spec.growth is None
        else domain.Growth(per_month_frac=spec.growth.per_month_frac, months=spec.growth.months),
    )


def speculative(spec: SpeculativeSpec, catalog: domain.Catalog, model: str, origin: str = "workload") -> domain.Speculative:
    """The workload's speculative decoding, with the method's published defaults for what it leaves out."""
    from planner.io.speculative import resolve_speculative

    return resolve_speculative(
        spec.method,
        spec.draft_tokens,
        spec.acceptance_rate,
        catalog,
        model,
        lambda field: f"{origin}: speculative.{field}",
    )
