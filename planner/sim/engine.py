"""Discrete-event simulation of a deployment: a plain ``heapq`` event loop (numpy for the inputs).

Why not SimPy: a generator process per request and per replica costs a context switch and a heap
push per resumption; the loop below does one heap operation per engine iteration of a replica and
one per KV-transfer change, and handles arrivals from a pre-sorted array without the heap
(docs/simulate.md has the measurements).

Model (each point says how it matches the analytic core in :mod:`planner.perf.serving`):

* Prefill replicas serve batches of prompts: the head of the queue plus following prompts while
  the batch stays within ``prefill_token_budget`` tokens (default: one prompt per batch, as the
  analytic G/G/c assumes); batch time ``step(ΣL, ΣL², k)`` of the performance core.
* Routing to prefill replicas: ``jsq`` (join the replica with the fewest prompts queued or in
  service, lowest index on ties), ``rr`` (round robin), or ``central`` (one FIFO queue per pool,
  a free replica takes its head: exactly the analytic G/G/c).
* KV transfer: a replica's ``t`` GPUs each send their shard on one NIC port, so a replica is a
  processor-sharing link of ``t × achieved port bandwidth`` shared by its concurrent transfers.
  Layer-wise overlap: all but the last layer's share starts with the prefill; the last layer's
  share starts when both the prefill and the rest are done (alone on the link this is exactly the
  analytic ``max(total − prefill, total/n_layers)``), then the link latency.
* Decode replicas: continuous batching, one event per engine iteration. At each iteration start,
  waiting requests are admitted FIFO while the batch is below ``max_batch`` and the KV cache has
  room for the request's full length (prompt + output, reserved at admission, no preemption; a
  request longer than the whole cache is admitted alone). Step time ``decode_batch_s(b, Σcontext)`` of
  the performance core (the whole batch's context; the core's ``Replica.decode_s`` takes it per sequence).
  A request's first token is the end of its first decode iteration (TTFT = arrival → prefill →
  exposed KV → first step, as the analytic model); TPOT is ``(done − first token)/(output − 1)``.
  KV arrivals join the decode replica with the fewest sequences (running + waiting).
* Co-located replicas: each iteration decodes the running batch ``b`` and prefills up to
  ``token_budget − b`` prompt tokens (chunked prefill, FIFO prompts, several per iteration if
  they fit); a prompt takes a batch slot and its KV reservation when its prefill starts, and its
  first token is the end of the iteration that finishes its prefill.
* Prefix caches (requests' ``cached_tokens``, drawn as :func:`planner.sim.arrivals.with_prefix_hits`
  describes): a prefill computes only the missed tokens, ``step(Σ(L − c), Σ(L² − c²), k)``, the prefill
  token budget counting computed tokens; the KV transfer carries the request's ``sent_tokens`` (all
  ``L`` unless its class caches on both pools); a co-located prompt's chunks start after its cached
  prefix (chunk ``c_k`` at position ``pos`` attends ``(pos + c_k)² − pos²``). A pool that holds caches
  reserves their working sets (``cache_reserve_tokens``) of its KV memory, so admission sees less; a
  sequence still counts its whole context in KV (its cached prefix is not taken as shared pages).
* Speculative decoding (a pool's ``speculative``: K drafts, per-token acceptance A): an iteration's time is
  the core's verify step over ``K + 1`` tokens per sequence plus the drafting
  (:func:`planner.perf.serving.draft_cost_frac` of a plain step); at its end every running sequence draws
  its accepted drafts, each accepted with probability A until the first rejection (at most K), and
  advances by those plus the verified token (never past its output length). The draws come from a
  generator seeded with ``Options.seed`` (a stream of its own, apart from the arrivals'), one uniform per
  sequence per iteration in a fixed order, so a run is deterministic. Each sequence also reserves its K
  draft tokens' KV.

Saturation: the run stops when simulated time passes ``time_cap_s`` or a pool's waiting queue
exceeds ``queue_cap``; a pool whose queue grew by more than ``max(50, 5%)`` of its second-half
arrivals between the middle and the end of the arrivals is also reported as diverging.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from planner.domain import Role, Routing, Speculative, StepEstimate
from planner.perf.roofline import compute_precision, overlap_s, step
from planner.perf.serving import Replica, draft_cost_frac, query_tokens
from planner.sim.arrivals import Requests

ROUTINGS: tuple[str, ...] = ("jsq", "rr", "central")
SPECULATIVE_STREAM = 0x5EC  # the acceptance draws' generator: np.random.default_rng([SPECULATIVE_STREAM, seed])
_UNIFORM_BLOCK = 65_536  # uniforms drawn at a time for the acceptance draws

_ARRIVE, _PREFILL_DONE, _KV, _KV_ARRIVE, _DECODE_DONE, _COLOC_DONE = range(6)


class Steps(Protocol):
    """Step times of one replica type (what the engine asks the performance core)."""

    @property
    def max_kv_tokens(self) -> int: ...

    def prefill_s(self, tokens: int, sq_tokens: float, prompts: int) -> float: ...

    def decode_batch_s(self, batch: int, total_context_tokens: float) -> float: ...

    def mixed_batch_s(self, chunk_tokens: int, sq_tokens: float, batch: int, total_context_tokens: float) -> float: ...


class CoreSteps:
    """:class:`Steps` from the performance core for one :class:`Replica`.

    Decode: for a batch ``b`` the core's compute and memory terms are affine in the total context
    (``step()`` adds ``4·n_L·d·Σc`` FLOPs and ``kv_tok·Σc`` bytes), so two calls per ``b`` give
    the exact step time at any context: ``overlap(c0 + c1·Σc, m0 + m1·Σc) + comm + overhead``, the core's
    overlap of the two (its q-norm, ``roofline.overlap_s``).
    Prefill and mixed steps call ``step()`` (memoized). With the replica's speculative decoding a decode
    iteration is the verify step over ``K + 1`` tokens per sequence (its own table, affine in Σc alike) plus
    the drafting, :func:`planner.perf.serving.draft_cost_frac` of the plain step (the plain table)."""

    def __init__(self, rep: Replica, max_batch: int) -> None:
        self.rep = rep
        self._max_kv = rep.memory.max_kv_tokens
        # The core's overlap of compute and memory time (its q-norm; max where the engine states none).
        self._overlap_q = rep.hw.efficiency.for_precision(compute_precision(rep.hw.gpu, rep.precision)).overlap_q
        self._q = query_tokens(rep.speculative)
        self._draft = draft_cost_frac(rep.speculative, rep.model)
        self._table = self._tables(max_batch, self._q)
        self._plain = self._tables(max_batch, 1) if self._draft > 0 else self._table
        self._prefill: dict[tuple[int, float, int], float] = {}

    def _tables(self, max_batch: int, q: int) -> list[tuple[float, float, float, float, float]]:
        probe = 1.0e6
        table: list[tuple[float, float, float, float, float]] = [(0.0, 0.0, 0.0, 0.0, 0.0)]
        for b in range(1, max(1, max_batch) + 1):
            s0 = self._step(decode_batch=b, decode_context_tokens=0.0, q=q)
            s1 = self._step(decode_batch=b, decode_context_tokens=probe, q=q)
            table.append(
                (
                    s0.compute_s,
                    (s1.compute_s - s0.compute_s) / probe,
                    s0.memory_s,
                    (s1.memory_s - s0.memory_s) / probe,
                    s0.comm_s + s0.overhead_s,
                )
            )
        return table

    def _step(self, *, decode_batch: int, decode_context_tokens: float, q: int = 1) -> StepEstimate:
        r = self.rep
        return step(
            r.model,
            r.hw,
            tp=r.tp,
            precision=r.precision,
            decode_batch=decode_batch,
            decode_context_tokens=decode_context_tokens,
            decode_query_tokens=q,
        )

    @property
    def max_kv_tokens(self) -> int:
        return self._max_kv

    def prefill_s(self, tokens: int, sq_tokens: float, prompts: int) -> float:
        key = (tokens, sq_tokens, prompts)
        t = self._prefill.get(key)
        if t is None:
            r = self.rep
            t = step(
                r.model,
                r.hw,
                tp=r.tp,
                precision=r.precision,
                prefill_tokens=tokens,
                prefill_sq_tokens=sq_tokens,
                num_prompts=prompts,
            ).latency_s
            self._prefill[key] = t
        return t

    def _decode_s(self, table: list[tuple[float, float, float, float, float]], q: int, batch: int, ctx: float) -> float:
        if batch >= len(table):
            return self._step(decode_batch=batch, decode_context_tokens=ctx, q=q).latency_s
        c0, c1, m0, m1, rest = table[batch]
        return overlap_s(c0 + c1 * ctx, m0 + m1 * ctx, self._overlap_q) + rest

    def _draft_s(self, batch: int, total_context_tokens: float) -> float:
        if self._draft <= 0 or batch <= 0:
            return 0.0
        return self._draft * self._decode_s(self._plain, 1, batch, total_context_tokens)

    def decode_batch_s(self, batch: int, total_context_tokens: float) -> float:
        t = self._decode_s(self._table, self._q, batch, total_context_tokens)
        return t + self._draft_s(batch, total_context_tokens) if self._draft > 0 else t

    def mixed_batch_s(self, chunk_tokens: int, sq_tokens: float, batch: int, total_context_tokens: float) -> float:
        r = self.rep
        t = step(
            r.model,
            r.hw,
            tp=r.tp,
            precision=r.precision,
            prefill_tokens=chunk_tokens,
            prefill_sq_tokens=sq_tokens,
            decode_batch=batch,
            decode_context_tokens=total_context_tokens,
            decode_query_tokens=self._q,
        ).latency_s
        return t + self._draft_s(batch, total_context_tokens) if self._draft > 0 else t


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    key: str
    role: Role
    replicas: int
    steps: Steps
    max_batch: int = 1
    token_budget: int | None = None  # co-located chunk budget
    kv_bytes_per_token: float = 0.0  # prefill: bytes the KV transfer carries per prompt token
    link_bytes_per_s: float = math.inf  # prefill: per replica (t ports × achieved port bandwidth)
    link_latency_s: float = 0.0
    num_layers: int = 1
    cache_reserve_tokens: int = 0  # KV tokens of each replica reserved for prefix caches' working sets
    request_fixed_s: float = 0.0  # front pools: the engine's latency outside the GPU before a request's first token
    speculative: Speculative | None = None  # decode and co-located: the acceptance draws (steps carry the cost)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    routing: Routing = "jsq"
    prefill_token_budget: int | None = None  # None: one prompt per prefill batch
    warmup_frac: float = 0.1
    time_cap_s: float | None = None  # None: 20 × the arrival span + 60 s
    queue_cap: int = 100_000
    seed: int = 0  # the speculative acceptance draws (SPECULATIVE_STREAM)


@dataclass(slots=True, kw_only=True)
class PoolStats:
    key: str
    role: str
    replicas: int
    busy_s: float = 0.0  # replica-seconds busy inside the measurement window
    batch_area: float = 0.0  # sequence-seconds decoding inside the window (decode, co-located)
    queue_area: float = 0.0  # waiting-request-seconds inside the window
    queue_max: int = 0
    queue_len: int = 0
    queue_mid: int = 0
    queue_end: int = 0
    arrivals_second_half: int = 0
    iterations: int = 0
    window_s: float = 0.0

    @property
    def utilization_frac(self) -> float:
        return self.busy_s / (self.replicas * self.window_s) if self.replicas and self.window_s > 0 else 0.0

    @property
    def mean_queue(self) -> float:
        return self.queue_area / self.window_s if self.window_s > 0 else 0.0

    @property
    def mean_batch(self) -> float:
        return self.batch_area / (self.replicas * self.window_s) if self.replicas and self.window_s > 0 else 0.0

    @property
    def diverging(self) -> bool:
        return self.queue_end - self.queue_mid > max(50.0, 0.05 * self.arrivals_second_half)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    requests: Requests
    prefill_start_s: np.ndarray  # nan where never started (co-located: first chunk)
    first_token_s: np.ndarray  # nan where never reached
    done_s: np.ndarray
    measured: np.ndarray  # bool: outside the warm-up
    pools: tuple[PoolStats, ...]
    events: int
    end_s: float
    window_s: tuple[float, float]
    stop_reason: str | None  # None: every request finished
    saturated_pools: tuple[str, ...] = field(default_factory=tuple)

    @property
    def saturated(self) -> bool:
        return self.stop_reason is not None or bool(self.saturated_pools)


class _Stop(Exception):
    def __init__(self, reason: str, pool: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pool = pool


def run(
    requests: Requests,
    pools: Sequence[PoolConfig],
    front: Sequence[Sequence[tuple[int, float]]],
    back: Sequence[Sequence[tuple[int, float]]],
    options: Options | None = None,
) -> SimResult:
    """Simulate ``requests`` on ``pools``. ``front[class]`` lists (pool index, share) of the pools
    that take the class's prompts (prefill or co-located), ``back[class]`` those that decode it
    after a prefill pool (shares need not be normalized)."""
    return _Sim(requests, pools, front, back, options or Options()).run()


def _cumulative(choices: Sequence[tuple[int, float]]) -> list[tuple[float, int]]:
    total = sum(max(s, 0.0) for _, s in choices)
    out, acc = [], 0.0
    for idx, share in choices:
        if share > 0:
            acc += share / total
            out.append((acc, idx))
    if out:
        out[-1] = (math.inf, out[-1][1])
    return out


class _Sim:
    def __init__(
        self,
        requests: Requests,
        pools: Sequence[PoolConfig],
        front: Sequence[Sequence[tuple[int, float]]],
        back: Sequence[Sequence[tuple[int, float]]],
        opt: Options,
    ) -> None:
        self.req = requests
        self.pools = list(pools)
        self.opt = opt
        n = len(requests)
        self.n = n
        self.arr = requests.arrival_s.tolist()
        self.lin = requests.input_tokens.tolist()
        self.lout = requests.output_tokens.tolist()
        cached = requests.cached_tokens
        self.cached = cached.tolist() if cached is not None else [0] * n
        self.sent = requests.sent_tokens.tolist() if requests.sent_tokens is not None else self.lin
        cls = requests.class_index.tolist()
        u = requests.route_u
        fronts = [_cumulative(f) for f in front]
        backs = [_cumulative(b) for b in back]
        self.front_pool = [_pick(fronts[c], float(x)) for c, x in zip(cls, u[:, 0].tolist(), strict=True)]
        self.back_pool = [_pick(backs[c], float(x)) if backs[c] else -1 for c, x in zip(cls, u[:, 1].tolist(), strict=True)]
        nan = math.nan
        self.t_start = [nan] * n
        self.t_first = [nan] * n
        self.t_done = [nan] * n
        self.ctx_sub = [0] * n  # context to remove from the batch when the request finishes
        # Speculative pools: the K draft tokens each sequence reserves KV for, the acceptance thresholds (A^K, ...,
        # A², A, ascending: a uniform below A^m accepts at least m drafts), each request's tokens still to decode,
        # and each replica's running sequences in admission order (the order the draws are made in).
        self.kv_extra = [0 if p.speculative is None else p.speculative.draft_tokens for p in pools]
        self.accept = [
            None
            if p.speculative is None
            else [p.speculative.acceptance_rate**m for m in range(p.speculative.draft_tokens, 0, -1)]
            for p in pools
        ]
        self.remaining = [0] * n
        self.seqs: list[list[list[int]]] = [[[] for _ in range(p.replicas)] for p in pools]
        self._rng = np.random.default_rng([SPECULATIVE_STREAM, opt.seed])
        self._u: list[float] = []
        self._ui = 0
        self.pf_done = [False] * n
        self.kva_done = [False] * n
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.events = 0
        self.now = 0.0
        warm = min(int(opt.warmup_frac * n), n - 1)
        self.w0 = self.arr[warm]
        self.w1 = self.arr[-1]
        if self.w1 <= self.w0:
            self.w1 = self.w0 + 1e-9
        self.warm = warm
        self.mid = n // 2
        span = self.arr[-1] - self.arr[0]
        self.time_cap = opt.time_cap_s if opt.time_cap_s is not None else 20.0 * span + 60.0
        self.stats = [PoolStats(key=p.key, role=p.role, replicas=p.replicas, window_s=self.w1 - self.w0) for p in pools]
        self.q_last = [0.0] * len(pools)
        self.rr = [0] * len(pools)
        # Per pool, per replica state (only what the role uses is filled in).
        self.queues: list[list[deque[int]]] = []
        self.busy: list[list[bool]] = []
        self.batch: list[list[list[int]]] = []
        self.ps_jobs: list[list[dict[int, float]]] = []
        self.ps_last: list[list[float]] = []
        self.ps_ver: list[list[int]] = []
        self.waiting: list[list[deque[int]]] = []
        self.running: list[list[int]] = []
        self.ctx: list[list[float]] = []
        self.kv_used: list[list[int]] = []
        self.iter_k: list[list[int]] = []
        self.buckets: list[list[dict[int, list[int]]]] = []
        self.admitted: list[list[list[int]]] = []
        self.iter_start: list[list[float]] = []
        self.inprog: list[list[list[list[int]]]] = []  # co-located: [request, prefilled tokens]
        self.plan: list[list[list[tuple[int, int]]]] = []  # co-located: (slot in inprog, chunk) this iteration
        for p in pools:
            r = p.replicas
            shared: deque[int] = deque()
            central = opt.routing == "central"
            self.queues.append([shared if central else deque() for _ in range(r)])
            self.busy.append([False] * r)
            self.batch.append([[] for _ in range(r)])
            self.ps_jobs.append([{} for _ in range(r)])
            self.ps_last.append([0.0] * r)
            self.ps_ver.append([0] * r)
            self.waiting.append([deque() for _ in range(r)])
            self.running.append([0] * r)
            self.ctx.append([0.0] * r)
            self.kv_used.append([0] * r)
            self.iter_k.append([0] * r)
            self.buckets.append([{} for _ in range(r)])
            self.admitted.append([[] for _ in range(r)])
            self.iter_start.append([0.0] * r)
            self.inprog.append([[] for _ in range(r)])
            self.plan.append([[] for _ in range(r)])

    # ------------------------------------------------------------------------------ bookkeeping

    def push(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _clip(self, start: float, end: float) -> float:
        lo = start if start > self.w0 else self.w0
        hi = end if end < self.w1 else self.w1
        return hi - lo if hi > lo else 0.0

    def q_change(self, p: int, delta: int) -> None:
        st = self.stats[p]
        st.queue_area += st.queue_len * self._clip(self.q_last[p], self.now)
        self.q_last[p] = self.now
        st.queue_len += delta
        if st.queue_len > st.queue_max:
            st.queue_max = st.queue_len
            if st.queue_len > self.opt.queue_cap:
                raise _Stop(f"queue_cap: more than {self.opt.queue_cap:,} requests waiting", self.pools[p].key)

    def choose(self, p: int, loads: list[int]) -> int:
        if self.opt.routing == "rr":
            r = self.rr[p] % len(loads)
            self.rr[p] += 1
            return r
        best, arg = loads[0], 0
        for r in range(1, len(loads)):
            if loads[r] < best:
                best, arg = loads[r], r
        return arg

    # ---------------------------------------------------------------------------------- arrivals

    def arrive(self, i: int) -> None:
        p = self.front_pool[i]
        cfg = self.pools[p]
        if i >= self.mid:
            self.stats[p].arrivals_second_half += 1
        if cfg.replicas == 0:
            raise _Stop("no replicas", cfg.key)
        queues = self.queues[p]
        busy = self.busy[p]
        if self.opt.routing == "central":
            r = -1
            for k in range(cfg.replicas):
                if not busy[k]:
                    r = k
                    break
            r = r if r >= 0 else 0
        elif cfg.role == "prefill":
            r = self.choose(p, [len(q) + (1 if b else 0) for q, b in zip(queues, busy, strict=True)])
        else:
            r = self.choose(p, [len(q) + len(ip) for q, ip in zip(queues, self.inprog[p], strict=True)])
        queues[r].append(i)
        self.q_change(p, 1)
        if cfg.role == "prefill":
            if not busy[r]:
                self.start_prefill(p, r)
        elif not busy[r]:
            self.start_coloc(p, r)

    # ----------------------------------------------------------------------------------- prefill

    def start_prefill(self, p: int, r: int) -> None:
        q = self.queues[p][r]
        if not q:
            return
        cfg = self.pools[p]
        budget = self.opt.prefill_token_budget
        lin, cached = self.lin, self.cached
        first = q.popleft()
        batch = [first]
        tokens = lin[first] - cached[first]  # a prefill computes the missed tokens only
        sq = float(lin[first]) * lin[first] - float(cached[first]) * cached[first]
        if budget is not None:
            while q and tokens + lin[q[0]] - cached[q[0]] <= budget:
                j = q.popleft()
                batch.append(j)
                tokens += lin[j] - cached[j]
                sq += float(lin[j]) * lin[j] - float(cached[j]) * cached[j]
        self.q_change(p, -len(batch))
        dt = cfg.steps.prefill_s(tokens, sq, len(batch))
        now = self.now
        self.busy[p][r] = True
        self.batch[p][r] = batch
        self.stats[p].busy_s += self._clip(now, now + dt)
        self.stats[p].iterations += 1
        for j in batch:
            self.t_start[j] = now
        if cfg.link_bytes_per_s < math.inf:
            self.ps_advance(p, r)
            jobs = self.ps_jobs[p][r]
            frac = 1.0 - 1.0 / cfg.num_layers
            for j in batch:
                jobs[2 * j] = self.sent[j] * cfg.kv_bytes_per_token * frac
            self.ps_schedule(p, r)
        self.push(now + dt, _PREFILL_DONE, p, r)

    def prefill_done(self, p: int, r: int) -> None:
        cfg = self.pools[p]
        batch = self.batch[p][r]
        self.busy[p][r] = False
        self.batch[p][r] = []
        if cfg.link_bytes_per_s < math.inf:
            self.ps_advance(p, r)
            jobs = self.ps_jobs[p][r]
            for j in batch:
                self.pf_done[j] = True
                if self.kva_done[j]:
                    jobs[2 * j + 1] = self.sent[j] * cfg.kv_bytes_per_token / cfg.num_layers
            self.ps_schedule(p, r)
        else:
            for j in batch:
                self.decode_arrive(j)
        self.start_prefill(p, r)

    # ------------------------------------------------------------------------------ KV transfer

    def ps_advance(self, p: int, r: int) -> None:
        jobs = self.ps_jobs[p][r]
        if jobs:
            dec = (self.now - self.ps_last[p][r]) * self.pools[p].link_bytes_per_s / len(jobs)
            if dec > 0:
                for k in jobs:
                    jobs[k] -= dec
        self.ps_last[p][r] = self.now

    def ps_schedule(self, p: int, r: int) -> None:
        self.ps_ver[p][r] += 1
        jobs = self.ps_jobs[p][r]
        if jobs:
            m = min(jobs.values())
            bw = self.pools[p].link_bytes_per_s
            t = self.now + max(m, 0.0) * len(jobs) / bw
            if t <= self.now and m > _kv_done_tol(bw):
                # The remainder needs a step below the clock's float spacing (from about 16,384 s of
                # simulated time on): take the next representable instant, at which the shared link has
                # moved at least one spacing's worth of bytes, so the job completes there. Scheduling at
                # ``now`` again would find it unchanged and loop forever.
                t = math.nextafter(self.now, math.inf)
            self.push(t, _KV, p, r * 1_000_003 + self.ps_ver[p][r] % 1_000_003)

    def kv_event(self, p: int, code: int) -> None:
        r, ver = divmod(code, 1_000_003)
        if ver != self.ps_ver[p][r] % 1_000_003:
            return
        cfg = self.pools[p]
        self.ps_advance(p, r)
        jobs = self.ps_jobs[p][r]
        tol = _kv_done_tol(cfg.link_bytes_per_s)
        done = [k for k, v in jobs.items() if v <= tol]
        for k in done:
            del jobs[k]
        arrived = []
        for k in done:
            j, part = divmod(k, 2)
            if part == 0:
                self.kva_done[j] = True
                if self.pf_done[j]:
                    jobs[2 * j + 1] = self.sent[j] * cfg.kv_bytes_per_token / cfg.num_layers
            else:
                arrived.append(j)
        self.ps_schedule(p, r)
        for j in arrived:
            if cfg.link_latency_s > 0:
                self.push(self.now + cfg.link_latency_s, _KV_ARRIVE, j, 0)
            else:
                self.decode_arrive(j)

    # ------------------------------------------------------------------------------------ decode

    def decode_arrive(self, i: int) -> None:
        p = self.back_pool[i]
        cfg = self.pools[p]
        if cfg.replicas == 0:
            raise _Stop("no replicas", cfg.key)
        if i >= self.mid:
            self.stats[p].arrivals_second_half += 1
        run, wait = self.running[p], self.waiting[p]
        best, r = run[0] + len(wait[0]), 0
        for k in range(1, cfg.replicas):
            load = run[k] + len(wait[k])
            if load < best:
                best, r = load, k
        wait[r].append(i)
        self.q_change(p, 1)
        if not self.busy[p][r]:
            self.start_decode(p, r)

    def start_decode(self, p: int, r: int) -> None:
        cfg = self.pools[p]
        wait = self.waiting[p][r]
        running = self.running[p][r]
        admitted = self.admitted[p][r]
        if wait:
            kv_cap = cfg.steps.max_kv_tokens - cfg.cache_reserve_tokens
            kv = self.kv_used[p][r]
            ctx = self.ctx[p][r]
            k = self.iter_k[p][r]
            bucket = self.buckets[p][r]
            lin, lout = self.lin, self.lout
            extra, spec = self.kv_extra[p], self.accept[p] is not None
            taken = 0
            while wait and running < cfg.max_batch:
                j = wait[0]
                need = lin[j] + lout[j] + extra
                if kv + need > kv_cap and running > 0:
                    break
                wait.popleft()
                taken += 1
                running += 1
                kv += need
                ctx += lin[j]
                self.ctx_sub[j] = lin[j] + lout[j]
                if spec:
                    self.remaining[j] = lout[j]
                    self.seqs[p][r].append(j)
                else:
                    bucket.setdefault(k + lout[j] - 1, []).append(j)
                admitted.append(j)
            if taken:
                self.q_change(p, -taken)
            self.kv_used[p][r] = kv
            self.ctx[p][r] = ctx
            self.running[p][r] = running
        if running == 0:
            return
        self.iter_start[p][r] = self.now
        self._start_iteration(p, r, cfg.steps.decode_batch_s(running, self.ctx[p][r]), running, _DECODE_DONE)

    def _start_iteration(self, p: int, r: int, dt: float, running: int, done: int) -> None:
        """A decode or co-located iteration of ``running`` sequences lasting ``dt``: the replica is
        busy (and its window statistics count it) until the ``done`` event."""
        now = self.now
        self.busy[p][r] = True
        st = self.stats[p]
        c = self._clip(now, now + dt)
        st.busy_s += c
        st.batch_area += running * c
        st.iterations += 1
        self.push(now + dt, done, p, r)

    def _uniforms(self, count: int) -> list[float]:
        """The next ``count`` uniforms of the acceptance stream (drawn in blocks)."""
        out: list[float] = []
        while len(out) < count:
            if self._ui == len(self._u):
                self._u = self._rng.random(max(_UNIFORM_BLOCK, count)).tolist()
                self._ui = 0
            take = min(count - len(out), len(self._u) - self._ui)
            out += self._u[self._ui : self._ui + take]
            self._ui += take
        return out

    def _finish_speculative(self, p: int, r: int, ascending: list[float]) -> None:
        """End of a speculative iteration: each running sequence advances by its accepted drafts (each accepted
        with probability A until the first rejection, at most K) plus the verified token; finished ones leave.
        ``ascending``: A^K, ..., A², A; a uniform u accepts the drafts m with u < A^m, so it advances
        ``1 + K − #{thresholds <= u}`` tokens."""
        now = self.now
        rem, lin, lout, sub, t_done = self.remaining, self.lin, self.lout, self.ctx_sub, self.t_done
        extra = self.kv_extra[p]
        top = len(ascending) + 1
        seqs = self.seqs[p][r]
        kept: list[int] = []
        advanced = 0
        done_kv = 0
        done_ctx = 0
        for j, u in zip(seqs, self._uniforms(len(seqs)), strict=True):
            x = top - bisect_right(ascending, u)
            left = rem[j]
            if x >= left:
                advanced += left
                rem[j] = 0
                t_done[j] = now
                done_kv += lin[j] + lout[j] + extra
                done_ctx += sub[j]
            else:
                advanced += x
                rem[j] = left - x
                kept.append(j)
        self.running[p][r] -= len(seqs) - len(kept)
        self.seqs[p][r] = kept
        self.ctx[p][r] += advanced - done_ctx
        self.kv_used[p][r] -= done_kv
        self.iter_k[p][r] += 1

    def _finish_iteration(self, p: int, r: int) -> None:
        """End of an iteration: every running sequence gains a token; finished ones leave."""
        thresholds = self.accept[p]
        if thresholds is not None:
            self._finish_speculative(p, r, thresholds)
            return
        now = self.now
        self.ctx[p][r] += self.running[p][r]
        k = self.iter_k[p][r]
        done = self.buckets[p][r].pop(k, None)
        if done:
            t_done, sub, lin, lout = self.t_done, self.ctx_sub, self.lin, self.lout
            kv = 0
            ctx = 0
            for j in done:
                t_done[j] = now
                kv += lin[j] + lout[j]
                ctx += sub[j]
            self.running[p][r] -= len(done)
            self.kv_used[p][r] -= kv
            self.ctx[p][r] -= ctx
        self.iter_k[p][r] = k + 1

    def decode_done(self, p: int, r: int) -> None:
        self.busy[p][r] = False
        admitted = self.admitted[p][r]
        if admitted:
            t_first, now = self.t_first, self.now
            for j in admitted:
                t_first[j] = now
            admitted.clear()
        self._finish_iteration(p, r)
        self.start_decode(p, r)

    # -------------------------------------------------------------------------------- co-located

    def start_coloc(self, p: int, r: int) -> None:
        cfg = self.pools[p]
        running = self.running[p][r]
        inprog = self.inprog[p][r]
        q = self.queues[p][r]
        lin, lout = self.lin, self.lout
        budget = (cfg.token_budget or 0) - running
        plan = self.plan[p][r]
        tokens = 0
        sq = 0.0
        if budget > 0:
            kv_cap = cfg.steps.max_kv_tokens - cfg.cache_reserve_tokens
            taken = 0
            slot = 0
            while budget > 0:
                if slot == len(inprog):
                    if not q or running + len(inprog) >= cfg.max_batch:
                        break
                    j = q[0]
                    need = lin[j] + lout[j] + self.kv_extra[p]
                    if self.kv_used[p][r] + need > kv_cap and running + len(inprog) > 0:
                        break
                    q.popleft()
                    taken += 1
                    self.kv_used[p][r] += need
                    self.ctx_sub[j] = lin[j] + lout[j] - 1
                    self.t_start[j] = self.now
                    inprog.append([j, self.cached[j]])  # the chunks start after the cached prefix
                j, pos = inprog[slot]
                c = min(lin[j] - pos, budget)
                plan.append((slot, c))
                tokens += c
                sq += float(c) * (2 * pos + c)
                budget -= c
                slot += 1
            if taken:
                self.q_change(p, -taken)
        if running == 0 and tokens == 0:
            return
        ctx = self.ctx[p][r]
        dt = cfg.steps.mixed_batch_s(tokens, sq, running, ctx) if tokens else cfg.steps.decode_batch_s(running, ctx)
        self._start_iteration(p, r, dt, running, _COLOC_DONE)

    def coloc_done(self, p: int, r: int) -> None:
        self.busy[p][r] = False
        self._finish_iteration(p, r)  # advances iter_k: joiners below count from the next iteration
        plan = self.plan[p][r]
        inprog = self.inprog[p][r]
        k_next = self.iter_k[p][r]
        finished_slots = []
        for slot, c in plan:
            entry = inprog[slot]
            entry[1] += c
            j = entry[0]
            if entry[1] >= self.lin[j]:
                finished_slots.append(slot)
                self.t_first[j] = self.now
                if self.lout[j] <= 1:
                    self.t_done[j] = self.now
                    self.kv_used[p][r] -= self.lin[j] + self.lout[j] + self.kv_extra[p]
                else:
                    self.running[p][r] += 1
                    self.ctx[p][r] += self.lin[j]
                    if self.accept[p] is not None:
                        self.remaining[j] = self.lout[j] - 1  # the prefill sampled the first token
                        self.seqs[p][r].append(j)
                    else:
                        self.buckets[p][r].setdefault(k_next + self.lout[j] - 2, []).append(j)
        plan.clear()
        for slot in reversed(finished_slots):
            del inprog[slot]
        self.start_coloc(p, r)

    # -------------------------------------------------------------------------------------- loop

    def run(self) -> SimResult:
        heap = self.heap
        arr = self.arr
        n = self.n
        nxt = 0
        stop: _Stop | None = None
        pop = heapq.heappop
        # Progress guard: every event either moves the clock or retires work, so the number of events
        # at one instant is bounded by the work in flight. A loop that keeps rescheduling at the same
        # instant is a bug: raise it as one (exit 70) instead of spinning forever.
        same_limit = 64 * (n + sum(p.replicas for p in self.pools)) + 100_000
        same = 0
        last_t = -math.inf
        try:
            while nxt < n or heap:
                if nxt < n and (not heap or arr[nxt] <= heap[0][0]):
                    self.now = arr[nxt]
                    if nxt == self.mid:
                        for st in self.stats:
                            st.queue_mid = st.queue_len
                    self.arrive(nxt)
                    nxt += 1
                    if nxt == n:
                        for st in self.stats:
                            st.queue_end = st.queue_len
                    self.events += 1
                    continue
                t, _, kind, a, b = pop(heap)
                if t > self.time_cap:
                    raise _Stop(f"time_cap: simulated time passed {self.time_cap:.6g} s", None)
                if t > last_t:
                    last_t = t
                    same = 0
                else:
                    same += 1
                    if same > same_limit:
                        raise RuntimeError(f"simulator made no progress: {same} events at simulated time {t!r} s (kind {kind})")
                self.now = t
                self.events += 1
                if kind == _DECODE_DONE:
                    self.decode_done(a, b)
                elif kind == _PREFILL_DONE:
                    self.prefill_done(a, b)
                elif kind == _KV:
                    self.kv_event(a, b)
                elif kind == _COLOC_DONE:
                    self.coloc_done(a, b)
                else:  # _KV_ARRIVE
                    self.decode_arrive(a)
        except _Stop as exc:
            stop = exc
        for p, st in enumerate(self.stats):
            st.queue_area += st.queue_len * self._clip(self.q_last[p], self.now)
            if nxt < n:
                st.queue_end = st.queue_len
        diverging = tuple(st.key for st in self.stats if st.diverging)
        if stop is not None and stop.pool is not None and stop.pool not in diverging:
            diverging = (*diverging, stop.pool)
        measured = np.zeros(n, dtype=bool)
        measured[self.warm :] = True
        # The engine's latency outside the GPU (API server, tokenization: ``request_fixed_s``) delays every token of
        # a request by the same amount and queues nowhere, so it shifts the request's tokens, not the schedule.
        fixed = np.array([self.pools[p].request_fixed_s for p in self.front_pool], dtype=np.float64)
        return SimResult(
            requests=self.req,
            prefill_start_s=np.array(self.t_start),
            first_token_s=np.array(self.t_first) + fixed,
            done_s=np.array(self.t_done) + fixed,
            measured=measured,
            pools=tuple(self.stats),
            events=self.events,
            end_s=self.now,
            window_s=(self.w0, self.w1),
            stop_reason=None if stop is None else stop.reason,
            saturated_pools=diverging,
        )


def _kv_done_tol(link_bytes_per_s: float) -> float:
    """Bytes below which a KV transfer counts as complete."""
    return link_bytes_per_s * 1e-12 + 1e-6


def _pick(cum: list[tuple[float, int]], u: float) -> int:
    for edge, idx in cum:
        if u < edge:
            return idx
    return cum[-1][1] if cum else -1
