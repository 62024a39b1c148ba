"""Workload profile of a request trace: rates, burstiness, length distributions, prefix reuse,
prefill/decode share and request classes. Pure numpy (no file I/O); readers are in
:mod:`planner.io.traces`.

Definitions (all exact, no binning unless stated):

* ``duration_s``: last arrival minus first; ``rate_rps.mean = n / duration_s``.
* ``rate_rps.peak``: the most arrivals in any closed window ``[t, t + w]`` of length
  ``w = min(window_s, duration_s)``, divided by ``w`` (the maximum is reached by a window that
  starts at an arrival, so it is computed exactly with one ``searchsorted``).
* ``hourly_rate_rps``: arrivals in each whole hour since the first request, divided by 3600 (the
  last hour may be partial).
* ``interarrival_cv2``: population variance of the gaps between sorted arrivals over their squared
  mean (1 for a Poisson process, > 1 bursty).
* Token percentiles: linear interpolation between order statistics (numpy's default, the same as
  pandas' ``quantile``).
* ``hour_of_day``: arrivals by hour of day. Hour 0 is 00:00 of the timestamps' clock when the trace has
  date-time timestamps (Azure, date-time CSV/JSONL; UTC when they carry a zone offset), else the hour that
  starts at the first request (numeric timestamps, Mooncake ms, BurstGPT and Vidur seconds, are read as
  offsets: :mod:`planner.io.traces` keeps no absolute time for them). The rate of hour h is the arrivals in
  hour h of every day over the seconds of the trace's span (first to last arrival) that fall in hour h of
  some day: for a trace of whole days, the mean over the days of that hour's rate; partial first and last
  hours count for the time they cover. A span of at least 24 h observes every hour for at least an hour
  (``complete``); a shorter one leaves some hours unobserved (``None``), and a workload gets no
  ``rate_profile`` from it. A class's hours are its own arrivals over the trace's span.
* ``prefix_reuse``: in arrival order, a request's leading blocks whose hash id an earlier request (of any
  class) already carried are hits; the walk stops at the first miss (a KV prefix cache reuses a prefix, not
  scattered blocks). ``hit_frac`` = hit blocks / all blocks. In tokens: block j of a request of ``L``
  prompt tokens holds ``min(B, L − B·j)`` of them (``B`` = 512: the last block is usually partial), so
  ``h`` hit blocks save ``min(L, B·h)`` tokens, capped at ``L − 1``: the last prompt token is always
  computed (it yields the first output token), so a request whose whole prompt was seen before counts
  ``L − 1`` (``full_hit_requests``) and ``hit_token_frac`` = hit tokens / prompt tokens is below 1.
  Prompt tokens beyond a request's blocks (fewer ``hash_ids`` than ``ceil(L/B)``, counted in
  ``block_mismatch_requests``) are misses. ``working_set_tokens``: the KV tokens of the distinct blocks
  that were ever hit (a block counts the most tokens any hit took from it), the cache that achieves this hit
  share with unlimited capacity and no eviction; a class's working set counts the blocks its own requests
  hit (a block several classes hit is in each class's working set).
* Classes: k-means on ``(ln(1+input), ln(1+output))`` (seeded k-means++ start, best of 3 runs,
  fitted on at most 20,000 requests sampled with a fixed seed, then every request goes to its
  nearest centre). ``classes="auto"`` picks ``k`` in 2..6 with the best mean silhouette on a fixed
  2,000-request sample and keeps one class unless that silhouette reaches 0.5 (well-separated groups).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from planner.domain import EngineSpec, GpuSpec, ModelSpec, Precision, Trace
from planner.errors import InputError
from planner.perf.memory import TP_DEGREES, check_tp, memory_fit, require_fit
from planner.perf.roofline import Hardware, step

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

HOUR_S = 3600.0
YEAR_S = 365.25 * 86_400.0
MAX_SPAN_S = 10 * YEAR_S  # a trace's arrivals span at most 10 years (the hourly histogram: 87,660 bins)
MIN_SPAN_S = 1e-9  # and at least 1 ns when they do not all coincide (rates per second stay finite)
KMEANS_SAMPLE = 20_000
SILHOUETTE_SAMPLE = 2_000
AUTO_K = range(2, 7)
SILHOUETTE_MIN = 0.5
MAX_CLASSES = 20
PREFILL_TOKEN_BUDGET = 8192  # prompts are batched up to this many tokens per prefill step
DECODE_BATCH_CAP = 128  # decode batch: the memory cap at the mean context, at most this
PREFILL_DOMINANT = 0.6  # prefill share of GPU time at or above: prefill-dominant
DECODE_DOMINANT = 0.4  # at or below: decode-dominant; between: balanced


@dataclass(frozen=True, slots=True)
class TokenSummary:
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts in power-of-two bins: ``[0,1), [1,2), [2,4), ...``."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrivals:
    num_requests: int
    duration_s: float
    mean_rps: float
    peak_rps: float
    window_s: float
    interarrival_cv2: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixReuse:
    """Leading-prefix reuse of a set of requests (the trace, or a class) over the whole trace's arrival
    order (definitions in the module docstring)."""

    block_tokens: int
    num_blocks: int
    hit_blocks: int
    hit_frac: float  # hit blocks / blocks
    prompt_tokens: int
    hit_tokens: int  # prompt tokens whose KV an earlier request's prefix holds (at most L − 1 per request)
    hit_token_frac: float  # hit_tokens / prompt_tokens (< 1)
    working_set_blocks: int  # distinct blocks ever hit
    working_set_tokens: int  # their KV tokens: the unlimited cache that achieves this hit share
    full_hit_requests: int  # requests whose whole prompt was seen before (counted L − 1: the last token is computed)
    block_mismatch_requests: int  # requests whose hash_ids count is not ceil(input_tokens / block_tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class HourOfDay:
    """Arrival rate by hour of day (definitions in the module docstring)."""

    origin: Literal["clock", "first_request"]  # hour 0: 00:00 of the timestamps' clock, or the first request's hour
    first_hour: int  # hour of day of the first request (0 when the origin is the first request)
    span_days: float  # first to last arrival, days
    complete: bool  # the span covers every hour of the day (at least 24 h)
    exposure_s: tuple[float, ...]  # 24: seconds of the span in each hour of day
    hourly_rps: tuple[float | None, ...]  # 24: arrivals in each hour of day / its exposure (None: not observed)


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseShare:
    model: str
    gpu: str
    tp: int
    precision: Precision
    prefill_token_frac: float
    prefill_flop_frac: float
    prefill_gpu_time_frac: float
    decode_batch: int
    classification: Literal["prefill-dominant", "balanced", "decode-dominant"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfiledClass:
    """A class of similar requests found in a trace (k-means on log token counts); not the workload's
    :class:`planner.domain.ProfiledClass`, which ``workload_document`` writes from it."""

    name: str
    num_requests: int
    share_frac: float
    arrivals: Arrivals
    input_tokens: TokenSummary
    output_tokens: TokenSummary
    center_tokens: tuple[float, float]  # k-means centre back in tokens: (input, output)
    hour_of_day: HourOfDay | None = None  # the class's own arrivals by hour of day, over the trace's span
    prefix_reuse: PrefixReuse | None = None  # hits of the class's requests (on prefixes of any class)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    arrivals: Arrivals
    hourly_rate_rps: tuple[float, ...]
    input_tokens: TokenSummary
    output_tokens: TokenSummary
    input_histogram: Histogram
    output_histogram: Histogram
    corr_input_output: float | None
    input_tokens_per_s: float
    output_tokens_per_s: float
    failed_requests: int
    start: str | None
    prefix_reuse: PrefixReuse | None
    classes: tuple[ProfiledClass, ...] = ()
    class_rule: str | None = None
    silhouette: dict[int, float] = field(default_factory=dict)
    out_of_order_requests: int = 0  # rows that arrived earlier than the row before them (sorted before profiling)
    hour_of_day: HourOfDay | None = None


# --- arrivals ---------------------------------------------------------------------------------


def arrivals(t_sorted: F64, window_s: float, origin: str = "trace") -> Arrivals:
    """Rates and burstiness of sorted arrival times (seconds)."""
    n = int(t_sorted.size)
    if n < 2:
        raise InputError(f"{origin}: {n} request(s); a profile needs at least 2 to measure rates")
    duration = float(t_sorted[-1] - t_sorted[0])
    if not math.isfinite(duration):
        raise InputError(f"{origin}: the arrival times are not finite numbers")
    if not duration > 0:
        raise InputError(f"{origin}: all {n} requests arrive at the same time; rates are undefined")
    if duration < MIN_SPAN_S:
        raise InputError(f"{origin}: all {n} requests arrive within {duration:.3g} s; rates are undefined below {MIN_SPAN_S:g} s")
    if duration > MAX_SPAN_S:
        raise InputError(
            f"{origin}: the arrivals span {duration:.3g} s ({duration / YEAR_S:.3g} years); a trace spans at most "
            f"{MAX_SPAN_S / YEAR_S:.0f} years",
            hint="epoch timestamps in ms, us or ns read as seconds are the usual cause: give the unit with "
            "--columns time_unit=ns (or ms, us)",
        )
    if not window_s > 0:
        raise InputError(f"--window-s {window_s}: must be positive")
    w = min(float(window_s), duration)
    ends = np.searchsorted(t_sorted, t_sorted + w, side="right")
    peak_count = int((ends - np.arange(n)).max())
    gaps = np.diff(t_sorted)
    mean_gap = duration / (n - 1)
    cv2 = float(np.mean((gaps - mean_gap) ** 2) / (mean_gap * mean_gap))
    return Arrivals(
        num_requests=n,
        duration_s=duration,
        mean_rps=n / duration,
        peak_rps=peak_count / w,
        window_s=w,
        interarrival_cv2=cv2,
    )


def hourly_rates(t_sorted: F64) -> tuple[float, ...]:
    """Requests per second in each hour from the first arrival: one bin per hour of the span, so the span
    must be finite and at most :data:`MAX_SPAN_S` (10 years, 87,660 bins)."""
    span = float(t_sorted[-1] - t_sorted[0]) if t_sorted.size else 0.0
    if not 0 <= span <= MAX_SPAN_S:
        raise InputError(f"trace: the arrivals span {span:.3g} s; an hourly histogram covers at most {MAX_SPAN_S:.3g} s")
    hours = ((t_sorted - t_sorted[0]) // HOUR_S).astype(np.int64)
    return tuple(float(c) / HOUR_S for c in np.bincount(hours))


DAY_S = 86_400.0
HOURS_PER_DAY = 24


def _second_of_day(start: str | None) -> float | None:
    """Seconds since 00:00 of the first request's date-time (``Trace.start``), or None without one."""
    if start is None:
        return None
    ns = int(np.datetime64(start, "ns").astype(np.int64))
    return (ns % (86_400 * 10**9)) / 1e9


