"""Requests for the simulator: generated from a workload's classes (seeded) or read from a trace.

Generated arrivals: each class is a renewal process with Gamma inter-arrival gaps of mean
``1/rate_rps`` and squared coefficient of variation ``interarrival_cv2`` (shape ``1/cv²``; cv² = 1
is Poisson). The classes' streams are merged and the first ``n`` requests kept, so every class
covers the same time window. Lengths are drawn uniformly from each class's 64-point quantile grid
(the same grid the analytic model averages over); with ``jitter`` a draw is interpolated between
neighbouring grid points (a continuous piecewise-linear quantile function) instead.

Traces: the arrays of a :class:`planner.domain.Trace` (``planner.api.simulate`` reads the file, in any
format of ``planner profile``; the simulator reads no files); each row is assigned a workload class at
random in proportion to the classes' rates (seeded), for its SLOs and routing.

Shared prefixes (:func:`with_prefix_hits`, for a class with a ``prefix_cache`` of hit share ``h``): each request
of the class reuses a cached prefix of whole KV blocks of :data:`BLOCK_TOKENS` tokens, ``c = B·(⌊h·L/B⌋ + X)``
with ``X`` ~ Bernoulli(frac(h·L/B)) (randomized rounding: ``E[c] = h·L``, so the class's token-weighted hit
share is ``h``), capped at the longest whole-block prefix that leaves at least one token to compute. Why this
model: the workload gives the hit share and nothing about how hits spread over requests or prefixes, so the
simulator draws no more structure than the analytic core assumes (every prompt of length ``L`` finds ``h·L`` of
it cached), at the granularity an engine caches (whole blocks). The cache is taken as warm and large enough (the
shared system prompts, earlier turns and documents are resident where the request lands); cold misses, eviction,
prefix-aware routing and requests that hit all or nothing are not drawn, so this checks what follows from a
hit share (shorter prefills in the queue, the KV transfer of missed tokens, KV memory reserved for the working
set), not the hit share itself. Draws come from their own seeded stream, so a workload without a prefix cache
gets the same requests as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from planner.domain import RequestClass, TokenDist, Workload
from planner.errors import InputError

MAX_REQUESTS = 10_000_000


BLOCK_TOKENS = 16
"""Tokens per KV-cache block, the unit a prefix cache hits in: vLLM's default ``--block-size`` (16; docs.vllm.ai,
Engine Arguments)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Requests:
    """Requests in arrival order. ``route_u`` holds two uniforms per request (prefill-side and
    decode-side pool choice among the pools a class is routed to)."""

    arrival_s: np.ndarray  # float64, non-decreasing
    input_tokens: np.ndarray  # int64 >= 1
    output_tokens: np.ndarray  # int64 >= 1
    class_index: np.ndarray  # int64 into workload.classes
    route_u: np.ndarray  # float64, shape (n, 2)
    cached_tokens: np.ndarray | None = None  # int64, prompt tokens whose KV a prefix cache holds (None: none)
    sent_tokens: np.ndarray | None = None  # int64, prompt tokens whose KV crosses the link (None: every prompt token)

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])


def _lengths(dist: TokenDist, n: int, rng: np.random.Generator, jitter: bool) -> np.ndarray:
    grid = np.sort(np.asarray(dist.grid, dtype=float))
    if not jitter or len(grid) == 1:
        picked = grid[rng.integers(0, len(grid), size=n)]
    else:
        u = rng.random(n) * (len(grid) - 1)
        lo = np.floor(u).astype(np.int64)
        frac = u - lo
        picked = grid[lo] * (1 - frac) + grid[np.minimum(lo + 1, len(grid) - 1)] * frac
    out: np.ndarray = np.maximum(np.rint(picked), 1).astype(np.int64)
    return out


def _gaps(cls: RequestClass, n: int, rng: np.random.Generator) -> np.ndarray:
    mean = 1.0 / cls.rate_rps
    cv2 = cls.interarrival_cv2
    if cv2 <= 0:
        return np.full(n, mean)
    shape = 1.0 / cv2
    return np.asarray(rng.gamma(shape, mean / shape, size=n))


