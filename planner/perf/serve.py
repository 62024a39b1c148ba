"""What a fixed-concurrency benchmark measures (vLLM ``bench serve --max-concurrency``, aiperf,
InferenceMAX): ``C`` clients in a closed loop, each sending its next request when its last one ends,
every request ``I`` prompt tokens and ``O`` output tokens.

A closed loop is not the Poisson arrivals ``planner size`` plans for: the request rate is whatever
the deployment sustains, the fixed point of ``X = C / (TTFT + (O − 1)·TPOT)`` (Little's law over a
client's cycle), found by bisection on ``X``; every latency below is evaluated at that ``X``.

Co-located replica (one engine serves both phases), as the engine profile schedules it:

* A chunk of ``q`` tokens of an ``I``-token prompt attends to ``I`` tokens on average (ΣL² = q·I
  over the prompt's chunks, the causal attention of the whole prompt).
* A decoding sequence shares each iteration with ``b = 1 + N_d·(c − 1)/c`` decodes, ``N_d = X·(O − 1)·TPOT``
  the mean decoding sequences (its own plus the others'; at one client, only its own).
* The other clients' prompts arrive at ``X·(c − 1)/c`` and each takes ``k = ⌈I/q⌉`` iterations: ``⌊I/q⌋``
  chunks of ``q = min(I, B − N_d)`` tokens and one of the remaining ``I mod q`` (B the engine's token
  budget; without chunked prefill ``q = I``). An 8192-token prompt under an 8192-token budget with three
  decodes running is one chunk of 8189 tokens and one of 3, not two full chunks.
* ``decode_first`` engines (vLLM, TRT-LLM) run the chunk inside a decode iteration, which takes
  ``T_mix > T_dec``; the others (SGLang) run it as an iteration of its own, ``T_pre``, that the
  decodes wait for. Either way a share ``f`` of a sequence's tokens carry the extra ``Δ`` and
  ``TPOT = T_dec + f·Δ``; per request, ``TPOT = T_dec + Δ·K/(O − 1)`` with ``K`` binomial, whose
  quantiles give p50/p99 (normal approximation). This is the interference model the co-located
  baselines of ``planner size`` rest on.
* ``TTFT`` = the wait for prompts ahead + the residual of
  the iteration in flight + ``k`` iterations of its own chunk (with the running decodes riding
  along in ``decode_first`` engines); the first token is sampled at the end of the last chunk. The
  wait mixes two limits by the fitted ``prefill_sync_frac`` s: clients in step (every wave of equal
  requests arrives together, so a prompt waits behind half the others' tokens: ``(c − 1)/2`` prompt
  services) and clients spread out (M/D/m, ``m`` prompts fitting one budget). Every prompt adds the
  engine's ``request_fixed_s`` (API server, tokenization: latency, not GPU time).
* At most ``min(max_num_seqs, KV tokens / (I + O/2))`` sequences run; clients beyond that wait
  ``(c − n_max)/X`` to be admitted.

Disaggregated (``P`` prefill and ``D`` decode workers): ``TTFT`` = G/G/P wait + prefill + exposed
KV transfer + first decode iteration; ``TPOT`` = the decode step at the per-worker batch (no
interference). All step times come from the roofline of :mod:`planner.perf.roofline`.

Speculative decoding (the replicas' ``speculative``): every decode iteration is the drafting plus a verify step
over ``K + 1`` tokens per sequence (:class:`planner.perf.serving.Replica`) and emits ``E`` tokens per sequence,
so ``TPOT = T_it/E`` wherever a decode step stood above; a request decodes in ``(O − 1)/E`` iterations
(co-located; the binomial count of chunk-carrying ones is over those), and in disaggregated serving the TTFT's
first decode iteration takes ``E·TPOT`` and emits ``E`` tokens, leaving ``O − E``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planner.domain import LinkSpec
from planner.perf.queueing import mean_wait_s, normal_quantile, sum_quantile_s, wait_tail
from planner.perf.serving import Replica, acceptance_spread_over
from planner.perf.transfer import kv_transfer_s

P50, P99 = 0.5, 0.99


@dataclass(frozen=True, slots=True, kw_only=True)
class Quantiles:
    mean_s: float
    p50_s: float
    p99_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServePoint:
    """One fixed-concurrency operating point of a deployment."""

    ttft: Quantiles
    tpot: Quantiles
    requests_per_s: float
    output_tokens: int
    num_gpus: int
    concurrency: int
    decode_batch: float  # mean sequences in a decode iteration of one replica / decode worker
    running_limit: int  # most sequences one replica / decode worker admits (scheduler cap, KV memory)
    chunk_frac: float  # share of a sequence's decode iterations stretched by a prefill (co-located)
    admission_wait_s: float  # mean wait of a request before the engine admits it

    @property
    def output_tokens_per_s(self) -> float:
        return self.requests_per_s * self.output_tokens

    @property
    def output_tokens_per_s_per_gpu(self) -> float:
        return self.output_tokens_per_s / self.num_gpus

    @property
    def output_tokens_per_s_per_user(self) -> float:
        """Decode speed one client sees, ``1/TPOT`` (mean), as aiperf and InferenceMAX report it."""
        return 1.0 / self.tpot.mean_s if self.tpot.mean_s > 0 else math.inf


def running_limit(rep: Replica, isl: int, osl: int) -> int:
    """Sequences one replica runs at once: the engine's scheduler cap and what its KV cache holds at
    a sequence's mean length ``I + O/2`` (plus its ``K`` draft tokens with speculation)."""
    cap = rep.engine.limits(rep.hw.gpu.id).max_num_seqs
    return max(0, min(cap, int(rep.memory.max_kv_tokens // max(1.0, isl + osl / 2.0 + rep.draft_kv_tokens))))


def chunk_sizes(prompt_tokens: int, chunk_tokens: int) -> list[tuple[int, int]]:
    """The iterations a prompt is prefilled in, as (tokens, how many): ``⌊I/q⌋`` chunks of ``q`` tokens
    and one of the remainder."""
    full, rest = divmod(prompt_tokens, max(1, chunk_tokens))
    return [(q, n) for q, n in ((chunk_tokens, full), (rest, 1)) if q > 0 and n > 0]


def _prompt_s(rep: Replica, pieces: list[tuple[int, int]], isl: int, riders: int, ctx: float, busy: str = "spread") -> float:
    """Time of all of a prompt's chunk iterations, ``riders`` decodes of context ``ctx`` in each; ``busy``: where the
    other attention groups are (:meth:`planner.perf.serving.Replica.chunk_s`)."""
    return sum(n * rep.chunk_s(q, isl, riders, ctx, busy) for q, n in pieces)


def _bisect_rate(clients: float, cycle_s: Callable[[float], float], x_hi: float) -> float:
    """The ``X`` with ``X·cycle(X) = clients`` (``X·cycle`` grows with ``X``; ``cycle`` is inf past saturation)."""
    lo, hi = 0.0, x_hi
    while hi * cycle_s(hi) < clients:  # not saturated at x_hi: widen (never for a sane x_hi)
        lo, hi = hi, hi * 2.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if mid * cycle_s(mid) < clients:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * hi:
            break
    return lo


def _binomial_quantile(base_s: float, delta_s: float, n: int, f: float, p: float) -> float:
    """``p`` quantile of ``base + Δ·K/n``, ``K ~ Binomial(n, f)`` (normal approximation, clipped)."""
    if delta_s <= 0 or f <= 0 or n <= 0:
        return base_s
    if f >= 1:
        return base_s + delta_s
    k = n * f + normal_quantile(p) * math.sqrt(n * f * (1 - f))
    return base_s + delta_s * min(max(k, 0.0), n) / n


@dataclass(frozen=True, slots=True)
class _Cycle:
    ttft_s: float
    tpot_s: float
    t_dec_s: float
    delta_s: float
    chunk_frac: float
    decoding: float
    wait_prob: float
    wait_theta_s: float
    ttft_base_s: float


def _colocated_cycle(rep: Replica, isl: int, osl: int, clients: float, x: float) -> _Cycle | None:
    """Latencies of one replica at ``x`` requests/s from ``clients`` admitted clients (None: saturated)."""
    engine = rep.engine
    budget = engine.limits(rep.hw.gpu.id).max_num_batched_tokens
    ctx = isl + osl / 2.0
    decode_tokens = max(osl - 1, 0)
    others = (clients - 1.0) / clients if clients > 1 else 0.0
    factors = rep.hw.efficiency.for_precision(rep.precision)
    sync, own_fixed = factors.prefill_sync_frac, factors.request_fixed_s  # own_fixed: outside the GPU
    e = rep.tokens_per_step  # tokens an iteration emits per sequence (1 without speculation)
    tpot = rep.decode_s(1, ctx)
    cyc: _Cycle | None = None
    for _ in range(60):
        n_dec = x * decode_tokens * tpot  # Little: mean decoding sequences
        batch = 1.0 + n_dec * others
        chunk = isl if not engine.chunked_prefill else max(1, min(isl, budget - math.ceil(n_dec)))
        pieces = chunk_sizes(isl, chunk)
        k = sum(n for _q, n in pieces)
        t_dec = rep.decode_iteration_s(batch, ctx)  # one iteration (T_it; TPOT = T_it / E)
        riders = math.ceil(n_dec * others) if engine.decode_first else 0  # the others' decodes ride along
        if engine.decode_first:
            t_mix = _prompt_s(rep, pieces, isl, math.ceil(batch), ctx)  # all of one prompt's chunks
            delta = t_mix / k - t_dec
            service = _prompt_s(rep, pieces, isl, riders, ctx)
        else:
            t_mix = _prompt_s(rep, pieces, isl, 0, ctx)
            delta = t_mix / k
            service = t_mix
        # A prompt's own latency: under data-parallel attention its chunks run on its own group (dp groups, each
        # with its own queue), between alone and every group prefilling, by the groups' prefill occupancy.
        dp = rep.attention_groups
        if dp > 1:
            alone = _prompt_s(rep, pieces, isl, riders, ctx, "alone")
            full = _prompt_s(rep, pieces, isl, riders, ctx, "all")
            own = alone + (full - alone) * min(1.0, x * others * service)
        else:
            own = service
        rate_chunks = x * others * k  # chunk iterations per second a decoding sequence sees
        busy = x * others * t_mix
        if busy >= 1.0:
            return None
        if engine.decode_first:  # iterations/s of a sequence: the chunk ones plus plain ones in the rest of the time
            new_tpot = 1.0 / (e * (rate_chunks + (1.0 - busy) / t_dec))
        else:
            new_tpot = t_dec / (e * (1.0 - busy))
        f = min(1.0, rate_chunks * new_tpot * e)  # share of a sequence's iterations that carry a chunk
        # Prompts ahead: m prompts share one budget; the others' prompts arrive at x·others.
        servers = max(1, (budget - math.ceil(n_dec)) // isl) if engine.chunked_prefill or isl <= budget else 1
        if x * others * service >= servers or x * others * own >= servers * dp:
            return None
        burst = sync * (clients - 1.0) / (2.0 * dp) * own  # in step with the others: half their prompts ahead
        wait = (1.0 - sync) * mean_wait_s(x * others, own, 0.0, 1.0, servers * dp)
        wait_prob, theta = wait_tail(x * others, own, 0.0, 1.0, servers * dp)
        theta = (1.0 - sync) * theta
        residual = others * 0.5 * new_tpot * e  # half the iteration in flight
        base = residual + own + burst + own_fixed
        cyc = _Cycle(
            ttft_s=base + wait,
            tpot_s=new_tpot,
            t_dec_s=t_dec / e,  # per output token
            delta_s=delta / e,
            chunk_frac=f,
            decoding=n_dec,
            wait_prob=wait_prob,
            wait_theta_s=theta,
            ttft_base_s=base,
        )
        if abs(new_tpot - tpot) <= 1e-10 * tpot:
            break
        tpot = new_tpot
    return cyc


def serve_colocated(rep: Replica, *, isl: int, osl: int, concurrency: int, replicas: int = 1) -> ServePoint:
    """``concurrency`` clients spread evenly over ``replicas`` co-located replicas."""
    limit = running_limit(rep, isl, osl)
    if limit < 1:
        raise ValueError("no sequence of this length fits the replica's KV cache")
    clients = concurrency / replicas
    admitted = min(clients, float(limit))
    decode_tokens = max(osl - 1, 0)

    def cycle(x: float) -> float:
        c = _colocated_cycle(rep, isl, osl, admitted, x)
        return math.inf if c is None else c.ttft_s + decode_tokens * c.tpot_s

    x_hi = admitted / (rep.prefill_s(isl) + decode_tokens * rep.decode_s(1, isl))  # no one is faster than alone
    x = _bisect_rate(admitted, cycle, x_hi)
    cyc = _colocated_cycle(rep, isl, osl, admitted, x)
    assert cyc is not None  # x is on the stable side of the bisection
    admission = (clients - admitted) / x if clients > admitted else 0.0
    base = np.array([cyc.ttft_base_s + admission])
    ttft = Quantiles(
        mean_s=cyc.ttft_s + admission,
        p50_s=sum_quantile_s(base, cyc.wait_prob, cyc.wait_theta_s, P50),
        p99_s=sum_quantile_s(base, cyc.wait_prob, cyc.wait_theta_s, P99),
    )
    iterations = round(decode_tokens / rep.tokens_per_step)  # a request's decode iterations (O − 1 without speculation)
    p50 = _binomial_quantile(cyc.t_dec_s, cyc.delta_s, iterations, cyc.chunk_frac, P50)
    p99 = _binomial_quantile(cyc.t_dec_s, cyc.delta_s, iterations, cyc.chunk_frac, P99)
    if rep.speculative is not None:  # the acceptance draws' spread, in quadrature with the chunks'
        p99 = p50 + math.hypot(p99 - p50, p50 * acceptance_spread_over(rep.speculative, np.array([float(osl)]), P99))
    tpot = Quantiles(mean_s=cyc.tpot_s, p50_s=p50, p99_s=p99)
    return ServePoint(
        ttft=ttft,
        tpot=tpot,
        requests_per_s=x * replicas,
        output_tokens=osl,
        num_gpus=rep.tp * replicas,
        concurrency=concurrency,
        decode_batch=1.0 + cyc.decoding * ((admitted - 1.0) / admitted if admitted > 1 else 0.0),
        running_limit=limit,
        chunk_frac=cyc.chunk_frac,
        admission_wait_s=admission,
    )


def serve_disaggregated(
    prefill: Replica,
    prefill_workers: int,
    decode: Replica,
    decode_workers: int,
    *,
    isl: int,
    osl: int,
    concurrency: int,
    link: LinkSpec | None,
) -> ServePoint:
    """``concurrency`` clients; prompts queue for ``prefill_workers``, sequences spread over
    ``decode_workers``, the KV cache crossing ``link`` (None: not modelled, e.g. one NVLink domain)."""
    limit = running_limit(decode, isl, osl)
    if limit < 1:
        raise ValueError("no sequence of this length fits the decode worker's KV cache")
    budget = prefill.engine.limits(prefill.hw.gpu.id).max_num_batched_tokens
    chunk = min(isl, budget) if prefill.engine.chunked_prefill else isl
    pieces = chunk_sizes(isl, chunk)
    service = _prompt_s(prefill, pieces, isl, 0, 0.0)  # a worker's busy time per prompt
    # Under data-parallel attention each of a worker's dp groups prefills its own prompts: dp·P lanes, a prompt's
    # latency between its group alone and every group busy, by the workers' utilization (Replica.chunk_s).
    lanes = prefill_workers * prefill.attention_groups
    alone = _prompt_s(prefill, pieces, isl, 0, 0.0, "alone")
    full = _prompt_s(prefill, pieces, isl, 0, 0.0, "all")
    kv = (
        0.0
        if link is None
        else kv_transfer_s(
            prefill.model, link, prefill.engine, precision=prefill.precision, prompt_tokens=isl, tp=prefill.tp, prefill_s=service
        )
    )
    ctx = isl + osl / 2.0
    e = decode.tokens_per_step  # the first decode iteration (in the TTFT) emits E tokens on average
    decode_tokens = max(osl - e, 0.0)  # tokens after it (O − 1 without speculation)
    admitted = min(float(concurrency), float(limit * decode_workers))

    def latency(x: float) -> float:
        return alone + (full - alone) * min(1.0, x * service / prefill_workers)

    def parts(x: float) -> tuple[float, float, float] | None:
        if x * service >= prefill_workers or x * latency(x) >= lanes:
            return None
        wait = mean_wait_s(x, latency(x), 0.0, 1.0, lanes)
        tpot = decode.decode_s(1, ctx)
        for _ in range(60):
            per_worker = x * decode_tokens * tpot / decode_workers
            new = decode.decode_s(max(1.0, per_worker), ctx)
            if abs(new - tpot) <= 1e-10 * tpot:
                break
            tpot = new
        return wait, tpot, per_worker

    def cycle(x: float) -> float:
        p = parts(x)
        return math.inf if p is None else p[0] + latency(x) + kv + p[1] * e + decode_tokens * p[1]

    x_hi = admitted / (alone + kv + osl * decode.decode_s(1, ctx))
    x = _bisect_rate(admitted, cycle, x_hi)
    got = parts(x)
    assert got is not None
    wait, tpot, per_worker = got
    admission = (concurrency - admitted) / x if concurrency > admitted else 0.0
    own = latency(x)
    wait_prob, theta = wait_tail(x, own, 0.0, 1.0, lanes)
    first = tpot * e  # the first decode iteration
    base = np.array([own + kv + first + admission + prefill.hw.efficiency.for_precision(prefill.precision).request_fixed_s])
    return ServePoint(
        ttft=Quantiles(
            mean_s=wait + base[0],
            p50_s=sum_quantile_s(base, wait_prob, theta, P50),
            p99_s=sum_quantile_s(base, wait_prob, theta, P99),
        ),
        tpot=Quantiles(
            mean_s=tpot,
            p50_s=tpot,
            p99_s=tpot * (1.0 + acceptance_spread_over(decode.speculative, np.array([float(osl)]), P99)),
        ),
        requests_per_s=x,
        output_tokens=osl,
        num_gpus=prefill.tp * prefill_workers + decode.tp * decode_workers,
        concurrency=concurrency,
        decode_batch=max(1.0, per_worker),
        running_limit=limit,
        chunk_frac=0.0,
        admission_wait_s=admission,
    )