def _exposure(origin_s: float, span_s: float) -> F64:
    """Seconds of ``[origin_s, origin_s + span_s]`` (day seconds, origin in ``[0, 86400)``) in each hour of day."""
    full = math.floor(span_s / DAY_S)
    rest = span_s - full * DAY_S
    lo = np.arange(2 * HOURS_PER_DAY, dtype=np.float64) * HOUR_S  # the rest spans at most two calendar days
    overlap = np.clip(np.minimum(lo + HOUR_S, origin_s + rest) - np.maximum(lo, origin_s), 0.0, HOUR_S)
    exposure: F64 = full * HOUR_S + overlap[:HOURS_PER_DAY] + overlap[HOURS_PER_DAY:]
    return exposure


def hour_of_day(t_sorted: F64, start: str | None, labels: I64 | None = None, k: int = 1) -> tuple[HourOfDay, list[HourOfDay]]:
    """Arrival rate by hour of day of sorted arrivals (seconds from the first): the whole trace's, and with
    ``labels`` (``labels[i]`` in ``0..k-1`` the class of arrival i) each class's, every class observed over
    the whole trace's span. One pass: arrivals are counted per hour since 00:00 of the first day (at most
    87,684 hours, :data:`MAX_SPAN_S`), then folded onto the 24 hours."""
    sod = _second_of_day(start)
    origin: Literal["clock", "first_request"] = "first_request" if sod is None else "clock"
    origin_s = 0.0 if sod is None else sod
    span = float(t_sorted[-1] - t_sorted[0])
    exposure = _exposure(origin_s, span)
    hour = np.floor((t_sorted - (t_sorted[0] - origin_s)) / HOUR_S).astype(np.int64)  # "/" then floor: 3x faster than "//"
    hours = int(hour[-1]) + 1
    if labels is None:
        per_hour = np.bincount(hour, minlength=hours).reshape(1, hours)
    else:
        per_hour = np.bincount(labels * hours + hour, minlength=k * hours).reshape(k, hours)
    days = -(-hours // HOURS_PER_DAY)
    padded = np.zeros((per_hour.shape[0], days * HOURS_PER_DAY), dtype=np.int64)
    padded[:, :hours] = per_hour
    counts = padded.reshape(per_hour.shape[0], days, HOURS_PER_DAY).sum(axis=1)

    def made(row: I64) -> HourOfDay:
        return HourOfDay(
            origin=origin,
            first_hour=int(origin_s // HOUR_S),
            span_days=span / DAY_S,
            complete=span >= DAY_S,
            exposure_s=tuple(float(e) for e in exposure),
            hourly_rps=tuple(float(c) / float(e) if e > 0 else None for c, e in zip(row, exposure, strict=True)),
        )

    return made(counts.sum(axis=0)), [made(row) for row in counts] if labels is not None else []


# --- lengths ----------------------------------------------------------------------------------


def summarize(tokens: I64) -> TokenSummary:
    x = tokens.astype(np.float64, copy=False)
    q = np.quantile(x, [0.5, 0.9, 0.99])
    return TokenSummary(float(x.mean()), float(q[0]), float(q[1]), float(q[2]), float(x.max()))


def histogram(tokens: I64) -> Histogram:
    """Power-of-two bins; bin 0 holds zeros, bin j >= 1 holds ``[2^(j-1), 2^j)``."""
    x = np.asarray(tokens, dtype=np.int64)
    _, exp = np.frexp(np.maximum(x, 0).astype(np.float64))  # x = m·2^exp, 0.5 <= m < 1: x in [2^(exp-1), 2^exp)
    counts = np.bincount(exp.astype(np.int64))
    edges = (0.0, *(float(2**j) for j in range(counts.size)))
    return Histogram(edges=edges, counts=tuple(int(c) for c in counts))


def correlation(a: I64, b: I64) -> float | None:
    """Pearson's correlation of two integer columns, from exact integer sums (``n·Σxy − Σx·Σy`` over the square root
    of the same for x and y), so the figure is the same on every machine: a float dot product goes through BLAS,
    whose kernels (and so the last digits) differ from one CPU to the next."""
    x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    n = len(x)
    if n == 0:
        return None
    mx, my = max(int(np.abs(x).max()), 1), max(int(np.abs(y).max()), 1)
    sx, sy = _exact_dot(x, None, mx), _exact_dot(y, None, my)
    vx = n * _exact_dot(x, x, mx * mx) - sx * sx
    vy = n * _exact_dot(y, y, my * my) - sy * sy
    if vx <= 0 or vy <= 0:
        return None
    return (n * _exact_dot(x, y, mx * my) - sx * sy) / math.sqrt(vx * vy)


def _exact_dot(x: I64, y: I64 | None, biggest: int) -> int:
    """Σ x·y (Σ x when ``y`` is None) as an exact Python integer, ``biggest`` bounding each term: int64 partial
    sums (numpy's integer dot, no BLAS) over chunks short enough not to overflow."""
    chunk = max(1, (1 << 62) // biggest)
    total = 0
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        total += int(part.sum() if y is None else np.dot(part, y[start : start + chunk]))
    return total


# --- prefix reuse -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHits:
    """Leading-prefix hits of a sorted trace's requests, per request and per hit block occurrence (what
    :func:`reuse_summary` aggregates over any set of requests)."""

    block_tokens: int
    blocks: I64  # per request: hash ids carried
    hit_blocks: I64  # per request: leading blocks an earlier request carried
    prompt_tokens: I64  # per request: input tokens
    hit_tokens: I64  # per request: min(L − 1, B·hit_blocks), at least 0
    full_hit: npt.NDArray[np.bool_]  # per request: the cap at L − 1 applied
    mismatch: npt.NDArray[np.bool_]  # per request: blocks != ceil(L / B)
    hit_owner: I64  # per hit block occurrence: its request
    hit_id: I64  # per hit block occurrence: index of its hash id among the distinct ids
    hit_id_tokens: I64  # per hit block occurrence: tokens the hit took from the block
    num_ids: int  # distinct hash ids


def block_hits(trace: Trace, block_tokens: int = 512) -> BlockHits | None:
    """Per-request leading-prefix hits in arrival order (``trace`` must be sorted); None without hash ids.
    Vectorised: one stable sort of all block ids, no loop over requests."""
    values, offsets = trace.hash_values, trace.hash_offsets
    if values is None or offsets is None or values.size == 0:
        return None
    n = offsets.size - 1
    counts = np.diff(offsets)
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    # np.unique(values, return_index=True, return_inverse=True), written out: half its time on numpy 2.4.
    order = np.argsort(values, kind="stable")
    run_start = np.empty(values.size, dtype=np.bool_)
    run_start[0] = True
    sorted_values = values[order]
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=run_start[1:])
    del sorted_values
    first_idx = order[run_start]  # stable: the first position of each id, in the earliest request carrying it
    inverse = np.empty(values.size, dtype=np.int64)
    inverse[order] = np.cumsum(run_start) - 1
    del order, run_start
    seen = owner[first_idx[inverse]] < owner  # first carried by an earlier request
    pos = np.arange(values.size, dtype=np.int64) - np.repeat(offsets[:-1], counts)
    miss_pos = np.where(seen, np.iinfo(np.int64).max, pos)
    del seen
    nonempty = counts > 0
    hit_blocks = np.zeros(n, dtype=np.int64)
    hit_blocks[nonempty] = np.minimum(np.minimum.reduceat(miss_pos, offsets[:-1][nonempty]), counts[nonempty])
    del miss_pos
    prompt = trace.input_tokens.astype(np.int64, copy=False)
    cap = np.maximum(prompt - 1, 0)  # the last prompt token is always computed
    covered = np.minimum(prompt, block_tokens * hit_blocks)
    hit_tokens = np.minimum(covered, cap)
    full_hit = (hit_blocks > 0) & (covered > cap)
    mismatch = counts != -(-prompt // block_tokens)
    hit = pos < np.repeat(hit_blocks, counts)
    hit_owner = owner[hit]
    hit_pos = pos[hit]
    del owner, pos
    hit_id_tokens = np.clip(cap[hit_owner] - block_tokens * hit_pos, 0, block_tokens)
    return BlockHits(
        block_tokens=block_tokens,
        blocks=counts,
        hit_blocks=hit_blocks,
        prompt_tokens=prompt,
        hit_tokens=hit_tokens,
        full_hit=full_hit,
        mismatch=mismatch,
        hit_owner=hit_owner,
        hit_id=inverse[hit],
        hit_id_tokens=hit_id_tokens,
        num_ids=int(first_idx.size),
    )


def _working_sets(h: BlockHits, labels: I64 | None, k: int) -> tuple[I64, I64]:
    """Distinct hit blocks and their tokens (each block at the most tokens a hit took from it) for each of
    ``k`` groups of requests (``labels`` None: one group, the trace). One sort of the composite key
    ``(group·ids + id)·(B+1) + tokens`` of the hit occurrences: the last entry of each (group, id) run holds
    its maximum."""
    if h.hit_id.size == 0:
        return np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    group = np.zeros(h.hit_id.size, dtype=np.int64) if labels is None else labels[h.hit_owner]
    radix = h.block_tokens + 1
    assert k * h.num_ids * radix < 2**63  # k <= 20 classes, 513: fits for up to 8e14 distinct ids
    key = np.sort((group * h.num_ids + h.hit_id) * radix + h.hit_id_tokens)
    pair = key // radix
    last = np.append(pair[1:] != pair[:-1], True)
    g, tok = pair[last] // h.num_ids, key[last] % radix
    blocks = np.bincount(g, minlength=k).astype(np.int64)
    tokens = np.bincount(g, weights=tok.astype(np.float64), minlength=k)
    return blocks, np.rint(tokens).astype(np.int64)


def reuse_summary(h: BlockHits, mask: npt.NDArray[np.bool_] | None, working_set: tuple[int, int]) -> PrefixReuse:
    """:class:`PrefixReuse` of the requests in ``mask`` (None: all), with their ``working_set``
    (distinct hit blocks, tokens) from :func:`_working_sets`."""

    def total(a: npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> int:
        return int(a.sum() if mask is None else a[mask].sum())

    blocks, hit_blocks = total(h.blocks), total(h.hit_blocks)
    prompt, hit_tokens = total(h.prompt_tokens), total(h.hit_tokens)
    return PrefixReuse(
        block_tokens=h.block_tokens,
        num_blocks=blocks,
        hit_blocks=hit_blocks,
        hit_frac=hit_blocks / blocks if blocks else 0.0,
        prompt_tokens=prompt,
        hit_tokens=hit_tokens,
        hit_token_frac=hit_tokens / prompt if prompt else 0.0,
        working_set_blocks=working_set[0],
        working_set_tokens=working_set[1],
        full_hit_requests=total(h.full_hit),
        block_mismatch_requests=total(h.mismatch),
    )


def _trace_reuse(h: BlockHits | None) -> PrefixReuse | None:
    if h is None:
        return None
    blocks, tokens = _working_sets(h, None, 1)
    return reuse_summary(h, None, (int(blocks[0]), int(tokens[0])))


def prefix_reuse(trace: Trace, block_tokens: int = 512) -> PrefixReuse | None:
    """Leading-prefix hits in arrival order (``trace`` must be sorted), in blocks and in tokens."""
    return _trace_reuse(block_hits(trace, block_tokens))


# --- prefill / decode share -------------------------------------------------------------------


def phase_share(
    trace: Trace,
    model: ModelSpec,
    hw: Hardware,
    *,
    tp: int,
    precision: Precision,
    max_batch_at: Callable[[float], int],
) -> PhaseShare:
    """Token, FLOP and GPU-time shares of prefill vs decode for serving the whole trace.

    FLOPs (the core's, :mod:`planner.perf.roofline`): prefill ``2·N_a·L + 2·n_L·d_q·L²``; decode of O
    tokens after a prompt of L ``2·N_a·O + 4·n_L·d_q·(O·L + O(O−1)/2)``, ``d_q = heads·head_dim`` the
    query width attention scales with (the hidden size for Llama, wider for Qwen3-32B). GPU time comes
    from the performance core's step model:
    prompts batched up to an 8,192-token budget (one prompt per step if longer), decode steps at
    the memory-cap batch for the trace's mean context (at most 128 sequences), split per token.
    Classification by the prefill share of GPU time: >= 0.6 prefill-dominant, <= 0.4
    decode-dominant, else balanced.
    """
    inp = trace.input_tokens.astype(np.float64)
    out = trace.output_tokens.astype(np.float64)
    n_a, n_l, d = float(model.num_active_params), float(model.num_layers), float(model.query_width)
    sum_in, sum_out = float(inp.sum()), float(out.sum())
    prefill_flops = 2 * n_a * sum_in + 2 * n_l * d * float(np.dot(inp, inp))
    decode_flops = 2 * n_a * sum_out + 4 * n_l * d * float(np.dot(out, inp) + (out * (out - 1)).sum() / 2)

    # Prefill time: requests grouped by prompt length (power-of-two bins, each at its mean L and L²).
    prefill_s = 0.0
    _, exp = np.frexp(np.maximum(inp, 1.0))
    bins = exp.astype(np.int64)
    cnt = np.bincount(bins)
    s1 = np.bincount(bins, weights=inp)
    s2 = np.bincount(bins, weights=inp * inp)
    for b in np.flatnonzero(cnt):
        c = float(cnt[b])
        mean_l, mean_l2 = float(s1[b]) / c, float(s2[b]) / c
        batch = max(1, int(PREFILL_TOKEN_BUDGET // max(mean_l, 1.0)))
        st = step(
            model, hw, tp=tp, precision=precision,
            prefill_tokens=batch * mean_l, prefill_sq_tokens=batch * mean_l2, num_prompts=batch,
        )  # fmt: skip
        prefill_s += c * st.latency_s / batch
    # Decode time: every output token costs one step's share at the representative batch.
    mean_context = float((inp + out / 2).mean()) if trace.input_tokens.size else 1.0
    batch = max(1, min(DECODE_BATCH_CAP, max_batch_at(max(mean_context, 1.0))))
    st = step(model, hw, tp=tp, precision=precision, decode_batch=batch, decode_context_tokens=batch * mean_context)
    decode_s = sum_out * st.latency_s / batch
    total_s = prefill_s + decode_s
    time_frac = prefill_s / total_s if total_s > 0 else 1.0
    if time_frac >= PREFILL_DOMINANT:
        label: Literal["prefill-dominant", "balanced", "decode-dominant"] = "prefill-dominant"
    elif time_frac <= DECODE_DOMINANT:
        label = "decode-dominant"
    else:
        label = "balanced"
    tokens = sum_in + sum_out
    flops = prefill_flops + decode_flops
    return PhaseShare(
        model=model.id,
        gpu=hw.gpu.id,
        tp=tp,
        precision=precision,
        prefill_token_frac=sum_in / tokens if tokens > 0 else 1.0,
        prefill_flop_frac=prefill_flops / flops if flops > 0 else 1.0,
        prefill_gpu_time_frac=time_frac,
        decode_batch=batch,
        classification=label,
    )


def phase_share_for(
    trace: Trace,
    model: ModelSpec,
    gpu: GpuSpec,
    engine: EngineSpec,
    hardware_at: Callable[[int], Hardware],
    *,
    tp: int | None,
    precision: Precision,
) -> PhaseShare:
    """:func:`phase_share` on one replica of ``model`` on ``gpu``; ``tp`` None picks the smallest
    tensor-parallel degree at which the model fits."""
    if tp is None:
        fitting = [t for t in TP_DEGREES if t <= gpu.gpus_per_node and memory_fit(model, gpu, engine, t, precision).fits]
        if not fitting:
            require_fit(model, gpu, engine, max(t for t in TP_DEGREES if t <= gpu.gpus_per_node), precision)
        tp = next((t for t in fitting if model.num_attention_heads % t == 0), fitting[0])
    check_tp(model, gpu, tp)
    fit = require_fit(model, gpu, engine, tp, precision)
    return phase_share(trace, model, hardware_at(tp), tp=tp, precision=precision, max_batch_at=fit.max_batch)


# --- classes ----------------------------------------------------------------------------------


def _features(trace: Trace) -> F64:
    return np.column_stack((np.log1p(trace.input_tokens.astype(np.float64)), np.log1p(trace.output_tokens.astype(np.float64))))


def _sq_dist(x: F64, centers: F64) -> F64:
    d: F64 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return d


def kmeans(
    x: F64, k: int, rng: np.random.Generator, n_init: int = 3, max_iter: int = 100, tol: float = 1e-4
) -> tuple[F64, float]:
    """Lloyd's k-means with k-means++ starts; returns (centres sorted lexicographically, inertia)."""
    best: tuple[F64, float] | None = None
    for _ in range(n_init):
        centers = np.empty((k, x.shape[1]))
        centers[0] = x[rng.integers(x.shape[0])]
        d2 = ((x - centers[0]) ** 2).sum(axis=1)
        for j in range(1, k):
            total = float(d2.sum())
            idx = int(rng.choice(x.shape[0], p=d2 / total)) if total > 0 else int(rng.integers(x.shape[0]))
            centers[j] = x[idx]
            d2 = np.minimum(d2, ((x - centers[j]) ** 2).sum(axis=1))
        labels = np.full(x.shape[0], -1)
        for _ in range(max_iter):
            new = _sq_dist(x, centers).argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            counts = np.bincount(labels, minlength=k).astype(np.float64)
            old = centers.copy()
            for dim in range(x.shape[1]):
                sums = np.bincount(labels, weights=x[:, dim], minlength=k)
                centers[:, dim] = np.where(counts > 0, sums / np.maximum(counts, 1), old[:, dim])
            if float(np.abs(centers - old).max()) < tol:
                break
        inertia = float(_sq_dist(x, centers).min(axis=1).sum())
        if best is None or inertia < best[1] - 1e-12:
            best = (centers.copy(), inertia)
    assert best is not None
    centers = best[0][np.lexsort((best[0][:, 1], best[0][:, 0]))]
    return centers, best[1]


def assign(x: F64, centers: F64, chunk: int = 1_000_000) -> I64:
    labels = np.empty(x.shape[0], dtype=np.int64)
    for lo in range(0, x.shape[0], chunk):
        labels[lo : lo + chunk] = _sq_dist(x[lo : lo + chunk], centers).argmin(axis=1)
    return labels


def silhouette(x: F64, labels: I64) -> float:
    """Mean silhouette coefficient (Euclidean), 0 for points alone in their cluster."""
    k = int(labels.max()) + 1
    if k < 2:
        return 0.0
    dist = np.sqrt(_sq_dist(x, x))
    sums = np.stack([dist[:, labels == j].sum(axis=1) for j in range(k)], axis=1)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    own = sizes[labels]
    a = np.where(own > 1, sums[np.arange(x.shape[0]), labels] / np.maximum(own - 1, 1), 0.0)
    other = sums / np.where(sizes > 0, sizes, np.nan)
    other[np.arange(x.shape[0]), labels] = np.inf
    other = np.where(np.isnan(other), np.inf, other)
    b = other.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def choose_classes(trace: Trace, classes: int | Literal["auto"], seed: int = 0) -> tuple[I64, F64, str, dict[int, float]]:
    """Labels, centres, the rule used and (for auto) the silhouette of each tried k."""
    x = _features(trace)
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(n, KMEANS_SAMPLE, replace=False))] if n > KMEANS_SAMPLE else x
    scores: dict[int, float] = {}
    if classes == "auto":
        sil_idx = np.sort(rng.choice(sample.shape[0], min(SILHOUETTE_SAMPLE, sample.shape[0]), replace=False))
        fits: dict[int, F64] = {}
        for k in AUTO_K:
            if k > np.unique(sample, axis=0).shape[0]:
                break
            centers, _ = kmeans(sample, k, np.random.default_rng(seed + k))
            fits[k] = centers
            scores[k] = silhouette(sample[sil_idx], assign(sample[sil_idx], centers))
        best_k = max(scores, key=lambda k: (scores[k], -k)) if scores else 1
        k = best_k if scores and scores[best_k] >= SILHOUETTE_MIN else 1
        rule = (
            f"auto: k in 2..6 with the best silhouette on a {min(SILHOUETTE_SAMPLE, n)}-request sample, "
            f"1 unless it reaches {SILHOUETTE_MIN}"
        )
        centers = fits[k] if k > 1 else sample.mean(axis=0, keepdims=True)
    else:
        k = int(classes)
        if not 1 <= k <= MAX_CLASSES:
            raise InputError(f"--classes {k}: give 1 to {MAX_CLASSES}, or auto")
        distinct = np.unique(sample, axis=0).shape[0]
        if k > distinct:
            raise InputError(f"--classes {k}: the trace has only {distinct} distinct (input, output) length pairs")
        rule = f"given: k = {k}"
        centers = kmeans(sample, k, np.random.default_rng(seed + k))[0] if k > 1 else sample.mean(axis=0, keepdims=True)
    labels = assign(x, centers) if centers.shape[0] > 1 else np.zeros(n, dtype=np.int64)
    return labels, centers, rule, scores


def request_classes(
    trace: Trace,
    labels: I64,
    centers: F64,
    window_s: float,
    origin: str,
    *,
    hits: BlockHits | None = None,
    hours: Sequence[HourOfDay] | None = None,
) -> tuple[ProfiledClass, ...]:
    """Per-class statistics (``trace`` sorted), with each class's hours of the day (``hours``, else computed)
    and, given the trace's ``hits``, its prefix reuse; classes with fewer than 2 requests are dropped (their
    requests still count in the totals)."""
    out: list[ProfiledClass] = []
    n = len(trace)
    k = centers.shape[0]
    if hours is None:
        hours = hour_of_day(trace.arrival_s, trace.start, labels, k)[1]
    sets = _working_sets(hits, labels, k) if hits is not None else None
    for j in range(k):
        mask = labels == j
        m = int(mask.sum())
        if m < 2:
            continue
        t = trace.arrival_s[mask]
        if not float(t[-1] - t[0]) > 0:
            continue
        name = "default" if k == 1 else f"c{len(out) + 1}"
        out.append(
            ProfiledClass(
                name=name,
                num_requests=m,
                share_frac=m / n,
                arrivals=arrivals(t, window_s, f"{origin}: class {name}"),
                input_tokens=summarize(trace.input_tokens[mask]),
                output_tokens=summarize(trace.output_tokens[mask]),
                center_tokens=(float(np.expm1(centers[j, 0])), float(np.expm1(centers[j, 1]))),
                hour_of_day=hours[j],
                prefix_reuse=None
                if hits is None or sets is None
                else reuse_summary(hits, mask, (int(sets[0][j]), int(sets[1][j]))),
            )
        )
    if k > 1 and len(out) == 1:
        out[0] = replace(out[0], name="default")
    return tuple(out)


# --- the profile ------------------------------------------------------------------------------


def profile(
    trace: Trace,
    *,
    window_s: float = 60.0,
    classes: int | Literal["auto"] | None = None,
    block_tokens: int = 512,
    seed: int = 0,
    origin: str = "trace",
) -> Profile:
    """The workload profile of ``trace`` (see the module docstring for every definition)."""
    t = trace.arrival_s
    out_of_order = int(np.count_nonzero(t[1:] < t[:-1])) if t.size > 1 else 0
    tr = trace.sorted()
    arr = arrivals(tr.arrival_s, window_s, origin)
    duration = arr.duration_s
    rc: tuple[ProfiledClass, ...] = ()
    rule = None
    scores: dict[int, float] = {}
    hits = block_hits(tr, block_tokens)
    if classes is not None:
        labels, centers, rule, scores = choose_classes(tr, classes, seed)
        day, class_days = hour_of_day(tr.arrival_s, tr.start, labels, centers.shape[0])
        rc = request_classes(tr, labels, centers, window_s, origin, hits=hits, hours=class_days)
    else:
        day = hour_of_day(tr.arrival_s, tr.start)[0]
    return Profile(
        arrivals=arr,
        hourly_rate_rps=hourly_rates(tr.arrival_s),
        input_tokens=summarize(tr.input_tokens),
        output_tokens=summarize(tr.output_tokens),
        input_histogram=histogram(tr.input_tokens),
        output_histogram=histogram(tr.output_tokens),
        corr_input_output=correlation(tr.input_tokens, tr.output_tokens),
        input_tokens_per_s=float(tr.input_tokens.sum()) / duration,
        output_tokens_per_s=float(tr.output_tokens.sum()) / duration,
        failed_requests=tr.failed,
        start=tr.start,
        prefix_reuse=_trace_reuse(hits),
        classes=rc,
        class_rule=rule,
        silhouette=scores,
        out_of_order_requests=out_of_order,
        hour_of_day=day,
    )
