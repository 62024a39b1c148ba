"""Pool-level serving metrics of one replica type for one request class (docs/design.md §3).

Every function here is used twice: by the optimizer, to precompute the largest per-replica load
that still meets a class's SLO (so the MIP stays linear), and by the evaluation of a plan, which
must then find the same SLOs met. Prompts of a pool of ``c`` replicas wait in one queue (a
least-loaded router: G/G/c, Allen–Cunneen); ``c = 1`` is the bound for a replica alone.

Prefill replica (TTFT): a G/G/1 queue whose service time is the prefill of one prompt (lengths from
the class's quantile grid; Kingman/Allen–Cunneen wait with the class's inter-arrival c_a²);
``TTFT = W + S(L) + KV transfer(L) + first decode step``, its percentiles those of the sum (W with the
exponential tail, L over the quantile grid). With speculation the first decode step is a whole iteration,
``E × TPOT``, whose end the first token waits for.

Prefix cache (a class's ``prefix_cache``, hit share ``h``): a grid prompt of ``L`` tokens finds its first
``c = min(h·L, L − 1)`` tokens' KV cached (at least one token is computed), so its prefill computes ``L − c``
tokens with causal attention work ``L² − c²`` (the missed tokens attend over the whole prompt). The KV the decode
pool receives is all ``L`` tokens' when the cache lives on the prefill pool only (``location: prefill``: the decode
pool has no cache), and the ``L − c`` missed tokens' when both pools cache (``both``). Each replica of a pool that
holds the cache (prefill, decode with ``both``, co-located) reserves ``working_set_tokens`` of its KV memory for it.

Decode replica (TPOT): continuous batching up to ``max_batch`` sequences. Occupancy is Poisson with
mean ``n̄ = λ·E[OSL]·T_step`` (Little's law, M/G/∞); the ``p`` quantile of the occupancy must fit
the batch cap and the KV memory; ``TPOT_p = T_step(n_p)``, ``TPOT_p50 = T_step(n̄)``.

Speculative decoding (the replica's ``speculative``: K drafts, per-token acceptance A): a decode iteration is
the drafting plus one verify step over ``K + 1`` tokens per sequence, ``T_it = T_verify + K·(L_d/n_L)·T_step``
(:func:`draft_cost_frac`, an assumption), and emits ``E = (1 − A^(K+1))/(1 − A)`` tokens per sequence on
average. ``TPOT = T_it/E`` (:meth:`Replica.decode_s`), a sequence stays ``E[OSL]/E`` iterations, so
``n̄ = λ·(E[OSL]/E)·T_it = λ·E[OSL]·TPOT``: every formula above holds with the step time per output token.
Each sequence also holds its K draft tokens' KV (:func:`kv_fits`).

Co-located replica (both phases, chunked prefill): each iteration decodes up to ``b`` sequences
and, while prompts wait, prefills a chunk of ``B − b`` prompt tokens (B = token budget). An
iteration that carries a chunk takes ``T_mix`` > ``T_decode``: this is the interference. Any
iteration may carry a chunk, so ``TPOT_p = T_mix``; prompts are served at ``(B − b)/T_mix``
tokens/s, so ``TTFT = W + (L/(B − b))·T_mix`` with the same G/G/1 queue. With a prefix cache the chunks cover
the ``L − c`` missed tokens only: ``TTFT = W + ((L − c)/(B − b))·T_mix``, each chunk token attending over
``Σ(L² − c²)/Σ(L − c)`` tokens on average (``E[L²]/E[L]`` without a cache). With speculation both iterations
carry the verify steps and the drafting, a request decodes in ``OSL/E`` of them, and TPOT is the iteration
time over ``E``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from planner.domain import EngineSpec, LinkSpec, MemoryFit, ModelSpec, Precision, RequestClass, Role, Speculative, StepEstimate
from planner.perf.distributions import second_moment_ratio
from planner.perf.queueing import (
    decreasing_root,
    max_mean_occupancy,
    max_rate_for_quantile,
    normal_sf,
    occupancy_quantile,
    sum_quantile_s,
    wait_tail,
)
from planner.perf.roofline import Hardware, step
from planner.perf.transfer import kv_transfer_s, kv_wire_s

MEDIAN = 0.5


def draft_cost_frac(spec: Speculative | None, model: ModelSpec) -> float:
    """The drafting of one speculative iteration as a share of a target decode step at the same batch and contexts:
    ``K × draft_layers / num_layers`` (K draft tokens, each one pass of the drafter's ``draft_layers`` layers).
    A planner assumption, not a measurement: the drafter is costed as that share of the target's whole step (its
    GEMMs, weight and KV reads, communication and per-step overhead alike); n-gram lookup (0 layers) costs nothing."""
    if spec is None or spec.draft_layers <= 0:
        return 0.0
    return spec.draft_tokens * spec.draft_layers / model.num_layers


def tokens_per_step(spec: Speculative | None) -> float:
    """Output tokens one decode iteration emits per sequence, on average: 1, or the speculative ``E``."""
    return 1.0 if spec is None else spec.tokens_per_step


def query_tokens(spec: Speculative | None) -> int:
    """Tokens per sequence one target decode step runs: 1, or the ``K + 1`` of a verify step."""
    return 1 if spec is None else spec.draft_tokens + 1


def draft_kv_tokens(spec: Speculative | None) -> int:
    """KV tokens a running sequence holds beyond its context: the ``K`` draft tokens of a verify step."""
    return 0 if spec is None else spec.draft_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Replica:
    """One replica type: the model on ``tp`` GPUs of one kind, with its memory fit, and the speculative decoding
    its decode iterations run (``None``: plain decoding, one token per sequence per step).

    With ``speculative`` a decode iteration is the drafting (:func:`draft_cost_frac` of a plain decode step) plus
    one verify step over ``K + 1`` tokens per sequence (each sequence's KV read once), and it emits
    ``E = tokens_per_step`` tokens per sequence on average: :meth:`decode_iteration_s` is its time,
    :meth:`decode_s` the time per output token (``T_iteration / E``), what TPOT and Little's law take."""

    model: ModelSpec
    hw: Hardware
    tp: int
    precision: Precision
    memory: MemoryFit
    engine: EngineSpec
    speculative: Speculative | None = None
    memo: dict[tuple[object, ...], object] = field(default_factory=dict, compare=False, repr=False)
    """Results of the pure functions below for this replica, keyed by their other arguments (and by
    :attr:`speculative_key` where the speculative settings change them): the steps themselves (one prefill of a
    grid prompt serves every link's service time and every pool of the replica type) and the pool-level figures."""

    @property
    def tokens_per_step(self) -> float:
        """Tokens a decode iteration emits per sequence on average (1 without speculation)."""
        return tokens_per_step(self.speculative)

    @property
    def draft_kv_tokens(self) -> int:
        """KV tokens each running sequence holds beyond its context (the K drafts; 0 without speculation)."""
        return draft_kv_tokens(self.speculative)

    @property
    def speculative_key(self) -> tuple[object, ...] | None:
        return None if self.speculative is None else self.speculative.key

    def prefill_step(self, tokens: float, cached_tokens: float = 0.0) -> StepEstimate:
        """Prefill of one ``tokens``-token prompt whose first ``cached_tokens`` have their KV cached: the rest are
        computed, attending over the whole prompt (causal work ``L² − c²``)."""
        c = min(max(0.0, cached_tokens), tokens)
        return self._step(
            ("prefill_step", tokens, cached_tokens),
            prefill_tokens=tokens - c,
            prefill_sq_tokens=tokens * tokens - c * c,
            num_prompts=1,
        )

    def _step(self, key: tuple[object, ...], **shape: float) -> StepEstimate:
        """:func:`step` of this replica for the given step shape, memoised under ``key``."""
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = step(self.model, self.hw, tp=self.tp, precision=self.precision, **shape)  # type: ignore[arg-type]
        return got  # type: ignore[return-value]

    def decode_step(self, batch: float, context_tokens: float, query_tokens: int = 1) -> StepEstimate:
        """One target decode step of ``batch`` sequences (``query_tokens`` > 1: a speculative verify step of that many
        tokens per sequence)."""
        b = max(1, math.ceil(batch))
        return self._step(
            ("decode_step", b, context_tokens, query_tokens),
            decode_batch=b,
            decode_context_tokens=b * context_tokens,
            decode_query_tokens=query_tokens,
        )

    def verify_step(self, batch: float, context_tokens: float) -> StepEstimate:
        """The target step of a decode iteration: a verify step over ``K + 1`` tokens per sequence with speculation,
        else the plain decode step."""
        return self.decode_step(batch, context_tokens, query_tokens(self.speculative))

    def draft_s(self, batch: float, context_tokens: float) -> float:
        """Drafting time of one iteration of ``batch`` sequences: :func:`draft_cost_frac` of a plain decode step."""
        frac = draft_cost_frac(self.speculative, self.model)
        return 0.0 if frac <= 0 else frac * self.decode_step(batch, context_tokens).latency_s

    def decode_iteration_s(self, batch: float, context_tokens: float) -> float:
        """One decode iteration of ``batch`` sequences of ``context_tokens`` each: drafting plus verify step (without
        speculation, the decode step)."""
        if self.speculative is None:
            return self.decode_step(batch, context_tokens).latency_s
        return self.verify_step(batch, context_tokens).latency_s + self.draft_s(batch, context_tokens)

    def mixed_step(self, chunk_tokens: float, attended_tokens: float, batch: int, context_tokens: float) -> StepEstimate:
        """A prefill chunk and ``batch`` decoding sequences in one step (each verifying ``K + 1`` tokens with
        speculation; the drafting is :meth:`draft_s`, added by :meth:`mixed_s`)."""
        return self._step(
            ("mixed_step", chunk_tokens, attended_tokens, batch, context_tokens, self.speculative_key),
            prefill_tokens=chunk_tokens,
            prefill_sq_tokens=chunk_tokens * attended_tokens,
            decode_batch=batch,
            decode_context_tokens=batch * context_tokens,
            decode_query_tokens=query_tokens(self.speculative),
        )

    def prefill_s(self, tokens: float, cached_tokens: float = 0.0) -> float:
        """The replica's busy time per prompt (its prompt throughput's inverse); under data-parallel attention the
        prompt's own latency is :meth:`prompt_latency_s`."""
        return self.prefill_step(tokens, cached_tokens).latency_s

    @property
    def attention_groups(self) -> int:
        """Data-parallel attention groups (1: plain tensor parallelism): each prefills its own prompts."""
        return max(1, self.hw.attention_dp)

    def chunk_s(self, chunk_tokens: float, attended_tokens: float, riders: int, context_tokens: float, busy: str) -> float:
        """One iteration carrying a ``chunk_tokens`` prompt chunk and ``riders`` decodes, as one prompt sees it.
        ``busy`` says where the replica's other attention groups are (data-parallel attention; with one group all
        three are :meth:`mixed_s`): ``"spread"`` the chunk's work spread over every group (the throughput view,
        :meth:`mixed_s`), ``"alone"`` the chunk on its own group and the others without a prompt, ``"all"`` every
        group prefilling a chunk of its own at once (the step every group then waits for)."""
        dp = self.attention_groups
        if dp == 1 or busy == "spread":
            return self.mixed_s(chunk_tokens, attended_tokens, riders, context_tokens)
        n = 1 if busy == "alone" else dp
        key = ("chunk_step", chunk_tokens, attended_tokens, riders, context_tokens, busy, self.speculative_key)
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = step(
                self.model,
                self.hw,
                tp=self.tp,
                precision=self.precision,
                prefill_tokens=n * chunk_tokens,
                prefill_sq_tokens=n * chunk_tokens * attended_tokens,
                decode_batch=riders,
                decode_context_tokens=riders * context_tokens,
                decode_query_tokens=query_tokens(self.speculative) if riders else 1,
                num_prompts=n,
                prompt_groups=n,
            )
        t: float = got.latency_s  # type: ignore[attr-defined]
        return t + self.draft_s(riders, context_tokens) if self.speculative is not None and riders > 0 else t

    def prompt_latency_s(self, tokens: float, cached_tokens: float = 0.0, busy_frac: float = 1.0) -> float:
        """Latency of one prompt's prefill (no chunking), its ``cached_tokens`` first tokens cached. Under data-parallel
        attention the prompt runs on one attention group (:func:`planner.perf.roofline.step`'s ``prompt_groups``)
        while ``busy_frac`` of the other groups prefill prompts of their own (interpolated between the prompt alone
        and every group busy: the routed experts take all their tokens); with one group, :meth:`prefill_s`."""
        if self.attention_groups == 1:
            return self.prefill_s(tokens, cached_tokens)
        c = min(max(0.0, cached_tokens), tokens)
        sq = tokens * tokens - c * c
        alone = self.chunk_s(tokens - c, sq / max(tokens - c, 1e-9), 0, 0.0, "alone")
        full = self.chunk_s(tokens - c, sq / max(tokens - c, 1e-9), 0, 0.0, "all")
        return alone + (full - alone) * min(max(busy_frac, 0.0), 1.0)

    def decode_s(self, batch: float, context_tokens: float) -> float:
        """Seconds per output token of each of ``batch`` sequences of ``context_tokens`` each (per sequence, not the
        batch's sum: the simulator's ``Steps.decode_batch_s`` takes the sum): one decode step, or with speculation
        one iteration divided by the tokens it emits, ``T_iteration / E``. TPOT at that batch."""
        if self.speculative is None:
            return self.decode_step(batch, context_tokens).latency_s
        return self.decode_iteration_s(batch, context_tokens) / self.tokens_per_step

    def mixed_s(self, chunk_tokens: float, attended_tokens: float, batch: int, context_tokens: float) -> float:
        """One chunked-prefill iteration: the mixed step, plus the drafting for its ``batch`` decoding sequences."""
        t = self.mixed_step(chunk_tokens, attended_tokens, batch, context_tokens).latency_s
        return t + self.draft_s(batch, context_tokens) if self.speculative is not None and batch > 0 else t


def request_fixed_s(rep: Replica) -> float:
    """Latency before a request's first token outside the GPU (the engine's ``request_fixed_s``; a drawn prefill
    multiplier scales it with the prefill steps: the TTFT spread it is drawn from was measured on the whole TTFT)."""
    fixed = rep.hw.efficiency.for_precision(rep.precision).request_fixed_s
    return fixed if rep.hw.prefill_time_scale == 1.0 else fixed * rep.hw.prefill_time_scale


def mean_context_tokens(cls: RequestClass) -> float:
    """Mean KV length of a decoding sequence: its prompt plus half its output."""
    return cls.input_tokens.mean + cls.output_tokens.mean / 2.0


# ----------------------------------------------------------------------------------- prefix cache


def cached_tokens(cls: RequestClass, prompt_tokens: float) -> float:
    """Tokens of a ``prompt_tokens``-token prompt of ``cls`` whose KV its prefix cache holds: ``hit_frac·L``,
    leaving at least one token to compute (0 without a cache)."""
    pc = cls.prefix_cache
    if pc is None or pc.hit_frac <= 0:
        return 0.0
    return max(0.0, min(pc.hit_frac * prompt_tokens, prompt_tokens - 1.0))


def _hits(cls: RequestClass) -> bool:
    """Whether the class has a prefix cache that hits at all (a zero hit share computes like no cache)."""
    return cls.prefix_cache is not None and cls.prefix_cache.hit_frac > 0


def mean_cached_tokens(cls: RequestClass) -> float:
    """Mean cached prompt tokens per request of ``cls`` (over its quantile grid; 0 without a cache)."""
    if not _hits(cls):
        return 0.0
    return float(np.mean([cached_tokens(cls, L) for L in cls.input_tokens.grid]))


def sent_tokens(cls: RequestClass, prompt_tokens: float) -> float:
    """Prompt tokens whose KV crosses the link to the decode pool: every token when the decode pool keeps no
    cache (no prefix cache, or ``location: prefill``), the missed ones when both pools cache (``both``)."""
    pc = cls.prefix_cache
    if pc is None or pc.location != "both":
        return prompt_tokens
    return prompt_tokens - cached_tokens(cls, prompt_tokens)


def mean_sent_tokens(cls: RequestClass) -> float:
    """Mean prompt tokens per request whose KV crosses the link (the mean prompt without a saving)."""
    pc = cls.prefix_cache
    if pc is None or pc.location != "both":
        return cls.input_tokens.mean
    return cls.input_tokens.mean - mean_cached_tokens(cls)


def cache_pools(cls: RequestClass) -> tuple[Role, ...]:
    """The roles whose replicas hold the class's prefix cache (none without one): the prefill and co-located
    pools always, the decode pool with ``location: both``."""
    pc = cls.prefix_cache
    if pc is None:
        return ()
    return ("prefill", "decode", "colocated") if pc.location == "both" else ("prefill", "colocated")


def cache_reserve_tokens(cls: RequestClass, role: Role) -> float:
    """KV tokens a replica of ``role`` reserves for the class's cached prefixes (``working_set_tokens`` where
    the pool holds the cache, else 0)."""
    pc = cls.prefix_cache
    return pc.working_set_tokens if pc is not None and role in cache_pools(cls) else 0.0


def kv_fits(rep: Replica, cls: RequestClass, batch: float, role: Role = "decode") -> bool:
    """``batch`` sequences at full length fit, and so does the single longest (p99) request, beside the
    prefix cache's working set where a replica of ``role`` holds it; with speculation each sequence also
    holds its ``K`` draft tokens' KV."""
    per_seq = cls.input_tokens.mean + cls.output_tokens.mean + rep.draft_kv_tokens
    longest = cls.input_tokens.p99 + cls.output_tokens.p99 + rep.draft_kv_tokens
    return rep.memory.max_kv_tokens - cache_reserve_tokens(cls, role) >= max(batch * per_seq, longest)


def prefill_fits(rep: Replica, cls: RequestClass) -> bool:
    """A prefill replica of a class with a prefix cache holds the cache's working set beside the longest (p99)
    prompt being prefilled. (A class without a cache is not checked here, as before prefix caching: ``planner
    check``'s MEM001 tests the p99 prompt of every class.)"""
    if cls.prefix_cache is None:
        return True
    return rep.memory.max_kv_tokens - cache_reserve_tokens(cls, "prefill") >= cls.input_tokens.p99


def acceptance_spread(rep: Replica, cls: RequestClass, p: float) -> float:
    """How far above its mean a request's TPOT lies at quantile ``p`` from the acceptance draws alone, as a share
    of the mean (0 without speculation, or for ``p <= 0.5``). A request decodes its ``L − 1`` tokens after the
    first in ``N ≈ (L − 1)/E`` iterations whose yields have variance ``σ²`` (:attr:`Speculative.tokens_per_step_variance`),
    so ``Var N ≈ (L − 1)·σ²/E³`` (renewal counting) and its TPOT's relative spread is ``s_L = σ/√((L − 1)·E)``;
    the ``p`` quantile of ``Z·s_L`` mixed over the class's OSL grid (normal approximation)."""
    spec = rep.speculative
    if spec is None or p <= MEDIAN:
        return 0.0
    key = ("acceptance_spread", cls.output_tokens, p, spec.key)
    if key not in rep.memo:
        rep.memo[key] = acceptance_spread_over(spec, np.array(cls.output_tokens.grid, dtype=float), p)
    return rep.memo[key]  # type: ignore[return-value]


def acceptance_spread_over(spec: Speculative | None, lengths: np.ndarray, p: float) -> float:
    """:func:`acceptance_spread` for requests of the output ``lengths`` (equally likely)."""
    if spec is None or p <= MEDIAN:
        return 0.0
    sigma = math.sqrt(spec.tokens_per_step_variance)
    after_first = lengths - 1.0
    s = np.where(after_first >= 1.0, sigma / np.sqrt(np.maximum(after_first, 1.0) * spec.tokens_per_step), 0.0)
    top = float(s.max())
    if top <= 0:
        return 0.0
    safe = np.where(s > 0, s, 1.0)

    def exceed(x: float) -> float:
        return float(np.where(s > 0, normal_sf(x / safe), 0.0).mean())

    lo, hi = 0.0, 10.0 * top
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if exceed(mid) > 1.0 - p:
            lo = mid
        else:
            hi = mid
    return hi


# ---------------------------------------------------------------------------------------- prefill


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefillService:
    """Prefill of each prompt of the class's quantile grid, and the KV transfer exposed after it."""

    service_s: np.ndarray  # prefill time per grid prompt (the GPU's busy time)
    exposed_s: np.ndarray  # prefill + exposed KV transfer per grid prompt (what TTFT adds to the wait)
    pace_s: np.ndarray | None = None
    """Per grid prompt, the time the replica's slower stage holds it: the GPU's prefill or the NIC ports' wire time
    of its KV (a prefill replica is a two-stage line; prompts queue at the pace of the slower stage). None: the
    prefill's."""
    idle_saving_s: np.ndarray | None = None
    """Under data-parallel attention, per grid prompt, how much shorter its prefill is when the replica's other
    attention groups are idle than when each prefills a prompt of its own (``exposed_s`` holds the latter);
    :func:`prefill_ttft` takes the share of it that the replica's utilization leaves. None: one attention group."""

    @property
    def mean_s(self) -> float:
        return float(self.service_s.mean())

    @property
    def cv2(self) -> float:
        m = self.mean_s
        return float(self.service_s.var() / (m * m)) if m > 0 else 0.0

    @property
    def _pace(self) -> np.ndarray:
        return self.service_s if self.pace_s is None else self.pace_s

    @property
    def pace_mean_s(self) -> float:
        """Mean time a prompt holds the replica's slower stage: what the prompt queue is served at."""
        return float(self._pace.mean())

    @property
    def pace_cv2(self) -> float:
        m = self.pace_mean_s
        return float(self._pace.var() / (m * m)) if m > 0 else 0.0

    def at(self, p: float) -> float:
        """``p`` quantile of prefill + KV time alone (no queueing)."""
        return sum_quantile_s(self.exposed_s, 0.0, 0.0, p)


def prefill_service(rep: Replica, cls: RequestClass, link: LinkSpec | None) -> PrefillService:
    key = ("prefill_service", cls.input_tokens, cls.prefix_cache, None if link is None else link.id)
    if key not in rep.memo:
        rep.memo[key] = _prefill_service(rep, cls, link)
    return rep.memo[key]  # type: ignore[return-value]


def _prefill_service(rep: Replica, cls: RequestClass, link: LinkSpec | None) -> PrefillService:
    lengths = cls.input_tokens.grid
    times = np.array([rep.prefill_s(L, cached_tokens(cls, L)) for L in lengths])
    if link is None:
        kv = np.zeros_like(times)
        wire = np.zeros_like(times)
    else:
        wire = np.array(
            [
                kv_wire_s(rep.model, link, rep.engine, precision=rep.precision, prompt_tokens=sent_tokens(cls, L), tp=rep.tp)
                for L in lengths
            ]
        )
        kv = np.array(
            [
                kv_transfer_s(
                    rep.model,
                    link,
                    rep.engine,
                    precision=rep.precision,
                    prompt_tokens=sent_tokens(cls, L),
                    tp=rep.tp,
                    prefill_s=t,
                )
                for L, t in zip(lengths, times, strict=True)
            ]
        )
    # The engine's latency outside the GPU (API server, tokenization) adds to TTFT, not to busy time. A pipelined
    # replica (pp stages) takes a new prompt every 1/pp of a prompt's latency (roofline.pipeline_step): its busy time
    # per request is times/pp, while each prompt still waits out its whole latency.
    busy = times / rep.hw.pp if rep.hw.pp > 1 else times
    # Under data-parallel attention a prompt is prefilled by one attention group (Replica.prompt_latency_s): its
    # latency is longer than the replica's busy time per prompt, most when every group holds a prompt (what
    # exposed_s takes, the bound prefill_max_rate sizes against).
    saving = None
    if rep.attention_groups > 1:
        full = np.array([rep.prompt_latency_s(L, cached_tokens(cls, L), 1.0) for L in lengths])
        alone = np.array([rep.prompt_latency_s(L, cached_tokens(cls, L), 0.0) for L in lengths])
        times, saving = full, full - alone
    return PrefillService(
        service_s=busy, exposed_s=times + kv + request_fixed_s(rep), pace_s=np.maximum(busy, wire), idle_saving_s=saving
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    p50_s: float
    pct_s: float  # at the SLO's percentile
    utilization_frac: float


def prefill_ttft(
    svc: PrefillService, cls: RequestClass, rate_per_replica: float, first_step_s: float, servers: int = 1
) -> Latency:
    """TTFT = wait + prefill + exposed KV transfer + first decode step, quantiles of the sum.
    ``servers`` replicas share one queue (a least-loaded router): G/G/c."""
    c, theta = wait_tail(rate_per_replica * servers, svc.pace_mean_s, svc.pace_cv2, cls.interarrival_cv2, servers)
    offsets = svc.exposed_s + first_step_s
    if svc.idle_saving_s is not None:  # the other attention groups are busy the utilization's share of the time
        offsets = offsets - svc.idle_saving_s * (1.0 - min(1.0, rate_per_replica * svc.mean_s))
    return Latency(
        p50_s=sum_quantile_s(offsets, c, theta, MEDIAN),
        pct_s=sum_quantile_s(offsets, c, theta, cls.slo.ttft_quantile),
        utilization_frac=min(1.0, rate_per_replica * svc.mean_s),
    )


def prefill_max_rate(svc: PrefillService, cls: RequestClass, first_step_s: float, servers: int = 1) -> float:
    """Largest per-replica rate whose TTFT at the SLO percentile meets the target (0 if none), in a
    pool of ``servers`` replicas sharing one queue."""

    def at(offsets: np.ndarray) -> float:
        pooled = max_rate_for_quantile(
            svc.pace_mean_s, svc.pace_cv2, cls.interarrival_cv2, offsets, cls.slo.ttft_quantile, cls.slo.ttft_s, servers
        )
        return pooled / servers

    full = svc.exposed_s + first_step_s
    if svc.idle_saving_s is None:
        return at(full) * (1 - 1e-6)

    # Data-parallel attention: a prompt's latency grows with the utilization (prefill_ttft), so the largest rate is
    # the fixed point r = at(offsets at utilization r·mean), found by bisection between every group busy (lo, a
    # rate that meets the target) and the others idle (hi, a bound).
    def offsets(rate: float) -> np.ndarray:
        return full - svc.idle_saving_s * (1.0 - min(1.0, rate * svc.mean_s))  # type: ignore[operator]

    lo, hi = at(full), at(offsets(0.0))
    for _ in range(40):
        if hi - lo <= 1e-6 * max(hi, 1e-12):
            break
        mid = 0.5 * (lo + hi)
        if at(offsets(mid)) >= mid:
            lo = mid
        else:
            hi = mid
    return lo * (1 - 1e-6)


# ----------------------------------------------------------------------------------------- decode


def decode_max_rate(rep: Replica, cls: RequestClass, max_batch: int) -> float:
    """Largest per-replica rate whose occupancy quantile fits ``max_batch`` and whose TPOT at the
    SLO percentile meets the target (0 if the cap is too slow or does not fit in memory). With speculation the
    TPOT at the cap plus the acceptance spread (:func:`acceptance_spread`) must meet it, which bounds what
    :func:`decode_tpot` predicts at any load this rate allows."""
    ctx = mean_context_tokens(cls)
    t_cap = rep.decode_s(max_batch, ctx)
    spread = acceptance_spread(rep, cls, cls.slo.tpot_quantile)
    if t_cap * (1.0 + spread) > cls.slo.tpot_s or not kv_fits(rep, cls, max_batch, "decode"):
        return 0.0
    return max_mean_occupancy(max_batch, cls.slo.tpot_quantile) / (cls.output_tokens.mean * t_cap)


def decode_occupancy(rep: Replica, cls: RequestClass, rate_per_replica: float, max_batch: int) -> float:
    """Mean sequences in the replica: the Little's-law fixed point ``n̄ = λ·E[OSL]·T_step(n̄)``
    (docs/design.md §3), found by iterating up from one sequence; it never exceeds the bound at the cap's
    step time, ``λ·E[OSL]·T_step(max_batch)``, which sizes the capacity."""
    ctx = mean_context_tokens(cls)
    load = rate_per_replica * cls.output_tokens.mean
    bound = load * rep.decode_s(max_batch, ctx)
    n = load * rep.decode_s(1, ctx)
    for _ in range(200):
        nxt = load * rep.decode_s(max(n, 1.0), ctx)
        if nxt > bound or abs(nxt - n) <= 1e-9 * max(1.0, n):
            return min(nxt, bound)
        n = nxt
    return min(n, bound)


def decode_tpot(rep: Replica, cls: RequestClass, rate_per_replica: float, max_batch: int) -> Latency:
    ctx = mean_context_tokens(cls)
    n_mean = decode_occupancy(rep, cls, rate_per_replica, max_batch)
    if occupancy_quantile(n_mean, cls.slo.tpot_quantile) > max_batch * (1 + 1e-9):
        return Latency(p50_s=math.inf, pct_s=math.inf, utilization_frac=1.0)
    n_p = min(max_batch, occupancy_quantile(n_mean, cls.slo.tpot_quantile))
    p50 = rep.decode_s(max(n_mean, 1.0), ctx)
    pct = rep.decode_s(max(n_p, 1.0), ctx)
    if rep.speculative is not None:
        # Two spreads around the median: the batch size's and the acceptance draws', combined in quadrature.
        pct = p50 * (1.0 + math.hypot(pct / p50 - 1.0, acceptance_spread(rep, cls, cls.slo.tpot_quantile)))
    return Latency(p50_s=p50, pct_s=pct, utilization_frac=min(1.0, n_mean / max_batch))


# -------------------------------------------------------------------------------------- co-located


@dataclass(frozen=True, slots=True, kw_only=True)
class Colocated:
    t_mix_s: float  # iteration with a full prefill chunk and max_batch decodes (with speculation: verifies + drafting)
    t_decode_s: float  # iteration with decodes only, at max_batch
    chunk_tokens: int
    tokens_per_step: float = 1.0  # output tokens an iteration emits per decoding sequence (E; 1 without speculation)


def colocated_steps(rep: Replica, cls: RequestClass, max_batch: int, token_budget: int) -> Colocated | None:
    chunk = token_budget - max_batch
    if chunk <= 0:
        return None
    key = (
        "colocated_steps",
        cls.input_tokens,
        cls.prefix_cache,
        cls.output_tokens.mean,
        max_batch,
        token_budget,
        rep.speculative_key,
    )
    if key not in rep.memo:
        rep.memo[key] = _colocated_steps(rep, cls, max_batch, chunk)
    return rep.memo[key]  # type: ignore[return-value]


def chunk_attended_tokens(cls: RequestClass) -> float:
    """Mean tokens a computed prompt token of a chunked prefill attends over: ``E[L²]/E[L]``, or with a prefix
    cache ``Σ(L² − c²)/Σ(L − c)`` over the grid (only the missed tokens are computed, over the whole prompt)."""
    if not _hits(cls):
        return second_moment_ratio(cls.input_tokens)
    g = np.array(cls.input_tokens.grid)
    c = np.array([cached_tokens(cls, L) for L in cls.input_tokens.grid])
    return float((g * g - c * c).sum() / (g - c).sum())


def computed_prompt_tokens(cls: RequestClass) -> np.ndarray:
    """Prompt tokens each grid prompt computes (its length less the cached prefix)."""
    g = np.array(cls.input_tokens.grid)
    if not _hits(cls):
        return g
    return np.asarray(g - np.array([cached_tokens(cls, L) for L in cls.input_tokens.grid]))


def _colocated_steps(rep: Replica, cls: RequestClass, max_batch: int, chunk: int) -> Colocated:
    ctx = mean_context_tokens(cls)
    attended = chunk_attended_tokens(cls)
    return Colocated(
        t_mix_s=rep.mixed_s(chunk, attended, max_batch, ctx),
        t_decode_s=rep.decode_iteration_s(max_batch, ctx),
        chunk_tokens=chunk,
        tokens_per_step=rep.tokens_per_step,
    )


def colocated_mixed_step(rep: Replica, cls: RequestClass, max_batch: int, token_budget: int) -> StepEstimate | None:
    """The iteration a co-located replica is busy with: a full prefill chunk and ``max_batch`` decodes
    (the step whose latency is ``Colocated.t_mix_s``)."""
    chunk = token_budget - max_batch
    if chunk <= 0:
        return None
    return rep.mixed_step(chunk, chunk_attended_tokens(cls), max_batch, mean_context_tokens(cls))


def _colocated_service(co: Colocated, cls: RequestClass) -> tuple[float, float, np.ndarray]:
    """Prompt service time in a co-located replica: mean, c_s², per grid prompt (its computed tokens' chunks)."""
    g = computed_prompt_tokens(cls) * (co.t_mix_s / co.chunk_tokens)
    mean = float(g.mean())
    return mean, (float(g.var() / mean**2) if mean > 0 else 0.0), g


def _iterations(cls: RequestClass, co: Colocated) -> np.ndarray:
    """Decode iterations of each request of the OSL grid: ``OSL / E`` (at least one)."""
    return np.maximum(np.round(np.array(cls.output_tokens.grid) / co.tokens_per_step), 1.0)


def _tpot_quantile(cls: RequestClass, co: Colocated, chunk_frac: float, p: float) -> float:
    """``p`` quantile of a request's TPOT when each of its ``n = OSL/E`` iterations carries a prefill chunk
    with probability ``chunk_frac`` (binomial count, normal approximation, mixed over the OSL grid):
    ``TPOT = (T_decode + (T_mix − T_decode)·K/n) / E`` (E = 1 without speculation)."""
    e = co.tokens_per_step
    delta = co.t_mix_s - co.t_decode_s
    f = min(max(chunk_frac, 0.0), 1.0)
    if delta <= 0 or f <= 0:
        return co.t_decode_s / e
    if f >= 1:
        return co.t_mix_s / e
    n = _iterations(cls, co)
    sd = np.sqrt(n * f * (1 - f))

    def exceed(t: np.ndarray) -> np.ndarray:
        k = (t[:, None] * e - co.t_decode_s) / delta * n[None, :]
        return np.asarray(normal_sf((k - n * f) / sd).mean(axis=1))

    return decreasing_root(exceed, co.t_decode_s / e, co.t_mix_s / e, 1 - p)


def colocated_metrics(
    rep: Replica, cls: RequestClass, co: Colocated, rate_per_replica: float, max_batch: int, servers: int = 1
) -> tuple[Latency, Latency]:
    """(TTFT, TPOT) of a co-located replica at ``rate_per_replica`` (prompts queue for ``servers``)."""
    mean, cv2, service = _colocated_service(co, cls)
    rho = rate_per_replica * mean
    if rho >= 1:
        return _SATURATED, _SATURATED
    c, theta = wait_tail(rate_per_replica * servers, mean, cv2, cls.interarrival_cv2, servers)
    offsets = service + request_fixed_s(rep)
    ttft = Latency(
        p50_s=sum_quantile_s(offsets, c, theta, MEDIAN),
        pct_s=sum_quantile_s(offsets, c, theta, cls.slo.ttft_quantile),
        utilization_frac=rho,
    )
    t_avg = rho * co.t_mix_s + (1 - rho) * co.t_decode_s
    n_mean = rate_per_replica * (cls.output_tokens.mean / co.tokens_per_step) * t_avg  # Little: λ·(OSL/E)·T_iteration
    if occupancy_quantile(n_mean, cls.slo.tpot_quantile) > max_batch * (1 + 1e-9):
        return ttft, _SATURATED
    p50 = _tpot_quantile(cls, co, rho, MEDIAN)
    pct = _tpot_quantile(cls, co, rho, cls.slo.tpot_quantile)
    if rep.speculative is not None:  # the acceptance draws' spread, in quadrature with the chunks'
        pct = p50 + math.hypot(pct - p50, p50 * acceptance_spread(rep, cls, cls.slo.tpot_quantile))
    tpot = Latency(p50_s=p50, pct_s=pct, utilization_frac=min(1.0, max(rho, n_mean / max_batch)))
    return ttft, tpot


def _max_chunk_frac(cls: RequestClass, co: Colocated, spread: float = 0.0) -> float:
    """Largest fraction of chunk-carrying iterations whose TPOT quantile meets the target (less the acceptance
    ``spread`` with speculation: then :func:`colocated_metrics` meets it too)."""
    p = cls.slo.tpot_quantile
    target = cls.slo.tpot_s * co.tokens_per_step  # the target per iteration
    if spread > 0:
        target /= 1.0 + spread
    if co.t_decode_s > target:
        return 0.0
    delta = co.t_mix_s - co.t_decode_s
    if co.t_mix_s <= target or delta <= 0:
        return 1.0
    n = _iterations(cls, co)
    k = (target - co.t_decode_s) / delta * n

    lo, hi = 0.0, 1.0  # exceed(lo) <= 1 − p < exceed(hi); the exceedance grows with f
    for _ in range(3):  # vectorized bracketing, 129 points a round: precision ~5e-7, on the safe side
        f = np.linspace(lo, hi, 129)[1:-1, None]
        exceed = normal_sf((k - n * f) / np.sqrt(n * f * (1 - f))).mean(axis=1)
        ok = np.flatnonzero(exceed <= 1 - p)
        step_f = (hi - lo) / 128
        last = int(ok[-1]) + 1 if ok.size else 0  # index into the full 129-point grid
        lo, hi = lo + last * step_f, lo + (last + 1) * step_f
    return lo


def colocated_rate_bound(rep: Replica, cls: RequestClass, co: Colocated, max_batch: int) -> float:
    """Per-replica rate that no pool size can raise: the TPOT limit (share of iterations that may
    carry a chunk) and the batch-slot limit (0 when the SLOs cannot be met at all)."""
    key = (
        "colocated_rate_bound",
        cls.input_tokens,
        cls.output_tokens,
        cls.prefix_cache,
        cls.slo,
        co,
        max_batch,
        rep.speculative_key,
    )
    if key not in rep.memo:
        rep.memo[key] = _colocated_rate_bound(rep, cls, co, max_batch)
    return rep.memo[key]  # type: ignore[return-value]


def _colocated_rate_bound(rep: Replica, cls: RequestClass, co: Colocated, max_batch: int) -> float:
    if not kv_fits(rep, cls, max_batch, "colocated"):
        return 0.0
    mean = _colocated_service(co, cls)[0]
    rho_max = _max_chunk_frac(cls, co, acceptance_spread(rep, cls, cls.slo.tpot_quantile))
    if rho_max <= 0:
        return 0.0
    # Slots: n̄ = λ·(OSL/E)·(ρ·T_mix + (1 − ρ)·T_decode) with ρ = λ·mean, a quadratic in λ.
    n_max = max_mean_occupancy(max_batch, cls.slo.tpot_quantile)
    iterations = cls.output_tokens.mean / co.tokens_per_step
    a = iterations * mean * (co.t_mix_s - co.t_decode_s)
    b = iterations * co.t_decode_s
    occ_rate = n_max / b if a <= 0 else (-b + math.sqrt(b * b + 4 * a * n_max)) / (2 * a)
    return min(rho_max / mean, occ_rate, (1 - 1e-9) / mean)


def colocated_max_rate(rep: Replica, cls: RequestClass, co: Colocated, max_batch: int, servers: int = 1) -> float:
    """Largest per-replica rate meeting both SLOs: the smallest of :func:`colocated_rate_bound` and
    the TTFT limit of the prompt queue shared by ``servers`` replicas."""
    bound = colocated_rate_bound(rep, cls, co, max_batch)
    if bound <= 0:
        return 0.0
    mean, cv2, service = _colocated_service(co, cls)
    ttft_rate = (
        max_rate_for_quantile(
            mean, cv2, cls.interarrival_cv2, service + request_fixed_s(rep), cls.slo.ttft_quantile, cls.slo.ttft_s, servers
        )
        / servers
    )
    return min(bound, ttft_rate) * (1 - 1e-6)


_SATURATED = Latency(p50_s=math.inf, pct_s=math.inf, utilization_frac=1.0)