def generate(workload: Workload, n: int, seed: int, *, jitter: bool = False) -> Requests:
    """``n`` requests of the workload's classes (deterministic for a seed)."""
    if not 1 <= n <= MAX_REQUESTS:
        raise InputError(f"--requests {n}: must be between 1 and {MAX_REQUESTS:,}")
    rng = np.random.default_rng(seed)
    total = sum(c.rate_rps for c in workload.classes)
    times, idx = [], []
    for k, cls in enumerate(workload.classes):
        share = cls.rate_rps / total
        # Enough arrivals that this class still runs when the n-th merged request arrives.
        count = math.ceil(n * share * 1.2 + 10 * math.sqrt(n * share + 1) + 20 * (1 + cls.interarrival_cv2))
        times.append(np.cumsum(_gaps(cls, count, rng)))
        idx.append(np.full(count, k, dtype=np.int64))
    t = np.concatenate(times)
    c = np.concatenate(idx)
    order = np.lexsort((c, t))[:n]
    t, c = t[order], c[order]
    t = t - t[0]  # the first request arrives at time 0
    inp = np.empty(n, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    for k, cls in enumerate(workload.classes):
        mask = c == k
        m = int(mask.sum())
        inp[mask] = _lengths(cls.input_tokens, m, rng, jitter)
        out[mask] = _lengths(cls.output_tokens, m, rng, jitter)
    return Requests(arrival_s=t, input_tokens=inp, output_tokens=out, class_index=c, route_u=rng.random((n, 2)))


def from_trace(
    arrival_s: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    workload: Workload,
    seed: int,
    limit: int | None = None,
    origin: str = "trace",
) -> Requests:
    """Requests of a trace's arrays (a :class:`planner.domain.Trace`'s): sorted by arrival, shifted to start
    at 0, the first ``limit`` kept; each gets a class at random in proportion to the classes' rates
    (seeded), since trace rows carry none."""
    order = np.argsort(np.asarray(arrival_s, dtype=float), kind="stable")
    if limit is not None:
        order = order[:limit]
    n = int(order.size)
    if n == 0:
        raise InputError(f"{origin}: the trace has no requests")
    if n > MAX_REQUESTS:
        raise InputError(f"{origin}: {n:,} requests; simulate at most {MAX_REQUESTS:,} (use --requests)")
    arr = np.asarray(arrival_s, dtype=float)[order]
    inp = np.maximum(np.rint(np.asarray(input_tokens, dtype=float)[order]), 1).astype(np.int64)
    out = np.maximum(np.rint(np.asarray(output_tokens, dtype=float)[order]), 1).astype(np.int64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{origin}: arrival times must be finite numbers")
    rng = np.random.default_rng(seed)
    rates = np.array([c.rate_rps for c in workload.classes])
    cls = rng.choice(len(rates), size=n, p=rates / rates.sum()).astype(np.int64)
    return Requests(arrival_s=arr - arr[0], input_tokens=inp, output_tokens=out, class_index=cls, route_u=rng.random((n, 2)))


def with_prefix_hits(requests: Requests, workload: Workload, seed: int) -> Requests:
    """``requests`` with the cached prefix of each request of a class with a prefix cache drawn (the model in the
    module docstring) and the prompt tokens whose KV crosses the link (the missed ones where the class caches on
    both pools, else all). Unchanged when no class has a prefix cache."""
    caches = [c.prefix_cache for c in workload.classes]
    if all(pc is None for pc in caches):
        return requests
    rng = np.random.default_rng([seed, 0x50524546])  # a stream of its own ("PREF")
    lin = requests.input_tokens
    hit = np.zeros(lin.size, dtype=float)
    both = np.zeros(lin.size, dtype=bool)
    for k, pc in enumerate(caches):
        if pc is not None:
            mask = requests.class_index == k
            hit[mask] = pc.hit_frac
            both[mask] = pc.location == "both"
    blocks = hit * lin / BLOCK_TOKENS
    whole = np.floor(blocks)
    drawn = whole + (rng.random(lin.size) < blocks - whole)
    cap = np.floor((lin - 1) / BLOCK_TOKENS)  # whole blocks that leave at least one token to compute
    cached = (np.minimum(drawn, cap) * BLOCK_TOKENS).astype(np.int64)
    sent = np.where(both, lin - cached, lin).astype(np.int64)
    return replace(requests, cached_tokens=cached, sent_tokens=sent)
